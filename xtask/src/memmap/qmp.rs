//! A QEMU Machine Protocol client: enough to stop the guest and ask the
//! monitor questions.

use crate::{Result, error};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects to the socket QEMU listens on (waiting up to `limit` for
    /// it to appear) and leaves capability negotiation.
    pub fn connect(socket: &Path, limit: Duration) -> Result<Qmp> {
        let deadline = Instant::now() + limit;
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() > deadline => {
                    return Err(error!("QMP socket {}: {e}", socket.display()));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        let greeting = qmp.read()?;
        if greeting.get("QMP").is_none() {
            return Err(error!("not a QMP greeting: {greeting}"));
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    fn read(&mut self) -> Result<Value> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(error!("QMP connection closed"));
        }
        serde_json::from_str(&line).map_err(|e| error!("QMP sent {line:?}: {e}"))
    }

    /// Runs a command and returns its result (events in between are
    /// skipped).
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let request = json!({ "execute": command, "arguments": arguments });
        writeln!(self.writer, "{request}")?;
        loop {
            let reply = self.read()?;
            if let Some(value) = reply.get("return") {
                return Ok(value.clone());
            }
            if let Some(e) = reply.get("error") {
                return Err(error!("QMP {command}: {e}"));
            }
        }
    }

    /// Runs a human monitor command and returns its text.
    pub fn monitor(&mut self, command_line: &str) -> Result<String> {
        let value = self.execute(
            "human-monitor-command",
            json!({ "command-line": command_line }),
        )?;
        value
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| error!("monitor command {command_line:?} returned {value}"))
    }
}
