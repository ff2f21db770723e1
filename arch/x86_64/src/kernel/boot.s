/*
 * PVH entry: QEMU loads the image at its physical addresses and enters
 * pvh_entry in 32-bit protected mode, paging off, %ebx = hvm_start_info.
 * We build boot page tables inside the image (never at fixed low addresses,
 * which firmware may own), enter long mode and jump to the higher half.
 */

.pushsection .note.Xen, "a", @note
    .p2align 2
    .long 4                         /* name size */
    .long 4                         /* descriptor size */
    .long {PHYS32_ENTRY_NOTE}       /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .p2align 2
    .long pvh_entry
.popsection

.pushsection .boot.text, "ax"
.code32
.global pvh_entry
pvh_entry:
    cli
    cld
    mov %ebx, %esi                  /* start info; cpuid clobbers %ebx */

    /* Long mode and no-execute pages are required. */
    mov $0x80000000, %eax
    cpuid
    cmp $0x80000001, %eax
    jb cpu_unsupported
    mov $0x80000001, %eax
    cpuid
    bt $29, %edx
    jnc cpu_unsupported
    bt $20, %edx
    jnc cpu_unsupported

    /* The tables are not loaded from the file: clear them. */
    mov $boot_page_tables, %edi
    mov $(4 * 4096 / 4), %ecx
    xor %eax, %eax
    rep stosl

    /* boot_pd maps the first 1 GiB with 2 MiB pages (present, writable). */
    mov $boot_pd, %edi
    mov $0x83, %eax
    mov $512, %ecx
1:  mov %eax, (%edi)
    add $0x200000, %eax
    add $8, %edi
    loop 1b

    /* One PD serves both the identity map (PML4[0] -> PDPT[0]) and the
     * kernel window at -2 GiB (PML4[511] -> PDPT[510]). */
    mov $(boot_pd + 3), %eax
    mov %eax, boot_pdpt_low
    mov %eax, boot_pdpt_high + 510 * 8
    mov $(boot_pdpt_low + 3), %eax
    mov %eax, boot_pml4
    mov $(boot_pdpt_high + 3), %eax
    mov %eax, boot_pml4 + 511 * 8

    /* PAE; long mode and no-execute in EFER; paging with write protect. */
    mov %cr4, %eax
    or $(1 << 5), %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx
    rdmsr
    or $((1 << 8) | (1 << 11)), %eax
    wrmsr
    mov %cr0, %eax
    or $((1 << 31) | (1 << 16)), %eax
    mov %eax, %cr0

    lgdt boot_gdt_pointer
    ljmp $0x08, $long_mode_entry

cpu_unsupported:
    /* Say why on COM1 (as the firmware left it), then leave QEMU. */
    mov $cpu_unsupported_message, %esi
    mov $0x3f8, %dx
2:  lodsb
    test %al, %al
    jz 3f
    out %al, %dx
    jmp 2b
3:  mov ${DEBUG_EXIT_PORT}, %dx
    mov ${BOOT_FAILURE_EXIT_VALUE}, %eax
    out %eax, %dx
4:  hlt
    jmp 4b

.code64
long_mode_entry:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    movabs $higher_half_entry, %rax
    jmp *%rax
.popsection

.pushsection .boot.rodata, "a"
.p2align 3
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff        /* 0x08: 64-bit kernel code */
    .quad 0x00cf92000000ffff        /* 0x10: kernel data */
boot_gdt_end:
boot_gdt_pointer:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt
cpu_unsupported_message:
    .asciz "ferrite: this CPU lacks long mode or no-execute pages; cannot boot\r\n"
.popsection

.pushsection .boot.bss, "aw", @nobits
.p2align 12
boot_page_tables:
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4096
.popsection

.pushsection .rodata.boot_gdt_pointer_high, "a"
.p2align 3
/* The same GDT through its kernel-window alias, valid without the identity map. */
boot_gdt_pointer_high:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt + {KERNEL_VIRT_OFFSET}
.popsection

.pushsection .text.higher_half_entry, "ax"
.code64
higher_half_entry:
    lgdt boot_gdt_pointer_high(%rip)
    /* Clear .bss (the boot stack is in it, so before using the stack),
       eight bytes a step: the linker script aligns both ends to 16, and
       under emulation each step of a REP counts as an instruction. */
    lea __bss_start(%rip), %rdi
    lea __bss_end(%rip), %rcx
    sub %rdi, %rcx
    shr $3, %rcx
    xor %eax, %eax
    rep stosq
    lea boot_stack_top(%rip), %rsp
    xor %ebp, %ebp                  /* ends frame-pointer backtraces */
    mov %esi, %edi                  /* start info physical address */
    call x86_64_entry
    ud2
.popsection

.pushsection .bss.boot_stack, "aw", @nobits
.p2align 12
/* Left unmapped by the kernel's page tables: an overflow faults. */
.global boot_stack_guard
boot_stack_guard:
    .skip 4096
boot_stack_bottom:
    .skip {BOOT_STACK_SIZE}
.global boot_stack_top
boot_stack_top:
.popsection
