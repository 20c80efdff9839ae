/* test/test_api_tasks.c - creating tasks, handles, release, spawn, done,
 * current task. */
#include "test.h"

#include <errno.h>
#include <stdint.h>

static void *times_two(void *arg)
{
    return (void *)((intptr_t)arg * 2);
}

static void *main_create_await(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(times_two, (void *)(intptr_t)21));
    ASSERT_NOT_NULL(t);
    void *r = NULL;
    ASSERT_EQ(corio_await(t, &r), 0);
    ASSERT_EQ((intptr_t)r, 42);
    ASSERT_EQ(corio_task_release(t), 0);

    corio_task *t2 = NULL;
    ASSERT_EQ(corio_task_create(&t2, corio_coro(times_two, (void *)(intptr_t)5), NULL), 0);
    ASSERT_NOT_NULL(t2);
    ASSERT_EQ(corio_await(t2, &r), 0);
    ASSERT_EQ((intptr_t)r, 10);
    ASSERT_EQ(corio_task_release(t2), 0);

    corio_task_opts o = {0};
    ASSERT_EQ(corio_task_create(&t2, corio_coro(times_two, (void *)(intptr_t)6), &o), 0);
    ASSERT_EQ(corio_await(t2, &r), 0);
    ASSERT_EQ((intptr_t)r, 12);
    ASSERT_EQ(corio_task_release(t2), 0);
    return NULL;
}

TEST(task_create_and_await)
{
    ASSERT_EQ(test_run_virtual(main_create_await, NULL, NULL), 0);
}

static void *main_create_bad(void *arg)
{
    (void)arg;
    ASSERT_NULL(corio_create_task(corio_coro(NULL, NULL)));
    corio_task *t = (corio_task *)0x88;
    ASSERT_EQ(corio_task_create(&t, corio_coro(NULL, NULL), NULL), -EINVAL);
    ASSERT_PTR_EQ(t, (void *)0x88);
    ASSERT_EQ(corio_task_create(NULL, corio_coro(times_two, NULL), NULL), -EINVAL);
    ASSERT_EQ(corio_spawn(corio_coro(NULL, NULL)), -EINVAL);
    return NULL;
}

TEST(task_create_bad_input)
{
    ASSERT_EQ(test_run_virtual(main_create_bad, NULL, NULL), 0);
}

static int finished_count;

static void *sleep_then_count(void *arg)
{
    ASSERT_EQ(corio_sleep_ns((int64_t)(intptr_t)arg), 0);
    finished_count++;
    return (void *)(intptr_t)corio_now_ns();
}

static void *main_release_running(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(sleep_then_count, (void *)(intptr_t)1000));
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(corio_task_release(t), 0); /* not started yet: it still runs */
    corio_task *u = corio_create_task(corio_coro(sleep_then_count, (void *)(intptr_t)2000));
    ASSERT_NOT_NULL(u);
    ASSERT_EQ(corio_yield(), 0); /* both are sleeping now */
    ASSERT_EQ(corio_task_done(u), 0);
    ASSERT_EQ(corio_task_release(u), 0); /* running: it finishes on its own */
    ASSERT_EQ(finished_count, 0);
    ASSERT_EQ(corio_sleep_ns(5000), 0);
    ASSERT_EQ(finished_count, 2);
    return NULL;
}

TEST(task_release_running_task_lets_it_finish)
{
    ASSERT_EQ(test_run_virtual(main_release_running, NULL, NULL), 0);
    ASSERT_EQ(finished_count, 2);
}

static void *main_double_release(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(sleep_then_count, (void *)(intptr_t)1000));
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(corio_yield(), 0);
    /* t is still running, so its memory is still live: the second release
     * must see that the handle was already given back. */
    ASSERT_EQ(corio_task_release(t), 0);
    ASSERT_EQ(corio_task_release(t), -EINVAL);
    ASSERT_EQ(corio_task_release(NULL), -EINVAL);
    ASSERT_EQ(corio_sleep_ns(2000), 0);
    ASSERT_EQ(finished_count, 1);
    return NULL;
}

TEST(task_double_release_is_einval)
{
    ASSERT_EQ(test_run_virtual(main_double_release, NULL, NULL), 0);
}

static int spawned_ran;

static void *spawned(void *arg)
{
    spawned_ran += (int)(intptr_t)arg;
    ASSERT_EQ(corio_sleep(1), 0);
    spawned_ran += (int)(intptr_t)arg;
    return NULL;
}

static void *main_spawn(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_spawn(corio_coro(spawned, (void *)(intptr_t)1)), 0);
    ASSERT_EQ(corio_spawn(corio_coro(spawned, (void *)(intptr_t)10)), 0);
    ASSERT_EQ(spawned_ran, 0); /* runs only once main suspends */
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(spawned_ran, 11);
    ASSERT_EQ(corio_sleep(2), 0);
    ASSERT_EQ(spawned_ran, 22);
    return NULL;
}

TEST(task_spawn_runs_detached)
{
    ASSERT_EQ(test_run_virtual(main_spawn, NULL, NULL), 0);
    ASSERT_EQ(spawned_ran, 22);
}

