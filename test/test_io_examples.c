/* test_io_examples.c - the network examples run end to end, on both
 * backends (CORIO_BACKEND is passed on to the program). */
#define _GNU_SOURCE
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
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

/* ==== The servers (echo_server, http_hello) end to end ==========================
 *
 * A server runs as a child of the test (same process group, so the runner's
 * kill of the group reaches it; PR_SET_PDEATHSIG too, so it dies with the
 * test even under --no-fork), listening on 127.0.0.1 port 0: the port is
 * read from the "listening on 127.0.0.1:PORT" line on its stdout (a pipe).
 * Its stderr is the test's own (shown when the test fails), except where a
 * test captures it. The clients are plain non-blocking sockets driven by
 * poll(); every wait has a deadline (generous: a loaded 2-core machine or a
 * sanitizer build must not fail them), so a broken server fails the test
 * with a message instead of hanging it. */

/* No progress for this long fails a step (scaled like the runner's timeouts). */
#define STEP_MS 15000

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t scaled_ms(int64_t ms)
{
    const char *s = getenv("CORIO_TEST_TIMEOUT_SCALE");
    double v = s ? strtod(s, NULL) : 1.0;
    return (int64_t)(ms * (v > 0 ? v : 1.0));
}

typedef struct proc {
    char prog[4096];
    pid_t pid;           /* 0 once reaped */
    int status;          /* its waitpid status, once reaped */
    int fd[2];           /* read ends of its stdout and (if captured) stderr pipes; -1 at EOF */
    char buf[2][16384];  /* what came from them (NUL-terminated; the rest is discarded) */
    size_t len[2];
    int port;            /* from the "listening on" line */
    char backend[32];    /* likewise */
} proc;

static proc *g_server; /* the server running now, killed (and its output shown) by die() */

static void proc_kill(proc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR)
            ;
        p->pid = 0;
    }
    for (int i = 0; i < 2; i++)
        if (p->fd[i] >= 0) {
            close(p->fd[i]);
            p->fd[i] = -1;
        }
}

/* Fail the test: kill the running server first and show what it printed. */
__attribute__((noreturn, format(printf, 2, 3))) static void die_at(int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_server) {
        proc *p = g_server;
        int was_running = p->pid > 0;
        proc_kill(p);
        fprintf(stderr, "%s (%s): stdout:\n%s\n", p->prog, was_running ? "killed" : "had ended",
                p->buf[0]);
        if (p->len[1])
            fprintf(stderr, "stderr:\n%s\n", p->buf[1]);
        g_server = NULL;
    }
    test__fail(__FILE__, line, "%s", msg);
}
#define die(...) die_at(__LINE__, __VA_ARGS__)

/* Run the example `name` with args (NULL-terminated), its stdout (and its
 * stderr when capture_err) into pipes. */
static void proc_start(proc *p, const char *name, char *const args[], int capture_err)
{
    memset(p, 0, sizeof *p);
    p->fd[0] = p->fd[1] = -1;
    snprintf(p->prog, sizeof p->prog, "%s/examples/%s", test_build_dir(), name);
    if (access(p->prog, X_OK) != 0)
        test__fail(__FILE__, __LINE__, "%s is not built", p->prog);
    char *argv[16] = {p->prog};
    size_t argc = 1;
    for (size_t i = 0; args[i] && argc < 15; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    int po[2], pe[2] = {-1, -1};
    ASSERT_EQ(pipe2(po, O_CLOEXEC), 0);
    if (capture_err)
        ASSERT_EQ(pipe2(pe, O_CLOEXEC), 0);
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        /* dies with the test, whichever way the test ends */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(po[1], 1);
        if (capture_err)
            dup2(pe[1], 2);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        test_exec_wrapped(argv); /* behind $CORIO_TEST_EXEC_WRAPPER (qemu-user) */
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]);
    p->fd[0] = po[0];
    if (capture_err) {
        close(pe[1]);
        p->fd[1] = pe[0];
    }
    p->pid = pid;
}

