/* arch/resume_x86_64.S - the public calls that may suspend return home by
 * jump when the return stack would mispredict it.
 *
 * Why: the CPU predicts each `ret` from a return stack filled by the `call`s
 * it saw. A task that resumes after a switch returns through frames whose
 * calls the return stack never saw: it holds the calls of the task that ran
 * before. Inside corio both tasks usually suspended through the same code,
 * so those returns still predict right; the first that does not is the
 * return to the user's code, when the two tasks called from different places
 * (a ping-pong's two sides always do). That one mispredicted return cost
 * about 6 ns of every switch on AMD Zen 5: w2 49 ns a round trip with it,
 * 37 without.
 *
 * So each such call (arch/resuming.h) is a stub around its C function,
 * corio__impl_NAME. The stub notes where its call returns to in
 * corio__last_caller, calls the function, and then compares: if the latest
 * call into a stub on this thread, which is the one whose return address the
 * return stack now offers, came from elsewhere (another task's, before it
 * switched to this one), it pops its return address and jumps to it. An
 * indirect jump is predicted from the path that led to it, which tells the
 * two sides apart. Otherwise (no switch, or the other task called from the
 * same place) a plain `ret` predicts right and keeps the return stack in
 * step: a jump leaves one entry behind, which a caller's later return would
 * pop wrongly (a jump every time made spawn-and-await 7 ns slower).
 *
 * Arguments pass through untouched (registers: no call listed takes any on
 * the stack), and so does the return value.
 */
#if defined(__x86_64__)

    .text

.macro RESUMING name
    .globl \name
    .type \name, @function
    .p2align 5
\name:
    .cfi_startproc
    push %rbx                       /* (also keeps the call 16-byte aligned) */
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    movq 8(%rsp), %rbx              /* where this call returns to */
    movq corio__last_caller@gottpoff(%rip), %r11
    movq %rbx, %fs:(%r11)
    call corio__impl_\name
    movq corio__last_caller@gottpoff(%rip), %r11
    cmpq %fs:(%r11), %rbx
    pop %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    jne 1f
    ret
1:  pop %rcx                        /* another's return address is on top: jump home */
    .cfi_adjust_cfa_offset -8
    .cfi_register %rip, %rcx
    jmp *%rcx
    .cfi_endproc
    .size \name, .-\name
.endm

#include "resuming.h"
#define STUB(name) RESUMING name;
CORIO__RESUMING_CALLS(STUB)

#endif

    .section .note.GNU-stack, "", @progbits
