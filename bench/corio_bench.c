/* corio_bench - corio's side of the peer benchmarks in ../shared/peers.
 *
 * Usage: corio_bench WORKLOAD N [D]
 *   w1   N [D]  N tasks each sleep D seconds (default 1) at once; main waits for all of them
 *   w1c  N [D]  w1 with compact sleepers (corio_task_opts.compact: one shared stack, each
 *               sleeper's frames copied out while it sleeps)
 *   w2   N      N round trips of one item between two tasks through two queues
 *   w2b  N      N yields in all, shared between two tasks running the same loop
 *   w2c  N      N items through one bounded queue, 1,000 producers to 1,000 consumers
 *   w3   N      spawn N tasks returning 2*i, then await them all; the sum must be N*(N-1)
 *   w3i  N      N times: create one task, await it, release it (nothing piles up)
 *   lock N      N lock acquisitions in all, handed over among 10,000 contending tasks
 *   mem  N      no corio call: N fresh pages, one per 64 KiB, each touched once (as w1's
 *               sleepers touch one stack page each). The machine's price of fresh memory,
 *               the floor under w1 and w3 (ns_per_op = ns per page)
 *   memhuge N   no corio call: N * 4 KiB of memory advised to 2 MiB pages, touched every
 *               4 KiB: the price of the memory corio's task slabs and compact tasks' frames
 *               come from (src/mem.c) (ns_per_op = ns per 4 KiB)
 *
 * Prints one JSON line to stdout:
 *   {"workload":"w1","runtime":"corio","n":N,"d":D,"wall_s":..,"rss_kb":..,"ns_per_op":..}
 * wall_s is the workload alone, timed inside the main coroutine (like the peers' elapsed_s:
 * no process start, no loop set-up or close); rss_kb is the peak RSS (getrusage ru_maxrss);
 * ns_per_op = wall_s * 1e9 / N. Exits 1 on a wrong result or a failed call, 2 on bad usage.
 *
 * W1 waits by awaiting every handle in order (CORIO_BENCH_W1=spawn instead spawns detached
 * sleepers and polls a counter with short sleeps, for comparison). Each sleeper checks on
 * the loop's clock that it slept at least D. Stack size and loop options are the defaults.
 *
 * W2 is the peers' w2 (ping-pong): the main task and one ponger task, two FIFO queues of
 * capacity 1 (as Tokio's mpsc::channel(1) and asyncio.Queue(1); Go's channels there are
 * unbuffered, Node's are unbounded). One round trip: main puts v on queue a, the ponger
 * gets it and puts v+1 on queue b, main gets that (two task switches). The ponger does N
 * round trips and ends; main awaits it and checks that v == N. Timed: all of it, the
 * queues' and the ponger's creation included (as the peers do).
 *
 * W2C: 1,000 producers and 1,000 consumers through one FIFO queue of capacity 1,000 (one
 * slot per producer). Producer p puts its share of the values 0..N-1 (N/1000 each, the
 * first N%1000 producers one more); each consumer gets until the queue is shut down. The
 * 2,000 tasks are created and each runs up to its first wait (consumers in get, producers
 * on a start event) before the clock starts; timed: from setting the start event, through
 * awaiting every producer and shutting the queue down (corio_queue_shutdown, not
 * immediate: the consumers drain what is left), to awaiting every consumer. ns_per_op =
 * wall ns per item (items/s = 1e9 / ns_per_op). Checked: the consumers got exactly N items,
 * whose sum and sum of squares are those of 0..N-1.
 *
 * LOCK: 10,000 tasks share one corio_lock; task i does N/10000 acquisitions (the first
 * N%10000 tasks one more), each: acquire, mark the lock held by i (it must have been free),
 * [yield], check it is still marked i, unmark, release. Before the clock starts the main
 * task holds the lock and lets every task run up to its first acquire, so all 10,000 wait
 * in line; the clock starts when main releases the lock and stops once every task has
 * ended (all awaited). In that run every acquisition is a handoff: the holder's release
 * passes the lock to the first waiter and makes it ready, the holder's next acquire queues
 * it at the back and switches away (a task on its last round just ends). ns_per_op = wall ns
 * per acquisition. The yield is off by default (pure handoff); CORIO_BENCH_LOCK=yield
 * yields once inside every hold (the others are all waiting, so it adds one trip through
 * the ready queue per acquisition, and checks that a hold across a suspension excludes).
 * Checked: N acquisitions, never two holders, and FIFO handoff: acquisition k (from 0)
 * goes to task k % 10000.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include "corio.h"

static const char *g_workload;
static long g_n;
static double g_d = 1.0;
static int64_t g_d_ns;
static double g_t0;          /* when the clock started: a workload may restart it */
static double g_wall_s = -1;
static int g_failed;

