/* test/test_api_stack.c - task stack sizes: limits, custom sizes, deep
 * recursion, and the overflow report (in a child process). */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* Never equal to a depth reached, but the compiler cannot know that: keeps
 * the recursion a real recursion with a base case. */
static volatile int recurse_stop = -1;

/* Each frame holds a 256-byte buffer that is touched, and the result is
 * used after the call, so the call is no tail call and cannot be a loop. */
__attribute__((noinline)) static int recurse(int depth, int limit)
{
    volatile char buf[256];
    buf[0] = (char)depth;
    buf[255] = (char)(depth >> 8);
    if (depth == limit || depth == recurse_stop)
        return buf[0];
    int r = recurse(depth + 1, limit);
    return r + buf[0] + buf[255];
}

static int expected_sum(int limit)
{
    int s = (char)limit; /* the deepest frame returns buf[0] only */
    for (int d = 0; d < limit; d++)
        s += (char)d + (char)(d >> 8);
    return s;
}

static void *recurse_task(void *arg)
{
    int limit = (int)(intptr_t)arg;
    ASSERT_EQ(corio_yield(), 0); /* recursion on a resumed stack too */
    return (void *)(intptr_t)recurse(0, limit);
}

static void *main_stack_sizes(void *arg)
{
    (void)arg;
    corio_task *t = (corio_task *)0x88;
    corio_task_opts o = {.stack_size = CORIO_STACK_MIN - 1};
    ASSERT_EQ(corio_task_create(&t, corio_coro(recurse_task, NULL), &o), -EINVAL);
    o.stack_size = 1;
    ASSERT_EQ(corio_task_create(&t, corio_coro(recurse_task, NULL), &o), -EINVAL);
    o.stack_size = CORIO_STACK_MAX + 1;
    ASSERT_EQ(corio_task_create(&t, corio_coro(recurse_task, NULL), &o), -EINVAL);
    o.stack_size = SIZE_MAX;
    ASSERT_EQ(corio_task_create(&t, corio_coro(recurse_task, NULL), &o), -EINVAL);
    ASSERT_PTR_EQ(t, (void *)0x88);

    size_t sizes[] = {0, CORIO_STACK_MIN, 64 * 1024, 100003, CORIO_STACK_DEFAULT, 1024 * 1024,
                      8 * 1024 * 1024};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        o.stack_size = sizes[i];
        int depth = 8; /* ~2.5 KiB: fits in any allowed stack */
        ASSERT_EQ(corio_task_create(&t, corio_coro(recurse_task, (void *)(intptr_t)depth), &o),
                  0);
        void *r = NULL;
        ASSERT_EQ(corio_await(t, &r), 0);
        ASSERT_EQ((intptr_t)r, expected_sum(depth));
        ASSERT_EQ(corio_task_release(t), 0);
    }
    return NULL;
}

TEST(stack_size_limits_and_custom_sizes)
{
    ASSERT_EQ(test_run_virtual(main_stack_sizes, NULL, NULL), 0);
}

static void *main_stack_max(void *arg)
{
    (void)arg;
    corio_task *t = NULL;
    corio_task_opts o = {.stack_size = CORIO_STACK_MAX};
    ASSERT_EQ(corio_task_create(&t, corio_coro(recurse_task, (void *)(intptr_t)4000), &o), 0);
    void *r = NULL;
    ASSERT_EQ(corio_await(t, &r), 0);
    ASSERT_EQ((intptr_t)r, expected_sum(4000));
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(stack_size_max_is_allowed)
{
    ASSERT_EQ(test_run_virtual(main_stack_max, NULL, NULL), 0);
}

static void *main_deep_recursion(void *arg)
{
    (void)arg;
    /* 1000 frames of ~300 bytes (more under ASan) in a 1 MiB stack */
    corio_task *t[4];
    corio_task_opts o = {.stack_size = 1024 * 1024};
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(corio_task_create(&t[i], corio_coro(recurse_task, (void *)(intptr_t)1000), &o),
                  0);
    for (int i = 0; i < 4; i++) {
        void *r = NULL;
        ASSERT_EQ(corio_await(t[i], &r), 0);
        ASSERT_EQ((intptr_t)r, expected_sum(1000));
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    return NULL;
}

TEST(stack_deep_recursion_in_1mib)
{
    ASSERT_EQ(test_run_virtual(main_deep_recursion, NULL, NULL), 0);
}

static void *main_loop_default_stack(void *arg)
{
    (void)arg;
    /* ~900 KiB of frames: more than CORIO_STACK_DEFAULT, so this only works
     * if tasks got the loop's 2 MiB default. */
    corio_task *t = corio_create_task(corio_coro(recurse_task, (void *)(intptr_t)3000));
    ASSERT_NOT_NULL(t);
    void *r = NULL;
    ASSERT_EQ(corio_await(t, &r), 0);
    ASSERT_EQ((intptr_t)r, expected_sum(3000));
    ASSERT_EQ(corio_task_release(t), 0);
    /* and the main task too */
    return (void *)(intptr_t)recurse(0, 3000);
}

TEST(stack_loop_default_size_applies)
{
    corio_loop_opts o = test_virtual_opts();
    o.stack_size = 2 * 1024 * 1024;
    void *r = NULL;
    ASSERT_EQ(corio_run_opts(corio_coro(main_loop_default_stack, NULL), &r, &o), 0);
    ASSERT_EQ((intptr_t)r, expected_sum(3000));
}

/* ---- Overflow ---------------------------------------------------------------- */

/* Not static: the overflow report names the task's entry function, found
 * through the dynamic symbol table (the test binary is linked -rdynamic). */
void *test_overflow_entry(void *arg);

void *test_overflow_entry(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)recurse(0, INT32_MAX);
}

static void *main_overflow(void *arg)
{
    (void)arg;
    corio_task *t = NULL;
    corio_task_opts o = {.stack_size = CORIO_STACK_MIN};
    ASSERT_EQ(corio_task_create(&t, corio_coro(test_overflow_entry, NULL), &o), 0);
    corio_await(t, NULL);
    return NULL;
}

static int overflow_child(void *arg)
{
    (void)arg;
    test_run_virtual(main_overflow, NULL, NULL);
    fprintf(stderr, "survived the overflow\n");
    return 0;
}

TEST(stack_overflow_is_reported)
{
    char err[16384];
    int st = 0;
    ASSERT_EQ(test_fork_stderr(overflow_child, NULL, err, sizeof err, &st), 0);
    ASSERT(WIFSIGNALED(st));
    ASSERT_EQ(WTERMSIG(st), SIGABRT);
    ASSERT(strstr(err, "stack overflow") != NULL);
    ASSERT(strstr(err, "test_overflow_entry") != NULL);
}
