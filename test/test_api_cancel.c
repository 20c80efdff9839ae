/* test/test_api_cancel.c - cancellation: prompt, level-triggered, before
 * the first run, return values, awaiters, exactly one wakeup. */
#include "test.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>

static int sleep_rc = 1;
static int64_t woke_at = -1;

static void *sleep10_report(void *arg)
{
    (void)arg;
    sleep_rc = corio_sleep(10);
    woke_at = corio_now_ns();
    if (sleep_rc < 0)
        return corio_fail(sleep_rc);
    return (void *)(intptr_t)1;
}

static void *main_cancel_sleeping(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(sleep10_report, NULL));
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(corio_yield(), 0); /* t is now asleep */
    ASSERT_EQ(sleep_rc, 1);
    ASSERT_EQ(corio_cancel(t), 1);
    void *r = (void *)5;
    ASSERT_EQ(corio_await(t, &r), -ECANCELED);
    ASSERT_NULL(r);
    ASSERT_EQ(sleep_rc, -ECANCELED);
    ASSERT_EQ(woke_at, 0); /* promptly: not at its 10 s deadline */
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(cancel_sleeping_task_is_prompt)
{
    ASSERT_EQ(test_run_virtual(main_cancel_sleeping, NULL, NULL), 0);
}

static int later_rcs[6];

static void *sleeper_then_more(void *arg)
{
    (void)arg;
    later_rcs[0] = corio_sleep(10);
    later_rcs[1] = corio_sleep(1);
    later_rcs[2] = corio_yield();
    later_rcs[3] = corio_sleep(0);
    later_rcs[4] = corio_sleep_ns(5);
    corio_task *t = corio_create_task(corio_coro(sleep10_report, NULL));
    later_rcs[5] = t ? corio_await(t, NULL) : -999;
    if (t)
        corio_task_release(t);
    return (void *)(intptr_t)77; /* ignores the cancel: ends with what it reports */
}

static void *main_level_triggered(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(sleeper_then_more, NULL));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    void *r = NULL;
    ASSERT_EQ(corio_await(t, &r), 0);
    ASSERT_EQ((intptr_t)r, 77);
    for (int i = 0; i < 6; i++)
        ASSERT_EQ(later_rcs[i], -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(cancel_is_level_triggered)
{
    ASSERT_EQ(test_run_virtual(main_level_triggered, NULL, NULL), 0);
}

static int body_ran;

static void *body(void *arg)
{
    (void)arg;
    body_ran++;
    return (void *)(intptr_t)5;
}

static void *main_cancel_before_run(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(body, NULL));
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(corio_cancel(t), 0); /* already cancelled */
    void *r = (void *)9;
    ASSERT_EQ(corio_await(t, &r), -ECANCELED);
    ASSERT_NULL(r);
    ASSERT_EQ(body_ran, 0);
    ASSERT_EQ(corio_task_done(t), 1);
    ASSERT_EQ(corio_await(t, &r), -ECANCELED);
    ASSERT_EQ(corio_task_release(t), 0);
    /* cancelled, then the creator suspends: still never runs */
    t = corio_create_task(corio_coro(body, NULL));
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(body_ran, 0);
    ASSERT_EQ(corio_task_done(t), 1);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_EQ(corio_task_release(t), 0);
    /* cancelled, then released: never runs either */
    t = corio_create_task(corio_coro(body, NULL));
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(corio_task_release(t), 0);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(body_ran, 0);
    return NULL;
}

TEST(cancel_before_first_run_never_runs)
{
    ASSERT_EQ(test_run_virtual(main_cancel_before_run, NULL, NULL), 0);
    ASSERT_EQ(body_ran, 0);
}

