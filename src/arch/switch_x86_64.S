/* arch/switch_x86_64.S - context switch for x86-64 System V (ELF).
 *
 * Saved frame, lowest address first (the saved stack pointer points at +0):
 *
 *   +0   MXCSR (4 bytes) | x87 control word (2 bytes) | pad;
 *        all ones in a fresh frame (see below)
 *   +8   r15
 *   +16  r14
 *   +24  r13    (fresh context: entry function)
 *   +32  r12    (fresh context: entry argument)
 *   +40  rbx
 *   +48  rbp
 *   +56  return address (fresh context: corio__ctx_start)
 *
 * 64 bytes in all. Only the callee-saved set is kept: everything else is
 * already dead across a call. MXCSR and the x87 control word are callee-saved
 * state too (rounding mode, exception masks), so a task that changes them
 * does not change them for the others.
 *
 * How they are switched is measured, not guessed (AMD Zen 5, a bare
 * two-context yield): reading back the value stmxcsr just stored, to compare
 * it with the other context's, stalls the switch (8.0 ns a switch; 3.3 ns
 * without any FP words); storing MXCSR and always loading the other
 * context's with ldmxcsr costs less (6.3 ns). The x87 control word is cheap
 * to read back, and fldcw is the slower load, so it is compared and loaded
 * only when the two differ (5.9 ns).
 *
 * A fresh frame (corio__ctx_make) holds no FP words but all ones, which no
 * stmxcsr can store (MXCSR's upper half is reserved, always zero): a fresh
 * context starts with the modes of whoever enters it, and nothing is read
 * or loaded for it. That saves a stmxcsr in ctx_make and a ldmxcsr at the
 * entry, about 3 ns of every spawn-and-await (w3i 28.5 -> 25.1 ns). In corio
 * a task's frame is made by the context that then enters it, so a new task
 * starts with the modes of the task that started it, as before.
 */
#if defined(__x86_64__) && !defined(CORIO_SWITCH_UCONTEXT)

    .text

/* Push the callee-saved registers and FP control words (the frame above),
 * store rsp in *rdi, and move onto the stack in rsi. Leaves our x87 control
 * word in edx, for the caller to compare with the other context's. */
.macro SAVE_AND_SWITCH
    pushq   %rbp                  /* callee-saved registers, in frame order */
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    pushq   $0                    /* FP control words; zero the padding */
    stmxcsr (%rsp)                /* SSE control/status */
    fnstcw  4(%rsp)               /* x87 control word */
    movzwl  4(%rsp), %edx         /* (MXCSR is not read back: see above) */
    movq    %rsp, (%rdi)          /* *from_sp = our frame */
    movq    %rsi, %rsp            /* onto the other stack */
.endm

/* void corio__ctx_switch(void **from_sp, void *to_sp)   rdi = from_sp, rsi = to_sp */
    .globl  corio__ctx_switch
    .hidden corio__ctx_switch
    .type   corio__ctx_switch, @function
    .p2align 6
corio__ctx_switch:                /* (.p2align 6: all but the rare fldcw in one cache line) */
    .cfi_startproc
    SAVE_AND_SWITCH
.Lload_fp:
    cmpl    $-1, (%rsp)
    je      .Lpop                 /* a fresh frame: keep our modes */
    ldmxcsr (%rsp)                /* always: cheaper than comparing */
    cmpw    4(%rsp), %dx
    jne     .Lload_cw             /* rare: the other context has another x87 mode */
.Lpop:
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret                           /* into the other context: it was suspended
                                     from the same call site as we are (in
                                     corio__switch_to), so the return-stack
                                     predictor guesses right */
.Lload_cw:
    fldcw   4(%rsp)
    jmp     .Lpop
    .cfi_endproc
    .size   corio__ctx_switch, .-corio__ctx_switch

/* void corio__ctx_jump(void *to_sp)   rdi = to_sp; the current context is dropped */
    .globl  corio__ctx_jump
    .hidden corio__ctx_jump
    .type   corio__ctx_jump, @function
    .p2align 6
corio__ctx_jump:
    .cfi_startproc
    subq    $8, %rsp              /* the dying stack is scratch space: read our */
    fnstcw  4(%rsp)               /* x87 control word to compare, as above */
    movzwl  4(%rsp), %edx
    movq    %rdi, %rsp
    jmp     .Lload_fp
    .cfi_endproc
    .size   corio__ctx_jump, .-corio__ctx_jump

/* void corio__ctx_switch_fresh(void **from_sp, void *to_sp)
 * As corio__ctx_switch, for a frame made by corio__ctx_make: only r12 and r13
 * matter there, and it is entered by a jump, not a ret. A ret
 * would pop the return address our caller just pushed on the CPU's
 * return-stack predictor and mispredict (it lands in corio__ctx_start). Left
 * in place, that entry is exactly what the fresh context's final ret (in
 * corio__ctx_jump, reached by a jump when its entry returns) consumes when it
 * resumes us: spawn-and-await then costs no mispredicted return at all. */
    .globl  corio__ctx_switch_fresh
    .hidden corio__ctx_switch_fresh
    .type   corio__ctx_switch_fresh, @function
    .p2align 6
corio__ctx_switch_fresh:
    .cfi_startproc
    SAVE_AND_SWITCH                 /* (a fresh frame has no FP words to load) */
    movq    24(%rsp), %r13        /* entry */
    movq    32(%rsp), %r12        /* argument */
    addq    $64, %rsp             /* as if the frame had been popped by a ret */
    jmp     corio__ctx_start
    .cfi_endproc
    .size   corio__ctx_switch_fresh, .-corio__ctx_switch_fresh

/* First instruction of a fresh context: the frame built by corio__ctx_make
 * left the entry function in r13 and its argument in r12. The entry returns
 * the context to resume; the call and its ret pair up on the return-stack
 * predictor, and the jump to corio__ctx_jump pushes nothing, so the ret
 * there consumes the entry its resumer left (see corio__ctx_switch_fresh). */
    .globl  corio__ctx_start
    .hidden corio__ctx_start
    .type   corio__ctx_start, @function
    .p2align 6
corio__ctx_start:
    .cfi_startproc
    .cfi_undefined rip            /* end of the call chain for debuggers */
    xorl    %ebp, %ebp
    movq    %r12, %rdi            /* rsp is 16-byte aligned here: the call */
    callq   *%r13                 /* leaves it as the ABI wants at entry */
    movq    %rax, %rdi
    jmp     corio__ctx_jump
    .cfi_endproc
    .size   corio__ctx_start, .-corio__ctx_start

#endif
    .section .note.GNU-stack,"",@progbits