/* Wait up to timeout_ms for its output, read what came; reap it if it ended. */
static void proc_pump(proc *p, int timeout_ms)
{
    struct pollfd pf[2];
    int map[2], n = 0;
    for (int i = 0; i < 2; i++)
        if (p->fd[i] >= 0) {
            pf[n] = (struct pollfd){p->fd[i], POLLIN, 0};
            map[n++] = i;
        }
    if (n > 0 && poll(pf, (nfds_t)n, timeout_ms) > 0) {
        for (int k = 0; k < n; k++) {
            if (!pf[k].revents)
                continue;
            int i = map[k];
            char tmp[4096];
            ssize_t r = read(p->fd[i], tmp, sizeof tmp);
            if (r < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (r <= 0) {
                close(p->fd[i]);
                p->fd[i] = -1;
                continue;
            }
            size_t room = sizeof p->buf[i] - 1 - p->len[i];
            size_t take = (size_t)r < room ? (size_t)r : room;
            memcpy(p->buf[i] + p->len[i], tmp, take);
            p->len[i] += take;
            p->buf[i][p->len[i]] = '\0';
        }
    } else if (n == 0 && timeout_ms > 0) {
        poll(NULL, 0, timeout_ms < 20 ? timeout_ms : 20);
    }
    if (p->pid > 0 && waitpid(p->pid, &p->status, WNOHANG) == p->pid)
        p->pid = 0;
}

/* Wait for it to end (within timeout_ms: after that it is killed and the test
 * fails), then read the rest of its output. */
static void proc_wait(proc *p, int64_t timeout_ms, const char *why)
{
    int64_t deadline = now_ms() + scaled_ms(timeout_ms);
    while (p->pid > 0) {
        if (now_ms() > deadline)
            die("%s did not exit within %lld ms after %s", p->prog, (long long)scaled_ms(timeout_ms),
                why);
        proc_pump(p, 50);
    }
    /* it has ended: its pipes reach EOF at once (nothing else holds them) */
    deadline = now_ms() + scaled_ms(5000);
    while ((p->fd[0] >= 0 || p->fd[1] >= 0) && now_ms() < deadline)
        proc_pump(p, 50);
    for (int i = 0; i < 2; i++)
        if (p->fd[i] >= 0) {
            close(p->fd[i]);
            p->fd[i] = -1;
        }
}

/* Start a server on 127.0.0.1 port 0 and wait for its "listening on" line. */
static void server_start(proc *p, const char *name)
{
    char *args[] = {"0", "--host", "127.0.0.1", NULL};
    proc_start(p, name, args, 0);
    g_server = p;
    char want[64];
    snprintf(want, sizeof want, "%s: listening on 127.0.0.1:", name);
    int64_t deadline = now_ms() + scaled_ms(20000);
    for (;;) {
        const char *l = strstr(p->buf[0], want);
        if (l && strchr(l, '\n')) {
            if (sscanf(l + strlen(want), "%d (backend %31[^)])", &p->port, p->backend) != 2 ||
                p->port <= 0 || p->port > 65535)
                die("cannot parse the port from \"%s\"", l);
            break;
        }
        if (p->pid == 0)
            die("%s ended before listening: status 0x%x", name, p->status);
        if (now_ms() > deadline)
            die("%s did not say it was listening within %lld ms", name,
                (long long)scaled_ms(20000));
        proc_pump(p, 100);
    }
    /* the backend the runner asked for (CORIO_BACKEND is inherited) */
    if (strcmp(test_backend(), "epoll") == 0) {
        if (strcmp(p->backend, "epoll") != 0)
            die("%s runs on %s under CORIO_BACKEND=epoll", name, p->backend);
    } else if (strcmp(p->backend, test_backend()) != 0) {
        if (strcmp(p->backend, "epoll") != 0)
            die("%s runs on backend \"%s\"", name, p->backend);
        printf("note: io_uring refused here; %s fell back to epoll\n", name);
    }
}

/* SIGTERM; it must exit 0 (within a generous deadline) and say it stopped.
 * Returns the counts of its last line through *open_at_stop and *served. */
static void server_stop(proc *p, long *open_at_stop, long *served)
{
    ASSERT_GT(p->pid, 0);
    ASSERT_EQ(kill(p->pid, SIGTERM), 0);
    proc_wait(p, 15000, "SIGTERM");
    if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0)
        die("%s after SIGTERM: status 0x%x (%s %d), not exit 0", p->prog, p->status,
            WIFSIGNALED(p->status) ? "signal" : "exit code",
            WIFSIGNALED(p->status) ? WTERMSIG(p->status) : WEXITSTATUS(p->status));
    const char *s = strstr(p->buf[0], ": stopped (closed ");
    if (!s || sscanf(s, ": stopped (closed %ld open connection(s); %ld served in all)",
                     open_at_stop, served) != 2)
        die("%s: no \"stopped\" line", p->prog);
    g_server = NULL;
}

