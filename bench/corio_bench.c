/* corio_bench - corio's side of the peer benchmarks in ../shared/peers.
 *
 * Usage: corio_bench WORKLOAD N [D]
 *   w1  N [D]  N tasks each sleep D seconds (default 1) at once; main waits for all of them
 *   w2b N      N yields in all, shared between two tasks running the same loop
 *   w3  N      spawn N tasks returning 2*i, then await them all; the sum must be N*(N-1)
 *   w3i N      N times: create one task, await it, release it (nothing piles up)
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
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "corio.h"

static const char *g_workload;
static long g_n;
static double g_d = 1.0;
static int64_t g_d_ns;
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

static int w1_await(long n)
{
    corio_task **t = malloc((size_t)(n ? n : 1) * sizeof *t);
    if (!t)
        return -ENOMEM;
    for (long i = 0; i < n; i++) {
        int rc = corio_task_create(&t[i], corio_coro(sleeper, NULL), NULL);
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
        int rc = corio_spawn(corio_coro(sleeper, NULL));
        if (rc < 0) {
            fail("corio_spawn", rc);
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
        fprintf(stderr, "corio_bench w1: %ld sleepers woke before %.9f s\n", g_w1_short, g_d);
        g_failed = 1;
    }
    if (!g_failed && g_w1_done != n) {
        fprintf(stderr, "corio_bench w1: %ld of %ld sleepers finished\n", g_w1_done, n);
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

/* ---- main ------------------------------------------------------------------------------ */
static void *bench_main(void *arg)
{
    int (*fn)(long) = (int (*)(long))arg;
    double t0 = now_s();
    fn(g_n);
    g_wall_s = now_s() - t0;
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: corio_bench w1 N [D] | w2b N | w3 N | w3i N\n");
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
    if (strcmp(g_workload, "w1") == 0)
        fn = w1;
    else if (argc == 4)
        usage();
    else if (strcmp(g_workload, "w2b") == 0)
        fn = w2b;
    else if (strcmp(g_workload, "w3") == 0)
        fn = w3;
    else if (strcmp(g_workload, "w3i") == 0)
        fn = w3i;
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
           g_workload, g_n, strcmp(g_workload, "w1") == 0 ? g_d : 0.0, g_wall_s, ru.ru_maxrss);
    if (g_n > 0)
        printf("%.2f}\n", g_wall_s * 1e9 / (double)g_n);
    else
        printf("null}\n");
    return 0;
}
