//! In-kernel tests of the x86_64 specifics.

use crate::arch::X86_64;
use crate::{console, memory};
use arch_x86_64::layout;
use hal::{FirmwareTables, Memory, Platform};
use kernel::ktest::{Outcome, Test};
use kernel::mm::frames::KernelFrames;
use kernel::{ensure, ensure_eq, fail, skip};
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};

pub static ARCH_TESTS: [Test; 11] = [
    kernel::ktest!(
        time,
        the_clock_is_refined_against_the_pit_and_stays_continuous
    ),
    kernel::ktest!(irq, spurious_vector_is_counted),
    kernel::ktest!(interrupts, madt_matches_the_machine),
    kernel::ktest!(console, uart16550_loopback),
    kernel::ktest!(firmware, acpi_rsdp_is_valid),
    kernel::ktest!(cpu, long_mode_with_nx_and_write_protect),
    kernel::ktest!(paging, kernel_window_aliases_physical),
    kernel::ktest!(user, smep_and_smap_stop_the_kernel_at_user_pages),
    kernel::ktest!(paging, pcids_tag_spaces_and_switches_flush_only_stale_tags),
    kernel::ktest!(interrupts, device_lines_are_routed_masked),
    kernel::ktest!(pci, q35s_functions_are_found_and_their_bars_sound),
];

/// q35's PCI functions are found through ECAM: the host bridge at 00:00.0
/// (8086:29c0), the LPC bridge at 00:1f.0 (8086:2918); every BAR found is
/// sound (trusted or placed, none refused), aligned to its size, none
/// overlapping another, and every function decodes. microvm has no PCI.
fn q35s_functions_are_found_and_their_bars_sound() -> Outcome {
    use drivers::pci::Address;
    use drivers::pci::bars::State;
    let Some(bus) = crate::pci::bus() else {
        ensure_eq!(crate::machine::detect(), "microvm", "a machine without PCI");
        return Ok(());
    };
    ensure_eq!(crate::machine::detect(), "q35", "a machine with PCI");
    let find = |address: Address| {
        bus.functions
            .as_slice()
            .iter()
            .find(|f| f.address == address)
            .map(|f| (f.vendor, f.device, f.class))
    };
    ensure_eq!(
        find(Address::new(0, 0, 0)),
        Some((0x8086, 0x29c0, 0x06)),
        "the host bridge"
    );
    ensure_eq!(
        find(Address::new(0, 0x1f, 0)),
        Some((0x8086, 0x2918, 0x06)),
        "the LPC bridge"
    );
    ensure_eq!(bus.refused, 0, "functions left off");
    let bars = bus.bars.as_slice();
    ensure!(!bars.is_empty(), "q35's functions have BARs");
    for (n, bar) in bars.iter().enumerate() {
        ensure!(
            matches!(bar.state, State::Trusted | State::Placed),
            "{} BAR {}: {:?}",
            bar.owner,
            bar.index,
            bar.state
        );
        ensure!(
            bar.base != 0 && bar.base.is_multiple_of(bar.size),
            "{bar:?}"
        );
        for other in &bars[n + 1..] {
            let apart = bar.space != other.space
                || bar.base + bar.size <= other.base
                || other.base + other.size <= bar.base;
            ensure!(apart, "{bar:?} overlaps {other:?}");
        }
    }
    Ok(())
}

