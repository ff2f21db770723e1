/*
 * Exception entry. Every exception is handled in SVC mode on the SVC stack:
 * the entry pushes the return address and SPSR there (SRS), switches to SVC
 * and completes a TrapFrame (r0-r12, lr_svc, sp_usr, lr_usr, kind, pad, pc,
 * cpsr: 20 words) for armv7_trap. RFE returns.
 */

.arm
.section .text.vectors, "ax"
.p2align 5
.global exception_vectors
exception_vectors:
    b reserved_entry            /* reset: never taken through VBAR */
    b undefined_entry
    b svc_entry
    b prefetch_abort_entry
    b data_abort_entry
    b reserved_entry            /* hypervisor trap: never in SVC/USR */
    b irq_entry
    b fiq_entry

.macro save_and_call kind
    srsdb sp!, #0x13
    cps #0x13
    sub sp, sp, #16             /* sp_usr, lr_usr, kind, pad */
    push {r0-r12, lr}
    mov r1, #\kind
    b trap_body
.endm

trap_body:
    add r0, sp, #56
    stm r0, {sp, lr}^           /* the user-mode sp and lr */
    str r1, [sp, #64]
    mov r4, sp
    bic sp, sp, #7              /* AAPCS: 8-byte aligned for the call */
    mov r0, r4
    bl armv7_trap
/* Restores the TrapFrame at r4 and returns from the exception. */
.global trap_exit
trap_exit:
    mov sp, r4
    add r0, sp, #56
    ldm r0, {sp, lr}^
    nop                         /* no banked access right after LDM ^ */
    pop {r0-r12, lr}
    add sp, sp, #16
    rfeia sp!

/*
 * An abort taken while an abort entry was saving state (so from abort
 * mode) means the SVC stack pointer was bad: a kernel stack overflow into
 * a guard page. Switch SVC to the emergency stack so the report can be made.
 */
.macro check_double_abort
    push {r0}
    mrs r0, spsr
    and r0, r0, #0x1f
    cmp r0, #0x17
    pop {r0}
    bne 1f
    cps #0x13
    ldr sp, =emergency_stack_top
    cps #0x17
    mov r0, #7                  /* kind: double abort */
    b double_abort_entry
1:
.endm

reserved_entry:
    save_and_call 0
undefined_entry:
    save_and_call 1
/*
 * SVC: the IPC fast path is tried first for call and reply_recv from
 * user mode (numbers 24 and 26, checked against the ABI in traps.rs).
 * Below the frame goes the kernel context a general wake-up resumes the
 * thread at, as armv7_switch pops it: TPIDRURW, r4 (the frame), r5-r11
 * (any values) and ipc_resume. The fast path runs below that context;
 * armv7_fast_syscall returns only to decline, and otherwise leaves
 * through armv7_resume_frame or armv7_load_context.
 */
svc_entry:
    srsdb sp!, #0x13
    cps #0x13
    sub sp, sp, #16
    push {r0-r12, lr}
    add r0, sp, #56
    stm r0, {sp, lr}^
    mov r4, sp
    cmp r7, #24
    cmpne r7, #26
    bne svc_general
    ldr r2, [r4, #76]           /* the caller's CPSR: User mode (0x10) */
    tst r2, #0xf                /* is the only one with M[3:0] = 0 */
    bne svc_general
    mrc p15, 0, r2, c13, c0, 2
    str r2, [r4, #-40]
    str r4, [r4, #-36]
    ldr r3, =ipc_resume
    str r3, [r4, #-4]
    sub sp, r4, #40
    mov r0, r4
    bl armv7_fast_syscall
    b svc_general               /* r4 still holds the frame, as it was */

/* armv7_resume_frame(frame): to user mode from a blocked thread's frame,
 * with the thread register it saved below it. */
.global armv7_resume_frame
armv7_resume_frame:
    ldr r2, [r0, #-40]
    mcr p15, 0, r2, c13, c0, 2
    mov sp, r0                  /* as trap_exit, from here */
    add r0, sp, #56
    ldm r0, {sp, lr}^
    nop
    pop {r0-r12, lr}
    add sp, sp, #16
    rfeia sp!

/* armv7_resume_context(sp): loads a switched-out thread's context. */
.global armv7_resume_context
armv7_resume_context:
    mov sp, r0
    b armv7_load_context
/* The frame's kind is stored only here: the fast path never reads it. */
svc_general:
    mov r1, #2
    str r1, [r4, #64]
    mov sp, r4
    bic sp, sp, #7
    mov r0, r4
    bl armv7_trap
    b trap_exit

/* A thread that blocked on the fast path, woken the general way: the
 * switch to it popped the context below its frame (r4). */
ipc_resume:
    mov r0, r4
    bl armv7_ipc_resumed
    b trap_exit
prefetch_abort_entry:
    sub lr, lr, #4
    check_double_abort
    save_and_call 3
data_abort_entry:
    sub lr, lr, #8
    check_double_abort
    save_and_call 4
irq_entry:
    sub lr, lr, #4
    save_and_call 5
fiq_entry:
    sub lr, lr, #4
    save_and_call 6
double_abort_entry:
    save_and_call 7
    .ltorg

/*
 * fault_catch_call(f, arg): calls f(arg) with fault recovery armed. Returns
 * 0 if f returned, 1 if a kernel fault was caught; the handler then resumes
 * at fault_catch_recover, which restores this frame.
 */
.section .text.fault_catch, "ax"
.global fault_catch_call
fault_catch_call:
    push {r4-r12, lr}
    ldr r2, =FAULT_RECOVERY_SP
    str sp, [r2]
    ldr r2, =FAULT_RECOVERY_ARMED
    mov r3, #1
    str r3, [r2]
    mov r2, r0
    mov r0, r1
    blx r2
    ldr r2, =FAULT_RECOVERY_ARMED
    mov r3, #0
    str r3, [r2]
    mov r0, #0
    pop {r4-r12, pc}
.global fault_catch_recover
fault_catch_recover:
    ldr r2, =FAULT_RECOVERY_SP
    ldr sp, [r2]
    mov r0, #1
    pop {r4-r12, pc}
    .ltorg

.section .bss.emergency_stack, "aw", %nobits
.p2align 12
    .skip 8192
emergency_stack_top:
