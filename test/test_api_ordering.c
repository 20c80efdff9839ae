/* test/test_api_ordering.c - the scheduling order users may rely on, one
 * test per rule: FIFO ready queue, a new task runs at its creator's next
 * suspension, timers by (deadline, sequence), yield is round robin, tasks
 * woken in one loop turn run in wake order. */
#include "test.h"

#include <errno.h>
#include <stdint.h>

static void *trace_name(void *arg)
{
    test_trace("%s", (const char *)arg);
    return NULL;
}

static void *main_fifo(void *arg)
{
    (void)arg;
    const char *names[] = {"A", "B", "C", "D", "E"};
    corio_task *t[5];
    for (int i = 0; i < 5; i++)
        t[i] = corio_create_task(corio_coro(trace_name, (void *)names[i]));
    /* await in reverse: the run order is still the creation order */
    for (int i = 4; i >= 0; i--) {
        ASSERT_EQ(corio_await(t[i], NULL), 0);
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    return NULL;
}

TEST(order_ready_queue_is_fifo)
{
    ASSERT_EQ(test_run_virtual(main_fifo, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "A B C D E");
}

static void *main_create_runs_at_suspension(void *arg)
{
    (void)arg;
    test_trace("m1");
    corio_task *a = corio_create_task(corio_coro(trace_name, "A"));
    test_trace("m2");
    corio_task *b = corio_create_task(corio_coro(trace_name, "B"));
    test_trace("m3");
    ASSERT_EQ(corio_yield(), 0);
    test_trace("m4");
    corio_task *c = corio_create_task(corio_coro(trace_name, "C"));
    test_trace("m5");
    ASSERT_EQ(corio_sleep(1), 0);
    test_trace("m6");
    corio_task_release(a);
    corio_task_release(b);
    corio_task_release(c);
    return NULL;
}

TEST(order_created_task_runs_when_creator_suspends)
{
    ASSERT_EQ(test_run_virtual(main_create_runs_at_suspension, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "m1 m2 m3 A B m4 m5 C m6");
}

static void *sleep_after_yields(void *arg)
{
    const char *name = arg;
    int yields = name[0] == 'A' ? 2 : name[0] == 'B' ? 1 : 0;
    for (int i = 0; i < yields; i++)
        ASSERT_EQ(corio_yield(), 0);
    test_trace("arm%s", name);
    ASSERT_EQ(corio_sleep(1), 0);
    test_trace("fire%s@%lld", name, (long long)corio_now_ns());
    return NULL;
}

static void *main_equal_deadlines(void *arg)
{
    (void)arg;
    const char *names[] = {"A", "B", "C"};
    corio_task *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = corio_create_task(corio_coro(sleep_after_yields, (void *)names[i]));
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(corio_await(t[i], NULL), 0);
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    return NULL;
}

TEST(order_equal_deadlines_fire_in_arming_order)
{
    /* all deadlines are 1 s (virtual time stands still while tasks are
     * ready), armed C, B, A: they fire C, B, A, not in creation order */
    ASSERT_EQ(test_run_virtual(main_equal_deadlines, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(),
                  "armC armB armA fireC@1000000000 fireB@1000000000 fireA@1000000000");
}

static void *sleep_named(void *arg)
{
    const char *name = arg;
    double s = name[0] == 'L' ? 2.0 : 0.5;
    ASSERT_EQ(corio_sleep(s), 0);
    test_trace("%s@%lld", name, (long long)corio_now_ns());
    return NULL;
}

static void *main_shorter_later(void *arg)
{
    (void)arg;
    corio_task *l = corio_create_task(corio_coro(sleep_named, "Long"));
    ASSERT_EQ(corio_sleep(1), 0); /* Long armed at 0 for 2 s */
    corio_task *s = corio_create_task(corio_coro(sleep_named, "Short"));
    /* Short armed at 1 s for 0.5 s: deadline 1.5 s < 2 s */
    ASSERT_EQ(corio_await(l, NULL), 0);
    ASSERT_EQ(corio_await(s, NULL), 0);
    corio_task_release(l);
    corio_task_release(s);
    return NULL;
}

TEST(order_shorter_sleep_started_later_fires_first)
{
    ASSERT_EQ(test_run_virtual(main_shorter_later, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "Short@1500000000 Long@2000000000");
}

static void *yielder(void *arg)
{
    const char *name = arg;
    for (int i = 0; i < 3; i++) {
        test_trace("%s", name);
        ASSERT_EQ(corio_yield(), 0);
    }
    return NULL;
}

static void *main_round_robin(void *arg)
{
    intptr_t n = (intptr_t)arg;
    const char *names[] = {"A", "B", "C"};
    corio_task *t[3];
    for (intptr_t i = 0; i < n; i++)
        t[i] = corio_create_task(corio_coro(yielder, (void *)names[i]));
    for (intptr_t i = 0; i < n; i++) {
        ASSERT_EQ(corio_await(t[i], NULL), 0);
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    return NULL;
}

TEST(order_yield_is_round_robin)
{
    ASSERT_EQ(test_run_virtual(main_round_robin, (void *)(intptr_t)2, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "A B A B A B");
    test_trace_reset();
    ASSERT_EQ(test_run_virtual(main_round_robin, (void *)(intptr_t)3, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "A B C A B C A B C");
}

static void *yield_and_spawn(void *arg)
{
    (void)arg;
    test_trace("b1");
    corio_task *c = corio_create_task(corio_coro(trace_name, "c"));
    ASSERT_EQ(corio_yield(), 0);
    test_trace("b2");
    ASSERT_EQ(corio_await(c, NULL), 0);
    corio_task_release(c);
    return NULL;
}

static void *yield_twice(void *arg)
{
    (void)arg;
    test_trace("a1");
    ASSERT_EQ(corio_yield(), 0);
    test_trace("a2");
    return NULL;
}

static void *main_yield_lets_others_run(void *arg)
{
    (void)arg;
    corio_task *a = corio_create_task(corio_coro(yield_twice, NULL));
    corio_task *b = corio_create_task(corio_coro(yield_and_spawn, NULL));
    test_trace("m1");
    ASSERT_EQ(corio_yield(), 0); /* a and b each run once, then main */
    test_trace("m2");
    ASSERT_EQ(corio_await(a, NULL), 0);
    ASSERT_EQ(corio_await(b, NULL), 0);
    corio_task_release(a);
    corio_task_release(b);
    return NULL;
}

TEST(order_yield_lets_every_ready_task_run_once)
{
    ASSERT_EQ(test_run_virtual(main_yield_lets_others_run, NULL, NULL), 0);
    /* queue after main's yield: a b main; a yields behind main, b creates c
     * (behind a) and yields: main a c b */
    ASSERT_STR_EQ(test_trace_get(), "m1 a1 b1 m2 a2 c b2");
}

static corio_task *target;

static void *await_target(void *arg)
{
    const char *name = arg;
    int yields = name[0] == 'A' ? 2 : name[0] == 'B' ? 1 : 0;
    for (int i = 0; i < yields; i++)
        ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_await(target, NULL), 0);
    test_trace("%s", name);
    return NULL;
}

static void *sleep1(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_sleep(1), 0);
    test_trace("T");
    return NULL;
}

static void *main_wake_order(void *arg)
{
    (void)arg;
    target = corio_create_task(corio_coro(sleep1, NULL));
    const char *names[] = {"A", "B", "C"};
    corio_task *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = corio_create_task(corio_coro(await_target, (void *)names[i]));
    /* they start waiting C, B, A; the end of T wakes them in that order */
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(corio_await(t[i], NULL), 0);
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    ASSERT_EQ(corio_task_release(target), 0);
    return NULL;
}

TEST(order_woken_tasks_run_in_wake_order)
{
    ASSERT_EQ(test_run_virtual(main_wake_order, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "T C B A");
}

static void *sleep1_trace(void *arg)
{
    ASSERT_EQ(corio_sleep(1), 0);
    test_trace("%s", (const char *)arg);
    return NULL;
}

static void *await_then_trace(void *arg)
{
    ASSERT_EQ(corio_await(target, NULL), 0);
    test_trace("%s", (const char *)arg);
    return NULL;
}

static void *main_mixed_wake_order(void *arg)
{
    (void)arg;
    /* X armed first, S second, both for 1 s; W awaits X. At 1 s the timers
     * wake X then S in that turn; X's end wakes W after them. */
    target = corio_create_task(corio_coro(sleep1_trace, "X"));
    corio_task *s = corio_create_task(corio_coro(sleep1_trace, "S"));
    corio_task *w = corio_create_task(corio_coro(await_then_trace, "W"));
    ASSERT_EQ(corio_await(w, NULL), 0);
    ASSERT_EQ(corio_await(s, NULL), 0);
    corio_task_release(w);
    corio_task_release(s);
    corio_task_release(target);
    return NULL;
}

TEST(order_timer_wakeups_before_later_wakeups)
{
    ASSERT_EQ(test_run_virtual(main_mixed_wake_order, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "X S W");
}

static void *sleep_cancel_trace(void *arg)
{
    int rc = corio_sleep(10);
    test_trace("%s%s", (const char *)arg, rc == -ECANCELED ? "!" : "?");
    return NULL;
}

static void *main_cancel_wake_order(void *arg)
{
    (void)arg;
    const char *names[] = {"A", "B", "C"};
    corio_task *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = corio_create_task(corio_coro(sleep_cancel_trace, (void *)names[i]));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(t[2]), 1);
    ASSERT_EQ(corio_cancel(t[0]), 1);
    ASSERT_EQ(corio_cancel(t[1]), 1);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(corio_await(t[i], NULL), 0);
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    ASSERT_EQ(corio_now_ns(), 0);
    return NULL;
}

TEST(order_cancelled_tasks_resume_in_cancel_order)
{
    ASSERT_EQ(test_run_virtual(main_cancel_wake_order, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "C! A! B!");
}

/* ---- Many timers: a heap, not a list ---------------------------------------- */

enum { NTIMERS = 5000 };
static int64_t timer_deadline[NTIMERS];
static int fire_order[NTIMERS];
static int nfired;

static void *timer_task(void *arg)
{
    int i = (int)(intptr_t)arg;
    int rc = corio_sleep_ns(timer_deadline[i]);
    if (rc < 0)
        return corio_fail(rc);
    ASSERT_EQ(corio_now_ns(), timer_deadline[i]); /* exactly on time */
    fire_order[nfired++] = i;
    return NULL;
}

static void *main_many_timers(void *arg)
{
    (void)arg;
    static corio_task *t[NTIMERS];
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < NTIMERS; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        timer_deadline[i] = (int64_t)(x % 300) * 1000; /* many equal deadlines */
        t[i] = corio_create_task(corio_coro(timer_task, (void *)(intptr_t)i));
    }
    ASSERT_EQ(corio_yield(), 0); /* all armed, in index order, at time 0 */
    /* cancel every third: their timers must leave the queue cleanly */
    for (int i = 0; i < NTIMERS; i += 3)
        if (timer_deadline[i] > 0)
            ASSERT_EQ(corio_cancel(t[i]), 1);
    for (int i = 0; i < NTIMERS; i++) {
        int rc = corio_await(t[i], NULL);
        ASSERT_EQ(rc, i % 3 == 0 && timer_deadline[i] > 0 ? -ECANCELED : 0);
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    return NULL;
}

TEST(order_many_timers_fire_by_deadline_then_sequence)
{
    ASSERT_EQ(test_run_virtual(main_many_timers, NULL, NULL), 0);
    int expect = 0;
    for (int i = 0; i < NTIMERS; i++)
        expect += !(i % 3 == 0 && timer_deadline[i] > 0);
    ASSERT_EQ(nfired, expect);
    for (int k = 1; k < nfired; k++) {
        int a = fire_order[k - 1], b = fire_order[k];
        ASSERT(timer_deadline[a] < timer_deadline[b] ||
               (timer_deadline[a] == timer_deadline[b] && a < b));
    }
}