/* W1 state */
static long g_w1_done;     /* sleepers that finished having slept >= D */
static long g_w1_short;    /* sleepers that woke early (a bug) */
static long g_w1_err;      /* sleepers whose corio_sleep failed */
static int g_w1_first_err; /* the first such error */

/* W2b state */
static long g_yields;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fail(const char *what, int rc)
{
    fprintf(stderr, "corio_bench %s: %s: %s (%d)\n", g_workload, what,
            rc < 0 ? strerror(-rc) : "wrong result", rc);
    g_failed = 1;
}

/* ---- W1: sleepers ---------------------------------------------------------------- */
static void *sleeper(void *arg)
{
    (void)arg;
    int64_t t0 = corio_now_ns();
    int rc = corio_sleep_ns(g_d_ns);
    if (rc < 0) {
        if (g_w1_err++ == 0)
            g_w1_first_err = rc;
        return corio_fail(rc);
    }
    if (corio_now_ns() - t0 < g_d_ns)
        g_w1_short++;
    else
        g_w1_done++;
    return NULL;
}

static const corio_task_opts *g_w1_opts; /* NULL, or compact for w1c */

static int w1_await(long n)
{
    corio_task **t = malloc((size_t)(n ? n : 1) * sizeof *t);
    if (!t)
        return -ENOMEM;
    for (long i = 0; i < n; i++) {
        int rc = corio_task_create(&t[i], corio_coro(sleeper, NULL), g_w1_opts);
        if (rc < 0) {
            fail("corio_task_create", rc);
            n = i; /* await what was made, then report */
            break;
        }
    }
    int first = 0;
    for (long i = 0; i < n; i++) {
        int rc = corio_await(t[i], NULL);
        if (rc < 0 && first == 0)
            first = rc;
        rc = corio_task_release(t[i]);
        if (rc < 0 && first == 0)
            first = rc;
    }
    free(t);
    return first;
}

static int w1_spawn(long n)
{
    for (long i = 0; i < n; i++) {
        corio_task *t;
        int rc = corio_task_create(&t, corio_coro(sleeper, NULL), g_w1_opts);
        if (rc == 0)
            rc = corio_task_release(t); /* detached, as corio_spawn */
        if (rc < 0) {
            fail("corio_task_create", rc);
            return rc;
        }
    }
    /* Every sleeper starts its sleep after this one begins, so none can be done before. */
    int rc = corio_sleep_ns(g_d_ns);
    while (rc == 0 && g_w1_done + g_w1_short + g_w1_err < n)
        rc = corio_sleep_ns(100 * 1000); /* 0.1 ms polls: negligible next to D */
    return rc;
}

static int w1(long n)
{
    const char *mode = getenv("CORIO_BENCH_W1");
    int rc = (mode && strcmp(mode, "spawn") == 0) ? w1_spawn(n) : w1_await(n);
    if (rc < 0 && !g_failed)
        fail("waiting for the sleepers", rc);
    if (g_w1_err)
        fail("corio_sleep in a sleeper", g_w1_first_err);
    if (g_w1_short) {
        fprintf(stderr, "corio_bench %s: %ld sleepers woke before %.9f s\n", g_workload, g_w1_short, g_d);
        g_failed = 1;
    }
    if (!g_failed && g_w1_done != n) {
        fprintf(stderr, "corio_bench %s: %ld of %ld sleepers finished\n", g_workload, g_w1_done, n);
        g_failed = 1;
    }
    return 0;
}

/* ---- W2b: yields between two tasks -------------------------------------------------- */
static void *yielder(void *arg)
{
    long n = (long)(intptr_t)arg;
    while (g_yields < n) {
        g_yields++;
        int rc = corio_yield();
        if (rc < 0)
            return corio_fail(rc);
    }
    return NULL;
}

/* Two tasks running the same loop, as two workers would. (A main loop and a
 * different task loop also work, but then each task resumes into other code
 * than the one that just suspended and the CPU's return prediction misses
 * once per yield: about 10 ns more here. Both figures go in the notes.) */
