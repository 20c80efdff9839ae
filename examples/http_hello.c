/* http_hello - the W4 server: HTTP/1.1 keep-alive "Hello, World!", one task per connection.
 *
 * Usage: http_hello PORT [--host H] [--backend epoll|io_uring]
 *   PORT 0 lets the kernel pick one; the line printed says which:
 *     http_hello: listening on 127.0.0.1:PORT (backend io_uring)
 *   --host, --backend: as for echo_server.
 *
 * Every request gets exactly the peers' response (../shared/peers: libuv's c/uv_http.c,
 * Tokio's and Go's w4), whatever it asked for:
 *     HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!
 * A request is anything up to a blank line ("\r\n\r\n"; no body is read): as in uv_http.c,
 * the connection's task counts the complete requests in what one recv brought and answers
 * them all with one send (pipelining-safe: a request split across two recvs is counted
 * once, when its end arrives).
 *
 * What keeps it fast: a 3 KiB buffer on the task's stack (no allocation per connection
 * beyond the task), TCP_NODELAY, and corio_recv/corio_send straight on the socket. A
 * single response is sent from the constant itself; several pipelined ones are copied
 * into a buffer of a helper's frame, so the stack pages it needs are touched only then.
 * Memory: an idle connection costs the stack pages its task has touched. With a 3 KiB
 * buffer the buffer and the frames below it (corio_recv down to the switch) fit one
 * page: 4 KiB per idle connection (bench/net_bench w6 measures it). With the peers'
 * 4 KiB buffer (-DHELLO_BUF_SIZE=4096) the frames spill into a second page: 8 KiB. A
 * request longer than the buffer is simply read in several pieces.
 *
 * Shutdown, as in echo_server: SIGINT or SIGTERM (read from a signalfd by the main task)
 * stops the acceptor, closes the listener, cancels every connection task (each closes
 * its socket) and waits for them; the process exits 0. SIGPIPE needs no handling: every
 * write is a corio_send (MSG_NOSIGNAL).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "corio.h"

static const char RESP[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!";
#define RESP_LEN (sizeof RESP - 1)
#ifndef HELLO_BUF_SIZE
#define HELLO_BUF_SIZE 3072 /* the read buffer, on the connection task's stack */
#endif

static const char *g_host = "127.0.0.1";
static int g_port;
static sigset_t g_signals; /* SIGINT, SIGTERM: blocked, read from a signalfd */
static int g_reported;     /* main's failure was explained already */

/* ---- the open connections: a list of their tasks, to cancel them at shutdown ---------- */
typedef struct conn {
    corio_task *task;
    struct conn *prev, *next;
} conn;

static conn *g_conns;          /* every connection task alive (each node on its task's stack) */
static long g_live, g_served;  /* connections open now; accepted in all */
static int g_stopping;
static corio_event g_all_gone; /* set when the last connection ends during shutdown */

static void conn_enter(conn *c)
{
    c->task = corio_current_task();
    c->prev = NULL;
    c->next = g_conns;
    if (g_conns)
        g_conns->prev = c;
    g_conns = c;
    g_live++;
}

static void conn_leave(conn *c, int fd)
{
    corio_close(fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        g_conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (--g_live == 0 && g_stopping)
        corio_event_set(&g_all_gone);
}

/* ---- one connection -------------------------------------------------------------------- */

/* Send all len bytes: 0, or a negative errno (-EPIPE, -ECONNRESET, -ECANCELED...). */
static int send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = corio_send(fd, p, len, 0);
        if (n < 0)
            return (int)n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* n > 1 pipelined responses, 100 per send (a 4 KiB read ends at most 1,024 requests). */
static __attribute__((noinline)) int send_many(int fd, long n)
{
    enum { PER_SEND = 100 };
    char out[PER_SEND * RESP_LEN];
    long filled = n < PER_SEND ? n : PER_SEND;
    for (long i = 0; i < filled; i++)
        memcpy(out + i * RESP_LEN, RESP, RESP_LEN);
    while (n > 0) {
        long k = n < PER_SEND ? n : PER_SEND;
        int rc = send_all(fd, out, (size_t)k * RESP_LEN);
        if (rc < 0)
            return rc;
        n -= k;
    }
    return 0;
}

/* How many requests end in buf[0..len): *m carries how much of "\r\n\r\n" has been
 * matched across calls (the same matcher as uv_http.c). */
static long count_requests(const char *buf, ssize_t len, int *m)
{
    long reqs = 0;
    int k = *m;
    for (ssize_t i = 0; i < len; i++) {
        char ch = buf[i];
        k = ch == "\r\n\r\n"[k] ? k + 1 : ch == '\r';
        if (k == 4) {
            reqs++;
            k = 0;
        }
    }
    *m = k;
    return reqs;
}

static void *http_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    conn self;
    conn_enter(&self);
    corio_set_nodelay(fd, 1);
    char buf[HELLO_BUF_SIZE];
    int m = 0;
    for (;;) {
        ssize_t n = corio_recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break; /* 0: the client closed; <0: reset, or cancelled at shutdown */
        long reqs = count_requests(buf, n, &m);
        int rc = 0;
        if (reqs == 1)
            rc = send_all(fd, RESP, RESP_LEN);
        else if (reqs > 1)
            rc = send_many(fd, reqs);
        if (rc < 0)
            break;
    }
    conn_leave(&self, fd);
    return NULL; /* a connection's end is never an error of the server */
}

