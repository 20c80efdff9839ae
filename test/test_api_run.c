/* test/test_api_run.c - corio_run and explicit loops: results, statuses,
 * nesting, calls from outside any loop, reaping leftovers, running again. */
#include "test.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

static void *return_42(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)42;
}

static void *return_arg(void *arg)
{
    return arg;
}

static void *fail_eio(void *arg)
{
    (void)arg;
    return corio_fail(-EIO);
}

TEST(run_returns_main_result)
{
    void *r = NULL;
    ASSERT_EQ(corio_run(corio_coro(return_42, NULL), &r), 0);
    ASSERT_EQ((intptr_t)r, 42);
    ASSERT_EQ(corio_run(corio_coro(return_arg, (void *)(intptr_t)7), &r), 0);
    ASSERT_EQ((intptr_t)r, 7);
    /* result may be NULL */
    ASSERT_EQ(corio_run(corio_coro(return_42, NULL), NULL), 0);
}

TEST(run_returns_main_failure_status)
{
    void *r = (void *)1;
    ASSERT_EQ(corio_run(corio_coro(fail_eio, NULL), &r), -EIO);
    ASSERT_NULL(r);
    r = (void *)1;
    ASSERT_EQ(test_run_virtual(fail_eio, NULL, &r), -EIO);
    ASSERT_NULL(r);
}

TEST(run_null_fn_is_einval)
{
    void *r = (void *)0x1234;
    ASSERT_EQ(corio_run(corio_coro(NULL, NULL), &r), -EINVAL);
    ASSERT_PTR_EQ(r, (void *)0x1234); /* a failed call has no other effect */
    corio_loop_opts o = test_virtual_opts();
    ASSERT_EQ(corio_run_opts(corio_coro(NULL, NULL), &r, &o), -EINVAL);
    ASSERT_PTR_EQ(r, (void *)0x1234);
    /* and the thread can still run a loop */
    ASSERT_EQ(corio_run(corio_coro(return_42, NULL), &r), 0);
    ASSERT_EQ((intptr_t)r, 42);
}

static int ran_flag;

static void *set_flag(void *arg)
{
    (void)arg;
    ran_flag = 1;
    return NULL;
}

TEST(run_opts_bad_input)
{
    void *r = (void *)0x1234;
    corio_loop_opts o = test_virtual_opts();
    o.stack_size = CORIO_STACK_MIN - 1;
    ASSERT_EQ(corio_run_opts(corio_coro(set_flag, NULL), &r, &o), -EINVAL);
    o.stack_size = CORIO_STACK_MAX + 1;
    ASSERT_EQ(corio_run_opts(corio_coro(set_flag, NULL), &r, &o), -EINVAL);
    o = test_virtual_opts();
    o.clock = 99;
    ASSERT_EQ(corio_run_opts(corio_coro(set_flag, NULL), &r, &o), -EINVAL);
    o.clock = -1;
    ASSERT_EQ(corio_run_opts(corio_coro(set_flag, NULL), &r, &o), -EINVAL);
    ASSERT_EQ(ran_flag, 0);
    ASSERT_PTR_EQ(r, (void *)0x1234);
    /* NULL opts means the defaults; every known clock works */
    ASSERT_EQ(corio_run_opts(corio_coro(set_flag, NULL), NULL, NULL), 0);
    ASSERT_EQ(ran_flag, 1);
    int clocks[] = {CORIO_CLOCK_DEFAULT, CORIO_CLOCK_REAL, CORIO_CLOCK_VIRTUAL};
    for (int i = 0; i < 3; i++) {
        o = test_virtual_opts();
        o.clock = clocks[i];
        o.stack_size = CORIO_STACK_MIN;
        ran_flag = 0;
        ASSERT_EQ(corio_run_opts(corio_coro(set_flag, NULL), NULL, &o), 0);
        ASSERT_EQ(ran_flag, 1);
    }
}