static int w2b(long n)
{
    corio_task *t[2];
    for (int i = 0; i < 2; i++) {
        int rc = corio_task_create(&t[i], corio_coro(yielder, (void *)(intptr_t)n), NULL);
        if (rc < 0) {
            fail("corio_task_create", rc);
            return rc;
        }
    }
    for (int i = 0; i < 2; i++) {
        int rc = corio_await(t[i], NULL);
        corio_task_release(t[i]);
        if (rc < 0)
            fail("a yielding task", rc);
    }
    if (!g_failed && g_yields != n) {
        fprintf(stderr, "corio_bench w2b: %ld yields, expected %ld\n", g_yields, n);
        g_failed = 1;
    }
    return 0;
}

/* ---- W2: ping-pong through two queues --------------------------------------------------- */
static corio_queue g_w2a, g_w2b;

static void *ponger(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        void *v;
        int rc = corio_queue_get(&g_w2a, &v);
        if (rc == 0)
            rc = corio_queue_put(&g_w2b, (void *)((uintptr_t)v + 1));
        if (rc < 0)
            return corio_fail(rc);
    }
    return NULL;
}

static int w2(long n)
{
    int rc = corio_queue_init(&g_w2a, CORIO_QUEUE_FIFO, 1, NULL);
    if (rc == 0)
        rc = corio_queue_init(&g_w2b, CORIO_QUEUE_FIFO, 1, NULL);
    if (rc < 0) {
        fail("corio_queue_init", rc);
        return rc;
    }
    corio_task *p;
    rc = corio_task_create(&p, corio_coro(ponger, (void *)(intptr_t)n), NULL);
    if (rc < 0) {
        fail("corio_task_create", rc);
        return rc;
    }
    uintptr_t v = 0;
    for (long i = 0; i < n; i++) {
        void *r;
        rc = corio_queue_put(&g_w2a, (void *)v);
        if (rc < 0) {
            fail("corio_queue_put", rc);
            break;
        }
        rc = corio_queue_get(&g_w2b, &r);
        if (rc < 0) {
            fail("corio_queue_get", rc);
            break;
        }
        v = (uintptr_t)r;
    }
    if (g_failed)
        corio_cancel(p);
    rc = corio_await(p, NULL);
    corio_task_release(p);
    if (rc < 0 && !g_failed)
        fail("the ponger", rc);
    if (!g_failed && v != (uintptr_t)n) {
        fprintf(stderr, "corio_bench w2: final value %" PRIuPTR ", expected %ld\n", v, n);
        g_failed = 1;
    }
    corio_queue_destroy(&g_w2a);
    corio_queue_destroy(&g_w2b);
    return 0;
}

/* ---- W2C: producers and consumers through one bounded queue ------------------------------ */
#define W2C_PRODUCERS 1000
#define W2C_CONSUMERS 1000
#define W2C_CAPACITY 1000

static corio_queue g_w2c_q;
static corio_event g_w2c_go;
static long g_w2c_started;                     /* tasks that reached their first wait */
static uint64_t g_w2c_count, g_w2c_sum, g_w2c_sumsq;

static void *producer(void *arg)
{
    long id = (long)(intptr_t)arg;
    long per = g_n / W2C_PRODUCERS, extra = g_n % W2C_PRODUCERS;
    long first = id * per + (id < extra ? id : extra);
    long count = per + (id < extra);
    g_w2c_started++;
    int rc = corio_event_wait(&g_w2c_go);
    for (long v = first; rc == 0 && v < first + count; v++)
        rc = corio_queue_put(&g_w2c_q, (void *)(uintptr_t)v);
    return rc < 0 ? corio_fail(rc) : NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    uint64_t count = 0, sum = 0, sumsq = 0;
    void *item;
    int rc;
    g_w2c_started++;
    while ((rc = corio_queue_get(&g_w2c_q, &item)) == 0) {
        uint64_t v = (uintptr_t)item;
        count++;
        sum += v;
        sumsq += v * v;
    }
    g_w2c_count += count;
    g_w2c_sum += sum;
    g_w2c_sumsq += sumsq;
    return rc == -ESHUTDOWN ? NULL : corio_fail(rc);
}

/* Await and release t[0..n-1]; the first failure is reported as `what`. */
static void await_all(corio_task **t, long n, const char *what)
{
    for (long i = 0; i < n; i++) {
        int rc = corio_await(t[i], NULL);
        corio_task_release(t[i]);
        if (rc < 0 && !g_failed)
            fail(what, rc);
    }
}

