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
