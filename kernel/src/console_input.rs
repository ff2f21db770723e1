//! Console input: received bytes wait in a ring until a reader takes
//! them, and readers wait in the input's queue until bytes arrive. Output
//! is [`console`](crate::console)'s.

use crate::irq;
use crate::sync::IrqLock;
use crate::task::{self, WaitQueue};
use core::pin::Pin;

/// Bytes received and not yet read.
const INPUT_CAPACITY: usize = 256;

struct InputRing {
    bytes: [u8; INPUT_CAPACITY],
    head: usize,
    len: usize,
    dropped: u64,
    /// While the ring is full, the receive interrupt is masked and input
    /// waits in the UART (and the host behind it): back-pressure instead
    /// of loss. Set to the interrupt and the function that resumes input.
    paused: Option<(usize, fn(usize))>,
}

static INPUT: IrqLock<InputRing> = IrqLock::new(InputRing {
    bytes: [0; INPUT_CAPACITY],
    head: 0,
    len: 0,
    dropped: 0,
    paused: None,
});

/// Stores a received byte; when the ring is full the byte is dropped and
/// counted.
pub fn push(byte: u8) {
    let mut ring = INPUT.lock();
    if ring.len == INPUT_CAPACITY {
        ring.dropped += 1;
        return;
    }
    let tail = (ring.head + ring.len) % INPUT_CAPACITY;
    ring.bytes[tail] = byte;
    ring.len += 1;
}

/// The oldest received byte not yet read.
pub fn read() -> Option<u8> {
    let (byte, resume) = {
        let mut ring = INPUT.lock();
        if ring.len == 0 {
            return None;
        }
        let byte = ring.bytes[ring.head];
        ring.head = (ring.head + 1) % INPUT_CAPACITY;
        ring.len -= 1;
        // Resume once half the ring is free, not for every byte read.
        let resume = if ring.len <= INPUT_CAPACITY / 2 {
            ring.paused.take()
        } else {
            None
        };
        (byte, resume)
    };
    if let Some((irq, resume)) = resume {
        resume(irq);
    }
    Some(byte)
}

/// Received bytes dropped because the ring was full.
pub fn dropped() -> u64 {
    INPUT.lock().dropped
}

/// Moves received bytes from the UART into the ring while it has room.
/// When it fills, the receive interrupt is masked and the rest stays in
/// the UART until a reader makes room ([`read`] resumes).
fn drain_receiver<A: hal::Arch>(irq: usize) {
    let mut any = false;
    loop {
        {
            let mut ring = INPUT.lock();
            if ring.len == INPUT_CAPACITY {
                ring.paused = Some((irq, resume_receiver::<A>));
                let _ = A::set_masked(irq, true);
                break;
            }
        }
        match A::read_byte() {
            Some(byte) => push(byte),
            None => break,
        }
        any = true;
    }
    if any {
        task::wake_all(&READERS);
    }
}

/// Threads waiting for input.
static READERS: WaitQueue = WaitQueue::new();

/// Waits for input to arrive. The caller has found none with interrupts
/// masked, so none can arrive before the wait begins.
pub fn wait<A: hal::Arch>() -> Result<(), task::Killed> {
    task::wait_on::<A>(Pin::static_ref(&READERS))
}

/// Takes what waited in the UART, then unmasks its interrupt if the ring
/// did not fill again. The UART is drained before the unmask, so an
/// edge-triggered line sees the next byte as a new edge.
fn resume_receiver<A: hal::Arch>(irq: usize) {
    drain_receiver::<A>(irq);
    if INPUT.lock().paused.is_none() {
        let _ = A::set_masked(irq, false);
    }
}

/// Switches console input to interrupts: each received byte goes to the
/// input ring ([`read`]). Returns the interrupt number.
pub fn enable<A: hal::Arch>() -> Result<usize, &'static str> {
    let irq = A::enable_receive_interrupt().map_err(|_| "the console has no receive interrupt")?;
    match irq::register(irq, "console", drain_receiver::<A>) {
        Ok(()) | Err(irq::RegisterError::Taken(_)) => {}
        Err(irq::RegisterError::OutOfRange(_)) => return Err("receive interrupt out of range"),
    }
    A::set_masked(irq, false).map_err(|_| "cannot unmask the receive interrupt")?;
    // Input that arrived before now may never raise the interrupt (QEMU's
    // PL011 forgets it when its interrupts are cleared at setup, and an
    // edge-triggered line saw its edge while masked): take it now.
    A::without(|| drain_receiver::<A>(irq));
    Ok(irq)
}
