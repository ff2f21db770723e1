//! Exceptions and interrupts: the IDT, the trap frame, fault decoding and
//! reports, and recovery from expected kernel faults.

use crate::arch::X86_64;
use crate::{gdt, interrupts};
use core::fmt;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use hal::trap::{Access, Fault, FaultKind};
use spin::Once;
use x86_64::VirtAddr;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::InterruptDescriptorTable;

core::arch::global_asm!(include_str!("traps.s"), options(att_syntax));

unsafe extern "C" {
    static trap_stub_table: [u64; 256];
    fn fault_catch_call(f: extern "C" fn(usize), arg: usize) -> u32;
    fn fault_catch_recover();
}

/// Set while a fault-catching call runs; cleared by the call or the handler.
#[unsafe(no_mangle)]
static FAULT_RECOVERY_ARMED: AtomicU8 = AtomicU8::new(0);
/// Stack pointer to resume at after a caught fault.
#[unsafe(no_mangle)]
static FAULT_RECOVERY_RSP: AtomicU64 = AtomicU64::new(0);

/// Registers at the time of a trap, as the entry stubs and the CPU left them.
#[repr(C)]
#[derive(Clone, Debug)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    /// A frame of zeros, to fill in.
    pub const fn zeroed() -> TrapFrame {
        TrapFrame {
            r15: 0,
            r14: 0,
            r13: 0,
            r12: 0,
            r11: 0,
            r10: 0,
            r9: 0,
            r8: 0,
            rbp: 0,
            rdi: 0,
            rsi: 0,
            rdx: 0,
            rcx: 0,
            rbx: 0,
            rax: 0,
            vector: 0,
            error_code: 0,
            rip: 0,
            cs: 0,
            rflags: 0,
            rsp: 0,
            ss: 0,
        }
    }

    /// Whether the trap came from user mode.
    pub fn user_mode(&self) -> bool {
        self.cs & 3 == 3
    }
}

impl fmt::Display for TrapFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  rip {:#018x}  cs {:#06x}  rflags {:#010x}  rsp {:#018x}  ss {:#06x}",
            self.rip, self.cs, self.rflags, self.rsp, self.ss
        )?;
        writeln!(
            f,
            "  rax {:#018x}  rbx {:#018x}  rcx {:#018x}  rdx {:#018x}",
            self.rax, self.rbx, self.rcx, self.rdx
        )?;
        writeln!(
            f,
            "  rsi {:#018x}  rdi {:#018x}  rbp {:#018x}  r8  {:#018x}",
            self.rsi, self.rdi, self.rbp, self.r8
        )?;
        writeln!(
            f,
            "  r9  {:#018x}  r10 {:#018x}  r11 {:#018x}  r12 {:#018x}",
            self.r9, self.r10, self.r11, self.r12
        )?;
        write!(
            f,
            "  r13 {:#018x}  r14 {:#018x}  r15 {:#018x}",
            self.r13, self.r14, self.r15
        )
    }
}

/// The architectural name of exception `vector`.
pub fn exception_name(vector: u8) -> &'static str {
    const NAMES: [&str; 32] = [
        "#DE divide error",
        "#DB debug",
        "NMI",
        "#BP breakpoint",
        "#OF overflow",
        "#BR bound range exceeded",
        "#UD invalid opcode",
        "#NM device not available",
        "#DF double fault",
        "coprocessor segment overrun",
        "#TS invalid TSS",
        "#NP segment not present",
        "#SS stack-segment fault",
        "#GP general protection",
        "#PF page fault",
        "reserved (15)",
        "#MF x87 floating-point",
        "#AC alignment check",
        "#MC machine check",
        "#XM SIMD floating-point",
        "#VE virtualization",
        "#CP control protection",
        "reserved (22)",
        "reserved (23)",
        "reserved (24)",
        "reserved (25)",
        "reserved (26)",
        "reserved (27)",
        "#HV hypervisor injection",
        "#VC VMM communication",
        "#SX security",
        "reserved (31)",
    ];
    NAMES.get(vector as usize).copied().unwrap_or("interrupt")
}

const PAGE_FAULT: u64 = 14;

/// Decodes an exception into the portable form.
pub fn decode(frame: &TrapFrame) -> Fault {
    let (kind, access, address) = match frame.vector {
        PAGE_FAULT => {
            let error = frame.error_code;
            let kind = if error & 1 == 0 {
                FaultKind::NotMapped
            } else {
                FaultKind::Permission
            };
            let access = if error & (1 << 4) != 0 {
                Access::Execute
            } else if error & (1 << 1) != 0 {
                Access::Write
            } else {
                Access::Read
            };
            (kind, Some(access), Cr2::read_raw() as usize)
        }
        0 => (FaultKind::DivideByZero, None, frame.rip as usize),
        3 => (FaultKind::Breakpoint, None, frame.rip as usize),
        // #NM: x87 and SSE are disabled, so their instructions are illegal.
        6 | 7 => (FaultKind::IllegalInstruction, None, frame.rip as usize),
        13 => (FaultKind::GeneralProtection, None, frame.rip as usize),
        17 => (FaultKind::Alignment, None, frame.rip as usize),
        _ => (FaultKind::Other, None, frame.rip as usize),
    };
    Fault {
        kind,
        access,
        address,
        pc: frame.rip as usize,
        detail: frame.vector << 32 | frame.error_code,
    }
}

static IDT: Once<InterruptDescriptorTable> = Once::new();

