/* test/test_api_compact.c - compact tasks (corio_task_opts.compact): they
 * share one stack, and their frames are copied out and back in as other
 * compact tasks need it. Their locals must survive that, in every order of
 * comings and goings; their waits must behave as a private task's; calls
 * whose records cannot leave the stack yet must refuse with -ENOTSUP and no
 * effect; and a waiting compact task must cost far less than a stack page. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static const corio_task_opts compact = {.compact = 1};

static corio_task *spawn_compact(corio_fn *fn, void *arg)
{
    corio_task *t = NULL;
    ASSERT_EQ(corio_task_create(&t, corio_coro(fn, arg), &compact), 0);
    return t;
}

/* ---- frames survive eviction -------------------------------------------------- */

static volatile int depth_stop = -1; /* never reached: keeps the recursion real */

/* Recurse `depth` frames, each with a filled buffer, then sleep in the
 * innermost one; on the way out every frame checks its buffer. */
__attribute__((noinline)) static long deep_sleep(int id, int depth, int round)
{
    volatile unsigned char buf[96];
    for (int i = 0; i < 96; i++)
        buf[i] = (unsigned char)(id * 31 + depth * 7 + i);
    long r;
    if (depth == 0 || depth == depth_stop) {
        ASSERT_EQ(corio_sleep_ns((int64_t)(1 + (id * 7 + round) % 13) * 1000000), 0);
        r = id;
    } else {
        r = deep_sleep(id, depth - 1, round) + depth;
    }
    for (int i = 0; i < 96; i++)
        ASSERT_EQ(buf[i], (unsigned char)(id * 31 + depth * 7 + i));
    return r;
}

static void *frames_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    int depth = id % 23; /* images from a few hundred bytes to a few KiB */
    long sum = 0;
    for (int round = 0; round < 5; round++) {
        sum += deep_sleep(id, depth, round);
        if (round % 2)
            ASSERT_EQ(corio_yield(), 0);
    }
    return (void *)(intptr_t)sum;
}

static void *main_frames(void *arg)
{
    (void)arg;
    enum { N = 300 };
    corio_task *ts[N];
    for (int i = 0; i < N; i++) {
        if (i % 3 == 2) /* private tasks doing the same, interleaved */
            ts[i] = corio_create_task(corio_coro(frames_worker, (void *)(intptr_t)i));
        else
            ts[i] = spawn_compact(frames_worker, (void *)(intptr_t)i);
        ASSERT_NOT_NULL(ts[i]);
    }
    for (int i = 0; i < N; i++) {
        void *r = NULL;
        ASSERT_EQ(corio_await(ts[i], &r), 0);
        int depth = i % 23;
        long want = 5 * ((long)i + (long)depth * (depth + 1) / 2);
        ASSERT_EQ((long)(intptr_t)r, want);
        ASSERT_EQ(corio_task_release(ts[i]), 0);
    }
    return NULL;
}

TEST(compact_frames_survive_eviction)
{
    ASSERT_EQ(test_run_virtual(main_frames, NULL, NULL), 0);
}

/* The main task itself may be compact too (corio_run's main is not, but a
 * compact task can be the one everybody awaits). */
static void *compact_parent(void *arg)
{
    (void)arg;
    corio_task *kids[6];
    for (int i = 0; i < 6; i++) /* compact children awaited by a compact parent */
        kids[i] = i % 2 ? spawn_compact(frames_worker, (void *)(intptr_t)(i + 40))
                        : corio_create_task(corio_coro(frames_worker, (void *)(intptr_t)(i + 40)));
    long sum = 0;
    for (int i = 0; i < 6; i++) {
        void *r = NULL;
        ASSERT_EQ(corio_await(kids[i], &r), 0);
        sum += (long)(intptr_t)r;
        corio_task_release(kids[i]);
    }
    return (void *)(intptr_t)sum;
}

