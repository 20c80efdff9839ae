/* io.c - fd operations: the public calls, the fd table, and the choice of
 * backend (epoll or io_uring, poller.h).
 *
 * Each public call fills a corio__io on the task's stack and hands it to
 * the loop's backend, which suspends the task until the operation is done. */
#define _GNU_SOURCE
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- opening the poller ------------------------------------------------------------------ */

/* The backend to try, and whether falling back to epoll is allowed: only a
 * loop option that names io_uring insists on it. */
static int backend_from(int kind, bool *may_fall_back)
{
    *may_fall_back = kind != CORIO_BACKEND_IO_URING;
    if (kind != CORIO_BACKEND_DEFAULT)
        return kind;
    const char *env = getenv("CORIO_BACKEND");
    return env && strcmp(env, "epoll") == 0 ? CORIO_BACKEND_EPOLL : CORIO_BACKEND_IO_URING;
}

int corio__poller_open(corio__poller *p, int kind)
{
    bool may_fall_back;
    memset(p, 0, sizeof *p);
    p->epfd = -1;
    kind = backend_from(kind, &may_fall_back);
    p->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->wakefd < 0)
        return -errno;
    int rc = -ENOSYS;
    if (kind == CORIO_BACKEND_IO_URING) {
        p->kind = CORIO_BACKEND_IO_URING;
        rc = corio__uring_open(p);
    }
    if (rc < 0 && (kind == CORIO_BACKEND_EPOLL || may_fall_back)) {
        /* ENOSYS (no io_uring, qemu-user), EPERM (seccomp, sysctl), old kernel */
        p->kind = CORIO_BACKEND_EPOLL;
        rc = corio__epoll_open(p);
    }
    if (rc < 0) {
        close(p->wakefd);
        p->wakefd = -1;
    }
    return rc;
}

void corio__poller_close(corio__poller *p)
{
    if (p->kind == CORIO_BACKEND_IO_URING)
        corio__uring_close(p);
    else
        corio__epoll_close(p);
    corio__fd_table_free(p);
    if (p->wakefd >= 0)
        close(p->wakefd);
    p->wakefd = -1;
}

int corio__poller_wait(corio_loop *l, int64_t timeout_ns)
{
    if (l->poller.kind == CORIO_BACKEND_IO_URING)
        return corio__uring_wait(l, timeout_ns);
    return corio__epoll_wait(l, timeout_ns);
}

const char *corio_backend(void)
{
    corio_loop *l = corio__tls_loop;
    if (!l)
        return NULL;
    return l->poller.kind == CORIO_BACKEND_IO_URING ? "io_uring" : "epoll";
}

/* ---- the fd table ------------------------------------------------------------------------- */

corio__fd *corio__fd_get(corio__poller *p, int fd)
{
    int c = fd / CORIO__FD_CHUNK;
    if (c >= p->nchunks) {
        int n = p->nchunks ? p->nchunks : 4;
        while (n <= c)
            n *= 2;
        corio__fd **fds = realloc(p->fds, (size_t)n * sizeof *fds);
        if (!fds)
            return NULL;
        memset(fds + p->nchunks, 0, (size_t)(n - p->nchunks) * sizeof *fds);
        p->fds = fds;
        p->nchunks = n;
    }
    if (!p->fds[c] && !(p->fds[c] = calloc(CORIO__FD_CHUNK, sizeof(corio__fd))))
        return NULL;
    return &p->fds[c][fd % CORIO__FD_CHUNK];
}

void corio__fd_table_free(corio__poller *p)
{
    for (int c = 0; c < p->nchunks; c++)
        free(p->fds[c]);
    free(p->fds);
    p->fds = NULL;
    p->nchunks = 0;
}

/* First sight of an fd: it must exist; epoll needs it non-blocking; a
 * regular file (never "ready" for epoll) is noted. */
