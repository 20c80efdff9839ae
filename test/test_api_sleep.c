/* test/test_api_sleep.c - sleeping, yielding and the clock (virtual, plus a
 * lower-bound-only check on the real clock). */
#include "test.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>

static int witness_runs;

static void *witness(void *arg)
{
    (void)arg;
    witness_runs++;
    return NULL;
}

static void *main_bad_sleep(void *arg)
{
    (void)arg;
    corio_task *w = corio_create_task(corio_coro(witness, NULL));
    ASSERT_NOT_NULL(w);
    ASSERT_EQ(corio_sleep(-1), -EINVAL);
    ASSERT_EQ(corio_sleep(-1e-9), -EINVAL);
    ASSERT_EQ(corio_sleep(NAN), -EINVAL);
    ASSERT_EQ(corio_sleep(-NAN), -EINVAL);
    ASSERT_EQ(corio_sleep(INFINITY), -EINVAL);
    ASSERT_EQ(corio_sleep(-INFINITY), -EINVAL);
    ASSERT_EQ(corio_sleep_ns(-1), -EINVAL);
    ASSERT_EQ(corio_sleep_ns(INT64_MIN), -EINVAL);
    /* a failed call has no other effect: no suspension, no time passed */
    ASSERT_EQ(witness_runs, 0);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_await(w, NULL), 0);
    ASSERT_EQ(witness_runs, 1);
    ASSERT_EQ(corio_task_release(w), 0);
    return NULL;
}

TEST(sleep_bad_durations_are_einval)
{
    ASSERT_EQ(test_run_virtual(main_bad_sleep, NULL, NULL), 0);
}

static void *pinger(void *arg)
{
    const char *name = arg;
    for (int i = 0; i < 3; i++) {
        test_trace("%s%d", name, i);
        if (name[0] == 'A')
            ASSERT_EQ(corio_sleep(0), 0);
        else
            ASSERT_EQ(corio_sleep_ns(0), 0);
    }
    return NULL;
}

static void *main_sleep_zero(void *arg)
{
    (void)arg;
    corio_task *a = corio_create_task(corio_coro(pinger, "A"));
    corio_task *b = corio_create_task(corio_coro(pinger, "B"));
    ASSERT_EQ(corio_await(a, NULL), 0);
    ASSERT_EQ(corio_await(b, NULL), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    corio_task_release(a);
    corio_task_release(b);
    return NULL;
}

TEST(sleep_zero_is_a_yield)
{
    ASSERT_EQ(test_run_virtual(main_sleep_zero, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "A0 B0 A1 B1 A2 B2");
}

static void *main_sleep_precise(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT(corio_now() == 0.0);
    ASSERT_EQ(corio_sleep_ns(1), 0);
    ASSERT_EQ(corio_now_ns(), 1);
    ASSERT_EQ(corio_sleep_ns(1234567), 0);
    ASSERT_EQ(corio_now_ns(), 1234568);
    ASSERT_EQ(corio_sleep(1.5), 0);
    ASSERT_EQ(corio_now_ns(), 1501234568LL);
    ASSERT_EQ(corio_sleep(2), 0);
    ASSERT_EQ(corio_now_ns(), 3501234568LL);
    ASSERT(fabs(corio_now() - 3.501234568) < 1e-9);
    /* a fraction that is not exact in binary: at least the time, within 1 ns */
    int64_t t0 = corio_now_ns();
    ASSERT_EQ(corio_sleep(0.1), 0);
    ASSERT_GE(corio_now_ns() - t0, 100000000);
    ASSERT_LE(corio_now_ns() - t0, 100000001);
    t0 = corio_now_ns();
    ASSERT_EQ(corio_sleep(1e-9), 0);
    ASSERT_GE(corio_now_ns() - t0, 1);
    ASSERT_LE(corio_now_ns() - t0, 2);
    /* an hour and a day, still exact */
    t0 = corio_now_ns();
    ASSERT_EQ(corio_sleep(86400), 0);
    ASSERT_EQ(corio_now_ns() - t0, 86400000000000LL);
    return NULL;
}

TEST(sleep_virtual_times_are_exact)
{
    ASSERT_EQ(test_run_virtual(main_sleep_precise, NULL, NULL), 0);
}

static void *sleep3(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_sleep(3), 0);
    return (void *)(intptr_t)corio_now_ns();
}

static void *main_concurrent_sleeps(void *arg)
{
    (void)arg;
    corio_task *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = corio_create_task(corio_coro(sleep3, NULL));
    for (int i = 0; i < 3; i++) {
        void *r = NULL;
        ASSERT_EQ(corio_await(t[i], &r), 0);
        ASSERT_EQ((intptr_t)r, 3000000000LL);
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    ASSERT_EQ(corio_now_ns(), 3000000000LL);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(corio_await(corio_coro(sleep3, NULL), NULL), 0);
    ASSERT_EQ(corio_now_ns(), 12000000000LL);
    return NULL;
}

TEST(sleep_concurrent_3s_and_sequential_9s)
{
    ASSERT_EQ(test_run_virtual(main_concurrent_sleeps, NULL, NULL), 0);
}

static int spinner_done;

static void *spinner(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        ASSERT_EQ(corio_now_ns(), 0);
        ASSERT_EQ(corio_yield(), 0);
    }
    spinner_done = 1;
    return NULL;
}

static void *main_virtual_waits_for_idle(void *arg)
{
    (void)arg;
    corio_task *s = corio_create_task(corio_coro(spinner, NULL));
    ASSERT_EQ(corio_sleep_ns(1), 0); /* cannot end while the spinner is ready */
    ASSERT_EQ(spinner_done, 1);
    ASSERT_EQ(corio_now_ns(), 1);
    ASSERT_EQ(corio_task_release(s), 0);
    return NULL;
}

TEST(sleep_virtual_clock_waits_until_all_idle)
{
    ASSERT_EQ(test_run_virtual(main_virtual_waits_for_idle, NULL, NULL), 0);
}

static void *never_early(void *arg)
{
    (void)arg;
    int64_t durations[] = {0, 1, 1000, 50000, 100000, 999999, 1000000, 2500000};
    for (int rep = 0; rep < 3; rep++)
        for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
            int64_t t0 = corio_now_ns();
            ASSERT_EQ(corio_sleep_ns(durations[i]), 0);
            int64_t t1 = corio_now_ns();
            ASSERT_GE(t1 - t0, durations[i]);
            double d0 = corio_now();
            ASSERT_EQ(corio_sleep((double)durations[i] / 1e9), 0);
            ASSERT(corio_now() >= d0 + (double)durations[i] / 1e9 - 1e-9);
        }
    return NULL;
}

