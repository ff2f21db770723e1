//! The in-kernel benchmarks, run with `mode=bench`.
//!
//! Each metric is sampled many times; a sample is the cycle-counter
//! difference over a batch of operations, divided by the batch size, minus
//! the cost of the measurement itself (an empty batch, measured in the same
//! run). Under QEMU's `-icount shift=0` the counter counts instructions, so
//! samples are instructions per operation. Results are printed one metric
//! per line for `cargo xtask bench`, which computes the statistics:
//!
//! ```text
//! kbench: metric frame_alloc_free instructions 212 212 213 ...
//! ```

use crate::mm::frames::{self, KernelFrames};
use crate::mm::{self, PAGE_SIZE};
use crate::{irq, kprintln, timer};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::hint::black_box;
use hal::Arch;
use hal::mm::{MapFlags, Space};

/// Samples per metric.
const SAMPLES: usize = 101;
/// Operations per sample.
const BATCH: u64 = 32;

/// Per-operation counts of `op`, measurement overhead not subtracted.
fn sample<A: Arch>(mut op: impl FnMut()) -> Vec<u64> {
    let mut samples = Vec::with_capacity(SAMPLES);
    // One warm-up batch: first-touch effects are not what is measured.
    for _ in 0..BATCH {
        op();
    }
    for _ in 0..SAMPLES {
        let start = A::cycle_counter();
        for _ in 0..BATCH {
            op();
        }
        let end = A::cycle_counter();
        samples.push(A::cycles_between(start, end) / BATCH);
    }
    samples
}

fn print(name: &str, unit: &str, samples: &[u64]) {
    crate::console::print(format_args!("kbench: metric {name} {unit}"));
    for value in samples {
        crate::console::print(format_args!(" {value}"));
    }
    kprintln!();
}

/// Bytes of RAM the kernel holds: the image, what the boot path reserved
/// for it (page tables), the first heap chunk and every frame taken since.
pub fn resident_bytes<A: Arch>() -> u64 {
    let boot = A::boot_info();
    let boot_allocations: u64 = boot
        .reserved
        .as_slice()
        .iter()
        .filter(|r| r.name.starts_with("kernel"))
        .map(|r| r.range.size())
        .sum();
    let (total, free) = frames::counts();
    boot_allocations + mm::heap::INITIAL_SIZE as u64 + ((total - free) * PAGE_SIZE) as u64
}

/// Runs every benchmark and prints the results.
pub fn run<A: Arch>() {
    kprintln!("kbench: begin");
    // Before anything else allocates.
    print("kernel_resident_memory", "bytes", &[resident_bytes::<A>()]);

    let overhead = sample::<A>(|| {});
    let floor = *overhead.iter().min().unwrap_or(&0);
    print("measurement_overhead", "instructions", &overhead);
    let net = |samples: Vec<u64>| -> Vec<u64> {
        samples
            .into_iter()
            .map(|s| s.saturating_sub(floor))
            .collect()
    };

    print(
        "frame_alloc_free",
        "instructions",
        &net(sample::<A>(|| {
            if let Ok(frame) = frames::allocate(1, PAGE_SIZE) {
                frames::free(black_box(frame), 1);
            }
        })),
    );
    match scattered_frees::<A>() {
        Some(samples) => print("frame_free_scattered", "instructions", &net(samples)),
        None => kprintln!("kbench: skipped frame_free_scattered: no heap for the list of frames"),
    }
    print(
        "heap_alloc_free_small",
        "instructions",
        &net(sample::<A>(|| {
            drop(black_box(Box::new(black_box([0u64; 4]))));
        })),
    );
    print(
        "heap_alloc_free_page",
        "instructions",
        &net(sample::<A>(|| {
            drop(black_box(Vec::<u8>::with_capacity(PAGE_SIZE)));
        })),
    );
    if let Ok(frame) = frames::allocate(1, PAGE_SIZE) {
        let page = frames::to_virt(frame);
        print(
            "zero_page",
            "instructions",
            &net(sample::<A>(|| {
                // SAFETY: the frame was allocated for this measurement.
                unsafe { A::zero_pages(black_box(page), PAGE_SIZE) };
            })),
        );
        frames::free(frame, 1);
    }
    match (
        mm::reserve_dynamic(PAGE_SIZE, PAGE_SIZE),
        frames::allocate(1, PAGE_SIZE),
    ) {
        (Ok(virt), Ok(frame)) => print(
            "map_unmap_4k",
            "instructions",
            &net(sample::<A>(|| {
                let mapped = A::map(
                    Space::Kernel,
                    virt,
                    frame,
                    PAGE_SIZE,
                    MapFlags::KERNEL_RW,
                    &KernelFrames,
                );
                if mapped.is_ok() {
                    let _ = black_box(A::unmap(Space::Kernel, virt));
                }
            })),
        ),
        _ => kprintln!("kbench: skipped map_unmap_4k: no address space or frame"),
    }
    interrupt_round_trips::<A>();
    kprintln!("kbench: end");
}