static int w2c(long n)
{
    static corio_task *prod[W2C_PRODUCERS], *cons[W2C_CONSUMERS];
    long np = 0, nc = 0;
    int rc = corio_queue_init(&g_w2c_q, CORIO_QUEUE_FIFO, W2C_CAPACITY, NULL);
    if (rc == 0)
        rc = corio_event_init(&g_w2c_go);
    if (rc < 0) {
        fail("init", rc);
        return rc;
    }
    while (rc == 0 && nc < W2C_CONSUMERS) {
        rc = corio_task_create(&cons[nc], corio_coro(consumer, NULL), NULL);
        nc += rc == 0;
    }
    while (rc == 0 && np < W2C_PRODUCERS) {
        rc = corio_task_create(&prod[np], corio_coro(producer, (void *)(intptr_t)np), NULL);
        np += rc == 0;
    }
    if (rc < 0)
        fail("corio_task_create", rc);
    /* Let every task reach its first wait (one yield runs each ready task once). */
    while (rc == 0 && g_w2c_started < W2C_PRODUCERS + W2C_CONSUMERS)
        rc = corio_yield();
    if (rc < 0 && !g_failed)
        fail("corio_yield", rc);
    g_t0 = now_s(); /* the clock starts here */
    if (g_failed) {
        for (long i = 0; i < np; i++)
            corio_cancel(prod[i]);
    }
    corio_event_set(&g_w2c_go);
    await_all(prod, np, "a producer");
    rc = corio_queue_shutdown(&g_w2c_q, 0);
    if (rc < 0 && !g_failed)
        fail("corio_queue_shutdown", rc);
    await_all(cons, nc, "a consumer");
    if (g_failed)
        return 0;
    uint64_t sum = 0, sumsq = 0;
    for (uint64_t v = 0; v < (uint64_t)n; v++) {
        sum += v;
        sumsq += v * v;
    }
    if (g_w2c_count != (uint64_t)n || g_w2c_sum != sum || g_w2c_sumsq != sumsq) {
        fprintf(stderr,
                "corio_bench w2c: consumers got %" PRIu64 " items (sum %" PRIu64
                ", sum of squares %" PRIu64 "), expected %ld (%" PRIu64 ", %" PRIu64 ")\n",
                g_w2c_count, g_w2c_sum, g_w2c_sumsq, n, sum, sumsq);
        g_failed = 1;
    }
    rc = corio_queue_destroy(&g_w2c_q);
    if (rc == 0)
        rc = corio_event_destroy(&g_w2c_go);
    if (rc < 0)
        fail("destroy", rc);
    return 0;
}

/* ---- W3 / W3i: spawn and await ---------------------------------------------------------- */
static void *twice(void *arg)
{
    return (void *)(2 * (intptr_t)arg);
}

static int w3(long n)
{
    corio_task **t = malloc((size_t)(n ? n : 1) * sizeof *t);
    if (!t) {
        fail("malloc", -ENOMEM);
        return -ENOMEM;
    }
    for (long i = 0; i < n; i++) {
        int rc = corio_task_create(&t[i], corio_coro(twice, (void *)(intptr_t)i), NULL);
        if (rc < 0) {
            fail("corio_task_create", rc);
            n = i;
            break;
        }
    }
    int64_t sum = 0;
    for (long i = 0; i < n; i++) {
        void *r = NULL;
        int rc = corio_await(t[i], &r);
        if (rc < 0 && !g_failed)
            fail("corio_await", rc);
        sum += (int64_t)(intptr_t)r;
        corio_task_release(t[i]);
    }
    free(t);
    if (!g_failed && sum != (int64_t)n * (n - 1)) {
        fprintf(stderr, "corio_bench w3: sum %" PRId64 ", expected %" PRId64 "\n", sum,
                (int64_t)n * (n - 1));
        g_failed = 1;
    }
    return 0;
}

static int w3i(long n)
{
    int64_t sum = 0;
    for (long i = 0; i < n; i++) {
        corio_task *t;
        int rc = corio_task_create(&t, corio_coro(twice, (void *)(intptr_t)i), NULL);
        if (rc < 0) {
            fail("corio_task_create", rc);
            return rc;
        }
        void *r = NULL;
        rc = corio_await(t, &r);
        corio_task_release(t);
        if (rc < 0) {
            fail("corio_await", rc);
            return rc;
        }
        sum += (int64_t)(intptr_t)r;
    }
    if (sum != (int64_t)n * (n - 1)) {
        fprintf(stderr, "corio_bench w3i: sum %" PRId64 ", expected %" PRId64 "\n", sum,
                (int64_t)n * (n - 1));
        g_failed = 1;
    }
    return 0;
}