static void *main_cancel_return_values(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_cancel(NULL), -EINVAL);
    corio_task *t = corio_create_task(corio_coro(body, NULL));
    ASSERT_EQ(corio_await(t, NULL), 0);
    ASSERT_EQ(body_ran, 1);
    ASSERT_EQ(corio_cancel(t), 0); /* finished */
    void *r = NULL;
    ASSERT_EQ(corio_await(t, &r), 0); /* and its outcome is unchanged */
    ASSERT_EQ((intptr_t)r, 5);
    ASSERT_EQ(corio_task_release(t), 0);

    t = corio_create_task(corio_coro(sleep10_report, NULL));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(corio_cancel(t), 0);
    ASSERT_EQ(corio_cancel(t), 0);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_EQ(corio_cancel(t), 0);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(cancel_return_values)
{
    ASSERT_EQ(test_run_virtual(main_cancel_return_values, NULL, NULL), 0);
}

static int awaited_finished;
static int64_t awaited_end = -1;

static void *sleep5_finish(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_sleep(5), 0);
    awaited_finished = 1;
    awaited_end = corio_now_ns();
    return (void *)(intptr_t)55;
}

static int awaiter_rc = 1;
static int64_t awaiter_end = -1;

static void *await_arg(void *arg)
{
    void *r = (void *)3;
    awaiter_rc = corio_await((corio_task *)arg, &r);
    awaiter_end = corio_now_ns();
    return corio_fail(awaiter_rc < 0 ? awaiter_rc : -EPROTO);
}

static void *main_cancel_awaiter(void *arg)
{
    (void)arg;
    corio_task *target = corio_create_task(corio_coro(sleep5_finish, NULL));
    corio_task *w = corio_create_task(corio_coro(await_arg, target));
    ASSERT_EQ(corio_yield(), 0); /* target sleeps, w waits on it */
    ASSERT_EQ(corio_cancel(w), 1);
    ASSERT_EQ(corio_await(w, NULL), -ECANCELED);
    ASSERT_EQ(awaiter_rc, -ECANCELED);
    ASSERT_EQ(awaiter_end, 0);
    /* the awaited task goes on, uncancelled */
    ASSERT_EQ(awaited_finished, 0);
    ASSERT_EQ(corio_task_done(target), 0);
    void *r = NULL;
    ASSERT_EQ(corio_await(target, &r), 0);
    ASSERT_EQ((intptr_t)r, 55);
    ASSERT_EQ(awaited_finished, 1);
    ASSERT_EQ(awaited_end, 5000000000LL);
    ASSERT_EQ(corio_task_release(w), 0);
    ASSERT_EQ(corio_task_release(target), 0);
    return NULL;
}

TEST(cancel_awaiter_leaves_awaited_running)
{
    ASSERT_EQ(test_run_virtual(main_cancel_awaiter, NULL, NULL), 0);
}

static int resumes;

static void *sleep1_count(void *arg)
{
    (void)arg;
    int rc = corio_sleep(1);
    resumes++;
    return corio_fail(rc < 0 ? rc : -EPROTO);
}

static int reuse_rc = 1;
static int64_t reuse_end = -1;

static void *sleep3_report(void *arg)
{
    (void)arg;
    reuse_rc = corio_sleep(3);
    reuse_end = corio_now_ns();
    return NULL;
}

static void *main_wakes_once(void *arg)
{
    (void)arg;
    for (int round = 0; round < 3; round++) {
        resumes = 0;
        int64_t t0 = corio_now_ns();
        corio_task *t = corio_create_task(corio_coro(sleep1_count, NULL));
        ASSERT_EQ(corio_yield(), 0);
        ASSERT_EQ(corio_cancel(t), 1);
        ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
        ASSERT_EQ(corio_task_release(t), 0); /* freed: its stack may be reused now */
        /* A new task likely on the same stack and task memory. If the
         * cancelled sleep's timer were still armed, it would fire at t0 + 1 s
         * and resume this one early. */
        corio_task *u = corio_create_task(corio_coro(sleep3_report, NULL));
        ASSERT_EQ(corio_sleep(2), 0);
        ASSERT_EQ(corio_now_ns(), t0 + 2000000000LL);
        ASSERT_EQ(resumes, 1);
        ASSERT_EQ(corio_await(u, NULL), 0);
        ASSERT_EQ(reuse_rc, 0);
        ASSERT_EQ(reuse_end, t0 + 3000000000LL);
        ASSERT_EQ(corio_task_release(u), 0);
    }
    return NULL;
}