static void *main_compact_parent(void *arg)
{
    (void)arg;
    corio_task *p = spawn_compact(compact_parent, NULL);
    void *r = NULL;
    ASSERT_EQ(corio_await(p, &r), 0);
    long want = 0;
    for (int i = 40; i < 46; i++) {
        int depth = i % 23;
        want += 5 * ((long)i + (long)depth * (depth + 1) / 2);
    }
    ASSERT_EQ((long)(intptr_t)r, want);
    corio_task_release(p);
    return NULL;
}

TEST(compact_task_awaits_compact_and_private_children)
{
    ASSERT_EQ(test_run_virtual(main_compact_parent, NULL, NULL), 0);
}

/* ---- ordering: the same FIFO as private tasks ------------------------------------ */

static void *yielder(void *arg)
{
    const char *name = arg;
    for (int i = 0; i < 3; i++) {
        test_trace("%s%d", name, i);
        ASSERT_EQ(corio_yield(), 0);
    }
    return NULL;
}

static void *main_order(void *arg)
{
    (void)arg;
    corio_task *a = spawn_compact(yielder, "A");
    corio_task *b = corio_create_task(corio_coro(yielder, "B"));
    corio_task *c = spawn_compact(yielder, "C");
    corio_task *d = spawn_compact(yielder, "D");
    corio_task *all[] = {a, b, c, d};
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(corio_await(all[i], NULL), 0);
        corio_task_release(all[i]);
    }
    return NULL;
}

