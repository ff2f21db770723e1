/*
 * Entry from QEMU's ELF loader: physical addresses, MMU off, normally in
 * Secure SVC mode. We build a boot translation table inside the image,
 * turn the MMU on and continue in the higher half.
 */

.section .boot.text, "ax"
.arm
.global _start
_start:
    /* QEMU starts every core here. Until SMP support, only core 0 of
     * cluster 0 (MPIDR affinity 0) boots; the others wait for ever with
     * interrupts masked, touching nothing. */
    mrc     p15, 0, r4, c0, c0, 5   /* MPIDR */
    ldr     r5, =0x00ffffff
    tst     r4, r5
    beq     0f
    cpsid   aif
9:  wfi
    b       9b
0:
    /* HYP mode (e.g. -M vexpress-a15,secure=off) ignores the stage-1 MMU
     * settings used here: drop to SVC with an exception return. */
    mrs     r4, cpsr
    and     r4, r4, #0x1f
    cmp     r4, #0x1a
    bne     1f
    .arch_extension virt
    ldr     r4, =0x1d3              /* SVC, A I F masked */
    msr     spsr_hyp, r4
    adr     r4, 1f
    msr     elr_hyp, r4
    eret
1:  cpsid   aif, #0x13
    mov     r10, r2                 /* device tree from the loader, if any */

    /* Clear .bss (the table and stacks are in it) at its physical address. */
    ldr     r0, =__bss_start - {KERNEL_VIRT_OFFSET}
    ldr     r1, =__bss_end - {KERNEL_VIRT_OFFSET}
    mov     r2, #0
2:  cmp     r0, r1
    strlo   r2, [r0], #4
    blo     2b

    ldr     r0, =boot_l1_table - {KERNEL_VIRT_OFFSET}
    ldr     r3, ={BOOT_SECTION_ATTRS}
    /* Identity-map the section holding this code: it runs while the MMU
     * turns on. */
    adr     r1, _start
    lsr     r1, r1, #20
    orr     r2, r3, r1, lsl #20
    str     r2, [r0, r1, lsl #2]
    /* Map the start of RAM at the kernel's virtual base. */
    ldr     r1, ={RAM_BASE}
    ldr     r4, =({KERNEL_VIRT_BASE} >> 20)
    ldr     r5, ={BOOT_MAPPED_SECTIONS}
3:  orr     r2, r3, r1
    str     r2, [r0, r4, lsl #2]
    add     r1, r1, #0x100000
    add     r4, r4, #1
    subs    r5, r5, #1
    bne     3b

    /* TTBR0 alone translates for now (TTBCR.N = 0); walks are cached.
     * Domain 0 is a client, so the tables' permissions are checked. */
    mov     r1, #0
    mcr     p15, 0, r1, c2, c0, 2   /* TTBCR */
    orr     r1, r0, #{TTBR_WALK_ATTRS}
    mcr     p15, 0, r1, c2, c0, 0   /* TTBR0 */
    mov     r1, #1
    mcr     p15, 0, r1, c3, c0, 0   /* DACR */
    mov     r1, #0
    mcr     p15, 0, r1, c8, c7, 0   /* TLBIALL */
    mcr     p15, 0, r1, c7, c5, 0   /* ICIALLU */
    mcr     p15, 0, r1, c7, c5, 6   /* BPIALL */
    dsb
    isb
    mrc     p15, 0, r1, c1, c0, 0   /* SCTLR */
    ldr     r2, ={SCTLR_SET}
    orr     r1, r1, r2
    ldr     r2, ={SCTLR_CLEAR}
    bic     r1, r1, r2
    mcr     p15, 0, r1, c1, c0, 0
    isb
    ldr     pc, =higher_half_entry
    .ltorg

.section .text.higher_half_entry, "ax"
.arm
higher_half_entry:
    /* A stack for every mode an exception can enter; SVC last, to stay. */
    cps     #0x12
    ldr     sp, =irq_stack_top
    cps     #0x17
    ldr     sp, =abort_stack_top
    cps     #0x1b
    ldr     sp, =undefined_stack_top
    cps     #0x11
    ldr     sp, =fiq_stack_top
    cps     #0x13
    ldr     sp, =svc_stack_top
    mov     fp, #0                  /* ends frame-pointer backtraces */
    mov     r0, r10
    bl      armv7_entry
    udf     #0
    .ltorg

.section .bss.boot_l1_table, "aw", %nobits
.p2align 14
.global boot_l1_table
boot_l1_table:
    .skip 16384

.section .bss.stacks, "aw", %nobits
/* Each stack sits above a guard page the kernel leaves unmapped. */
.p2align 12
.global svc_stack_guard
svc_stack_guard:
    .skip 4096
    .skip {SVC_STACK_SIZE}
.global svc_stack_top
svc_stack_top:
.global irq_stack_guard
irq_stack_guard:
    .skip 4096
    .skip {EXCEPTION_STACK_SIZE}
irq_stack_top:
.global abort_stack_guard
abort_stack_guard:
    .skip 4096
    .skip {EXCEPTION_STACK_SIZE}
abort_stack_top:
.global undefined_stack_guard
undefined_stack_guard:
    .skip 4096
    .skip {EXCEPTION_STACK_SIZE}
undefined_stack_top:
.global fiq_stack_guard
fiq_stack_guard:
    .skip 4096
    .skip {EXCEPTION_STACK_SIZE}
fiq_stack_top:
