/* arch/switch_aarch64.S - context switch for AArch64 (AAPCS64, ELF).
 *
 * Saved frame, lowest address first (the saved stack pointer points at +0):
 *
 *   +0   d8  d9        +64  x19 x20   (fresh context: x19 = argument, x20 = entry)
 *   +16  d10 d11       +80  x21 x22
 *   +32  d12 d13       +96  x23 x24
 *   +48  d14 d15       +112 x25 x26
 *                      +128 x27 x28
 *                      +144 x29 (frame pointer) x30 (link register: where ret goes;
 *                                fresh context: corio__ctx_start)
 *   +160 padding to keep sp 16-byte aligned
 *
 * 176 bytes in all: exactly the callee-saved set of AAPCS64 (the low 64 bits
 * of v8-v15 are callee-saved; the rest of the vector registers are not).
 */
#if defined(__aarch64__) && !defined(CORIO_SWITCH_UCONTEXT)

    .text

/* Push the callee-saved set (the frame above) and store sp in *x0. */
.macro SAVE_FRAME
    sub     sp, sp, #176
    stp     d8,  d9,  [sp, #0]
    stp     d10, d11, [sp, #16]
    stp     d12, d13, [sp, #32]
    stp     d14, d15, [sp, #48]
    stp     x19, x20, [sp, #64]
    stp     x21, x22, [sp, #80]
    stp     x23, x24, [sp, #96]
    stp     x25, x26, [sp, #112]
    stp     x27, x28, [sp, #128]
    stp     x29, x30, [sp, #144]
    mov     x2, sp                /* *from_sp = our frame */
    str     x2, [x0]
.endm

/* void corio__ctx_switch(void **from_sp, void *to_sp)   x0 = from_sp, x1 = to_sp */
    .globl  corio__ctx_switch
    .hidden corio__ctx_switch
    .type   corio__ctx_switch, %function
    .p2align 4
corio__ctx_switch:
    .cfi_startproc
    SAVE_FRAME
    mov     sp, x1                /* onto the other stack */
.Lrestore:
    ldp     d8,  d9,  [sp, #0]
    ldp     d10, d11, [sp, #16]
    ldp     d12, d13, [sp, #32]
    ldp     d14, d15, [sp, #48]
    ldp     x19, x20, [sp, #64]
    ldp     x21, x22, [sp, #80]
    ldp     x23, x24, [sp, #96]
    ldp     x25, x26, [sp, #112]
    ldp     x27, x28, [sp, #128]
    ldp     x29, x30, [sp, #144]
    add     sp, sp, #176
    ret                           /* to x30: into the other context */
    .cfi_endproc
    .size   corio__ctx_switch, .-corio__ctx_switch

/* void corio__ctx_jump(void *to_sp)   x0 = to_sp; the current context is dropped */
    .globl  corio__ctx_jump
    .hidden corio__ctx_jump
    .type   corio__ctx_jump, %function
    .p2align 4
corio__ctx_jump:
    .cfi_startproc
    mov     sp, x0
    b       .Lrestore
    .cfi_endproc
    .size   corio__ctx_jump, .-corio__ctx_jump

/* void corio__ctx_switch_fresh(void **from_sp, void *to_sp)
 * As corio__ctx_switch, for a frame made by corio__ctx_make (only x19 and
 * x20 matter there), entered with a plain branch rather than ret, so the
 * return-stack predictor keeps our caller's entry for the fresh context's
 * final ret to consume (see switch_x86_64.S). */
    .globl  corio__ctx_switch_fresh
    .hidden corio__ctx_switch_fresh
    .type   corio__ctx_switch_fresh, %function
    .p2align 4
corio__ctx_switch_fresh:
    .cfi_startproc
    SAVE_FRAME
    ldp     x19, x20, [x1, #64]   /* argument, entry */
    add     sp, x1, #176
    b       corio__ctx_start
    .cfi_endproc
    .size   corio__ctx_switch_fresh, .-corio__ctx_switch_fresh

/* First instruction of a fresh context: x19 = argument, x20 = entry. The
 * entry returns the context to resume (in x0), which corio__ctx_jump takes. */
    .globl  corio__ctx_start
    .hidden corio__ctx_start
    .type   corio__ctx_start, %function
    .p2align 4
corio__ctx_start:
    .cfi_startproc
    .cfi_undefined x30            /* end of the call chain for debuggers */
    mov     x29, #0
    mov     x0, x19               /* entry(arg) */
    blr     x20
    b       corio__ctx_jump
    .cfi_endproc
    .size   corio__ctx_start, .-corio__ctx_start

#endif
    .section .note.GNU-stack,"",%progbits
