/* test/test.h - the test harness: self-registering tests, asserts, helpers.
 *
 * A test is `TEST(name) { ... }` in any test file; a constructor adds it
 * to the runner's registry, so there is no list to keep by hand. The runner
 * (test/runner.c) runs each test in its own forked process with a timeout.
 * A test passes when its body returns; an ASSERT that fails prints both
 * sides with file:line and ends the process with _exit(1).
 *
 * Modelled on libuv's test/task.h and test/runner.c. */
#ifndef CORIO_TEST_H
#define CORIO_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "corio.h"

typedef void test_fn(void);

/* Registry (runner.c). timeout_s 0 = the default (60 s, scaled by the
 * environment's CORIO_TEST_TIMEOUT_SCALE). */
void test__register(const char *name, test_fn *fn, int timeout_s, const char *file, int line);

#define TEST_TIMEOUT(name, seconds)                                        \
    static void test_body_##name(void);                                    \
    __attribute__((constructor)) static void test_reg_##name(void)         \
    {                                                                      \
        test__register(#name, test_body_##name, (seconds), __FILE__,      \
                       __LINE__);                                          \
    }                                                                      \
    static void test_body_##name(void)

#define TEST(name) TEST_TIMEOUT(name, 0)

/* An I/O test: registered twice, as name@epoll and name@io_uring, each run
 * with CORIO_BACKEND set to that backend (test_backend() says which). */
void test__register_io(const char *name, test_fn *fn, int timeout_s, const char *file, int line);
const char *test_backend(void);

#define TEST_IO_TIMEOUT(name, seconds)                                     \
    static void test_body_##name(void);                                    \
    __attribute__((constructor)) static void test_reg_##name(void)         \
    {                                                                      \
        test__register_io(#name, test_body_##name, (seconds), __FILE__,   \
                          __LINE__);                                       \
    }                                                                      \
    static void test_body_##name(void)

#define TEST_IO(name) TEST_IO_TIMEOUT(name, 0)

/* ---- Asserts: print both sides, then _exit(1) ---------------------------- */
__attribute__((noreturn)) void test__fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ASSERT(cond)                                                       \
    do {                                                                   \
        if (!(cond))                                                       \
            test__fail(__FILE__, __LINE__, "ASSERT(%s) failed", #cond);    \
    } while (0)

/* The operands are stringified here, before any macro in them expands. */
#define TEST__CMP(a, op, b, as, bs)                                        \
    do {                                                                   \
        long long test__a = (long long)(a);                                \
        long long test__b = (long long)(b);                                \
        if (!(test__a op test__b))                                         \
            test__fail(__FILE__, __LINE__,                                 \
                       "assertion %s %s %s failed: %lld %s %lld", as, #op, \
                       bs, test__a, #op, test__b);                         \
    } while (0)

#define ASSERT_EQ(a, b) TEST__CMP(a, ==, b, #a, #b)
#define ASSERT_NE(a, b) TEST__CMP(a, !=, b, #a, #b)
#define ASSERT_LT(a, b) TEST__CMP(a, <, b, #a, #b)
#define ASSERT_LE(a, b) TEST__CMP(a, <=, b, #a, #b)
#define ASSERT_GT(a, b) TEST__CMP(a, >, b, #a, #b)
#define ASSERT_GE(a, b) TEST__CMP(a, >=, b, #a, #b)

#define ASSERT_PTR_EQ(a, b)                                                \
    do {                                                                   \
        const void *test__a = (const void *)(a);                           \
        const void *test__b = (const void *)(b);                           \
        if (test__a != test__b)                                            \
            test__fail(__FILE__, __LINE__,                                 \
                       "assertion %s == %s failed: %p != %p", #a, #b,      \
                       test__a, test__b);                                  \
    } while (0)

#define ASSERT_PTR_NE(a, b)                                                \
    do {                                                                   \
        const void *test__a = (const void *)(a);                           \
        const void *test__b = (const void *)(b);                           \
        if (test__a == test__b)                                            \
            test__fail(__FILE__, __LINE__,                                 \
                       "assertion %s != %s failed: both %p", #a, #b,       \
                       test__a);                                           \
    } while (0)

#define ASSERT_NULL(a) ASSERT_PTR_EQ(a, NULL)
#define ASSERT_NOT_NULL(a) ASSERT_PTR_NE(a, NULL)

#define ASSERT_STR_EQ(a, b)                                                \
    do {                                                                   \
        const char *test__a = (a);                                         \
        const char *test__b = (b);                                         \
        if (test__a == NULL || test__b == NULL || strcmp(test__a, test__b)) \
            test__fail(__FILE__, __LINE__,                                 \
                       "assertion %s == %s failed:\n  left:  \"%s\"\n"     \
                       "  right: \"%s\"",                                  \
                       #a, #b, test__a ? test__a : "(null)",               \
                       test__b ? test__b : "(null)");                      \
    } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                             \
    do {                                                                   \
        size_t test__n = (n);                                              \
        if (memcmp((a), (b), test__n))                                     \
            test__mem_fail(__FILE__, __LINE__, #a, #b, (a), (b), test__n); \
    } while (0)

__attribute__((noreturn)) void test__mem_fail(const char *file, int line, const char *an,
                                              const char *bn, const void *a, const void *b,
                                              size_t n);

/* ---- Helpers (runner.c) ---------------------------------------------------- */

/* Loop options on the virtual clock, default stack size. */
corio_loop_opts test_virtual_opts(void);

/* corio_run_opts(corio_coro(fn, arg), result, virtual clock). */
int test_run_virtual(corio_fn *fn, void *arg, void **result);

/* $CORIO_BUILD, or "build". */
const char *test_build_dir(void);

/* exec argv, behind $CORIO_TEST_EXEC_WRAPPER when set (space-separated
 * words, e.g. "qemu-aarch64-static -L /usr/aarch64-linux-gnu" for a cross
 * build run under qemu-user, which cannot exec target binaries itself).
 * Returns only on failure (errno set). */
void test_exec_wrapped(char *const argv[]);

/* Run argv[0] (a path) with argv, the environment plus envp_extra ("K=V"
 * strings, NULL-terminated; may be NULL). *out and *err (each may be NULL)
 * get malloc'd, NUL-terminated copies of its stdout and stderr, *outlen its
 * stdout length, *status its raw waitpid status. 0 or a negative errno. */
int test_exec_capture(char *const argv[], char *const envp_extra[], char **out, size_t *outlen,
                      char **err, int *status);

/* Read a whole file into a malloc'd NUL-terminated buffer. 0 or -errno. */
int test_read_file(const char *path, char **data, size_t *len);

/* 1 normally; 10 when CORIO_TEST_LIGHT=1 (sanitizers, valgrind, qemu):
 * heavy tests divide their sizes by it. */
int test_scale(void);

/* Run child(arg) in a forked process whose stderr is captured into err (NUL
 * terminated, at most cap - 1 bytes); the child's exit code is what child
 * returns. *status gets the waitpid status. 0 or -errno. */
int test_fork_stderr(int (*child)(void *), void *arg, char *err, size_t cap, int *status);

/* True when this process runs under valgrind (either way the suite uses it). */
int test_under_valgrind(void);

/* How many fds this process has open (from /proc/self/fd): leak checks. */
int test_count_fds(void);

/* Resident set size of this process in bytes (from /proc/self/statm). */
size_t test_rss_bytes(void);

/* An event trace for ordering tests: test_trace("A%d", 1) appends "A1"
 * (space separated) to a global buffer that test_trace_get returns. */
void test_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *test_trace_get(void);
void test_trace_reset(void);

#endif /* CORIO_TEST_H */
