//! The periodic tick: the architecture's timer interrupt, at a rate the
//! kernel chooses, calling one callback per tick (the scheduler's).

use crate::irq;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use hal::{Arch, TimerError};

static TICKS: AtomicU64 = AtomicU64::new(0);
static RATE_HZ: AtomicU32 = AtomicU32::new(0);
static IRQ: AtomicUsize = AtomicUsize::new(usize::MAX);
/// The tick callback; 0 for none.
static CALLBACK: AtomicUsize = AtomicUsize::new(0);

/// Why ticking could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The timer refused.
    Timer(TimerError),
    /// Its interrupt is taken.
    Irq(irq::RegisterError),
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StartError::Timer(e) => write!(f, "{e}"),
            StartError::Irq(e) => write!(f, "{e}"),
        }
    }
}

fn on_tick<A: Arch>(_irq: usize) {
    A::acknowledge_tick();
    TICKS.fetch_add(1, Ordering::Relaxed);
    let callback = CALLBACK.load(Ordering::Relaxed);
    if callback != 0 {
        // SAFETY: only `start` stores non-zero values, and it stores fn().
        let callback: fn() = unsafe { core::mem::transmute::<usize, fn()>(callback) };
        callback();
    }
}

/// Starts ticking at `hz`, calling `callback` on each tick (with
/// interrupts masked). Restarting changes the rate and callback.
pub fn start<A: Arch>(hz: u32, callback: Option<fn()>) -> Result<(), StartError> {
    stop::<A>();
    CALLBACK.store(callback.map_or(0, |f| f as usize), Ordering::SeqCst);
    let irq = A::start_ticks(hz).map_err(StartError::Timer)?;
    if let Err(e) = irq::register(irq, "timer", on_tick::<A>) {
        A::stop_ticks();
        return Err(StartError::Irq(e));
    }
    IRQ.store(irq, Ordering::SeqCst);
    RATE_HZ.store(hz, Ordering::SeqCst);
    A::set_masked(irq, false).map_err(|_| StartError::Timer(TimerError::NoDevice))?;
    Ok(())
}

/// Stops ticking.
pub fn stop<A: Arch>() {
    let irq = IRQ.swap(usize::MAX, Ordering::SeqCst);
    if irq != usize::MAX {
        A::stop_ticks();
        irq::unregister(irq);
        RATE_HZ.store(0, Ordering::SeqCst);
    }
}

/// Ticks since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// The current rate; 0 when stopped.
pub fn rate_hz() -> u32 {
    RATE_HZ.load(Ordering::Relaxed)
}
