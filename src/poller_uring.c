/* poller_uring.c - the io_uring backend (liburing): completion.
 *
 * An operation becomes one SQE whose user_data is the operation itself (it
 * lives on the waiting task's stack until its CQE comes); the task waits for
 * the CQE. SQEs pile up in the ring while tasks run and reach the kernel in
 * one io_uring_enter when the loop next looks at I/O, which is also where it
 * waits for the next timer (IORING_FEAT_EXT_ARG: a timeout without an SQE).
 *
 * Cancel: an operation in the kernel may be writing into the task's buffer,
 * so a cancel only asks the kernel (IORING_OP_ASYNC_CANCEL) and the task
 * stays suspended until the operation's own CQE says the kernel is done. If
 * that CQE carries a result after all (the data came first), the result
 * stands and nothing is lost.
 *
 * An fd in O_NONBLOCK mode makes some operations (read/write on pipes and
 * ttys) complete with -EAGAIN instead of waiting: those wait for readiness
 * with a one-shot poll and go again. Other threads wake the loop through a
 * multishot poll on the loop's eventfd. */
#include "io.h"

#ifndef CORIO_NO_IO_URING

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#define RUNNING_ON_VALGRIND 0
#endif

/* Linux 6.15's opt-out of iowait accounting; liburing 2.3's headers predate it. */
#define ENTER_NO_IOWAIT (1u << 7)
#define FEAT_NO_IOWAIT (1u << 17)

#define TAG_IGNORE 0ull /* cancel requests: their own CQE says nothing we need */
#define TAG_WAKE 1ull   /* the eventfd's multishot poll */

/* Operations the backend needs; a kernel without one of them gets epoll. */
static const int needed_ops[] = {
    IORING_OP_POLL_ADD, IORING_OP_ASYNC_CANCEL, IORING_OP_READ, IORING_OP_WRITE,
    IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_RECV, IORING_OP_SEND,
    IORING_OP_RECVMSG, IORING_OP_SENDMSG, IORING_OP_ACCEPT, IORING_OP_CONNECT,
};

static struct io_uring_sqe *get_sqe(corio__poller *p)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(p->ring);
    if (!sqe) {
        io_uring_submit(p->ring); /* the ring is full: hand the batch over now */
        p->sq_pending = 0;
        sqe = io_uring_get_sqe(p->ring);
    }
    if (sqe)
        p->sq_pending++;
    return sqe;
}

static int arm_wake(corio__poller *p)
{
    struct io_uring_sqe *sqe = get_sqe(p);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_poll_multishot(sqe, p->wakefd, POLLIN);
    io_uring_sqe_set_data64(sqe, TAG_WAKE);
    return 0;
}

static int ring_init(struct io_uring *ring)
{
    /* Newest flags first; an older kernel says EINVAL to what it lacks. */
    static const unsigned flag_sets[] = {
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
            IORING_SETUP_SINGLE_ISSUER,
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; i++) {
        struct io_uring_params params;
        memset(&params, 0, sizeof params);
        params.flags = flag_sets[i] | IORING_SETUP_CQSIZE;
        params.cq_entries = 4096; /* many operations in flight; NODROP covers more */
        rc = io_uring_queue_init_params(256, ring, &params);
        if (rc != -EINVAL)
            return rc;
    }
    return rc;
}

int corio__uring_open(corio__poller *p)
{
    struct io_uring *ring = calloc(1, sizeof *ring);
    if (!ring)
        return -ENOMEM;
    int rc = ring_init(ring);
    if (rc < 0) {
        free(ring);
        return rc; /* ENOSYS (no io_uring, qemu-user), EPERM (seccomp, sysctl), ENOMEM */
    }
    p->ring = ring;
    unsigned need = IORING_FEAT_EXT_ARG | IORING_FEAT_NODROP | IORING_FEAT_RW_CUR_POS;
    rc = (ring->features & need) == need ? 0 : -ENOSYS;
    struct io_uring_probe *probe = rc == 0 ? io_uring_get_probe_ring(ring) : NULL;
    if (rc == 0 && !probe)
        rc = -ENOSYS;
    for (size_t i = 0; rc == 0 && i < sizeof needed_ops / sizeof needed_ops[0]; i++)
        if (!io_uring_opcode_supported(probe, needed_ops[i]))
            rc = -ENOSYS;
    if (probe)
        io_uring_free_probe(probe);
    if (rc == 0)
        rc = arm_wake(p);
    if (rc < 0)
        corio__uring_close(p);
    p->no_iowait = rc == 0 && (ring->features & FEAT_NO_IOWAIT);
    return rc;
}

void corio__uring_close(corio__poller *p)
{
    if (!p->ring)
        return;
    io_uring_queue_exit(p->ring);
    free(p->ring);
    p->ring = NULL;
}