/* ---- accepting --------------------------------------------------------------------------- */
static void *acceptor(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    int warned = 0;
    for (;;) {
        int fd = corio_accept(lfd, NULL, NULL);
        if (fd >= 0) {
            int rc = corio_spawn(corio_coro(http_conn, (void *)(intptr_t)fd));
            if (rc < 0) {
                fprintf(stderr, "http_hello: cannot start a connection task: %s\n", strerror(-rc));
                corio_close(fd);
            } else {
                g_served++;
            }
            continue;
        }
        switch (fd) {
        case -ECANCELED:
            return NULL;
        case -EMFILE: case -ENFILE: case -ENOBUFS: case -ENOMEM:
            /* out of fds or memory: give the open connections time to end, then retry */
            if (!warned++)
                fprintf(stderr, "http_hello: accept: %s (pausing 50 ms)\n", strerror(-fd));
            if (corio_sleep(0.05) < 0)
                return NULL;
            break;
        case -ECONNABORTED: case -EPROTO: case -EPERM: case -EINTR:
            break; /* that one connection failed; go on */
        default:
            fprintf(stderr, "http_hello: accept: %s\n", strerror(-fd));
            return corio_fail(fd);
        }
    }
}

/* ---- main: listen, accept until a signal, shut down ------------------------------------------ */
static void *main_coro(void *arg)
{
    (void)arg;
    int sfd = signalfd(-1, &g_signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        int err = -errno;
        perror("http_hello: signalfd");
        g_reported = 1;
        return corio_fail(err);
    }
    int lfd = corio_tcp_listen(g_host, g_port, 0, 0);
    if (lfd < 0) {
        fprintf(stderr, "http_hello: cannot listen on %s port %d: %s\n", g_host, g_port,
                lfd == -ENOENT ? "no such host" : strerror(-lfd));
        close(sfd);
        g_reported = 1;
        return corio_fail(lfd);
    }
    const char *host = *g_host ? g_host : "::";
    printf(strchr(host, ':') ? "http_hello: listening on [%s]:%d (backend %s)\n"
                             : "http_hello: listening on %s:%d (backend %s)\n",
           host, corio_socket_port(lfd), corio_backend());
    fflush(stdout);

    corio_event_init(&g_all_gone);
    corio_task *acc = corio_create_task(corio_coro(acceptor, (void *)(intptr_t)lfd));
    if (!acc) {
        corio_close(lfd);
        close(sfd);
        return corio_fail(-ENOMEM);
    }
    struct signalfd_siginfo si;
    ssize_t n = corio_read(sfd, &si, sizeof si); /* until SIGINT or SIGTERM */
    if (n != (ssize_t)sizeof si)
        fprintf(stderr, "http_hello: reading the signalfd: %s\n",
                n < 0 ? strerror((int)-n) : "short read");

    /* shut down: no new connections, then end the open ones */
    corio_cancel(acc);
    int arc = corio_await(acc, NULL); /* 0: it stopped; < 0: it had failed already */
    corio_task_release(acc);
    corio_close(lfd);
    corio_close(sfd);
    long nopen = g_live;
    g_stopping = 1;
    for (conn *c = g_conns; c; c = c->next)
        corio_cancel(c->task);
    if (g_live > 0)
        corio_event_wait(&g_all_gone);
    corio_event_destroy(&g_all_gone);
    printf("http_hello: %s: stopped (closed %ld open connection(s); %ld served in all)\n",
           n == (ssize_t)sizeof si ? strsignal((int)si.ssi_signo) : "signalfd error", nopen,
           g_served);
    return arc < 0 && arc != -ECANCELED ? corio_fail(arc) : NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: http_hello PORT [--host H] [--backend epoll|io_uring]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    corio_loop_opts opts = {0};
    if (argc < 2)
        usage();
    char *end;
    long port = strtol(argv[1], &end, 10);
    if (*end || end == argv[1] || port < 0 || port > 65535)
        usage();
    g_port = (int)port;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
            g_host = argv[++i];
        else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
            const char *b = argv[++i];
            if (strcmp(b, "epoll") == 0)
                opts.backend = CORIO_BACKEND_EPOLL;
            else if (strcmp(b, "io_uring") == 0)
                opts.backend = CORIO_BACKEND_IO_URING;
            else
                usage();
        } else
            usage();
    }
    /* one fd per connection: allow as many as the hard limit does */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* blocked before any thread exists (corio's worker pool inherits the mask) */
    sigemptyset(&g_signals);
    sigaddset(&g_signals, SIGINT);
    sigaddset(&g_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &g_signals, NULL);

    int rc = corio_run_opts(corio_coro(main_coro, NULL), NULL, &opts);
    if (rc < 0 && rc != -ECANCELED) {
        if (!g_reported)
            fprintf(stderr, "http_hello: %s\n", strerror(-rc));
        return 1;
    }
    return 0;
}
