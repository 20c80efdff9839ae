/* test_arch_resume.c - the resuming stubs (src/arch/resume_x86_64.S): calls
 * that may suspend, made from different places in different tasks, so that
 * each resumption returns home by jump, still return the right value to the
 * right place; and a stack trace taken inside such a call still reaches the
 * caller through the stub (its unwind info). On architectures without stubs
 * the same calls are plain functions and the tests hold all the same. */
#define _GNU_SOURCE /* dladdr */
#include "internal.h"
#include "test.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <stdint.h>

enum { ROUNDS = 2000 };

static corio_queue q_ab, q_ba;
static corio_event ev_a, ev_b;

/* Side A and side B call every stubbed call from their own call sites: each
 * switch between them resumes a task whose caller differs from the last one
 * that called in. Every value and status is checked on arrival. */
static void *side_a(void *arg)
{
    (void)arg;
    for (uintptr_t i = 0; i < ROUNDS; i++) {
        ASSERT_EQ(corio_queue_put(&q_ab, (void *)(i * 3 + 1)), 0);
        void *v = NULL;
        ASSERT_EQ(corio_queue_get(&q_ba, &v), 0);
        ASSERT_EQ((uintptr_t)v, i * 3 + 2);
        ASSERT_EQ(corio_yield(), 0);
        corio_select_op op = {.kind = CORIO_SELECT_GET, .queue = &q_ba, .item_out = &v};
        ASSERT_EQ(corio_select(&op, 1, -1), 0);
        ASSERT_EQ((uintptr_t)v, i * 3 + 3);
        ASSERT_EQ(corio_event_set(&ev_b), 0);
        ASSERT_EQ(corio_event_wait(&ev_a), 0);
        ASSERT_EQ(corio_event_clear(&ev_a), 0);
    }
    return (void *)(uintptr_t)0xA;
}

static void *side_b(void *arg)
{
    (void)arg;
    for (uintptr_t i = 0; i < ROUNDS; i++) {
        void *v = NULL;
        int rc = corio_queue_get(&q_ab, &v);
        ASSERT_EQ(rc, 0);
        ASSERT_EQ((uintptr_t)v, i * 3 + 1);
        rc = corio_queue_put(&q_ba, (void *)(i * 3 + 2));
        ASSERT_EQ(rc, 0);
        rc = corio_yield();
        ASSERT_EQ(rc, 0);
        corio_select_op op = {.kind = CORIO_SELECT_PUT, .queue = &q_ba, .item = (void *)(i * 3 + 3)};
        rc = corio_select(&op, 1, -1);
        ASSERT_EQ(rc, 0);
        rc = corio_event_wait(&ev_b);
        ASSERT_EQ(rc, 0);
        corio_event_clear(&ev_b);
        corio_event_set(&ev_a);
    }
    return (void *)(uintptr_t)0xB;
}

static void *main_two_sides(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_queue_init(&q_ab, CORIO_QUEUE_FIFO, 1, NULL), 0);
    ASSERT_EQ(corio_queue_init(&q_ba, CORIO_QUEUE_FIFO, 1, NULL), 0);
    ASSERT_EQ(corio_event_init(&ev_a), 0);
    ASSERT_EQ(corio_event_init(&ev_b), 0);
    corio_task *a, *b;
    ASSERT_EQ(corio_task_create(&a, corio_coro(side_a, NULL), NULL), 0);
    ASSERT_EQ(corio_task_create(&b, corio_coro(side_b, NULL), NULL), 0);
    void *ra = NULL, *rb = NULL;
    ASSERT_EQ(corio_await(a, &ra), 0);
    ASSERT_EQ(corio_await(b, &rb), 0);
    ASSERT_EQ((uintptr_t)ra, 0xA);
    ASSERT_EQ((uintptr_t)rb, 0xB);
    corio_task_release(a);
    corio_task_release(b);
    ASSERT_EQ(corio_queue_destroy(&q_ab), 0);
    ASSERT_EQ(corio_queue_destroy(&q_ba), 0);
    return NULL;
}