/* ---- completions ---------------------------------------------------------------------- */

static void mark_iov(const struct iovec *iov, size_t iovcnt, size_t left)
{
    for (size_t i = 0; i < iovcnt && left; i++) {
        size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
        VALGRIND_MAKE_MEM_DEFINED(iov[i].iov_base, n);
        left -= n;
    }
}

/* Tell valgrind what the kernel wrote (it cannot see io_uring's writes). */
static void mark_written(corio__io *io, int res)
{
    if (!RUNNING_ON_VALGRIND || res < 0)
        return;
    switch (io->op) {
    case CORIO__OP_READ: case CORIO__OP_PREAD: case CORIO__OP_RECV:
        VALGRIND_MAKE_MEM_DEFINED(io->buf, (size_t)res);
        break;
    case CORIO__OP_RECVFROM:
        VALGRIND_MAKE_MEM_DEFINED(io->buf, (size_t)res);
        if (io->addr)
            VALGRIND_MAKE_MEM_DEFINED(io->addr, io->msg.msg_namelen);
        break;
    case CORIO__OP_READV:
        mark_iov(io->iov, (size_t)io->iovcnt, (size_t)res);
        break;
    case CORIO__OP_RECVMSG:
        mark_iov(io->msgp->msg_iov, io->msgp->msg_iovlen, (size_t)res);
        if (io->msgp->msg_name)
            VALGRIND_MAKE_MEM_DEFINED(io->msgp->msg_name, io->msgp->msg_namelen);
        if (io->msgp->msg_control)
            VALGRIND_MAKE_MEM_DEFINED(io->msgp->msg_control, io->msgp->msg_controllen);
        break;
    case CORIO__OP_ACCEPT:
        if (io->addr && io->addrlen)
            VALGRIND_MAKE_MEM_DEFINED(io->addr, *io->addrlen);
        break;
    default:
        break;
    }
}

static void complete(corio_loop *l, corio__io *io, int res)
{
    corio__fd *f = corio__fd_find(&l->poller, io->fd);
    io->inflight = false;
    l->poller.waiting--;
    if (f)
        corio__waitlist_remove(&f->ops[0], &io->link);
    if (!io->polling)
        mark_written(io, res);
    corio__wait *w = &io->wait;
    if (w->interrupted) {
        if (res == -ECANCELED || res == -EINTR || io->polling)
            res = -ECANCELED; /* stopped before it did anything */
        else
            w->interrupted = false; /* it completed: the result stands, the cancel waits */
    } else if (io->closed && (res == -ECANCELED || res == -EINTR)) {
        res = -EBADF;
    }
    corio__wake(l, w, res);
}

/* Hand the queued SQEs to the ring (what liburing's submit does first):
 * how many the kernel has still to take. */
static unsigned flush_sq(struct io_uring *ring)
{
    struct io_uring_sq *sq = &ring->sq;
    unsigned tail = sq->sqe_tail;
    for (unsigned i = sq->sqe_head; i != tail; i++)
        sq->array[i & sq->ring_mask] = i & sq->ring_mask;
    if (sq->sqe_head != tail) {
        sq->sqe_head = tail;
        io_uring_smp_store_release(sq->ktail, tail);
    }
    return tail - IO_URING_READ_ONCE(*sq->khead);
}

/* Submit and wait for a completion (at most timeout_ns; -1: no limit)
 * without the wait counting as iowait. A loop blocked here is idle, not
 * waiting on a disk: with the accounting, `top` shows an idle server at
 * 100 % iowait, and the CPU is kept out of its deeper sleep states.
 * 0, or -ETIME, -EINTR, -errno. */
static int enter_no_iowait(struct io_uring *ring, int64_t timeout_ns)
{
    struct __kernel_timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    struct io_uring_getevents_arg arg = {.sigmask = 0, .sigmask_sz = _NSIG / 8,
                                         .ts = timeout_ns < 0 ? 0 : (uint64_t)(uintptr_t)&ts};
    unsigned submit = flush_sq(ring);
    long rc = syscall(__NR_io_uring_enter, ring->ring_fd, submit, 1,
                      IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG | ENTER_NO_IOWAIT, &arg, sizeof arg);
    return rc < 0 ? -errno : 0;
}

/* valgrind 3.19 holds its big lock through io_uring_enter, so a worker
 * thread could never run to post back while the loop waits there. Under
 * valgrind, with posts expected, the loop waits in poll(2) instead (which
 * valgrind knows may block), on the ring and the eventfd, at most 10 ms at a
 * time in case a completion is still in the kernel's task work. */