TEST(compact_tasks_keep_fifo_order)
{
    test_trace_reset();
    ASSERT_EQ(test_run_virtual(main_order, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "A0 B0 C0 D0 A1 B1 C1 D1 A2 B2 C2 D2");
}

/* Spawn-and-await in a loop: each compact child starts where the last one
 * ended, or after a private one, or after an evicted compact task resumed. */
static void *double_it(void *arg)
{
    return (void *)(2 * (intptr_t)arg);
}

static void *sleep_then_double(void *arg)
{
    ASSERT_EQ(corio_sleep_ns(1000), 0);
    return (void *)(2 * (intptr_t)arg);
}

static void *main_spawn_await(void *arg)
{
    (void)arg;
    intptr_t sum = 0, want = 0;
    for (intptr_t i = 0; i < 3000; i++) {
        corio_fn *fn = i % 5 == 0 ? sleep_then_double : double_it;
        corio_task *t = i % 4 == 3 ? corio_create_task(corio_coro(fn, (void *)i))
                                   : spawn_compact(fn, (void *)i);
        corio_task *u = i % 7 == 0 ? spawn_compact(sleep_then_double, (void *)i) : NULL;
        void *r = NULL;
        ASSERT_EQ(corio_await(t, &r), 0);
        sum += (intptr_t)r;
        want += 2 * i;
        corio_task_release(t);
        if (u) {
            ASSERT_EQ(corio_await(u, &r), 0);
            sum += (intptr_t)r;
            want += 2 * i;
            corio_task_release(u);
        }
    }
    ASSERT_EQ(sum, want);
    return NULL;
}

TEST(compact_spawn_and_await_mixed)
{
    ASSERT_EQ(test_run_virtual(main_spawn_await, NULL, NULL), 0);
}

/* ---- cancellation while evicted ----------------------------------------------------- */

static void *sleep_long(void *arg)
{
    int *seen = arg;
    volatile char mark[64];
    for (int i = 0; i < 64; i++)
        mark[i] = (char)i;
    *seen = corio_sleep(100);
    for (int i = 0; i < 64; i++)
        ASSERT_EQ(mark[i], (char)i);
    return NULL;
}

static void *main_cancel(void *arg)
{
    (void)arg;
    static int seen[3]; /* not on main's stack: compact tasks write to it */
    corio_task *ts[3];
    for (int i = 0; i < 3; i++) {
        seen[i] = 1;
        ts[i] = spawn_compact(sleep_long, &seen[i]);
    }
    ASSERT_EQ(corio_sleep(1), 0); /* all three asleep, two of them evicted */
    ASSERT_EQ(corio_cancel_with(ts[1], "enough"), 1);
    ASSERT_EQ(corio_await(ts[1], NULL), 0); /* it saw the cancel and returned */
    ASSERT_EQ(seen[1], -ECANCELED);
    ASSERT_STR_EQ(corio_cancel_reason(ts[1]), "enough");
    ASSERT_EQ(corio_cancel(ts[0]), 1);
    ASSERT_EQ(corio_cancel(ts[2]), 1);
    ASSERT_EQ(corio_await(ts[2], NULL), 0); /* it saw the cancel and returned */
    ASSERT_EQ(corio_await(ts[0], NULL), 0); /* it saw the cancel and returned */
    ASSERT_EQ(seen[0], -ECANCELED);
    ASSERT_EQ(seen[2], -ECANCELED);
    ASSERT_EQ(corio_now(), 1.0); /* nobody slept the 100 s */
    for (int i = 0; i < 3; i++)
        corio_task_release(ts[i]);
    return NULL;
}

TEST(compact_cancel_while_evicted)
{
    ASSERT_EQ(test_run_virtual(main_cancel, NULL, NULL), 0);
}

/* Compact tasks still asleep when main returns are cancelled and reaped by
 * corio_run, like any others. */
static void *main_leaves_sleepers(void *arg)
{
    static int seen[50];
    (void)arg;
    for (int i = 0; i < 50; i++) {
        corio_task *t = spawn_compact(sleep_long, &seen[i]);
        corio_task_release(t);
    }
    ASSERT_EQ(corio_sleep(1), 0);
    return NULL;
}

TEST(compact_sleepers_left_at_exit_are_reaped)
{
    ASSERT_EQ(test_run_virtual(main_leaves_sleepers, NULL, NULL), 0);
}

/* Timeout and shield scopes work in a compact task wherever their corio_scope
 * is: one on its own stack is forwarded to the heap (the loop walks it while
 * the task is away). A task group on its stack is refused (other tasks may
 * spawn into it). */
static void *scoped_sleeper(void *arg)
{
    (void)arg;
    corio_taskgroup g_on_stack;
    ASSERT_EQ(corio_taskgroup_begin(&g_on_stack), -ENOTSUP);
    corio_scope *sc = malloc(sizeof *sc);
    ASSERT_NOT_NULL(sc);
    ASSERT_EQ(corio_timeout_begin(sc, 2.0), 0);
    ASSERT_EQ(corio_sleep(10), -ECANCELED);
    ASSERT_EQ(corio_scope_end(sc), -ETIMEDOUT);
    free(sc);

    corio_scope outer, shield; /* on this compact task's stack */
    ASSERT_EQ(corio_timeout_begin(&outer, 1.0), 0);
    ASSERT_EQ(corio_scope_deadline(&outer), (int64_t)3e9);
    ASSERT_EQ(corio_shield_begin(&shield), 0);
    ASSERT_EQ(corio_sleep(2), 0); /* the expiry at 3 s waits for the shield */
    ASSERT_EQ(corio_scope_expired(&outer), 1);
    ASSERT_EQ(corio_scope_end(&shield), -ECANCELED); /* delivered now */
    ASSERT_EQ(corio_sleep(1), -ECANCELED);
    ASSERT_EQ(corio_scope_end(&outer), -ETIMEDOUT);
    ASSERT_EQ(corio_scope_expired(&outer), -EINVAL); /* ended: as with any scope */
    ASSERT_EQ(corio_scope_end(&outer), -EINVAL);
    ASSERT_EQ(corio_now(), 4.0);
    return (void *)(intptr_t)42;
}

/* Runs on the shared stack every 0.25 s, evicting whoever sleeps there. */
static void *ticker(void *arg)
{
    (void)arg;
    volatile char deep[2048]; /* and overwrites what lay where they were */
    for (int i = 0; i < 20; i++) {
        for (size_t j = 0; j < sizeof deep; j++)
            deep[j] = (char)(i + (int)j);
        ASSERT_EQ(corio_sleep(0.25), 0);
    }
    return NULL;
}

static void *main_scopes(void *arg)
{
    (void)arg;
    corio_task *t = spawn_compact(scoped_sleeper, NULL);
    corio_task *other = spawn_compact(ticker, NULL); /* evicts it, again and again */
    void *r = NULL;
    ASSERT_EQ(corio_await(t, &r), 0);
    ASSERT_EQ((intptr_t)r, 42);
    ASSERT_EQ(corio_now(), 4.0);
    ASSERT_EQ(corio_await(other, NULL), 0);
    corio_task_release(t);
    corio_task_release(other);
    return NULL;
}

TEST(compact_scopes_on_heap_and_on_its_stack)
{
    ASSERT_EQ(test_run_virtual(main_scopes, NULL, NULL), 0);
}

/* ---- queues, locks and groups: their records live in the side block ------------- */

typedef struct pingpong {
    corio_queue a, b;
    corio_lock lock;
    long in_lock, max_in_lock, turns;
} pingpong;

static void *pinger_task(void *arg)
{
    pingpong *pp = arg;
    for (intptr_t i = 1; i <= 500; i++) {
        ASSERT_EQ(corio_queue_put(&pp->a, (void *)i), 0);
        void *back = NULL;
        ASSERT_EQ(corio_queue_get(&pp->b, &back), 0);
        ASSERT_EQ((intptr_t)back, -i);
    }
    return NULL;
}

static void *ponger_task(void *arg)
{
    pingpong *pp = arg;
    for (int i = 0; i < 500; i++) {
        void *x = NULL;
        ASSERT_EQ(corio_queue_get(&pp->a, &x), 0);
        ASSERT_EQ(corio_queue_put(&pp->b, (void *)-(intptr_t)x), 0);
    }
    return NULL;
}

static void *locker_task(void *arg)
{
    pingpong *pp = arg;
    for (int i = 0; i < 20; i++) {
        ASSERT_EQ(corio_lock_acquire(&pp->lock), 0);
        if (++pp->in_lock > pp->max_in_lock)
            pp->max_in_lock = pp->in_lock;
        ASSERT_EQ(corio_sleep_ns(1000), 0); /* evicted while holding it */
        pp->turns++;
        pp->in_lock--;
        ASSERT_EQ(corio_lock_release(&pp->lock), 0);
    }
    return NULL;
}

static void *main_queues_locks(void *arg)
{
    (void)arg;
    pingpong *pp = calloc(1, sizeof *pp); /* shared: on the heap */
    ASSERT_NOT_NULL(pp);
    ASSERT_EQ(corio_queue_init(&pp->a, CORIO_QUEUE_FIFO, 1, NULL), 0);
    ASSERT_EQ(corio_queue_init(&pp->b, CORIO_QUEUE_FIFO, 1, NULL), 0);
    ASSERT_EQ(corio_lock_init(&pp->lock), 0);
    corio_task *ts[12];
    ts[0] = spawn_compact(pinger_task, pp);
    ts[1] = spawn_compact(ponger_task, pp);
    for (int i = 2; i < 12; i++)
        ts[i] = i % 3 ? spawn_compact(locker_task, pp) : corio_create_task(corio_coro(locker_task, pp));
    for (int i = 0; i < 12; i++) {
        ASSERT_EQ(corio_await(ts[i], NULL), 0);
        corio_task_release(ts[i]);
    }
    ASSERT_EQ(pp->turns, 200);
    ASSERT_EQ(pp->max_in_lock, 1);
    ASSERT_EQ(corio_queue_destroy(&pp->a), 0);
    ASSERT_EQ(corio_queue_destroy(&pp->b), 0);
    ASSERT_EQ(corio_lock_destroy(&pp->lock), 0);
    free(pp);
    return NULL;
}

TEST(compact_queue_pingpong_and_lock)
{
    ASSERT_EQ(test_run_virtual(main_queues_locks, NULL, NULL), 0);
}

/* The other sync objects and a queue join, each waited on by compact tasks
 * that are evicted while they wait. */
typedef struct syncs {
    corio_event ev;
    corio_sem sem;
    corio_lock lock;
    corio_cond cond;
    corio_barrier bar;
    corio_queue jq;
    int ready, woke, in_sem, max_in_sem, passed;
} syncs;

static void *sync_waiter(void *arg)
{
    syncs *y = arg;
    ASSERT_EQ(corio_event_wait(&y->ev), 0);
    ASSERT_EQ(corio_sem_acquire(&y->sem), 0);
    if (++y->in_sem > y->max_in_sem)
        y->max_in_sem = y->in_sem;
    ASSERT_EQ(corio_sleep_ns(1000), 0);
    y->in_sem--;
    ASSERT_EQ(corio_sem_release(&y->sem), 0);
    ASSERT_EQ(corio_lock_acquire(&y->lock), 0);
    while (!y->ready)
        ASSERT_EQ(corio_cond_wait(&y->cond), 0);
    y->woke++;
    ASSERT_EQ(corio_lock_release(&y->lock), 0);
    int idx = corio_barrier_wait(&y->bar);
    ASSERT_GE(idx, 0);
    y->passed++;
    void *item = NULL;
    ASSERT_EQ(corio_queue_get(&y->jq, &item), 0);
    ASSERT_EQ(corio_queue_task_done(&y->jq), 0);
    return NULL;
}

static void *join_waiter(void *arg)
{
    syncs *y = arg;
    ASSERT_EQ(corio_queue_join(&y->jq), 0); /* waits for all four items done */
    return NULL;
}

static void *main_syncs(void *arg)
{
    (void)arg;
    syncs *y = calloc(1, sizeof *y);
    ASSERT_NOT_NULL(y);
    ASSERT_EQ(corio_event_init(&y->ev), 0);
    ASSERT_EQ(corio_sem_init(&y->sem, 2), 0);
    ASSERT_EQ(corio_lock_init(&y->lock), 0);
    ASSERT_EQ(corio_cond_init(&y->cond, &y->lock), 0);
    ASSERT_EQ(corio_barrier_init(&y->bar, 4), 0);
    ASSERT_EQ(corio_queue_init(&y->jq, CORIO_QUEUE_FIFO, 0, NULL), 0);
    corio_task *ts[5];
    for (int i = 0; i < 4; i++)
        ts[i] = spawn_compact(sync_waiter, y);
    ts[4] = spawn_compact(join_waiter, y);
    for (intptr_t i = 1; i <= 4; i++)
        ASSERT_EQ(corio_queue_try_put(&y->jq, (void *)i), 0);
    ASSERT_EQ(corio_sleep(1), 0); /* all wait on the event */
    ASSERT_EQ(corio_event_set(&y->ev), 0);
    ASSERT_EQ(corio_sleep(1), 0); /* through the semaphore, now waiting on the condition */
    ASSERT_EQ(y->max_in_sem, 2);
    ASSERT_EQ(y->woke, 0);
    ASSERT_EQ(corio_lock_acquire(&y->lock), 0);
    y->ready = 1;
    ASSERT_EQ(corio_cond_notify_all(&y->cond), 4); /* all four were waiting */
    ASSERT_EQ(corio_lock_release(&y->lock), 0);
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ(corio_await(ts[i], NULL), 0);
        corio_task_release(ts[i]);
    }
    ASSERT_EQ(y->woke, 4);
    ASSERT_EQ(y->passed, 4);
    ASSERT_EQ(corio_queue_destroy(&y->jq), 0);
    free(y);
    return NULL;
}

