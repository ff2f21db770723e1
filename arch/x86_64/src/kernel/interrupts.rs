//! Interrupt hardware on x86_64: the legacy PICs silenced, the local APIC
//! (its timer for ticks, self-IPIs for software interrupts) and the I/O
//! APICs (device lines), as the ACPI MADT describes them.
//!
//! Vectors: 0x20 the APIC timer; 0x30 + n global interrupt n (n < 64);
//! 0x7f the software interrupt; 0xe0-0xef where the PICs would deliver;
//! 0xfe APIC errors; 0xff APIC spurious. Interrupt numbers for the portable
//! core are vector - 32.

use crate::{acpi, ports::IoPorts, time};
use arch_x86_64::madt::{IoApic as IoApicInfo, Madt};
use core::sync::atomic::{AtomicU32, Ordering};
use drivers::ioapic::{IoApic, Signal};
use drivers::lapic::{ApicTimer, LocalApic};
use hal::list::FixedList;
use hal::{FirmwareTables, IrqError, Memory, Platform, TimerError};
use kernel::mm::frames::KernelFrames;
use spin::Once;
use x86_64::registers::model_specific::Msr;

pub const TIMER_VECTOR: u8 = 0x20;
const GSI_VECTOR_BASE: u8 = 0x30;
const GSI_VECTORS: u32 = 64;
pub const SOFTWARE_VECTOR: u8 = 0x7f;
const PIC_VECTOR_BASE: u8 = 0xe0;
pub const ERROR_VECTOR: u8 = 0xfe;
pub const SPURIOUS_VECTOR: u8 = 0xff;
/// Portable interrupt numbers are vectors from 32 on.
pub const FIRST_VECTOR: u8 = 32;

const IA32_APIC_BASE: u32 = 0x1b;
const DEFAULT_IO_APIC: u32 = 0xfec0_0000;
/// The least time the APIC timer is measured over against the clock, when
/// the PIT could not be used. Measurement starts at boot and ends when
/// ticks first start, so the wait is usually already over.
const CALIBRATION_NS: u64 = 1_000_000;

struct Controllers {
    local: LocalApic,
    /// The APIC timer, behind a lock that only starting, stopping and
    /// calibrating take (never an interrupt handler).
    timer: spin::Mutex<ApicTimer>,
    /// The I/O APICs, each behind a lock taken with interrupts masked (its
    /// registers are a select/window pair).
    io: [Option<(IoApicInfo, spin::Mutex<IoApic>, u32)>; 8],
    madt: Madt,
    /// Whether `madt` came from ACPI (else: the architectural defaults).
    madt_from_acpi: bool,
    /// When the APIC timer's calibration count started.
    calibration_start: Sample,
    /// APIC timer counts per TSC tick (32.32 fixed point), once measured:
    /// its rate is this times the TSC's, as good as the clock's rate is
    /// (which improves once after boot).
    timer_per_tsc_fp32: spin::Once<u64>,
    /// The tick rate asked for; 0 when stopped.
    tick_hz: AtomicU32,
}

/// The APIC timer's count, and the clock's time when it was read (the
/// midpoint of readings taken just before and after, so the time a
/// register read takes cancels out).
#[derive(Clone, Copy)]
struct Sample {
    ns: u64,
    count: u32,
}

fn sample(timer: &ApicTimer) -> Sample {
    let before = time::monotonic_ns();
    let count = timer.count();
    let after = time::monotonic_ns();
    Sample {
        ns: before + (after - before) / 2,
        count,
    }
}

static CONTROLLERS: Once<Controllers> = Once::new();

fn controllers() -> Result<&'static Controllers, IrqError> {
    CONTROLLERS.get().ok_or(IrqError::NoDevice)
}