static void *main_done(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_task_done(NULL), -EINVAL);
    corio_task *t = corio_create_task(corio_coro(sleep_then_count, (void *)(intptr_t)1000));
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(corio_task_done(t), 0); /* not started */
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_task_done(t), 0); /* sleeping */
    ASSERT_EQ(corio_sleep_ns(1000), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_task_done(t), 1);
    ASSERT_EQ(corio_task_done(t), 1);
    void *r = NULL;
    ASSERT_EQ(corio_await(t, &r), 0);
    ASSERT_EQ((intptr_t)r, 1000);
    ASSERT_EQ(corio_task_done(t), 1);
    ASSERT_EQ(corio_task_release(t), 0);
    /* a task that ends without ever suspending */
    t = corio_create_task(corio_coro(times_two, NULL));
    ASSERT_EQ(corio_task_done(t), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_task_done(t), 1);
    ASSERT_EQ(corio_task_release(t), 0);
    /* the main task itself is not done while it runs */
    ASSERT_EQ(corio_task_done(corio_current_task()), 0);
    return NULL;
}

TEST(task_done)
{
    ASSERT_EQ(test_run_virtual(main_done, NULL, NULL), 0);
}

static corio_task *seen_current[4];

static void *record_current(void *arg)
{
    int i = (int)(intptr_t)arg;
    seen_current[i] = corio_current_task();
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_PTR_EQ(corio_current_task(), seen_current[i]); /* same after a switch */
    return NULL;
}

static void *main_current(void *arg)
{
    (void)arg;
    corio_task *self = corio_current_task();
    ASSERT_NOT_NULL(self);
    corio_task *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = corio_create_task(corio_coro(record_current, (void *)(intptr_t)i));
        ASSERT_NOT_NULL(t[i]);
    }
    ASSERT_PTR_EQ(corio_current_task(), self);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(corio_await(t[i], NULL), 0);
    ASSERT_PTR_EQ(corio_current_task(), self);
    for (int i = 0; i < 3; i++) {
        ASSERT_PTR_EQ(seen_current[i], t[i]);
        ASSERT_PTR_NE(seen_current[i], self);
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    return NULL;
}

TEST(task_current_task)
{
    ASSERT_NULL(corio_current_task());
    ASSERT_EQ(test_run_virtual(main_current, NULL, NULL), 0);
    ASSERT_NULL(corio_current_task());
}

static void *fail_with(void *arg)
{
    return corio_fail((int)(intptr_t)arg);
}

static void *main_fail_values(void *arg)
{
    (void)arg;
    struct {
        int in, want;
    } cases[] = {{-EIO, -EIO}, {-ETIMEDOUT, -ETIMEDOUT}, {-ENOMEM, -ENOMEM},
                 {0, -EINVAL}, {5, -EINVAL},            {EIO, -EINVAL}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        corio_task *t = corio_create_task(corio_coro(fail_with, (void *)(intptr_t)cases[i].in));
        ASSERT_NOT_NULL(t);
        void *r = (void *)1;
        ASSERT_EQ(corio_await(t, &r), cases[i].want);
        ASSERT_NULL(r);
        ASSERT_EQ(corio_await(t, &r), cases[i].want); /* again: same answer */
        ASSERT_EQ(corio_task_release(t), 0);
    }
    return NULL;
}

TEST(task_fail_statuses)
{
    ASSERT_EQ(test_run_virtual(main_fail_values, NULL, NULL), 0);
}

static void *fail_then_ok(void *arg)
{
    (void)arg;
    /* corio_fail records the error for this task only: a nested awaited
     * coroutine that fails does not end the awaiting task. */
    ASSERT_EQ(corio_await(corio_coro(fail_with, (void *)(intptr_t)-EIO), NULL), -EIO);
    ASSERT_EQ(corio_await(corio_coro(fail_with, (void *)(intptr_t)3), NULL), -EINVAL);
    return (void *)(intptr_t)9;
}

static void *main_fail_nested(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(fail_then_ok, NULL));
    void *r = NULL;
    ASSERT_EQ(corio_await(t, &r), 0);
    ASSERT_EQ((intptr_t)r, 9);
    ASSERT_EQ(corio_task_release(t), 0);
    /* the same in the main task */
    return fail_then_ok(NULL);
}

TEST(task_fail_in_awaited_coro_does_not_fail_caller)
{
    void *r = NULL;
    ASSERT_EQ(test_run_virtual(main_fail_nested, NULL, &r), 0);
    ASSERT_EQ((intptr_t)r, 9);
}

static int chain_sum;

static void *chain(void *arg)
{
    intptr_t n = (intptr_t)arg;
    chain_sum++;
    if (n == 0)
        return (void *)(intptr_t)0;
    corio_task *t = corio_create_task(corio_coro(chain, (void *)(n - 1)));
    ASSERT_NOT_NULL(t);
    void *r = NULL;
    ASSERT_EQ(corio_await(t, &r), 0);
    ASSERT_EQ(corio_task_release(t), 0);
    return (void *)((intptr_t)r + 1);
}

TEST(task_chain_of_awaits)
{
    void *r = NULL;
    ASSERT_EQ(test_run_virtual(chain, (void *)(intptr_t)1000, &r), 0);
    ASSERT_EQ((intptr_t)r, 1000);
    ASSERT_EQ(chain_sum, 1001);
}
