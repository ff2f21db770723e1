//! Exceptions: the vector table, the trap frame, fault decoding and
//! reports, and recovery from expected kernel faults.

use crate::arch::Armv7;
use aarch32_cpu::register::{Dfar, Dfsr, Ifar, Ifsr, Vbar};
use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};
use hal::trap::{Access, Fault, FaultKind};
use kernel::task::Resume;

core::arch::global_asm!(include_str!("traps.s"), options(raw));

unsafe extern "C" {
    static exception_vectors: u8;
    fn fault_catch_call(f: extern "C" fn(usize), arg: usize) -> u32;
    fn fault_catch_recover();
}

/// Set while a fault-catching call runs; cleared by the call or the handler.
#[unsafe(no_mangle)]
static FAULT_RECOVERY_ARMED: AtomicU32 = AtomicU32::new(0);
/// Stack pointer to resume at after a caught fault.
#[unsafe(no_mangle)]
static FAULT_RECOVERY_SP: AtomicU32 = AtomicU32::new(0);

/// What the entry code calls each exception (the `kind` word).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    Reserved = 0,
    Undefined = 1,
    Svc = 2,
    PrefetchAbort = 3,
    DataAbort = 4,
    Irq = 5,
    Fiq = 6,
    DoubleAbort = 7,
}

impl Kind {
    fn from_word(word: u32) -> Kind {
        match word {
            1 => Kind::Undefined,
            2 => Kind::Svc,
            3 => Kind::PrefetchAbort,
            4 => Kind::DataAbort,
            5 => Kind::Irq,
            6 => Kind::Fiq,
            7 => Kind::DoubleAbort,
            _ => Kind::Reserved,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Reserved => "reserved vector",
            Kind::Undefined => "undefined instruction",
            Kind::Svc => "supervisor call",
            Kind::PrefetchAbort => "prefetch abort",
            Kind::DataAbort => "data abort",
            Kind::Irq => "IRQ",
            Kind::Fiq => "FIQ",
            Kind::DoubleAbort => "abort while entering an abort handler (kernel stack overflow?)",
        }
    }
}

/// Registers at the time of an exception, as the entry code saved them.
#[repr(C)]
#[derive(Clone, Debug)]
pub struct TrapFrame {
    pub r: [u32; 13],
    pub lr_svc: u32,
    pub sp_usr: u32,
    pub lr_usr: u32,
    pub kind: u32,
    _pad: u32,
    /// Where the exception returns to: the faulting instruction for
    /// aborts, the next one for undefined instructions and SVCs.
    pub pc: u32,
    pub cpsr: u32,
}

const MODE_MASK: u32 = 0x1f;
const MODE_USR: u32 = 0x10;
const THUMB: u32 = 1 << 5;

impl TrapFrame {
    /// A frame that returns to user mode at `pc` with `cpsr`.
    pub fn new_user(r: [u32; 13], sp_usr: u32, pc: u32, cpsr: u32) -> TrapFrame {
        TrapFrame {
            r,
            lr_svc: 0,
            sp_usr,
            lr_usr: 0,
            kind: Kind::Svc as u32,
            _pad: 0,
            pc,
            cpsr,
        }
    }

    /// Whether the exception came from user mode.
    pub fn user_mode(&self) -> bool {
        self.cpsr & MODE_MASK == MODE_USR
    }
}

impl fmt::Display for TrapFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.r.iter().enumerate() {
            write!(f, "  r{i:<2} {r:#010x}")?;
            if i % 4 == 3 {
                writeln!(f)?;
            }
        }
        writeln!(f, "  lr  {:#010x}", self.lr_svc)?;
        write!(
            f,
            "  pc  {:#010x}  cpsr {:#010x}  sp_usr {:#010x}  lr_usr {:#010x}",
            self.pc, self.cpsr, self.sp_usr, self.lr_usr
        )
    }
}

