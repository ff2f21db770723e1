//! Booting a guest with its serial output captured, under a time limit,
//! optionally typing on its console when it prompts.

use crate::Result;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How a captured boot ended.
pub struct Boot {
    /// Every line the guest printed, carriage returns removed.
    pub lines: Vec<String>,
    /// QEMU's exit status; `None` if it was killed.
    pub status: Option<i32>,
    /// Whether the time limit ran out.
    pub timed_out: bool,
    /// What QEMU itself printed on stderr.
    pub stderr: String,
    pub elapsed: Duration,
    /// Steps of the script that were typed.
    pub typed: usize,
}

impl Boot {
    /// The last `n` lines of output, for failure reports.
    pub fn tail(&self, n: usize) -> &[String] {
        &self.lines[self.lines.len().saturating_sub(n)..]
    }
}

/// One step of typing: once the guest has printed `prompt` (since the
/// previous step was typed; it need not end a line), `text` is written to
/// QEMU's standard input. Steps with an empty prompt at the start of a
/// script are typed before the guest prints anything.
pub struct Step<'a> {
    pub prompt: &'a str,
    pub text: &'a str,
}

/// Runs `binary args`, passing each output line to `on_line` as it arrives,
/// typing `script` step by step, and kills QEMU if it runs longer than
/// `limit`.
pub fn boot(
    binary: &str,
    args: &[impl AsRef<std::ffi::OsStr>],
    limit: Duration,
    script: &[Step<'_>],
    mut on_line: impl FnMut(&str),
) -> Result<Boot> {
    boot_until(binary, args, limit, script, |line| {
        on_line(line);
        false
    })
}

/// [`boot`], killing QEMU (SIGKILL, as a power cut would) as soon as
/// `stop` returns true for a line; the boot then has no status.
pub fn boot_until(
    binary: &str,
    args: &[impl AsRef<std::ffi::OsStr>],
    limit: Duration,
    script: &[Step<'_>],
    mut stop: impl FnMut(&str) -> bool,
) -> Result<Boot> {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(args)
        .stdin(if script.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Kept open until QEMU ends: end of input would close the console.
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let (sender, receiver) = mpsc::channel::<Vec<u8>>();
    // Chunks, not lines: a prompt does not end its line.
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut chunk) {
            if n == 0 || sender.send(chunk[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let deadline = started + limit;
    let mut lines = Vec::new();
    // Bytes of the line not yet ended; text since the last step was typed.
    let mut partial: Vec<u8> = Vec::new();
    let mut since_typed = String::new();
    let mut typed = 0;
    let mut timed_out = false;
    let mut killed = false;
    while let (Some(step), Some(input)) = (script.get(typed), stdin.as_mut()) {
        if !step.prompt.is_empty() {
            break;
        }
        let _ = input
            .write_all(step.text.as_bytes())
            .and_then(|()| input.flush());
        typed += 1;
    }
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(chunk) => {
                // A corrupt guest may print anything: bytes, not strings.
                since_typed.push_str(&String::from_utf8_lossy(&chunk));
                partial.extend_from_slice(&chunk);
                while let Some(end) = partial.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = partial.drain(..=end).collect();
                    let text = String::from_utf8_lossy(&line[..end])
                        .trim_end_matches('\r')
                        .to_string();
                    let stopping = stop(&text);
                    lines.push(text);
                    if stopping {
                        let _ = child.kill();
                        killed = true;
                    }
                }
                if killed {
                    break;
                }
                if let (Some(step), Some(input)) = (script.get(typed), stdin.as_mut())
                    && since_typed.contains(step.prompt)
                {
                    let _ = input
                        .write_all(step.text.as_bytes())
                        .and_then(|()| input.flush());
                    typed += 1;
                    since_typed.clear();
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                let _ = child.kill();
                break;
            }
        }
    }
    if !partial.is_empty() {
        let text = String::from_utf8_lossy(&partial)
            .trim_end_matches('\r')
            .to_string();
        stop(&text);
        lines.push(text);
    }
    drop(stdin.take());
    let status = child.wait()?;
    let _ = reader.join();
    let stderr = stderr_reader.join().unwrap_or_default();
    Ok(Boot {
        lines,
        status: if timed_out || killed {
            None
        } else {
            status.code()
        },
        timed_out,
        stderr,
        elapsed: started.elapsed(),
        typed,
    })
}