static int fd_first_seen(corio_loop *l, int fd, corio__fd *f)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    f->file = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
    f->sock = S_ISSOCK(st.st_mode);
    f->stream = false;
    if (f->sock) {
        int type = 0;
        socklen_t len = sizeof type;
        f->stream = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
    }
    if (l->poller.kind == CORIO_BACKEND_EPOLL && !f->file) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0)
            return -errno;
        if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
            return -errno;
    }
    f->seen = true;
    return 0;
}

/* ---- the system calls, non-blocking -------------------------------------------------------- */

int64_t corio__io_syscall(corio__io *io)
{
    ssize_t r;
    switch (io->op) {
    case CORIO__OP_READ:     r = read(io->fd, io->buf, io->len); break;
    case CORIO__OP_PREAD:    r = pread(io->fd, io->buf, io->len, io->offset); break;
    case CORIO__OP_WRITE:    r = write(io->fd, io->buf, io->len); break;
    case CORIO__OP_PWRITE:   r = pwrite(io->fd, io->buf, io->len, io->offset); break;
    case CORIO__OP_READV:    r = readv(io->fd, io->iov, io->iovcnt); break;
    case CORIO__OP_WRITEV:   r = writev(io->fd, io->iov, io->iovcnt); break;
    case CORIO__OP_RECV:     r = recv(io->fd, io->buf, io->len, io->flags | MSG_DONTWAIT); break;
    case CORIO__OP_SEND:     r = send(io->fd, io->buf, io->len, io->flags | MSG_DONTWAIT); break;
    case CORIO__OP_RECVFROM:
        r = recvfrom(io->fd, io->buf, io->len, io->flags | MSG_DONTWAIT, io->addr, io->addrlen);
        break;
    case CORIO__OP_SENDTO:
        r = sendto(io->fd, io->buf, io->len, io->flags | MSG_DONTWAIT, io->to, io->tolen);
        break;
    case CORIO__OP_RECVMSG:  r = recvmsg(io->fd, io->msgp, io->flags | MSG_DONTWAIT); break;
    case CORIO__OP_SENDMSG:  r = sendmsg(io->fd, io->msgp, io->flags | MSG_DONTWAIT); break;
    case CORIO__OP_ACCEPT:   r = accept4(io->fd, io->addr, io->addrlen, io->flags); break;
    case CORIO__OP_CONNECT:  r = connect(io->fd, io->to, io->tolen); break;
    default:                 return -EINVAL;
    }
    if (r >= 0)
        return r;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/* A regular file on epoll: the system call runs on the worker pool. */
static void *file_job(void *arg)
{
    return (void *)(intptr_t)corio__io_syscall(arg);
}

static int64_t file_on_pool(corio__io *io)
{
    /* Shielded: a cancelled caller must not leave a worker writing into its
     * buffer. File calls are short; the cancel hits the next suspension. */
    corio_scope shield;
    corio_shield_begin(&shield);
    void *res = NULL;
    int rc = corio_to_thread(file_job, io, &res);
    corio_scope_end(&shield);
    return rc < 0 ? rc : (int64_t)(intptr_t)res;
}

/* ---- running one operation ---------------------------------------------------------------- */

/* write and writev on a socket go out as send and sendmsg with MSG_NOSIGNAL:
 * a peer that reset the connection gives -EPIPE, never SIGPIPE. */
static void as_socket_send(corio__io *io)
{
    if (io->op == CORIO__OP_WRITE) {
        io->op = CORIO__OP_SEND;
        io->flags = MSG_NOSIGNAL;
    } else if (io->op == CORIO__OP_WRITEV) {
        io->msg = (struct msghdr){.msg_iov = (struct iovec *)io->iov, .msg_iovlen = (size_t)io->iovcnt};
        io->msgp = &io->msg;
        io->op = CORIO__OP_SENDMSG;
        io->flags = MSG_NOSIGNAL;
    }
}

int64_t corio__io_run(corio_loop *l, corio_task *self, corio__io *io)
{
    corio__fd *f = corio__fd_get(&l->poller, io->fd);
    if (!f)
        return -ENOMEM;
    if (!f->seen) {
        int rc = fd_first_seen(l, io->fd, f);
        if (rc < 0)
            return rc;
    }
    if (f->sock)
        as_socket_send(io);
    if (l->poller.kind == CORIO_BACKEND_IO_URING)
        return corio__uring_run(l, self, io);
    if (!f->file) {
        /* Cooperative budget: on epoll an operation that finds its fd ready
         * completes without suspending, so a task streaming through ready
         * sockets (or retrying a failing accept) would never let the others
         * run. After IO_BUDGET such operations in one dispatch it yields. */
        if (__builtin_expect(++l->io_streak > CORIO__IO_BUDGET, 0)) {
            int rc = CORIO__IMPL(corio_yield)(); /* the dispatch resets the streak */
            if (rc < 0)
                return rc;
        }
        return corio__epoll_run(l, self, io);
    }
    if (io->op == CORIO__OP_POLL_IN || io->op == CORIO__OP_POLL_OUT)
        return corio__interrupt_pending(self); /* a regular file is always ready (poll(2)) */
    int rc = corio__interrupt_pending(self);
    if (rc == 0)
        rc = corio__compact_refuse(self); /* the worker reads io and fills the buffer while
                                             the task is away */
    return rc < 0 ? rc : file_on_pool(io);
}

/* A number the kernel just handed out: whatever corio knew about an fd of
 * that number is stale (it was closed behind corio's back). */
void corio__fd_fresh_socket(corio_loop *l, int fd, bool stream)
{
    corio__fd *f = corio__fd_find(&l->poller, fd);
    if (f && f->seen) {
        if (l->poller.kind == CORIO_BACKEND_IO_URING)
            corio__uring_forget(l, fd);
        else
            corio__epoll_forget(l, fd, true);
    }
    if ((f = corio__fd_get(&l->poller, fd))) {
        f->seen = true; /* non-blocking from birth */
        f->sock = true;
        f->stream = stream;
    }
}

/* ---- the public calls --------------------------------------------------------------------- */

/* Run io for the running task; -EPERM outside a task, -EBADF for a negative fd. */
static int64_t run_op(corio__io *io)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!self)
        return -EPERM;
    if (io->fd < 0)
        return -EBADF;
    return corio__io_run(l, self, io);
}

