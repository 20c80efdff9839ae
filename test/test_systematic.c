/* test/test_systematic.c - cancel at every suspension point.
 *
 * For each program P below: run it once with a suspend hook that only
 * counts the suspension points (K of them; the hook runs at every
 * suspension after the wait is set up, and at every yield). Then, for each
 * N in 0..K-1, run P twice more:
 *   cancel   the hook cancels the suspending task at point N (the real
 *            cancel-while-suspended path);
 *   timeout  every task body of P runs inside a timeout scope with a far
 *            deadline (P's own scopes are registered too); at point N the
 *            hook makes the suspending task's innermost timeout scope expire
 *            there (corio_scope_reschedule to now).
 * The programs are deterministic on the virtual clock, so run N repeats the
 * counting run up to point N.
 *
 * After every run: corio_run returned, corio_loop_close found no live task,
 * stack, armed timer or deferred call, every task ended with an allowed
 * status, the interrupted call reported what the header says, and the
 * programs' own invariants held. Besides, every instrumented call checks a
 * model of the cancel rules as it returns (test/cancel_model.[ch], shared
 * with test_property.c): the outermost visible cause (the task's cancel
 * first, then the outermost expired timeout scope or aborted task group; a
 * shield hides what is outside it) is computed from the scopes each task
 * registered, and e.g. a sleep returns -ECANCELED
 * exactly when such a cause is visible; an interruption is credited as the
 * suspension resumes, to the outermost cause visible then, so a timeout
 * scope's end must say -ETIMEDOUT when the model knows it was credited and
 * may only when it can have been; a shield's end reports exactly the cause
 * it held back; a task group's end returns what the rules say.
 *
 * Programs: the four seed programs (examples/seed_*.c, compiled in here with
 * corio_run and corio_create_task routed through wrappers that add the
 * scopes), and seven of this file's: nested awaits, gather, task groups whose
 * children sleep and spawn, wait and as_completed, timeouts and shields
 * nested, yields, and explicit cancels with shielded cleanup and a done
 * callback.
 *
 * A failure prints the program, the mode and N. */
#define _GNU_SOURCE
#include "test.h"

#include "cancel_model.h"
#include "internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- context for failure messages --------------------------------------------------- */

enum { M_COUNT, M_CANCEL, M_TIMEOUT };
static const char *const mode_names[] = {"count", "cancel", "timeout"};

static const char *g_prog = "?";
static int g_mode;
static long g_target = -1;

static void systematic_context(char *buf, size_t cap, bool brief)
{
    snprintf(buf, cap, "%sprogram %s, mode %s, N=%ld", brief ? "" : "systematic: ", g_prog,
             mode_names[g_mode], g_target);
}

/* How often the interesting paths ran, besides the model's cm_cov (printed; a few are
 * asserted non-zero). */
static struct {
    long interrupts, not_effective, shielded, uninterruptible;
} cov;

/* ---- the hook ------------------------------------------------------------------------------ */

static long g_points;

static struct {
    bool fired;
    corio_task *task;
    struct trec *tr;
    int site;
    bool yield;
    bool interruptible;
    bool effective;            /* the cancel was made / the scope was made to expire */
    bool reaches;              /* no shield hides it from the suspension */
    bool interrupts;
    corio_scope *scope;        /* timeout mode: the scope made to expire */
    bool scope_ended;
    bool returned;             /* the instrumented call it happened in has returned */
    int rc;
} F;

static void hook(corio_loop *l, corio_task *t, corio__wait *w)
{
    (void)l;
    long n = g_points++;
    if (g_mode == M_COUNT || n != g_target)
        return;
    CK(!F.fired);
    F.fired = true;
    F.task = t;
    F.site = cm_site_task == t ? cm_site : 0;
    F.yield = w == NULL;
    F.interruptible = w == NULL || w->cancel != NULL;
    CK(t == corio_current_task());
    struct treg *r = reg_find(t);
    CK(r != NULL); /* every task of these programs runs in wrap_entry */
    F.tr = r->tr;
    int idx = -1;
    if (g_mode == M_CANCEL) {
        int rc = corio_cancel(t);
        CK(rc == 0 || rc == 1);
        CK_EQ(corio_task_cancelled(t), 1);
        F.effective = rc == 1;
    } else {
        for (int i = r->depth - 1; i >= 0 && idx < 0; i--)
            if (r->e[i].kind == SK_TIMEOUT)
                idx = i;
        CK(idx >= 0); /* the body's own scope at least */
        int rc = corio_scope_reschedule(r->e[idx].sc, corio_now_ns());
        CK(rc == 0 || rc == -EALREADY);
        CK_EQ(corio_scope_expired(r->e[idx].sc), 1);
        F.effective = rc == 0;
        F.scope = r->e[idx].sc;
    }
    if (!F.effective) {
        cov.not_effective++;
        return;
    }
    int cause = model_cause(r);
    F.reaches = cause != C_NONE;
    if (F.reaches && F.interruptible) /* nothing was visible before (it went ahead): ours */
        CK_EQ(cause, g_mode == M_CANCEL ? C_TASK : idx);
    F.interrupts = F.interruptible && F.reaches;
    cov.interrupts += F.interrupts;
    cov.shielded += !F.reaches;
    cov.uninterruptible += !F.interruptible;
    /* the wait is interrupted now and credited when it resumes: to this scope
     * unless a cause further out appears first (m_scope_end checks) */
    if (F.interrupts && g_mode == M_TIMEOUT)
        r->e[idx].hooked = true;
}

