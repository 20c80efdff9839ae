/* arch/context.h - the context switch, the one piece of corio below C.
 *
 * A context is a saved stack pointer: the switch pushes the callee-saved
 * registers (and FP control state) onto the current stack, stores the stack
 * pointer, loads the other one and pops. Everything else a suspended task
 * needs is already on its own stack. Implementations:
 *   switch_x86_64.S   SysV x86-64: rbx rbp r12-r15, MXCSR, x87 control word
 *   switch_aarch64.S  AAPCS64: x19-x30, d8-d15
 *   switch_ucontext.c getcontext/swapcontext, for other targets and for
 *                     checking the assembly (build with SWITCH=ucontext)
 * Sanitizer fiber annotations live in the C caller (task.c), not here. */
#ifndef CORIO_ARCH_CONTEXT_H
#define CORIO_ARCH_CONTEXT_H

#include <stddef.h>

/* A fresh context's entry. It returns the saved stack pointer of the
 * context to resume next; its own context is then abandoned, as by
 * corio__ctx_jump. (Returning, rather than jumping away from inside, keeps
 * the CPU's return-stack predictor balanced: see switch_x86_64.S.) */
typedef void *corio__entry_fn(void *arg);

/* Save the current context into *from_sp and resume the one saved in to_sp.
 * Returns when something switches back to *from_sp. */
void corio__ctx_switch(void **from_sp, void *to_sp);

/* The same, for a to_sp made by corio__ctx_make and never resumed yet. It
 * enters the fresh context with a jump instead of a return, so the return
 * address our caller pushed stays on the return-stack predictor until the
 * fresh context ends and returns to it (corio__ctx_switch works too, at the
 * price of one mispredicted return on each side). */
void corio__ctx_switch_fresh(void **from_sp, void *to_sp);

/* Resume to_sp and abandon the current context (its stack may be reused at
 * once by whoever runs next; nothing is written to it). */
__attribute__((noreturn)) void corio__ctx_jump(void *to_sp);

/* Prepare a fresh context on the stack whose highest address is stack_top
 * (the stack spans [stack_top - size, stack_top)): resuming it calls
 * entry(arg) on that stack. Returns the saved
 * stack pointer to pass to corio__ctx_switch / corio__ctx_jump. On x86-64 a
 * fresh context starts with the FP modes (MXCSR, x87 control word) of the
 * context that enters it, whichever switch enters it. */
void *corio__ctx_make(void *stack_top, size_t size, corio__entry_fn *entry, void *arg);

#endif
