/*
 * Trap entry: one stub per vector pushes a zero error code where the CPU
 * pushes none, then the vector, and jumps to trap_common, which saves the
 * general registers to complete a TrapFrame and calls x86_64_trap.
 */

.altmacro

.macro trap_stub vector, has_error_code
.p2align 4
trap_stub_\vector:
    .if \has_error_code == 0
    push $0
    .endif
    push $\vector
    jmp trap_common
.endm

.macro trap_stub_address vector
    .quad trap_stub_\vector
.endm

.section .text.traps, "ax"
.code64

/* Exceptions with an error code: #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX. */
.set vector, 0
.rept 256
    .if vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30
    trap_stub %vector, 1
    .else
    trap_stub %vector, 0
    .endif
    .set vector, vector + 1
.endr

trap_common:
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
    /* Known flags for the kernel: a trap from user mode keeps RFLAGS.AC,
     * which user code can set and which would switch SMAP off; DF must
     * be clear. (IF is already clear: every gate is an interrupt gate.) */
    push $2
    popfq
    mov %rsp, %rdi
    call x86_64_trap
/* Restores a TrapFrame at %rsp and returns from the trap. */
.global trap_return
trap_return:
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
    iretq

/*
 * fault_catch_call(f, arg): calls f(arg) with fault recovery armed. Returns
 * 0 if f returned, 1 if a kernel fault was caught (the handler then resumes
 * at fault_catch_recover with this frame's callee-saved registers intact
 * on the stack).
 */
.global fault_catch_call
fault_catch_call:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, FAULT_RECOVERY_RSP(%rip)
    movb $1, FAULT_RECOVERY_ARMED(%rip)
    sub $8, %rsp                    /* 16-byte alignment for the call */
    mov %rdi, %rax
    mov %rsi, %rdi
    call *%rax
    add $8, %rsp
    movb $0, FAULT_RECOVERY_ARMED(%rip)
    xor %eax, %eax
    jmp 1f
.global fault_catch_recover
fault_catch_recover:
    mov FAULT_RECOVERY_RSP(%rip), %rsp
    mov $1, %eax
1:  pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret

.section .rodata.trap_stubs, "a"
.p2align 3
.global trap_stub_table
trap_stub_table:
.set vector, 0
.rept 256
    trap_stub_address %vector
    .set vector, vector + 1
.endr