/* The call the hook interrupted returns what the interruption says. */
static void systematic_returned(const struct call *c, int rc, int alt)
{
    if (F.fired && !F.returned && F.task == c->r->t && F.site == c->site) {
        F.returned = true;
        F.rc = rc;
        if (F.interrupts)
            CK(rc == -ECANCELED || (alt != 0 && rc == alt));
    }
}

static void systematic_timeout_ended(corio_scope *sc)
{
    if (sc == F.scope)
        F.scope_ended = true;
}

static const struct cm_suite systematic_suite = {
    .context = systematic_context,
    .returned = systematic_returned,
    .timeout_ended = systematic_timeout_ended,
};

/* ---- the seed programs, with their corio_run and corio_create_task wrapped ---------------- */

static int sys_seed_run(corio_coro_t coro, void **result)
{
    return (corio_run)(wcoro("seed main", coro.fn, coro.arg), result);
}

static corio_task *sys_seed_create(corio_coro_t coro)
{
    return (corio_create_task)(wcoro("seed task", coro.fn, coro.arg));
}

static int seed_rc = -1;
static int seed_main_rc;

#define corio_run(c, r) (seed_main_rc = sys_seed_run((c), (r)))
#define corio_create_task(c) sys_seed_create(c)

int seed_process_data_main(void);
#define main seed_process_data_main
#define fetch_data pd_fetch_data
#define compute_result pd_compute_result
#define process_data pd_process_data
#include "../examples/seed_process_data.c"
#undef main
#undef fetch_data
#undef compute_result
#undef process_data

int seed_sequential_main(void);
#define main seed_sequential_main
#define fetch_data sq_fetch_data
#define main_coro sq_main_coro
#include "../examples/seed_sequential.c"
#undef main
#undef fetch_data
#undef main_coro

int seed_concurrent_main(void);
#define main seed_concurrent_main
#define fetch_data cc_fetch_data
#define main_coro cc_main_coro
#include "../examples/seed_concurrent.c"
#undef main
#undef fetch_data
#undef main_coro

int seed_coroutine_object_main(void);
#define main seed_coroutine_object_main
#include "../examples/seed_coroutine_object.c"
#undef main

#undef corio_run
#undef corio_create_task

static int run_seed(int (*seed_main)(void))
{
    setenv("CORIO_CLOCK", "virtual", 1);
    seed_main_rc = 1;
    seed_rc = seed_main();
    unsetenv("CORIO_CLOCK");
    CK(seed_rc == 0 || seed_rc == 1);
    CK_EQ(seed_rc, seed_main_rc < 0); /* main() returns corio_run(...) < 0 */
    return seed_main_rc;
}

static int run_seed_process_data(void) { return run_seed(seed_process_data_main); }
static int run_seed_sequential(void) { return run_seed(seed_sequential_main); }
static int run_seed_concurrent(void) { return run_seed(seed_concurrent_main); }
static int run_seed_coroutine_object(void) { return run_seed(seed_coroutine_object_main); }

static int64_t final_now; /* corio_now_ns when a program's main body ended */

static void check_seed(int rc, int64_t want_ns)
{
    if (g_mode == M_COUNT) {
        CK_EQ(rc, 0);
        CK_EQ(trecs[0].status, 0);
        CK_EQ(trecs[0].end_ns, want_ns); /* when main ended (its scope's end does not suspend) */
    }
}

static void check_seed_process_data(int rc)
{
    check_seed(rc, 3 * SEC);
    if (g_mode == M_COUNT)
        CK_EQ(ntrecs, 1);
}

static void check_seed_sequential(int rc)
{
    check_seed(rc, 9 * SEC);
}

static void check_seed_concurrent(int rc)
{
    check_seed(rc, 3 * SEC);
    if (g_mode == M_COUNT)
        CK_EQ(ntrecs, 4);
}

static void check_seed_coroutine_object(int rc)
{
    check_seed(rc, 0);
    CK_EQ(rc, 0);
    CK_EQ((intptr_t)trecs[0].result, 42);
}

/* ---- program: nested awaits ------------------------------------------------------------------ */

static void *leaf(void *arg)
{
    long x = (long)(intptr_t)arg;
    int rc = SLEEP(2 * SEC);
    if (rc == 0)
        rc = YIELD();
    return rc < 0 ? corio_fail(rc) : (void *)(intptr_t)(2 * x);
}

static void *level2(void *arg)
{
    long x = (long)(intptr_t)arg;
    int rc = SLEEP(SEC / 2);
    if (rc < 0)
        return corio_fail(rc);
    corio_task *t = wtask("leaf", leaf, arg);
    void *r = NULL;
    rc = AWAIT(t, &r);
    CK_EQ(corio_task_release(t), 0);
    if (rc < 0)
        return corio_fail(rc);
    CK_EQ((intptr_t)r, 2 * x);
    rc = YIELD();
    return rc < 0 ? corio_fail(rc) : (void *)(intptr_t)(x + (intptr_t)r);
}

static void *level1(void *arg)
{
    long x = (long)(intptr_t)arg;
    int rc = SLEEP(SEC);
    if (rc < 0)
        return corio_fail(rc);
    void *r = NULL;
    rc = corio_await(corio_coro(level2, arg), &r);
    if (rc < 0)
        return corio_fail(rc);
    CK_EQ((intptr_t)r, 3 * x);
    return (void *)(intptr_t)(3 * x + 1);
}