/// The MADT (and `true`), or the architectural defaults when there is none
/// to be had.
fn madt() -> (Madt, bool) {
    let reason = match crate::arch::X86_64::boot_info().firmware {
        FirmwareTables::Acpi { rsdp } => match acpi::read_madt(rsdp) {
            Ok(madt) => return (madt, true),
            Err(e) => alloc::format!("{e}"),
        },
        _ => "no ACPI tables".into(),
    };
    // SAFETY: reading IA32_APIC_BASE has no side effects.
    let apic_base = unsafe { Msr::new(IA32_APIC_BASE).read() } & 0xffff_f000;
    log::warn!(
        "MADT unusable ({reason}); using the local APIC at {apic_base:#x}, one I/O APIC at {DEFAULT_IO_APIC:#x}, ISA interrupts unmoved"
    );
    let mut madt = Madt {
        local_apic_address: apic_base,
        has_8259: true,
        ..Madt::default()
    };
    madt.io_apics.push(IoApicInfo {
        id: 0,
        address: DEFAULT_IO_APIC,
        gsi_base: 0,
    });
    (madt, false)
}

/// The APIC timer's rate at the TSC's current rate.
fn timer_hz(c: &Controllers) -> u64 {
    let ratio = timer_per_tsc_fp32(c);
    ((time::tsc_hz() as u128 * ratio as u128) >> 32) as u64
}

/// The APIC timer's counts per TSC tick: measured against the TSC in
/// `init`'s windows, or, if the PIT does not count, counted down since
/// `init` and timed with the clock over at least `CALIBRATION_NS`.
fn timer_per_tsc_fp32(c: &Controllers) -> u64 {
    *c.timer_per_tsc_fp32.call_once(|| {
        let mut timer = c.timer.lock();
        let measure = |timer: &ApicTimer, start: Sample| {
            while time::monotonic_ns() - start.ns < CALIBRATION_NS {
                core::hint::spin_loop();
            }
            let end = sample(timer);
            (end.count != 0).then(|| {
                (start.count - end.count) as u64 * 1_000_000_000 / (end.ns - start.ns).max(1)
            })
        };
        // A count that ran out (ticks first started long after boot) says
        // nothing: measure afresh.
        let hz = measure(&timer, c.calibration_start).unwrap_or_else(|| {
            timer.start_calibration_count(u32::MAX);
            measure(&timer, sample(&timer)).unwrap_or(1)
        });
        timer.stop();
        log::info!("local APIC timer: {hz} Hz");
        ((hz as u128) << 32).div_ceil(time::tsc_hz() as u128) as u64
    })
}

/// Silences the PICs, enables the local APIC and maps the I/O APICs.
pub fn init() -> Result<(), &'static str> {
    let (madt, madt_from_acpi) = madt();
    if madt.has_8259 {
        drivers::pic8259::remap_and_mask(&IoPorts, PIC_VECTOR_BASE);
    }
    let frames = &KernelFrames;
    let lapic_virt = crate::arch::X86_64::map_device(madt.local_apic_address, 4096, frames)
        .map_err(|_| "cannot map the local APIC")?;
    // SAFETY: mapped uncached just above; this is the boot CPU's APIC.
    let (mut local, mut timer) = unsafe { LocalApic::new(lapic_virt) };
    local.enable(SPURIOUS_VECTOR, ERROR_VECTOR);
    let mut io = [const { None }; 8];
    for (slot, info) in io.iter_mut().zip(madt.io_apics.as_slice()) {
        let virt = crate::arch::X86_64::map_device(info.address as u64, 0x20, frames)
            .map_err(|_| "cannot map an I/O APIC")?;
        // SAFETY: mapped uncached just above.
        let mut apic = unsafe { IoApic::new(virt) };
        let lines = apic.lines();
        for line in 0..lines {
            apic.route(line, 0, 0, Signal::ISA, true);
        }
        *slot = Some((*info, spin::Mutex::new(apic), lines));
    }
    // Measure the APIC timer, and the TSC, against the PIT. The count
    // lasts minutes at QEMU's rates. If the PIT does not count, the timer
    // is measured against the clock when ticks first start.
    timer.start_calibration_count(u32::MAX);
    let measured = time::calibrate(&|| timer.count());
    if measured.is_none() {
        timer.start_calibration_count(u32::MAX);
    }
    let _ = sample(&timer); // the first read of the count is slow under emulation
    let calibration_start = sample(&timer);
    log::info!(
        "interrupts: local APIC {} at {:#x}; {} I/O APIC(s); {} ISA override(s)",
        local.id(),
        madt.local_apic_address,
        madt.io_apics.as_slice().len(),
        madt.overrides.as_slice().len()
    );
    let timer_per_tsc_fp32 = spin::Once::new();
    if let Some(ratio) = measured {
        timer.stop();
        let hz = (time::tsc_hz() as u128 * ratio as u128) >> 32;
        log::info!("local APIC timer: {hz} Hz (against the TSC)");
        timer_per_tsc_fp32.call_once(|| ratio);
    }
    CONTROLLERS.call_once(|| Controllers {
        local,
        timer: spin::Mutex::new(timer),
        io,
        madt,
        madt_from_acpi,
        calibration_start,
        timer_per_tsc_fp32,
        tick_hz: AtomicU32::new(0),
    });
    Ok(())
}