#define IO(...) ((corio__io){.wait = {.what = "I/O"}, __VA_ARGS__})

int corio_wait_readable(int fd)
{
    corio__io io = IO(.op = CORIO__OP_POLL_IN, .fd = fd);
    return (int)run_op(&io);
}

int corio_wait_writable(int fd)
{
    corio__io io = IO(.op = CORIO__OP_POLL_OUT, .fd = fd);
    return (int)run_op(&io);
}

ssize_t corio_read(int fd, void *buf, size_t len)
{
    corio__io io = IO(.op = CORIO__OP_READ, .fd = fd, .buf = buf, .len = len);
    return run_op(&io);
}

ssize_t corio_write(int fd, const void *buf, size_t len)
{
    corio__io io = IO(.op = CORIO__OP_WRITE, .fd = fd, .buf = (void *)buf, .len = len);
    return run_op(&io);
}

ssize_t corio_pread(int fd, void *buf, size_t len, off_t offset)
{
    if (offset < 0)
        return -EINVAL;
    corio__io io = IO(.op = CORIO__OP_PREAD, .fd = fd, .buf = buf, .len = len, .offset = offset);
    return run_op(&io);
}

ssize_t corio_pwrite(int fd, const void *buf, size_t len, off_t offset)
{
    if (offset < 0)
        return -EINVAL;
    corio__io io = IO(.op = CORIO__OP_PWRITE, .fd = fd, .buf = (void *)buf, .len = len,
                      .offset = offset);
    return run_op(&io);
}