static void *chain(void *arg)
{
    long n = (long)(intptr_t)arg;
    if (n == 0) {
        int rc = SLEEP(SEC);
        return rc < 0 ? corio_fail(rc) : (void *)1;
    }
    corio_task *t = wtask("chain", chain, (void *)(intptr_t)(n - 1));
    int rc = SLEEP(SEC / 2);
    void *r = NULL;
    int arc = AWAIT(t, &r); /* awaited even when the sleep was cut short */
    CK_EQ(corio_task_release(t), 0);
    if (rc == 0)
        rc = arc;
    if (rc < 0)
        return corio_fail(rc);
    CK_EQ((intptr_t)r, n);
    return (void *)(intptr_t)(n + 1);
}

static struct {
    intptr_t r1, r2;
} nested_res;

static void *main_nested(void *arg)
{
    (void)arg;
    corio_task *t = wtask("chain", chain, (void *)3);
    corio_scope sc;
    m_timeout(&sc, 100 * SEC);
    void *r = NULL;
    int rc = corio_await(corio_coro(level1, (void *)5), &r);
    int trc = m_scope_end(&sc);
    if (trc < 0)
        rc = trc;
    void *r2 = NULL;
    int arc = AWAIT(t, &r2);
    CK_EQ(corio_task_release(t), 0);
    if (rc == 0)
        rc = arc;
    final_now = corio_now_ns();
    if (rc < 0)
        return corio_fail(rc);
    nested_res.r1 = (intptr_t)r;
    nested_res.r2 = (intptr_t)r2;
    CK_EQ(nested_res.r1, 16);
    CK_EQ(nested_res.r2, 4);
    return NULL;
}

static void check_nested(int rc)
{
    if (g_mode == M_COUNT) {
        CK_EQ(rc, 0);
        CK_EQ(final_now, 3 * SEC + SEC / 2);
        CK_EQ(nested_res.r1, 16);
        CK_EQ(nested_res.r2, 4);
    }
}

/* ---- program: gather ------------------------------------------------------------------------- */

static void *sleeper(void *arg)
{
    int64_t ns = (int64_t)(intptr_t)arg;
    int rc = SLEEP(ns);
    return rc < 0 ? corio_fail(rc) : (void *)(intptr_t)(ns / MS);
}

static void *failer(void *arg)
{
    int64_t ns = (int64_t)(intptr_t)arg;
    int rc = SLEEP(ns);
    return corio_fail(rc < 0 ? rc : -EIO);
}

static void *sub_gather(void *arg)
{
    intptr_t k = (intptr_t)arg;
    corio_coro_t cs[2] = {wcoro("sleeper", sleeper, (void *)(intptr_t)(k * 100 * MS)),
                          wcoro("sleeper", sleeper, (void *)(intptr_t)(k * 200 * MS))};
    void *res[2] = {0};
    int rc = GATHER(cs, 2, res);
    if (rc < 0)
        return corio_fail(rc);
    CK_EQ((intptr_t)res[0], k * 100);
    CK_EQ((intptr_t)res[1], k * 200);
    return (void *)(k * 300);
}

static int gather_stage;

static void *main_gather(void *arg)
{
    (void)arg;
    gather_stage = 0;
    /* gather over tasks */
    corio_task *t[3] = {wtask("sleeper", sleeper, (void *)(intptr_t)SEC),
                        wtask("sleeper", sleeper, (void *)(intptr_t)(3 * SEC)),
                        wtask("sleeper", sleeper, (void *)(intptr_t)(2 * SEC))};
    void *res[3] = {0};
    int rc = GATHER_TASKS(t, 3, res);
    for (int i = 0; i < 3; i++)
        CK_EQ(corio_task_release(t[i]), 0);
    if (rc < 0)
        return corio_fail(rc);
    CK_EQ((intptr_t)res[0], 1000);
    CK_EQ((intptr_t)res[1], 3000);
    CK_EQ((intptr_t)res[2], 2000);
    gather_stage = 1;
    /* gather over coroutine objects, nested */
    corio_coro_t cs[3] = {wcoro("sleeper", sleeper, (void *)(intptr_t)SEC),
                          wcoro("sub_gather", sub_gather, (void *)1),
                          wcoro("sub_gather", sub_gather, (void *)2)};
    rc = GATHER(cs, 3, res);
    if (rc < 0)
        return corio_fail(rc);
    CK_EQ((intptr_t)res[0], 1000);
    CK_EQ((intptr_t)res[1], 300);
    CK_EQ((intptr_t)res[2], 600);
    gather_stage = 2;
    /* return_exceptions: a failure does not fail the call */
    corio_coro_t c2[3] = {wcoro("sleeper", sleeper, (void *)(intptr_t)(2 * SEC)),
                          wcoro("failer", failer, (void *)(intptr_t)SEC),
                          wcoro("sleeper", sleeper, (void *)(intptr_t)(SEC / 2))};
    ((struct trec *)c2[1].arg)->allow_err = -EIO;
    int st[3] = {1, 1, 1};
    rc = GATHER_STATUS(c2, 3, res, st);
    if (rc < 0)
        return corio_fail(rc);
    for (int i = 0; i < 3; i++)
        if (st[i] < 0 && !(i == 1 && st[i] == -EIO))
            return corio_fail(st[i]);
    CK_EQ(st[1], -EIO);
    CK_EQ(st[0], 0);
    CK_EQ(st[2], 0);
    CK_EQ((intptr_t)res[0], 2000);
    CK_EQ((intptr_t)res[2], 500);
    gather_stage = 3;
    /* plain gather with a failure: its status */
    corio_coro_t c3[2] = {wcoro("sleeper", sleeper, (void *)(intptr_t)SEC),
                          wcoro("failer", failer, (void *)(intptr_t)(SEC / 2))};
    ((struct trec *)c3[1].arg)->allow_err = -EIO;
    rc = GATHER(c3, 2, res);
    final_now = corio_now_ns();
    if (rc != -EIO)
        return rc < 0 ? corio_fail(rc) : corio_fail(-EPROTO);
    gather_stage = 4;
    return NULL;
}

