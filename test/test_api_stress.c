/* test/test_api_stress.c - scale: a million concurrent sleepers, stack
 * reuse over many short tasks, many switches. Sizes are divided by
 * test_scale() under sanitizers, valgrind and qemu. */
#include "test.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *sleep1_return_arg(void *arg)
{
    int rc = corio_sleep(1);
    if (rc < 0)
        return corio_fail(rc);
    return arg;
}

static void *main_million(void *arg)
{
    intptr_t n = (intptr_t)arg;
    corio_task **t = malloc((size_t)n * sizeof *t);
    ASSERT_NOT_NULL(t);
    for (intptr_t i = 0; i < n; i++) {
        t[i] = corio_create_task(corio_coro(sleep1_return_arg, (void *)i));
        if (!t[i])
            fprintf(stderr, "create_task failed at %ld of %ld\n", (long)i, (long)n);
        ASSERT_NOT_NULL(t[i]);
    }
    int64_t sum = 0;
    for (intptr_t i = 0; i < n; i++) {
        void *r = NULL;
        ASSERT_EQ(corio_await(t[i], &r), 0);
        sum += (intptr_t)r;
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    free(t);
    ASSERT_EQ(sum, (int64_t)n * (n - 1) / 2);
    ASSERT_EQ(corio_now_ns(), 1000000000LL); /* all slept concurrently */
    return (void *)sum;
}

TEST_TIMEOUT(stress_million_concurrent_sleepers, 180)
{
    intptr_t n = 1000000 / test_scale();
    void *r = NULL;
    ASSERT_EQ(test_run_virtual(main_million, (void *)n, &r), 0);
    ASSERT_EQ((intptr_t)r, (int64_t)n * (n - 1) / 2);
}

static volatile int depth_stop = -1;

/* Touches about 300 bytes of stack per level. */
__attribute__((noinline)) static int use_stack(int depth, int limit)
{
    volatile char buf[256];
    buf[0] = (char)depth;
    buf[255] = 1;
    if (depth == limit || depth == depth_stop)
        return 1;
    return use_stack(depth + 1, limit) + buf[255];
}

static void *short_task(void *arg)
{
    /* ~30 KiB of stack written: without reuse, 100k of them would need
     * about 3 GiB */
    return (void *)(intptr_t)use_stack(0, (int)(intptr_t)arg);
}

static void *main_stack_reuse(void *arg)
{
    intptr_t n = (intptr_t)arg;
    size_t base = 0;
    for (intptr_t i = 0; i < n; i++) {
        if (i == 1000)
            base = test_rss_bytes();
        corio_task *t = corio_create_task(corio_coro(short_task, (void *)(intptr_t)100));
        ASSERT_NOT_NULL(t);
        void *r = NULL;
        ASSERT_EQ(corio_await(t, &r), 0);
        ASSERT_EQ((intptr_t)r, 101);
        ASSERT_EQ(corio_task_release(t), 0);
        if (i % 10000 == 9999) {
            size_t rss = test_rss_bytes();
            if (rss > base + ((size_t)64 << 20))
                fprintf(stderr, "after %ld tasks: rss %zu KiB, was %zu KiB after 1000\n",
                        (long)i + 1, rss >> 10, base >> 10);
            ASSERT_LE(rss, base + ((size_t)64 << 20));
        }
    }
    /* the same through spawn (handles released at once) */
    for (intptr_t i = 0; i < n; i++) {
        ASSERT_EQ(corio_spawn(corio_coro(short_task, (void *)(intptr_t)100)), 0);
        ASSERT_EQ(corio_yield(), 0);
    }
    ASSERT_LE(test_rss_bytes(), base + ((size_t)64 << 20));
    return NULL;
}

TEST_TIMEOUT(stress_stack_reuse_bounded_rss, 120)
{
    intptr_t n = 100000 / test_scale();
    ASSERT_EQ(test_run_virtual(main_stack_reuse, (void *)n, NULL), 0);
}

static long switches;

static void *yield_n(void *arg)
{
    intptr_t n = (intptr_t)arg;
    for (intptr_t i = 0; i < n; i++) {
        ASSERT_EQ(corio_yield(), 0);
        switches++;
    }
    return NULL;
}

static void *main_many_switches(void *arg)
{
    (void)arg;
    intptr_t tasks = 1000, yields = 2000 / test_scale();
    corio_task **t = malloc((size_t)tasks * sizeof *t);
    ASSERT_NOT_NULL(t);
    for (intptr_t i = 0; i < tasks; i++)
        t[i] = corio_create_task(corio_coro(yield_n, (void *)yields));
    for (intptr_t i = 0; i < tasks; i++) {
        ASSERT_EQ(corio_await(t[i], NULL), 0);
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    free(t);
    ASSERT_EQ(switches, tasks * yields);
    ASSERT_EQ(corio_now_ns(), 0);
    return NULL;
}

TEST_TIMEOUT(stress_many_yields, 120)
{
    ASSERT_EQ(test_run_virtual(main_many_switches, NULL, NULL), 0);
}

static long tree_nodes;

static void *tree(void *arg)
{
    intptr_t depth = (intptr_t)arg;
    tree_nodes++;
    if (depth == 0)
        return (void *)(intptr_t)(corio_sleep_ns(1) == 0);
    corio_coro_t c[3];
    for (int i = 0; i < 3; i++)
        c[i] = corio_coro(tree, (void *)(depth - 1));
    void *r[3] = {0};
    ASSERT_EQ(corio_gather(c, 3, r), 0);
    return (void *)((intptr_t)r[0] + (intptr_t)r[1] + (intptr_t)r[2]);
}

TEST_TIMEOUT(stress_task_tree, 120)
{
    /* 3^9 = 19683 leaves, 29524 tasks in all (3^7 under test_scale 10) */
    intptr_t depth = test_scale() > 1 ? 7 : 9;
    void *r = NULL;
    ASSERT_EQ(test_run_virtual(tree, (void *)depth, &r), 0);
    intptr_t leaves = 1;
    for (intptr_t i = 0; i < depth; i++)
        leaves *= 3;
    ASSERT_EQ((intptr_t)r, leaves);
    ASSERT_EQ(tree_nodes, (leaves * 3 - 1) / 2);
}

static void *main_cancel_storm(void *arg)
{
    (void)arg;
    intptr_t n = 100000 / test_scale();
    corio_task **t = malloc((size_t)n * sizeof *t);
    ASSERT_NOT_NULL(t);
    for (intptr_t i = 0; i < n; i++)
        t[i] = corio_create_task(corio_coro(sleep1_return_arg, (void *)i));
    ASSERT_EQ(corio_yield(), 0);
    for (intptr_t i = 0; i < n; i += 2)
        ASSERT_EQ(corio_cancel(t[i]), 1);
    for (intptr_t i = 0; i < n; i++) {
        void *r = NULL;
        int rc = corio_await(t[i], &r);
        if (i % 2 == 0) {
            ASSERT_EQ(rc, -ECANCELED);
        } else {
            ASSERT_EQ(rc, 0);
            ASSERT_EQ((intptr_t)r, i);
        }
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    free(t);
    ASSERT_EQ(corio_now_ns(), 1000000000LL);
    return NULL;
}

TEST_TIMEOUT(stress_cancel_half_of_many_sleepers, 120)
{
    ASSERT_EQ(test_run_virtual(main_cancel_storm, NULL, NULL), 0);
}
