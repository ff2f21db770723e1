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
 * wait in a static while the kernel stack is loaded. The frame is a full
 * TrapFrame, so a thread that entered here can be resumed, inspected or
 * killed like any other.
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
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    call x86_64_syscall
    /* Non-zero: SYSRET can restore the frame (see x86_64_syscall). */
    test %eax, %eax
    jz trap_return
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp                   /* vector and error code */
    pop %rcx                        /* rip */
    add $8, %rsp                    /* cs */
    pop %r11                        /* rflags */
    pop %rsp                        /* the user stack; ss is implied */
    sysretq

.section .bss.syscall, "aw", @nobits
.p2align 3
.global syscall_kernel_rsp
syscall_kernel_rsp:
    .skip 8
syscall_user_rsp:
    .skip 8
