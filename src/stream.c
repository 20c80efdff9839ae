/* stream.c - asyncio-style streams (StreamReader + StreamWriter in one object)
 * and stream servers (asyncio.start_server), on top of the public fd calls.
 *
 * No operation leaves the kernel holding a pointer into a stream buffer while
 * a task waits: the stream waits for readiness (corio_wait_readable /
 * corio_wait_writable) and then calls recv/send with MSG_DONTWAIT itself. So
 * buffers can be freed, shrunk or moved at any time (an idle connection keeps
 * none), and a cancelled wait has nothing to give back.
 *
 * Reading: rbuf holds received bytes not yet read, at rbuf[rpos, rpos+rlen).
 * It exists only while it holds something (or during a receive), grows
 * geometrically up to limit + CHUNK for a line being assembled, and is freed
 * (or shrunk to its leftovers) before the reader waits for more.
 *
 * Writing: write sends at once when nothing is buffered; what the socket does
 * not take goes to wbuf, and a flusher task (started on demand, ended when the
 * buffer is empty) sends it in the background, as asyncio's transport does.
 * Invariant: wlen > 0 implies a live flusher or a sticky error. drain sends
 * too while it waits (both use non-blocking sends from the head of the one
 * buffer, between which no task switch happens, so order is kept). */
#define _GNU_SOURCE
#include "corio.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK CORIO_STREAM_CHUNK
#define DEFAULT_HIGH ((size_t)64 * 1024)

struct corio_stream {
    int fd;
    bool eof;           /* the peer's EOF has been seen */
    bool drained;       /* the last receive was short: the socket is empty for now */
    bool closing;       /* close() called */
    bool reading;       /* a task is inside a read call */
    bool eof_pending;   /* write_eof called with data still buffered */
    bool eof_sent;      /* write_eof called (SHUT_WR done or pending) */
    bool finished;      /* server streams: wait_closed done, the struct awaits its task's end */
    int busy;           /* tasks inside read or drain calls */
    int rerr;           /* sticky receive error */
    int werr;           /* sticky send error */
    size_t limit, high, low;
    char *rbuf;
    size_t rcap, rpos, rlen;
    char *wbuf;
    size_t wcap, wpos, wlen;
    corio_task *flusher; /* the handle (ours), kept until the next flusher or wait_closed */
    /* a server's connection */
    corio_server *srv;
    corio_stream *prev, *next;
    corio_task *task;
};

/* Test hook: the read buffer's allocated size. */
size_t corio__stream_rbuf_capacity(const corio_stream *s);
size_t corio__stream_rbuf_capacity(const corio_stream *s)
{
    return s ? s->rcap : 0;
}

/* ---- making one ------------------------------------------------------------------------ */

static int opts_resolve(const corio_stream_opts *o, size_t *limit, size_t *high, size_t *low)
{
    *limit = o && o->limit ? o->limit : CORIO_STREAM_LIMIT_DEFAULT;
    *high = o && o->high_water ? o->high_water : DEFAULT_HIGH;
    *low = o && o->low_water ? o->low_water : *high / 4;
    if (*low > *high || *limit > SSIZE_MAX / 2)
        return -EINVAL;
    return 0;
}

static int stream_new(int fd, const corio_stream_opts *opts, corio_stream **out)
{
    size_t limit, high, low;
    int rc = opts_resolve(opts, &limit, &high, &low);
    if (rc < 0)
        return rc;
    corio_stream *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->fd = fd;
    s->limit = limit;
    s->high = high;
    s->low = low;
    *out = s;
    return 0;
}

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* best effort, as asyncio */
}

int corio_stream_from_fd(int fd, corio_stream **out, const corio_stream_opts *opts)
{
    if (!out)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    int type = 0, domain = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return -errno;
    if (type != SOCK_STREAM)
        return -EINVAL;
    len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
        (domain == AF_INET || domain == AF_INET6))
        set_nodelay(fd);
    return stream_new(fd, opts, out);
}

int corio_open_connection(const char *host, int port, corio_stream **out,
                          const corio_stream_opts *opts)
{
    size_t a, b, c;
    if (!out || opts_resolve(opts, &a, &b, &c) < 0)
        return -EINVAL;
    int fd = corio_tcp_connect(host, port);
    if (fd < 0)
        return fd;
    set_nodelay(fd);
    int rc = stream_new(fd, opts, out);
    if (rc < 0)
        corio_close(fd);
    return rc;
}

