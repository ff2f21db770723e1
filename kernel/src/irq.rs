//! Interrupt dispatch: the architecture's interrupt entry calls [`dispatch`]
//! with an interrupt number, and [`spurious`] for interrupts that turn out to
//! be nothing. Every interrupt is counted; one with no handler is reported
//! and its line masked, so it can neither go unnoticed nor storm.

use crate::sync::IrqLock;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Interrupt numbers the kernel keeps state for.
pub const MAX_IRQS: usize = 256;

/// A handler, given its interrupt number; runs with interrupts masked.
pub type Handler = fn(usize);

static HANDLERS: [AtomicUsize; MAX_IRQS] = [const { AtomicUsize::new(0) }; MAX_IRQS];
static COUNTS: [AtomicU64; MAX_IRQS] = [const { AtomicU64::new(0) }; MAX_IRQS];
static NAMES: IrqLock<[&str; MAX_IRQS]> = IrqLock::new([""; MAX_IRQS]);
static SPURIOUS: AtomicU64 = AtomicU64::new(0);
static UNHANDLED: AtomicU64 = AtomicU64::new(0);

/// Why a handler could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// Beyond [`MAX_IRQS`].
    OutOfRange(usize),
    /// Another handler has it.
    Taken(usize),
}

impl core::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RegisterError::OutOfRange(irq) => write!(f, "interrupt {irq} is out of range"),
            RegisterError::Taken(irq) => write!(f, "interrupt {irq} already has a handler"),
        }
    }
}

/// Attaches `handler` to interrupt `irq`, which serves `name` (shown by
/// the `irqs` listing).
pub fn register(irq: usize, name: &'static str, handler: Handler) -> Result<(), RegisterError> {
    let slot = HANDLERS.get(irq).ok_or(RegisterError::OutOfRange(irq))?;
    slot.compare_exchange(0, handler as usize, Ordering::SeqCst, Ordering::SeqCst)
        .map_err(|_| RegisterError::Taken(irq))?;
    NAMES.lock()[irq] = name;
    Ok(())
}

/// What interrupt `irq` serves, as registered ("" if unknown). The name
/// stays after the handler goes, so counts remain labelled.
pub fn name(irq: usize) -> &'static str {
    NAMES.lock().get(irq).copied().unwrap_or("")
}

/// Detaches whatever handler interrupt `irq` has.
pub fn unregister(irq: usize) {
    if let Some(slot) = HANDLERS.get(irq) {
        slot.store(0, Ordering::SeqCst);
    }
}

/// What [`dispatch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatched {
    /// A handler ran.
    Handled,
    /// No handler: reported, counted and masked.
    Unhandled,
}

/// Runs the handler of interrupt `irq`; called by the architecture with
/// interrupts masked. An interrupt without a handler is reported (once per
/// line), counted and masked through `A`.
pub fn dispatch<A: hal::Interrupts>(irq: usize) -> Dispatched {
    let Some(count) = COUNTS.get(irq) else {
        UNHANDLED.fetch_add(1, Ordering::Relaxed);
        log::warn!("interrupt {irq} is beyond the kernel's table");
        return Dispatched::Unhandled;
    };
    let previous = count.fetch_add(1, Ordering::Relaxed);
    let handler = HANDLERS[irq].load(Ordering::SeqCst);
    if handler != 0 {
        // SAFETY: only `register` stores non-zero values, and it stores
        // `Handler` function pointers.
        let handler: Handler = unsafe { core::mem::transmute::<usize, Handler>(handler) };
        handler(irq);
        return Dispatched::Handled;
    }
    UNHANDLED.fetch_add(1, Ordering::Relaxed);
    if previous == 0 {
        log::warn!("unhandled interrupt {irq}: no handler; masking it");
    }
    let _ = A::set_masked(irq, true);
    Dispatched::Unhandled
}

/// Counts a spurious interrupt (one the controller withdrew).
pub fn spurious() {
    SPURIOUS.fetch_add(1, Ordering::Relaxed);
}

/// How many times interrupt `irq` arrived.
pub fn count(irq: usize) -> u64 {
    COUNTS.get(irq).map_or(0, |c| c.load(Ordering::Relaxed))
}

/// Spurious interrupts so far.
pub fn spurious_count() -> u64 {
    SPURIOUS.load(Ordering::Relaxed)
}

/// Interrupts that arrived with no handler.
pub fn unhandled_count() -> u64 {
    UNHANDLED.load(Ordering::Relaxed)
}

/// Calls `each(irq, count)` for every interrupt that has arrived.
pub fn for_each_count(mut each: impl FnMut(usize, u64)) {
    for (irq, count) in COUNTS.iter().enumerate() {
        let count = count.load(Ordering::Relaxed);
        if count > 0 {
            each(irq, count);
        }
    }
}