TEST(cancel_wakes_exactly_once)
{
    ASSERT_EQ(test_run_virtual(main_wakes_once, NULL, NULL), 0);
}

static int late_rc = 1;

static void *sleep1_report(void *arg)
{
    (void)arg;
    late_rc = corio_sleep(1);
    return corio_fail(late_rc < 0 ? late_rc : -EPROTO);
}

static void *main_cancel_after_wakeup(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(sleep1_report, NULL));
    /* main's timer is armed first, t's second, same deadline: at 1 s both
     * expire, main runs first while t's wakeup is handed out but t has not
     * resumed. The cancel still lands on that suspension. */
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(late_rc, 1);
    ASSERT_EQ(corio_task_done(t), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_EQ(late_rc, -ECANCELED);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(cancel_after_wakeup_before_resume)
{
    ASSERT_EQ(test_run_virtual(main_cancel_after_wakeup, NULL, NULL), 0);
}

static void *cancel_self(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_cancel(corio_current_task()), 1);
    ASSERT_EQ(corio_cancel(corio_current_task()), 0);
    /* running on: the cancel lands at the next suspension */
    int rc = corio_sleep(1);
    ASSERT_EQ(rc, -ECANCELED);
    ASSERT_EQ(corio_yield(), -ECANCELED);
    return corio_fail(rc);
}

static void *main_cancel_self(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(cancel_self, NULL));
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(cancel_self)
{
    ASSERT_EQ(test_run_virtual(main_cancel_self, NULL, NULL), 0);
}

static void *yield_forever(void *arg)
{
    (void)arg;
    long n = 0;
    for (;;) {
        int rc = corio_yield();
        if (rc < 0)
            return corio_fail(rc);
        n++;
    }
}

static void *main_cancel_yielder(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(yield_forever, NULL));
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(cancel_ready_task_in_yield)
{
    ASSERT_EQ(test_run_virtual(main_cancel_yielder, NULL, NULL), 0);
}

