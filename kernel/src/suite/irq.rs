//! Interrupts, the tick, traps, the wall clock and console input.

use crate::cmdline::Cmdline;
use crate::ktest::{Outcome, Test};
use crate::{console, ensure, ensure_eq, fail, irq, kprintln, timer, trap};
use core::sync::atomic::{AtomicU64, Ordering};
use hal::Arch;
use hal::trap::{Access, FaultKind};

pub(super) fn tests<A: Arch>() -> [Test; 9] {
    [
        crate::ktest!(console, receive_interrupt_delivers_host_input::<A>),
        crate::ktest!(time, ticks_arrive_at_the_configured_rate::<A>),
        crate::ktest!(time, wall_clock_matches_the_host::<A>),
        crate::ktest!(irq, raised_interrupt_reaches_its_handler::<A>),
        crate::ktest!(irq, unhandled_interrupt_is_reported_and_masked::<A>),
        crate::ktest!(trap, breakpoint_returns::<A>),
        crate::ktest!(trap, page_fault_reports_the_address::<A>),
        crate::ktest!(irq, counts_are_reported),
        crate::ktest!(console, io_leaves_interrupt_masking_as_it_was::<A>),
    ]
}

/// Console output and input may run with interrupts masked (the kernel
/// is not preemptible) or enabled; neither may change which.
fn io_leaves_interrupt_masking_as_it_was<A: Arch>() -> Outcome {
    let was = A::enabled();
    for enabled in [false, true] {
        if enabled {
            A::enable();
        } else {
            A::disable();
        }
        kprintln!(
            "console check with interrupts {}",
            if enabled { "on" } else { "off" }
        );
        let _ = A::read_byte();
        let now = A::enabled();
        A::disable();
        ensure_eq!(now, enabled, "interrupts enabled after console I/O");
    }
    if was {
        A::enable();
    }
    Ok(())
}

/// Waits with interrupts enabled until `done` or `timeout_ns` passes;
/// returns whether `done` became true. Spins rather than halting: some
/// waits expect no interrupt at all.
fn wait_for<A: Arch>(timeout_ns: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = A::monotonic_ns() + timeout_ns;
    A::enable();
    let mut result = false;
    while A::monotonic_ns() < deadline {
        if done() {
            result = true;
            break;
        }
        core::hint::spin_loop();
    }
    A::disable();
    result || done()
}

static CALLBACKS: AtomicU64 = AtomicU64::new(0);

fn count_callback() {
    CALLBACKS.fetch_add(1, Ordering::Relaxed);
}

/// Windows measured per rate before the rate counts as wrong. Under
/// emulation the host can stall the guest for tens of milliseconds, and
/// the emulated timer then drops the periods it missed; a rate that is
/// really wrong is wrong in every window.
const TICK_ATTEMPTS: usize = 3;

fn ticks_arrive_at_the_configured_rate<A: Arch>() -> Outcome {
    for (hz, window_ms) in [(100u32, 200u64), (1000, 100)] {
        let mut seen = [(0u64, 0u64, 0u64); TICK_ATTEMPTS];
        let mut good = false;
        for slot in seen.iter_mut() {
            CALLBACKS.store(0, Ordering::Relaxed);
            if let Err(e) = timer::start::<A>(hz, Some(count_callback)) {
                fail!("starting {hz} Hz ticks: {e}");
            }
            ensure_eq!(timer::rate_hz(), hz, "rate reported");
            let first = timer::ticks();
            let start = A::monotonic_ns();
            wait_for::<A>(window_ms * 1_000_000, || false);
            let elapsed = A::monotonic_ns() - start;
            let ticks = timer::ticks() - first;
            timer::stop::<A>();
            ensure_eq!(
                CALLBACKS.load(Ordering::Relaxed),
                ticks,
                "callbacks at {hz} Hz"
            );
            let expected = hz as u64 * elapsed / 1_000_000_000;
            *slot = (ticks, elapsed / 1_000_000, expected);
            if ticks.abs_diff(expected) <= (expected / 10).max(2) {
                good = true;
                break;
            }
        }
        ensure!(
            good,
            "{hz} Hz: (ticks, ms, expected) in {TICK_ATTEMPTS} windows: {seen:?}, \
             expected within 10%"
        );
    }
    let after_stop = timer::ticks();
    wait_for::<A>(20_000_000, || false);
    ensure_eq!(timer::ticks(), after_stop, "ticks after stopping");
    Ok(())
}

fn wall_clock_matches_the_host<A: Arch>() -> Outcome {
    let Ok(Some(host)) = Cmdline::new(A::boot_info().cmdline).get_u64("test.unix_time") else {
        fail!("the host must pass test.unix_time=<seconds since 1970>");
    };
    let Some(guest) = A::wall_clock_seconds() else {
        fail!("no wall clock")
    };
    // The host read its clock just before starting the machine.
    ensure!(
        guest.abs_diff(host) <= 120,
        "wall clock {guest}, host said {host}"
    );
    Ok(())
}

