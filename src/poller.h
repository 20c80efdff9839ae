/* poller.h - where the loop blocks: the contract every I/O backend meets.
 *
 * The loop calls the poller only when no task is ready (with the time left
 * to the next timer) or, while tasks keep running, every few dozen dispatches
 * (with a zero timeout), so a busy loop still sees I/O. Backends: epoll now;
 * io_uring plugs in behind the same calls. A wait that an I/O event should
 * resolve registers itself with the backend and counts in `waiting`, which
 * lets the loop tell "blocked on I/O" from "deadlocked". */
#ifndef CORIO_POLLER_H
#define CORIO_POLLER_H

#include <stdint.h>

typedef struct corio__poller {
    int epfd;
    int have_pwait2;      /* epoll_pwait2 (ns timeouts) works on this kernel */
    uint32_t waiting;     /* registered waits that an event can complete */
} corio__poller;

/* 0 or -errno. */
int corio__poller_open(corio__poller *p);
void corio__poller_close(corio__poller *p);
/* Block for at most timeout_ns (-1: until an event; 0: just look), deliver the
 * events that arrived. Returns how many, 0 on timeout, or -errno (EINTR is
 * reported as 0 events). Never returns before timeout_ns unless an event or a
 * signal came: the caller re-reads the clock and never fires timers early. */
int corio__poller_wait(corio__poller *p, int64_t timeout_ns);

static inline int corio__poller_busy(const corio__poller *p) { return p->waiting != 0; }

#endif