/// Builds and loads the IDT: every vector goes to its stub.
pub fn init() {
    let idt = IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        // SAFETY: trap_stub_table lists the 256 stubs in traps.s, each a
        // valid handler entry; the IST indices exist in the loaded TSS.
        unsafe {
            let stub = |vector: usize| VirtAddr::new(trap_stub_table[vector]);
            idt.divide_error.set_handler_addr(stub(0));
            idt.debug.set_handler_addr(stub(1));
            idt.non_maskable_interrupt
                .set_handler_addr(stub(2))
                .set_stack_index(gdt::NMI_IST);
            idt.breakpoint.set_handler_addr(stub(3));
            idt.overflow.set_handler_addr(stub(4));
            idt.bound_range_exceeded.set_handler_addr(stub(5));
            idt.invalid_opcode.set_handler_addr(stub(6));
            idt.device_not_available.set_handler_addr(stub(7));
            idt.double_fault
                .set_handler_addr(stub(8))
                .set_stack_index(gdt::DOUBLE_FAULT_IST);
            idt[9].set_handler_addr(stub(9));
            idt.invalid_tss.set_handler_addr(stub(10));
            idt.segment_not_present.set_handler_addr(stub(11));
            idt.stack_segment_fault.set_handler_addr(stub(12));
            idt.general_protection_fault.set_handler_addr(stub(13));
            idt.page_fault.set_handler_addr(stub(14));
            idt.x87_floating_point.set_handler_addr(stub(16));
            idt.alignment_check.set_handler_addr(stub(17));
            idt.machine_check.set_handler_addr(stub(18));
            idt.simd_floating_point.set_handler_addr(stub(19));
            idt.virtualization.set_handler_addr(stub(20));
            idt.cp_protection_exception.set_handler_addr(stub(21));
            idt.hv_injection_exception.set_handler_addr(stub(28));
            idt.vmm_communication_exception.set_handler_addr(stub(29));
            idt.security_exception.set_handler_addr(stub(30));
            for vector in 32..=255u8 {
                idt[vector].set_handler_addr(stub(vector as usize));
            }
        }
        idt
    });
    idt.load();
}

/// If a fault-catching call is running, ends it with `fault`: the trap
/// returns into `fault_catch_recover`.
fn recover(frame: &mut TrapFrame, fault: Fault) -> bool {
    if frame.user_mode() || FAULT_RECOVERY_ARMED.swap(0, Ordering::SeqCst) == 0 {
        return false;
    }
    kernel::entry::kernel_fault_caught(fault);
    frame.rip = fault_catch_recover as *const () as u64;
    true
}

/// Runs `f(arg)`, turning a kernel fault inside it into `Err`.
///
/// # Safety
/// If `f` faults, its frames are abandoned where they stand: it must hold
/// no locks and own nothing that needs dropping. Calls do not nest.
pub unsafe fn catch_fault(f: extern "C" fn(usize), arg: usize) -> Result<(), Fault> {
    // SAFETY: fault_catch_call preserves the callee-saved registers and the
    // stack on both of its return paths.
    kernel::entry::guarded_call_ended(unsafe { fault_catch_call(f, arg) } != 0)
}

/// Where every trap lands, with the frame the entry stub built.
#[unsafe(no_mangle)]
extern "C" fn x86_64_trap(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    if vector >= interrupts::FIRST_VECTOR {
        interrupt(vector);
        if frame.user_mode() {
            kernel::entry::before_user_return::<X86_64>();
        }
        return;
    }
    let fault = decode(frame);
    if frame.user_mode() {
        // A user-mode fault in the kernel half is rare: only then is LSTAR
        // read to compare.
        let lstar = || x86_64::registers::model_specific::LStar::read().as_u64();
        if frame.rip >= arch_x86_64::layout::KERNEL_SPACE_START && frame.rip == lstar() {
            // SYSCALL jumped to LSTAR (RCX and R11 were saved, RFLAGS
            // masked) but left CS and SS as user mode had them, so the
            // entry's first fetch faults as a user access. A real CPU
            // always loads them from STAR; some virtual CPUs do not.
            log::error!(
                "SYSCALL reached the kernel's entry without entering ring 0 (cs {:#x}, ss {:#x}): \
                 this virtual CPU does not implement SYSCALL, so user programs cannot run here",
                frame.cs,
                frame.ss
            );
        }
        // Returns only if the fault was resolved (a page brought in);
        // otherwise the process is killed and this thread never resumes.
        kernel::entry::user_fault::<X86_64>(fault, exception_name(vector));
        kernel::entry::before_user_return::<X86_64>();
        return;
    }
    if recover(frame, fault) {
        return;
    }
    if fault.kind == FaultKind::Breakpoint {
        // RIP already points past the INT3.
        kernel::entry::kernel_breakpoint(frame.rip as usize - 1);
        return;
    }
    let cr2 = if frame.vector == PAGE_FAULT {
        alloc::format!(", cr2 {:#x}", fault.address)
    } else {
        alloc::string::String::new()
    };
    panic!(
        "{} (vector {vector}, error code {:#x}{cr2}) in {} mode: {fault}\n{frame}",
        exception_name(vector),
        frame.error_code,
        if frame.user_mode() { "user" } else { "kernel" }
    );
}

/// A device, timer or software interrupt.
fn interrupt(vector: u8) {
    match vector {
        // The local APIC withdrew an interrupt: no end of interrupt.
        interrupts::SPURIOUS_VECTOR => kernel::entry::spurious_interrupt(),
        interrupts::ERROR_VECTOR => {
            log::warn!("local APIC error");
            interrupts::end_of_interrupt(vector);
        }
        _ => {
            kernel::entry::interrupt::<X86_64>((vector - interrupts::FIRST_VECTOR) as usize);
            interrupts::end_of_interrupt(vector);
        }
    }
}