/// Every line left to drivers is routed to its vector, masked until
/// claimed. microvm's VirtIO transports are all listed (each answers with
/// the VirtIO magic, and the place after the last does not), on the
/// level-triggered lines QEMU wires them to: 24 transports from global
/// interrupt 24 with a second I/O APIC, else 8 from 16 (ACPI) or 5. q35
/// has no VirtIO-MMIO.
fn device_lines_are_routed_masked() -> Outcome {
    use crate::interrupts;
    use hal::DeviceRegisters;
    let devices = X86_64::user_devices();
    let transports: alloc::vec::Vec<_> = devices
        .iter()
        .filter(|device| device.name == "virtio-mmio")
        .collect();
    if crate::machine::detect() != "microvm" {
        ensure_eq!(transports.len(), 0, "VirtIO-MMIO transports off microvm");
    } else {
        let (apics, from_acpi) = interrupts::io_apics().unwrap_or((0, false));
        let first_gsi = match (transports.len(), apics, from_acpi) {
            (24, 2.., true) => 24,
            (8, 1, true) => 16,
            (8, _, false) => 5,
            (count, ..) => fail!("{count} transports with {apics} I/O APIC(s)"),
        };
        const VIRTIO_MAGIC: u32 = 0x7472_6976;
        let magic_at = |address: u64| -> Result<u32, kernel::ktest::Failure> {
            match X86_64::map_device(address & !0xfff, 4096, &KernelFrames) {
                // SAFETY: just mapped as device memory; the magic is the
                // first register, within the page.
                Ok(virt) => Ok(unsafe {
                    ((virt + (address & 0xfff) as usize) as *const u32).read_volatile()
                }),
                Err(_) => Err(kernel::ktest::Failure::new(
                    file!(),
                    line!(),
                    format_args!("cannot map {address:#x}"),
                )),
            }
        };
        let mut end = 0;
        for (n, transport) in transports.iter().enumerate() {
            let DeviceRegisters::Memory { base, size } = transport.registers else {
                fail!("transport {n} has no registers");
            };
            ensure_eq!(magic_at(base)?, VIRTIO_MAGIC, "a transport's magic");
            // A line another device has is not shared.
            let line = interrupts::gsi_irq(first_gsi + n as u32);
            let taken = devices
                .iter()
                .any(|other| other.name != "virtio-mmio" && other.irq == Some(line));
            ensure_eq!(
                transport.irq,
                (!taken).then_some(line),
                "a transport's line"
            );
            end = base + size;
        }
        ensure!(
            magic_at(end)? != VIRTIO_MAGIC,
            "a transport beyond the last listed"
        );
    }
    for device in devices {
        let Some(irq) = device.irq else { continue };
        let Some(gsi) = (0..64).find(|&gsi| interrupts::gsi_irq(gsi) == irq) else {
            fail!("{}'s line {irq} is no global interrupt", device.name);
        };
        let Ok((vector, masked, signal)) = interrupts::gsi_route(gsi) else {
            fail!("no I/O APIC serves global interrupt {gsi}");
        };
        ensure_eq!(
            vector as usize,
            irq + crate::interrupts::FIRST_VECTOR as usize,
            "vector"
        );
        ensure!(masked, "{}'s line is masked until claimed", device.name);
        ensure_eq!(
            signal.level,
            device.name == "virtio-mmio" || device.pci.is_some(),
            "level-triggered only for VirtIO-MMIO and PCI INTx"
        );
        // A PCI function's line is the one q35 wires its pin to.
        if let Some(pci) = device.pci {
            let slot = (pci.function >> 3 & 0x1f) as u8;
            let function = crate::pci::bus()
                .and_then(|bus| {
                    bus.functions.as_slice().iter().find(|f| {
                        f.address.bus == (pci.function >> 8) as u8
                            && f.address.device == slot
                            && f.address.function == (pci.function & 7) as u8
                    })
                })
                .copied();
            let Some(function) = function else {
                fail!("{}'s function is not on the bus", device.name);
            };
            ensure_eq!(
                pci.bar,
                hal::PciBar::CONFIG,
                "only configuration space has a line"
            );
            ensure_eq!(
                Some(gsi),
                arch_x86_64::q35_intx::gsi(slot, function.interrupt_pin),
                "the global interrupt of its pin"
            );
        }
    }
    Ok(())
}