static HANDLED: AtomicU64 = AtomicU64::new(0);

fn count_handler(_irq: usize) {
    HANDLED.fetch_add(1, Ordering::Relaxed);
}

fn raised_interrupt_reaches_its_handler<A: Arch>() -> Outcome {
    let irq = A::SOFTWARE_IRQ;
    if let Err(e) = A::set_masked(irq, false) {
        fail!("unmask: {e}");
    }
    if let Err(e) = irq::register(irq, "test", count_handler) {
        fail!("register: {e}");
    }
    let (before, count_before) = (HANDLED.load(Ordering::Relaxed), irq::count(irq));
    // Raised with interrupts masked, it waits until they are enabled.
    let raised = A::raise(irq);
    let delivered =
        raised.is_ok() && wait_for::<A>(1_000_000_000, || HANDLED.load(Ordering::Relaxed) > before);
    irq::unregister(irq);
    if let Err(e) = raised {
        fail!("raise: {e}");
    }
    ensure!(delivered, "the handler never ran");
    ensure_eq!(HANDLED.load(Ordering::Relaxed), before + 1, "handler runs");
    ensure_eq!(
        irq::count(irq),
        count_before + 1,
        "count of interrupt {irq}"
    );
    Ok(())
}

fn unhandled_interrupt_is_reported_and_masked<A: Arch>() -> Outcome {
    let irq = A::SOFTWARE_IRQ;
    if let Err(e) = A::set_masked(irq, false) {
        fail!("unmask: {e}");
    }
    let (unhandled, count) = (irq::unhandled_count(), irq::count(irq));
    if let Err(e) = A::raise(irq) {
        fail!("raise: {e}");
    }
    let arrived = wait_for::<A>(1_000_000_000, || irq::unhandled_count() > unhandled);
    let _ = A::set_masked(irq, false);
    ensure!(arrived, "the unhandled interrupt was lost");
    ensure_eq!(irq::unhandled_count(), unhandled + 1, "unhandled count");
    ensure_eq!(irq::count(irq), count + 1, "count of interrupt {irq}");
    Ok(())
}

fn breakpoint_returns<A: Arch>() -> Outcome {
    let before = trap::breakpoints();
    A::breakpoint();
    ensure_eq!(trap::breakpoints(), before + 1, "breakpoints taken");
    Ok(())
}

extern "C" fn read_word(address: usize) {
    // SAFETY: only called under catch_fault, on an address expected to fault.
    unsafe { core::hint::black_box((address as *const u32).read_volatile()) };
}

fn page_fault_reports_the_address<A: Arch>() -> Outcome {
    // Inside the dynamic window, never mapped, at an odd offset.
    let Ok(page) = crate::mm::reserve_dynamic(crate::mm::PAGE_SIZE, crate::mm::PAGE_SIZE) else {
        fail!("no address space to probe");
    };
    let address = page + 0x124;
    // SAFETY: read_word holds nothing and owns nothing.
    match unsafe { A::catch_fault(read_word, address) } {
        Ok(()) => fail!("reading an unmapped page did not fault"),
        Err(fault) => {
            ensure_eq!(fault.address, address, "reported address");
            ensure_eq!(fault.kind, FaultKind::NotMapped, "kind");
            ensure_eq!(fault.access, Some(Access::Read), "access");
        }
    }
    Ok(())
}

fn receive_interrupt_delivers_host_input<A: Arch>() -> Outcome {
    let Some(expected) = Cmdline::new(A::boot_info().cmdline).get("test.input") else {
        fail!("the host must pass test.input=<line it will type>");
    };
    let irq = match console::enable_input::<A>() {
        Ok(irq) => irq,
        Err(e) => fail!("{e}"),
    };
    let count = irq::count(irq);
    // The host types the line when it sees this.
    kprintln!("ktest: input please");
    let mut line = [0u8; 64];
    let mut len = 0;
    let complete = wait_for::<A>(10_000_000_000, || {
        while let Some(byte) = console::read_input() {
            if byte == b'\n' || byte == b'\r' {
                return true;
            }
            if len < line.len() {
                line[len] = byte;
                len += 1;
            }
        }
        false
    });
    let _ = A::set_masked(irq, true);
    ensure!(
        complete,
        "no line from the host within 10 s (got {:?})",
        core::str::from_utf8(&line[..len])
    );
    ensure_eq!(
        core::str::from_utf8(&line[..len]).unwrap_or(""),
        expected,
        "line typed by the host"
    );
    ensure!(
        irq::count(irq) > count,
        "the bytes did not come through interrupt {irq}"
    );
    Ok(())
}

fn counts_are_reported() -> Outcome {
    let mut lines = 0;
    irq::for_each_count(|irq, count| {
        kprintln!("  interrupt {irq:>3}: {count}");
        lines += 1;
    });
    kprintln!(
        "  spurious: {}, unhandled: {}",
        irq::spurious_count(),
        irq::unhandled_count()
    );
    ensure!(
        lines >= 2,
        "only {lines} interrupts have counts after the tests above"
    );
    Ok(())
}