static void check_gather(int rc)
{
    if (g_mode == M_COUNT) {
        CK_EQ(rc, 0);
        CK_EQ(gather_stage, 4);
        CK_EQ(final_now, 7 * SEC);
    }
    if (rc == 0)
        CK_EQ(gather_stage, 4);
}

/* ---- program: task groups ----------------------------------------------------------------- */

struct worker_arg {
    struct grp *G;
    int i;
};

static void *worker(void *arg)
{
    struct worker_arg *wa = arg;
    int rc = SLEEP((wa->i + 1) * SEC);
    if (rc < 0)
        return corio_fail(rc);
    /* spawn a grandchild into the same group */
    rc = m_group_spawn(wa->G, "grandchild", sleeper, (void *)(intptr_t)SEC, 0);
    if (rc < 0)
        return corio_fail(rc);
    /* and run a group of its own */
    struct grp G2;
    m_group_begin(&G2);
    for (int k = 0; k < 2 && rc == 0; k++)
        rc = m_group_spawn(&G2, "g2 child", sleeper, (void *)(intptr_t)(SEC / 2), 0);
    if (rc == 0)
        rc = SLEEP(SEC / 10);
    rc = GROUP_END(&G2, rc);
    return rc < 0 ? corio_fail(rc) : NULL;
}

static struct worker_arg wargs[3];
static int g1_rc, g3_rc, g3_failed;

static void *main_group(void *arg)
{
    (void)arg;
    g1_rc = g3_rc = 1;
    g3_failed = -1;
    struct grp G1;
    m_group_begin(&G1);
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        wargs[i] = (struct worker_arg){&G1, i};
        rc = m_group_spawn(&G1, "worker", worker, &wargs[i], 0);
    }
    if (rc == 0)
        rc = SLEEP(SEC / 2);
    if (rc == 0)
        rc = YIELD();
    g1_rc = GROUP_END(&G1, rc);
    if (g1_rc < 0)
        return corio_fail(g1_rc);

    /* a failing child: the group cancels the body and the siblings */
    struct grp G3;
    m_group_begin(&G3);
    rc = m_group_spawn(&G3, "sleeper", sleeper, (void *)(intptr_t)(5 * SEC), 0);
    if (rc == 0)
        rc = m_group_spawn(&G3, "failer", failer, (void *)(intptr_t)(2 * SEC), -EIO);
    if (rc == 0)
        rc = m_group_spawn(&G3, "sleeper", sleeper, (void *)(intptr_t)SEC, 0);
    if (rc == 0)
        rc = SLEEP(10 * SEC);
    g3_rc = GROUP_END(&G3, rc);
    g3_failed = corio_taskgroup_failed(&G3.g);
    final_now = corio_now_ns();
    /* -EIO is what it is meant to do; 0 if the failer was cancelled first */
    if (g3_rc != -EIO && g3_rc != 0)
        return corio_fail(g3_rc);
    rc = SLEEP(SEC); /* a cancel that landed while the group ended shows here */
    return rc < 0 ? corio_fail(rc) : NULL;
}

static void check_group(int rc)
{
    if (g_mode == M_COUNT) {
        CK_EQ(rc, 0);
        CK_EQ(g1_rc, 0);
        CK_EQ(g3_rc, -EIO);
        CK_EQ(g3_failed, 1);
        CK_EQ(final_now, 6 * SEC);
    }
}

/* ---- program: wait and as_completed ----------------------------------------------------------- */

static int64_t wait_log[16];
static int nwait_log;

static void *main_wait(void *arg)
{
    (void)arg;
    nwait_log = 0;
    corio_task *t[4] = {wtask("sleeper", sleeper, (void *)(intptr_t)SEC),
                        wtask("sleeper", sleeper, (void *)(intptr_t)(2 * SEC)),
                        wtask("sleeper", sleeper, (void *)(intptr_t)(3 * SEC)), NULL};
    int rc = WAIT(t, 3, CORIO_FIRST_COMPLETED, -1);
    wait_log[nwait_log++] = rc;
    if (rc >= 0) {
        rc = WAIT(t, 3, CORIO_ALL_COMPLETED, 0.5);
        wait_log[nwait_log++] = rc;
    }
    if (rc >= 0) {
        t[3] = wtask("failer", failer, (void *)(intptr_t)(SEC / 4));
        last_trec()->allow_err = -EIO;
        rc = WAIT(t + 1, 3, CORIO_FIRST_EXCEPTION, -1);
        wait_log[nwait_log++] = rc;
    }
    for (int round = 0; round < 2 && rc >= 0; round++) {
        struct m_ac a;
        m_ac_begin(&a, t, 4, round == 0 ? 0.5 : -1);
        corio_task *d;
        while ((rc = AC_NEXT(&a, &d)) > 0) {
            int i = 0;
            while (t[i] != d)
                i++;
            wait_log[nwait_log++] = 10 * (round + 1) + i;
        }
        CK_EQ(corio_as_completed_end(&a.ac), 0);
        if (rc == -ETIMEDOUT && round == 0)
            rc = 0;
    }
    int arc = 0;
    for (int i = 0; i < 4; i++) {
        if (!t[i])
            continue;
        int s = AWAIT(t[i], NULL);
        if (s < 0 && !(i == 3 && s == -EIO) && arc == 0)
            arc = s;
        CK_EQ(corio_task_release(t[i]), 0);
    }
    final_now = corio_now_ns();
    if (rc == 0)
        rc = arc;
    return rc < 0 ? corio_fail(rc) : NULL;
}

