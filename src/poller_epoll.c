/* poller_epoll.c - the epoll backend. epoll_pwait2 takes a nanosecond
 * timeout; where the kernel lacks it (before 5.11, or qemu-user) epoll_wait
 * gets the timeout rounded up to whole milliseconds, so a timer is never
 * woken for early. */
#include "poller.h"

#include <errno.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

int corio__poller_open(corio__poller *p)
{
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0)
        return -errno;
    p->have_pwait2 = 1;
    p->waiting = 0;
    return 0;
}

void corio__poller_close(corio__poller *p)
{
    if (p->epfd >= 0)
        close(p->epfd);
    p->epfd = -1;
}

static int wait_ms(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return -1;
    int64_t ms = (timeout_ns + 999999) / 1000000;
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

int corio__poller_wait(corio__poller *p, int64_t timeout_ns)
{
    struct epoll_event ev[64];
    int n = -1;
    if (p->have_pwait2) {
        struct timespec ts = {timeout_ns / 1000000000, timeout_ns % 1000000000};
        n = epoll_pwait2(p->epfd, ev, 64, timeout_ns < 0 ? NULL : &ts, NULL);
        if (n < 0 && (errno == ENOSYS || errno == EPERM))
            p->have_pwait2 = 0;      /* old kernel, seccomp or qemu-user */
    }
    if (!p->have_pwait2)
        n = epoll_wait(p->epfd, ev, 64, wait_ms(timeout_ns));
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    /* No fd is registered yet: fd waits arrive with the I/O layer. */
    return n;
}