TEST(compact_event_sem_cond_barrier_join)
{
    ASSERT_EQ(test_run_virtual(main_syncs, NULL, NULL), 0);
}

/* A task group on the heap, begun by a compact task. */
static void *group_owner(void *arg)
{
    (void)arg;
    corio_taskgroup *g = malloc(sizeof *g);
    ASSERT_NOT_NULL(g);
    ASSERT_EQ(corio_taskgroup_begin(g), 0);
    for (intptr_t i = 0; i < 5; i++)
        ASSERT_EQ(corio_taskgroup_spawn(g, corio_coro(sleep_then_double, (void *)i), NULL), 0);
    ASSERT_EQ(corio_taskgroup_end(g, 0), 0);
    free(g);
    return (void *)(intptr_t)7;
}

static void *main_group(void *arg)
{
    (void)arg;
    corio_task *a = spawn_compact(group_owner, NULL), *b = spawn_compact(group_owner, NULL);
    void *r = NULL;
    ASSERT_EQ(corio_await(a, &r), 0);
    ASSERT_EQ((intptr_t)r, 7);
    ASSERT_EQ(corio_await(b, &r), 0);
    ASSERT_EQ((intptr_t)r, 7);
    corio_task_release(a);
    corio_task_release(b);
    return NULL;
}

TEST(compact_task_group_on_heap)
{
    ASSERT_EQ(test_run_virtual(main_group, NULL, NULL), 0);
}

/* ---- select, gather, wait, wait_for and to_thread from compact tasks ------------ */

static corio_queue *mq1, *mq2; /* on the heap */

static void *selector(void *arg)
{
    (void)arg;
    void *got1 = NULL, *got2 = NULL;
    /* the ops on this compact task's own stack: select keeps a copy off it */
    corio_select_op ops[2] = {{.kind = CORIO_SELECT_GET, .queue = mq1, .item_out = &got1},
                              {.kind = CORIO_SELECT_GET, .queue = mq2, .item_out = &got2}};
    ASSERT_EQ(corio_select(ops, 2, 0.5), -ETIMEDOUT); /* nobody puts: times out */
    ASSERT_EQ(corio_select(ops, 2, 10.0), 1); /* main puts on mq2 at t=1 */
    ASSERT_PTR_EQ(got2, (void *)22);
    ASSERT_NULL(got1);
    ASSERT_EQ(corio_queue_size(mq1), 0);
    return NULL;
}

static void *cancelled_selector(void *arg)
{
    int *seen = arg;
    corio_select_op op = {.kind = CORIO_SELECT_GET, .queue = mq1};
    *seen = corio_select(&op, 1, 100.0);
    return NULL;
}

static void *sleep_100_or_fail(void *arg)
{
    (void)arg;
    int rc = corio_sleep(100);
    return rc < 0 ? corio_fail(rc) : NULL;
}

static void *gatherer(void *arg)
{
    (void)arg;
    corio_task *ts[3];
    for (intptr_t i = 0; i < 3; i++)
        ts[i] = spawn_compact(sleep_then_double, (void *)(i + 1));
    void *results[3] = {0};
    ASSERT_EQ(corio_gather_tasks(ts, 3, results), 0);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ((intptr_t)results[i], 2 * (i + 1));
        corio_task_release(ts[i]);
    }
    corio_coro_t coros[10];
    for (intptr_t i = 0; i < 10; i++) /* more than the 8 awaiters a private gather keeps local */
        coros[i] = corio_coro(sleep_then_double, (void *)i);
    void *r10[10] = {0};
    ASSERT_EQ(corio_gather(coros, 10, r10), 0);
    for (int i = 0; i < 10; i++)
        ASSERT_EQ((intptr_t)r10[i], 2 * i);

    corio_task *slow = spawn_compact(sleep_100_or_fail, NULL);
    corio_task *quick = spawn_compact(sleep_then_double, (void *)5);
    corio_task *both[2] = {slow, quick};
    ASSERT_EQ(corio_wait(both, 2, CORIO_FIRST_COMPLETED, 50.0), 1);
    ASSERT_EQ(corio_task_done(quick), 1);
    ASSERT_EQ(corio_wait_for(slow, 1.0, NULL), -ETIMEDOUT); /* and slow is cancelled */
    ASSERT_EQ(corio_task_done(slow), 1);
    void *r = NULL;
    ASSERT_EQ(corio_wait_for(corio_coro(sleep_then_double, (void *)4), 1.0, &r), 0);
    ASSERT_EQ((intptr_t)r, 8);
    corio_task_release(slow);
    corio_task_release(quick);
    return (void *)(intptr_t)1;
}

static void *blocking_fn(void *arg)
{
    usleep(1000);
    return (void *)(3 * (intptr_t)arg);
}