static void check_wait(int rc)
{
    if (g_mode == M_COUNT) {
        static const int64_t want[] = {1, 1, 1, 10, 13, 11, 20, 21, 23, 22};
        CK_EQ(rc, 0);
        CK_EQ(nwait_log, 10);
        for (int i = 0; i < 10; i++)
            CK_EQ(wait_log[i], want[i]);
        CK_EQ(final_now, 3 * SEC);
    }
}

/* ---- program: timeouts and shields, nested ------------------------------------------------------ */

static int tsh_rcs[32];
static int ntsh, tsh_mismatch;

static int TREC(int x)
{
    CK(ntsh < 32);
    tsh_rcs[ntsh++] = x;
    return x;
}

static void *main_timeouts(void *arg)
{
    (void)arg;
    ntsh = 0;
    reg_self()->tr->propagates = false; /* it records its results and goes on */
    corio_scope A, B, C, D, E, Fs, G, H, I, J, K, L;
    m_timeout(&A, 5 * SEC);
    {
        m_timeout(&B, SEC);
        TREC(SLEEP(2 * SEC));          /* -ECANCELED at 1 s */
        TREC(m_scope_end(&B));         /* -ETIMEDOUT */
        m_shield(&C);
        TREC(SLEEP(SEC / 2));          /* 0 */
        TREC(m_scope_end(&C));         /* 0, at 1.5 s */
        corio_task *t = wtask("sleeper", sleeper, (void *)(intptr_t)(3 * SEC));
        TREC(WAIT_FOR_TASK(t, 1.0, NULL)); /* -ETIMEDOUT at 2.5 s */
        TREC(status_of(t));            /* -ECANCELED */
        CK_EQ(corio_task_release(t), 0);
        TREC(m_wait_for_coro(corio_coro(sleeper, (void *)(intptr_t)(SEC / 5)), 10.0, NULL)); /* 0 */
        TREC(m_wait_for_coro(corio_coro(sleeper, (void *)(intptr_t)SEC), 0.5, NULL)); /* -ETIMEDOUT at 3.2 s */
        TREC(SLEEP(10 * SEC));         /* -ECANCELED at 5 s */
    }
    TREC(m_scope_end(&A));             /* -ETIMEDOUT */
    m_timeout(&D, SEC);                /* expires at 6 s, while shielded */
    m_shield(&E);
    TREC(SLEEP(2 * SEC));              /* 0 at 7 s */
    TREC(m_scope_end(&E));             /* -ECANCELED: what it held back */
    TREC(m_scope_end(&D));             /* -ETIMEDOUT */
    m_timeout(&Fs, SEC);               /* F and G expire at 8 s together: F's */
    m_timeout(&G, SEC);
    TREC(SLEEP(5 * SEC));              /* -ECANCELED */
    TREC(m_scope_end(&G));             /* 0 */
    TREC(m_scope_end(&Fs));            /* -ETIMEDOUT */
    m_timeout_at(&H, corio_now_ns());  /* expired from the start */
    TREC(YIELD());                     /* -ECANCELED */
    TREC(m_scope_end(&H));             /* -ETIMEDOUT */
    m_timeout_at(&I, CORIO_NO_DEADLINE);
    TREC(corio_scope_reschedule(&I, corio_now_ns() + SEC)); /* 0 */
    TREC(SLEEP(2 * SEC));              /* -ECANCELED at 9 s */
    TREC(m_scope_end(&I));             /* -ETIMEDOUT */
    m_timeout(&J, SEC);
    TREC(SLEEP(SEC / 2));              /* 0 */
    TREC(m_scope_end(&J));             /* 0: finished in time */
    m_shield(&K);
    m_timeout(&L, SEC);                /* scopes inside a shield still work */
    TREC(SLEEP(2 * SEC));              /* -ECANCELED at 10.5 s */
    TREC(m_scope_end(&L));             /* -ETIMEDOUT */
    TREC(m_scope_end(&K));             /* 0 */
    final_now = corio_now_ns();
    static const int want[] = {-ECANCELED, -ETIMEDOUT, 0, 0, -ETIMEDOUT, -ECANCELED, 0, -ETIMEDOUT,
                               -ECANCELED, -ETIMEDOUT, 0, -ECANCELED, -ETIMEDOUT, -ECANCELED, 0,
                               -ETIMEDOUT, -ECANCELED, -ETIMEDOUT, 0, -ECANCELED, -ETIMEDOUT, 0, 0,
                               -ECANCELED, -ETIMEDOUT, 0};
    CK_EQ(ntsh, (int)(sizeof want / sizeof want[0]));
    tsh_mismatch = -1;
    for (int i = 0; i < ntsh && tsh_mismatch < 0; i++)
        if (tsh_rcs[i] != want[i])
            tsh_mismatch = i;
    return tsh_mismatch < 0 ? NULL : corio_fail(-ECANCELED); /* disturbed: fine, unless counting */
}

