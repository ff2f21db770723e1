    .syntax unified
    .arm

/* memcpy(dst, src, n) -> dst; the __aeabi_ forms return nothing. */
    .section .text.memcpy, "ax", %progbits
    .p2align 2
    .global memcpy
    .global __aeabi_memcpy
    .global __aeabi_memcpy4
    .global __aeabi_memcpy8
    .type memcpy, %function
    .type __aeabi_memcpy, %function
    .type __aeabi_memcpy4, %function
    .type __aeabi_memcpy8, %function
memcpy:
__aeabi_memcpy:
__aeabi_memcpy4:
__aeabi_memcpy8:
    push    {r0, r4, r5, r6}
    subs    r2, r2, #16
    blo     .Lcopy_tail
    orr     r3, r0, r1
    tst     r3, #3
    bne     .Lcopy_unaligned
.Lcopy_aligned:
    ldm     r1!, {r3, r4, r5, r6}
    stm     r0!, {r3, r4, r5, r6}
    subs    r2, r2, #16
    bhs     .Lcopy_aligned
    b       .Lcopy_tail
.Lcopy_unaligned:
    ldr     r3, [r1], #4
    ldr     r4, [r1], #4
    ldr     r5, [r1], #4
    ldr     r6, [r1], #4
    str     r3, [r0], #4
    str     r4, [r0], #4
    str     r5, [r0], #4
    str     r6, [r0], #4
    subs    r2, r2, #16
    bhs     .Lcopy_unaligned
.Lcopy_tail:
    /* 0 to 15 bytes are left: r2 is that count minus 16, whose low four
       bits are the count's. */
    tst     r2, #8
    ldrne   r3, [r1], #4
    ldrne   r4, [r1], #4
    strne   r3, [r0], #4
    strne   r4, [r0], #4
    tst     r2, #4
    ldrne   r3, [r1], #4
    strne   r3, [r0], #4
    tst     r2, #2
    ldrhne  r3, [r1], #2
    strhne  r3, [r0], #2
    tst     r2, #1
    ldrbne  r3, [r1]
    strbne  r3, [r0]
    pop     {r0, r4, r5, r6}
    bx      lr
    .size memcpy, . - memcpy

/* memmove(dst, src, n) -> dst: forward through memcpy unless dst lies
   inside the source, then backward. */
    .section .text.memmove, "ax", %progbits
    .p2align 2
    .global memmove
    .global __aeabi_memmove
    .global __aeabi_memmove4
    .global __aeabi_memmove8
    .type memmove, %function
    .type __aeabi_memmove, %function
    .type __aeabi_memmove4, %function
    .type __aeabi_memmove8, %function
memmove:
__aeabi_memmove:
__aeabi_memmove4:
__aeabi_memmove8:
    /* dst - src, unsigned, is at least n when dst is below src (it wraps)
       or at or past the source's end: a forward copy is then safe. */
    sub     r3, r0, r1
    cmp     r3, r2
    bhs     memcpy
    mov     r12, r0
    add     r0, r0, r2
    add     r1, r1, r2
    subs    r2, r2, #4
    blo     .Lmove_bytes
.Lmove_words:
    ldr     r3, [r1, #-4]!
    str     r3, [r0, #-4]!
    subs    r2, r2, #4
    bhs     .Lmove_words
.Lmove_bytes:
    adds    r2, r2, #4
    beq     .Lmove_done
.Lmove_byte:
    ldrb    r3, [r1, #-1]!
    strb    r3, [r0, #-1]!
    subs    r2, r2, #1
    bne     .Lmove_byte
.Lmove_done:
    mov     r0, r12
    bx      lr
    .size memmove, . - memmove

/* memset(dst, byte, n) -> dst; __aeabi_memset(dst, n, byte) and
   __aeabi_memclr(dst, n) return nothing. */
    .section .text.memset, "ax", %progbits
    .p2align 2
    .global memset
    .global __aeabi_memset
    .global __aeabi_memset4
    .global __aeabi_memset8
    .global __aeabi_memclr
    .global __aeabi_memclr4
    .global __aeabi_memclr8
    .type memset, %function
    .type __aeabi_memset, %function
    .type __aeabi_memset4, %function
    .type __aeabi_memset8, %function
    .type __aeabi_memclr, %function
    .type __aeabi_memclr4, %function
    .type __aeabi_memclr8, %function
__aeabi_memclr:
__aeabi_memclr4:
__aeabi_memclr8:
    mov     r2, r1
    mov     r1, #0
    b       memset
__aeabi_memset:
__aeabi_memset4:
__aeabi_memset8:
    mov     r3, r1
    mov     r1, r2
    mov     r2, r3
memset:
    and     r1, r1, #0xff
    orr     r1, r1, r1, lsl #8
    orr     r1, r1, r1, lsl #16
    push    {r0, r4}
    mov     r3, r1
    mov     r4, r1
    mov     r12, r1
    subs    r2, r2, #16
    blo     .Lset_tail
    tst     r0, #3
    bne     .Lset_unaligned
.Lset_aligned:
    stm     r0!, {r1, r3, r4, r12}
    subs    r2, r2, #16
    bhs     .Lset_aligned
    b       .Lset_tail
.Lset_unaligned:
    str     r1, [r0], #4
    str     r1, [r0], #4
    str     r1, [r0], #4
    str     r1, [r0], #4
    subs    r2, r2, #16
    bhs     .Lset_unaligned
.Lset_tail:
    tst     r2, #8
    strne   r1, [r0], #4
    strne   r1, [r0], #4
    tst     r2, #4
    strne   r1, [r0], #4
    tst     r2, #2
    strhne  r1, [r0], #2
    tst     r2, #1
    strbne  r1, [r0]
    pop     {r0, r4}
    bx      lr
    .size memset, . - memset
