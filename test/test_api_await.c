/* test/test_api_await.c - awaiting tasks and coroutine objects. */
#include "test.h"

#include <errno.h>
#include <stdint.h>

static void *sleep_ns_then_return(void *arg)
{
    intptr_t ns = (intptr_t)arg;
    ASSERT_EQ(corio_sleep_ns(ns), 0);
    return (void *)(ns + 1);
}

static void *sleep_then_fail(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_sleep(1), 0);
    return corio_fail(-EIO);
}

static void *main_await_task(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(sleep_ns_then_return, (void *)(intptr_t)500));
    ASSERT_NOT_NULL(t);
    void *r = NULL;
    ASSERT_EQ(corio_await(t, &r), 0);
    ASSERT_EQ((intptr_t)r, 501);
    ASSERT_EQ(corio_now_ns(), 500);
    ASSERT_EQ(corio_await(t, NULL), 0); /* result may be NULL */
    ASSERT_EQ(corio_task_release(t), 0);

    t = corio_create_task(corio_coro(sleep_then_fail, NULL));
    ASSERT_NOT_NULL(t);
    r = (void *)1;
    ASSERT_EQ(corio_await(t, &r), -EIO);
    ASSERT_NULL(r);
    ASSERT_EQ(corio_now_ns(), 1000000500);
    ASSERT_EQ(corio_await_task(t, &r), -EIO);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(await_task_result_and_status)
{
    ASSERT_EQ(test_run_virtual(main_await_task, NULL, NULL), 0);
}

static int witness_runs;

static void *witness(void *arg)
{
    (void)arg;
    witness_runs++;
    return NULL;
}

static void *main_await_finished(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(sleep_ns_then_return, (void *)(intptr_t)7));
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(corio_await(t, NULL), 0);
    ASSERT_EQ(corio_task_done(t), 1);
    /* A ready task now: if awaiting the finished task suspended, it would run. */
    corio_task *w = corio_create_task(corio_coro(witness, NULL));
    ASSERT_NOT_NULL(w);
    int64_t now = corio_now_ns();
    for (int i = 0; i < 3; i++) {
        void *r = NULL;
        ASSERT_EQ(corio_await(t, &r), 0);
        ASSERT_EQ((intptr_t)r, 8);
    }
    ASSERT_EQ(witness_runs, 0);
    ASSERT_EQ(corio_now_ns(), now);
    ASSERT_EQ(corio_await(w, NULL), 0);
    ASSERT_EQ(witness_runs, 1);
    ASSERT_EQ(corio_task_release(t), 0);
    ASSERT_EQ(corio_task_release(w), 0);
    return NULL;
}

TEST(await_finished_task_returns_at_once)
{
    ASSERT_EQ(test_run_virtual(main_await_finished, NULL, NULL), 0);
}

static corio_task *shared_target;

static void *awaiter(void *arg)
{
    void *r = NULL;
    int rc = corio_await(shared_target, &r);
    test_trace("%s:%d:%ld:%lld", (const char *)arg, rc, (long)(intptr_t)r,
               (long long)corio_now_ns());
    return NULL;
}

static void *main_many_awaiters(void *arg)
{
    (void)arg;
    shared_target = corio_create_task(corio_coro(sleep_ns_then_return, (void *)(intptr_t)1000));
    ASSERT_NOT_NULL(shared_target);
    const char *names[] = {"A", "B", "C", "D"};
    corio_task *a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = corio_create_task(corio_coro(awaiter, (void *)names[i]));
        ASSERT_NOT_NULL(a[i]);
    }
    void *r = NULL;
    ASSERT_EQ(corio_await(shared_target, &r), 0); /* main is the fifth awaiter */
    test_trace("main:%ld", (long)(intptr_t)r);
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(corio_await(a[i], NULL), 0);
        ASSERT_EQ(corio_task_release(a[i]), 0);
    }
    ASSERT_EQ(corio_task_release(shared_target), 0);
    return NULL;
}

TEST(await_several_awaiters_all_woken_in_order)
{
    ASSERT_EQ(test_run_virtual(main_many_awaiters, NULL, NULL), 0);
    /* main started waiting first, then A B C D as they ran */
    ASSERT_STR_EQ(test_trace_get(),
                  "main:1001 A:0:1001:1000 B:0:1001:1000 C:0:1001:1000 D:0:1001:1000");
}

static corio_task *outer_task;
static int inline_witness_seen = -1;
static corio_task *inline_current;

static void *inline_coro(void *arg)
{
    inline_current = corio_current_task();
    inline_witness_seen = witness_runs;
    return (void *)((intptr_t)arg * 3);
}

static void *inline_coro_sleeps(void *arg)
{
    ASSERT_PTR_EQ(corio_current_task(), outer_task);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_PTR_EQ(corio_current_task(), outer_task);
    return arg;
}