static void check_timeouts(int rc)
{
    if (g_mode == M_COUNT) {
        if (tsh_mismatch >= 0)
            CK_FAIL("result %d is %d", tsh_mismatch, tsh_rcs[tsh_mismatch]);
        CK_EQ(rc, 0);
        CK_EQ(final_now, 10 * SEC + SEC / 2);
    }
}

/* ---- program: yields --------------------------------------------------------------------------- */

static char ytrace[256];
static int nytrace;

static void *pinger(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int k = 0; k < 4; k++) {
        int rc = k % 2 ? SLEEP(0) : YIELD();
        if (rc < 0)
            return corio_fail(rc);
        CK(nytrace < 250);
        ytrace[nytrace++] = (char)('a' + id);
        if (id == 0 && k == 1) { /* spawn one more mid-way */
            corio_task *t = wtask("pinger", pinger, (void *)3);
            rc = YIELD();
            int arc = AWAIT(t, NULL);
            CK_EQ(corio_task_release(t), 0);
            if (rc == 0)
                rc = arc;
            if (rc < 0)
                return corio_fail(rc);
        }
    }
    return NULL;
}

static void *main_yields(void *arg)
{
    (void)arg;
    nytrace = 0;
    memset(ytrace, 0, sizeof ytrace);
    corio_task *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = wtask("pinger", pinger, (void *)(intptr_t)i);
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = YIELD();
    int grc = GATHER_TASKS(t, 3, NULL);
    for (int i = 0; i < 3; i++)
        CK_EQ(corio_task_release(t[i]), 0);
    final_now = corio_now_ns();
    if (rc == 0)
        rc = grc;
    return rc < 0 ? corio_fail(rc) : NULL;
}

static void check_yields(int rc)
{
    if (g_mode == M_COUNT) {
        CK_EQ(rc, 0);
        CK_EQ(final_now, 0);
        ytrace[nytrace] = '\0';
        if (strcmp(ytrace, "abcabcbcdbcdddaa") != 0)
            CK_FAIL("yield order %s", ytrace);
    }
}

/* ---- program: explicit cancels, shielded cleanup, a done callback --------------------------- */

static void *cleanup_worker(void *arg)
{
    (void)arg;
    int rc = SLEEP(10 * SEC);
    if (rc == -ECANCELED) { /* clean up, shielded, then report the cancel */
        corio_scope sh;
        m_shield(&sh);
        int crc = SLEEP(SEC);
        int src = m_scope_end(&sh);
        if (crc < 0)
            rc = crc;
        else if (src < 0)
            rc = src;
    }
    return rc < 0 ? corio_fail(rc) : NULL;
}

static void *gatherer(void *arg)
{
    (void)arg;
    corio_coro_t cs[2] = {wcoro("sleeper", sleeper, (void *)(intptr_t)(5 * SEC)),
                          wcoro("sleeper", sleeper, (void *)(intptr_t)(5 * SEC))};
    int rc = GATHER(cs, 2, NULL); /* cancelled: cancels both, reaps them */
    return rc < 0 ? corio_fail(rc) : NULL;
}

static int cb_runs;

static void cancel_cb(corio_task *t, void *arg)
{
    CK_EQ(corio_task_done(t), 1);
    CK(corio_current_task() == NULL); /* outside any task */
    CK_EQ(corio_sleep(0), -EPERM);
    cb_runs++;
    corio_cancel((corio_task *)arg);
}

static int cc_rcs[8];

static void *main_cancels(void *arg)
{
    (void)arg;
    cb_runs = 0;
    memset(cc_rcs, 0, sizeof cc_rcs);
    corio_task *w = wtask("cleanup_worker", cleanup_worker, NULL);
    corio_task *g = wtask("gatherer", gatherer, NULL);
    corio_task *s3 = wtask("sleeper", sleeper, (void *)(intptr_t)(30 * SEC));
    CK_EQ(corio_task_add_done_callback(g, cancel_cb, s3), 0);
    int rc = SLEEP(SEC);
    if (rc == 0) {
        cc_rcs[0] = corio_cancel_with(w, "stop");
        cc_rcs[1] = corio_cancel(g);
    }
    cc_rcs[2] = AWAIT(w, NULL);
    cc_rcs[3] = AWAIT(g, NULL);
    cc_rcs[4] = AWAIT(s3, NULL);
    if (cc_rcs[0] == 1)
        CK(corio_cancel_reason(w) != NULL && strcmp(corio_cancel_reason(w), "stop") == 0);
    for (int i = 2; i < 5; i++) /* all three were cancelled, one way or another */
        if (cc_rcs[i] != -ECANCELED && cc_rcs[i] != -ETIMEDOUT && rc == 0)
            rc = cc_rcs[i] < 0 ? cc_rcs[i] : -EPROTO;
    CK_EQ(corio_task_release(w), 0);
    CK_EQ(corio_task_release(g), 0);
    CK_EQ(corio_task_release(s3), 0);
    final_now = corio_now_ns();
    if (rc == 0)
        rc = YIELD(); /* our own cancel, if any, shows here */
    return rc < 0 ? corio_fail(rc) : NULL;
}