/* ---- client side: non-blocking sockets, poll() with deadlines ---------------- */

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (errno != EINPROGRESS)
            die("connect to 127.0.0.1:%d: %s", port, strerror(errno));
        struct pollfd pf = {fd, POLLOUT, 0};
        int n;
        while ((n = poll(&pf, 1, (int)scaled_ms(STEP_MS))) < 0 && errno == EINTR)
            ;
        if (n == 0)
            die("connect to 127.0.0.1:%d: no answer in %lld ms", port,
                (long long)scaled_ms(STEP_MS));
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err)
            die("connect to 127.0.0.1:%d: %s", port, strerror(err));
    }
    return fd;
}

/* Send out[0..outlen) while receiving exactly inlen bytes into in (both at
 * once, so a server that echoes as it reads never blocks on us). Fails on
 * EOF, an error, or no progress for STEP_MS. */
static void xfer(int fd, const void *out, size_t outlen, void *in, size_t inlen, const char *what)
{
    size_t sent = 0, got = 0;
    int64_t deadline = now_ms() + scaled_ms(STEP_MS);
    while (sent < outlen || got < inlen) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            die("%s: stuck after sending %zu of %zu bytes and receiving %zu of %zu", what, sent,
                outlen, got, inlen);
        struct pollfd pf = {fd, (short)((sent < outlen ? POLLOUT : 0) | (got < inlen ? POLLIN : 0)),
                            0};
        if (poll(&pf, 1, (int)(left < 1000 ? left : 1000)) <= 0)
            continue;
        if (sent < outlen && (pf.revents & (POLLOUT | POLLERR | POLLHUP))) {
            size_t chunk = outlen - sent < 65536 ? outlen - sent : 65536;
            ssize_t n = send(fd, (const char *)out + sent, chunk, MSG_NOSIGNAL);
            if (n > 0) {
                sent += (size_t)n;
                deadline = now_ms() + scaled_ms(STEP_MS);
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                die("%s: send: %s (after %zu of %zu bytes)", what, strerror(errno), sent, outlen);
            }
        }
        if (got < inlen && (pf.revents & (POLLIN | POLLERR | POLLHUP))) {
            ssize_t n = recv(fd, (char *)in + got, inlen - got, 0);
            if (n > 0) {
                got += (size_t)n;
                deadline = now_ms() + scaled_ms(STEP_MS);
            } else if (n == 0) {
                die("%s: EOF after %zu of %zu bytes", what, got, inlen);
            } else if (errno != EAGAIN && errno != EINTR) {
                die("%s: recv: %s (after %zu of %zu bytes)", what, strerror(errno), got, inlen);
            }
        }
    }
}

static void send_all(int fd, const void *p, size_t len, const char *what)
{
    xfer(fd, p, len, NULL, 0, what);
}