static void *main_await_coro(void *arg)
{
    (void)arg;
    outer_task = corio_current_task();
    corio_task *w = corio_create_task(corio_coro(witness, NULL));
    ASSERT_NOT_NULL(w);
    void *r = NULL;
    ASSERT_EQ(corio_await(corio_coro(inline_coro, (void *)(intptr_t)14), &r), 0);
    ASSERT_EQ((intptr_t)r, 42);
    /* ran inline: no yield, so the ready witness has not run, in or after */
    ASSERT_EQ(inline_witness_seen, 0);
    ASSERT_EQ(witness_runs, 0);
    ASSERT_PTR_EQ(inline_current, outer_task);
    ASSERT_EQ(corio_await_coro(corio_coro(inline_coro, (void *)(intptr_t)2), NULL), 0);
    ASSERT_EQ(witness_runs, 0);
    /* an awaited coroutine that suspends does so as this task */
    ASSERT_EQ(corio_await(corio_coro(inline_coro_sleeps, (void *)(intptr_t)5), &r), 0);
    ASSERT_EQ((intptr_t)r, 5);
    ASSERT_EQ(witness_runs, 1);
    ASSERT_EQ(corio_now_ns(), 1000000000LL);
    ASSERT_EQ(corio_task_release(w), 0);
    return NULL;
}

TEST(await_coro_runs_inline)
{
    ASSERT_EQ(test_run_virtual(main_await_coro, NULL, NULL), 0);
}

static void *fetch(void *arg)
{
    test_trace("start%d", (int)(intptr_t)arg);
    ASSERT_EQ(corio_sleep(3), 0);
    test_trace("end%d", (int)(intptr_t)arg);
    return arg;
}

static void *main_sequential(void *arg)
{
    (void)arg;
    for (intptr_t i = 1; i <= 3; i++) {
        void *r = NULL;
        ASSERT_EQ(corio_await(corio_coro(fetch, (void *)i), &r), 0);
        ASSERT_EQ((intptr_t)r, i);
        ASSERT_EQ(corio_now_ns(), i * 3000000000LL);
    }
    return NULL;
}

TEST(await_coros_in_sequence_add_up)
{
    ASSERT_EQ(test_run_virtual(main_sequential, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "start1 end1 start2 end2 start3 end3");
}

static void *nested_inline(void *arg)
{
    intptr_t n = (intptr_t)arg;
    if (n == 0)
        return (void *)(intptr_t)corio_sleep_ns(10);
    void *r = NULL;
    ASSERT_EQ(corio_await(corio_coro(nested_inline, (void *)(n - 1)), &r), 0);
    return (void *)((intptr_t)r + 1);
}

TEST(await_coro_nested)
{
    void *r = NULL;
    ASSERT_EQ(test_run_virtual(nested_inline, (void *)(intptr_t)50, &r), 0);
    ASSERT_EQ((intptr_t)r, 50);
}

static void *main_await_null(void *arg)
{
    (void)arg;
    void *r = (void *)0x77;
    ASSERT_EQ(corio_await_task(NULL, &r), -EINVAL);
    ASSERT_EQ(corio_await_coro(corio_coro(NULL, NULL), &r), -EINVAL);
    corio_task *nt = NULL;
    ASSERT_EQ(corio_await(nt, &r), -EINVAL);
    ASSERT_PTR_EQ(r, (void *)0x77);
    return NULL;
}

TEST(await_null_is_einval)
{
    ASSERT_EQ(test_run_virtual(main_await_null, NULL, NULL), 0);
}

static void *child_awaits_self(void *arg)
{
    (void)arg;
    void *r = (void *)0x77;
    int rc = corio_await(corio_current_task(), &r);
    ASSERT_PTR_EQ(r, (void *)0x77);
    return corio_fail(rc);
}

static void *main_child_awaits_self(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(child_awaits_self, NULL));
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(corio_await(t, NULL), -EDEADLK);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(await_self_in_task_is_edeadlk)
{
    ASSERT_EQ(test_run_virtual(main_child_awaits_self, NULL, NULL), 0);
}

static void *main_awaits_self(void *arg)
{
    (void)arg;
    void *r = (void *)0x77;
    /* the main task is a task too: corio_current_task() names it */
    ASSERT_NOT_NULL(corio_current_task());
    ASSERT_EQ(corio_await(corio_current_task(), &r), -EDEADLK);
    ASSERT_PTR_EQ(r, (void *)0x77);
    /* also from inside an awaited coroutine (same task) */
    ASSERT_EQ(corio_await(corio_coro(child_awaits_self, NULL), NULL), -EDEADLK);
    return NULL;
}

TEST(await_self_in_main_task_is_edeadlk)
{
    ASSERT_EQ(test_run_virtual(main_awaits_self, NULL, NULL), 0);
}

static void *main_await_many_tasks(void *arg)
{
    (void)arg;
    enum { N = 100 };
    corio_task *t[N];
    for (intptr_t i = 0; i < N; i++) {
        t[i] = corio_create_task(corio_coro(sleep_ns_then_return, (void *)((N - i) * 10)));
        ASSERT_NOT_NULL(t[i]);
    }
    for (intptr_t i = 0; i < N; i++) {
        void *r = NULL;
        ASSERT_EQ(corio_await(t[i], &r), 0);
        ASSERT_EQ((intptr_t)r, (N - i) * 10 + 1);
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    /* the first awaited task slept the longest: everything ended by then */
    ASSERT_EQ(corio_now_ns(), N * 10);
    return NULL;
}

TEST(await_many_tasks_concurrently)
{
    ASSERT_EQ(test_run_virtual(main_await_many_tasks, NULL, NULL), 0);
}
