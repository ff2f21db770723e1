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
 * registers on this stack, stores its pointer at *save and resumes the
 * stack at load, which holds the same nine words.
 */
.global armv7_switch
armv7_switch:
    push {r4-r11, lr}
    str sp, [r0]
    mov sp, r1
    pop {r4-r11, pc}

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
