/* test_arch.c - the context switch on its own (src/arch/): a fresh context
 * runs its entry with its argument, values in callee-saved registers survive
 * switches, and each context keeps its own FP rounding mode (MXCSR and the
 * x87 control word on x86-64, FPCR is not switched on aarch64). */
#include "arch/context.h"
#include "test.h"

#include <fenv.h>
#include <stdbool.h>
#include <stdlib.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

/* A malloc'd stack, registered with valgrind when it runs under it (as the
 * stack pool does): two heap stacks lie close together, and without it
 * valgrind takes a switch between them for a stack that grew and marks the
 * other one's saved frame undefined. */
#if defined(__x86_64__) && !defined(CORIO_SWITCH_UCONTEXT) /* (used by the FP tests only) */
typedef struct test_stack {
    char *lo;
    unsigned vg_id;
} test_stack;

static char *new_stack(test_stack *ts, size_t size)
{
    ts->lo = malloc(size);
    ts->vg_id = 0;
#ifdef HAVE_VALGRIND_H
    if (ts->lo)
        ts->vg_id = VALGRIND_STACK_REGISTER(ts->lo, ts->lo + size);
#endif
    return ts->lo;
}

static void free_stack(test_stack *ts)
{
#ifdef HAVE_VALGRIND_H
    VALGRIND_STACK_DEREGISTER(ts->vg_id);
#endif
    free(ts->lo);
}
#endif

static void *main_sp, *co_sp;
static long co_arg_seen, co_steps;

enum { CO_STEPS = 1000 };

/* Switches back CO_STEPS times, then returns: returning hands main_sp to
 * corio__ctx_jump, so main resumes after its last switch. */
static void *co_entry(void *arg)
{
    co_arg_seen = (long)(intptr_t)arg;
    for (int i = 0; i < CO_STEPS; i++) {
        co_steps++;
        corio__ctx_switch(&co_sp, main_sp);
    }
    co_steps = -1;
    return main_sp;
}

static void run_fresh_context(bool enter_fresh)
{
    enum { SZ = 64 * 1024 };
    char *stack = malloc(SZ);
    ASSERT_NOT_NULL(stack);
    co_steps = 0;
    co_arg_seen = 0;
    co_sp = corio__ctx_make(stack + SZ, SZ, co_entry, (void *)(intptr_t)4242);
    if (enter_fresh)
        corio__ctx_switch_fresh(&main_sp, co_sp);
    else
        corio__ctx_switch(&main_sp, co_sp);
    ASSERT_EQ(co_steps, 1);
    for (int i = 2; i <= CO_STEPS; i++) {
        corio__ctx_switch(&main_sp, co_sp);
        ASSERT_EQ(co_steps, i);
    }
    corio__ctx_switch(&main_sp, co_sp); /* its entry returns: we are back here */
    ASSERT_EQ(co_steps, -1);
    ASSERT_EQ(co_arg_seen, 4242);
    free(stack);
}

TEST(arch_fresh_context_runs_entry_and_returns)
{
    run_fresh_context(false);
}

TEST(arch_fresh_context_entered_by_switch_fresh)
{
    run_fresh_context(true);
}

/* Many live values across a switch: the compiler keeps them in callee-saved
 * registers, which the switch must preserve. */
static volatile unsigned long sink; /* unsigned: the sums may wrap */

static void *clobber_entry(void *arg)
{
    (void)arg;
    for (;;) {
        register unsigned long a = sink + 1, b = sink + 2, c = sink + 3, d = sink + 4, e = sink + 5, f = sink + 6;
        corio__ctx_switch(&co_sp, main_sp);
        sink = a * 3 + b * 5 + c * 7 + d * 11 + e * 13 + f * 17;
    }
    return NULL;
}