/// The cost of freeing every free frame one by one in a scrambled order,
/// after taking them all: the pattern whose cost grows with RAM in an
/// allocator that is not constant-time. One sample per slice of the frees,
/// so the samples span free lists from empty to full.
fn scattered_frees<A: Arch>() -> Option<Vec<u64>> {
    let mut taken = crate::suite::take_every_free_frame().ok()?;
    crate::suite::XorShift::new(0x5eed_f4ee).shuffle(&mut taken);
    let slice = taken.len().div_ceil(SAMPLES).max(1);
    let mut samples = Vec::with_capacity(SAMPLES);
    for piece in taken.chunks(slice) {
        let start = A::cycle_counter();
        for &frame in piece {
            frames::free(black_box(frame), 1);
        }
        let end = A::cycle_counter();
        samples.push(A::cycles_between(start, end) / piece.len() as u64);
    }
    Some(samples)
}

fn nothing(_irq: usize) {}

/// Instructions for a fixed amount of work, measured as one interval.
fn measure_work<A: Arch>() -> u64 {
    let start = A::cycle_counter();
    for i in 0..WORK_ITERATIONS {
        black_box(i);
    }
    A::cycles_between(start, A::cycle_counter())
}

/// Loop iterations of the work the timer interrupts: long enough for tens
/// of ticks at [`TICK_HZ`].
const WORK_ITERATIONS: u32 = 2_000_000;
/// A fast tick, so the work is interrupted often.
const TICK_HZ: u32 = 10_000;

fn interrupt_round_trips<A: Arch>() {
    // A software interrupt through the interrupt controller: raised, taken
    // at once (interrupts enabled), dispatched to an empty handler, ended.
    let irq = A::SOFTWARE_IRQ;
    if irq::register(irq, "bench", nothing).is_ok() && A::set_masked(irq, false).is_ok() {
        A::enable();
        let samples = sample::<A>(|| {
            let _ = A::raise(irq);
        });
        A::disable();
        irq::unregister(irq);
        print("irq_software_round_trip", "instructions", &samples);
    } else {
        kprintln!("kbench: skipped irq_software_round_trip: interrupt {irq} unavailable");
    }

    // The timer interrupt: the extra cost of a fixed amount of work while
    // ticks arrive, per tick.
    let quiet = measure_work::<A>();
    let mut per_tick = Vec::with_capacity(SAMPLES / 4);
    if timer::start::<A>(TICK_HZ, None).is_ok() {
        for _ in 0..SAMPLES / 4 {
            let ticks = timer::ticks();
            A::enable();
            let busy = measure_work::<A>();
            A::disable();
            if let Some(cost) = busy
                .saturating_sub(quiet)
                .checked_div(timer::ticks() - ticks)
            {
                per_tick.push(cost);
            }
        }
        timer::stop::<A>();
        print("timer_irq_round_trip", "instructions", &per_tick);
    } else {
        kprintln!("kbench: skipped timer_irq_round_trip: no timer");
    }
}
