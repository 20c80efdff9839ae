/* test/test_api_seeds.c - the seed programs (examples/seed_*) print exactly
 * their expected output on the virtual clock and exit 0. Compared with
 * examples/expected/NAME.expected and, when present, the original
 * ../shared/seed/NAME.expected (paths relative to the repository root, where
 * the runner is started). */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void compare_with(const char *name, const char *out, size_t outlen, const char *path,
                         int required)
{
    char *want = NULL;
    size_t wantlen = 0;
    int rc = test_read_file(path, &want, &wantlen);
    if (rc == -ENOENT && !required)
        return;
    if (rc < 0) {
        fprintf(stderr, "%s: cannot read %s: %s\n", name, path, strerror(-rc));
        ASSERT_EQ(rc, 0);
    }
    if (outlen != wantlen || memcmp(out, want, outlen) != 0) {
        fprintf(stderr, "%s: stdout differs from %s\n--- expected (%zu bytes)\n%s--- got (%zu bytes)\n%s---\n",
                name, path, wantlen, want, outlen, out);
        ASSERT_EQ(outlen, wantlen);
        ASSERT_MEM_EQ(out, want, outlen);
    }
    free(want);
}

static void check_seed(const char *name)
{
    char prog[4096], exp1[4096], exp2[4096];
    snprintf(prog, sizeof prog, "%s/examples/%s", test_build_dir(), name);
    snprintf(exp1, sizeof exp1, "examples/expected/%s.expected", name);
    snprintf(exp2, sizeof exp2, "../shared/seed/%s.expected", name);
    if (access(prog, X_OK) != 0) {
        fprintf(stderr, "%s: not built (%s: %s)\n", name, prog, strerror(errno));
        ASSERT(access(prog, X_OK) == 0);
    }
    char *argv[] = {prog, NULL};
    char *env[] = {"CORIO_CLOCK=virtual", NULL};
    char *out = NULL, *err = NULL;
    size_t outlen = 0;
    int status = 0;
    ASSERT_EQ(test_exec_capture(argv, env, &out, &outlen, &err, &status), 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "%s: wait status 0x%x\nstdout:\n%s\nstderr:\n%s\n", name, status, out, err);
    ASSERT(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
    compare_with(name, out, outlen, exp1, 1);
    compare_with(name, out, outlen, exp2, 0);
    free(out);
    free(err);
}

TEST(seed_process_data)
{
    check_seed("seed_process_data");
}

TEST(seed_sequential)
{
    check_seed("seed_sequential");
}

TEST(seed_concurrent)
{
    check_seed("seed_concurrent");
}

TEST(seed_coroutine_object)
{
    check_seed("seed_coroutine_object");
}