/* ---- MEM: what fresh memory costs on this machine ---------------------------------------- */
static int mem(long n)
{
    const size_t stride = 64 * 1024;
    size_t bytes = (size_t)(n > 0 ? n : 1) * stride;
    char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) {
        fail("mmap", -errno);
        return -errno;
    }
    g_t0 = now_s(); /* the clock starts here */
    for (long i = 0; i < n; i++)
        ((volatile char *)p)[(size_t)i * stride + stride - 64] = 1;
    g_wall_s = now_s() - g_t0;
    munmap(p, bytes);
    return 0;
}

/* The same price in 2 MiB pages, as src/mem.c asks for them: N * 4 KiB of memory
 * advised MADV_HUGEPAGE, 2 MiB-aligned, touched every 4 KiB (ns_per_op = ns per 4 KiB). */
static int memhuge(long n)
{
    const size_t huge = (size_t)2 << 20;
    size_t bytes = ((size_t)(n > 0 ? n : 1) * 4096 + huge - 1) & ~(huge - 1);
    char *raw = mmap(NULL, bytes + huge, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) {
        fail("mmap", -errno);
        return -errno;
    }
    char *p = (char *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
    if (madvise(p, bytes, MADV_HUGEPAGE) != 0)
        fprintf(stderr, "corio_bench memhuge: madvise: no transparent huge pages here\n");
    g_t0 = now_s(); /* the clock starts here */
    for (long i = 0; i < n; i++)
        ((volatile char *)p)[(size_t)i * 4096] = 1;
    g_wall_s = now_s() - g_t0;
    munmap(raw, bytes + huge);
    return 0;
}

/* ---- LOCK: handoff among 10,000 contending tasks ------------------------------------------ */
#define LOCK_TASKS 10000

static corio_lock g_lock;
static int g_lock_yield;       /* CORIO_BENCH_LOCK=yield: yield inside every hold */
static long g_lock_started;    /* tasks that reached their first acquire */
static long g_lock_count;      /* acquisitions so far */
static long g_lock_holder = -1;
static long g_lock_bad;        /* acquisitions that broke exclusion or FIFO order */
static char g_lock_first_bad[160];

static void lock_bad(const char *fmt, long a, long b)
{
    if (g_lock_bad++ == 0)
        snprintf(g_lock_first_bad, sizeof g_lock_first_bad, fmt, a, b);
}

static void *locker(void *arg)
{
    long id = (long)(intptr_t)arg;
    long iters = g_n / LOCK_TASKS + (id < g_n % LOCK_TASKS);
    g_lock_started++;
    for (long i = 0; i < iters; i++) {
        int rc = corio_lock_acquire(&g_lock);
        if (rc < 0)
            return corio_fail(rc);
        if (g_lock_holder != -1)
            lock_bad("task %ld got the lock while task %ld held it", id, g_lock_holder);
        else if (g_lock_count % LOCK_TASKS != id)
            lock_bad("task %ld got acquisition %ld out of FIFO order", id, g_lock_count);
        g_lock_holder = id;
        g_lock_count++;
        if (g_lock_yield)
            rc = corio_yield();
        if (g_lock_holder != id)
            lock_bad("task %ld found task %ld holding its lock", id, g_lock_holder);
        g_lock_holder = -1;
        int rrc = corio_lock_release(&g_lock);
        if (rc == 0)
            rc = rrc;
        if (rc < 0)
            return corio_fail(rc);
    }
    return NULL;
}

static int lock_bench(long n)
{
    static corio_task *t[LOCK_TASKS];
    long nt = 0;
    const char *mode = getenv("CORIO_BENCH_LOCK");
    g_lock_yield = mode && strcmp(mode, "yield") == 0;
    int rc = corio_lock_init(&g_lock);
    if (rc == 0)
        rc = corio_lock_acquire(&g_lock); /* main holds it: every task waits in line */
    if (rc < 0) {
        fail("corio_lock_init/acquire", rc);
        return rc;
    }
    while (rc == 0 && nt < LOCK_TASKS) {
        rc = corio_task_create(&t[nt], corio_coro(locker, (void *)(intptr_t)nt), NULL);
        nt += rc == 0;
    }
    if (rc < 0)
        fail("corio_task_create", rc);
    while (rc == 0 && g_lock_started < LOCK_TASKS)
        rc = corio_yield();
    if (rc < 0 && !g_failed)
        fail("corio_yield", rc);
    if (g_failed) {
        for (long i = 0; i < nt; i++)
            corio_cancel(t[i]);
    }
    g_t0 = now_s(); /* the clock starts here */
    rc = corio_lock_release(&g_lock);
    if (rc < 0 && !g_failed)
        fail("corio_lock_release", rc);
    await_all(t, nt, "a locking task");
    if (g_failed)
        return 0;
    if (g_lock_bad) {
        fprintf(stderr, "corio_bench lock: %ld bad acquisitions; the first: %s\n", g_lock_bad,
                g_lock_first_bad);
        g_failed = 1;
    } else if (g_lock_count != n) {
        fprintf(stderr, "corio_bench lock: %ld acquisitions, expected %ld\n", g_lock_count, n);
        g_failed = 1;
    }
    rc = corio_lock_destroy(&g_lock);
    if (rc < 0)
        fail("corio_lock_destroy", rc);
    return 0;
}

/* ---- main ------------------------------------------------------------------------------ */
static void *bench_main(void *arg)
{
    int (*fn)(long) = (int (*)(long))arg;
    g_t0 = now_s();
    fn(g_n);
    if (fn != mem) /* (mem times itself) */
        g_wall_s = now_s() - g_t0;
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: corio_bench w1 N [D] | w1c N [D] | w2 N | w2b N | w2c N | w3 N | w3i N | lock N | mem N | memhuge N\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4)
        usage();
    g_workload = argv[1];
    char *end;
    errno = 0;
    g_n = strtol(argv[2], &end, 10);
    if (errno || *end || end == argv[2] || g_n < 0)
        usage();
    if (argc == 4) {
        g_d = strtod(argv[3], &end);
        if (*end || end == argv[3] || !isfinite(g_d) || g_d < 0 || g_d > 9e9)
            usage();
    }
    g_d_ns = (int64_t)(g_d * 1e9 + 0.5);

    int (*fn)(long);
    static const corio_task_opts compact = {.compact = 1};
    bool is_w1 = strcmp(g_workload, "w1") == 0 || strcmp(g_workload, "w1c") == 0;
    if (is_w1) {
        fn = w1;
        g_w1_opts = strcmp(g_workload, "w1c") == 0 ? &compact : NULL;
    } else if (argc == 4)
        usage();
    else if (strcmp(g_workload, "w2") == 0)
        fn = w2;
    else if (strcmp(g_workload, "w2b") == 0)
        fn = w2b;
    else if (strcmp(g_workload, "w2c") == 0)
        fn = w2c;
    else if (strcmp(g_workload, "w3") == 0)
        fn = w3;
    else if (strcmp(g_workload, "w3i") == 0)
        fn = w3i;
    else if (strcmp(g_workload, "lock") == 0)
        fn = lock_bench;
    else if (strcmp(g_workload, "mem") == 0)
        fn = mem;
    else if (strcmp(g_workload, "memhuge") == 0)
        fn = memhuge;
    else
        usage();

    /* Every workload runs under corio_run's default loop options. Those follow CORIO_CLOCK
     * from the environment: under CORIO_CLOCK=virtual w1's sleeps take no real time. */
    const char *clk = getenv("CORIO_CLOCK");
    if (clk && *clk)
        fprintf(stderr, "corio_bench: note: CORIO_CLOCK=%s is set; unset it for real-time figures\n",
                clk);
    int rc = corio_run(corio_coro(bench_main, (void *)fn), NULL);
    if (rc < 0) {
        fail("corio_run", rc);
        return 1;
    }
    if (g_failed || g_wall_s < 0)
        return 1;

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"workload\":\"%s\",\"runtime\":\"corio\",\"n\":%ld,\"d\":%g,\"wall_s\":%.6f,"
           "\"rss_kb\":%ld,\"ns_per_op\":",
           g_workload, g_n, is_w1 ? g_d : 0.0, g_wall_s, ru.ru_maxrss);
    if (g_n > 0)
        printf("%.2f}\n", g_wall_s * 1e9 / (double)g_n);
    else
        printf("null}\n");
    return 0;
}
