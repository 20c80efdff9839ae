/* test/runner.c - runs every registered test in its own process.
 *
 * Each test runs in a forked child (its own process group, so whatever it
 * starts dies with it) with a timeout; the child's stdout and stderr go to
 * one pipe that the runner reads. One line per test:
 *   ok   12 name  (3 ms)
 *   FAIL 13 name: exit code 1
 *       <captured output, indented>
 * and last `N passed, N failed` alone on a line. Exit status is non-zero if
 * a test failed or none ran.
 *
 *   corio_tests [-l] [--no-fork] [SUBSTRING...]
 *     -l         list the test names and exit
 *     --no-fork  run the selected tests in this process (for a debugger)
 *     SUBSTRING  run only the tests whose names contain one of them
 *
 * Environment: CORIO_TEST_TIMEOUT_SCALE multiplies every timeout (qemu,
 * valgrind); CORIO_TEST_LIGHT=1 makes test_scale() return 10;
 * CORIO_TEST_EXEC_WRAPPER prefixes the programs tests run (qemu-user);
 * CORIO_BUILD names the build folder (examples are found under it);
 * CORIO_VALGRIND=1 runs each test under valgrind (and implies
 * CORIO_TEST_LIGHT=1 and CORIO_TEST_TIMEOUT_SCALE=20 unless they are set).
 * Also here: the helpers declared in test.h. */
#define _GNU_SOURCE
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define TEST_DEFAULT_TIMEOUT_S 60

struct test_entry {
    const char *name;
    test_fn *fn;
    int timeout_s;
    const char *file;
    int line;
    const char *backend; /* TEST_IO: the CORIO_BACKEND it runs under */
};

static struct test_entry *tests;
static size_t ntests, captests;

void test__register(const char *name, test_fn *fn, int timeout_s, const char *file, int line)
{
    if (ntests == captests) {
        captests = captests ? captests * 2 : 64;
        tests = realloc(tests, captests * sizeof *tests);
        if (!tests) {
            fputs("test registry: out of memory\n", stderr);
            _exit(2);
        }
    }
    tests[ntests++] = (struct test_entry){name, fn, timeout_s, file, line, NULL};
}

void test__register_io(const char *name, test_fn *fn, int timeout_s, const char *file, int line)
{
    static const char *const backends[] = {"epoll", "io_uring"};
    for (int i = 0; i < 2; i++) {
        char *full;
        if (asprintf(&full, "%s@%s", name, backends[i]) < 0) {
            fputs("test registry: out of memory\n", stderr);
            _exit(2);
        }
        test__register(full, fn, timeout_s, file, line);
        tests[ntests - 1].backend = backends[i];
    }
}

const char *test_backend(void)
{
    const char *b = getenv("CORIO_BACKEND");
    return b ? b : "";
}

/* Run a test's body, under its backend for an I/O test. */
static void run_entry(const struct test_entry *t)
{
    if (t->backend)
        setenv("CORIO_BACKEND", t->backend, 1);
    t->fn();
}

/* ---- Asserts ------------------------------------------------------------ */

void test__fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    _exit(1);
}

static void hexdump(const char *label, const unsigned char *p, size_t n, size_t at)
{
    size_t from = at > 16 ? at - 16 : 0, to = at + 32 < n ? at + 32 : n;
    fprintf(stderr, "  %s[%zu..%zu):", label, from, to);
    for (size_t i = from; i < to; i++)
        fprintf(stderr, " %02x", p[i]);
    fputc('\n', stderr);
}

void test__mem_fail(const char *file, int line, const char *an, const char *bn, const void *a,
                    const void *b, size_t n)
{
    const unsigned char *pa = a, *pb = b;
    size_t at = 0;
    while (at < n && pa[at] == pb[at])
        at++;
    fflush(stdout);
    fprintf(stderr, "%s:%d: assertion memcmp(%s, %s, %zu) == 0 failed: first difference at %zu\n",
            file, line, an, bn, n, at);
    hexdump(an, pa, n, at);
    hexdump(bn, pb, n, at);
    fflush(stderr);
    _exit(1);
}

/* ---- Helpers ------------------------------------------------------------ */

corio_loop_opts test_virtual_opts(void)
{
    corio_loop_opts o;
    memset(&o, 0, sizeof o);
    o.stack_size = 0;
    o.clock = CORIO_CLOCK_VIRTUAL;
    return o;
}

