/* loop.c - the event loop: ready queue, turns, the scheduler, lifecycle.
 *
 * A turn, as in asyncio: fire the due timers, look at I/O, then run the
 * tasks that were ready when the turn began (a snapshot: what becomes ready
 * during the turn runs in the next one). Tasks switch to each other directly
 * (one context switch per handoff); the scheduler, on the thread's own stack,
 * runs only when nothing is ready: it blocks in the poller until the next
 * timer's deadline or an I/O event, or jumps the virtual clock. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

__thread corio_loop *corio__tls_loop __attribute__((tls_model("initial-exec")));

/* How many dispatches may pass before a busy loop looks at I/O again
 * (Tokio uses 61): often enough to keep sockets flowing, rarely enough that
 * the poll's system call stays off the hot path. */
#define POLL_INTERVAL 61

/* ---- clock ---------------------------------------------------------------------- */

static int64_t real_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t corio__now(corio_loop *l)
{
    return l->clock == CORIO_CLOCK_VIRTUAL ? l->vnow : real_now();
}

int64_t corio_now_ns(void)
{
    corio_loop *l = corio__tls_loop;
    return l ? corio__now(l) : 0;
}

/* The loop-clock deadline `seconds` from now, rounded up to whole ns (a
 * deadline never comes early); INT64_MAX for a negative or infinite
 * duration (none), or one past the clock's range. */
int64_t corio__deadline_in(corio_loop *l, double seconds)
{
    if (seconds < 0 || isinf(seconds))
        return INT64_MAX;
    double ns = ceil(seconds * 1e9);
    int64_t now = corio__now(l);
    return ns >= (double)(INT64_MAX - now) ? INT64_MAX : now + (int64_t)ns;
}

double corio_now(void)
{
    return (double)corio_now_ns() / 1e9;
}

/* ---- ready queue and turns ---------------------------------------------------------- */

void corio__soon_push(corio_loop *l, corio__soon *s)
{
    s->next = NULL;
    if (l->soon_tail)
        l->soon_tail->next = s;
    else
        l->soon_head = s;
    l->soon_tail = s;
}

/* Run the deferred calls queued so far (not those they queue: next turn),
 * outside any task, so that a call that would suspend gets -EPERM. */
static __attribute__((noinline)) void run_soon(corio_loop *l)
{
    corio__soon *s = l->soon_head;
    l->soon_head = l->soon_tail = NULL;
    corio_task *current = l->current;
    l->current = NULL;
    while (s) {
        corio__soon *next = s->next;
        s->run(l, s);
        s = next;
    }
    l->current = current;
}

/* Start a new turn: due timers, a look at I/O, then a snapshot of the queue,
 * then the deferred calls (what they make ready runs next turn, as in
 * asyncio). False when there is nothing to run (or the run is stopping). */
static bool turn_begin(corio_loop *l)
{
    if (l->stopping)
        return false;
    if (!corio__timers_empty(&l->timers))
        corio__timers_run_due(&l->timers, corio__now(l));
    if (corio__poller_busy(&l->poller) && l->since_poll >= POLL_INTERVAL) {
        corio__poller_wait(l, 0);
        l->since_poll = 0;
    }
    l->turn_left = l->ready_count;
    if (__builtin_expect(l->soon_head != NULL, 0))
        run_soon(l);
    return l->turn_left != 0;
}

/* The slow half of corio__pick_next: the turn is over (or the first task
 * was cancelled before it ran). */
corio_task *corio__pick_next_slow(corio_loop *l)
{
    for (;;) {
        if (l->turn_left == 0 && !turn_begin(l))
            return NULL;
        corio_task *t = corio__ready_pop(l);
        l->turn_left--;
        l->since_poll++;
        l->io_streak = 0;
        if (t->state == CORIO__T_NEW && (t->flags & CORIO__TF_CANCELLED)) {
            corio__task_end_unstarted(l, t, -ECANCELED);
            continue;
        }
        return t;
    }
}

/* ---- other threads ------------------------------------------------------------------- */

void corio__remote_begin(corio_loop *l)
{
    l->remote_expected++;
    l->poller.waiting++; /* busy: wait in the poller for the post */
}

void corio__remote_end(corio_loop *l)
{
    l->remote_expected--;
    l->poller.waiting--;
}