static void *threader(void *arg)
{
    void *r = NULL;
    ASSERT_EQ(corio_to_thread(blocking_fn, arg, &r), 0);
    return r;
}

static int cancelled_seen = 1;

static void *main_multi(void *arg)
{
    (void)arg;
    mq1 = malloc(sizeof *mq1);
    mq2 = malloc(sizeof *mq2);
    ASSERT_EQ(corio_queue_init(mq1, CORIO_QUEUE_FIFO, 0, NULL), 0);
    ASSERT_EQ(corio_queue_init(mq2, CORIO_QUEUE_FIFO, 0, NULL), 0);
    corio_task *sel = spawn_compact(selector, NULL);
    corio_task *csel = spawn_compact(cancelled_selector, &cancelled_seen);
    corio_task *g = spawn_compact(gatherer, NULL);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_queue_put(mq2, (void *)22), 0);
    ASSERT_EQ(corio_cancel(csel), 1);
    ASSERT_EQ(corio_await(csel, NULL), 0);
    ASSERT_EQ(cancelled_seen, -ECANCELED);
    ASSERT_EQ(corio_queue_put(mq1, (void *)11), 0); /* nobody took it: it stays */
    ASSERT_EQ(corio_await(sel, NULL), 0);
    void *r = NULL;
    ASSERT_EQ(corio_await(g, &r), 0);
    ASSERT_EQ((intptr_t)r, 1);
    ASSERT_EQ(corio_queue_size(mq1), 1);
    void *x = NULL;
    ASSERT_EQ(corio_queue_try_get(mq1, &x), 0);
    ASSERT_PTR_EQ(x, (void *)11);
    ASSERT_EQ(corio_queue_destroy(mq1), 0);
    ASSERT_EQ(corio_queue_destroy(mq2), 0);
    free(mq1);
    free(mq2);
    corio_task_release(sel);
    corio_task_release(csel);
    corio_task_release(g);
    return NULL;
}

TEST(compact_select_gather_wait_and_wait_for)
{
    ASSERT_EQ(test_run_virtual(main_multi, NULL, NULL), 0);
}

static void *main_threads(void *arg)
{
    (void)arg;
    corio_task *ts[6];
    for (intptr_t i = 0; i < 6; i++)
        ts[i] = spawn_compact(threader, (void *)i);
    for (int i = 0; i < 6; i++) {
        void *r = NULL;
        ASSERT_EQ(corio_await(ts[i], &r), 0);
        ASSERT_EQ((intptr_t)r, 3 * i);
        corio_task_release(ts[i]);
    }
    return NULL;
}

TEST(compact_to_thread)
{
    ASSERT_EQ(corio_run(corio_coro(main_threads, NULL), NULL), 0);
}

/* ---- what a compact task cannot do yet: I/O that waits. -ENOTSUP, nothing happened */

/* I/O is the one kind of wait a compact task cannot make yet. */
static void *io_refuser(void *arg)
{
    (void)arg;
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    char c;
    ASSERT_EQ(corio_read(fds[0], &c, 1), -ENOTSUP); /* empty: it would wait */
    ASSERT_EQ(write(fds[1], "x", 1), 1);
    if (strcmp(corio_backend(), "epoll") == 0) { /* (arm64 builds fall back to epoll) */
        ASSERT_EQ(corio_read(fds[0], &c, 1), 1); /* ready: read at once, no wait */
        ASSERT_EQ(c, 'x');
    } else {
        ASSERT_EQ(corio_read(fds[0], &c, 1), -ENOTSUP); /* io_uring always waits for its CQE */
        ASSERT_EQ(read(fds[0], &c, 1), 1); /* and took nothing */
    }
    ASSERT_EQ(corio_close(fds[0]), 0);
    ASSERT_EQ(corio_close(fds[1]), 0);
    int file = open("/proc/self/stat", O_RDONLY | O_CLOEXEC); /* a file: read by a worker */
    ASSERT_GE(file, 0);
    ASSERT_EQ(corio_read(file, &c, 1), -ENOTSUP);
    ASSERT_EQ(corio_close(file), 0);
    ASSERT_EQ(corio_now(), 0.0); /* nothing waited */
    return NULL;
}