static int valgrind_wait(corio_loop *l, int64_t timeout_ns)
{
    corio__poller *p = &l->poller;
    if (p->sq_pending)
        io_uring_submit(p->ring);
    p->sq_pending = 0;
    if (io_uring_cq_ready(p->ring))
        return 0;
    int64_t ms = timeout_ns < 0 ? 10 : (timeout_ns + 999999) / 1000000;
    struct pollfd pf[2] = {{.fd = p->ring->ring_fd, .events = POLLIN},
                           {.fd = p->wakefd, .events = POLLIN}};
    if (poll(pf, 2, ms > 10 ? 10 : (int)ms) > 0 && (pf[1].revents & POLLIN)) {
        corio__remote_drain(l);
        return 1;
    }
    return 0;
}

int corio__uring_wait(corio_loop *l, int64_t timeout_ns)
{
    corio__poller *p = &l->poller;
    struct io_uring_cqe *cqe = NULL;
    int rc;
    int events = 0;
    bool collect = false;
    if (RUNNING_ON_VALGRIND && l->remote_expected && timeout_ns != 0) {
        events = valgrind_wait(l, timeout_ns);
        timeout_ns = 0;
        collect = true;
    }
    if (timeout_ns == 0) {
        /* Enter the kernel only with SQEs to hand over or completions
         * waiting in task work (COOP_TASKRUN defers them to our next entry;
         * TASKRUN_FLAG tells us). */
        if (IO_URING_READ_ONCE(*p->ring->sq.kflags) & IORING_SQ_TASKRUN)
            collect = true;
        rc = p->sq_pending || collect ? io_uring_submit_and_get_events(p->ring) : 0;
    } else if (p->no_iowait) {
        rc = enter_no_iowait(p->ring, timeout_ns);
    } else if (timeout_ns < 0) {
        rc = io_uring_submit_and_wait(p->ring, 1);
    } else {
        struct __kernel_timespec ts = {.tv_sec = timeout_ns / 1000000000,
                                       .tv_nsec = timeout_ns % 1000000000};
        rc = io_uring_submit_and_wait_timeout(p->ring, &cqe, 1, &ts, NULL);
    }
    p->sq_pending = 0;
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY)
        return rc;
    unsigned head, seen = 0;
    bool rearm = false;
    io_uring_for_each_cqe(p->ring, head, cqe) {
        seen++;
        uint64_t tag = io_uring_cqe_get_data64(cqe);
        if (tag == TAG_IGNORE || tag == LIBURING_UDATA_TIMEOUT)
            continue;
        events++;
        if (tag == TAG_WAKE) {
            if (!(cqe->flags & IORING_CQE_F_MORE))
                rearm = true; /* the kernel ended the multishot poll */
            corio__remote_drain(l);
            continue;
        }
        complete(l, (corio__io *)(uintptr_t)tag, cqe->res);
    }
    io_uring_cq_advance(p->ring, seen);
    if (rearm)
        arm_wake(p);
    return events;
}

/* ---- running an operation --------------------------------------------------------------- */

static void uring_cancel(corio__wait *w)
{
    corio__io *io = (corio__io *)(void *)w;
    corio__poller *p = &corio__task_loop(w->task)->poller;
    struct io_uring_sqe *sqe = get_sqe(p);
    if (!sqe)
        return; /* cannot happen after get_sqe's flush; the op then simply completes */
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)io, 0);
    io_uring_sqe_set_data64(sqe, TAG_IGNORE);
}