/* The peer must close: EOF (no data, no reset) within STEP_MS. */
static void expect_eof(int fd, const char *what)
{
    int64_t deadline = now_ms() + scaled_ms(STEP_MS);
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            die("%s: no EOF within %lld ms", what, (long long)scaled_ms(STEP_MS));
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, (int)(left < 1000 ? left : 1000)) <= 0)
            continue;
        char c;
        ssize_t n = recv(fd, &c, 1, 0);
        if (n == 0)
            return;
        if (n > 0)
            die("%s: data (0x%02x) where EOF was expected", what, (unsigned char)c);
        if (errno != EAGAIN && errno != EINTR)
            die("%s: %s where EOF was expected", what, strerror(errno));
    }
}

/* Nothing more comes within a short while (a negative check: it cannot fail
 * for being slow). */
static void expect_quiet(int fd, int ms, const char *what)
{
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, ms) > 0) {
        char c;
        ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
        if (n > 0)
            die("%s: unexpected data (0x%02x)", what, (unsigned char)c);
        if (n == 0)
            die("%s: unexpected EOF", what);
    }
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* ---- echo_server ------------------------------------------------------------------- */

TEST_IO_TIMEOUT(example_echo_server_end_to_end, 120)
{
    proc srv;
    server_start(&srv, "echo_server");
    enum { NCLIENTS = 8, ROUNDS = 10, BIG = 384 * 1024 };
    int fds[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++)
        fds[i] = tcp_connect(srv.port);
    long connections = NCLIENTS;

    /* lines: each round every client sends before any reads (the connections
     * are served at the same time), then each reads back exactly its own */
    for (int r = 0; r < ROUNDS; r++) {
        char line[NCLIENTS][128];
        for (int i = 0; i < NCLIENTS; i++) {
            snprintf(line[i], sizeof line[i], "client %d, line %d:%.*s\n", i, r, r * 3 + i,
                     "................................................");
            send_all(fds[i], line[i], strlen(line[i]), "echo line: send");
        }
        for (int i = 0; i < NCLIENTS; i++) {
            char back[128];
            size_t len = strlen(line[i]);
            xfer(fds[i], NULL, 0, back, len, "echo line: receive");
            ASSERT_MEM_EQ(back, line[i], len);
        }
    }
    for (int i = 0; i < NCLIENTS; i++)
        expect_quiet(fds[i], 20, "echo: after the lines");

    /* a few hundred KiB of every byte value on one connection, sent while it
     * comes back (the server echoes as it reads: more than the socket buffers) */
    unsigned char *big = malloc(BIG), *back = malloc(BIG);
    ASSERT_NOT_NULL(big);
    ASSERT_NOT_NULL(back);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < BIG; i++)
        big[i] = (unsigned char)(xorshift(&seed) >> 56);
    memset(back, 0, BIG);
    xfer(fds[0], big, BIG, back, BIG, "echo: big transfer");
    ASSERT_MEM_EQ(back, big, (size_t)BIG);
    expect_quiet(fds[0], 20, "echo: after the big transfer");
    /* the other connections were not disturbed by it */
    for (int i = 1; i < NCLIENTS; i++) {
        char b[8];
        xfer(fds[i], "ping\n", 5, b, 5, "echo: ping after the big transfer");
        ASSERT_MEM_EQ(b, "ping\n", 5);
    }

    /* a client that half-closes gets its bytes back, then the server's EOF */
    int hc = tcp_connect(srv.port);
    connections++;
    char b[16];
    send_all(hc, "bye\n", 4, "echo: half-close send");
    ASSERT_EQ(shutdown(hc, SHUT_WR), 0);
    xfer(hc, NULL, 0, b, 4, "echo: half-close receive");
    ASSERT_MEM_EQ(b, "bye\n", 4);
    expect_eof(hc, "echo: after the client's half-close");
    close(hc);

    /* a connection that only connects and closes: nothing comes back */
    int quiet = tcp_connect(srv.port);
    connections++;
    ASSERT_EQ(shutdown(quiet, SHUT_WR), 0);
    expect_eof(quiet, "echo: empty connection");
    close(quiet);

    /* SIGTERM with NCLIENTS connections still open: it closes them, exits 0 */
    long open_at_stop = -1, served = -1;
    server_stop(&srv, &open_at_stop, &served);
    ASSERT_EQ(served, connections);
    ASSERT_GE(open_at_stop, NCLIENTS);
    ASSERT_LE(open_at_stop, connections);
    for (int i = 0; i < NCLIENTS; i++) {
        expect_eof(fds[i], "echo: an open connection at shutdown");
        close(fds[i]);
    }
    free(big);
    free(back);
}