int corio_open_unix_connection(const char *path, corio_stream **out,
                               const corio_stream_opts *opts)
{
    size_t a, b, c;
    if (!out || opts_resolve(opts, &a, &b, &c) < 0)
        return -EINVAL;
    int fd = corio_unix_connect(path, SOCK_STREAM);
    if (fd < 0)
        return fd;
    int rc = stream_new(fd, opts, out);
    if (rc < 0)
        corio_close(fd);
    return rc;
}

int corio_stream_fd(const corio_stream *s)
{
    return s ? s->fd : -EINVAL;
}

/* ---- the read buffer ---------------------------------------------------------------------- */

static void rbuf_free(corio_stream *s)
{
    free(s->rbuf);
    s->rbuf = NULL;
    s->rcap = s->rpos = s->rlen = 0;
}

static void consume(corio_stream *s, size_t n)
{
    s->rpos += n;
    s->rlen -= n;
    if (s->rlen == 0)
        rbuf_free(s);
}

static void compact(corio_stream *s)
{
    if (s->rpos) {
        memmove(s->rbuf, s->rbuf + s->rpos, s->rlen);
        s->rpos = 0;
    }
}

/* Before the reader waits: keep only the leftovers. Small leftovers are
 * shrunk to size (a cheap copy); large ones only when the buffer is mostly
 * slack, so a line trickling in byte by byte is not copied over and over. */
static void rbuf_tidy(corio_stream *s)
{
    if (s->rlen == 0) {
        rbuf_free(s);
        return;
    }
    if (s->rcap == s->rlen || (s->rlen > CHUNK / 4 && s->rcap <= 2 * s->rlen + CHUNK))
        return;
    compact(s);
    char *nb = realloc(s->rbuf, s->rlen);
    if (nb) {
        s->rbuf = nb;
        s->rcap = s->rlen;
    }
}

/* Room to receive into at the end of rbuf (at most limit + CHUNK in all):
 * its size, or -ENOMEM, or -EMSGSIZE when full (cannot happen for callers,
 * who only receive while rlen < limit). */
static ssize_t rbuf_room(corio_stream *s)
{
    size_t max = s->limit + CHUNK;
    size_t room = s->rcap - s->rpos - s->rlen;
    if (room >= CHUNK || (room && s->rcap >= max))
        return (ssize_t)room;
    if (s->rpos && s->rcap - s->rlen >= CHUNK) {
        compact(s);
        return (ssize_t)(s->rcap - s->rlen);
    }
    size_t want = s->rcap * 2;
    if (want < s->rlen + CHUNK)
        want = s->rlen + CHUNK;
    if (want > max)
        want = max;
    if (want <= s->rcap) {
        compact(s);
        room = s->rcap - s->rlen;
        return room ? (ssize_t)room : -EMSGSIZE;
    }
    char *nb = malloc(want);
    if (!nb)
        return room ? (ssize_t)room : -ENOMEM;
    if (s->rlen)
        memcpy(nb, s->rbuf + s->rpos, s->rlen);
    free(s->rbuf);
    s->rbuf = nb;
    s->rcap = want;
    s->rpos = 0;
    return (ssize_t)(want - s->rlen);
}

/* Put bytes back at the end of the buffer (readexactly's all-or-nothing). */
static int rbuf_append(corio_stream *s, const void *p, size_t n)
{
    if (!n)
        return 0;
    if (s->rcap - s->rpos - s->rlen < n) {
        compact(s);
        if (s->rcap - s->rlen < n) {
            char *nb = realloc(s->rbuf, s->rlen + n);
            if (!nb)
                return -ENOMEM;
            s->rbuf = nb;
            s->rcap = s->rlen + n;
        }
    }
    memcpy(s->rbuf + s->rpos + s->rlen, p, n);
    s->rlen += n;
    return 0;
}

/* ---- receiving ------------------------------------------------------------------------------ */

/* One receive, waiting for data if need be: into dst (n bytes), or with dst
 * NULL into the read buffer. >0 bytes, 0 at EOF (or once closing), <0: a
 * receive error (sticky), -ECANCELED, -EBADF, -ENOMEM. */