static void *main_cancel_many(void *arg)
{
    (void)arg;
    enum { N = 200 };
    corio_task *t[N];
    for (int i = 0; i < N; i++)
        t[i] = corio_create_task(corio_coro(sleep10_report, NULL));
    ASSERT_EQ(corio_yield(), 0);
    /* cancel every other one, in reverse */
    for (int i = N - 1; i >= 0; i -= 2)
        ASSERT_EQ(corio_cancel(t[i]), 1);
    for (int i = 0; i < N; i++) {
        void *r = NULL;
        int rc = corio_await(t[i], &r);
        if (i % 2) {
            ASSERT_EQ(rc, -ECANCELED);
        } else {
            ASSERT_EQ(rc, 0);
            ASSERT_EQ((intptr_t)r, 1);
        }
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    ASSERT_EQ(corio_now_ns(), 10000000000LL);
    return NULL;
}

TEST(cancel_some_of_many)
{
    ASSERT_EQ(test_run_virtual(main_cancel_many, NULL, NULL), 0);
}

/* ---- Cancel at suspension N, for N = 0, 1, 2 ... until the work completes -- */

static void *leaf(void *arg)
{
    int rc = corio_sleep_ns((int64_t)(intptr_t)arg);
    return rc < 0 ? corio_fail(rc) : arg;
}

static void *inline_part(void *arg)
{
    (void)arg;
    int rc = corio_yield();
    if (rc < 0)
        return corio_fail(rc);
    rc = corio_sleep_ns(30);
    return rc < 0 ? corio_fail(rc) : NULL;
}

/* A workload that suspends in every way the API offers. */
static void *workload(void *arg)
{
    (void)arg;
    int rc;
    if ((rc = corio_yield()) < 0)
        return corio_fail(rc);
    if ((rc = corio_sleep_ns(10)) < 0)
        return corio_fail(rc);
    corio_task *c = corio_create_task(corio_coro(leaf, (void *)(intptr_t)20));
    if (!c)
        return corio_fail(-ENOMEM);
    rc = corio_await(c, NULL);
    corio_task_release(c);
    if (rc < 0)
        return corio_fail(rc);
    if ((rc = corio_await(corio_coro(inline_part, NULL), NULL)) < 0)
        return corio_fail(rc);
    corio_coro_t g[3] = {corio_coro(leaf, (void *)(intptr_t)5), corio_coro(leaf, (void *)(intptr_t)15),
                         corio_coro(leaf, (void *)(intptr_t)0)};
    if ((rc = corio_gather(g, 3, NULL)) < 0)
        return corio_fail(rc);
    if ((rc = corio_sleep(0)) < 0)
        return corio_fail(rc);
    return (void *)(intptr_t)1234;
}

static void *main_cancel_at_step(void *arg)
{
    intptr_t steps = (intptr_t)arg;
    corio_task *t = corio_create_task(corio_coro(workload, NULL));
    ASSERT_NOT_NULL(t);
    /* advance the workload by `steps` suspensions of main, each a yield or a
     * 1 ns sleep so that virtual time moves too */
    for (intptr_t i = 0; i < steps && !corio_task_done(t); i++)
        ASSERT_EQ(i % 2 ? corio_sleep_ns(1) : corio_yield(), 0);
    int done_before = corio_task_done(t);
    int c = corio_cancel(t);
    ASSERT_EQ(c, done_before ? 0 : 1);
    void *r = NULL;
    int rc = corio_await(t, &r);
    ASSERT_EQ(corio_task_release(t), 0);
    if (done_before) {
        ASSERT_EQ(rc, 0);
        ASSERT_EQ((intptr_t)r, 1234);
        return (void *)(intptr_t)1;
    }
    ASSERT_EQ(rc, -ECANCELED);
    ASSERT_NULL(r);
    return (void *)(intptr_t)0;
}

TEST(cancel_at_every_suspension_point)
{
    for (intptr_t n = 0; n < 1000; n++) {
        void *finished = NULL;
        ASSERT_EQ(test_run_virtual(main_cancel_at_step, (void *)n, &finished), 0);
        if (finished) {
            printf("the workload completed when cancelled after %ld steps\n", (long)n);
            ASSERT_GT(n, 5); /* the workload needed several steps */
            return;
        }
    }
    ASSERT(!"the workload never completed");
}

static void *await_and_report(void *arg)
{
    void *r = (void *)1;
    int rc = corio_await((corio_task *)arg, &r);
    test_trace("%d:%p", rc, r);
    return NULL;
}

static void *main_awaiters_of_cancelled(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(sleep10_report, NULL));
    corio_task *a[3];
    for (int i = 0; i < 3; i++)
        a[i] = corio_create_task(corio_coro(await_and_report, t));
    ASSERT_EQ(corio_yield(), 0); /* t sleeps, the three wait on it */
    ASSERT_EQ(corio_cancel(t), 1);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(corio_await(a[i], NULL), 0);
        ASSERT_EQ(corio_task_release(a[i]), 0);
    }
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_EQ(corio_task_release(t), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    return NULL;
}

TEST(cancel_reaches_every_awaiter_as_status)
{
    ASSERT_EQ(test_run_virtual(main_awaiters_of_cancelled, NULL, NULL), 0);
    char want[128];
    snprintf(want, sizeof want, "%d:%p %d:%p %d:%p", -ECANCELED, (void *)NULL, -ECANCELED,
             (void *)NULL, -ECANCELED, (void *)NULL);
    ASSERT_STR_EQ(test_trace_get(), want);
}
