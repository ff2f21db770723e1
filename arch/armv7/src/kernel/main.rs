//! The Ferrite kernel for ARMv7-A (QEMU vexpress-a15, Cortex-A15).

#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod asid;
mod console;
mod cp15;
mod cpu;
mod device_tree;
mod devices;
mod interrupts;
mod memory;
mod platform;
mod tests;
mod threads;
mod time;
mod timer;
mod traps;

use arch::Armv7;
use arch_armv7::{board, dtb, layout, mmu};
// Links the fast copy routines in place of compiler_builtins' own.
use armv7_mem as _;
use core::panic::PanicInfo;
use hal::Platform as _;

/// SCTLR bits the boot code sets: MMU, data cache, branch prediction,
/// instruction cache.
const SCTLR_SET: u32 = (1 << 0) | (1 << 2) | (1 << 11) | (1 << 12);
/// SCTLR bits it clears: alignment faults, high vectors, TEX remap, access
/// flag, Thumb exceptions.
const SCTLR_CLEAR: u32 = (1 << 1) | (1 << 13) | (1 << 28) | (1 << 29) | (1 << 30);

core::arch::global_asm!(
    include_str!("boot.s"),
    KERNEL_VIRT_OFFSET = const layout::KERNEL_VIRT_OFFSET,
    KERNEL_VIRT_BASE = const layout::KERNEL_VIRT_BASE,
    RAM_BASE = const layout::RAM_BASE,
    BOOT_MAPPED_SECTIONS = const layout::BOOT_MAPPED_SIZE / mmu::SECTION_SIZE,
    BOOT_SECTION_ATTRS = const mmu::BOOT_KERNEL_SECTION,
    TTBR_WALK_ATTRS = const mmu::TTBR_WALK_WRITE_BACK,
    SCTLR_SET = const SCTLR_SET,
    SCTLR_CLEAR = const SCTLR_CLEAR,
    SVC_STACK_SIZE = const layout::SVC_STACK_SIZE,
    EXCEPTION_STACK_SIZE = const layout::EXCEPTION_STACK_SIZE,
);

/// Called by the boot code in SVC mode with the MMU on, with whatever the
/// loader passed in r2 (the device tree address, or 0 for ELF images).
#[unsafe(no_mangle)]
extern "C" fn armv7_entry(loader_dtb: u32) -> ! {
    let tree = device_tree::find_device_tree(loader_dtb).and_then(|blob| {
        dtb::strip_nops(blob)?;
        let blob: &'static [u8] = blob;
        Ok((blob, dtb::parse(blob)?))
    });
    // The console is the one the tree names; if the tree is unusable, the
    // board's known UART0 still lets the kernel say so.
    let uart = match &tree {
        Ok((_, info)) => info.console_uart.map(|u| (u.reg.address, u.clock_hz)),
        Err(_) => None,
    };
    let (uart_base, uart_clock) = uart.unwrap_or((board::UART0.base as u64, None));
    if let Some(virt) = memory::map_console(uart_base) {
        console::init(virt, uart_clock.unwrap_or(board::UART_CLOCK_HZ));
    }
    kernel::entry::early::<Armv7>();
    traps::init();
    time::init();
    threads::init();
    let mut boot = match tree {
        Ok((blob, info)) => platform::read_boot_info(blob, info).unwrap_or_else(|p| refuse_tree(p)),
        Err(error) => refuse_tree(error),
    };
    if let Err(error) = memory::init(&mut boot) {
        kernel::kprintln!("ferrite: cannot build the kernel translation table: {error}");
        Armv7::exit(kernel::exit_code::BOOT_FAILURE);
    }
    match memory::check_layout(&mut |v| kernel::kprintln!("layout violation: {v}")) {
        Ok(0) => {}
        Ok(n) => panic!("the kernel's translation table breaks the layout in {n} places"),
        Err(e) => panic!("cannot walk the kernel's translation table: {e}"),
    }
    platform::set_boot_info(boot);
    kernel::entry::boot::<Armv7>(&tests::ARCH_TESTS)
}

/// Ends the boot over a device tree the kernel cannot run with, saying why
/// on the console (the board's UART if the tree named none).
fn refuse_tree(reason: impl core::fmt::Display) -> ! {
    kernel::kprintln!("ferrite: unusable device tree: {reason}");
    Armv7::exit(kernel::exit_code::BOOT_FAILURE)
}

#[global_allocator]
static ALLOCATOR: kernel::mm::heap::GlobalHeap = kernel::mm::heap::GlobalHeap;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    interrupts::disable_interrupts();
    console::break_lock_for_panic();
    kernel::entry::panic(info);
    Armv7::exit(kernel::exit_code::PANIC)
}