static void *nested_run(void *arg)
{
    (void)arg;
    void *r = (void *)0x55;
    ran_flag = 0;
    ASSERT_EQ(corio_run(corio_coro(set_flag, NULL), &r), -EBUSY);
    corio_loop_opts o = test_virtual_opts();
    ASSERT_EQ(corio_run_opts(corio_coro(set_flag, NULL), &r, &o), -EBUSY);
    ASSERT_EQ(ran_flag, 0);
    ASSERT_PTR_EQ(r, (void *)0x55);
    corio_loop *l = (corio_loop *)0x77;
    ASSERT_EQ(corio_loop_new(&l, NULL), -EBUSY);
    ASSERT_PTR_EQ(l, (void *)0x77);
    /* the running loop is unharmed */
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_now_ns(), 1000000000LL);
    return (void *)(intptr_t)3;
}

TEST(run_nested_is_ebusy)
{
    void *r = NULL;
    ASSERT_EQ(test_run_virtual(nested_run, NULL, &r), 0);
    ASSERT_EQ((intptr_t)r, 3);
    ASSERT_EQ(ran_flag, 0);
}

static void *nested_in_child_task(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_run(corio_coro(set_flag, NULL), NULL), -EBUSY);
    return (void *)(intptr_t)5;
}

static void *main_nested_in_child(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(nested_in_child_task, NULL));
    ASSERT_NOT_NULL(t);
    void *r = NULL;
    ASSERT_EQ(corio_await(t, &r), 0);
    ASSERT_EQ((intptr_t)r, 5);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(run_nested_from_child_task_is_ebusy)
{
    ran_flag = 0;
    ASSERT_EQ(test_run_virtual(main_nested_in_child, NULL, NULL), 0);
    ASSERT_EQ(ran_flag, 0);
}

TEST(calls_outside_loop_are_eperm)
{
    ran_flag = 0;
    ASSERT_NULL(corio_current_task());
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT(corio_now() == 0.0);
    ASSERT_EQ(corio_sleep(1), -EPERM);
    ASSERT_EQ(corio_sleep(0), -EPERM);
    ASSERT_EQ(corio_sleep_ns(1000), -EPERM);
    ASSERT_EQ(corio_yield(), -EPERM);
    void *r = (void *)0x99;
    ASSERT_EQ(corio_await_coro(corio_coro(set_flag, NULL), &r), -EPERM);
    ASSERT_EQ(corio_await(corio_coro(set_flag, NULL), &r), -EPERM);
    ASSERT_PTR_EQ(r, (void *)0x99);
    ASSERT_NULL(corio_create_task(corio_coro(set_flag, NULL)));
    corio_task *t = (corio_task *)0x88;
    ASSERT_EQ(corio_task_create(&t, corio_coro(set_flag, NULL), NULL), -EPERM);
    ASSERT_PTR_EQ(t, (void *)0x88);
    ASSERT_EQ(corio_spawn(corio_coro(set_flag, NULL)), -EPERM);
    corio_coro_t cs[2] = {corio_coro(set_flag, NULL), corio_coro(set_flag, NULL)};
    void *rs[2] = {(void *)1, (void *)2};
    ASSERT_EQ(corio_gather(cs, 2, rs), -EPERM);
    ASSERT_PTR_EQ(rs[0], (void *)1);
    ASSERT_PTR_EQ(rs[1], (void *)2);
    ASSERT_EQ(corio_gather_tasks(NULL, 0, NULL), -EPERM);
    ASSERT_EQ(ran_flag, 0);
    /* Nothing was queued anywhere: a loop run now never sees those coroutines. */
    ASSERT_EQ(test_run_virtual(return_42, NULL, &r), 0);
    ASSERT_EQ((intptr_t)r, 42);
    ASSERT_EQ(ran_flag, 0);
    /* and the same holds after a loop has come and gone */
    ASSERT_NULL(corio_current_task());
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_sleep(1), -EPERM);
    ASSERT_EQ(corio_yield(), -EPERM);
    ASSERT_NULL(corio_create_task(corio_coro(set_flag, NULL)));
}

static corio_task *stashed;
static int long_sleep_rc = 1;
static int64_t long_sleep_end = -1;

