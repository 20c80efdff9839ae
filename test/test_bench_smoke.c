/* test_bench_smoke.c - corio_bench runs every workload at a small N, checks
 * its own results (sums, counts, FIFO order: it exits 1 on a wrong one) and
 * prints its JSON line. Timings are not looked at: speed belongs to
 * bench/run.sh, not to tests. */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void run_bench(const char *workload, const char *n, const char *d)
{
    char prog[4096];
    snprintf(prog, sizeof prog, "%s/bench/corio_bench", test_build_dir());
    if (access(prog, X_OK) != 0)
        test__fail(__FILE__, __LINE__, "%s is not built", prog);
    char *argv[] = {prog, (char *)workload, (char *)n, (char *)d, NULL};
    char *out = NULL, *err = NULL;
    size_t outlen = 0;
    int status;
    ASSERT_EQ(test_exec_capture(argv, NULL, &out, &outlen, &err, &status), 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "corio_bench %s %s: status 0x%x\nstdout:\n%s\nstderr:\n%s\n", workload, n,
                status, out, err);
    ASSERT(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
    char want[64];
    snprintf(want, sizeof want, "{\"workload\":\"%s\",\"runtime\":\"corio\",\"n\":%s,", workload, n);
    ASSERT(strncmp(out, want, strlen(want)) == 0);
    ASSERT_NOT_NULL(strstr(out, "\"ns_per_op\":"));
    ASSERT(out[outlen - 1] == '\n' && !strchr(out, '\n')[1]); /* one line */
    free(out);
    free(err);
}

TEST(bench_smoke_every_workload)
{
    run_bench("w1", "2000", "0.01");
    run_bench("w1c", "2000", "0.01");
    run_bench("w2", "20000", NULL);
    run_bench("w2b", "20000", NULL);
    run_bench("w2c", "20011", NULL); /* not a multiple of the 1,000 producers */
    run_bench("w3", "20000", NULL);
    run_bench("w3i", "20000", NULL);
    run_bench("lock", "20011", NULL);
    run_bench("mem", "100", NULL);
    run_bench("memhuge", "100", NULL);
}

TEST(bench_smoke_bad_usage_exits_2)
{
    char prog[4096];
    snprintf(prog, sizeof prog, "%s/bench/corio_bench", test_build_dir());
    const char *bad[][3] = {{"w9", "10", NULL}, {"w2", "-1", NULL}, {"w2", "10", "1"},
                            {"w1", "10", "x"}, {"w1c", "10", "-1"}, {"mem", "1e3", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[] = {prog, (char *)bad[i][0], (char *)bad[i][1], (char *)bad[i][2], NULL};
        char *out = NULL, *err = NULL;
        size_t outlen = 0;
        int status;
        ASSERT_EQ(test_exec_capture(argv, NULL, &out, &outlen, &err, &status), 0);
        ASSERT(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 2);
        ASSERT_EQ(outlen, 0);
        free(out);
        free(err);
    }
}