static ssize_t recv_some(corio_stream *s, char *dst, size_t n)
{
    for (;;) {
        if (s->closing)
            return 0;
        if (s->drained) {
            /* a short receive emptied the socket: wait first, instead of a
             * receive that would only say EAGAIN */
            s->drained = false;
            rbuf_tidy(s);
            int rc = corio_wait_readable(s->fd);
            if (rc < 0)
                return rc;
            continue;
        }
        char *to = dst;
        if (!dst) {
            ssize_t room = rbuf_room(s);
            if (room < 0)
                return room;
            to = s->rbuf + s->rpos + s->rlen;
            n = (size_t)room;
        }
        ssize_t r = recv(s->fd, to, n, MSG_DONTWAIT);
        if (r > 0) {
            s->drained = (size_t)r < n;
            if (!dst)
                s->rlen += (size_t)r;
            return r;
        }
        if (r == 0) {
            s->eof = true;
            if (!dst)
                rbuf_tidy(s);
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            s->rerr = -errno;
            rbuf_tidy(s);
            return s->rerr;
        }
        rbuf_tidy(s); /* idle: keep only what is still unread */
        int rc = corio_wait_readable(s->fd);
        if (rc < 0)
            return rc;
    }
}

static int reader_enter(corio_stream *s)
{
    if (!s)
        return -EINVAL;
    if (!corio_current_task())
        return -EPERM;
    if (s->finished)
        return -EBADF;
    if (s->reading)
        return -EBUSY;
    s->reading = true;
    s->busy++;
    return 0;
}

static void reader_leave(corio_stream *s)
{
    s->reading = false;
    s->busy--;
}

static bool at_end(const corio_stream *s)
{
    return s->eof || s->closing;
}

ssize_t corio_stream_read(corio_stream *s, void *buf, size_t n)
{
    if (!buf && n)
        return -EINVAL;
    int rc = reader_enter(s);
    if (rc < 0)
        return rc;
    if (n > SSIZE_MAX)
        n = SSIZE_MAX;
    ssize_t ret = 0;
    if (n == 0) {
        ret = 0;
    } else if (s->rlen == 0 && !at_end(s) && s->rerr) {
        ret = s->rerr;
    } else if (s->rlen == 0 && !at_end(s) && n >= CHUNK) {
        ret = recv_some(s, buf, n); /* big reads skip the buffer */
    } else {
        if (s->rlen == 0 && !at_end(s)) {
            ret = recv_some(s, NULL, 0);
        }
        if (ret >= 0 && s->rlen) {
            size_t k = n < s->rlen ? n : s->rlen;
            memcpy(buf, s->rbuf + s->rpos, k);
            consume(s, k);
            ret = (ssize_t)k;
        }
    }
    reader_leave(s);
    return ret;
}

ssize_t corio_stream_readexactly(corio_stream *s, void *buf, size_t n)
{
    if ((!buf && n) || n > SSIZE_MAX)
        return -EINVAL;
    int rc = reader_enter(s);
    if (rc < 0)
        return rc;
    ssize_t ret = 0;
    if (n < CHUNK) {
        /* small: assemble it in the buffer, consume it whole or not at all */
        while (s->rlen < n) {
            if (at_end(s)) {
                ret = s->rlen ? -ENODATA : 0;
                break;
            }
            if (s->rerr) {
                ret = s->rerr;
                break;
            }
            ssize_t r = recv_some(s, NULL, 0);
            if (r < 0) {
                ret = r;
                break;
            }
        }
        if (s->rlen >= n) {
            if (n)
                memcpy(buf, s->rbuf + s->rpos, n);
            consume(s, n);
            ret = (ssize_t)n;
        }
        reader_leave(s);
        return ret;
    }
    /* large: what is buffered, then straight from the socket into buf */
    size_t take = s->rlen < n ? s->rlen : n;
    if (take)
        memcpy(buf, s->rbuf + s->rpos, take);
    size_t got = take;
    while (got < n) {
        ssize_t r;
        if (at_end(s))
            r = 0;
        else if (s->rerr)
            r = s->rerr;
        else
            r = recv_some(s, (char *)buf + got, n - got);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        /* fell short: keep every byte taken, as if nothing was read */
        ret = r == 0 ? (got ? -ENODATA : 0) : r;
        if (rbuf_append(s, (char *)buf + take, got - take) < 0)
            ret = -ENOMEM;
        reader_leave(s);
        return ret;
    }
    consume(s, take);
    reader_leave(s);
    return (ssize_t)n;
}