TEST(resume_stubs_return_values_to_each_caller)
{
    ASSERT_EQ(corio_run(corio_coro(main_two_sides, NULL), NULL), 0);
}

/* A helper whose every return follows a resumption from another call site:
 * the caller's own return (with the return stack one entry off) must still
 * land right, many levels up. */
static __attribute__((noinline)) int get_in_helper(corio_queue *q, int depth)
{
    if (depth > 0)
        return get_in_helper(q, depth - 1) + 1;
    void *v = NULL;
    int rc = corio_queue_get(q, &v);
    return rc < 0 ? rc : (int)(uintptr_t)v;
}

static void *deep_getter(void *arg)
{
    (void)arg;
    long sum = 0;
    for (int i = 0; i < ROUNDS; i++) {
        int r = get_in_helper(&q_ab, i % 7);
        ASSERT_EQ(r, 5 + i % 7);
        sum += r;
    }
    return (void *)(intptr_t)sum;
}

static void *main_deep(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_queue_init(&q_ab, CORIO_QUEUE_FIFO, 1, NULL), 0);
    corio_task *g;
    ASSERT_EQ(corio_task_create(&g, corio_coro(deep_getter, NULL), NULL), 0);
    long expect = 0;
    for (int i = 0; i < ROUNDS; i++) {
        ASSERT_EQ(corio_queue_put(&q_ab, (void *)(uintptr_t)5), 0);
        ASSERT_EQ(corio_yield(), 0);
        expect += 5 + i % 7;
    }
    void *r = NULL;
    ASSERT_EQ(corio_await(g, &r), 0);
    ASSERT_EQ((intptr_t)r, expect);
    corio_task_release(g);
    ASSERT_EQ(corio_queue_destroy(&q_ab), 0);
    return NULL;
}

TEST(resume_stubs_keep_deep_returns_right)
{
    ASSERT_EQ(corio_run(corio_coro(main_deep, NULL), NULL), 0);
}

/* Not static: the trace below finds it by name (-rdynamic). */
int test_resume_putter(corio_queue *q);

static int g_trace_found;

/* A priority queue calls its comparison inside corio_queue_put, with the
 * stub's frame on the stack: a trace from there must pass through it. */
static int cmp_and_trace(const void *a, const void *b)
{
    void *pcs[64];
    int n = backtrace(pcs, 64);
    for (int i = 0; i < n; i++) {
        Dl_info info;
        if (dladdr(pcs[i], &info) && info.dli_sname &&
            info.dli_saddr == (void *)test_resume_putter)
            g_trace_found = 1;
    }
    return (uintptr_t)a < (uintptr_t)b ? -1 : (uintptr_t)a > (uintptr_t)b;
}

__attribute__((noinline)) int test_resume_putter(corio_queue *q)
{
    int rc = corio_queue_put(q, (void *)(uintptr_t)2);
    __asm__ volatile("" ::: "memory"); /* (no tail call: keep this frame) */
    return rc;
}

static void *main_trace(void *arg)
{
    (void)arg;
    corio_queue q;
    ASSERT_EQ(corio_queue_init(&q, CORIO_QUEUE_PRIORITY, 0, cmp_and_trace), 0);
    ASSERT_EQ(corio_queue_put(&q, (void *)(uintptr_t)1), 0);
    g_trace_found = 0;
    ASSERT_EQ(test_resume_putter(&q), 0);
    ASSERT_EQ(g_trace_found, 1);
    void *v;
    ASSERT_EQ(corio_queue_get(&q, &v), 0);
    ASSERT_EQ(corio_queue_get(&q, &v), 0);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(resume_stubs_keep_stack_traces_whole)
{
    ASSERT_EQ(corio_run(corio_coro(main_trace, NULL), NULL), 0);
}