/// Runs `f` on the I/O APIC serving `gsi` and its line there, holding the
/// APIC's lock with interrupts masked.
fn with_io_apic<R>(gsi: u32, f: impl FnOnce(&mut IoApic, u32) -> R) -> Result<R, IrqError> {
    let c = controllers()?;
    let (info, apic, _) =
        c.io.iter()
            .flatten()
            .find(|(info, _, lines)| gsi >= info.gsi_base && gsi < info.gsi_base + lines)
            .ok_or(IrqError::NoSuchIrq(gsi as usize))?;
    Ok(x86_64::instructions::interrupts::without_interrupts(|| {
        f(&mut apic.lock(), gsi - info.gsi_base)
    }))
}

/// Routes ISA interrupt `isa_irq` (masked) and returns its portable number.
pub fn route_isa(isa_irq: u8) -> Result<usize, IrqError> {
    let (gsi, active_low, level) = controllers()?.madt.isa_route(isa_irq);
    route_gsi(gsi, Signal { active_low, level })
}

/// Routes global interrupt `gsi` (masked) to this CPU as `signal`, and
/// returns its portable number.
pub fn route_gsi(gsi: u32, signal: Signal) -> Result<usize, IrqError> {
    let c = controllers()?;
    if gsi >= GSI_VECTORS {
        return Err(IrqError::NoSuchIrq(gsi as usize));
    }
    let vector = GSI_VECTOR_BASE + gsi as u8;
    let destination = c.local.id() as u8;
    with_io_apic(gsi, |apic, line| {
        apic.route(line, vector, destination, signal, true)
    })?;
    Ok(gsi_irq(gsi))
}

/// The portable number global interrupt `gsi` arrives as.
pub fn gsi_irq(gsi: u32) -> usize {
    (GSI_VECTOR_BASE - FIRST_VECTOR) as usize + gsi as usize
}

/// How global interrupt `gsi` is routed: vector, masked, signal (for
/// tests).
pub fn gsi_route(gsi: u32) -> Result<(u8, bool, Signal), IrqError> {
    with_io_apic(gsi, |apic, line| apic.entry(line))
}

/// The physical addresses of the local APIC and of each I/O APIC (their
/// register blocks are a page each), for what PCI must stay clear of.
pub fn controller_addresses() -> (u64, FixedList<u64, 8>) {
    let mut io = FixedList::default();
    let Ok(c) = controllers() else {
        return (0, io);
    };
    for apic in c.madt.io_apics.as_slice() {
        io.push(apic.address as u64);
    }
    (c.madt.local_apic_address, io)
}

/// How many I/O APICs there are, and whether the MADT said so.
pub fn io_apics() -> Option<(usize, bool)> {
    let c = controllers().ok()?;
    Some((c.madt.io_apics.as_slice().len(), c.madt_from_acpi))
}

/// Ends an interrupt at the local APIC, if it delivered `vector`.
pub fn end_of_interrupt(vector: u8) {
    if let Ok(c) = controllers()
        && c.local.in_service(vector)
    {
        c.local.end_of_interrupt();
    }
}

