/* test_io_cancel_points.c - a cancel, and an expiring timeout, at every
 * suspension of a network client in turn: connect, write, drain, read,
 * readline, readexactly, write_eof, wait_closed, and the raw calls.
 *
 * The loop's suspension hook (internal.h) counts the client task's
 * suspensions; run k cancels the client (or expires its timeout scope) at
 * its k-th one, for k = 0, 1, ... until a run where the client finishes
 * before suspension k. After every run: the client ended with success or
 * -ECANCELED (-ETIMEDOUT for the scope's end), nothing it read was wrong,
 * and no fd is left open (/proc/self/fd). Both backends (TEST_IO). */
#define _GNU_SOURCE
#include "test.h"
#include "internal.h"
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { MODE_CANCEL, MODE_TIMEOUT };

static unsigned ops_hit; /* the operations (1 << enum corio__op) interrupted, over all runs */

static struct {
    int mode;
    long target;          /* the client's suspension to interrupt */
    long seen;            /* the client's suspensions so far */
    bool fired;
    corio_task *client;
    corio_scope *scope;   /* MODE_TIMEOUT: the client's scope */
    int port;
    int client_rc;
    int scope_rc;
    bool finished;        /* the client did all its work */
} P;

static void hook(corio_loop *l, corio_task *t, corio__wait *w)
{
    (void)l, (void)w;
    if (t != P.client || P.seen++ != P.target)
        return;
    P.fired = true;
    if (w && w->io)
        ops_hit |= 1u << ((corio__io *)(void *)w)->op;
    if (P.mode == MODE_CANCEL)
        ASSERT_EQ(corio_cancel(t), 1);
    else
        ASSERT_EQ(corio_scope_reschedule(P.scope, corio_now_ns()), 0);
}

/* ---- the server: "N\n", then N bytes, echoed back; then the raw part ----------------------- */

/* well over the client's send buffer (SO_SNDBUF 32 KiB, which the kernel doubles) */
enum { BIG = 256 * 1024 };

static int echo_n_handler(corio_stream *s, void *arg)
{
    (void)arg;
    char line[32];
    ssize_t n = corio_stream_readline(s, line, sizeof line);
    if (n <= 0)
        return 0; /* the client went away (cancelled): not a server failure */
    size_t want = strtoul(line, NULL, 10);
    char *buf = malloc(want);
    ASSERT_NOT_NULL(buf);
    int rc = 0;
    if (corio_stream_readexactly(s, buf, want) == (ssize_t)want) {
        rc = corio_stream_write(s, buf, want);
        if (rc == 0)
            rc = corio_stream_drain(s);
    }
    free(buf);
    (void)rc; /* a cancelled client resets the connection: not a server failure */
    return 0;
}

/* a raw echo on a listening socket: one connection, recv/send until EOF */
static void *raw_server(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = corio_accept(lfd, NULL, NULL);
        if (fd < 0)
            return NULL; /* cancelled at the end */
        char buf[512];
        ssize_t n;
        while ((n = corio_recv(fd, buf, sizeof buf, 0)) > 0)
            if (corio_send(fd, buf, (size_t)n, 0) < 0)
                break;
        corio_close(fd);
    }
}

/* ---- the client ---------------------------------------------------------------------------- */

static uint8_t pattern_byte(size_t i)
{
    return (uint8_t)(i * 2654435761u >> 11);
}

static int stream_part(void)
{
    corio_stream *s;
    corio_stream_opts o = {.high_water = 16384};
    int rc = corio_open_connection("127.0.0.1", P.port, &s, &o);
    if (rc < 0)
        return rc;
    /* a small send buffer: writes pile up in the stream and drain suspends
     * (the receive side keeps its window, so TCP never stalls on it) */
    int sz = 32768;
    ASSERT_EQ(setsockopt(corio_stream_fd(s), SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz), 0);
    uint8_t *buf = malloc(BIG);
    ASSERT_NOT_NULL(buf);
    for (size_t i = 0; i < BIG; i++)
        buf[i] = pattern_byte(i);
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", BIG);
    rc = corio_stream_write(s, line, (size_t)n);
    for (size_t off = 0; rc == 0 && off < BIG; off += 8192) {
        rc = corio_stream_write(s, buf + off, BIG - off < 8192 ? BIG - off : 8192);
        if (rc == 0)
            rc = corio_stream_drain(s); /* suspends above 16 KiB */
    }
    if (rc == 0) {
        memset(buf, 0, BIG);
        ssize_t got = corio_stream_read(s, buf, 100); /* a plain read first */
        if (got < 0)
            rc = (int)got;
        else if (got == 0)
            rc = -EPROTO;
        if (rc == 0) {
            got = corio_stream_readexactly(s, buf + got, (size_t)(BIG - got));
            if (got < 0)
                rc = (int)got;
        }
        for (size_t i = 0; rc == 0 && i < BIG; i++)
            ASSERT_EQ(buf[i], pattern_byte(i)); /* what was read is right */
    }
    if (rc == 0)
        rc = corio_stream_write_eof(s);
    if (rc == 0) {
        ssize_t r = corio_stream_readline(s, line, sizeof line);
        rc = r == 0 ? 0 : r < 0 ? (int)r : -EPROTO; /* EOF after the echo */
    }
    free(buf);
    int wc = corio_stream_wait_closed(s); /* closes and frees whatever happened */
    return rc < 0 ? rc : wc;
}