TEST(arch_callee_saved_values_survive)
{
    enum { SZ = 64 * 1024 };
    char *stack = malloc(SZ);
    co_sp = corio__ctx_make(stack + SZ, SZ, clobber_entry, NULL);
    sink = 0;
    corio__ctx_switch(&main_sp, co_sp);
    for (unsigned long i = 0; i < 100; i++) {
        unsigned long base = sink;
        unsigned long x1 = base * 2 + 1, x2 = base * 3 + 2, x3 = base * 5 + 3, x4 = base * 7 + 4;
        corio__ctx_switch(&main_sp, co_sp); /* the other side computes with its own values */
        unsigned long want = (base + 1) * 3 + (base + 2) * 5 + (base + 3) * 7 + (base + 4) * 11 + (base + 5) * 13 + (base + 6) * 17;
        ASSERT(sink == want);
        ASSERT(x1 == base * 2 + 1);
        ASSERT(x2 == base * 3 + 2);
        ASSERT(x3 == base * 5 + 3);
        ASSERT(x4 == base * 7 + 4);
        sink = i;
        corio__ctx_switch(&main_sp, co_sp);
    }
    free(stack);
}

#if defined(__x86_64__) && !defined(CORIO_SWITCH_UCONTEXT)
static int co_round_seen;

static void *round_entry(void *arg)
{
    (void)arg;
    fesetround(FE_DOWNWARD); /* this context's own mode */
    for (;;) {
        corio__ctx_switch(&co_sp, main_sp);
        co_round_seen = fegetround();
    }
    return NULL;
}
#endif

#if defined(__x86_64__) && !defined(CORIO_SWITCH_UCONTEXT)
/* The two words apart: MXCSR without its sticky exception flags, and the
 * x87 control word. Rounding bits: MXCSR 13-14, x87 10-11. */
static unsigned get_mxcsr(void)
{
    unsigned v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return v & ~0x3Fu;
}
static void set_mxcsr(unsigned v) { __asm__ volatile("ldmxcsr %0" : : "m"(v)); }
static unsigned get_x87cw(void)
{
    unsigned short v;
    __asm__ volatile("fnstcw %0" : "=m"(v));
    return v;
}
static void set_x87cw(unsigned v)
{
    unsigned short w = (unsigned short)v;
    __asm__ volatile("fldcw %0" : : "m"(w));
}

static int fp_which; /* 0: change MXCSR only, 1: the x87 word only */
static unsigned fp_co_seen[2];

/* Changes one word, switches back, checks it was kept, then ends (its
 * return resumes main through corio__ctx_jump). */
static void *fp_one_entry(void *arg)
{
    (void)arg;
    if (fp_which == 0)
        set_mxcsr(get_mxcsr() | 0x6000); /* round toward zero */
    else
        set_x87cw(get_x87cw() | 0x0C00);
    corio__ctx_switch(&co_sp, main_sp);
    fp_co_seen[0] = get_mxcsr();
    fp_co_seen[1] = get_x87cw();
    return main_sp;
}
#endif

/* A switch loads the other context's MXCSR always and its x87 control word
 * when the two differ: check each word alone, through a fresh entry, a
 * switch each way and the end of a context. */
TEST(arch_fp_words_switch_each_alone)
{
#if defined(__x86_64__) && !defined(CORIO_SWITCH_UCONTEXT)
    enum { SZ = 64 * 1024 };
    char *stack = malloc(SZ);
    ASSERT_NOT_NULL(stack);
    unsigned mx = get_mxcsr(), cw = get_x87cw();
    for (fp_which = 0; fp_which < 2; fp_which++) {
        for (int fresh = 0; fresh < 2; fresh++) {
            co_sp = corio__ctx_make(stack + SZ, SZ, fp_one_entry, NULL);
            if (fresh)
                corio__ctx_switch_fresh(&main_sp, co_sp);
            else
                corio__ctx_switch(&main_sp, co_sp);
            ASSERT_EQ(get_mxcsr(), mx); /* its change stayed with it */
            ASSERT_EQ(get_x87cw(), cw);
            corio__ctx_switch(&main_sp, co_sp); /* it checks, then ends */
            ASSERT_EQ(fp_co_seen[0], fp_which == 0 ? (mx | 0x6000) : mx);
            ASSERT_EQ(fp_co_seen[1], fp_which == 1 ? (cw | 0x0C00) : cw);
            ASSERT_EQ(get_mxcsr(), mx); /* and the jump at its end restored ours */
            ASSERT_EQ(get_x87cw(), cw);
        }
    }
    free(stack);
#else
    ASSERT(1); /* as arch_fp_modes_are_per_context */
#endif
}

#if defined(__x86_64__) && !defined(CORIO_SWITCH_UCONTEXT)
static unsigned fresh_seen_mx, fresh_seen_cw;
static void *helper_sp;

