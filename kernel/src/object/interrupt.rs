//! Interrupt handlers: a device's interrupt line bound to a notification,
//! so a driver in user space learns of its interrupts as of any event.
//!
//! When the line fires, the kernel masks it at the interrupt controller,
//! then signals. It stays masked until the holder acknowledges
//! (`irq_ack`), having dealt with the device: so a level-triggered line
//! cannot storm while its driver runs, and the kernel never needs to know
//! how to quiet the device (seL4's IRQ handlers work the same way).
//!
//! A line has at most one handler. The table of claimed lines holds weak
//! references: the handler goes with its last capability, masking and
//! freeing its line as it goes.

use super::notification::{self, Notification};
use crate::irq::MAX_IRQS;
use crate::sync::IrqLock;
use crate::task::Pid;
use abi::Error;
use alloc::sync::{Arc, Weak};
use core::sync::atomic::{AtomicBool, Ordering};
use hal::{Arch, IrqError};

pub struct IrqHandler {
    irq: usize,
    notification: Arc<Notification>,
    bits: usize,
    /// The process that claimed it, for listings.
    owner: Pid,
    masked: AtomicBool,
    /// The architecture's masking, kept so that dropping needs no type
    /// parameter.
    set_masked: fn(usize, bool) -> Result<(), IrqError>,
}

static CLAIMED: IrqLock<[Option<Weak<IrqHandler>>; MAX_IRQS]> =
    IrqLock::new([const { None }; MAX_IRQS]);

/// The live handler of line `irq`, if it has one.
fn handler_of(irq: usize) -> Option<Arc<IrqHandler>> {
    CLAIMED.lock().get(irq)?.as_ref()?.upgrade()
}

/// Claims device line `irq` for `owner`: its interrupts set `bits` in
/// `notification`. Only the lines of the devices left to user space can
/// be claimed, each once.
pub fn claim<A: Arch>(
    irq: usize,
    notification: Arc<Notification>,
    bits: usize,
    owner: Pid,
) -> Result<Arc<IrqHandler>, Error> {
    let Some(device) = super::device::user_devices::<A>()
        .iter()
        .find(|device| device.irq == Some(irq))
    else {
        return Err(Error::NotFound);
    };
    if bits == 0 {
        return Err(Error::InvalidArgument);
    }
    let handler = crate::mm::heap::try_box(IrqHandler {
        irq,
        notification,
        bits,
        owner,
        masked: AtomicBool::new(true),
        set_masked: A::set_masked,
    })
    .map_err(|_| Error::OutOfMemory)?;
    let handler: Arc<IrqHandler> = Arc::from(handler);
    {
        let mut claimed = CLAIMED.lock();
        let slot = &mut claimed[irq];
        if slot.as_ref().is_some_and(|weak| weak.strong_count() > 0) {
            return Err(Error::Busy);
        }
        *slot = Some(Arc::downgrade(&handler));
    }
    // A handler that went left no dispatch entry (its drop removed it),
    // so this fails only if the kernel itself uses the line.
    if crate::irq::register(irq, device.name, fire::<A>).is_err() {
        // Forget the line before `handler` drops, so that it leaves the
        // line and the kernel's registration alone.
        CLAIMED.lock()[irq] = None;
        return Err(Error::Busy);
    }
    handler.acknowledge();
    Ok(handler)
}

/// The dispatcher's entry for claimed lines: mask, then signal.
fn fire<A: Arch>(irq: usize) {
    let _ = A::set_masked(irq, true);
    if let Some(handler) = handler_of(irq) {
        handler.masked.store(true, Ordering::Relaxed);
        notification::signal(&handler.notification, handler.bits);
    }
}

impl IrqHandler {
    /// Unmasks the line: the driver has dealt with the interrupt.
    pub fn acknowledge(&self) {
        self.masked.store(false, Ordering::Relaxed);
        let _ = (self.set_masked)(self.irq, false);
    }
}

impl Drop for IrqHandler {
    fn drop(&mut self) {
        // A failed claim cleared the slot and must leave the line and its
        // registration alone; otherwise the slot is this handler's.
        let owned = {
            let mut claimed = CLAIMED.lock();
            let owned = claimed[self.irq]
                .as_ref()
                .is_some_and(|weak| weak.strong_count() == 0);
            if owned {
                claimed[self.irq] = None;
            }
            owned
        };
        // Outside the table's lock, which the interrupt path takes after
        // the controller's.
        if owned {
            let _ = (self.set_masked)(self.irq, true);
            crate::irq::unregister(self.irq);
        }
    }
}

/// Who holds line `irq`, and whether it is masked, if it is claimed.
pub fn state(irq: usize) -> Option<(Pid, bool)> {
    handler_of(irq).map(|handler| (handler.owner, handler.masked.load(Ordering::Relaxed)))
}