void corio__post(corio_loop *l, corio__soon *s)
{
    s->next = NULL;
    pthread_mutex_lock(&l->remote_lock);
    bool first = !l->remote_head;
    if (l->remote_tail)
        l->remote_tail->next = s;
    else
        l->remote_head = s;
    l->remote_tail = s;
    if (first) {
        /* One write per batch: the loop drains them all when it wakes.
         * Under the lock: once the loop has drained this post (which takes
         * the lock), the poster is done with the loop, which may then close. */
        uint64_t one = 1;
        while (write(l->poller.wakefd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
    pthread_mutex_unlock(&l->remote_lock);
}

void corio__remote_drain(corio_loop *l)
{
    uint64_t n;
    while (read(l->poller.wakefd, &n, sizeof n) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&l->remote_lock);
    corio__soon *s = l->remote_head;
    l->remote_head = l->remote_tail = NULL;
    pthread_mutex_unlock(&l->remote_lock);
    while (s) {
        corio__soon *next = s->next;
        corio__soon_push(l, s);
        s = next;
    }
}

/* ---- the scheduler ------------------------------------------------------------------ */

/* Nothing is ready: block until something can be. -EDEADLK when nothing ever can. */
static int wait_for_events(corio_loop *l)
{
    corio__timer *first = corio__timers_first(&l->timers);
    bool io = corio__poller_busy(&l->poller);
    if (!first && !io)
        return -EDEADLK;
    if (l->clock == CORIO_CLOCK_VIRTUAL) {
        /* time stands still while I/O can still happen; else jump to the next deadline */
        if (io && (corio__poller_wait(l, first ? 0 : -1) > 0 || !first))
            return 0;
        if (first->deadline > l->vnow)
            l->vnow = first->deadline;
        corio__timers_run_due(&l->timers, l->vnow);
        return 0;
    }
    int64_t now = real_now();
    if (!first || first->deadline > now) {
        int rc = corio__poller_wait(l, first ? first->deadline - now : -1);
        if (rc < 0)
            return rc;
        l->since_poll = 0;
        if (!first)
            return 0;
        now = real_now();
    }
    corio__timers_run_due(&l->timers, now);
    return 0;
}

static bool main_done(corio_loop *l)
{
    return l->main->state == CORIO__T_DONE;
}

static bool all_done(corio_loop *l)
{
    return l->live == 0 && !l->soon_head;
}

/* Run tasks until done(l); 0, or -EDEADLK (after reporting the stuck tasks). */
static int schedule_until(corio_loop *l, bool (*done)(corio_loop *))
{
    for (;;) {
        corio_task *t = l->handoff; /* picked by a compact task for the scheduler to bring in */
        l->handoff = NULL;
        while (!t && (t = corio__pick_next(l)) && !corio__task_prepare(l, t))
            t = NULL;
        if (t) {
            corio__switch_to(l, NULL, t);
            continue;
        }
        if (done(l))
            return 0;
        l->stopping = false;
        if (l->ready_count || l->soon_head)
            continue; /* made ready by the turn's deferred calls: a new turn */
        int rc = wait_for_events(l);
        if (rc == -EDEADLK)
            corio__report_stuck(l);
        if (rc < 0)
            return rc;
    }
}

/* ---- stack classes: one pool per distinct stack size ------------------------------------ */

int corio__stack_class(corio_loop *l, size_t size)
{
    for (int i = 0; i < l->nstack_classes; i++)
        if (l->stacks[i].size >= size && l->stacks[i].size - size < 4096)
            return i;
    if (l->nstack_classes == CORIO__MAX_STACK_CLASSES)
        return -ENOSPC;
    corio__stack_pool_init(&l->stacks[l->nstack_classes], size);
    return l->nstack_classes++;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static int clock_from(int kind)
{
    if (kind != CORIO_CLOCK_DEFAULT)
        return kind;
    const char *env = getenv("CORIO_CLOCK");
    return env && strcmp(env, "virtual") == 0 ? CORIO_CLOCK_VIRTUAL : CORIO_CLOCK_REAL;
}

static void find_thread_stack(corio_loop *l)
{
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &l->sched_stack_lo, &l->sched_stack_size);
        pthread_attr_destroy(&attr);
    }
}

int corio_loop_new(corio_loop **out, const corio_loop_opts *opts)
{
    corio_loop_opts o = opts ? *opts : (corio_loop_opts){0};
    if (!out)
        return -EINVAL;
    if (o.stack_size == 0)
        o.stack_size = CORIO_STACK_DEFAULT;
    if (o.stack_size < CORIO_STACK_MIN || o.stack_size > CORIO_STACK_MAX)
        return -EINVAL;
    if (o.clock < CORIO_CLOCK_DEFAULT || o.clock > CORIO_CLOCK_VIRTUAL)
        return -EINVAL;
    if (o.backend < CORIO_BACKEND_DEFAULT || o.backend > CORIO_BACKEND_IO_URING)
        return -EINVAL;
    if (corio__tls_loop)
        return -EBUSY;
    corio_loop *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    int rc = corio__poller_open(&l->poller, o.backend);
    if (rc < 0) {
        free(l);
        return rc;
    }
    pthread_mutex_init(&l->remote_lock, NULL);
    corio__timers_init(&l->timers);
    corio__mem_init(&l->mem);
    l->clock = clock_from(o.clock);
    l->default_class = (uint8_t)corio__stack_class(l, o.stack_size);
    find_thread_stack(l);
    corio__overflow_guard_install(l);
    corio__tls_loop = l;
    *out = l;
    return 0;
}

int corio_loop_run(corio_loop *l, corio_coro_t main, void **result)
{
    if (!l || !main.fn || l->state == CORIO__LOOP_CLOSED)
        return -EINVAL;
    if (l->state == CORIO__LOOP_RUNNING)
        return -EBUSY;
    if (corio__tls_loop != l)
        return -EXDEV;
    corio_task *t;
    int rc = corio__task_new(l, &t, main, l->default_class);
    if (rc < 0)
        return rc;
    l->main = t; /* the run frees it when it ends; tasks may await it */
    l->stopping = false;
    l->state = CORIO__LOOP_RUNNING;
    rc = schedule_until(l, main_done);
    l->state = CORIO__LOOP_IDLE;
    l->stopping = false;
    if (rc < 0) {
        t->flags |= CORIO__TF_RELEASED; /* main never ended: close reaps and frees it */
        l->main = NULL;
        return rc;
    }
    rc = t->status;
    if (result)
        *result = t->value;
    l->main = NULL;
    t->flags |= CORIO__TF_RELEASED; /* freed now, or once its done callbacks ran */
    corio__task_free_if_unused(l, t);
    return rc;
}

corio__close_stats corio__last_close;

static void record_close(corio_loop *l)
{
    corio__close_stats st = {.live_tasks = l->live, .timers = l->timers.count,
                             .closes = corio__last_close.closes + 1};
    for (int i = 0; i < l->nstack_classes; i++)
        st.stacks_in_use += l->stacks[i].in_use;
    for (corio__soon *s = l->soon_head; s; s = s->next)
        st.soon++;
    corio__last_close = st;
}

int corio_loop_close(corio_loop *l)
{
    if (!l)
        return -EINVAL;
    if (l->state == CORIO__LOOP_RUNNING)
        return -EBUSY;
    if (l->state == CORIO__LOOP_CLOSED)
        return 0;
    if (corio__tls_loop != l)
        return -EXDEV; /* its tasks' stacks belong to the loop's own thread */
    /* asyncio.run's epilogue: cancel what is left and let it wind down */
    corio__cancel_all(l);
    l->state = CORIO__LOOP_RUNNING;
    schedule_until(l, all_done);
    /* jobs abandoned by cancelled tasks still run on workers, and will post
     * to this loop: wait for them (asyncio.run shuts its executor down too) */
    while (l->remote_expected) {
        if (corio__poller_wait(l, -1) < 0)
            break;
        schedule_until(l, all_done);
    }
    l->state = CORIO__LOOP_CLOSED;
    corio__compact_free_all(l);
    record_close(l);
    corio__task_free_all(l);
    for (int i = 0; i < l->nstack_classes; i++)
        corio__stack_pool_fini(&l->stacks[i]);
    corio__timers_fini(&l->timers);
    corio__poller_close(&l->poller);
    corio__mem_fini(&l->mem);
    pthread_mutex_destroy(&l->remote_lock);
    corio__overflow_guard_remove(l);
    if (corio__tls_loop == l)
        corio__tls_loop = NULL;
    return 0;
}

int corio_loop_free(corio_loop *l)
{
    if (!l)
        return 0;
    int rc = corio_loop_close(l);
    if (rc < 0)
        return rc; /* still running, or on another thread: freeing would pull it from under its tasks */
    free(l);
    return 0;
}

int corio_run_opts(corio_coro_t main, void **result, const corio_loop_opts *opts)
{
    if (!main.fn)
        return -EINVAL;
    corio_loop *l;
    int rc = corio_loop_new(&l, opts);
    if (rc < 0)
        return rc;
    rc = corio_loop_run(l, main, result);
    corio_loop_free(l);
    return rc;
}

int corio_run(corio_coro_t main, void **result)
{
    return corio_run_opts(main, result, NULL);
}