/* ---- http_hello -------------------------------------------------------------------- */

static const char HELLO_BODY[] = "Hello, World!";

typedef struct hconn {
    int fd;
    int responses; /* complete ones read */
    size_t len;    /* bytes buffered, not yet a whole response */
    char buf[4096];
} hconn;

/* Take one complete response off the front of c->buf, checking it: 1 if
 * there was one, 0 if more bytes are needed. */
static int http_take(hconn *c, const char *what)
{
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) {
        if (c->len >= sizeof c->buf - 1)
            die("%s: no end of headers in %zu bytes", what, c->len);
        return 0;
    }
    size_t hlen = (size_t)(end - c->buf) + 4;
    char head[sizeof c->buf];
    memcpy(head, c->buf, hlen);
    head[hlen] = '\0';
    static const char status_line[] = "HTTP/1.1 200 OK\r\n";
    if (strncmp(head, status_line, sizeof status_line - 1) != 0)
        die("%s: bad status line in:\n%s", what, head);
    const char *cl = strcasestr(head, "\r\nContent-Length:");
    if (!cl)
        die("%s: no Content-Length in:\n%s", what, head);
    char *num_end;
    long body_len = strtol(cl + 17, &num_end, 10);
    if (body_len != 13 || strncmp(num_end, "\r\n", 2) != 0)
        die("%s: Content-Length is not 13 in:\n%s", what, head);
    if (c->len < hlen + (size_t)body_len)
        return 0;
    if (memcmp(c->buf + hlen, HELLO_BODY, 13) != 0)
        die("%s: body is \"%.13s\", not \"%s\"", what, c->buf + hlen, HELLO_BODY);
    size_t used = hlen + 13;
    memmove(c->buf, c->buf + used, c->len - used);
    c->len -= used;
    c->buf[c->len] = '\0';
    c->responses++;
    return 1;
}

/* Read what is there into c->buf; fails on EOF or an error. */
static void http_recv(hconn *c, const char *what)
{
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
    if (n > 0) {
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
    } else if (n == 0) {
        die("%s: EOF after %d response(s) (%zu bytes of another)", what, c->responses, c->len);
    } else if (errno != EAGAIN && errno != EINTR) {
        die("%s: recv: %s", what, strerror(errno));
    }
}

/* Read until c has `want` responses in all; not one byte more may be buffered. */
static void http_read(hconn *c, int want, const char *what)
{
    int64_t deadline = now_ms() + scaled_ms(STEP_MS);
    while (c->responses < want) {
        if (http_take(c, what)) {
            deadline = now_ms() + scaled_ms(STEP_MS);
            continue;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0)
            die("%s: %d of %d responses after %lld ms", what, c->responses, want,
                (long long)scaled_ms(STEP_MS));
        struct pollfd pf = {c->fd, POLLIN, 0};
        if (poll(&pf, 1, (int)(left < 1000 ? left : 1000)) > 0)
            http_recv(c, what);
    }
    if (c->len)
        die("%s: %zu bytes more than %d responses: \"%s\"", what, c->len, want, c->buf);
}