static ssize_t read_until(corio_stream *s, const void *sep, size_t seplen, void *buf, size_t cap,
                          bool line)
{
    if (!sep || seplen == 0 || (!buf && cap))
        return -EINVAL;
    int rc = reader_enter(s);
    if (rc < 0)
        return rc;
    if (seplen > s->limit) {
        reader_leave(s);
        return -EINVAL;
    }
    if (cap > SSIZE_MAX)
        cap = SSIZE_MAX;
    size_t scanned = 0; /* bytes already searched without a match */
    ssize_t ret;
    for (;;) {
        if (s->rlen >= seplen) {
            size_t from = scanned >= seplen - 1 ? scanned - (seplen - 1) : 0;
            const char *base = s->rbuf + s->rpos;
            const char *hit = seplen == 1 ? memchr(base + from, *(const char *)sep, s->rlen - from)
                                          : memmem(base + from, s->rlen - from, sep, seplen);
            if (hit) {
                size_t end = (size_t)(hit - base) + seplen;
                if (end > s->limit) {
                    ret = -EMSGSIZE;
                } else if (end > cap) {
                    ret = -ENOBUFS;
                } else {
                    memcpy(buf, base, end);
                    consume(s, end);
                    ret = (ssize_t)end;
                }
                break;
            }
            scanned = s->rlen;
        }
        if (s->rlen >= s->limit) {
            ret = -EMSGSIZE;
            break;
        }
        if (at_end(s)) {
            if (s->rlen == 0) {
                ret = 0;
            } else if (!line) {
                ret = -ENODATA;
            } else if (s->rlen > cap) {
                ret = -ENOBUFS;
            } else {
                ret = (ssize_t)s->rlen;
                memcpy(buf, s->rbuf + s->rpos, s->rlen);
                consume(s, s->rlen);
            }
            break;
        }
        if (s->rlen >= cap) {
            ret = -ENOBUFS;
            break;
        }
        if (s->rerr) {
            ret = s->rerr;
            break;
        }
        ssize_t r = recv_some(s, NULL, 0);
        if (r < 0) {
            ret = r;
            break;
        }
    }
    reader_leave(s);
    return ret;
}

ssize_t corio_stream_readline(corio_stream *s, void *buf, size_t cap)
{
    return read_until(s, "\n", 1, buf, cap, true);
}

ssize_t corio_stream_readuntil(corio_stream *s, const void *sep, size_t seplen, void *buf,
                               size_t cap)
{
    return read_until(s, sep, seplen, buf, cap, false);
}

int corio_stream_at_eof(const corio_stream *s)
{
    if (!s)
        return -EINVAL;
    return at_end(s) && s->rlen == 0;
}

size_t corio_stream_read_buffered(const corio_stream *s)
{
    return s ? s->rlen : 0;
}

/* ---- writing --------------------------------------------------------------------------------- */

static void wbuf_free(corio_stream *s)
{
    free(s->wbuf);
    s->wbuf = NULL;
    s->wcap = s->wpos = s->wlen = 0;
}

/* The first send error sticks; what was buffered can never go out. */
static int write_fail(corio_stream *s, int err)
{
    if (!s->werr)
        s->werr = err;
    wbuf_free(s);
    s->eof_pending = false;
    return s->werr;
}

static void do_shutdown(corio_stream *s)
{
    s->eof_pending = false;
    if (shutdown(s->fd, SHUT_WR) < 0 && errno != ENOTCONN)
        write_fail(s, -errno);
}