fn pcids_tag_spaces_and_switches_flush_only_stale_tags() -> Outcome {
    use crate::asid;
    use hal::mm::{MapFlags, PAGE_SIZE, Space};
    use x86_64::registers::control::Cr3;
    if !asid::enabled() {
        // QEMU's TCG has no PCIDs (KVM does): then every switch flushes,
        // and the banner says PCIDs are missing.
        ensure!(
            !Cr4::read().contains(Cr4Flags::PCID),
            "CR4.PCIDE without PCIDs"
        );
        ensure!(
            X86_64::capabilities().without.as_slice().contains(&"PCID"),
            "PCIDs are not reported missing"
        );
        return Ok(());
    }
    ensure!(Cr4::read().contains(Cr4Flags::PCID), "CR4.PCIDE");
    let frames = &KernelFrames;
    let (Ok(a), Ok(b)) = (X86_64::create_space(frames), X86_64::create_space(frames)) else {
        fail!("no user spaces");
    };
    let Ok(frame) = kernel::mm::frames::allocate_zeroed(1, PAGE_SIZE) else {
        fail!("no frame");
    };
    let flushes = asid::flushes();
    let check = |root: hal::RootTable, expected_flushes: u64| -> Outcome {
        X86_64::activate(Some(root));
        let (table, pcid) = Cr3::read_pcid();
        ensure_eq!(table.start_address().as_u64(), root.0, "CR3's table");
        ensure_eq!(
            pcid.value() as usize,
            hal::asid::Tags::<4096>::tag(root.0),
            "CR3's PCID"
        );
        ensure_eq!(asid::flushes() - flushes, expected_flushes, "flushes");
        Ok(())
    };
    let outcome = (|| {
        check(a, 1)?;
        check(b, 2)?;
        check(a, 2)?;
        check(b, 2)?;
        // A changes while b is active: its entries may be out of date.
        let page = abi::layout::IMAGE_BASE;
        if X86_64::map(
            Space::User(a),
            page,
            frame,
            PAGE_SIZE,
            MapFlags::USER_RO,
            frames,
        )
        .is_err()
        {
            fail!("map");
        }
        check(b, 2)?;
        ensure!(X86_64::unmap(Space::User(a), page).is_ok(), "unmap");
        check(a, 3)?;
        check(b, 3)
    })();
    X86_64::activate(None);
    X86_64::destroy_space(a, frames);
    X86_64::destroy_space(b, frames);
    kernel::mm::frames::free(frame, 1);
    outcome
}

fn uart16550_loopback() -> Outcome {
    if let Err(error) = console::loopback_check() {
        fail!("COM1 loopback: {error}");
    }
    Ok(())
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b))
}

fn acpi_rsdp_is_valid() -> Outcome {
    let FirmwareTables::Acpi { rsdp } = X86_64::boot_info().firmware else {
        skip!("the machine has no ACPI tables (the start info gave no RSDP)");
    };
    let virt = match memory::map_firmware(rsdp, 36, &KernelFrames) {
        Ok(virt) => virt,
        Err(e) => fail!("cannot map the RSDP at {rsdp:#x}: {e}"),
    };
    // SAFETY: map_firmware mapped these 36 bytes read-only; the RSDP is 20
    // bytes (revision 0) or 36 (revision 2+).
    let bytes = unsafe { core::slice::from_raw_parts(virt as *const u8, 36) };
    ensure_eq!(&bytes[..8], b"RSD PTR ", "RSDP signature");
    ensure_eq!(checksum(&bytes[..20]), 0, "RSDP checksum");
    if bytes[15] >= 2 {
        ensure_eq!(checksum(&bytes[..36]), 0, "extended RSDP checksum");
    }
    Ok(())
}