static void *sleep_long(void *arg)
{
    (void)arg;
    long_sleep_rc = corio_sleep(100);
    long_sleep_end = corio_now_ns();
    return corio_fail(long_sleep_rc < 0 ? long_sleep_rc : -EPROTO);
}

static void *main_stash_task(void *arg)
{
    (void)arg;
    stashed = corio_create_task(corio_coro(sleep_long, NULL));
    ASSERT_NOT_NULL(stashed);
    ASSERT_EQ(corio_yield(), 0); /* let it start its sleep */
    return NULL;
}

TEST(await_task_outside_task_is_eperm)
{
    corio_loop *l = NULL;
    corio_loop_opts o = test_virtual_opts();
    ASSERT_EQ(corio_loop_new(&l, &o), 0);
    ASSERT_NOT_NULL(l);
    ASSERT_EQ(corio_loop_run(l, corio_coro(main_stash_task, NULL), NULL), 0);
    ASSERT_NOT_NULL(stashed);
    /* The loop exists on this thread, but this is no task. */
    ASSERT_NULL(corio_current_task());
    void *r = (void *)0x99;
    ASSERT_EQ(corio_await_task(stashed, &r), -EPERM);
    ASSERT_PTR_EQ(r, (void *)0x99);
    ASSERT_EQ(corio_sleep(1), -EPERM);
    ASSERT_EQ(corio_yield(), -EPERM);
    ASSERT_EQ(corio_task_done(stashed), 0);
    ASSERT_EQ(long_sleep_rc, 1); /* still sleeping */
    ASSERT_EQ(corio_loop_close(l), 0);
    ASSERT_EQ(long_sleep_rc, -ECANCELED);
    ASSERT_EQ(long_sleep_end, 0);
    corio_loop_free(l);
}

static int leftover_ran;

static void *leftover_never_runs(void *arg)
{
    (void)arg;
    leftover_ran = 1;
    return NULL;
}

static void *main_leaves_tasks(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(sleep_long, NULL));
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_task_done(t), 0);
    /* one with its handle released, one still held, one never started */
    ASSERT_EQ(corio_spawn(corio_coro(sleep_long, NULL)), 0);
    return NULL;
}

TEST(run_cancels_and_reaps_leftover_tasks)
{
    ASSERT_EQ(test_run_virtual(main_leaves_tasks, NULL, NULL), 0);
    /* the sleeping leftover saw -ECANCELED; virtual time never jumped to 100 s */
    ASSERT_EQ(long_sleep_rc, -ECANCELED);
    ASSERT_EQ(long_sleep_end, 0);
}

static void *main_leaves_unstarted(void *arg)
{
    (void)arg;
    ASSERT_NOT_NULL(corio_create_task(corio_coro(leftover_never_runs, NULL)));
    return NULL; /* no suspension: the task never got to run */
}

TEST(run_leftover_unstarted_task_never_runs)
{
    ASSERT_EQ(test_run_virtual(main_leaves_unstarted, NULL, NULL), 0);
    ASSERT_EQ(leftover_ran, 0);
}

static void *sleep_one_report_time(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_sleep(1), 0);
    return (void *)(intptr_t)corio_now_ns();
}

TEST(run_again_after_run)
{
    for (int i = 0; i < 5; i++) {
        void *r = NULL;
        ASSERT_EQ(test_run_virtual(sleep_one_report_time, NULL, &r), 0);
        ASSERT_EQ((intptr_t)r, 1000000000LL); /* each loop's clock starts at 0 */
        ASSERT_NULL(corio_current_task());
        ASSERT_EQ(corio_run(corio_coro(return_42, NULL), &r), 0);
        ASSERT_EQ((intptr_t)r, 42);
    }
    /* an explicit loop after corio_run, and corio_run after it */
    corio_loop *l = NULL;
    corio_loop_opts o = test_virtual_opts();
    ASSERT_EQ(corio_loop_new(&l, &o), 0);
    void *r = NULL;
    ASSERT_EQ(corio_loop_run(l, corio_coro(sleep_one_report_time, NULL), &r), 0);
    ASSERT_EQ((intptr_t)r, 1000000000LL);
    ASSERT_EQ(corio_loop_close(l), 0);
    corio_loop_free(l);
    ASSERT_EQ(test_run_virtual(sleep_one_report_time, NULL, &r), 0);
    ASSERT_EQ((intptr_t)r, 1000000000LL);
}