static void *main_never_early(void *arg)
{
    (void)arg;
    corio_task *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = corio_create_task(corio_coro(never_early, NULL));
    never_early(NULL);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(corio_await(t[i], NULL), 0);
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    return NULL;
}

TEST(sleep_never_fires_early)
{
    /* real clock: only lower bounds, never an upper bound on wall time */
    corio_loop_opts o = {.clock = CORIO_CLOCK_REAL};
    ASSERT_EQ(corio_run_opts(corio_coro(main_never_early, NULL), NULL, &o), 0);
    ASSERT_EQ(test_run_virtual(main_never_early, NULL, NULL), 0);
}

static void *main_real_clock_monotonic(void *arg)
{
    (void)arg;
    int64_t prev = corio_now_ns();
    ASSERT_GE(prev, 0);
    for (int i = 0; i < 100; i++) {
        ASSERT_EQ(corio_yield(), 0);
        int64_t now = corio_now_ns();
        ASSERT_GE(now, prev);
        prev = now;
    }
    return NULL;
}

TEST(clock_real_is_monotonic)
{
    corio_loop_opts o = {.clock = CORIO_CLOCK_REAL};
    ASSERT_EQ(corio_run_opts(corio_coro(main_real_clock_monotonic, NULL), NULL, &o), 0);
}

static int huge_rc[2] = {1, 1};

static void *sleep_huge(void *arg)
{
    int i = (int)(intptr_t)arg;
    huge_rc[i] = i == 0 ? corio_sleep_ns(INT64_MAX) : corio_sleep(1e300);
    return NULL;
}

static void *sleep_1s_trace(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_sleep(1), 0);
    test_trace("short@%lld", (long long)corio_now_ns());
    return NULL;
}

static void *main_huge_sleeps(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_sleep_ns(5), 0); /* now > 0: now + INT64_MAX would overflow */
    corio_task *h0 = corio_create_task(corio_coro(sleep_huge, (void *)(intptr_t)0));
    corio_task *h1 = corio_create_task(corio_coro(sleep_huge, (void *)(intptr_t)1));
    corio_task *s = corio_create_task(corio_coro(sleep_1s_trace, NULL));
    ASSERT_EQ(corio_await(s, NULL), 0);
    /* the huge deadlines were clamped, not wrapped: they are still pending */
    ASSERT_STR_EQ(test_trace_get(), "short@1000000005");
    ASSERT_EQ(huge_rc[0], 1);
    ASSERT_EQ(huge_rc[1], 1);
    ASSERT_EQ(corio_task_done(h0), 0);
    ASSERT_EQ(corio_task_done(h1), 0);
    ASSERT_EQ(corio_cancel(h0), 1);
    ASSERT_EQ(corio_cancel(h1), 1);
    ASSERT_EQ(corio_await(h0, NULL), 0);
    ASSERT_EQ(corio_await(h1, NULL), 0);
    ASSERT_EQ(huge_rc[0], -ECANCELED);
    ASSERT_EQ(huge_rc[1], -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 1000000005);
    corio_task_release(h0);
    corio_task_release(h1);
    corio_task_release(s);
    return NULL;
}

TEST(sleep_huge_durations_are_clamped)
{
    ASSERT_EQ(test_run_virtual(main_huge_sleeps, NULL, NULL), 0);
}

static void *main_yield_alone(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        ASSERT_EQ(corio_yield(), 0); /* nobody else ready: returns, no deadlock */
    ASSERT_EQ(corio_now_ns(), 0);
    return (void *)(intptr_t)1;
}

TEST(yield_alone_returns)
{
    void *r = NULL;
    ASSERT_EQ(test_run_virtual(main_yield_alone, NULL, &r), 0);
    ASSERT_EQ((intptr_t)r, 1);
}