fn long_mode_with_nx_and_write_protect() -> Outcome {
    let efer = Efer::read();
    ensure!(
        efer.contains(EferFlags::LONG_MODE_ACTIVE),
        "EFER.LMA clear: {efer:?}"
    );
    ensure!(
        efer.contains(EferFlags::NO_EXECUTE_ENABLE),
        "EFER.NXE clear: {efer:?}"
    );
    let cr0 = Cr0::read();
    ensure!(
        cr0.contains(Cr0Flags::PAGING | Cr0Flags::WRITE_PROTECT),
        "CR0 {cr0:?}"
    );
    ensure!(
        Cr4::read().contains(Cr4Flags::PHYSICAL_ADDRESS_EXTENSION),
        "CR4.PAE clear"
    );
    Ok(())
}

static mut ALIAS_PROBE: u64 = 0;

fn kernel_window_aliases_physical() -> Outcome {
    let virt = &raw mut ALIAS_PROBE as u64;
    let phys = virt - layout::KERNEL_VIRT_OFFSET;
    let image = X86_64::boot_info().kernel_image;
    ensure!(
        image.contains(phys),
        "{phys:#x} outside the kernel image {image:#x?}"
    );
    let Some(alias) = X86_64::phys_to_virt(phys) else {
        fail!("physical {phys:#x} has no kernel mapping");
    };
    // SAFETY: both addresses name the same 8 bytes of .bss through the
    // kernel window; nothing else uses ALIAS_PROBE.
    unsafe {
        (virt as *mut u64).write_volatile(0x0123_4567_89ab_cdef);
        ensure_eq!(
            (alias as *const u64).read_volatile(),
            0x0123_4567_89ab_cdef,
            "read through alias"
        );
    }
    Ok(())
}

fn spurious_vector_is_counted() -> Outcome {
    let before = kernel::irq::spurious_count();
    // What the local APIC delivers when it withdraws an interrupt.
    // SAFETY: vector 0xff's stub counts the interrupt and returns; no end
    // of interrupt is sent for it.
    unsafe { core::arch::asm!("int 0xff", options(nomem, nostack)) };
    ensure_eq!(kernel::irq::spurious_count(), before + 1, "spurious count");
    Ok(())
}

/// Boot measures the TSC over short windows; the ticks then measure it
/// again over at least 20 ms of the PIT without waiting. A refinement
/// started afresh ends (ticking for it if nothing else ticks yet), its
/// window is as long as promised, it agrees with boot's figure to within
/// 5% (which is what boot's windows are good for, and more), and the
/// clock never stepped back while its rate changed.
fn the_clock_is_refined_against_the_pit_and_stays_continuous() -> Outcome {
    use hal::{Interrupts, Time};
    if crate::time::calibration().0 == 0 {
        skip!("the PIT did not count at boot");
    }
    crate::time::start_refinement();
    let ticking = kernel::timer::rate_hz() != 0;
    if !ticking && let Err(e) = kernel::timer::start::<X86_64>(1000, None) {
        fail!("starting ticks: {e}");
    }
    let was_enabled = X86_64::enabled();
    X86_64::enable();
    let deadline = X86_64::monotonic_ns() + 2_000_000_000;
    let mut previous = X86_64::monotonic_ns();
    let mut stepped_back = None;
    while crate::time::calibration().1 == 0 && previous < deadline {
        let now = X86_64::monotonic_ns();
        if now < previous {
            stepped_back = Some((previous, now));
        }
        previous = now;
        core::hint::spin_loop();
    }
    if !was_enabled {
        X86_64::disable();
    }
    if !ticking {
        kernel::timer::stop::<X86_64>();
    }
    let (calibrated, refined, pit_ticks, windows) = crate::time::calibration();
    ensure!(refined != 0, "no refinement in 2 s of ticks");
    ensure_eq!(stepped_back, None, "the clock stepped back (before, after)");
    ensure!(
        pit_ticks >= arch_x86_64::pit::REFINEMENT_TICKS,
        "a window of {pit_ticks} PIT ticks"
    );
    ensure!(
        refined.abs_diff(calibrated) <= calibrated / 20,
        "refined {refined} Hz against {calibrated} Hz at boot ({windows} windows)"
    );
    Ok(())
}

