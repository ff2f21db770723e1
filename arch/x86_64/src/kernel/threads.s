/*
 * Kernel stack switching, the first run of new threads, and system call
 * entry. Frames built here match TrapFrame in traps.rs.
 */

.section .text.threads, "ax"
.code64

/*
 * x86_64_switch(save: *mut usize, load: usize): saves the callee-saved
 * registers on this stack, stores its pointer at *save and resumes the
 * stack at load. A prepared stack holds the same six registers and a
 * return address.
 */
.global x86_64_switch
x86_64_switch:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, (%rdi)
    mov %rsi, %rsp
/* Resumes the kernel context at RSP: what a switch saved or prepared. */
load_context:
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret

/* First run of a user thread: %rsp points at its TrapFrame. */
.global user_thread_start
user_thread_start:
    call x86_64_user_thread_started
    jmp trap_return

/* First run of a kernel thread: main in %r12, its argument in %r13. */
.global kernel_thread_start
kernel_thread_start:
    mov %r13, %rdi
    call *%r12
    ud2

/*
 * SYSCALL from user mode: RCX holds the return address, R11 the flags,
 * and interrupts are off (SFMASK). One CPU, so the user stack pointer can
 * wait in a static while the kernel stack is loaded.
 *
 * The frame has TrapFrame's layout, but only the registers a call reads
 * or must give back are stored: the number and arguments (RAX, RDI, RSI,
 * RDX, R10, R8, R9), and the return state. The callee-saved registers
 * stay in the CPU (the kernel's own code preserves them), and RCX and R11
 * belong to SYSCALL; their slots are left as they are.
 */
.global syscall_entry
syscall_entry:
    mov %rsp, syscall_user_rsp(%rip)
    mov syscall_kernel_rsp(%rip), %rsp
    push ${USER_DATA_SELECTOR}
    push syscall_user_rsp(%rip)
    push %r11
    push ${USER_CODE_SELECTOR}
    push %rcx
    push $0                         /* error code */
    push ${SYSCALL_VECTOR}
    sub $120, %rsp                  /* the general registers */
    mov %rax, 112(%rsp)
    mov %rdx, 88(%rsp)
    mov %rsi, 80(%rsp)
    mov %rdi, 72(%rsp)
    mov %r8, 56(%rsp)
    mov %r9, 48(%rsp)
    mov %r10, 40(%rsp)
    cmp ${SYSCALL_CALL}, %rax
    je fast_syscall
    cmp ${SYSCALL_REPLY_RECV}, %rax
    je fast_syscall
general_syscall:
    mov %rsp, %rdi
    call x86_64_syscall
    /* Non-zero: SYSRET can return (see x86_64_syscall). MOV keeps flags. */
    test %eax, %eax
    mov 112(%rsp), %rax
    mov 88(%rsp), %rdx
    mov 80(%rsp), %rsi
    mov 72(%rsp), %rdi
    mov 56(%rsp), %r8
    mov 48(%rsp), %r9
    mov 40(%rsp), %r10
    jz 1f
    mov 136(%rsp), %rcx             /* rip */
    mov 152(%rsp), %r11             /* rflags */
    mov 160(%rsp), %rsp             /* the user stack; ss is implied */
    sysretq
1:  add $136, %rsp                  /* to rip, cs, rflags, rsp, ss */
    iretq

/*
 * The IPC fast path (call, reply_recv). The callee-saved registers go into
 * the frame too, so that the frame alone can resume the thread, and below
 * it goes the kernel context a general wake-up resumes it at: the six
 * registers x86_64_switch pops (their values do not matter) and the
 * address of ipc_resume. The fast path runs below that context.
 * x86_64_fast_syscall returns only to decline; otherwise it leaves
 * through x86_64_resume_frame or x86_64_resume_context, so nothing it
 * preserved for a return is restored in vain.
 */
fast_syscall:
    mov %r15, 0(%rsp)
    mov %r14, 8(%rsp)
    mov %r13, 16(%rsp)
    mov %r12, 24(%rsp)
    mov %rbp, 64(%rsp)
    mov %rbx, 104(%rsp)
    lea ipc_resume(%rip), %rax
    mov %rax, -8(%rsp)
    mov %rsp, %rdi
    sub ${RESUME_CONTEXT_SPACE}, %rsp
    call x86_64_fast_syscall
    add ${RESUME_CONTEXT_SPACE}, %rsp
    jmp general_syscall             /* the frame is as it was */

/* x86_64_resume_frame(frame): to user mode from a blocked thread's frame. */
.global x86_64_resume_frame
x86_64_resume_frame:
    mov %rdi, %rsp
    jmp syscall_exit_full

/* x86_64_resume_context(sp): loads a switched-out thread's context. */
.global x86_64_resume_context
x86_64_resume_context:
    mov %rdi, %rsp
    jmp load_context

/*
 * A thread that blocked on the fast path, woken the general way: the
 * switch to it popped the context below its frame. x86_64_ipc_resumed
 * writes the call's results into the frame.
 */
ipc_resume:
    mov %rsp, %rdi
    call x86_64_ipc_resumed

/* Returns to user mode from the frame at RSP, every register from it. */
syscall_exit_full:
    mov 0(%rsp), %r15
    mov 8(%rsp), %r14
    mov 16(%rsp), %r13
    mov 24(%rsp), %r12
    mov 40(%rsp), %r10
    mov 48(%rsp), %r9
    mov 56(%rsp), %r8
    mov 64(%rsp), %rbp
    mov 72(%rsp), %rdi
    mov 80(%rsp), %rsi
    mov 88(%rsp), %rdx
    mov 104(%rsp), %rbx
    mov 112(%rsp), %rax
    add $136, %rsp
    iretq

.section .bss.syscall, "aw", @nobits
.p2align 3
.global syscall_kernel_rsp
syscall_kernel_rsp:
    .skip 8
syscall_user_rsp:
    .skip 8
