/*
 * Kernel stack switching and the first run of new threads. The kernel
 * runs in SVC mode, so the SVC stack pointer is the current thread's
 * kernel stack, and exceptions from user mode save their TrapFrame at its
 * top (see traps.s).
 */

.arm
.section .text.threads, "ax"

/*
 * armv7_switch(save: *mut usize, load: usize): saves the callee-saved
 * registers and the user read/write thread register (TPIDRURW, which user
 * code may use freely, so each thread has its own) on this stack, stores
 * its pointer at *save and resumes the stack at load, which holds the
 * same ten words.
 */
.global armv7_switch
armv7_switch:
    mrc p15, 0, r2, c13, c0, 2
    push {r2, r4-r11, lr}
    str sp, [r0]
    mov sp, r1
/* Resumes the kernel context at sp: what a switch saved or prepared. */
.global armv7_load_context
armv7_load_context:
    pop {r2, r4-r11, lr}
    mcr p15, 0, r2, c13, c0, 2
    bx lr

/* First run of a user thread: sp points at its TrapFrame. */
.global user_thread_start
user_thread_start:
    mov r4, sp
    bl armv7_user_thread_started
    b trap_exit

/* First run of a kernel thread: main in r4, its argument in r5. */
.global kernel_thread_start
kernel_thread_start:
    mov r0, r5
    blx r4
    udf #0