/* Records the modes it starts with, then goes back to main. */
static void *fresh_probe_entry(void *arg)
{
    (void)arg;
    fresh_seen_mx = get_mxcsr();
    fresh_seen_cw = get_x87cw();
    corio__ctx_switch(&co_sp, main_sp);
    return main_sp;
}

/* Sets its own modes, then ends by jumping into the fresh probe. */
static void *fresh_helper_entry(void *arg)
{
    (void)arg;
    set_mxcsr(get_mxcsr() | 0x2000); /* round down */
    set_x87cw(get_x87cw() | 0x0400);
    return co_sp;
}
#endif

/* A fresh context has no FP words of its own: it starts with the modes of
 * whoever enters it, by corio__ctx_switch_fresh, corio__ctx_switch or
 * corio__ctx_jump, even if they changed since corio__ctx_make. */
TEST(arch_fresh_context_starts_with_the_enterers_fp_modes)
{
#if defined(__x86_64__) && !defined(CORIO_SWITCH_UCONTEXT)
    enum { SZ = 64 * 1024 };
    test_stack st, hst;
    char *stack = new_stack(&st, SZ), *hstack = new_stack(&hst, SZ);
    ASSERT_NOT_NULL(stack);
    ASSERT_NOT_NULL(hstack);
    unsigned mx = get_mxcsr(), cw = get_x87cw();
    for (int how = 0; how < 3; how++) {
        co_sp = corio__ctx_make(stack + SZ, SZ, fresh_probe_entry, NULL);
        fresh_seen_mx = fresh_seen_cw = 0;
        if (how < 2) {
            set_mxcsr(mx | 0x6000); /* changed after the frame was made */
            set_x87cw(cw | 0x0C00);
            if (how == 0)
                corio__ctx_switch_fresh(&main_sp, co_sp);
            else
                corio__ctx_switch(&main_sp, co_sp);
            ASSERT_EQ(fresh_seen_mx, mx | 0x6000);
            ASSERT_EQ(fresh_seen_cw, cw | 0x0C00);
        } else {
            helper_sp = corio__ctx_make(hstack + SZ, SZ, fresh_helper_entry, NULL);
            corio__ctx_switch_fresh(&main_sp, helper_sp); /* it jumps into the probe */
            ASSERT_EQ(fresh_seen_mx, mx | 0x2000);
            ASSERT_EQ(fresh_seen_cw, cw | 0x0400);
        }
        ASSERT_EQ(get_mxcsr(), how < 2 ? (mx | 0x6000) : mx); /* ours came back */
        ASSERT_EQ(get_x87cw(), how < 2 ? (cw | 0x0C00) : cw);
        set_mxcsr(mx);
        set_x87cw(cw);
        corio__ctx_switch(&main_sp, co_sp); /* let the probe end */
        ASSERT_EQ(get_mxcsr(), mx);
        ASSERT_EQ(get_x87cw(), cw);
    }
    free_stack(&st);
    free_stack(&hst);
#else
    ASSERT(1); /* as arch_fp_modes_are_per_context */
#endif
}

TEST(arch_fp_modes_are_per_context)
{
#if defined(__x86_64__) && !defined(CORIO_SWITCH_UCONTEXT)
    enum { SZ = 64 * 1024 };
    char *stack = malloc(SZ);
    fesetround(FE_TONEAREST);
    co_sp = corio__ctx_make(stack + SZ, SZ, round_entry, NULL);
    corio__ctx_switch(&main_sp, co_sp);   /* it sets FE_DOWNWARD and comes back */
    ASSERT_EQ(fegetround(), FE_TONEAREST); /* ours is untouched */
    volatile double one = 1.0, three = 3.0;
    ASSERT(one / three == 1.0 / 3.0);
    corio__ctx_switch(&main_sp, co_sp);
    ASSERT_EQ(co_round_seen, FE_DOWNWARD); /* its mode was kept across the switches */
    ASSERT_EQ(fegetround(), FE_TONEAREST);
    free(stack);
#else
    /* aarch64 keeps FPCR global (AAPCS64 does not make it callee-saved),
     * ucontext keeps what glibc's swapcontext keeps; nothing to check here. */
    ASSERT(1);
#endif
}
