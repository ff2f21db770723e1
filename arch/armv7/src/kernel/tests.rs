//! In-kernel tests of the ARMv7 specifics.

use crate::arch::Armv7;
use crate::cp15::{Ats1Cpr, Ttbcr, Ttbr1};
use crate::{console, memory};
use crate::{device_tree, interrupts};
use aarch32_cpu::register::{Par, SysRegRead, SysRegWrite};
use arch_armv7::dtb::{self, DtbError};
use arch_armv7::{board, layout};
use hal::mm::{MapFlags, Space};
use hal::{Memory, Platform};
use kernel::cmdline::Cmdline;
use kernel::ktest::{Outcome, Test};
use kernel::{ensure, ensure_eq, fail};

pub static ARCH_TESTS: [Test; 12] = [
    kernel::ktest!(mmu, pxn_stops_the_kernel_executing_user_pages),
    kernel::ktest!(irq, spurious_acknowledge_is_counted),
    kernel::ktest!(interrupts, gic_from_the_device_tree),
    kernel::ktest!(console, pl011_loopback),
    kernel::ktest!(firmware, device_tree_memory_matches_ram),
    kernel::ktest!(firmware, device_tree_devices_match_board),
    kernel::ktest!(firmware, qemu_added_virtio_transports),
    kernel::ktest!(firmware, corrupt_device_tree_is_refused),
    kernel::ktest!(mmu, translation_matches_layout),
    kernel::ktest!(cpu, svc_mode_with_per_mode_stacks),
    kernel::ktest!(mmu, user_tables_at_8k_alignment_switch),
    kernel::ktest!(mmu, asids_tag_spaces_and_switches_flush_only_stale_tags),
];

/// Calls the code at `address`.
extern "C" fn call_user_code(address: usize) {
    // SAFETY: the caller maps code there, or expects the call to fault.
    let code: extern "C" fn() = unsafe { core::mem::transmute(address) };
    code();
}

/// A user page mapped executable (a `bx lr` in it) faults when the kernel
/// calls it: the L1 entry over user memory has PXN set, so the kernel
/// never runs user code (ARMv7's counterpart of SMEP).
fn pxn_stops_the_kernel_executing_user_pages() -> Outcome {
    use hal::mm::{MapFlags, PAGE_SIZE, Space};
    use hal::trap::{Access, FaultKind};
    use kernel::mm::frames::{self, KernelFrames};
    let kernel_frames = &KernelFrames;
    let Ok(root) = Armv7::create_space(kernel_frames) else {
        fail!("no user space");
    };
    let Ok(frame) = frames::allocate_zeroed(1, PAGE_SIZE) else {
        Armv7::destroy_space(root, kernel_frames);
        fail!("no frame");
    };
    // SAFETY: the frame is ours; `bx lr` through the direct map.
    unsafe { (frames::to_virt(frame) as *mut u32).write_volatile(0xe12f_ff1e) };
    let page = abi::layout::IMAGE_BASE;
    let outcome = match Armv7::map(
        Space::User(root),
        page,
        frame,
        PAGE_SIZE,
        MapFlags::USER_RX,
        kernel_frames,
    ) {
        Err(e) => Err(kernel::ktest::Failure::new(
            file!(),
            line!(),
            format_args!("map: {e}"),
        )),
        Ok(()) => {
            Armv7::activate(Some(root));
            // SAFETY: the probe holds no locks and owns nothing.
            let result = unsafe { <Armv7 as hal::Cpu>::catch_fault(call_user_code, page) };
            Armv7::activate(None);
            match result {
                Err(fault)
                    if fault.kind == FaultKind::Permission
                        && fault.access == Some(Access::Execute)
                        && fault.address == page =>
                {
                    Ok(())
                }
                other => Err(kernel::ktest::Failure::new(
                    file!(),
                    line!(),
                    format_args!("the kernel calling a user page: {other:?}"),
                )),
            }
        }
    };
    let _ = Armv7::unmap(Space::User(root), page);
    frames::free(frame, 1);
    Armv7::destroy_space(root, kernel_frames);
    outcome
}