static void *await_arg_task(void *arg)
{
    int rc = corio_await((corio_task *)arg, NULL);
    return corio_fail(rc < 0 ? rc : -EPROTO);
}

static void *main_deadlock(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(await_arg_task, corio_current_task()));
    ASSERT_NOT_NULL(t);
    corio_await(t, NULL); /* t awaits main, main awaits t: nothing can wake either */
    return NULL;
}

static corio_task *dl_a, *dl_b;

/* not static: the deadlock report names it through dladdr (-rdynamic) */
void *await_other(void *arg);
void *await_other(void *arg)
{
    int rc = corio_await(*(corio_task **)arg, NULL);
    return corio_fail(rc < 0 ? rc : -EPROTO);
}

static void *main_deadlock_children(void *arg)
{
    (void)arg;
    dl_a = corio_create_task(corio_coro(await_other, &dl_b));
    dl_b = corio_create_task(corio_coro(await_other, &dl_a));
    ASSERT_NOT_NULL(dl_a);
    ASSERT_NOT_NULL(dl_b);
    corio_await(dl_a, NULL); /* a awaits b, b awaits a, main awaits a */
    return NULL;
}

TEST(run_deadlock_between_tasks_is_edeadlk)
{
    ASSERT_EQ(test_run_virtual(main_deadlock_children, NULL, NULL), -EDEADLK);
    void *r = NULL;
    ASSERT_EQ(corio_run(corio_coro(return_42, NULL), &r), 0);
    ASSERT_EQ((intptr_t)r, 42);
}

TEST(run_deadlock_through_main_task_is_edeadlk)
{
    ASSERT_EQ(test_run_virtual(main_deadlock, NULL, NULL), -EDEADLK);
    /* the thread is usable again */
    void *r = NULL;
    ASSERT_EQ(corio_run(corio_coro(return_42, NULL), &r), 0);
    ASSERT_EQ((intptr_t)r, 42);
}

/* ---- Explicit loops ---------------------------------------------------------- */

static int pending_steps;

static void *pending_worker(void *arg)
{
    (void)arg;
    for (;;) {
        if (corio_sleep(1) < 0)
            return corio_fail(-ECANCELED);
        pending_steps++;
    }
}

static corio_task *pending_task;

static void *main_start_pending(void *arg)
{
    (void)arg;
    pending_task = corio_create_task(corio_coro(pending_worker, NULL));
    ASSERT_NOT_NULL(pending_task);
    ASSERT_EQ(corio_sleep(2.5), 0);
    return (void *)(intptr_t)1;
}

static void *main_inside_loop_calls(void *arg)
{
    corio_loop *l = arg;
    ASSERT_EQ(corio_loop_run(l, corio_coro(return_42, NULL), NULL), -EBUSY);
    ASSERT_EQ(corio_loop_close(l), -EBUSY);
    ASSERT_EQ(corio_loop_free(l), -EBUSY); /* nothing is freed: we keep running */
    ASSERT_EQ(corio_sleep(1), 0);
    return (void *)(intptr_t)2;
}