/// Decodes a short-descriptor fault status (FSR\[10\] and FSR\[3:0\]).
pub fn fault_kind(fsr: u32) -> FaultKind {
    match (fsr >> 6 & 0x10) | (fsr & 0xf) {
        0b00001 => FaultKind::Alignment,
        0b00101 | 0b00111 => FaultKind::NotMapped,
        0b01101 | 0b01111 | 0b01001 | 0b01011 | 0b00011 | 0b00110 => FaultKind::Permission,
        0b00010 => FaultKind::Breakpoint,
        _ => FaultKind::Other,
    }
}

/// Decodes an exception into the portable form.
pub fn decode(frame: &TrapFrame) -> Fault {
    let pc = frame.pc as usize;
    match Kind::from_word(frame.kind) {
        Kind::DataAbort => {
            let fsr = Dfsr::read().raw_value();
            let access = if fsr & (1 << 11) != 0 {
                Access::Write
            } else {
                Access::Read
            };
            Fault {
                kind: fault_kind(fsr),
                access: Some(access),
                address: Dfar::read().0 as usize,
                pc,
                detail: fsr as u64,
            }
        }
        Kind::PrefetchAbort => {
            let fsr = Ifsr::read().raw_value();
            let kind = fault_kind(fsr);
            let access = (kind != FaultKind::Breakpoint).then_some(Access::Execute);
            Fault {
                kind,
                access,
                address: Ifar::read().0 as usize,
                pc,
                detail: fsr as u64,
            }
        }
        Kind::Undefined => {
            let size = if frame.cpsr & THUMB != 0 { 2 } else { 4 };
            Fault {
                kind: FaultKind::IllegalInstruction,
                access: None,
                address: pc - size,
                pc: pc - size,
                detail: 0,
            }
        }
        _ => Fault {
            kind: FaultKind::Other,
            access: None,
            address: pc,
            pc,
            detail: frame.kind as u64,
        },
    }
}

/// Points VBAR at the vector table.
pub fn init() {
    let vectors = &raw const exception_vectors as u32;
    // SAFETY: the table is in kernel text, 32-byte aligned, and every entry
    // leads to a handler that saves and restores the interrupted state.
    unsafe { Vbar::write(Vbar(vectors)) };
    aarch32_cpu::asm::isb();
}

