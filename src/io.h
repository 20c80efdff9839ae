/* io.h - an fd operation in flight, and what the loop knows about each fd,
 * shared by io.c (the public calls) and the two backends. */
#ifndef CORIO_IO_H
#define CORIO_IO_H

#include "internal.h"

#include <sys/socket.h>
#include <sys/uio.h>

struct corio__io {
    corio__wait wait;          /* first: the backends go from the wait to the op */
    corio__waiter link;        /* on its fd's list (epoll: by direction; io_uring: all) */
    uint8_t op;                /* enum corio__op */
    bool inflight;             /* io_uring: an SQE is out for it */
    bool closed;               /* its fd was closed by corio_close: report -EBADF */
    bool polling;              /* io_uring: waiting for readiness after an -EAGAIN */
    int fd;
    int flags;                 /* recv/send flags; accept4 flags */
    void *buf;
    size_t len;
    off_t offset;
    const struct iovec *iov;
    int iovcnt;
    struct sockaddr *addr;     /* recvfrom, accept: where the peer's address goes */
    socklen_t *addrlen;
    const struct sockaddr *to; /* sendto, connect */
    socklen_t tolen;
    struct msghdr *msgp;       /* recvmsg, sendmsg: the caller's, or &msg */
    struct msghdr msg;         /* io_uring recvmsg/sendmsg need it to outlive the call */
    struct iovec one;
};

/* What the loop knows about an fd: an entry in a table indexed by the fd
 * number, made the first time a corio call sees the fd. */
enum { CORIO__FD_IN = 0, CORIO__FD_OUT = 1 };
struct corio__fd {
    corio__waitlist ops[2];    /* waiting operations: epoll by direction, io_uring all in [0] */
    bool seen;                 /* made non-blocking, kind known */
    bool registered;           /* epoll: in the epoll set (edge-triggered, in and out) */
    bool file;                 /* a regular file or block device: never "ready" */
    bool sock;                 /* a socket: writes go out as send(MSG_NOSIGNAL) */
    bool stream;               /* a SOCK_STREAM socket: a short transfer means empty/full */
    uint8_t ready;             /* epoll: edges that came with nobody waiting (1 << dir) */
    uint8_t drained;           /* epoll: a short transfer saw it empty/full (1 << dir) */
    uint8_t hup;               /* epoll: EOF, hang-up or error seen: calls never wait first */
};

#define CORIO__FD_CHUNK 1024

/* The entry for fd, made (zeroed) if new; NULL when out of memory. */
corio__fd *corio__fd_get(corio__poller *p, int fd);
/* The entry if it exists. */
static inline corio__fd *corio__fd_find(const corio__poller *p, int fd)
{
    int c = fd / CORIO__FD_CHUNK;
    if (fd < 0 || c >= p->nchunks || !p->fds[c])
        return NULL;
    return &p->fds[c][fd % CORIO__FD_CHUNK];
}
void corio__fd_table_free(corio__poller *p);
/* A socket the kernel just handed out (socket, accept4; SOCK_NONBLOCK):
 * forget what was known of an older fd of that number, and note this one
 * so that its first operation skips the fstat/fcntl of first sight. */
void corio__fd_fresh_socket(corio_loop *l, int fd, bool stream);

/* The system call an operation stands for, once, non-blocking: its result or -errno. */
int64_t corio__io_syscall(corio__io *io);

#endif
