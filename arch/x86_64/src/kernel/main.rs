//! The Ferrite kernel for x86_64 (QEMU `microvm` and `q35`, PVH boot).

#![no_std]
#![no_main]

extern crate alloc;

mod acpi;
mod arch;
mod asid;
mod console;
mod cpu;
mod devices;
mod gdt;
mod interrupts;
mod machine;
mod memory;
mod pci;
mod platform;
mod ports;
mod tests;
mod threads;
mod time;
mod timer;
mod traps;

use arch::X86_64;
use arch_x86_64::{exit_status, layout, pvh};
use core::panic::PanicInfo;
use hal::Platform as _;

core::arch::global_asm!(
    include_str!("boot.s"),
    PHYS32_ENTRY_NOTE = const pvh::XEN_ELFNOTE_PHYS32_ENTRY,
    DEBUG_EXIT_PORT = const exit_status::DEBUG_EXIT_PORT,
    BOOT_FAILURE_EXIT_VALUE = const exit_status::port_value(kernel::exit_code::BOOT_FAILURE),
    KERNEL_VIRT_OFFSET = const layout::KERNEL_VIRT_OFFSET,
    BOOT_STACK_SIZE = const layout::BOOT_STACK_SIZE,
    options(att_syntax)
);

/// Called by the boot code in long mode, on the boot stack, with the
/// physical address of `hvm_start_info`.
#[unsafe(no_mangle)]
extern "C" fn x86_64_entry(start_info_paddr: u32) -> ! {
    console::init();
    kernel::entry::early::<X86_64>();
    gdt::init();
    traps::init();
    time::init();
    threads::init();
    let mut boot = match platform::read_boot_info(start_info_paddr as u64) {
        Ok(boot) => boot,
        Err(error) => {
            kernel::kprintln!("ferrite: unusable PVH start info: {error}");
            X86_64::exit(kernel::exit_code::BOOT_FAILURE);
        }
    };
    if let Err(error) = memory::init(&mut boot) {
        kernel::kprintln!("ferrite: cannot build the kernel page tables: {error}");
        X86_64::exit(kernel::exit_code::BOOT_FAILURE);
    }
    asid::init();
    let violations = memory::check_layout(&mut |v| kernel::kprintln!("layout violation: {v}"));
    match violations {
        Ok(0) => {}
        Ok(n) => panic!("the kernel's page tables break the layout in {n} places"),
        Err(e) => panic!("cannot walk the kernel's page tables: {e}"),
    }
    platform::set_boot_info(boot);
    kernel::entry::boot::<X86_64>(&tests::ARCH_TESTS)
}

#[global_allocator]
static ALLOCATOR: kernel::mm::heap::GlobalHeap = kernel::mm::heap::GlobalHeap;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    x86_64::instructions::interrupts::disable();
    console::break_lock_for_panic();
    kernel::entry::panic(info);
    X86_64::exit(kernel::exit_code::PANIC)
}
