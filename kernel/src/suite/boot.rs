//! Boot information, time and CPU basics.

use crate::cmdline::Cmdline;
use crate::ktest::{Outcome, Test};
use crate::{ensure, ensure_eq, fail};
use hal::{Arch, MemoryKind, boot::ByteSize};

pub(super) fn tests<A: Arch>() -> [Test; 6] {
    [
        crate::ktest!(boot, memory_map_sorted_and_disjoint::<A>),
        crate::ktest!(boot, ram_matches_configured_size::<A>),
        crate::ktest!(boot, kernel_image_lies_in_ram::<A>),
        crate::ktest!(boot, machine_matches_host::<A>),
        crate::ktest!(time, monotonic_clock_advances::<A>),
        crate::ktest!(cpu, interrupt_mask_toggles::<A>),
    ]
}

fn memory_map_sorted_and_disjoint<A: Arch>() -> Outcome {
    let regions = A::boot_info().memory.regions();
    ensure!(!regions.is_empty(), "the memory map is empty");
    for region in regions {
        ensure!(
            region.range.start < region.range.end,
            "empty region {region}"
        );
    }
    for pair in regions.windows(2) {
        ensure!(
            pair[0].range.end <= pair[1].range.start,
            "regions out of order or overlapping: {} / {}",
            pair[0],
            pair[1]
        );
        ensure!(
            pair[0].range.end != pair[1].range.start || pair[0].kind != pair[1].kind,
            "neighbours of one kind not merged: {} / {}",
            pair[0],
            pair[1]
        );
    }
    Ok(())
}

/// Firmware keeps a little RAM for itself (real-mode areas, its own tables),
/// so the map may show up to this much less than the machine has.
const FIRMWARE_RAM_ALLOWANCE: u64 = 2 << 20;

fn ram_matches_configured_size<A: Arch>() -> Outcome {
    let boot = A::boot_info();
    let Ok(Some(mib)) = Cmdline::new(boot.cmdline).get_u64("test.ram_mib") else {
        fail!("the host must pass test.ram_mib=<MiB given to the machine>");
    };
    let configured = mib << 20;
    let ram = boot.memory.total_ram();
    ensure!(
        ram <= configured && ram + FIRMWARE_RAM_ALLOWANCE >= configured,
        "map shows {} of RAM, machine has {}",
        ByteSize(ram),
        ByteSize(configured)
    );
    ensure!(
        boot.memory.total(MemoryKind::Usable) > 0,
        "no usable memory in the map"
    );
    Ok(())
}

fn kernel_image_lies_in_ram<A: Arch>() -> Outcome {
    let boot = A::boot_info();
    let image = boot.kernel_image;
    ensure!(
        image.start < image.end,
        "empty kernel image range {image:?}"
    );
    let covered = boot
        .memory
        .regions()
        .iter()
        .any(|r| r.kind.is_ram() && r.range.start <= image.start && image.end <= r.range.end);
    ensure!(
        covered,
        "kernel image {image:#x?} is not inside one RAM region"
    );
    Ok(())
}

fn machine_matches_host<A: Arch>() -> Outcome {
    let boot = A::boot_info();
    let Some(expected) = Cmdline::new(boot.cmdline).get("test.machine") else {
        fail!("the host must pass test.machine=<machine name>");
    };
    ensure_eq!(boot.machine, expected, "detected machine");
    Ok(())
}

fn monotonic_clock_advances<A: Arch>() -> Outcome {
    let first = A::monotonic_ns();
    let cycles = A::cycle_counter();
    let mut previous = first;
    for _ in 0..10_000 {
        let now = A::monotonic_ns();
        ensure!(
            now >= previous,
            "clock went back from {previous} to {now} ns"
        );
        previous = now;
    }
    ensure!(previous > first, "clock did not advance over 10000 reads");
    let elapsed = A::cycles_between(cycles, A::cycle_counter());
    ensure!(
        elapsed > 10_000,
        "cycle counter advanced only {elapsed} over 10000 clock reads"
    );
    Ok(())
}

fn interrupt_mask_toggles<A: Arch>() -> Outcome {
    let before = A::enabled();
    A::disable();
    ensure!(!A::enabled(), "interrupts still enabled after disable");
    let inside = A::without(A::enabled);
    ensure!(!inside, "interrupts enabled inside a without() section");
    if before {
        A::enable();
    }
    ensure_eq!(A::enabled(), before, "interrupt state restored");
    Ok(())
}
