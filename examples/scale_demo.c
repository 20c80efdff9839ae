/* scale_demo - 100,000 concurrent tasks that each sleep 1 s on real time.
 *
 * Usage: scale_demo [--compact] [N]   (default 100000)
 *
 * --compact makes them compact tasks (corio_task_opts.compact): they share one stack,
 * and each keeps only the few hundred bytes its frames use while it sleeps.
 *
 * The Python equivalent:
 *     async def sleeper(): await asyncio.sleep(1)
 *     async def main(): await asyncio.gather(*(asyncio.create_task(sleeper()) for _ in range(N)))
 *
 * Prints how long the whole thing took (a bit over 1 s if they really slept concurrently)
 * and the peak memory: total, and per task above what the process used before it started.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "corio.h"

static long n_tasks = 100000;
static corio_task_opts task_opts; /* .compact with --compact */
static long n_slept; /* tasks whose sleep really lasted >= 1 s */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void *sleeper(void *arg)
{
    (void)arg;
    double t0 = now_s();
    int rc = corio_sleep(1.0);
    if (rc < 0)
        return corio_fail(rc);
    if (now_s() - t0 >= 1.0)
        n_slept++;
    return NULL;
}

static void *main_coro(void *arg)
{
    (void)arg;
    corio_task **tasks = calloc((size_t)n_tasks, sizeof *tasks);
    if (!tasks)
        return corio_fail(-ENOMEM);
    long made = 0;
    int rc = 0;
    for (; made < n_tasks; made++) {
        rc = corio_task_create(&tasks[made], corio_coro(sleeper, NULL), &task_opts);
        if (rc < 0)
            break;
    }
    if (rc < 0)
        fprintf(stderr, "scale_demo: task %ld of %ld: %s\n", made + 1, n_tasks, strerror(-rc));
    int grc = corio_gather_tasks(tasks, (size_t)made, NULL);
    for (long i = 0; i < made; i++)
        corio_task_release(tasks[i]);
    free(tasks);
    if (rc == 0)
        rc = grc;
    return rc < 0 ? corio_fail(rc) : NULL;
}

int main(int argc, char **argv)
{
    int a = 1;
    if (a < argc && strcmp(argv[a], "--compact") == 0) {
        task_opts.compact = 1;
        a++;
    }
    if (a < argc) {
        char *end;
        n_tasks = strtol(argv[a], &end, 10);
        if (*end || end == argv[a] || n_tasks <= 0 || a + 1 < argc) {
            fprintf(stderr, "usage: scale_demo [--compact] [N]\n");
            return 2;
        }
    }
    long base_kb = peak_rss_kb();
    corio_loop_opts opts = {.stack_size = 0, .clock = CORIO_CLOCK_REAL};
    double t0 = now_s();
    int rc = corio_run_opts(corio_coro(main_coro, NULL), NULL, &opts);
    double took = now_s() - t0;
    long peak_kb = peak_rss_kb();
    if (rc < 0) {
        fprintf(stderr, "scale_demo: %s\n", strerror(-rc));
        return 1;
    }
    if (n_slept != n_tasks) {
        fprintf(stderr, "scale_demo: only %ld of %ld tasks slept a full second\n", n_slept,
                n_tasks);
        return 1;
    }
    double per_task_kib = (double)(peak_kb - base_kb) / (double)n_tasks;
    printf("%ld %stasks slept 1 s concurrently in %.2f s, peak RSS %.0f MiB (%.1f KiB per task)\n",
           n_tasks, task_opts.compact ? "compact " : "", took, (double)peak_kb / 1024.0,
           per_task_kib);
    return 0;
}