static int raw_part(int port)
{
    int fd = corio_tcp_connect("127.0.0.1", port);
    if (fd < 0)
        return fd;
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        char msg[8] = "ping 0\n", back[8];
        msg[5] = (char)('0' + i);
        ssize_t r = corio_write(fd, msg, 7);
        if (r < 0) {
            rc = (int)r;
            break;
        }
        r = corio_recv(fd, back, 7, MSG_WAITALL);
        if (r < 0)
            rc = (int)r;
        else
            ASSERT_MEM_EQ(back, msg, 7);
    }
    corio_close(fd);
    return rc;
}

static void *client(void *arg)
{
    int raw_port = (int)(intptr_t)arg;
    corio_scope sc;
    if (P.mode == MODE_TIMEOUT) {
        ASSERT_EQ(corio_timeout_begin(&sc, 3600.0), 0);
        P.scope = &sc;
    }
    int rc = stream_part();
    if (rc == 0)
        rc = raw_part(raw_port);
    if (rc == 0)
        P.finished = true;
    if (P.mode == MODE_TIMEOUT)
        P.scope_rc = corio_scope_end(&sc);
    P.client_rc = rc;
    return rc < 0 ? corio_fail(rc) : NULL;
}

static void *cp_main(void *arg)
{
    (void)arg;
    corio_server *srv;
    ASSERT_EQ(corio_start_server(&srv, "127.0.0.1", 0, echo_n_handler, NULL, NULL), 0);
    P.port = corio_server_port(srv);
    int lfd = corio_tcp_listen("127.0.0.1", 0, 8, 0);
    ASSERT_GE(lfd, 0);
    corio_task *rs = corio_create_task(corio_coro(raw_server, (void *)(intptr_t)lfd));
    P.client = corio_create_task(corio_coro(client, (void *)(intptr_t)corio_socket_port(lfd)));
    int rc = corio_await_task(P.client, NULL);
    corio_task_release(P.client);
    P.client = NULL;
    ASSERT(rc == 0 || rc == -ECANCELED);
    corio_cancel(rs);
    corio_await_task(rs, NULL);
    corio_task_release(rs);
    corio_close(lfd);
    ASSERT_EQ(corio_server_close(srv), 0);
    ASSERT_EQ(corio_server_wait_closed(srv), 0);
    return NULL;
}

static void every_point(int mode)
{
    ops_hit = 0;
    int before = test_count_fds();
    long k;
    for (k = 0; k < 5000; k++) {
        memset(&P, 0, sizeof P);
        P.mode = mode;
        P.target = k;
        corio__suspend_hook = hook;
        int rc = corio_run(corio_coro(cp_main, NULL), NULL);
        corio__suspend_hook = NULL;
        ASSERT_EQ(rc, 0);
        ASSERT_EQ(test_count_fds(), before);
        if (!P.fired) {
            ASSERT(P.finished); /* no interruption: the client did everything */
            ASSERT_EQ(P.client_rc, 0);
            break;
        }
        ASSERT(!P.finished || P.client_rc == 0);
        ASSERT(P.client_rc == 0 || P.client_rc == -ECANCELED);
        if (mode == MODE_TIMEOUT) /* the expiry reached the body, unless the body was done */
            ASSERT(P.scope_rc == -ETIMEDOUT || (P.finished && P.scope_rc == 0));
    }
    ASSERT_LT(k, 5000);
    /* the interruptions fell on connect, a wait to send (drain) and to receive */
    ASSERT(ops_hit & (1u << CORIO__OP_CONNECT));
    ASSERT(ops_hit & (1u << CORIO__OP_POLL_OUT));
    ASSERT(ops_hit & ((1u << CORIO__OP_POLL_IN) | (1u << CORIO__OP_RECV)));
    printf("%s at each of %ld suspensions of the client\n",
           mode == MODE_CANCEL ? "cancelled" : "timed out", k);
}

TEST_IO(io_cancel_at_every_client_suspension_leaks_nothing)
{
    every_point(MODE_CANCEL);
}

TEST_IO(io_timeout_at_every_client_suspension_leaks_nothing)
{
    every_point(MODE_TIMEOUT);
}