static void *main_refusals(void *arg)
{
    (void)arg;
    corio_task *r = spawn_compact(io_refuser, NULL);
    ASSERT_EQ(corio_await(r, NULL), 0);
    corio_task_release(r);
    return NULL;
}

TEST_IO(compact_refuses_io_that_would_wait)
{
    ASSERT_EQ(test_run_virtual(main_refusals, NULL, NULL), 0);
}

/* ---- scale and memory ----------------------------------------------------------------- */

static long many_done;

static void *many_sleeper(void *arg)
{
    (void)arg;
    if (corio_sleep(1.0) == 0)
        many_done++;
    return NULL;
}

static void *main_many(void *arg)
{
    long n = (long)(intptr_t)arg;
    size_t before = test_rss_bytes();
    for (long i = 0; i < n; i++) {
        corio_task *t = spawn_compact(many_sleeper, NULL);
        ASSERT_EQ(corio_task_release(t), 0);
    }
    ASSERT_EQ(corio_sleep(0.5), 0); /* all started and asleep now */
    size_t during = test_rss_bytes();
    ASSERT_EQ(corio_sleep(1.0), 0);
    ASSERT_EQ(many_done, n);
    size_t per_task = during > before ? (during - before) / (size_t)n : 0;
    if (test_scale() == 1 && !test_under_valgrind()) {
        /* a stack page each would be 4 KiB and more; the task, side block
         * and image come to well under one */
#ifdef CORIO_SWITCH_UCONTEXT
        size_t limit = 3072; /* a saved ucontext_t alone is about 1 KiB */
#else
        size_t limit = 2048;
#endif
        if (per_task > limit)
            fprintf(stderr, "%zu bytes per waiting compact task\n", per_task);
        ASSERT_LE(per_task, limit);
    }
    return NULL;
}

TEST_TIMEOUT(compact_100k_sleepers_cost_under_a_page_each, 120)
{
    long n = 100000 / test_scale();
    ASSERT_EQ(test_run_virtual(main_many, (void *)(intptr_t)n, NULL), 0);
}

/* ---- overflow on the shared stack ------------------------------------------------------ */

__attribute__((noinline)) static int compact_recurse(int depth)
{
    volatile char buf[512];
    buf[0] = (char)depth;
    buf[511] = 1;
    if (depth == depth_stop)
        return buf[0];
    return compact_recurse(depth + 1) + buf[0] + buf[511];
}

void *compact_overflow_entry(void *arg); /* exported: the report names it */
void *compact_overflow_entry(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_yield(), 0);
    return (void *)(intptr_t)compact_recurse(0);
}

static void *main_compact_overflow(void *arg)
{
    (void)arg;
    corio_task *t = spawn_compact(compact_overflow_entry, NULL);
    corio_await(t, NULL);
    return NULL;
}

static int compact_overflow_child(void *arg)
{
    (void)arg;
    test_run_virtual(main_compact_overflow, NULL, NULL);
    fprintf(stderr, "survived the overflow\n");
    return 0;
}

TEST(compact_overflow_is_reported)
{
    char err[16384];
    int st = 0;
    ASSERT_EQ(test_fork_stderr(compact_overflow_child, NULL, err, sizeof err, &st), 0);
    ASSERT(strstr(err, "survived") == NULL);
#if defined(__SANITIZE_ADDRESS__)
    /* The shared stack's neighbour below is another task's stack, whose frames
     * ASan has poisoned: ASan catches the first write into them, before corio. */
    if (strstr(err, "AddressSanitizer")) {
        ASSERT(strstr(err, "compact_recurse") != NULL);
        return;
    }
#endif
    ASSERT(WIFSIGNALED(st));
    ASSERT_EQ(WTERMSIG(st), SIGABRT);
    ASSERT(strstr(err, "stack overflow") != NULL);
    ASSERT(strstr(err, "compact_overflow_entry") != NULL);
}
