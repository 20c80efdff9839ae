/* poller_epoll.c - the epoll backend: readiness.
 *
 * An operation tries its system call first (the fd is non-blocking); only
 * on EAGAIN does the task wait. An fd joins the epoll set once, for both
 * directions and edge-triggered, the first time a task waits on it, and
 * stays until corio_close: a request/response connection then costs no
 * epoll_ctl per request. An edge wakes every task waiting in that direction
 * (each retries; those that get EAGAIN again wait again). An edge with
 * nobody waiting is remembered in fd->ready, so that a bare
 * corio_wait_readable after it does not sleep through data already there.
 *
 * epoll_pwait2 takes a nanosecond timeout; where the kernel lacks it (before
 * 5.11, or qemu-user) epoll_wait gets the timeout rounded up to whole
 * milliseconds, so a timer is never woken for early. */
#include "io.h"

#include <errno.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

int corio__epoll_open(corio__poller *p)
{
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0)
        return -errno;
    p->have_pwait2 = true;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = p->wakefd};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wakefd, &ev) < 0) {
        int rc = -errno;
        close(p->epfd);
        p->epfd = -1;
        return rc;
    }
    return 0;
}

void corio__epoll_close(corio__poller *p)
{
    if (p->epfd >= 0)
        close(p->epfd);
    p->epfd = -1;
}

/* ---- waking the tasks an event is for ---------------------------------------------- */

static void wake_dir(corio_loop *l, corio__fd *f, int dir)
{
    corio__waiter *w = corio__waitlist_take(&f->ops[dir]);
    if (!w) {
        f->ready |= (uint8_t)(1u << dir);
        return;
    }
    do {
        l->poller.waiting--;
        corio__wake(l, w->wait, 0); /* 0: try the operation again */
    } while ((w = corio__waitlist_take(&f->ops[dir])));
}

static int wait_ms(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return -1;
    int64_t ms = (timeout_ns + 999999) / 1000000;
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

int corio__epoll_wait(corio_loop *l, int64_t timeout_ns)
{
    corio__poller *p = &l->poller;
    struct epoll_event ev[128];
    int n = -1;
    if (p->have_pwait2) {
        struct timespec ts = {timeout_ns / 1000000000, timeout_ns % 1000000000};
        n = epoll_pwait2(p->epfd, ev, 128, timeout_ns < 0 ? NULL : &ts, NULL);
        if (n < 0 && (errno == ENOSYS || errno == EPERM))
            p->have_pwait2 = false; /* old kernel, seccomp or qemu-user */
    }
    if (!p->have_pwait2)
        n = epoll_wait(p->epfd, ev, 128, wait_ms(timeout_ns));
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        int fd = ev[i].data.fd;
        if (fd == p->wakefd) {
            corio__remote_drain(l);
            continue;
        }
        corio__fd *f = corio__fd_find(p, fd);
        if (!f)
            continue;
        uint32_t e = ev[i].events;
        if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) /* sticky: no further edge will say so */
            f->hup |= (uint8_t)(1u << CORIO__FD_IN | (e & (EPOLLHUP | EPOLLERR) ? 1u << CORIO__FD_OUT : 0));
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            wake_dir(l, f, CORIO__FD_IN);
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            wake_dir(l, f, CORIO__FD_OUT);
    }
    return n;
}

/* ---- running an operation --------------------------------------------------------- */

/* A cancel while waiting for readiness: nothing is in the kernel, so the
 * task can go at once. */
static void epoll_cancel(corio__wait *w)
{
    corio__io *io = (corio__io *)(void *)w;
    corio_loop *l = corio__task_loop(w->task);
    corio__fd *f = corio__fd_find(&l->poller, io->fd);
    if (io->link.linked) {
        corio__waitlist_remove(&f->ops[corio__op_is_input(io->op) ? CORIO__FD_IN : CORIO__FD_OUT],
                               &io->link);
        l->poller.waiting--;
    }
    corio__wake(l, w, -ECANCELED);
}

static int do_register(corio__poller *p, int fd, corio__fd *f)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = fd};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        if (errno != EEXIST)
            return -errno; /* EPERM: a regular file; EBADF */
    }
    f->registered = true;
    return 0;
}

/* Wait until fd may be ready in the op's direction: 0, or -ECANCELED, -EBADF
 * (closed meanwhile), or the registration's error. */
