//! The supervisor's service (`supervisor`, served by init): the services
//! it keeps running, and ending one on request.
//!
//! Requests (label, then the four words):
//! - [`LIST`]: replies with one [`ServiceRecord`] per service as the
//!   payload ([`RECORD_SIZE`] bytes each) and their count in word 0;
//! - [`KILL`] (word 0: a process id): ends that service's process, which
//!   the supervisor then restarts as it would after any death;
//! - [`CRASH`] (word 0: a process id): the same, as a fault
//!   (`process_kill` with `KILL_AS_FAULT`). Process 1 is the supervisor
//!   itself: it answers, then faults for real, and the kernel ends the
//!   machine (`INIT_FAILED`).
//!
//! The reply's label is a status ([`crate::status`]) over `abi::Error`:
//! `NotFound` for a process that is not a service the supervisor keeps.

pub const LIST: usize = 1;
pub const KILL: usize = 2;
pub const CRASH: usize = 3;

/// The name it registers under.
pub const SERVICE: &str = "supervisor";

/// Longest service name a record holds.
pub const NAME_LENGTH: usize = 16;
/// Bytes a record takes in the payload.
pub const RECORD_SIZE: usize = 12 + NAME_LENGTH;

/// What a service is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Running = 0,
    /// Dead, to be started again after its back-off.
    Restarting = 1,
    /// Died too often too young: no longer restarted.
    Held = 2,
}

impl State {
    fn from_number(number: u32) -> Option<State> {
        [State::Running, State::Restarting, State::Held]
            .into_iter()
            .find(|s| *s as u32 == number)
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Restarting => "restarting",
            State::Held => "held",
        }
    }
}

/// One service, as [`LIST`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceRecord {
    /// Its current (or last) process.
    pub pid: u32,
    pub restarts: u32,
    pub state: State,
    /// The name, NUL-padded (cut at [`NAME_LENGTH`] bytes).
    pub name: [u8; NAME_LENGTH],
}

impl ServiceRecord {
    pub fn new(pid: u32, restarts: u32, state: State, name: &str) -> ServiceRecord {
        let mut bytes = [0; NAME_LENGTH];
        let len = name.len().min(NAME_LENGTH);
        bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
        ServiceRecord {
            pid,
            restarts,
            state,
            name: bytes,
        }
    }

    /// The name, up to its first NUL (empty if it is not UTF-8).
    pub fn name(&self) -> &str {
        let len = self
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(NAME_LENGTH);
        core::str::from_utf8(&self.name[..len]).unwrap_or("")
    }

    /// Its bytes in a payload.
    pub fn encode(&self) -> [u8; RECORD_SIZE] {
        let mut bytes = [0; RECORD_SIZE];
        bytes[0..4].copy_from_slice(&self.pid.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.restarts.to_le_bytes());
        bytes[8..12].copy_from_slice(&(self.state as u32).to_le_bytes());
        bytes[12..].copy_from_slice(&self.name);
        bytes
    }

    /// The record in `bytes` (at least [`RECORD_SIZE`] of them), if its
    /// state is one this protocol knows.
    pub fn decode(bytes: &[u8]) -> Option<ServiceRecord> {
        let bytes = bytes.get(..RECORD_SIZE)?;
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        Some(ServiceRecord {
            pid: word(0),
            restarts: word(4),
            state: State::from_number(word(8))?,
            name: bytes[12..].try_into().expect("name-sized"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_ones_are_refused() {
        let record = ServiceRecord::new(7, 3, State::Held, "blk");
        let bytes = record.encode();
        assert_eq!(ServiceRecord::decode(&bytes), Some(record));
        assert_eq!(record.name(), "blk");
        assert_eq!(
            ServiceRecord::decode(&bytes[..RECORD_SIZE - 1]),
            None,
            "short"
        );
        let mut bad = bytes;
        bad[8] = 9;
        assert_eq!(ServiceRecord::decode(&bad), None, "an unknown state");
        let long = ServiceRecord::new(1, 0, State::Running, "a-name-longer-than-sixteen");
        assert_eq!(long.name(), "a-name-longer-th");
    }
}