static const char GET_REQ[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

TEST_IO_TIMEOUT(example_http_hello_keep_alive, 120)
{
    proc srv;
    server_start(&srv, "http_hello");
    long connections = 0;

    /* keep-alive: three requests one after another on one connection */
    static hconn ka;
    ka.fd = tcp_connect(srv.port);
    connections++;
    static const char *const reqs[] = {
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "GET /index.html?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: corio-test\r\n"
        "Accept: */*\r\n\r\n",
        "GET /third HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n",
    };
    for (int i = 0; i < 3; i++) {
        send_all(ka.fd, reqs[i], strlen(reqs[i]), "keep-alive: send");
        http_read(&ka, i + 1, "keep-alive: response");
    }
    expect_quiet(ka.fd, 20, "keep-alive: after three responses");

    /* five requests pipelined in one write: five responses */
    static hconn pl;
    pl.fd = tcp_connect(srv.port);
    connections++;
    char five[5 * sizeof GET_REQ];
    size_t flen = 0;
    for (int i = 0; i < 5; i++) {
        memcpy(five + flen, GET_REQ, sizeof GET_REQ - 1);
        flen += sizeof GET_REQ - 1;
    }
    ASSERT_EQ(send(pl.fd, five, flen, MSG_NOSIGNAL), (ssize_t)flen);
    http_read(&pl, 5, "pipelined: responses");
    expect_quiet(pl.fd, 20, "pipelined: after five responses");
    close(pl.fd);

    /* a request split in two writes, "\r\n\r" | "\n": one response, after the end */
    static hconn sp;
    sp.fd = tcp_connect(srv.port);
    connections++;
    size_t cut = sizeof GET_REQ - 2;
    send_all(sp.fd, GET_REQ, cut, "split: first part");
    expect_quiet(sp.fd, 50, "split: before the request's end");
    send_all(sp.fd, GET_REQ + cut, 1, "split: last byte");
    http_read(&sp, 1, "split: response");
    close(sp.fd);

    /* 200 connections at once, one request each */
    enum { NCONC = 200 };
    hconn *cs = calloc(NCONC, sizeof *cs);
    ASSERT_NOT_NULL(cs);
    for (int i = 0; i < NCONC; i++) {
        cs[i].fd = tcp_connect(srv.port);
        connections++;
    }
    for (int i = 0; i < NCONC; i++)
        send_all(cs[i].fd, GET_REQ, sizeof GET_REQ - 1, "concurrent: send");
    struct pollfd pf[NCONC];
    int idx[NCONC], done = 0;
    int64_t deadline = now_ms() + scaled_ms(STEP_MS);
    while (done < NCONC) {
        int n = 0;
        for (int i = 0; i < NCONC; i++)
            if (cs[i].responses == 0) {
                pf[n] = (struct pollfd){cs[i].fd, POLLIN, 0};
                idx[n++] = i;
            }
        int64_t left = deadline - now_ms();
        if (left <= 0)
            die("concurrent: %d of %d responses after %lld ms", done, NCONC,
                (long long)scaled_ms(STEP_MS));
        if (poll(pf, (nfds_t)n, (int)(left < 1000 ? left : 1000)) <= 0)
            continue;
        for (int k = 0; k < n; k++) {
            if (!pf[k].revents)
                continue;
            hconn *c = &cs[idx[k]];
            http_recv(c, "concurrent: response");
            if (http_take(c, "concurrent: response")) {
                done++;
                deadline = now_ms() + scaled_ms(STEP_MS);
                if (c->len)
                    die("concurrent: %zu bytes after the response", c->len);
            }
        }
    }
    for (int i = 0; i < NCONC; i++) {
        ASSERT_EQ(cs[i].responses, 1);
        close(cs[i].fd);
    }
    free(cs);

    /* the keep-alive connection still answers after all that */
    send_all(ka.fd, GET_REQ, sizeof GET_REQ - 1, "keep-alive: fourth request");
    http_read(&ka, 4, "keep-alive: fourth response");

    /* SIGTERM with it still open: exit 0, and the connection is closed */
    long open_at_stop = -1, served = -1;
    server_stop(&srv, &open_at_stop, &served);
    ASSERT_EQ(served, connections);
    ASSERT_GE(open_at_stop, 1);
    ASSERT_LE(open_at_stop, connections);
    expect_eof(ka.fd, "keep-alive: open at shutdown");
    close(ka.fd);
}

/* ---- bad arguments: a clear message, a non-zero exit, no crash --------------------- */

/* Run the example with args; it must end by itself (killed and failed after
 * a deadline) with exit code != 0, something on stderr and no "listening". */
static void expect_refused(const char *name, char *const args[], const char *want_in_err,
                           const char *desc)
{
    static proc p;
    proc_start(&p, name, args, 1);
    g_server = &p;
    proc_wait(&p, 15000, desc);
    g_server = NULL;
    if (!WIFEXITED(p.status))
        test__fail(__FILE__, __LINE__, "%s %s: did not exit (status 0x%x, signal %d)\nstderr:\n%s",
                   name, desc, p.status, WIFSIGNALED(p.status) ? WTERMSIG(p.status) : 0,
                   p.buf[1]);
    if (WEXITSTATUS(p.status) == 0 || WEXITSTATUS(p.status) == 127)
        test__fail(__FILE__, __LINE__, "%s %s: exit code %d\nstdout:\n%s\nstderr:\n%s", name,
                   desc, WEXITSTATUS(p.status), p.buf[0], p.buf[1]);
    if (p.len[1] == 0)
        test__fail(__FILE__, __LINE__, "%s %s: exit code %d and nothing on stderr", name, desc,
                   WEXITSTATUS(p.status));
    if (want_in_err && !strstr(p.buf[1], want_in_err))
        test__fail(__FILE__, __LINE__, "%s %s: stderr does not say \"%s\":\n%s", name, desc,
                   want_in_err, p.buf[1]);
    if (strstr(p.buf[0], "listening"))
        test__fail(__FILE__, __LINE__, "%s %s: it listened:\n%s", name, desc, p.buf[0]);
}

TEST_TIMEOUT(example_servers_bad_arguments, 120)
{
    static const char *const servers[] = {"echo_server", "http_hello"};
    /* --host 127.0.0.1 after the bad port: were one taken, it would stay local */
    static const char *const bad_ports[] = {"-1", "70000", "abc", "", "80x", "65536"};
    for (int s = 0; s < 2; s++) {
        const char *name = servers[s];
        char *none[] = {NULL};
        expect_refused(name, none, "usage", "with no argument");
        for (size_t i = 0; i < sizeof bad_ports / sizeof *bad_ports; i++) {
            char *args[] = {(char *)bad_ports[i], "--host", "127.0.0.1", NULL};
            char desc[64];
            snprintf(desc, sizeof desc, "with port \"%s\"", bad_ports[i]);
            expect_refused(name, args, "usage", desc);
        }
        char *bad_backend[] = {"0", "--host", "127.0.0.1", "--backend", "nope", NULL};
        expect_refused(name, bad_backend, "usage", "with --backend nope");
        char *no_value[] = {"0", "--host", NULL};
        expect_refused(name, no_value, "usage", "with --host and no value");

        /* a port that is taken: it says it cannot listen, exits non-zero */
        int blocker = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_GE(blocker, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(bind(blocker, (struct sockaddr *)&sa, sizeof sa), 0);
        ASSERT_EQ(listen(blocker, 1), 0);
        socklen_t salen = sizeof sa;
        ASSERT_EQ(getsockname(blocker, (struct sockaddr *)&sa, &salen), 0);
        char port[16];
        snprintf(port, sizeof port, "%d", ntohs(sa.sin_port));
        char *taken[] = {port, "--host", "127.0.0.1", NULL};
        expect_refused(name, taken, "cannot listen", "with a port in use");
        close(blocker);
    }
}