TEST(loop_explicit_run_keeps_pending_tasks)
{
    corio_loop *l = NULL, *l2 = (corio_loop *)0x66;
    corio_loop_opts o = test_virtual_opts();
    ASSERT_EQ(corio_loop_new(&l, &o), 0);
    ASSERT_EQ(corio_loop_new(&l2, &o), -EBUSY); /* one loop per thread */
    ASSERT_PTR_EQ(l2, (void *)0x66);
    void *r = NULL;
    ASSERT_EQ(corio_loop_run(l, corio_coro(main_start_pending, NULL), &r), 0);
    ASSERT_EQ((intptr_t)r, 1);
    ASSERT_EQ(pending_steps, 2);
    ASSERT_EQ(corio_task_done(pending_task), 0);
    /* the pending task goes on during the next run; the clock goes on too */
    ASSERT_EQ(corio_loop_run(l, corio_coro(main_inside_loop_calls, l), &r), 0);
    ASSERT_EQ((intptr_t)r, 2);
    ASSERT_EQ(pending_steps, 3);
    ASSERT_EQ(corio_loop_close(l), 0);
    ASSERT_EQ(corio_loop_run(l, corio_coro(return_42, NULL), &r), -EINVAL);
    ASSERT_EQ((intptr_t)r, 2);
    corio_loop_free(l);
    ASSERT_EQ(corio_run(corio_coro(return_42, NULL), &r), 0);
    ASSERT_EQ((intptr_t)r, 42);
}

TEST(loop_free_without_close)
{
    corio_loop *l = NULL;
    corio_loop_opts o = test_virtual_opts();
    ASSERT_EQ(corio_loop_new(&l, &o), 0);
    ASSERT_EQ(corio_loop_run(l, corio_coro(return_42, NULL), NULL), 0);
    corio_loop_free(l);
}

TEST(loop_new_bad_opts)
{
    corio_loop *l = (corio_loop *)0x66;
    corio_loop_opts o = test_virtual_opts();
    o.clock = 42;
    ASSERT_EQ(corio_loop_new(&l, &o), -EINVAL);
    o = test_virtual_opts();
    o.stack_size = 1;
    ASSERT_EQ(corio_loop_new(&l, &o), -EINVAL);
    ASSERT_PTR_EQ(l, (void *)0x66);
    ASSERT_EQ(corio_loop_new(&l, NULL), 0);
    ASSERT_PTR_NE(l, (void *)0x66);
    ASSERT_EQ(corio_loop_close(l), 0);
    corio_loop_free(l);
}

static void *default_clock_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_sleep(1000), 0);
    return (void *)(intptr_t)corio_now_ns();
}

TEST(run_env_corio_clock_virtual)
{
    /* CORIO_CLOCK_DEFAULT is virtual when CORIO_CLOCK=virtual is set: a
     * 1000 s sleep ends at once, exactly at 1000 s. */
    setenv("CORIO_CLOCK", "virtual", 1);
    void *r = NULL;
    ASSERT_EQ(corio_run(corio_coro(default_clock_main, NULL), &r), 0);
    ASSERT_EQ((intptr_t)r, 1000000000000LL);
}

static int deadlock_child(void *arg)
{
    (void)arg;
    return test_run_virtual(main_deadlock_children, NULL, NULL) == -EDEADLK ? 0 : 3;
}

TEST(run_deadlock_reports_stuck_tasks)
{
    char err[16384];
    int st = 0;
    ASSERT_EQ(test_fork_stderr(deadlock_child, NULL, err, sizeof err, &st), 0);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    /* "each is printed to stderr": the report, and each stuck task's entry */
    ASSERT(strstr(err, "deadlock") != NULL);
    ASSERT(strstr(err, "await_other") != NULL);
}

static void *close_from_other_thread(void *arg)
{
    corio_loop *l = arg;
    intptr_t rc = corio_loop_close(l);
    if (rc == 0)
        return (void *)rc;
    return (void *)(intptr_t)corio_loop_free(l); /* refused too: the loop stays whole */
}

TEST(loop_close_from_another_thread_is_exdev)
{
    corio_loop *l = NULL;
    corio_loop_opts o = test_virtual_opts();
    ASSERT_EQ(corio_loop_new(&l, &o), 0);
    pthread_t th;
    void *rc;
    ASSERT_EQ(pthread_create(&th, NULL, close_from_other_thread, l), 0);
    ASSERT_EQ(pthread_join(th, &rc), 0);
    ASSERT_EQ((intptr_t)rc, -EXDEV);
    void *r = NULL;
    ASSERT_EQ(corio_loop_run(l, corio_coro(return_42, NULL), &r), 0); /* still usable here */
    ASSERT_EQ((intptr_t)r, 42);
    ASSERT_EQ(corio_loop_free(l), 0);
}
