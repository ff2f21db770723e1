//! The portable half of catching expected kernel faults. An architecture
//! arms a call; when its trap handler sees a kernel fault while armed, it
//! records the fault here and resumes after the call, which then reports it.

use hal::trap::{Fault, FaultKind};
use spin::Mutex;

static CAUGHT: Mutex<Option<Fault>> = Mutex::new(None);

/// Called by the trap handler for the fault that ended an armed call.
pub fn record(fault: Fault) {
    *CAUGHT.lock() = Some(fault);
}

/// The result of an armed call that returned (`faulted` false) or was
/// ended by a fault.
pub fn outcome(faulted: bool) -> Result<(), Fault> {
    if !faulted {
        return Ok(());
    }
    Err(CAUGHT.lock().take().unwrap_or(Fault {
        kind: FaultKind::Other,
        access: None,
        address: 0,
        pc: 0,
        detail: 0,
    }))
}