static void check_cancels(int rc)
{
    CK(cb_runs == 1 || (g_mode != M_COUNT && cb_runs == 0));
    if (g_mode == M_COUNT) {
        CK_EQ(rc, 0);
        CK_EQ(cc_rcs[0], 1);
        CK_EQ(cc_rcs[1], 1);
        for (int i = 2; i < 5; i++)
            CK_EQ(cc_rcs[i], -ECANCELED);
        CK_EQ(final_now, 2 * SEC);
    }
}

/* ---- program: causes that arrive at the same instant ------------------------------------------ */

static corio_task *tg_victim;
static int tg_rcs[16], ntg;

static int TG(int x)
{
    CK(ntg < 16);
    tg_rcs[ntg++] = x;
    return x;
}

static void *tg_canceller(void *arg)
{
    (void)arg;
    int rc = SLEEP(8 * MS); /* armed before the victim's scope: fires first at the same deadline */
    if (rc < 0)
        return corio_fail(rc);
    TG(corio_cancel(tg_victim));
    return NULL;
}

static void *tg_victim_fn(void *arg)
{
    (void)arg;
    corio_scope sc;
    m_timeout(&sc, 8 * MS);
    int rc = TG(SLEEP(100 * MS)); /* both causes are in force when it resumes */
    int trc = TG(m_scope_end(&sc)); /* 0: the task's own cancel takes the credit */
    return corio_fail(trc < 0 ? trc : rc < 0 ? rc : -EPROTO);
}

static void *main_together(void *arg)
{
    (void)arg;
    ntg = 0;
    memset(tg_rcs, 0, sizeof tg_rcs);
    reg_self()->tr->propagates = false;
    corio_scope O, I, S;
    /* nested scopes expiring together, the outer one armed last: the outer is credited */
    m_timeout(&O, 10 * MS);
    m_timeout(&I, 8 * MS);
    TG(corio_scope_reschedule(&O, corio_now_ns() + 8 * MS));
    TG(SLEEP(100 * MS));
    TG(m_scope_end(&I));
    TG(m_scope_end(&O));
    /* a scope expiring and a cancel of the task in the same instant */
    corio_task *c = wtask("canceller", tg_canceller, NULL);
    TG(YIELD()); /* the canceller arms its timer first */
    tg_victim = wtask("victim", tg_victim_fn, NULL);
    TG(AWAIT(tg_victim, NULL));
    TG(AWAIT(c, NULL));
    CK_EQ(corio_task_release(c), 0);
    CK_EQ(corio_task_release(tg_victim), 0);
    /* a group aborting inside a scope that expires in the same instant */
    m_timeout_at(&S, CORIO_NO_DEADLINE);
    struct grp G;
    m_group_begin(&G);
    TG(m_group_spawn(&G, "failer", failer, (void *)(intptr_t)(8 * MS), -EIO));
    TG(YIELD()); /* the failer arms its timer first */
    TG(corio_scope_reschedule(&S, corio_now_ns() + 8 * MS));
    int body = TG(SLEEP(100 * MS));
    TG(GROUP_END(&G, body));
    TG(m_scope_end(&S));
    final_now = corio_now_ns();
    return NULL;
}

static void check_together(int rc)
{
    if (g_mode == M_COUNT) {
        static const int want[] = {
            0, -ECANCELED, 0, -ETIMEDOUT,     /* nested: reschedule, sleep, inner end, outer end */
            0, 1, -ECANCELED, 0, -ECANCELED, 0, /* yield, cancel, victim's sleep and end, awaits */
            0, 0, 0, -ECANCELED, -EIO, -ETIMEDOUT, /* spawn, yield, reschedule, sleep, ends */
        };
        CK_EQ(rc, 0);
        CK_EQ(ntg, (int)(sizeof want / sizeof want[0]));
        for (int i = 0; i < ntg; i++)
            if (tg_rcs[i] != want[i])
                CK_FAIL("result %d is %d, not %d", i, tg_rcs[i], want[i]);
        CK_EQ(final_now, 24 * MS);
    }
}

/* ---- the driver --------------------------------------------------------------------------------- */

static corio_fn *g_main_fn;

static int run_own(void)
{
    corio_loop_opts o = test_virtual_opts();
    return corio_run_opts(wcoro("main", g_main_fn, NULL), NULL, &o);
}

struct prog {
    const char *name;
    int (*run)(void);      /* the seeds */
    corio_fn *main;        /* this file's programs */
    void (*check)(int rc);
    bool own_timeouts;     /* it has short timeouts of its own: -ETIMEDOUT in any mode */
};

static const struct prog progs[] = {
    {"seed_process_data", run_seed_process_data, NULL, check_seed_process_data, false},
    {"seed_sequential", run_seed_sequential, NULL, check_seed_sequential, false},
    {"seed_concurrent", run_seed_concurrent, NULL, check_seed_concurrent, false},
    {"seed_coroutine_object", run_seed_coroutine_object, NULL, check_seed_coroutine_object, false},
    {"nested_awaits", NULL, main_nested, check_nested, false},
    {"gather", NULL, main_gather, check_gather, false},
    {"task_groups", NULL, main_group, check_group, false},
    {"wait_as_completed", NULL, main_wait, check_wait, false},
    {"timeouts_shields", NULL, main_timeouts, check_timeouts, true},
    {"yields", NULL, main_yields, check_yields, false},
    {"cancels_cleanup", NULL, main_cancels, check_cancels, false},
    {"same_instant", NULL, main_together, check_together, true},
};

