//! The disk, checked from outside the guest: a block write through the
//! user-space driver lands in the image file at its offset, and a second
//! boot on the same image reads it back.

use super::*;
use crate::machine::{Disk, fresh_disk};
use shell::{matches_pattern, shell_boot};

/// The sector the checks write.
const SECTOR: u64 = 77;
const SECTOR_BYTES: u64 = 512;

pub(super) fn block_data_survives_a_reboot(
    config: &Config,
    kernel: &Path,
    tally: &mut Tally,
) -> Result<Duration> {
    let scope = config.scope();
    step(format!("booting {scope} twice on one disk image"));
    let image = fresh_disk(&format!("{scope}-reboot"))?;
    let mut config = config.clone();
    config.disk = Disk::Image(image.clone());
    // Different on every run, so no earlier image could pass.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let text = format!("ferrite-disk-{stamp:x}");
    let write = format!("blk write {SECTOR} {text}\r");
    let first = shell_boot(&config, kernel, &write)?;
    let wrote = format!("wrote {} bytes at sector {SECTOR}", text.len());
    let mut elapsed = first.elapsed;
    let on_file = std::fs::read(&image)
        .ok()
        .and_then(|bytes| {
            let at = (SECTOR * SECTOR_BYTES) as usize;
            bytes.get(at..at + text.len()).map(|b| b == text.as_bytes())
        })
        .unwrap_or(false);
    let detail = if !first.lines.iter().any(|l| l == &wrote) {
        format!("the shell did not report the write ({wrote:?})")
    } else if !on_file {
        format!(
            "the image does not hold {text:?} at byte {}",
            SECTOR * SECTOR_BYTES
        )
    } else {
        String::new()
    };
    tally.record(
        detail.is_empty(),
        &scope,
        "block::a_write_reaches_the_image_at_its_offset",
        &detail,
    );
    if !detail.is_empty() {
        show_failure_context(&first);
        return Ok(elapsed);
    }
    let second = shell_boot(&config, kernel, &format!("blk read {SECTOR}\r"))?;
    elapsed += second.elapsed;
    let read_back = second
        .lines
        .iter()
        .any(|l| matches_pattern(l, &format!("     0  * {text}*")));
    let detail = match read_back {
        true => String::new(),
        false => format!("the second boot did not read {text:?} back"),
    };
    tally.record(read_back, &scope, "block::data_survives_a_reboot", &detail);
    if !read_back {
        show_failure_context(&second);
    }
    let _ = std::fs::remove_file(&image);
    Ok(elapsed)
}

/// Sectors a durability boot's guest writes at most; the machine is
/// killed before it gets there.
const CHECK_SECTORS: u32 = 400;

/// What the guest prints once the write of sector `n` was acknowledged.
fn ack_number(line: &str) -> Option<u32> {
    line.rsplit_once("ack ")?.1.trim().parse().ok()
}

/// Acknowledged writes survive the machine's sudden death: the disk runs
/// with `cache=directsync` (QEMU completes a write only once it reached
/// the image), a guest program writes numbered sectors one request at a
/// time and prints `ack N` as each is answered, and xtask kills QEMU
/// (SIGKILL) on the ack of a random sector. Every sector acknowledged
/// must then be in the image as written. `runs` times, on one image, each
/// run's sectors naming the run.
pub(super) fn acknowledged_writes_survive_a_kill(
    config: &Config,
    kernel: &Path,
    runs: u32,
    tally: &mut Tally,
) -> Result<Duration> {
    use protocols::block::{CHECK_FIRST_SECTOR, SECTOR_SIZE, check_sector};
    let scope = config.scope();
    step(format!(
        "killing {scope} after acknowledged writes, {runs} times"
    ));
    let image = fresh_disk(&format!("{scope}-durability"))?;
    let mut config = config.clone();
    config.disk = Disk::Image(image.clone());
    config.disk_cache = "directsync";
    let base = crate::fuzz::fresh_seed();
    let mut elapsed = Duration::ZERO;
    let mut problems = Vec::new();
    let mut acknowledged = 0u64;
    for run in 0..runs {
        let id = base.wrapping_mul(1000).wrapping_add(run as u64);
        // Where to pull the plug: spread over the run, different each time.
        let kill_at = (id.wrapping_mul(2_654_435_761) % (CHECK_SECTORS as u64 - 10)) as u32 + 1;
        let command = format!("run probe blk-acks {id} {CHECK_SECTORS}\r");
        let args = boot_args(&config, kernel, "mode=run")?;
        let script = [qemu::Step {
            prompt: shell::SHELL_PROMPT,
            text: &command,
        }];
        let mut acks = Vec::new();
        let boot = qemu::boot_until(
            config.machine.arch().qemu_binary(),
            &args,
            BOOT_TIME_LIMIT,
            &script,
            |line| match ack_number(line) {
                Some(n) => {
                    acks.push(n);
                    n >= kill_at
                }
                None => false,
            },
        )?;
        elapsed += boot.elapsed;
        // Acks that came in the same read as the one killed on count too.
        if acks.iter().max().is_none_or(|&last| last < kill_at) {
            problems.push(format!(
                "run {run}: the guest stopped before ack {kill_at} (last {:?})",
                acks.last()
            ));
            show_failure_context(&boot);
            continue;
        }
        let bytes = std::fs::read(&image).map_err(|e| crate::error!("{}: {e}", image.display()))?;
        for &n in &acks {
            acknowledged += 1;
            let at = (CHECK_FIRST_SECTOR as usize + n as usize) * SECTOR_SIZE;
            if bytes.get(at..at + SECTOR_SIZE) != Some(&check_sector(id, n)[..]) {
                problems.push(format!(
                    "run {run}: sector {n} was acknowledged and is not in the image"
                ));
            }
        }
    }
    let detail = match problems.first() {
        None => String::new(),
        Some(first) => format!("{} problems; the first: {first}", problems.len()),
    };
    tally.record(
        problems.is_empty(),
        &scope,
        "block::acknowledged_writes_survive_a_kill",
        &detail,
    );
    step(format!(
        "{scope}: {runs} kills, {acknowledged} acknowledged writes checked, {} lost",
        problems.len()
    ));
    Ok(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_are_read_even_after_other_output() {
        assert_eq!(ack_number("ack 17"), Some(17));
        assert_eq!(ack_number("ferrite> ack 3"), Some(3));
        assert_eq!(ack_number("ack"), None);
        assert_eq!(ack_number("ack x"), None);
        assert_eq!(ack_number("init: blk driver"), None);
    }
}
