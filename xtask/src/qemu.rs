//! Booting a guest with its serial output captured, under a time limit.

use crate::Result;
use std::io::{BufRead, BufReader, Read};
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
}

impl Boot {
    /// The last `n` lines of output, for failure reports.
    pub fn tail(&self, n: usize) -> &[String] {
        &self.lines[self.lines.len().saturating_sub(n)..]
    }
}

/// Text typed on the guest's console when it asks: when an output line
/// contains `prompt`, `text` is written to QEMU's standard input.
pub struct Typing<'a> {
    pub prompt: &'a str,
    pub text: &'a str,
}

/// Runs `binary args`, passing each output line to `on_line` as it arrives,
/// typing `typing` when prompted, and kills QEMU if it runs longer than
/// `limit`.
pub fn boot(
    binary: &str,
    args: &[String],
    limit: Duration,
    typing: Option<Typing<'_>>,
    mut on_line: impl FnMut(&str),
) -> Result<Boot> {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(args)
        .stdin(if typing.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Kept open until QEMU ends: end of input would close the console.
    let mut stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let (sender, receiver) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        // Bytes, not strings: a corrupt guest may print anything.
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
            if sender.send(text).is_err() {
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
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(line) => {
                if let (Some(t), Some(input)) = (&typing, stdin.as_mut())
                    && line.contains(t.prompt)
                {
                    use std::io::Write;
                    let _ = input
                        .write_all(t.text.as_bytes())
                        .and_then(|()| input.flush());
                }
                on_line(&line);
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                let _ = child.kill();
                break;
            }
        }
    }
    drop(stdin.take());
    let status = child.wait()?;
    let _ = reader.join();
    let stderr = stderr_reader.join().unwrap_or_default();
    Ok(Boot {
        lines,
        status: if timed_out { None } else { status.code() },
        timed_out,
        stderr,
        elapsed: started.elapsed(),
    })
}