/* Send what the socket takes now, without waiting. */
static void flush_now(corio_stream *s)
{
    while (s->wlen) {
        ssize_t r = send(s->fd, s->wbuf + s->wpos, s->wlen, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r > 0) {
            s->wpos += (size_t)r;
            s->wlen -= (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        write_fail(s, r < 0 ? -errno : -EIO);
        return;
    }
    wbuf_free(s);
    if (s->eof_pending)
        do_shutdown(s);
}

static void *flusher_main(void *arg)
{
    corio_stream *s = arg;
    for (;;) {
        flush_now(s);
        if (!s->wlen || s->werr)
            break;
        int rc = corio_wait_writable(s->fd);
        if (rc < 0) {
            write_fail(s, rc); /* cancelled by wait_closed or the loop's close */
            break;
        }
    }
    return NULL;
}

static bool flusher_alive(const corio_stream *s)
{
    return s->flusher && !corio_task_done(s->flusher);
}

static int flusher_start(corio_stream *s)
{
    if (flusher_alive(s))
        return 0;
    if (s->flusher) {
        corio_task_release(s->flusher);
        s->flusher = NULL;
    }
    return corio_task_create(&s->flusher, corio_coro(flusher_main, s), NULL);
}

static int wbuf_append(corio_stream *s, const char *p, size_t n)
{
    if (n > SIZE_MAX / 2 - s->wlen)
        return -ENOMEM;
    size_t need = s->wlen + n;
    if (s->wcap - s->wpos - s->wlen < n) {
        if (s->wcap >= need) {
            memmove(s->wbuf, s->wbuf + s->wpos, s->wlen);
        } else {
            size_t ncap = s->wcap * 2;
            if (ncap < need)
                ncap = need;
            if (ncap < CHUNK)
                ncap = CHUNK;
            char *nb = malloc(ncap);
            if (!nb)
                return -ENOMEM;
            if (s->wlen)
                memcpy(nb, s->wbuf + s->wpos, s->wlen);
            free(s->wbuf);
            s->wbuf = nb;
            s->wcap = ncap;
        }
        s->wpos = 0;
    }
    memcpy(s->wbuf + s->wpos + s->wlen, p, n);
    s->wlen += n;
    return 0;
}

int corio_stream_write(corio_stream *s, const void *buf, size_t n)
{
    if (!s || (!buf && n))
        return -EINVAL;
    if (s->werr)
        return s->werr;
    if (s->closing || s->eof_sent || s->finished)
        return -EPIPE;
    if (n == 0)
        return 0;
    const char *p = buf;
    size_t off = 0;
    if (s->wlen == 0) {
        while (off < n) {
            ssize_t r = send(s->fd, p + off, n - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (r > 0) {
                off += (size_t)r;
                continue;
            }
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            return write_fail(s, r < 0 ? -errno : -EIO);
        }
        if (off == n)
            return 0;
    }
    /* the rest waits for the flusher; a failure after part went out breaks the stream */
    int rc = flusher_start(s);
    if (rc == 0)
        rc = wbuf_append(s, p + off, n - off);
    if (rc < 0)
        return off ? write_fail(s, rc) : rc;
    return 0;
}

int corio_stream_drain(corio_stream *s)
{
    if (!s)
        return -EINVAL;
    if (!corio_current_task())
        return -EPERM;
    if (s->werr)
        return s->werr;
    if (s->finished)
        return -EPIPE;
    if (s->wlen <= s->high)
        return 0;
    s->busy++;
    int rc = 0;
    for (;;) {
        flush_now(s);
        if (s->werr) {
            rc = s->werr;
            break;
        }
        if (s->wlen <= s->low)
            break;
        rc = corio_wait_writable(s->fd);
        if (rc < 0)
            break;
    }
    s->busy--;
    return rc;
}

int corio_stream_write_eof(corio_stream *s)
{
    if (!s)
        return -EINVAL;
    if (s->werr)
        return s->werr;
    if (s->closing || s->finished)
        return -EPIPE;
    if (s->eof_sent)
        return 0;
    s->eof_sent = true;
    if (s->wlen) {
        s->eof_pending = true; /* the flusher shuts it once the buffer is empty */
        return 0;
    }
    do_shutdown(s);
    return s->werr;
}

size_t corio_stream_write_buffered(const corio_stream *s)
{
    return s ? s->wlen : 0;
}

/* ---- closing --------------------------------------------------------------------------------- */

int corio_stream_close(corio_stream *s)
{
    if (!s)
        return -EINVAL;
    s->closing = true;
    return 0;
}

int corio_stream_is_closing(const corio_stream *s)
{
    if (!s)
        return -EINVAL;
    return s->closing;
}

/* Let the flusher send what is buffered (as long as the caller may wait),
 * stop it, close the fd, free the buffers. The caller is in a task and
 * nobody else is inside a call on the stream. */
static int stream_finish(corio_stream *s)
{
    s->closing = true;
    int rc = 0;
    if (s->flusher) {
        if (flusher_alive(s) && s->wlen) {
            rc = corio_await_task(s->flusher, NULL);
            if (rc != -ECANCELED)
                rc = 0;
        }
        if (flusher_alive(s)) {
            /* out of time (or idle, waiting on a full socket with nothing to
             * send): stop it and wait until it has let go of the stream */
            corio_cancel(s->flusher);
            corio_scope shield;
            corio_shield_begin(&shield);
            corio_await_task(s->flusher, NULL);
            corio_scope_end(&shield);
        }
        corio_task_release(s->flusher);
        s->flusher = NULL;
    }
    if (rc == 0 && s->werr)
        rc = s->werr;
    corio_close(s->fd);
    s->fd = -1;
    rbuf_free(s);
    wbuf_free(s);
    s->finished = true;
    return rc;
}

int corio_stream_wait_closed(corio_stream *s)
{
    if (!s)
        return -EINVAL;
    if (!corio_current_task())
        return -EPERM;
    s->closing = true;
    if (s->busy)
        return -EBUSY;
    if (s->finished)
        return 0; /* a server's stream, closed already by its handler */
    int rc = stream_finish(s);
    if (!s->srv)
        free(s); /* a server's stream is freed when its connection task ends */
    return rc;
}

/* ---- servers ---------------------------------------------------------------------------------- */

struct corio_server {
    int lfd;
    int port;                 /* TCP port, or -EAFNOSUPPORT */
    bool closing;
    int forever;              /* tasks in serve_forever */
    corio_stream_handler *fn;
    void *arg;
    corio_stream_opts sopts;
    corio_task_opts topts;
    bool tcp;
    corio_task *acceptor;
    corio_stream *conns;      /* live connections (their tasks not yet reaped) */
    long nconns;
    corio_event changed;      /* closing, a connection gone, a serve_forever left */
    char *path;               /* Unix: the socket file, removed on close if still ours */
    dev_t dev;
    ino_t ino;
};

static void peer_name(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    snprintf(out, cap, "fd %d", fd);
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(out, cap, "%s:%d", host, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(out, cap, "[%s]:%d", host, ntohs(a->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        snprintf(out, cap, "unix peer (fd %d)", fd);
    }
}

struct handler_call {
    corio_stream_handler *fn;
    corio_stream *s;
    void *arg;
    int rc;
};

static void *handler_tramp(void *p)
{
    struct handler_call *c = p;
    c->rc = c->fn(c->s, c->arg);
    return NULL;
}

/* A connection task: the handler, then close the stream if it did not. */
static void *conn_main(void *arg)
{
    corio_stream *s = arg;
    corio_server *srv = s->srv;
    struct handler_call c = {srv->fn, s, srv->arg, 0};
    int st = corio_await_coro(corio_coro(handler_tramp, &c), NULL); /* catches corio_fail */
    int rc = c.rc < 0 ? c.rc : st;
    if (rc < 0 && rc != -ECANCELED) {
        char peer[80];
        peer_name(s->fd, peer, sizeof peer);
        fprintf(stderr, "corio: stream handler for %s failed: %s (%d); the server goes on\n",
                peer, strerror(-rc), rc);
    }
    if (!s->finished)
        stream_finish(s);
    return NULL;
}

/* A connection task has ended (run or not): unlink and free its stream. Runs
 * outside any task, at the loop's next turn. */
static void conn_done(corio_task *t, void *arg)
{
    corio_stream *s = arg;
    corio_server *srv = s->srv;
    if (!s->finished) { /* cancelled before it ever ran */
        corio_close(s->fd);
        rbuf_free(s);
        wbuf_free(s);
    }
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->conns = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->nconns--;
    corio_task_release(t);
    free(s);
    corio_event_set(&srv->changed);
}

/* A new connection: its stream and task. 0, or -errno (fd closed). */
static int conn_start(corio_server *srv, int fd)
{
    corio_stream *s;
    int rc = stream_new(fd, &srv->sopts, &s);
    if (rc < 0) {
        corio_close(fd);
        return rc;
    }
    if (srv->tcp)
        set_nodelay(fd);
    s->srv = srv;
    rc = corio_task_create(&s->task, corio_coro(conn_main, s), &srv->topts);
    if (rc == 0) {
        rc = corio_task_add_done_callback(s->task, conn_done, s);
        if (rc < 0) {
            corio_cancel(s->task); /* not started yet: it never runs */
            corio_task_release(s->task);
        }
    }
    if (rc < 0) {
        corio_close(fd);
        free(s);
        return rc;
    }
    s->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = s;
    srv->conns = s;
    srv->nconns++;
    return 0;
}

static bool accept_retry(int err)
{
    switch (-err) {
    case ECONNABORTED: case EINTR: case EAGAIN: case EPROTO: case ENETDOWN: case ENOPROTOOPT:
    case EHOSTDOWN: case ENONET: case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH:
    case ETIMEDOUT: case ECONNRESET:
        return true;
    default:
        return false;
    }
}

static void *acceptor_main(void *arg)
{
    corio_server *srv = arg;
    int64_t backoff = 0;
    bool episode = false;
    int retries = 0;
    while (!srv->closing) {
        int fd = corio_accept(srv->lfd, NULL, NULL);
        if (fd >= 0) {
            if (srv->closing) {
                corio_close(fd); /* accepted as the server closed */
                break;
            }
            backoff = 0;
            episode = false;
            retries = 0;
            int rc = conn_start(srv, fd);
            if (rc == 0)
                continue;
            fd = rc; /* no memory for it: back off like an accept failure */
        }
        if (srv->closing || fd == -ECANCELED || fd == -EBADF)
            break;
        if (accept_retry(fd) && ++retries < 64)
            continue;
        retries = 0;
        if (!episode) {
            episode = true;
            char where[64];
            if (srv->port >= 0)
                snprintf(where, sizeof where, "port %d", srv->port);
            else
                snprintf(where, sizeof where, "%s", srv->path ? srv->path : "unix socket");
            fprintf(stderr, "corio: server on %s: accept failed: %s; backing off\n", where,
                    strerror(-fd));
        }
        backoff = backoff ? backoff * 2 : 10000000;
        if (backoff > 1000000000)
            backoff = 1000000000;
        if (corio_sleep_ns(backoff) < 0)
            break;
    }
    return NULL;
}

static int server_new(corio_server **out, corio_stream_handler *fn, void *arg,
                      const corio_server_opts *opts, corio_server **srvp)
{
    if (!out || !fn)
        return -EINVAL;
    size_t a, b, c;
    if (opts_resolve(opts ? &opts->stream : NULL, &a, &b, &c) < 0)
        return -EINVAL;
    size_t st = opts ? opts->stack_size : 0;
    if (st && (st < CORIO_STACK_MIN || st > CORIO_STACK_MAX))
        return -EINVAL;
    if (opts && (opts->flags & ~CORIO_REUSEPORT))
        return -EINVAL;
    if (!corio_current_task() && !corio_backend())
        return -EPERM;
    corio_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return -ENOMEM;
    srv->lfd = -1;
    srv->fn = fn;
    srv->arg = arg;
    if (opts)
        srv->sopts = opts->stream;
    srv->topts.stack_size = st;
    int rc = corio_event_init(&srv->changed);
    if (rc < 0) {
        free(srv);
        return rc;
    }
    *srvp = srv;
    return 0;
}

static int server_run(corio_server *srv, corio_server **out)
{
    int rc = corio_task_create(&srv->acceptor, corio_coro(acceptor_main, srv), NULL);
    if (rc < 0) {
        corio_close(srv->lfd);
        if (srv->path)
            unlink(srv->path);
        free(srv->path);
        corio_event_destroy(&srv->changed);
        free(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

int corio_start_server(corio_server **out, const char *host, int port, corio_stream_handler *fn,
                       void *arg, const corio_server_opts *opts)
{
    corio_server *srv;
    int rc = server_new(out, fn, arg, opts, &srv);
    if (rc < 0)
        return rc;
    int fd = corio_tcp_listen(host, port, opts ? opts->backlog : 0, opts ? opts->flags : 0);
    if (fd < 0) {
        corio_event_destroy(&srv->changed);
        free(srv);
        return fd;
    }
    srv->lfd = fd;
    srv->tcp = true;
    srv->port = corio_socket_port(fd);
    return server_run(srv, out);
}

int corio_start_unix_server(corio_server **out, const char *path, corio_stream_handler *fn,
                            void *arg, const corio_server_opts *opts)
{
    corio_server *srv;
    if (opts && opts->flags)
        return -EINVAL;
    int rc = server_new(out, fn, arg, opts, &srv);
    if (rc < 0)
        return rc;
    int fd = corio_unix_listen(path, SOCK_STREAM, opts ? opts->backlog : 0);
    struct stat st = {0};
    if (fd >= 0) {
        srv->path = strdup(path);
        rc = !srv->path ? -ENOMEM : stat(path, &st) < 0 ? -errno : 0;
        if (rc < 0) {
            corio_close(fd);
            unlink(path);
            free(srv->path);
            fd = rc;
        }
    }
    if (fd < 0) {
        corio_event_destroy(&srv->changed);
        free(srv);
        return fd;
    }
    srv->dev = st.st_dev;
    srv->ino = st.st_ino;
    srv->lfd = fd;
    srv->port = -EAFNOSUPPORT;
    return server_run(srv, out);
}

int corio_server_port(const corio_server *srv)
{
    return srv ? srv->port : -EINVAL;
}

long corio_server_connections(const corio_server *srv)
{
    return srv ? srv->nconns : -EINVAL;
}

int corio_server_close(corio_server *srv)
{
    if (!srv)
        return -EINVAL;
    if (srv->closing)
        return 0;
    srv->closing = true;
    corio_cancel(srv->acceptor); /* 0 if it has ended: harmless */
    /* Stop listening now: an accept still in flight on io_uring holds the
     * socket open until the kernel has cancelled it, and meanwhile new
     * connections would land in its backlog (and then be reset). */
    shutdown(srv->lfd, SHUT_RDWR);
    corio_close(srv->lfd);
    srv->lfd = -1;
    if (srv->path) {
        struct stat st;
        if (stat(srv->path, &st) == 0 && st.st_dev == srv->dev && st.st_ino == srv->ino)
            unlink(srv->path);
    }
    corio_event_set(&srv->changed);
    return 0;
}

int corio_server_close_clients(corio_server *srv)
{
    if (!srv)
        return -EINVAL;
    int n = 0;
    for (corio_stream *s = srv->conns; s; s = s->next)
        if (corio_cancel(s->task) == 1)
            n++;
    return n;
}

int corio_serve_forever(corio_server *srv)
{
    if (!srv)
        return -EINVAL;
    if (!corio_current_task())
        return -EPERM;
    srv->forever++;
    int rc = 0;
    while (!srv->closing) {
        corio_event_clear(&srv->changed);
        rc = corio_event_wait(&srv->changed);
        if (rc < 0) {
            corio_server_close(srv);
            break;
        }
    }
    srv->forever--;
    corio_event_set(&srv->changed);
    return rc;
}

int corio_server_wait_closed(corio_server *srv)
{
    if (!srv)
        return -EINVAL;
    if (!corio_current_task())
        return -EPERM;
    int rc = 0;
    while (!srv->closing || srv->nconns) {
        corio_event_clear(&srv->changed);
        rc = corio_event_wait(&srv->changed);
        if (rc < 0)
            break;
    }
    if (rc < 0) {
        corio_server_close(srv);
        corio_server_close_clients(srv);
    }
    /* from here on the server is only torn down: that must not be interrupted */
    corio_scope shield;
    corio_shield_begin(&shield);
    while (srv->nconns || srv->forever) {
        corio_event_clear(&srv->changed);
        corio_event_wait(&srv->changed);
    }
    corio_await_task(srv->acceptor, NULL);
    int sc = corio_scope_end(&shield);
    if (rc == 0 && sc < 0)
        rc = sc;
    corio_task_release(srv->acceptor);
    corio_event_destroy(&srv->changed);
    free(srv->path);
    free(srv);
    return rc;
}
