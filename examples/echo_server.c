/* echo_server - a TCP echo server: one task per connection.
 *
 * Usage: echo_server PORT [--host H] [--backend epoll|io_uring]
 *   PORT 0 lets the kernel pick one; the line printed says which:
 *     echo_server: listening on 127.0.0.1:PORT (backend io_uring)
 *   --host   the address to listen on (default 127.0.0.1; "" or "::" for every address)
 *   --backend  the loop's I/O backend (default: io_uring where the kernel allows it,
 *              or what CORIO_BACKEND=epoll|io_uring says)
 *
 * The Python equivalent (asyncio streams):
 *     async def handle(reader, writer):
 *         while data := await reader.read(16384): writer.write(data); await writer.drain()
 *     server = await asyncio.start_server(handle, "127.0.0.1", port)
 *
 * Shutdown: SIGINT and SIGTERM are blocked in every thread and read from a signalfd by the
 * main task (corio_read), so a signal is just another thing a task waits for. When one
 * comes, main cancels the acceptor, closes the listener, cancels every connection task
 * (each closes its socket on the way out: corio_recv/corio_send return -ECANCELED) and
 * waits until all have ended, then exits 0.
 *
 * No SIGPIPE handling is needed: every write is a corio_send, which adds MSG_NOSIGNAL
 * (a peer that went away gives -EPIPE or -ECONNRESET, and the connection just ends).
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

static void *echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    conn self;
    conn_enter(&self);
    char buf[16384];
    for (;;) {
        ssize_t n = corio_recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break; /* 0: the peer closed; <0: reset, or cancelled at shutdown */
        if (send_all(fd, buf, (size_t)n) < 0)
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
            int rc = corio_spawn(corio_coro(echo_conn, (void *)(intptr_t)fd));
            if (rc < 0) {
                fprintf(stderr, "echo_server: cannot start a connection task: %s\n", strerror(-rc));
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
                fprintf(stderr, "echo_server: accept: %s (pausing 50 ms)\n", strerror(-fd));
            if (corio_sleep(0.05) < 0)
                return NULL;
            break;
        case -ECONNABORTED: case -EPROTO: case -EPERM: case -EINTR:
            break; /* that one connection failed; go on */
        default:
            fprintf(stderr, "echo_server: accept: %s\n", strerror(-fd));
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
        perror("echo_server: signalfd");
        g_reported = 1;
        return corio_fail(err);
    }
    int lfd = corio_tcp_listen(g_host, g_port, 0, 0);
    if (lfd < 0) {
        fprintf(stderr, "echo_server: cannot listen on %s port %d: %s\n", g_host, g_port,
                lfd == -ENOENT ? "no such host" : strerror(-lfd));
        close(sfd);
        g_reported = 1;
        return corio_fail(lfd);
    }
    const char *host = *g_host ? g_host : "::";
    printf(strchr(host, ':') ? "echo_server: listening on [%s]:%d (backend %s)\n"
                             : "echo_server: listening on %s:%d (backend %s)\n",
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
        fprintf(stderr, "echo_server: reading the signalfd: %s\n",
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
    printf("echo_server: %s: stopped (closed %ld open connection(s); %ld served in all)\n",
           n == (ssize_t)sizeof si ? strsignal((int)si.ssi_signo) : "signalfd error", nopen,
           g_served);
    return arc < 0 && arc != -ECANCELED ? corio_fail(arc) : NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: echo_server PORT [--host H] [--backend epoll|io_uring]\n");
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
            fprintf(stderr, "echo_server: %s\n", strerror(-rc));
        return 1;
    }
    return 0;
}
