/* debug.c - what corio tells you when a program goes wrong: stack overflows
 * (caught by the canary check on a switch, or by a SIGSEGV whose stack
 * pointer lies below the running task's stack), deadlocks (every task
 * waits and nothing can wake one) and scopes left open when a task ends.
 * Each names the task and its entry function. */
#define _GNU_SOURCE
#include "internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define ALTSTACK_BYTES ((size_t)64 * 1024)

static const char *fn_name(corio_fn *fn)
{
    Dl_info info;
    if (fn && dladdr((void *)fn, &info) && info.dli_sname)
        return info.dli_sname;
    return "?";
}

/* Print with write(2): this may run in a signal handler. */
__attribute__((noreturn)) static void overflow_report(corio_loop *l, corio_task *t)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg,
                     "corio: stack overflow in task %p (entry %s at %p): its %zu-byte stack is "
                     "too small; give it more with corio_task_opts.stack_size or "
                     "corio_loop_opts.stack_size\n",
                     (void *)t, fn_name(t->fn), (void *)(uintptr_t)t->fn,
                     l->stacks[t->stack_class].size);
    if (n > 0 && write(2, msg, (size_t)n) < 0)
        n = 0;
    abort();
}

/* Called on the overflowed stack: go to the scheduler's stack to report,
 * since every call made here would write further into a neighbour. */
void corio__overflow_abort(corio_loop *l, corio_task *t)
{
    l->overflowed = t;
    l->current = NULL;
    corio__ctx_jump(l->sched_sp);
}

void corio__overflow_check_sched(corio_loop *l)
{
    if (l->overflowed)
        overflow_report(l, l->overflowed);
}

static char *fault_sp(void *uc)
{
    ucontext_t *u = uc;
#if defined(__x86_64__)
    return (char *)u->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (char *)u->uc_mcontext.sp;
#else
    (void)u;
    return NULL;
#endif
}

static struct sigaction prev_segv;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
    corio_loop *l = corio__tls_loop;
    corio_task *t = l ? l->current : NULL;
    if (t && t->stack) {
        corio__stack_pool *p = &l->stacks[t->stack_class];
        char *lo = corio__stack_lo(p, corio__stack_top(l, t)), *sp = fault_sp(uc);
        if ((sp && sp < lo + 4096) || ((char *)si->si_addr < lo && (char *)si->si_addr >= lo - 4096))
            overflow_report(l, t);
    }
    /* not an overflow of ours: hand it to whoever was there before */
    if (prev_segv.sa_flags & SA_SIGINFO) {
        prev_segv.sa_sigaction(sig, si, uc);
    } else if (prev_segv.sa_handler != SIG_DFL && prev_segv.sa_handler != SIG_IGN) {
        prev_segv.sa_handler(sig);
    } else {
        signal(sig, SIG_DFL); /* the fault happens again and kills as usual */
    }
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &prev_segv);
}

/* An overflowing task faults with its stack pointer in unusable memory, so
 * the handler needs a stack of its own: one per loop thread. */
void corio__overflow_guard_install(corio_loop *l)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    stack_t old;
    if (sigaltstack(NULL, &old) == 0 && (old.ss_flags & SS_DISABLE)) {
        void *mem = mmap(NULL, ALTSTACK_BYTES, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem != MAP_FAILED) {
            stack_t ss = {.ss_sp = mem, .ss_size = ALTSTACK_BYTES};
            if (sigaltstack(&ss, NULL) == 0)
                l->altstack = mem;
            else
                munmap(mem, ALTSTACK_BYTES);
        }
    }
    pthread_once(&once, install_handler);
}

void corio__overflow_guard_remove(corio_loop *l)
{
    if (!l->altstack)
        return;
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(l->altstack, ALTSTACK_BYTES);
    l->altstack = NULL;
}

static void report_one(corio_loop *l, corio_task *t)
{
    (void)l;
    const char *what = t->state == CORIO__T_WAITING && t->wait ? t->wait->what : "nothing (ready)";
    fprintf(stderr, "corio:   task %p (entry %s) waits on %s\n", (void *)t, fn_name(t->fn), what);
}

void corio__report_stuck(corio_loop *l)
{
    fprintf(stderr, "corio: deadlock: every task waits and nothing can wake one "
                    "(no timer, no I/O):\n");
    corio__for_each_live(l, report_one);
}

/* A task returned from its function with a scope still open: the scope (and
 * its armed timer, or a group's children's links to it) lives in frames that
 * are gone. Nothing sane can go on from there. */
void corio__scope_leak_abort(corio_loop *l, corio_task *t)
{
    (void)l;
    fprintf(stderr,
            "corio: task %p (entry %s) ended inside a scope it never ended: every "
            "corio_*_begin needs its corio_scope_end (corio_taskgroup_end for a group) "
            "before the function returns\n",
            (void *)t, fn_name(t->fn));
    abort();
}