static int wait_ready(corio_loop *l, corio_task *self, corio__io *io, corio__fd *f)
{
    int dir = corio__op_is_input(io->op) ? CORIO__FD_IN : CORIO__FD_OUT;
    int rc = corio__interrupt_pending(self);
    if (rc < 0)
        return rc;
    if ((rc = corio__compact_refuse(self)) < 0)
        return rc; /* its record (and buffer) would be reached while it is away */
    if (!f->registered && (rc = do_register(&l->poller, io->fd, f)) < 0)
        return rc;
    f->ready &= (uint8_t)~(1u << dir); /* we just saw EAGAIN: any older edge is spent */
    io->link.wait = &io->wait;
    io->link.won = NULL;
    corio__waitlist_push(&f->ops[dir], &io->link);
    l->poller.waiting++;
    io->wait.cancel = epoll_cancel;
    io->wait.pass_on = NULL;
    return corio__suspend_as(l, self, &io->wait, true);
}

/* Connect finished (or failed): its outcome. 1 while still in progress. */
static int connect_outcome(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    if (err)
        return -err;
    struct sockaddr_storage ss;
    len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return errno == ENOTCONN ? 1 : -errno;
    return 0;
}

/* The bytes a transfer asked for; 0 for the operations that are not transfers. */
static size_t op_size(const corio__io *io)
{
    switch (io->op) {
    case CORIO__OP_READ: case CORIO__OP_RECV: case CORIO__OP_WRITE: case CORIO__OP_SEND:
        return io->len;
    case CORIO__OP_READV: case CORIO__OP_WRITEV: {
        size_t n = 0;
        for (int i = 0; i < io->iovcnt; i++)
            n += io->iov[i].iov_len;
        return n;
    }
    default:
        return 0; /* recvmsg/sendmsg (ancillary data), datagrams, accept, connect */
    }
}

int64_t corio__epoll_run(corio_loop *l, corio_task *self, corio__io *io)
{
    corio__fd *f = corio__fd_find(&l->poller, io->fd);
    uint8_t bit = (uint8_t)(1u << (corio__op_is_input(io->op) ? CORIO__FD_IN : CORIO__FD_OUT));
    if (io->op == CORIO__OP_POLL_IN || io->op == CORIO__OP_POLL_OUT) {
        if ((f->ready | f->hup) & bit) {
            f->ready &= (uint8_t)~bit; /* after EOF or a hang-up it stays ready */
            return 0;
        }
        return wait_ready(l, self, io, f);
    }
    /* After a short transfer, wait for an edge before trying again: saves
     * the EAGAIN system call (a request/response server's every second
     * read). An edge that came meanwhile shows in f->ready. Not after
     * EOF or a hang-up: the call would return at once, and no edge comes. */
    size_t want = op_size(io);
    bool skip = (f->drained & bit) && !((f->ready | f->hup) & bit) && want > 0;
    f->drained &= (uint8_t)~bit;
    int64_t r = skip ? -EAGAIN : corio__io_syscall(io);
    if (io->op == CORIO__OP_CONNECT) {
        if (r != -EINPROGRESS)
            return r == -EAGAIN ? -EAGAIN : r; /* Unix sockets: EAGAIN is a full backlog */
        for (;;) {
            int rc = wait_ready(l, self, io, f);
            if (rc < 0)
                return rc;
            rc = connect_outcome(io->fd);
            if (rc <= 0)
                return rc;
        }
    }
    while (r == -EAGAIN) {
        int rc = wait_ready(l, self, io, f);
        if (rc < 0)
            return rc;
        r = corio__io_syscall(io);
    }
    if (r > 0 && (size_t)r < want && f->stream && !(io->flags & (MSG_PEEK | MSG_OOB))) {
        /* A short transfer on a stream socket found it empty (or full):
         * any edge collected before is spent (epoll_wait ran before this
         * call), and until the next one another call in this direction
         * would only get EAGAIN. (Tokio clears readiness the same way.) */
        f->drained |= bit;
        f->ready &= (uint8_t)~bit;
    }
    return r;
}

/* corio_close (or a fresh fd reusing a number): wake whoever waits on fd
 * with -EBADF and forget the registration. The caller closes the fd, which
 * takes it out of the epoll set; `fresh` (a number the kernel just handed
 * out again) means it already left it. */
void corio__epoll_forget(corio_loop *l, int fd, bool fresh)
{
    corio__poller *p = &l->poller;
    corio__fd *f = corio__fd_find(p, fd);
    if (!f)
        return;
    if (f->registered && !fresh)
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL); /* dups of it may live on */
    for (int dir = 0; dir < 2; dir++) {
        corio__waiter *w;
        while ((w = corio__waitlist_take(&f->ops[dir]))) {
            p->waiting--;
            ((corio__io *)(void *)w->wait)->closed = true;
            corio__wake(l, w->wait, -EBADF);
        }
    }
    *f = (corio__fd){0};
}
