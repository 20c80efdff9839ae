/* test/test_api_gather.c - corio_gather_tasks and corio_gather. */
#include "test.h"

#include <errno.h>
#include <stdint.h>

struct job {
    int64_t sleep_ns;
    int fail; /* negative errno to end with, or 0 */
    intptr_t result;
};

static void *run_job(void *arg)
{
    const struct job *j = arg;
    int rc = corio_sleep_ns(j->sleep_ns);
    if (rc < 0)
        return corio_fail(rc);
    test_trace("end%ld", (long)j->result);
    if (j->fail)
        return corio_fail(j->fail);
    return (void *)j->result;
}

static void *main_gather_results(void *arg)
{
    (void)arg;
    static const struct job jobs[3] = {{3000000000, 0, 10}, {1000000000, 0, 11},
                                       {2000000000, 0, 12}};
    corio_task *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = corio_create_task(corio_coro(run_job, (void *)&jobs[i]));
    void *r[3] = {0};
    ASSERT_EQ(corio_gather_tasks(t, 3, r), 0);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ((intptr_t)r[i], 10 + i); /* in task order, not end order */
        ASSERT_EQ(corio_task_done(t[i]), 1);
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    ASSERT_EQ(corio_now_ns(), 3000000000LL);
    return NULL;
}

TEST(gather_tasks_results_in_order)
{
    ASSERT_EQ(test_run_virtual(main_gather_results, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "end11 end12 end10");
}

static void *main_gather_first_failure(void *arg)
{
    (void)arg;
    static const struct job jobs[4] = {{2000000000, -EIO, 0},
                                       {1000000000, -ENOENT, 1},
                                       {3000000000, 0, 2},
                                       {500000000, 0, 3}};
    corio_task *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = corio_create_task(corio_coro(run_job, (void *)&jobs[i]));
    void *r[4] = {(void *)1, (void *)1, 0, 0};
    /* first to fail in the order they ended: ENOENT at 1 s, before EIO at 2 s;
     * gather still waits for all (3 s) */
    ASSERT_EQ(corio_gather_tasks(t, 4, r), -ENOENT);
    ASSERT_EQ(corio_now_ns(), 3000000000LL);
    ASSERT_NULL(r[0]);
    ASSERT_NULL(r[1]);
    ASSERT_EQ((intptr_t)r[2], 2);
    ASSERT_EQ((intptr_t)r[3], 3);
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(corio_task_done(t[i]), 1);
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    return NULL;
}

TEST(gather_tasks_first_failure_status)
{
    ASSERT_EQ(test_run_virtual(main_gather_first_failure, NULL, NULL), 0);
}

static void *main_gather_finished_and_empty(void *arg)
{
    (void)arg;
    static const struct job jobs[2] = {{0, 0, 5}, {0, -EIO, 6}};
    corio_task *t[2];
    for (int i = 0; i < 2; i++)
        t[i] = corio_create_task(corio_coro(run_job, (void *)&jobs[i]));
    ASSERT_EQ(corio_await(t[0], NULL), 0);
    ASSERT_EQ(corio_await(t[1], NULL), -EIO);
    void *r[2] = {0};
    ASSERT_EQ(corio_gather_tasks(t, 2, r), -EIO); /* all done already */
    ASSERT_EQ((intptr_t)r[0], 5);
    ASSERT_EQ(corio_gather_tasks(t, 2, NULL), -EIO); /* results may be NULL */
    ASSERT_EQ(corio_gather_tasks(t, 1, NULL), 0);
    ASSERT_EQ(corio_gather_tasks(t, 0, NULL), 0);
    ASSERT_EQ(corio_gather_tasks(NULL, 0, NULL), 0);
    ASSERT_EQ(corio_gather(NULL, 0, NULL), 0);
    ASSERT_EQ(corio_gather_tasks(NULL, 2, r), -EINVAL);
    ASSERT_EQ(corio_gather(NULL, 2, r), -EINVAL);
    ASSERT_EQ(corio_now_ns(), 0);
    corio_task_release(t[0]);
    corio_task_release(t[1]);
    return NULL;
}

TEST(gather_finished_empty_and_null)
{
    ASSERT_EQ(test_run_virtual(main_gather_finished_and_empty, NULL, NULL), 0);
}

static void *fetch_data(void *arg)
{
    intptr_t id = (intptr_t)arg;
    test_trace("fetch%ld", (long)id);
    int rc = corio_sleep(3);
    if (rc < 0)
        return corio_fail(rc);
    test_trace("done%ld", (long)id);
    return (void *)(id * 100);
}

static void *main_gather_coros(void *arg)
{
    (void)arg;
    corio_coro_t c[3];
    for (intptr_t i = 0; i < 3; i++)
        c[i] = corio_coro(fetch_data, (void *)(i + 1));
    void *r[3] = {0};
    ASSERT_EQ(corio_gather(c, 3, r), 0);
    ASSERT_EQ(corio_now_ns(), 3000000000LL); /* concurrently: 3 s, not 9 */
    for (int i = 0; i < 3; i++)
        ASSERT_EQ((intptr_t)r[i], (i + 1) * 100);
    ASSERT_EQ(corio_gather(c, 3, NULL), 0);
    ASSERT_EQ(corio_now_ns(), 6000000000LL);
    return NULL;
}

TEST(gather_coros_run_concurrently)
{
    ASSERT_EQ(test_run_virtual(main_gather_coros, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(),
                  "fetch1 fetch2 fetch3 done1 done2 done3 fetch1 fetch2 fetch3 done1 done2 done3");
}

static void *main_gather_coros_failure(void *arg)
{
    (void)arg;
    static const struct job jobs[3] = {{2000000000, -EIO, 0},
                                       {1000000000, -ENOENT, 1},
                                       {1500000000, 0, 2}};
    corio_coro_t c[3];
    for (int i = 0; i < 3; i++)
        c[i] = corio_coro(run_job, (void *)&jobs[i]);
    void *r[3] = {0};
    ASSERT_EQ(corio_gather(c, 3, r), -ENOENT);
    ASSERT_EQ((intptr_t)r[2], 2);
    ASSERT_EQ(corio_now_ns(), 2000000000LL);
    return NULL;
}

TEST(gather_coros_first_failure_status)
{
    ASSERT_EQ(test_run_virtual(main_gather_coros_failure, NULL, NULL), 0);
}

static int bad_gather_ran;

static void *count_run(void *arg)
{
    (void)arg;
    bad_gather_ran++;
    return NULL;
}

static void *main_gather_coros_null_fn(void *arg)
{
    (void)arg;
    corio_coro_t c[3] = {corio_coro(count_run, NULL), corio_coro(NULL, NULL),
                         corio_coro(count_run, NULL)};
    void *r[3] = {(void *)1, (void *)2, (void *)3};
    ASSERT_EQ(corio_gather(c, 3, r), -EINVAL);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(bad_gather_ran, 0); /* a failed call has no other effect */
    ASSERT_PTR_EQ(r[0], (void *)1);
    return NULL;
}

TEST(gather_coros_with_null_fn_is_einval)
{
    ASSERT_EQ(test_run_virtual(main_gather_coros_null_fn, NULL, NULL), 0);
}

static corio_task *children[3];
static int child_rc[3] = {1, 1, 1};
static int gather_rc = 1;
static int children_done_at_return = -1;

static void *child_sleep5(void *arg)
{
    int i = (int)(intptr_t)arg;
    child_rc[i] = corio_sleep(5);
    return child_rc[i] < 0 ? corio_fail(child_rc[i]) : NULL;
}

static void *gatherer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        children[i] = corio_create_task(corio_coro(child_sleep5, (void *)(intptr_t)i));
    gather_rc = corio_gather_tasks(children, 3, NULL);
    children_done_at_return = 0;
    for (int i = 0; i < 3; i++)
        children_done_at_return += corio_task_done(children[i]);
    return corio_fail(gather_rc < 0 ? gather_rc : -EPROTO);
}

static void *main_cancel_gather(void *arg)
{
    (void)arg;
    corio_task *g = corio_create_task(corio_coro(gatherer, NULL));
    ASSERT_EQ(corio_yield(), 0); /* g waits in gather, children are asleep */
    ASSERT_EQ(corio_cancel(g), 1);
    ASSERT_EQ(corio_await(g, NULL), -ECANCELED);
    ASSERT_EQ(gather_rc, -ECANCELED);
    ASSERT_EQ(children_done_at_return, 3); /* waited for them to end */
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(child_rc[i], -ECANCELED);
        ASSERT_EQ(corio_await(children[i], NULL), -ECANCELED);
        ASSERT_EQ(corio_task_release(children[i]), 0);
    }
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_task_release(g), 0);
    return NULL;
}