static void prep(corio__io *io, struct io_uring_sqe *sqe)
{
    if (io->polling) {
        io_uring_prep_poll_add(sqe, io->fd, corio__op_is_input(io->op) ? POLLIN : POLLOUT);
        return;
    }
    switch (io->op) {
    case CORIO__OP_POLL_IN:  io_uring_prep_poll_add(sqe, io->fd, POLLIN); break;
    case CORIO__OP_POLL_OUT: io_uring_prep_poll_add(sqe, io->fd, POLLOUT); break;
    case CORIO__OP_READ:     io_uring_prep_read(sqe, io->fd, io->buf, (unsigned)io->len, (uint64_t)-1); break;
    case CORIO__OP_PREAD:    io_uring_prep_read(sqe, io->fd, io->buf, (unsigned)io->len, (uint64_t)io->offset); break;
    case CORIO__OP_WRITE:    io_uring_prep_write(sqe, io->fd, io->buf, (unsigned)io->len, (uint64_t)-1); break;
    case CORIO__OP_PWRITE:   io_uring_prep_write(sqe, io->fd, io->buf, (unsigned)io->len, (uint64_t)io->offset); break;
    case CORIO__OP_READV:    io_uring_prep_readv(sqe, io->fd, io->iov, (unsigned)io->iovcnt, (uint64_t)-1); break;
    case CORIO__OP_WRITEV:   io_uring_prep_writev(sqe, io->fd, io->iov, (unsigned)io->iovcnt, (uint64_t)-1); break;
    case CORIO__OP_RECV:     io_uring_prep_recv(sqe, io->fd, io->buf, io->len, io->flags); break;
    case CORIO__OP_SEND:     io_uring_prep_send(sqe, io->fd, io->buf, io->len, io->flags); break;
    case CORIO__OP_RECVFROM:
        io->one = (struct iovec){io->buf, io->len};
        io->msg = (struct msghdr){.msg_name = io->addr, .msg_namelen = io->addrlen ? *io->addrlen : 0,
                                  .msg_iov = &io->one, .msg_iovlen = 1};
        io_uring_prep_recvmsg(sqe, io->fd, &io->msg, (unsigned)io->flags);
        break;
    case CORIO__OP_SENDTO:
        io->one = (struct iovec){io->buf, io->len};
        io->msg = (struct msghdr){.msg_name = (void *)io->to, .msg_namelen = io->tolen,
                                  .msg_iov = &io->one, .msg_iovlen = 1};
        io_uring_prep_sendmsg(sqe, io->fd, &io->msg, (unsigned)io->flags);
        break;
    case CORIO__OP_RECVMSG:  io_uring_prep_recvmsg(sqe, io->fd, io->msgp, (unsigned)io->flags); break;
    case CORIO__OP_SENDMSG:  io_uring_prep_sendmsg(sqe, io->fd, io->msgp, (unsigned)io->flags); break;
    case CORIO__OP_ACCEPT:
        io_uring_prep_accept(sqe, io->fd, io->addr, io->addrlen, io->flags);
        break;
    case CORIO__OP_CONNECT:
        io_uring_prep_connect(sqe, io->fd, io->to, io->tolen);
        break;
    }
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)io);
}

/* One SQE out, wait for its CQE. */
static int submit_wait(corio_loop *l, corio_task *self, corio__io *io)
{
    corio__poller *p = &l->poller;
    int rc = corio__interrupt_pending(self);
    if (rc < 0)
        return rc;
    if ((rc = corio__compact_refuse(self)) < 0)
        return rc; /* its record (and buffer) would be reached while it is away */
    struct io_uring_sqe *sqe = get_sqe(p);
    if (!sqe)
        return -EBUSY; /* the kernel took none of a full ring: nothing was started */
    prep(io, sqe);
    if (io->polling)
        io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)io);
    corio__fd *f = corio__fd_find(p, io->fd);
    io->link.wait = &io->wait;
    io->link.won = NULL;
    corio__waitlist_push(&f->ops[0], &io->link);
    io->inflight = true;
    p->waiting++;
    io->wait.cancel = uring_cancel;
    io->wait.pass_on = NULL;
    return corio__suspend_as(l, self, &io->wait, true);
}

int64_t corio__uring_run(corio_loop *l, corio_task *self, corio__io *io)
{
    bool poll_only = io->op == CORIO__OP_POLL_IN || io->op == CORIO__OP_POLL_OUT;
    for (;;) {
        io->polling = false;
        int rc = submit_wait(l, self, io);
        if (rc == -EAGAIN && !poll_only) {
            /* an O_NONBLOCK fd: wait for readiness, then go again */
            io->polling = true;
            rc = submit_wait(l, self, io);
            if (rc < 0)
                return rc;
            continue;
        }
        if (poll_only && rc > 0)
            return 0; /* the poll's revents */
        return rc;
    }
}

/* corio_close: the operations still out on fd are cancelled (they hold the
 * file, not the number) and report -EBADF. */
void corio__uring_forget(corio_loop *l, int fd)
{
    corio__poller *p = &l->poller;
    corio__fd *f = corio__fd_find(p, fd);
    if (!f)
        return;
    for (corio__waiter *w = f->ops[0].head; w; w = w->next) {
        corio__io *io = (corio__io *)(void *)w->wait;
        io->closed = true;
        if (!io->wait.interrupted)
            uring_cancel(&io->wait);
    }
    f->seen = false;
}

#else /* CORIO_NO_IO_URING: built without liburing (cross builds) */

#include <errno.h>

int corio__uring_open(corio__poller *p)
{
    (void)p;
    return -ENOSYS;
}
void corio__uring_close(corio__poller *p) { (void)p; }
int corio__uring_wait(corio_loop *l, int64_t timeout_ns)
{
    (void)l, (void)timeout_ns;
    return -ENOSYS;
}
int64_t corio__uring_run(corio_loop *l, corio_task *self, corio__io *io)
{
    (void)l, (void)self, (void)io;
    return -ENOSYS;
}
void corio__uring_forget(corio_loop *l, int fd) { (void)l, (void)fd; }

#endif
