/* poller.h - where the loop blocks, and how fd operations reach the kernel.
 *
 * Two backends behind one contract:
 *   epoll     readiness: an operation tries its system call first; on EAGAIN
 *             the task waits on the fd (registered once, edge-triggered, for
 *             the fd's whole life) and tries again when an event comes.
 *   io_uring  completion: an operation is an SQE; the task waits for its
 *             CQE. SQEs queued by tasks go to the kernel in one batch when
 *             the loop next looks at I/O.
 * The loop calls corio__poller_wait when no task is ready (with the time
 * left to the next timer) or, while tasks keep running, every few dozen
 * dispatches (with a zero timeout), so a busy loop still sees I/O. Waits
 * that an event can complete count in `waiting`, which lets the loop tell
 * "blocked on I/O" from "deadlocked". Other threads wake the loop through
 * an eventfd (corio__post in loop.c). */
#ifndef CORIO_POLLER_H
#define CORIO_POLLER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct corio_loop corio_loop;
typedef struct corio_task corio_task;
struct io_uring;

/* What corio knows about one fd (epoll: its waiters and registration). */
typedef struct corio__fd corio__fd;

typedef struct corio__poller {
    int kind;             /* CORIO_BACKEND_EPOLL or CORIO_BACKEND_IO_URING */
    int epfd;             /* epoll */
    bool have_pwait2;     /* epoll_pwait2 (ns timeouts) works on this kernel */
    struct io_uring *ring;
    uint32_t waiting;     /* waits that an event can complete, plus remote jobs */
    uint32_t sq_pending;  /* io_uring: SQEs queued but not yet submitted */
    bool no_iowait;       /* io_uring: the kernel takes IORING_ENTER_NO_IOWAIT (6.15) */
    int wakefd;           /* eventfd other threads write to wake the loop */
    corio__fd **fds;      /* indexed by fd number, in chunks; grown on demand */
    int nchunks;
} corio__poller;

/* ---- fd operations -------------------------------------------------------------- */
enum corio__op {
    CORIO__OP_POLL_IN = 1, CORIO__OP_POLL_OUT,
    CORIO__OP_READ, CORIO__OP_READV, CORIO__OP_PREAD, CORIO__OP_RECV, CORIO__OP_RECVFROM,
    CORIO__OP_RECVMSG, CORIO__OP_ACCEPT,
    CORIO__OP_WRITE, CORIO__OP_WRITEV, CORIO__OP_PWRITE, CORIO__OP_SEND, CORIO__OP_SENDTO,
    CORIO__OP_SENDMSG, CORIO__OP_CONNECT,
};

static inline bool corio__op_is_input(int op)
{
    return op == CORIO__OP_POLL_IN || (op >= CORIO__OP_READ && op <= CORIO__OP_ACCEPT);
}

/* One operation, on the calling task's stack while it runs. The wait is
 * first so that a corio__wait pointer is also the operation's. */
typedef struct corio__io corio__io;

/* 0 or -errno. kind: CORIO_BACKEND_*, DEFAULT included (see corio.h). */
int corio__poller_open(corio__poller *p, int kind);
void corio__poller_close(corio__poller *p);
/* Block for at most timeout_ns (-1: until an event; 0: just look), deliver the
 * events that arrived. Returns how many, 0 on timeout, or -errno (EINTR is
 * reported as 0 events). Never returns before timeout_ns unless an event or a
 * signal came: the caller re-reads the clock and never fires timers early. */
int corio__poller_wait(corio_loop *l, int64_t timeout_ns);

static inline bool corio__poller_busy(const corio__poller *p) { return p->waiting != 0; }

/* Run one fd operation for the running task `self`: the result of the
 * system call, or -errno (-ECANCELED when cancelled). Defined in io.c over
 * the backends' halves below. */
int64_t corio__io_run(corio_loop *l, corio_task *self, corio__io *io);

/* The backends' halves (poller_epoll.c, poller_uring.c). */
int corio__epoll_open(corio__poller *p);
void corio__epoll_close(corio__poller *p);
int corio__epoll_wait(corio_loop *l, int64_t timeout_ns);
int64_t corio__epoll_run(corio_loop *l, corio_task *self, corio__io *io);
void corio__epoll_forget(corio_loop *l, int fd, bool fresh);

int corio__uring_open(corio__poller *p);
void corio__uring_close(corio__poller *p);
int corio__uring_wait(corio_loop *l, int64_t timeout_ns);
int64_t corio__uring_run(corio_loop *l, corio_task *self, corio__io *io);
void corio__uring_forget(corio_loop *l, int fd);

#endif