TEST(gather_tasks_cancelled_cancels_children)
{
    ASSERT_EQ(test_run_virtual(main_cancel_gather, NULL, NULL), 0);
}

static int coro_child_rc[3] = {1, 1, 1};

static void *coro_child(void *arg)
{
    int i = (int)(intptr_t)arg;
    coro_child_rc[i] = corio_sleep(5);
    return NULL;
}

static void *coro_gatherer(void *arg)
{
    (void)arg;
    corio_coro_t c[3];
    for (intptr_t i = 0; i < 3; i++)
        c[i] = corio_coro(coro_child, (void *)i);
    gather_rc = corio_gather(c, 3, NULL);
    return corio_fail(gather_rc < 0 ? gather_rc : -EPROTO);
}

static void *main_cancel_gather_coros(void *arg)
{
    (void)arg;
    corio_task *g = corio_create_task(corio_coro(coro_gatherer, NULL));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(g), 1);
    ASSERT_EQ(corio_await(g, NULL), -ECANCELED);
    ASSERT_EQ(gather_rc, -ECANCELED);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(coro_child_rc[i], -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_task_release(g), 0);
    return NULL;
}

TEST(gather_coros_cancelled_cancels_children)
{
    ASSERT_EQ(test_run_virtual(main_cancel_gather_coros, NULL, NULL), 0);
}

static void *main_gather_many(void *arg)
{
    (void)arg;
    enum { N = 1000 };
    static corio_coro_t c[N];
    static void *r[N];
    static struct job jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct job){(int64_t)(i % 7) * 1000, 0, i};
        c[i] = corio_coro(run_job, &jobs[i]);
    }
    ASSERT_EQ(corio_gather(c, N, r), 0);
    for (int i = 0; i < N; i++)
        ASSERT_EQ((intptr_t)r[i], i);
    ASSERT_EQ(corio_now_ns(), 6000);
    return NULL;
}

TEST(gather_many_coros)
{
    ASSERT_EQ(test_run_virtual(main_gather_many, NULL, NULL), 0);
}
