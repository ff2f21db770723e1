//! Segments: the GDT and the TSS, whose interrupt stacks give double faults
//! and NMIs a known-good stack, and whose RSP0 is the kernel stack that
//! traps from user mode land on.

use core::cell::UnsafeCell;
use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot (1-based in the IDT, 0-based here) of the double-fault stack.
pub const DOUBLE_FAULT_IST: u16 = 0;
/// IST slot of the NMI stack.
pub const NMI_IST: u16 = 1;

const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u8; IST_STACK_SIZE]);

static mut DOUBLE_FAULT_STACK: Stack = Stack([0; IST_STACK_SIZE]);
static mut NMI_STACK: Stack = Stack([0; IST_STACK_SIZE]);

/// The kernel's segment selectors. The order of the user segments is what
/// SYSRET expects: user data at STAR.SYSRET + 8, user code at + 16.
#[derive(Clone, Copy, Debug)]
pub struct Selectors {
    pub kernel_code: SegmentSelector,
    pub kernel_data: SegmentSelector,
    pub user_data: SegmentSelector,
    pub user_code: SegmentSelector,
    pub tss: SegmentSelector,
}

/// The TSS, written after loading: RSP0 changes on every switch to a thread.
struct Tss(UnsafeCell<TaskStateSegment>);

// SAFETY: one CPU; RSP0 is written only with interrupts disabled (by the
// scheduler), and the CPU reads it only when an interrupt arrives.
unsafe impl Sync for Tss {}

static TSS: Tss = Tss(UnsafeCell::new(TaskStateSegment::new()));
static GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

fn stack_top(stack: *mut Stack) -> VirtAddr {
    VirtAddr::from_ptr(stack) + IST_STACK_SIZE as u64
}

/// Loads the GDT and TSS and reloads every segment register.
pub fn init() -> Selectors {
    let tss = TSS.0.get();
    // SAFETY: before the TSS is loaded nothing else reads or writes it.
    unsafe {
        (*tss).interrupt_stack_table[DOUBLE_FAULT_IST as usize] =
            stack_top(&raw mut DOUBLE_FAULT_STACK);
        (*tss).interrupt_stack_table[NMI_IST as usize] = stack_top(&raw mut NMI_STACK);
    }
    let (gdt, selectors) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let kernel_code = gdt.append(Descriptor::kernel_code_segment());
        let kernel_data = gdt.append(Descriptor::kernel_data_segment());
        let user_data = gdt.append(Descriptor::user_data_segment());
        let user_code = gdt.append(Descriptor::user_code_segment());
        // SAFETY: the TSS is a static, so valid for as long as the GDT is.
        let tss = gdt.append(unsafe { Descriptor::tss_segment_unchecked(tss) });
        (
            gdt,
            Selectors {
                kernel_code,
                kernel_data,
                user_data,
                user_code,
                tss,
            },
        )
    });
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, with the descriptors
    // each register needs.
    unsafe {
        CS::set_reg(selectors.kernel_code);
        SS::set_reg(selectors.kernel_data);
        DS::set_reg(selectors.kernel_data);
        ES::set_reg(selectors.kernel_data);
        load_tss(selectors.tss);
    }
    *selectors
}

/// The loaded selectors.
pub fn selectors() -> Selectors {
    GDT.get().expect("the GDT is loaded at boot").1
}

/// Makes `top` the stack the CPU switches to on a trap from user mode.
pub fn set_kernel_stack(top: u64) {
    // SAFETY: a single aligned store to a field the CPU reads only when it
    // takes an interrupt; callers have interrupts disabled.
    unsafe { (*TSS.0.get()).privilege_stack_table[0] = VirtAddr::new_truncate(top) };
}