fn pl011_loopback() -> Outcome {
    if let Err(error) = console::loopback_check() {
        fail!("UART loopback: {error}");
    }
    Ok(())
}

fn tree() -> Result<&'static (&'static [u8], dtb::DeviceTreeInfo<'static>), kernel::ktest::Failure>
{
    device_tree::get().ok_or_else(|| {
        kernel::ktest::Failure::new(file!(), line!(), format_args!("no device tree recorded"))
    })
}

fn device_tree_memory_matches_ram() -> Outcome {
    let (_, info) = tree()?;
    let Ok(Some(mib)) = Cmdline::new(Armv7::boot_info().cmdline).get_u64("test.ram_mib") else {
        fail!("the host must pass test.ram_mib");
    };
    let memory = info.memory.as_slice();
    ensure_eq!(memory.len(), 1, "memory ranges");
    ensure_eq!(memory[0].address, layout::RAM_BASE as u64, "RAM base");
    ensure_eq!(memory[0].size, mib << 20, "RAM size");
    Ok(())
}

fn device_tree_devices_match_board() -> Outcome {
    let (_, info) = tree()?;
    ensure_eq!(info.compatible, board::COMPATIBLE[0], "root compatible");
    let Some(uart) = info.console_uart else {
        fail!("no console UART")
    };
    ensure_eq!(uart.reg.address, board::UART0.base as u64, "UART0 base");
    ensure_eq!(
        uart.interrupts.as_slice(),
        &[board::gic_id(board::UART0.spis[0])],
        "UART0 interrupt"
    );
    ensure_eq!(uart.clock_hz, Some(board::UART_CLOCK_HZ), "UART clock");
    let Some(gic) = info.gic else { fail!("no GIC") };
    ensure_eq!(
        gic.distributor.address,
        board::GIC_DISTRIBUTOR as u64,
        "GIC distributor"
    );
    ensure_eq!(
        gic.cpu_interface.address,
        board::GIC_CPU_INTERFACE as u64,
        "GIC CPU interface"
    );
    let Some(timer) = info.sp804 else {
        fail!("no SP804")
    };
    ensure_eq!(
        timer.reg.address,
        board::SP804_TIMER01.base as u64,
        "SP804 base"
    );
    ensure_eq!(timer.interrupts.as_slice(), &[34], "SP804 interrupts");
    let Some(rtc) = info.pl031 else {
        fail!("no PL031")
    };
    ensure_eq!(rtc.interrupts.as_slice(), &[36], "PL031 interrupt");
    ensure_eq!(info.skipped_nodes, 0, "nodes not understood");
    Ok(())
}

fn qemu_added_virtio_transports() -> Outcome {
    let (_, info) = tree()?;
    let transports = info.virtio_mmio.as_slice();
    ensure_eq!(
        transports.len(),
        board::VIRTIO_MMIO_COUNT as usize,
        "transports QEMU added"
    );
    for i in 0..board::VIRTIO_MMIO_COUNT {
        let base = (board::VIRTIO_MMIO_BASE + i * board::VIRTIO_MMIO_STRIDE) as u64;
        let Some(t) = transports.iter().find(|t| t.reg.address == base) else {
            fail!("no transport at {base:#x}");
        };
        ensure_eq!(
            t.interrupts.as_slice(),
            &[board::gic_id(board::VIRTIO_MMIO_FIRST_SPI + i)],
            "interrupt of the transport at {base:#x}"
        );
    }
    Ok(())
}