int test_run_virtual(corio_fn *fn, void *arg, void **result)
{
    corio_loop_opts o = test_virtual_opts();
    return corio_run_opts(corio_coro(fn, arg), result, &o);
}

const char *test_build_dir(void)
{
    const char *b = getenv("CORIO_BUILD");
    return b && *b ? b : "build";
}

int test_scale(void)
{
    const char *l = getenv("CORIO_TEST_LIGHT");
    return l && strcmp(l, "1") == 0 ? 10 : 1;
}

size_t test_rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        test__fail(__FILE__, __LINE__, "cannot open /proc/self/statm");
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        test__fail(__FILE__, __LINE__, "cannot parse /proc/self/statm");
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static char trace_buf[65536];
static size_t trace_len;

void test_trace(const char *fmt, ...)
{
    char item[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(item, sizeof item, fmt, ap);
    va_end(ap);
    size_t n = strlen(item);
    if (trace_len + n + 2 > sizeof trace_buf)
        test__fail(__FILE__, __LINE__, "trace buffer full");
    if (trace_len)
        trace_buf[trace_len++] = ' ';
    memcpy(trace_buf + trace_len, item, n + 1);
    trace_len += n;
}

const char *test_trace_get(void)
{
    return trace_buf;
}

void test_trace_reset(void)
{
    trace_len = 0;
    trace_buf[0] = '\0';
}

/* A growable byte buffer for captured output. */
struct buf {
    char *p;
    size_t len, cap;
};

static int buf_read_fd(struct buf *b, int fd)
{
    if (b->cap - b->len < 4096) {
        size_t cap = b->cap ? b->cap * 2 : 8192;
        char *p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    ssize_t n = read(fd, b->p + b->len, b->cap - b->len - 1);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : -errno;
    b->len += (size_t)n;
    b->p[b->len] = '\0';
    return n > 0;
}

static char *buf_take(struct buf *b)
{
    if (!b->p)
        return strdup("");
    return b->p;
}

int test_read_file(const char *path, char **data, size_t *len)
{
    struct buf b = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc;
    while ((rc = buf_read_fd(&b, fd)) > 0)
        ;
    close(fd);
    if (rc < 0) {
        free(b.p);
        return rc;
    }
    *len = b.len;
    *data = buf_take(&b);
    return *data ? 0 : -ENOMEM;
}

void test_exec_wrapped(char *const argv[])
{
    const char *w = getenv("CORIO_TEST_EXEC_WRAPPER");
    if (!w || !*w) {
        execv(argv[0], argv);
        return;
    }
    char *copy = strdup(w), *words[64], *save = NULL;
    size_t n = 0;
    for (char *tok = strtok_r(copy, " \t", &save); tok && n < 32; tok = strtok_r(NULL, " \t", &save))
        words[n++] = tok;
    for (size_t i = 0; argv[i] && n < 63; i++)
        words[n++] = argv[i];
    words[n] = NULL;
    execvp(words[0], words);
}

int test_exec_capture(char *const argv[], char *const envp_extra[], char **out, size_t *outlen,
                      char **err, int *status)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(pe, O_CLOEXEC) < 0) {
        int e = -errno;
        close(po[0]);
        close(po[1]);
        return e;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int e = -errno;
        close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
        return e;
    }
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        for (size_t i = 0; envp_extra && envp_extra[i]; i++)
            putenv(envp_extra[i]);
        test_exec_wrapped(argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    struct buf bo = {0}, be = {0};
    struct pollfd pf[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = 2, rc = 0;
    while (open_fds > 0 && rc >= 0) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || !pf[i].revents)
                continue;
            int r = buf_read_fd(i == 0 ? &bo : &be, pf[i].fd);
            if (r < 0)
                rc = r;
            if (r == 0) {
                close(pf[i].fd);
                pf[i].fd = -1;
                open_fds--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (pf[i].fd >= 0)
            close(pf[i].fd);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (rc < 0) {
        free(bo.p);
        free(be.p);
        return rc;
    }
    if (status)
        *status = st;
    if (outlen)
        *outlen = bo.len;
    if (out)
        *out = buf_take(&bo);
    else
        free(bo.p);
    if (err)
        *err = buf_take(&be);
    else
        free(be.p);
    return 0;
}

/* ---- The runner ------------------------------------------------------------ */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double timeout_scale(void)
{
    const char *s = getenv("CORIO_TEST_TIMEOUT_SCALE");
    double v = s ? strtod(s, NULL) : 1.0;
    return v > 0 ? v : 1.0;
}

/* The test running now: its process group is its own, so a Ctrl-C at the
 * terminal does not reach it; the runner passes it on. */
static volatile pid_t current_child;

static void on_signal(int sig)
{
    pid_t c = current_child;
    if (c > 0)
        kill(-c, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* CORIO_VALGRIND=1: each test runs as `valgrind corio_tests --exec NAME`. */
static int use_valgrind(void)
{
    const char *v = getenv("CORIO_VALGRIND");
    return v && strcmp(v, "1") == 0;
}

int test_count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        test__fail(__FILE__, __LINE__, "opendir /proc/self/fd: %s", strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

int test_under_valgrind(void)
{
    return RUNNING_ON_VALGRIND || use_valgrind();
}

static void exec_under_valgrind(const char *name)
{
    /* The runner's own executable through /proc, which stays valid even if
     * the file is rebuilt (replaced) while the suite runs. */
    char self[64];
    snprintf(self, sizeof self, "/proc/%d/exe", (int)getppid());
    char *argv[] = {"valgrind", "-q", "--fair-sched=yes", "--error-exitcode=99", "--leak-check=full",
                    "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                    self, "--exec", (char *)name, NULL};
    execvp(argv[0], argv);
    fprintf(stderr, "exec valgrind: %s\n", strerror(errno));
    _exit(3);
}

#define OUTPUT_LIMIT ((size_t)1 << 20)

/* Read from the test's pipe: into out up to OUTPUT_LIMIT, then discard (a
 * test printing in a loop must not eat the runner's memory). 0 at EOF, 1 if
 * something (or EINTR/EAGAIN) came, negative on error. */
static int read_output(struct buf *out, int fd)
{
    if (out->len < OUTPUT_LIMIT)
        return buf_read_fd(out, fd);
    char scratch[4096];
    ssize_t n = read(fd, scratch, sizeof scratch);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : -errno;
    return n > 0;
}

/* Read what is left in the pipe without blocking on leftover writers. */
static void drain(struct buf *out, int fd)
{
    fcntl(fd, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 100000; i++) {
        errno = 0;
        if (read_output(out, fd) <= 0 || errno == EAGAIN)
            return;
    }
}

/* Run one test in a child; fills *out with its output, *reason on failure.
 * Returns 1 if it passed. */
static int run_one(const struct test_entry *t, struct buf *out, char *reason, size_t rlen)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(reason, rlen, "pipe: %s", strerror(errno));
        return 0;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(reason, rlen, "fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return 0;
    }
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        dup2(p[1], 1);
        dup2(p[1], 2);
        setvbuf(stdout, NULL, _IOLBF, 0);
        setvbuf(stderr, NULL, _IONBF, 0);
        if (use_valgrind())
            exec_under_valgrind(t->name);
        run_entry(t);
        fflush(stdout);
        exit(0);
    }
    setpgid(pid, pid); /* both sides, so the group exists before any kill */
    current_child = pid;
    close(p[1]);
    double limit = (t->timeout_s > 0 ? t->timeout_s : TEST_DEFAULT_TIMEOUT_S) * timeout_scale();
    int64_t deadline = mono_ms() + (int64_t)(limit * 1000);
    int timed_out = 0, fd_open = 1, reaped = 0, st = 0;
    while (fd_open && !reaped) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd pf = {p[0], POLLIN, 0};
        int n = poll(&pf, 1, left > 100 ? 100 : (int)left);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && read_output(out, p[0]) == 0)
            fd_open = 0;
        if (waitpid(pid, &st, WNOHANG) == pid)
            reaped = 1; /* exited, but something it started may hold the pipe */
    }
    if (timed_out) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
    }
    if (!reaped)
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
    kill(-pid, SIGKILL); /* whatever the test left behind in its group */
    current_child = 0;
    drain(out, p[0]);
    close(p[0]);
    if (timed_out) {
        snprintf(reason, rlen, "timeout after %.0f s", limit);
        return 0;
    }
    if (WIFSIGNALED(st)) {
        snprintf(reason, rlen, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
        return 0;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
        snprintf(reason, rlen, "exit code %d", WEXITSTATUS(st));
        return 0;
    }
    return 1;
}

static void print_indented(const char *s, size_t len)
{
    const char *end = s + len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        printf("    %.*s\n", (int)n, s);
        s += n + (nl != NULL);
    }
}

static int selected(const struct test_entry *t, int argc, char **argv, int first)
{
    int any = 0;
    for (int i = first; i < argc; i++) {
        if (argv[i][0] == '-')
            continue;
        any = 1;
        if (strstr(t->name, argv[i]))
            return 1;
    }
    return !any;
}

static int by_file_line(const void *a, const void *b)
{
    const struct test_entry *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int check_duplicates(void)
{
    int bad = 0;
    for (size_t i = 0; i < ntests; i++)
        for (size_t j = i + 1; j < ntests; j++)
            if (strcmp(tests[i].name, tests[j].name) == 0) {
                fprintf(stderr, "duplicate test name %s (%s:%d and %s:%d)\n", tests[i].name,
                        tests[i].file, tests[i].line, tests[j].file, tests[j].line);
                bad = 1;
            }
    return bad;
}

/* --exec NAME: run exactly that test in this process (valgrind mode). */
static int exec_one(const char *name)
{
    for (size_t i = 0; i < ntests; i++)
        if (strcmp(tests[i].name, name) == 0) {
            run_entry(&tests[i]);
            fflush(stdout);
            return 0;
        }
    fprintf(stderr, "no test named %s\n", name);
    return 2;
}

int main(int argc, char **argv)
{
    int list = 0, nofork = 0;
    if (argc == 3 && strcmp(argv[1], "--exec") == 0)
        return exec_one(argv[2]);
    if (use_valgrind()) {
        /* heavy tests shrink, timeouts grow, unless the caller said otherwise */
        setenv("CORIO_TEST_LIGHT", "1", 0);
        setenv("CORIO_TEST_TIMEOUT_SCALE", "20", 0);
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-l") == 0)
            list = 1;
        else if (strcmp(argv[i], "--no-fork") == 0)
            nofork = 1;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: %s [-l] [--no-fork] [SUBSTRING...]\n", argv[0]);
            return 2;
        }
    }
    if (ntests)
        qsort(tests, ntests, sizeof *tests, by_file_line);
    if (check_duplicates())
        return 2;
    if (list) {
        for (size_t i = 0; i < ntests; i++)
            if (selected(&tests[i], argc, argv, 1))
                printf("%s\n", tests[i].name);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    int passed = 0, failed = 0, num = 0;
    for (size_t i = 0; i < ntests; i++) {
        const struct test_entry *t = &tests[i];
        if (!selected(t, argc, argv, 1))
            continue;
        num++;
        if (nofork) {
            printf("run  %d %s\n", num, t->name);
            fflush(stdout);
            run_entry(t);
            printf("ok   %d %s\n", num, t->name);
            passed++;
            continue;
        }
        struct buf out = {0};
        char reason[256] = "";
        int64_t t0 = mono_ms();
        int ok = run_one(t, &out, reason, sizeof reason);
        int64_t ms = mono_ms() - t0;
        if (ok) {
            printf("ok   %d %s  (%lld ms)\n", num, t->name, (long long)ms);
            passed++;
        } else {
            printf("FAIL %d %s: %s  (%lld ms)\n", num, t->name, reason, (long long)ms);
            if (out.len)
                print_indented(out.p, out.len);
            if (out.len >= OUTPUT_LIMIT)
                printf("    [output cut at %zu bytes]\n", out.len);
            failed++;
        }
        fflush(stdout);
        free(out.p);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed > 0 || passed + failed == 0;
}

int test_fork_stderr(int (*child)(void *), void *arg, char *err, size_t cap, int *status)
{
    int p[2];
    if (pipe(p) < 0)
        return -errno;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int e = -errno;
        close(p[0]);
        close(p[1]);
        return e;
    }
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        _exit(child(arg));
    }
    close(p[1]);
    size_t len = 0;
    ssize_t n;
    while (len < cap - 1 && (n = read(p[0], err + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    err[len] = '\0';
    close(p[0]);
    if (waitpid(pid, status, 0) != pid)
        return -errno;
    printf("child stderr:\n%s\n", err);
    return 0;
}
