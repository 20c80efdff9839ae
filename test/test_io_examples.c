/* test_io_examples.c - the network examples run end to end, on both
 * backends (CORIO_BACKEND is passed on to the program). */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static char *run_example(const char *name, char *const args[], int *status)
{
    char prog[4096];
    snprintf(prog, sizeof prog, "%s/examples/%s", test_build_dir(), name);
    if (access(prog, X_OK) != 0)
        test__fail(__FILE__, __LINE__, "%s is not built", prog);
    char *argv[8] = {prog};
    for (int i = 0; args[i] && i < 6; i++)
        argv[i + 1] = args[i];
    char *out = NULL, *err = NULL;
    size_t outlen = 0;
    ASSERT_EQ(test_exec_capture(argv, NULL, &out, &outlen, &err, status), 0);
    if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0)
        fprintf(stderr, "%s: status 0x%x\nstdout:\n%s\nstderr:\n%s\n", name, *status, out, err);
    free(err);
    return out;
}

/* The seed's lesson over real sockets: three fetches one after another take
 * three delays, as concurrent tasks about one. */
TEST_IO(example_fetcher_sequential_then_concurrent)
{
    char *args[] = {"0.1", NULL};
    int status;
    char *out = run_example("fetcher", args, &status);
    ASSERT(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
    const char *seq = strstr(out, "\nsequential: ");
    const char *conc = strstr(out, "\nconcurrent: ");
    ASSERT_NOT_NULL(seq);
    ASSERT_NOT_NULL(conc);
    double ts = atof(seq + 13), tc = atof(conc + 13);
    ASSERT(ts >= 0.3);       /* three 0.1 s answers, one after another: never less */
    ASSERT(tc >= 0.1);
    ASSERT(tc < ts - 0.1);   /* concurrency saved at least one delay */
    /* concurrent section: all three start before the first finishes */
    const char *section = strstr(out, "-- concurrent");
    ASSERT_NOT_NULL(section);
    const char *f3 = strstr(section, "Fetching data for ID 3");
    const char *d1 = strstr(section, "Finished fetching data for ID");
    ASSERT_NOT_NULL(f3);
    ASSERT_NOT_NULL(d1);
    ASSERT(f3 < d1);
    for (int id = 1; id <= 3; id++) {
        char want[96];
        snprintf(want, sizeof want, "Finished fetching data for ID %d: data for ID %d\n", id, id);
        ASSERT_NOT_NULL(strstr(section, want));
    }
    free(out);
}

TEST(example_fetcher_bad_argument)
{
    char *args[] = {"-1", NULL};
    int status;
    free(run_example("fetcher", args, &status));
    ASSERT(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 2);
}