ssize_t corio_readv(int fd, const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt && !iov))
        return -EINVAL;
    corio__io io = IO(.op = CORIO__OP_READV, .fd = fd, .iov = iov, .iovcnt = iovcnt);
    return run_op(&io);
}

ssize_t corio_writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt && !iov))
        return -EINVAL;
    corio__io io = IO(.op = CORIO__OP_WRITEV, .fd = fd, .iov = iov, .iovcnt = iovcnt);
    return run_op(&io);
}

ssize_t corio_recv(int fd, void *buf, size_t len, int flags)
{
    corio__io io = IO(.op = CORIO__OP_RECV, .fd = fd, .buf = buf, .len = len,
                      .flags = flags & ~MSG_DONTWAIT);
    return run_op(&io);
}

ssize_t corio_send(int fd, const void *buf, size_t len, int flags)
{
    corio__io io = IO(.op = CORIO__OP_SEND, .fd = fd, .buf = (void *)buf, .len = len,
                      .flags = (flags & ~MSG_DONTWAIT) | MSG_NOSIGNAL);
    return run_op(&io);
}

ssize_t corio_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                       socklen_t *addrlen)
{
    if (addr && !addrlen)
        return -EINVAL;
    corio__io io = IO(.op = CORIO__OP_RECVFROM, .fd = fd, .buf = buf, .len = len,
                      .flags = flags & ~MSG_DONTWAIT, .addr = addr, .addrlen = addr ? addrlen : NULL);
    int64_t r = run_op(&io);
    if (r >= 0 && addr && io.msg.msg_iov)
        *addrlen = io.msg.msg_namelen; /* io_uring's recvmsg reports it in the msghdr */
    return r;
}

ssize_t corio_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr,
                     socklen_t addrlen)
{
    corio__io io = IO(.op = CORIO__OP_SENDTO, .fd = fd, .buf = (void *)buf, .len = len,
                      .flags = (flags & ~MSG_DONTWAIT) | MSG_NOSIGNAL, .to = addr,
                      .tolen = addr ? addrlen : 0);
    return run_op(&io);
}

ssize_t corio_recvmsg(int fd, struct msghdr *msg, int flags)
{
    if (!msg)
        return -EINVAL;
    corio__io io = IO(.op = CORIO__OP_RECVMSG, .fd = fd, .msgp = msg, .flags = flags & ~MSG_DONTWAIT);
    return run_op(&io);
}

ssize_t corio_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (!msg)
        return -EINVAL;
    corio__io io = IO(.op = CORIO__OP_SENDMSG, .fd = fd, .msgp = (struct msghdr *)msg,
                      .flags = (flags & ~MSG_DONTWAIT) | MSG_NOSIGNAL);
    return run_op(&io);
}

int corio_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    if (addr && !addrlen)
        return -EINVAL;
    corio__io io = IO(.op = CORIO__OP_ACCEPT, .fd = fd, .addr = addr, .addrlen = addr ? addrlen : NULL,
                      .flags = SOCK_NONBLOCK | SOCK_CLOEXEC);
    int64_t r = run_op(&io);
    if (r >= 0) {
        corio__fd *lf = corio__fd_find(&corio__tls_loop->poller, fd);
        corio__fd_fresh_socket(corio__tls_loop, (int)r, lf && lf->stream); /* the listener's type */
    }
    return (int)r;
}

int corio_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    if (!addr)
        return -EINVAL;
    corio__io io = IO(.op = CORIO__OP_CONNECT, .fd = fd, .to = addr, .tolen = addrlen);
    return (int)run_op(&io);
}

int corio_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    corio_loop *l = corio__tls_loop;
    corio__fd *f = l ? corio__fd_find(&l->poller, fd) : NULL;
    if (f) {
        if (l->poller.kind == CORIO_BACKEND_IO_URING)
            corio__uring_forget(l, fd);
        else
            corio__epoll_forget(l, fd, false);
    }
    /* close(2) frees the number even when it reports an error (EINTR, EIO) */
    return close(fd) < 0 ? -errno : 0;
}
