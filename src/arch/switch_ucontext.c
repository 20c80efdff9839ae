/* arch/switch_ucontext.c - frame builders for the assembly switches, and the
 * portable ucontext switch (SWITCH=ucontext).
 *
 * The ucontext version keeps the same "a context is a stack pointer" shape:
 * a suspended context's ucontext_t lives in the frame of the switch call that
 * suspended it (or at the top of a fresh stack), and the saved "sp" points at
 * it. swapcontext costs two sigprocmask system calls, so this is a fallback
 * and a cross-check, not the fast path. */
#include "arch/context.h"

#include <stdint.h>
#include <string.h>

#if defined(CORIO_SWITCH_UCONTEXT)
#include <ucontext.h>

void corio__ctx_switch(void **from_sp, void *to_sp)
{
    ucontext_t self;
    *from_sp = &self;
    swapcontext(&self, (ucontext_t *)to_sp);
}

void corio__ctx_switch_fresh(void **from_sp, void *to_sp)
{
    corio__ctx_switch(from_sp, to_sp);
}

void corio__ctx_jump(void *to_sp)
{
    setcontext((ucontext_t *)to_sp);
    __builtin_trap();
}

/* makecontext passes int arguments only: split the pointers in halves. */
static void ctx_start(unsigned fn_lo, unsigned fn_hi, unsigned arg_lo, unsigned arg_hi)
{
    corio__entry_fn *fn = (corio__entry_fn *)(((uintptr_t)fn_hi << 32) | fn_lo);
    void *arg = (void *)(((uintptr_t)arg_hi << 32) | arg_lo);
    corio__ctx_jump(fn(arg));
}

void *corio__ctx_make(void *stack_top, size_t size, corio__entry_fn *entry, void *arg)
{
    uintptr_t top = ((uintptr_t)stack_top - sizeof(ucontext_t)) & ~(uintptr_t)63;
    ucontext_t *uc = (ucontext_t *)top;
    uintptr_t fn = (uintptr_t)entry, a = (uintptr_t)arg;
    getcontext(uc);
    uc->uc_stack.ss_sp = (char *)stack_top - size;
    uc->uc_stack.ss_size = top - (uintptr_t)uc->uc_stack.ss_sp;
    uc->uc_link = NULL;
    makecontext(uc, (void (*)(void))ctx_start, 4, (unsigned)fn, (unsigned)(fn >> 32),
                (unsigned)a, (unsigned)(a >> 32));
    return uc;
}

#elif defined(__x86_64__)

void corio__ctx_start(void);

/* Matches the frame table at the top of switch_x86_64.S. */
void *corio__ctx_make(void *stack_top, size_t size, corio__entry_fn *entry, void *arg)
{
    (void)size;
    uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
    uint64_t *f = (uint64_t *)(top - 80); /* 64-byte frame + 16 bytes of room */
    f[0] = ~(uint64_t)0;                    /* no FP words: whoever enters it lends its modes */
    f[3] = (uintptr_t)entry;                /* r13 */
    f[4] = (uintptr_t)arg;                  /* r12 */
    f[6] = 0;                               /* rbp: ends frame-pointer walks */
    f[7] = (uintptr_t)corio__ctx_start;     /* return address */
    /* r15, r14 and rbx are left as they are: the entry owes them nothing */
    return f;                               /* f + 64 is 16-byte aligned at the start */
}

#elif defined(__aarch64__)

void corio__ctx_start(void);

/* Matches the frame table at the top of switch_aarch64.S. */
void *corio__ctx_make(void *stack_top, size_t size, corio__entry_fn *entry, void *arg)
{
    (void)size;
    uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
    uint64_t *f = (uint64_t *)(top - 176);
    memset(f, 0, 176);
    f[8] = (uintptr_t)arg;                /* x19 */
    f[9] = (uintptr_t)entry;              /* x20 */
    f[19] = (uintptr_t)corio__ctx_start;  /* x30: the first ret lands there */
    return f;
}

#else
#error "no assembly context switch for this target: build with SWITCH=ucontext"
#endif