/// If a fault-catching call is running, ends it with `fault`: the exception
/// returns into `fault_catch_recover` in SVC mode.
fn recover(frame: &mut TrapFrame, fault: Fault) -> bool {
    if frame.user_mode() || FAULT_RECOVERY_ARMED.swap(0, Ordering::SeqCst) == 0 {
        return false;
    }
    kernel::entry::kernel_fault_caught(fault);
    frame.pc = fault_catch_recover as *const () as u32;
    // ARM state, SVC mode, interrupts as they were.
    frame.cpsr = (frame.cpsr & !(MODE_MASK | THUMB)) | 0x13;
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

/// Handles a system call from user mode: number in r7, arguments in
/// r0-r5, results in r0 and r1, a delivered message's words in r2-r5.
fn syscall(frame: &mut TrapFrame) {
    let returned = kernel::entry::system_call::<Armv7>(frame.r[7] as usize, arguments(frame));
    write_results(frame, returned.results, returned.message);
}

/// A call's arguments, as `abi::CALLING_CONVENTIONS` lists them.
#[inline(always)]
fn arguments(frame: &TrapFrame) -> [usize; 6] {
    let r = &frame.r;
    [
        r[0] as usize,
        r[1] as usize,
        r[2] as usize,
        r[3] as usize,
        r[4] as usize,
        r[5] as usize,
    ]
}

/// Puts a call's results, and a message's words, where the caller finds
/// them: the result registers, and the message registers.
#[inline(always)]
pub(crate) fn write_results(
    frame: &mut TrapFrame,
    [first, second]: [usize; 2],
    message: Option<[usize; 4]>,
) {
    frame.r[0] = first as u32;
    frame.r[1] = second as u32;
    if let Some(words) = message {
        for (register, word) in frame.r[2..6].iter_mut().zip(words) {
            *register = word as u32;
        }
    }
}

/// The system call frame at the top of the kernel stack ending at `top`
/// (the entry keeps the stack 8-byte aligned).
#[inline(always)]
pub(crate) fn frame_below(top: usize) -> *mut TrapFrame {
    ((top & !7) - size_of::<TrapFrame>()) as *mut TrapFrame
}

// traps.s compares the call number with these.
const _: () = assert!(abi::Syscall::Call as usize == 24 && abi::Syscall::ReplyRecv as usize == 26);

/// Bytes below a fast-path call's frame: the kernel context a general
/// wake-up resumes at (ten words, as `armv7_switch` pops them).
const RESUME_CONTEXT_BYTES: usize = 40;

unsafe extern "C" {
    fn armv7_resume_frame(frame: *mut TrapFrame) -> !;
    fn armv7_resume_context(sp: usize) -> !;
}

/// The IPC fast path, from `svc_entry`: hands the CPU to the partner and
/// resumes it, or returns to decline.
#[unsafe(no_mangle)]
extern "C" fn armv7_fast_syscall(frame: &mut TrapFrame) {
    let resume_sp = frame as *mut TrapFrame as usize - RESUME_CONTEXT_BYTES;
    let number = frame.r[7] as usize;
    match kernel::entry::fast_system_call::<Armv7>(number, arguments(frame), resume_sp) {
        None => {}
        // SAFETY: the partner blocked on the fast path, its frame complete
        // at the top of its stack; this stack's thread has blocked, to be
        // resumed at its own context.
        Some(Resume::Frame { stack_top }) => unsafe { armv7_resume_frame(frame_below(stack_top)) },
        // SAFETY: `sp` is the partner's context, saved when it switched
        // out, as a switch would load it.
        Some(Resume::Context { sp }) => unsafe { armv7_resume_context(sp) },
    }
}

/// A thread that blocked on the fast path, woken the general way (see
/// `ipc_resume` in traps.s): its call's results.
#[unsafe(no_mangle)]
extern "C" fn armv7_ipc_resumed(frame: &mut TrapFrame) {
    let returned = kernel::entry::ipc_resumed();
    write_results(frame, returned.results, returned.message);
    kernel::entry::before_user_return::<Armv7>();
}

/// Where every exception lands, with the frame the entry code built.
#[unsafe(no_mangle)]
extern "C" fn armv7_trap(frame: &mut TrapFrame) {
    let kind = Kind::from_word(frame.kind);
    match kind {
        Kind::Irq => {
            crate::interrupts::handle_irq();
            if frame.user_mode() {
                kernel::entry::before_user_return::<Armv7>();
            }
            return;
        }
        Kind::Svc if frame.user_mode() => {
            syscall(frame);
            kernel::entry::before_user_return::<Armv7>();
            return;
        }
        Kind::Fiq => {
            // Every interrupt is routed as IRQ; a FIQ is a stray. Report it
            // and return with FIQs masked, so it cannot storm.
            log::warn!("unexpected FIQ at {:#x}; FIQs masked from here", frame.pc);
            kernel::entry::spurious_interrupt();
            frame.cpsr |= 1 << 6;
            return;
        }
        Kind::DoubleAbort => panic!("{}\n{frame}", kind.name()),
        _ => {}
    }
    let fault = decode(frame);
    if frame.user_mode() {
        // Returns only if the fault was resolved (a page brought in);
        // otherwise the process is killed and this thread never resumes.
        kernel::entry::user_fault::<Armv7>(fault, kind.name());
        kernel::entry::before_user_return::<Armv7>();
        return;
    }
    if recover(frame, fault) {
        return;
    }
    if fault.kind == FaultKind::Breakpoint {
        kernel::entry::kernel_breakpoint(frame.pc as usize);
        frame.pc += 4;
        return;
    }
    let registers = match kind {
        Kind::DataAbort => alloc::format!(
            "DFSR {:#010x}, DFAR {:#010x}: ",
            fault.detail,
            fault.address
        ),
        Kind::PrefetchAbort => alloc::format!(
            "IFSR {:#010x}, IFAR {:#010x}: ",
            fault.detail,
            fault.address
        ),
        _ => alloc::string::String::new(),
    };
    panic!(
        "{} in {} mode: {registers}{fault}\n{frame}",
        kind.name(),
        if frame.user_mode() { "user" } else { "kernel" }
    );
}