pub fn raise(irq: usize) -> Result<(), IrqError> {
    if irq + FIRST_VECTOR as usize != SOFTWARE_VECTOR as usize {
        return Err(IrqError::NotRaisable(irq));
    }
    controllers()?.local.send_self(SOFTWARE_VECTOR);
    Ok(())
}

pub fn set_masked(irq: usize, masked: bool) -> Result<(), IrqError> {
    let vector = irq + FIRST_VECTOR as usize;
    match vector {
        // The timer is masked by stopping it; the software vector has no line.
        v if v == TIMER_VECTOR as usize || v == SOFTWARE_VECTOR as usize => Ok(()),
        v if (GSI_VECTOR_BASE as usize..GSI_VECTOR_BASE as usize + GSI_VECTORS as usize)
            .contains(&v) =>
        {
            with_io_apic((v - GSI_VECTOR_BASE as usize) as u32, |apic, line| {
                apic.set_masked(line, masked)
            })
        }
        _ => Err(IrqError::NoSuchIrq(irq)),
    }
}

/// The APIC timer's period for `hz` ticks a second at its current rate;
/// `None` for a rate it cannot tick at.
fn tick_period(c: &Controllers, hz: u32) -> Option<u32> {
    let period = timer_hz(c).checked_div(hz as u64)?;
    u32::try_from(period).ok().filter(|&p| p != 0)
}

pub fn start_ticks(hz: u32) -> Result<usize, TimerError> {
    let c = controllers().map_err(|_| TimerError::NoDevice)?;
    let period = tick_period(c, hz).ok_or(TimerError::UnsupportedRate(hz))?;
    c.timer.lock().start_periodic(TIMER_VECTOR, period);
    c.tick_hz.store(hz, Ordering::Relaxed);
    Ok((TIMER_VECTOR - FIRST_VECTOR) as usize)
}

pub fn stop_ticks() {
    if let Ok(c) = controllers() {
        c.timer.lock().stop();
        c.tick_hz.store(0, Ordering::Relaxed);
    }
}

/// Sets the tick's period again after the clock's rate changed (the APIC
/// timer's rate follows it). Called from the tick: if the timer is being
/// started or stopped just then, that sets the period from the new rate
/// itself.
pub fn retime_ticks() {
    let Ok(c) = controllers() else {
        return;
    };
    let Some(mut timer) = c.timer.try_lock() else {
        return;
    };
    if let Some(period) = tick_period(c, c.tick_hz.load(Ordering::Relaxed)) {
        timer.start_periodic(TIMER_VECTOR, period);
    }
}

/// Enabled processors the ACPI MADT lists; `None` without a MADT.
pub fn cpus_in_madt() -> Option<u32> {
    let c = controllers().ok()?;
    c.madt_from_acpi.then(|| {
        let apics = c.madt.local_apics.as_slice();
        (apics.iter().filter(|a| a.enabled).count() + c.madt.local_apics.dropped) as u32
    })
}

/// I/O APICs and ISA overrides the MADT gave (for tests and reports).
pub fn madt_summary() -> Option<(usize, usize, (u32, bool, bool))> {
    let c = controllers().ok()?;
    Some((
        c.madt.io_apics.as_slice().len(),
        c.madt.overrides.as_slice().len(),
        c.madt.isa_route(0),
    ))
}

impl hal::Interrupts for crate::arch::X86_64 {
    const IRQ_COUNT: usize = 256 - FIRST_VECTOR as usize;
    const SOFTWARE_IRQ: usize = (SOFTWARE_VECTOR - FIRST_VECTOR) as usize;

    fn raise(irq: usize) -> Result<(), hal::IrqError> {
        raise(irq)
    }

    fn set_masked(irq: usize, masked: bool) -> Result<(), hal::IrqError> {
        set_masked(irq, masked)
    }

    fn enable() {
        x86_64::instructions::interrupts::enable();
    }

    fn disable() {
        x86_64::instructions::interrupts::disable();
    }

    fn enabled() -> bool {
        x86_64::instructions::interrupts::are_enabled()
    }
}