/* One run of p in mode at point n; returns the number of suspension points seen. */
static long run_once(const struct prog *p, int mode, long n)
{
    g_prog = p->name;
    g_mode = mode;
    g_target = n;
    g_points = 0;
    memset(&F, 0, sizeof F);
    struct cm_suite suite = systematic_suite;
    suite.uninstrumented = p->run != NULL; /* the seeds call corio directly */
    cm_reset(&suite);
    final_now = -1;
    g_main_fn = p->main;
    unsigned long closes = corio__last_close.closes;

    corio__suspend_hook = hook;
    int rc = p->run ? p->run() : run_own();
    corio__suspend_hook = NULL;

    cm_check_closed(closes); /* the loop closed clean */
    if (!(rc == 0 || rc == -ECANCELED || rc == -ETIMEDOUT))
        CK_FAIL("corio_run returned %d", rc);
    CK(reg_find(NULL) != NULL);
    for (int i = 0; i < MAXREG; i++)
        CK(regs[i].t == NULL); /* every body that started has ended */

    /* every task ended with an allowed status */
    CK(ntrecs > 0);
    CK(trecs[0].started && trecs[0].ended); /* main */
    CK_EQ(trecs[0].status, rc);
    for (int i = 0; i < ntrecs; i++) {
        struct trec *tr = &trecs[i];
        if (!tr->used)
            continue;
        if (mode == M_COUNT)
            CK(tr->started); /* nothing is cancelled before it runs */
        if (!tr->started)
            continue;
        CK(tr->ended);
        int s = tr->status;
        if (!(s == 0 || s == -ECANCELED || s == -ETIMEDOUT || (tr->allow_err && s == tr->allow_err)))
            CK_FAIL("task %d (%s) ended with %d", i, tr->name, s);
        if (mode != M_TIMEOUT)
            CK(s != -ETIMEDOUT || p->own_timeouts); /* only the hook's scopes time out */
    }

    /* the interference happened, and did what it should */
    if (mode != M_COUNT) {
        CK(F.fired); /* the run repeats the counting run up to point n */
        if (F.interrupts) {
            if (F.site)
                CK(F.returned);
            CK(F.tr != NULL && F.tr->ended);
            if (F.tr->propagates && F.tr->status >= 0)
                CK_FAIL("the interrupted task (%s) ended with %d", F.tr->name, F.tr->status);
        }
        if (mode == M_TIMEOUT && F.effective)
            CK(F.scope_ended);
    }
    p->check(rc);
    return g_points;
}

static long total_points, total_runs;

static void run_program(const struct prog *p)
{
    long k = run_once(p, M_COUNT, -1);
    long k2 = run_once(p, M_COUNT, -1);
    CK_EQ(k2, k); /* deterministic */
    total_points += k;
    for (long n = 0; n < k; n++) {
        run_once(p, M_CANCEL, n);
        run_once(p, M_TIMEOUT, n);
        total_runs += 2;
    }
    total_runs += 2;
    g_mode = M_COUNT;
    g_target = -1;
    fprintf(stderr, "  %-22s K=%ld\n", p->name, k);
}

static void print_cov(const char *what)
{
    fprintf(stderr,
            "systematic %s: %ld suspension points, %ld runs; interrupted %ld, already cancelled %ld, "
            "shielded %ld, uninterruptible %ld; timeout ends -ETIMEDOUT %ld (surely credited %ld), "
            "shield ends -ECANCELED %ld, group ends failed %ld / cancelled %ld\n",
            what, total_points, total_runs, cov.interrupts, cov.not_effective, cov.shielded,
            cov.uninterruptible, cm_cov.timeout_ends, cm_cov.sure_hit_ends, cm_cov.shield_cancels,
            cm_cov.group_ends_failed, cm_cov.group_ends_cancelled);
}

static void silence_stdout(void)
{
    fflush(stdout);
    if (!freopen("/dev/null", "w", stdout))
        test__fail(__FILE__, __LINE__, "freopen /dev/null");
}

TEST(systematic_seeds)
{
    silence_stdout();
    total_points = total_runs = 0;
    memset(&cov, 0, sizeof cov);
    memset(&cm_cov, 0, sizeof cm_cov);
    for (size_t i = 0; i < 4; i++)
        run_program(&progs[i]);
    print_cov("seeds");
    CK(total_points >= 9);
    CK(cov.interrupts >= 2 * total_points - 2); /* cancel and expire reach every seed sleep */
    CK(cm_cov.sure_hit_ends > 0);
}

TEST(systematic_programs)
{
    silence_stdout();
    total_points = total_runs = 0;
    memset(&cov, 0, sizeof cov);
    memset(&cm_cov, 0, sizeof cm_cov);
    for (size_t i = 4; i < sizeof progs / sizeof progs[0]; i++)
        run_program(&progs[i]);
    print_cov("programs");
    CK(total_points >= 100);
    CK(cov.interrupts > total_points); /* most points, in both modes */
    CK(cov.shielded > 0 && cov.uninterruptible > 0 && cov.not_effective > 0);
    CK(cm_cov.sure_hit_ends > 0 && cm_cov.shield_cancels > 0);
    CK(cm_cov.group_ends_failed > 0 && cm_cov.group_ends_cancelled > 0);
}