fn madt_matches_the_machine() -> Outcome {
    if crate::interrupts::cpus_in_madt().is_none() {
        skip!("the machine has no ACPI MADT; default controllers are in use");
    }
    let Some((io_apics, overrides, timer_route)) = crate::interrupts::madt_summary() else {
        fail!("no interrupt controllers");
    };
    match X86_64::boot_info().machine {
        "q35" => {
            ensure_eq!(io_apics, 1, "I/O APICs on q35");
            ensure_eq!(timer_route, (2, false, false), "ISA IRQ 0 override on q35");
            ensure!(overrides >= 1, "no overrides on q35");
        }
        // microvm has a second I/O APIC for its VirtIO-MMIO slots.
        "microvm" => ensure_eq!(io_apics, 2, "I/O APICs on microvm"),
        other => fail!("no expectations for machine {other}"),
    }
    Ok(())
}

extern "C" fn read_user_byte(address: usize) {
    // SAFETY: run under catch_fault; with SMAP the read faults, which is
    // what the test expects.
    unsafe { core::hint::black_box((address as *const u8).read_volatile()) };
}

extern "C" fn call_user_code(address: usize) {
    // SAFETY: as above; with SMEP the fetch faults. If it did not, the
    // page holds a single RET.
    let code: extern "C" fn() = unsafe { core::mem::transmute(address) };
    code();
}

/// QEMU's `-cpu max` has both; the kernel turns them on, so a kernel read
/// of a user page and a kernel jump into one both fault.
fn smep_and_smap_stop_the_kernel_at_user_pages() -> Outcome {
    use hal::mm::{MapFlags, PAGE_SIZE, Space};
    use hal::trap::{Access, FaultKind};
    match crate::threads::cpu_protections() {
        (true, true) => {}
        (false, false) => skip!("the CPU has neither SMEP nor SMAP"),
        (false, true) => skip!("the CPU has no SMEP"),
        (true, false) => skip!("the CPU has no SMAP"),
    }
    ensure_eq!(crate::threads::protections(), (true, true), "SMEP, SMAP on");
    let frames = &KernelFrames;
    let Ok(root) = X86_64::create_space(frames) else {
        fail!("no user space");
    };
    let Ok(frame) = kernel::mm::frames::allocate_zeroed(1, PAGE_SIZE) else {
        fail!("no frame");
    };
    // SAFETY: the frame is ours; RET through the direct map.
    unsafe { (kernel::mm::frames::to_virt(frame) as *mut u8).write(0xc3) };
    let page = abi::layout::IMAGE_BASE;
    let mut outcome = Ok(());
    for (flags, probe, access) in [
        (
            MapFlags::USER_RO,
            read_user_byte as extern "C" fn(usize),
            Access::Read,
        ),
        (MapFlags::USER_RX, call_user_code, Access::Execute),
    ] {
        let _ = X86_64::unmap(Space::User(root), page);
        if X86_64::map(Space::User(root), page, frame, PAGE_SIZE, flags, frames).is_err() {
            outcome = Err(kernel::ktest::Failure::new(
                file!(),
                line!(),
                format_args!("map"),
            ));
            break;
        }
        X86_64::activate(Some(root));
        // SAFETY: the probes hold no locks and own nothing.
        let result = unsafe { <X86_64 as hal::Cpu>::catch_fault(probe, page) };
        X86_64::activate(None);
        match result {
            Err(fault)
                if fault.kind == FaultKind::Permission
                    && fault.access == Some(access)
                    && fault.address == page => {}
            other => {
                outcome = Err(kernel::ktest::Failure::new(
                    file!(),
                    line!(),
                    format_args!("{access:?} of a user page from the kernel: {other:?}"),
                ));
                break;
            }
        }
    }
    let _ = X86_64::unmap(Space::User(root), page);
    kernel::mm::frames::free(frame, 1);
    X86_64::destroy_space(root, frames);
    outcome
}
