//! Interrupt hardware on vexpress-a15, as the device tree describes it: the
//! GICv2, the SP804 (periodic tick), the PL031 (wall clock) and the
//! console's receive interrupt. Interrupt numbers are GIC interrupt IDs.

use crate::arch::Armv7;
use arch_armv7::board;
use drivers::gicv2::Gic;
use drivers::pl031::Pl031;
use drivers::sp804::{Sp804, Sp804Interrupt};
use hal::{IrqError, Memory, TimerError};
use kernel::mm::frames::KernelFrames;
use spin::Once;

/// The software-generated interrupt the kernel raises for itself.
pub const SOFTWARE_SGI: u32 = 15;

/// The tick's timer: its owner's half behind a lock that only starting and
/// stopping take, its interrupt's half for the handler, and its line.
struct Tick {
    timer: spin::Mutex<Sp804>,
    interrupt: Sp804Interrupt,
    irq: u32,
}

struct Devices {
    gic: Gic,
    tick: Option<Tick>,
    rtc: Option<Pl031>,
}

static DEVICES: Once<Devices> = Once::new();

fn devices() -> Result<&'static Devices, IrqError> {
    DEVICES.get().ok_or(IrqError::NoDevice)
}

fn map(address: u64, size: usize, what: &'static str) -> Result<usize, &'static str> {
    Armv7::map_device(address, size, &KernelFrames).map_err(|_| what)
}

/// Sets up the GIC, the tick timer and the RTC from the device tree.
pub fn init() -> Result<(), &'static str> {
    let Some((_, info)) = crate::device_tree::get() else {
        return Err("no device tree");
    };
    let Some(gic) = info.gic else {
        return Err("the device tree names no GIC");
    };
    let distributor = map(
        gic.distributor.address,
        0x1000,
        "cannot map the GIC distributor",
    )?;
    let cpu_interface = map(
        gic.cpu_interface.address,
        0x2000,
        "cannot map the GIC CPU interface",
    )?;
    // SAFETY: both windows were just mapped as device memory.
    let mut gic = unsafe { Gic::new(distributor, cpu_interface) };
    gic.init();
    gic.set_enabled(SOFTWARE_SGI, true);

    let tick = match info.sp804 {
        Some(node) => {
            let Some(&irq) = node.interrupts.as_slice().first() else {
                return Err("the SP804 has no interrupt");
            };
            let base = map(node.reg.address, 0x1000, "cannot map the SP804")?;
            // SAFETY: just mapped as device memory; only this module uses it.
            let (mut timer, interrupt) =
                unsafe { Sp804::new(base, node.clock_hz.unwrap_or(board::TIMER_CLOCK_HZ)) };
            timer.stop();
            Some(Tick {
                timer: spin::Mutex::new(timer),
                interrupt,
                irq,
            })
        }
        None => {
            log::warn!("no SP804 in the device tree: no periodic tick");
            None
        }
    };
    let rtc = match info.pl031 {
        Some(node) => {
            let base = map(node.reg.address, 0x1000, "cannot map the PL031")?;
            // SAFETY: just mapped as device memory.
            Some(unsafe { Pl031::new(base) })
        }
        None => None,
    };
    log::info!(
        "interrupts: GICv2 with {} lines; SP804 tick on {}; PL031 {}",
        gic.lines(),
        tick.as_ref().map_or(0, |t| t.irq),
        if rtc.is_some() { "present" } else { "absent" }
    );
    DEVICES.call_once(|| Devices { gic, tick, rtc });
    Ok(())
}

/// Handles an IRQ exception: every interrupt the GIC has pending, each
/// dispatched and ended; a spurious one if it had none.
pub fn handle_irq() {
    let Ok(devices) = devices() else {
        kernel::entry::spurious_interrupt();
        return;
    };
    let mut handled = false;
    while let Some(interrupt) = devices.gic.acknowledge() {
        kernel::entry::interrupt::<Armv7>(interrupt.id() as usize);
        devices.gic.end(interrupt);
        handled = true;
    }
    if !handled {
        kernel::entry::spurious_interrupt();
    }
}

pub fn raise(irq: usize) -> Result<(), IrqError> {
    if irq != SOFTWARE_SGI as usize || !devices()?.gic.raise_sgi_to_self(SOFTWARE_SGI) {
        return Err(IrqError::NotRaisable(irq));
    }
    Ok(())
}

pub fn set_masked(irq: usize, masked: bool) -> Result<(), IrqError> {
    let id = u32::try_from(irq).map_err(|_| IrqError::NoSuchIrq(irq))?;
    if devices()?.gic.set_enabled(id, !masked) {
        Ok(())
    } else {
        Err(IrqError::NoSuchIrq(irq))
    }
}

pub fn start_ticks(hz: u32) -> Result<usize, TimerError> {
    let devices = devices().map_err(|_| TimerError::NoDevice)?;
    let tick = devices.tick.as_ref().ok_or(TimerError::NoDevice)?;
    if !tick.timer.lock().start_periodic(hz) {
        return Err(TimerError::UnsupportedRate(hz));
    }
    Ok(tick.irq as usize)
}

pub fn stop_ticks() {
    if let Ok(Devices {
        tick: Some(tick), ..
    }) = devices()
    {
        tick.timer.lock().stop();
    }
}

pub fn acknowledge_tick() {
    if let Ok(Devices {
        tick: Some(tick), ..
    }) = devices()
    {
        tick.interrupt.acknowledge();
    }
}

pub fn wall_clock_seconds() -> Option<u64> {
    devices().ok()?.rtc.as_ref().map(|rtc| rtc.seconds() as u64)
}

/// The console's receive interrupt, from the device tree.
pub fn console_irq() -> Result<usize, IrqError> {
    let (_, info) = crate::device_tree::get().ok_or(IrqError::NoDevice)?;
    let uart = info.console_uart.ok_or(IrqError::NoDevice)?;
    uart.interrupts
        .as_slice()
        .first()
        .map(|&irq| irq as usize)
        .ok_or(IrqError::NoDevice)
}

/// The GIC's interrupt lines (for tests and reports).
pub fn gic_lines() -> Option<u32> {
    devices().ok().map(|d| d.gic.lines())
}

/// Masks IRQ and FIQ on this CPU.
pub fn disable_interrupts() {
    aarch32_cpu::interrupt::disable();
}

impl hal::Interrupts for Armv7 {
    const IRQ_COUNT: usize = kernel::irq::MAX_IRQS;
    const SOFTWARE_IRQ: usize = SOFTWARE_SGI as usize;

    fn raise(irq: usize) -> Result<(), hal::IrqError> {
        raise(irq)
    }

    fn set_masked(irq: usize, masked: bool) -> Result<(), hal::IrqError> {
        set_masked(irq, masked)
    }

    fn enable() {
        // SAFETY: enabling IRQs is what the caller asked for; the kernel's
        // handlers are responsible for being ready.
        unsafe { aarch32_cpu::interrupt::enable() };
    }

    fn disable() {
        aarch32_cpu::interrupt::disable();
    }

    fn enabled() -> bool {
        !aarch32_cpu::register::Cpsr::read().i()
    }
}