/// A corruption: what it is, how to apply it to a blob whose structure
/// block starts at the given offset, and which error must result.
type CorruptionCase = (&'static str, fn(&mut [u8], usize), fn(&DtbError) -> bool);

fn corrupt_device_tree_is_refused() -> Outcome {
    let (live, _) = tree()?;
    // Copy only the used part: QEMU leaves free space for edits at the end.
    let Some(used) = dtb::used_size(live) else {
        fail!("live tree has no readable header")
    };
    ensure!(
        used <= 8192,
        "tree of {used} bytes exceeds the scratch buffer"
    );
    let mut scratch = [0u8; 8192];
    let mut blob = [0u8; 8192];
    blob[..used].copy_from_slice(&live[..used]);
    blob[4..8].copy_from_slice(&(used as u32).to_be_bytes());
    let blob = &blob[..used];
    let copy = &mut scratch[..used];
    let structure = u32::from_be_bytes(blob[8..12].try_into().unwrap_or_default()) as usize;
    let cases: [CorruptionCase; 4] = [
        (
            "bad magic",
            |b, _| b[0] = 0,
            |e| matches!(e, DtbError::BadMagic(_)),
        ),
        (
            "size beyond the blob",
            |b, _| b[4] = 0x7f,
            |e| *e == DtbError::Truncated,
        ),
        (
            "bad token",
            |b, s| b[s + 3] = 0x77,
            |e| matches!(e, DtbError::BadToken { .. }),
        ),
        (
            "property past the block",
            |b, s| b[s + 12] = 0x7f,
            |e| matches!(e, DtbError::PropertyOutOfBounds { .. }),
        ),
    ];
    ensure!(
        dtb::parse(blob).is_ok(),
        "the live tree itself does not parse"
    );
    for (what, corrupt, expected) in cases {
        copy.copy_from_slice(blob);
        corrupt(copy, structure);
        match dtb::parse(copy) {
            Ok(_) => fail!("{what}: accepted"),
            Err(error) => ensure!(expected(&error), "{what}: wrong error {error}"),
        }
    }
    Ok(())
}

static TRANSLATION_PROBE: u32 = 0x5a5a_5a5a;

/// Asks the MMU itself (ATS1CPR) where a kernel virtual address goes.
fn hardware_translate(virt: u32) -> u32 {
    // SAFETY: an address translation operation: no memory is accessed,
    // and only PAR changes.
    unsafe { Ats1Cpr::write_raw(virt) };
    aarch32_cpu::asm::isb();
    Par::read().0
}

fn translation_matches_layout() -> Outcome {
    let (ttbr1, ttbcr) = (Ttbr1::read_raw(), Ttbcr::read_raw());
    ensure_eq!(
        ttbr1 & !0x3fff,
        memory::kernel_l1_paddr(),
        "TTBR1 points at the kernel table"
    );
    ensure_eq!(
        ttbcr & 0x7,
        layout::TTBCR_N,
        "TTBCR.N: user half below 2 GiB"
    );

    let virt = &raw const TRANSLATION_PROBE as u32;
    let par = hardware_translate(virt);
    ensure!(par & 1 == 0, "translating {virt:#x} aborted: PAR {par:#x}");
    ensure_eq!(
        par & !0xfff,
        (virt - layout::KERNEL_VIRT_OFFSET) & !0xfff,
        "physical address of {virt:#x}"
    );

    // RAM past the image: a direct-map section.
    let ram = layout::KERNEL_VIRT_BASE as usize + (8 << 20);
    let Some(t) = Armv7::translate(Space::Kernel, ram) else {
        fail!("direct map missing at {ram:#x}")
    };
    ensure_eq!(
        (t.paddr, t.flags, t.page_size),
        (
            (layout::RAM_BASE + (8 << 20)) as u64,
            MapFlags::KERNEL_RW,
            1 << 20
        ),
        "direct map"
    );

    let uart = console::base();
    ensure!(
        (layout::MMIO_BASE..layout::MMIO_BASE + layout::MMIO_SIZE).contains(&(uart as u32)),
        "UART mapped at {uart:#x}, outside the MMIO window"
    );
    let Some(t) = Armv7::translate(Space::Kernel, uart) else {
        fail!("console not mapped")
    };
    ensure_eq!(t.flags, MapFlags::KERNEL_DEVICE, "console mapping");
    ensure_eq!(
        t.paddr,
        board::UART0.base as u64,
        "console physical address"
    );
    Ok(())
}

/// The stack pointer banked for processor mode `mode`.
fn banked_sp(mode: u32) -> u32 {
    let sp: u32;
    // SAFETY: interrupts are masked around the excursion, the other mode's
    // stack is not touched, and SVC mode is restored before returning.
    unsafe {
        core::arch::asm!(
            "mrs {saved}, cpsr",
            "cpsid if",
            "msr cpsr_c, {mode}",
            "mov {sp}, sp",
            "msr cpsr_c, {saved}",
            saved = out(reg) _,
            mode = in(reg) mode | 0xc0,
            sp = out(reg) sp,
            options(nostack)
        );
    }
    sp
}

fn svc_mode_with_per_mode_stacks() -> Outcome {
    let cpsr = aarch32_cpu::register::Cpsr::read().raw_value();
    ensure_eq!(cpsr & 0x1f, 0x13, "processor mode (SVC)");
    let image = Armv7::boot_info().kernel_image;
    let mut seen = [0u32; 4];
    for (i, (name, mode)) in [
        ("IRQ", 0x12),
        ("abort", 0x17),
        ("undefined", 0x1b),
        ("FIQ", 0x11),
    ]
    .into_iter()
    .enumerate()
    {
        let sp = banked_sp(mode);
        let phys = sp.wrapping_sub(layout::KERNEL_VIRT_OFFSET) as u64;
        ensure!(
            image.start < phys && phys <= image.end,
            "{name} stack {sp:#x} outside the kernel image"
        );
        ensure!(sp.is_multiple_of(8), "{name} stack {sp:#x} misaligned");
        ensure!(
            !seen.contains(&sp),
            "{name} stack {sp:#x} shared with another mode"
        );
        seen[i] = sp;
    }
    Ok(())
}

fn spurious_acknowledge_is_counted() -> Outcome {
    let before = kernel::irq::spurious_count();
    // An IRQ exception with nothing pending at the GIC (it answers 1023).
    interrupts::disable_interrupts();
    crate::interrupts::handle_irq();
    ensure_eq!(kernel::irq::spurious_count(), before + 1, "spurious count");
    Ok(())
}

fn gic_from_the_device_tree() -> Outcome {
    let Some(lines) = crate::interrupts::gic_lines() else {
        fail!("no GIC")
    };
    ensure_eq!(lines, 96, "GIC lines on vexpress-a15");
    Ok(())
}

/// User L1 tables are 8 KiB aligned (TTBCR.N = 1), so two may share their
/// 16 KiB-aligned bits: switching between such a pair must still switch,
/// and destroying the active one must stop walks through it.
fn user_tables_at_8k_alignment_switch() -> Outcome {
    let frames = &kernel::mm::frames::KernelFrames;
    let mut roots = alloc::vec::Vec::new();
    // Enough tables that two fall in one 16 KiB block.
    let mut pair = None;
    for _ in 0..8 {
        let Ok(root) = Armv7::create_space(frames) else {
            break;
        };
        if let Some(&other) = roots
            .iter()
            .find(|r: &&hal::RootTable| r.0 ^ root.0 == 0x2000)
        {
            pair = Some((other, root));
        }
        roots.push(root);
    }
    let outcome = match pair {
        None => Err(kernel::ktest::Failure::new(
            file!(),
            line!(),
            format_args!("no two tables in one 16 KiB block among {roots:x?}"),
        )),
        Some((a, b)) => {
            Armv7::activate(Some(a));
            let first = memory::active_user_table();
            Armv7::activate(Some(b));
            let second = memory::active_user_table();
            Armv7::destroy_space(b, frames);
            let after_destroy = memory::active_user_table();
            roots.retain(|r| *r != b);
            Armv7::activate(None);
            if (first, second, after_destroy) == (Some(a.0 as u32), Some(b.0 as u32), None) {
                Ok(())
            } else {
                Err(kernel::ktest::Failure::new(
                    file!(),
                    line!(),
                    format_args!(
                        "active tables {first:x?}, {second:x?}, after destroy {after_destroy:x?} (a {:#x}, b {:#x})",
                        a.0, b.0
                    ),
                ))
            }
        }
    };
    for root in roots {
        Armv7::destroy_space(root, frames);
    }
    outcome
}

/// Two spaces map the same user address to different frames: each sees
/// its own through switches that flush nothing once each ASID is its own.
fn asids_tag_spaces_and_switches_flush_only_stale_tags() -> Outcome {
    use crate::asid;
    use hal::mm::PAGE_SIZE;
    use kernel::mm::frames::{self, KernelFrames};
    let kernel_frames = &KernelFrames;
    let Ok(a) = Armv7::create_space(kernel_frames) else {
        fail!("no user space");
    };
    // Tags follow from where the tables are; two spaces whose tables
    // share a tag take turns flushing it, which is a different test.
    let tag = |root: hal::RootTable| hal::asid::Tags::<256>::tag(root.0);
    let mut colliding = alloc::vec::Vec::new();
    let b = loop {
        match Armv7::create_space(kernel_frames) {
            Ok(b) if tag(b) != tag(a) => break b,
            Ok(b) if colliding.len() < 8 => colliding.push(b),
            _ => fail!("no user space with a tag of its own"),
        }
    };
    for root in colliding {
        Armv7::destroy_space(root, kernel_frames);
    }
    let (Ok(frame_a), Ok(frame_b)) = (
        frames::allocate_zeroed(1, PAGE_SIZE),
        frames::allocate_zeroed(1, PAGE_SIZE),
    ) else {
        fail!("no frames");
    };
    // SAFETY: the frames are ours; written through the direct map.
    unsafe {
        (frames::to_virt(frame_a) as *mut u32).write_volatile(0xaaaa);
        (frames::to_virt(frame_b) as *mut u32).write_volatile(0xbbbb);
    }
    let page = abi::layout::IMAGE_BASE;
    let flushes = asid::flushes();
    let check = |root: hal::RootTable, value: u32, expected_flushes: u64| -> Outcome {
        Armv7::activate(Some(root));
        ensure_eq!(
            asid::current() as usize,
            hal::asid::Tags::<256>::tag(root.0),
            "CONTEXTIDR's ASID"
        );
        // SAFETY: the page is mapped readable in the active space; the
        // kernel may read user pages.
        let seen = unsafe { (page as *const u32).read_volatile() };
        ensure_eq!(seen, value, "what the user address holds");
        ensure_eq!(asid::flushes() - flushes, expected_flushes, "flushes");
        Ok(())
    };
    let outcome = (|| {
        for (root, frame) in [(a, frame_a), (b, frame_b)] {
            if Armv7::map(
                Space::User(root),
                page,
                frame,
                PAGE_SIZE,
                MapFlags::USER_RO,
                kernel_frames,
            )
            .is_err()
            {
                fail!("map");
            }
        }
        check(a, 0xaaaa, 1)?;
        check(b, 0xbbbb, 2)?;
        check(a, 0xaaaa, 2)?;
        check(b, 0xbbbb, 2)
    })();
    Armv7::activate(None);
    ensure_eq!(asid::current(), 0, "no user half: the reserved ASID");
    Armv7::destroy_space(a, kernel_frames);
    Armv7::destroy_space(b, kernel_frames);
    frames::free(frame_a, 1);
    frames::free(frame_b, 1);
    outcome
}
