/* test/test_api_sync.c - Event, Lock, Semaphore, BoundedSemaphore, Condition
 * and Barrier (corio.h, "Synchronization").
 *
 * Three parts: asyncio's own cases (CPython's Lib/test/test_asyncio/
 * test_locks.py, written anew in C where they apply), cancel and timeout at
 * every suspension of each operation (a cancelled waiter leaves the object as
 * if it had never waited, and passes on what it had been handed), FIFO
 * fairness, then bad input (NULL, zeroed, destroyed objects, waits outside a
 * task, another thread's loop).
 *
 * Everything timed runs on the virtual clock, so the instants asserted with
 * corio_now_ns() are exact. Test names start with "sync_" so that
 * `corio_tests sync` selects them all. */
#include "test.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define SEC 1000000000LL
#define MS 1000000LL

/* ---- a generic waiter ------------------------------------------------------------
 * One task doing one wait on one object, optionally inside a timeout scope,
 * recording what it got. Its trace entry is its name, then "!" for
 * -ECANCELED, ":pipe" for -EPIPE, "#i" for a barrier index, ":rc" for any
 * other error. */

enum { OP_EVENT = 1, OP_LOCK, OP_SEM, OP_COND, OP_COND_FOR, OP_BARRIER };

typedef struct waiter {
    const char *name;
    int op;
    void *obj;
    int64_t timeout_ns;  /* > 0: the wait runs in a timeout scope this long */
    int release;         /* lock/sem: release after a successful acquire; cond: always */
    int (*pred)(void *); /* OP_COND_FOR */
    void *parg;
    corio_scope scope;   /* the timeout scope (others may reschedule it) */
    int started;
    int rc;              /* what the wait returned */
    int scope_rc;        /* what the scope's end returned */
    int lock_held;       /* cond: corio_lock_locked(cond's lock) when the wait returned */
    int release_rc;
    int64_t at;          /* corio_now_ns() when the wait returned */
    int done;
} waiter;

static void trace_rc(const char *name, int op, int rc)
{
    if (op == OP_BARRIER && rc >= 0)
        test_trace("%s#%d", name, rc);
    else if (rc == 0)
        test_trace("%s", name);
    else if (rc == -ECANCELED)
        test_trace("%s!", name);
    else if (rc == -EPIPE)
        test_trace("%s:pipe", name);
    else
        test_trace("%s:%d", name, rc);
}

static void *waiter_fn(void *arg)
{
    waiter *w = arg;
    w->started = 1;
    if (w->op == OP_COND || w->op == OP_COND_FOR)
        ASSERT_EQ(corio_lock_acquire(corio_cond_lock(w->obj)), 0);
    if (w->timeout_ns > 0)
        ASSERT_EQ(corio_timeout_begin_ns(&w->scope, w->timeout_ns), 0);
    int rc = -ENOSYS;
    switch (w->op) {
    case OP_EVENT: rc = corio_event_wait(w->obj); break;
    case OP_LOCK: rc = corio_lock_acquire(w->obj); break;
    case OP_SEM: rc = corio_sem_acquire(w->obj); break;
    case OP_COND: rc = corio_cond_wait(w->obj); break;
    case OP_COND_FOR: rc = corio_cond_wait_for(w->obj, w->pred, w->parg); break;
    case OP_BARRIER: rc = corio_barrier_wait(w->obj); break;
    }
    w->rc = rc;
    w->at = corio_now_ns();
    if (w->op == OP_COND || w->op == OP_COND_FOR)
        w->lock_held = corio_lock_locked(corio_cond_lock(w->obj));
    if (w->timeout_ns > 0)
        w->scope_rc = corio_scope_end(&w->scope);
    trace_rc(w->name, w->op, rc);
    if (w->release) {
        if (w->op == OP_LOCK && rc == 0)
            w->release_rc = corio_lock_release(w->obj);
        else if (w->op == OP_SEM && rc == 0)
            w->release_rc = corio_sem_release(w->obj);
        else if (w->op == OP_COND || w->op == OP_COND_FOR)
            w->release_rc = corio_lock_release(corio_cond_lock(w->obj));
    }
    w->done = 1;
    return rc < 0 ? corio_fail(rc) : (void *)(intptr_t)rc;
}

static corio_task *go(waiter *w)
{
    corio_task *t = corio_create_task(corio_coro(waiter_fn, w));
    ASSERT_NOT_NULL(t);
    return t;
}

/* Await t, release it, return its status. */
static int finish(corio_task *t)
{
    int rc = corio_await(t, NULL);
    ASSERT_EQ(corio_task_release(t), 0);
    return rc;
}

static int never(void *arg)
{
    (void)arg;
    return 0;
}

static int always(void *arg)
{
    (void)arg;
    return 1;
}

static int int_nonzero(void *arg)
{
    return *(int *)arg != 0;
}

static int int_zero(void *arg)
{
    return *(int *)arg == 0;
}

static void *run_event_wait(void *arg)
{
    int rc = corio_event_wait(arg);
    return rc < 0 ? corio_fail(rc) : NULL;
}

static void *run_lock_acquire(void *arg)
{
    int rc = corio_lock_acquire(arg);
    return rc < 0 ? corio_fail(rc) : NULL;
}

static void *run_sem_acquire(void *arg)
{
    int rc = corio_sem_acquire(arg);
    return rc < 0 ? corio_fail(rc) : NULL;
}

static void *run_cond_wait(void *arg)
{
    int rc = corio_cond_wait(arg);
    return rc < 0 ? corio_fail(rc) : NULL;
}

static void *run_barrier_wait(void *arg)
{
    int rc = corio_barrier_wait(arg);
    return rc < 0 ? corio_fail(rc) : NULL;
}

static void *trace_arg(void *arg)
{
    test_trace("%s", (const char *)arg);
    return NULL;
}

/* =================================================================================
 * Event
 * ================================================================================= */

static void *main_event_basics(void *arg)
{
    (void)arg;
    corio_event ev;
    ASSERT_EQ(corio_event_init(&ev), 0);
    ASSERT_EQ(corio_event_is_set(&ev), 0);
    ASSERT_EQ(corio_event_set(&ev), 0);
    ASSERT_EQ(corio_event_is_set(&ev), 1);
    ASSERT_EQ(corio_event_set(&ev), 0);
    ASSERT_EQ(corio_event_is_set(&ev), 1);
    ASSERT_EQ(corio_event_clear(&ev), 0);
    ASSERT_EQ(corio_event_is_set(&ev), 0);
    ASSERT_EQ(corio_event_clear(&ev), 0);
    ASSERT_EQ(corio_event_is_set(&ev), 0);

    /* asyncio test_wait_on_set: waiting on a set event returns at once,
     * without suspending (the task created before does not run first) */
    ASSERT_EQ(corio_event_set(&ev), 0);
    test_trace_reset();
    corio_task *t = corio_create_task(corio_coro(trace_arg, "T"));
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(corio_event_wait(&ev), 0);
    ASSERT_EQ(corio_event_wait(&ev), 0);
    test_trace("main");
    ASSERT_EQ(finish(t), 0);
    ASSERT_STR_EQ(test_trace_get(), "main T");
    ASSERT_EQ(corio_event_is_set(&ev), 1); /* waiting does not clear it */
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_event_destroy(&ev), 0);
    return NULL;
}

TEST(sync_event_set_clear_is_set)
{
    ASSERT_EQ(test_run_virtual(main_event_basics, NULL, NULL), 0);
}

/* asyncio test_wait: set wakes every waiter, in the order they came */
static void *main_event_wait(void *arg)
{
    (void)arg;
    corio_event ev;
    ASSERT_EQ(corio_event_init(&ev), 0);
    test_trace_reset();
    waiter w1 = {.name = "1", .op = OP_EVENT, .obj = &ev};
    waiter w2 = {.name = "2", .op = OP_EVENT, .obj = &ev};
    waiter w3 = {.name = "3", .op = OP_EVENT, .obj = &ev};
    corio_task *t1 = go(&w1), *t2 = go(&w2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "");
    ASSERT_EQ(corio_event_destroy(&ev), -EBUSY);
    corio_task *t3 = go(&w3);
    ASSERT_EQ(corio_event_set(&ev), 0);
    ASSERT_EQ(corio_yield(), 0);
    /* t3 was scheduled before set woke the others, and found it set */
    ASSERT_STR_EQ(test_trace_get(), "3 1 2");
    ASSERT_EQ(finish(t1), 0);
    ASSERT_EQ(finish(t2), 0);
    ASSERT_EQ(finish(t3), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_event_destroy(&ev), 0);
    return NULL;
}

TEST(sync_event_set_wakes_all_waiters_fifo)
{
    ASSERT_EQ(test_run_virtual(main_event_wait, NULL, NULL), 0);
}

/* asyncio test_clear_with_waiters: a waiter woken by set returns 0 even if
 * the event is cleared before it runs; it is woken once */
static void *main_event_clear_with_waiters(void *arg)
{
    (void)arg;
    corio_event ev;
    ASSERT_EQ(corio_event_init(&ev), 0);
    test_trace_reset();
    waiter w = {.name = "1", .op = OP_EVENT, .obj = &ev};
    corio_task *t = go(&w);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "");
    ASSERT_EQ(corio_event_set(&ev), 0);
    ASSERT_EQ(corio_event_clear(&ev), 0);
    ASSERT_EQ(corio_event_is_set(&ev), 0);
    ASSERT_EQ(corio_event_set(&ev), 0);
    ASSERT_EQ(corio_event_set(&ev), 0);
    ASSERT_EQ(corio_event_destroy(&ev), 0); /* nobody waits any more */
    ASSERT_EQ(corio_event_init(&ev), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "1");
    ASSERT_EQ(w.done, 1);
    ASSERT_EQ(finish(t), 0);

    /* cleared with a waiter: it keeps waiting until the next set */
    waiter w2 = {.name = "2", .op = OP_EVENT, .obj = &ev};
    t = go(&w2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_event_clear(&ev), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(w2.done, 0);
    ASSERT_EQ(corio_event_set(&ev), 0);
    ASSERT_EQ(finish(t), 0);
    ASSERT_STR_EQ(test_trace_get(), "1 2");
    ASSERT_EQ(corio_event_destroy(&ev), 0);
    return NULL;
}

TEST(sync_event_clear_with_waiters)
{
    ASSERT_EQ(test_run_virtual(main_event_clear_with_waiters, NULL, NULL), 0);
}

/* asyncio test_wait_cancel: a cancelled waiter leaves no trace */
static void *main_event_wait_cancel(void *arg)
{
    (void)arg;
    corio_event ev;
    ASSERT_EQ(corio_event_init(&ev), 0);
    test_trace_reset();
    waiter w = {.name = "A", .op = OP_EVENT, .obj = &ev};
    corio_task *t = go(&w);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_event_destroy(&ev), -EBUSY);
    ASSERT_EQ(corio_cancel(t), 1);
    /* at once, before it even resumes: nobody waits on the event */
    ASSERT_EQ(corio_event_destroy(&ev), 0);
    ASSERT_EQ(corio_event_init(&ev), 0);
    ASSERT_EQ(finish(t), -ECANCELED);
    ASSERT_EQ(w.rc, -ECANCELED);
    ASSERT_EQ(corio_event_is_set(&ev), 0);

    /* the middle one of three: the others are woken by set, in order */
    test_trace_reset();
    waiter a = {.name = "A", .op = OP_EVENT, .obj = &ev};
    waiter b = {.name = "B", .op = OP_EVENT, .obj = &ev};
    waiter c = {.name = "C", .op = OP_EVENT, .obj = &ev};
    corio_task *ta = go(&a), *tb = go(&b), *tc = go(&c);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(tb), 1);
    ASSERT_EQ(corio_event_set(&ev), 0);
    ASSERT_EQ(finish(ta), 0);
    ASSERT_EQ(finish(tb), -ECANCELED);
    ASSERT_EQ(finish(tc), 0);
    ASSERT_STR_EQ(test_trace_get(), "B! A C");
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_event_destroy(&ev), 0);
    return NULL;
}

TEST(sync_event_wait_cancel)
{
    ASSERT_EQ(test_run_virtual(main_event_wait_cancel, NULL, NULL), 0);
}

static void *setter_at(void *arg)
{
    corio_event *ev = arg;
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_event_set(ev), 0);
    return NULL;
}

static void *main_event_wait_timeout(void *arg)
{
    (void)arg;
    corio_event ev;
    ASSERT_EQ(corio_event_init(&ev), 0);
    waiter w = {.name = "W", .op = OP_EVENT, .obj = &ev, .timeout_ns = 1500 * MS};
    corio_task *t = go(&w);
    ASSERT_EQ(finish(t), -ECANCELED);
    ASSERT_EQ(w.at, 1500 * MS);
    ASSERT_EQ(w.scope_rc, -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 1500 * MS);
    ASSERT_EQ(corio_event_is_set(&ev), 0);
    ASSERT_EQ(corio_event_destroy(&ev), 0); /* nobody waits */
    ASSERT_EQ(corio_event_init(&ev), 0);

    /* asyncio.wait_for(ev.wait(), 0.25) */
    ASSERT_EQ(corio_wait_for(corio_coro(run_event_wait, &ev), 0.25, NULL), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 1750 * MS);
    ASSERT_EQ(corio_event_destroy(&ev), 0);
    ASSERT_EQ(corio_event_init(&ev), 0);

    /* set before the deadline: 0, and the scope reports nothing */
    waiter w2 = {.name = "W2", .op = OP_EVENT, .obj = &ev, .timeout_ns = 2 * SEC};
    corio_task *s = corio_create_task(corio_coro(setter_at, &ev));
    ASSERT_NOT_NULL(s);
    t = go(&w2);
    ASSERT_EQ(finish(t), 0);
    ASSERT_EQ(w2.at, 2750 * MS);
    ASSERT_EQ(w2.scope_rc, 0);
    ASSERT_EQ(finish(s), 0);
    ASSERT_EQ(corio_event_clear(&ev), 0);

    /* the set and the deadline at the same instant (the setter's timer is
     * older): the deadline fires before the setter runs, the wait is cut */
    waiter w3 = {.name = "W3", .op = OP_EVENT, .obj = &ev, .timeout_ns = 1 * SEC};
    s = corio_create_task(corio_coro(setter_at, &ev));
    ASSERT_NOT_NULL(s);
    t = go(&w3);
    ASSERT_EQ(finish(t), -ECANCELED);
    ASSERT_EQ(w3.at, 3750 * MS);
    ASSERT_EQ(w3.scope_rc, -ETIMEDOUT);
    ASSERT_EQ(finish(s), 0);
    ASSERT_EQ(corio_event_is_set(&ev), 1);
    ASSERT_EQ(corio_event_destroy(&ev), 0);
    return NULL;
}

TEST(sync_event_wait_timeout)
{
    ASSERT_EQ(test_run_virtual(main_event_wait_timeout, NULL, NULL), 0);
}

/* Woken by set, then cancelled (or timed out) before it resumed: it reports
 * -ECANCELED; the event stays set and the other waiters are not affected. */
static void *main_event_woken_then_cancelled(void *arg)
{
    (void)arg;
    corio_event ev;
    ASSERT_EQ(corio_event_init(&ev), 0);
    test_trace_reset();
    waiter a = {.name = "A", .op = OP_EVENT, .obj = &ev};
    waiter b = {.name = "B", .op = OP_EVENT, .obj = &ev};
    waiter c = {.name = "C", .op = OP_EVENT, .obj = &ev, .timeout_ns = 10 * SEC};
    corio_task *ta = go(&a), *tb = go(&b), *tc = go(&c);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_event_set(&ev), 0);
    ASSERT_EQ(corio_cancel(ta), 1);
    ASSERT_EQ(corio_scope_reschedule(&c.scope, corio_now_ns()), 0); /* expires now */
    ASSERT_EQ(finish(ta), -ECANCELED);
    ASSERT_EQ(finish(tb), 0);
    ASSERT_EQ(finish(tc), -ECANCELED);
    ASSERT_EQ(c.scope_rc, -ETIMEDOUT);
    ASSERT_STR_EQ(test_trace_get(), "A! B C!");
    ASSERT_EQ(corio_event_is_set(&ev), 1);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_event_destroy(&ev), 0);
    return NULL;
}

TEST(sync_event_woken_then_cancelled)
{
    ASSERT_EQ(test_run_virtual(main_event_woken_then_cancelled, NULL, NULL), 0);
}

/* =================================================================================
 * Lock
 * ================================================================================= */

/* asyncio test_acquire: FIFO handoff, one waiter per release */
static void *main_lock_acquire(void *arg)
{
    (void)arg;
    corio_lock lk;
    ASSERT_EQ(corio_lock_init(&lk), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    test_trace_reset();
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 1);
    waiter w1 = {.name = "1", .op = OP_LOCK, .obj = &lk};
    waiter w2 = {.name = "2", .op = OP_LOCK, .obj = &lk};
    waiter w3 = {.name = "3", .op = OP_LOCK, .obj = &lk};
    corio_task *t1 = go(&w1), *t2 = go(&w2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "");
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "1");
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "1");
    corio_task *t3 = go(&w3);
    ASSERT_EQ(corio_lock_release(&lk), 0); /* t1 held it; any task may release */
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "1 2");
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "1 2 3");
    ASSERT_EQ(finish(t1), 0);
    ASSERT_EQ(finish(t2), 0);
    ASSERT_EQ(finish(t3), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 1); /* t3 has it */
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), 0);
    return NULL;
}

TEST(sync_lock_acquire_release_order)
{
    ASSERT_EQ(test_run_virtual(main_lock_acquire, NULL, NULL), 0);
}

/* asyncio test_release_not_acquired, test_release_no_waiters */
static void *main_lock_release_unlocked(void *arg)
{
    (void)arg;
    corio_lock lk;
    ASSERT_EQ(corio_lock_init(&lk), 0);
    ASSERT_EQ(corio_lock_release(&lk), -EPERM);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 1);
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(corio_lock_release(&lk), -EPERM);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(corio_lock_try_acquire(&lk), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 1);
    ASSERT_EQ(corio_lock_try_acquire(&lk), -EAGAIN);
    ASSERT_EQ(corio_lock_locked(&lk), 1);
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_lock_release(&lk), -EPERM);
    ASSERT_EQ(corio_lock_acquire(&lk), 0); /* still usable after the errors */
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), 0);
    return NULL;
}

TEST(sync_lock_release_unlocked_is_eperm)
{
    ASSERT_EQ(test_run_virtual(main_lock_release_unlocked, NULL, NULL), 0);
}

/* release hands the lock straight to the first waiter: nobody can barge in,
 * neither try_acquire nor acquire of the releasing task */
static void *main_lock_handoff(void *arg)
{
    (void)arg;
    corio_lock lk;
    ASSERT_EQ(corio_lock_init(&lk), 0);
    test_trace_reset();
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    waiter w = {.name = "W", .op = OP_LOCK, .obj = &lk, .release = 1};
    corio_task *t = go(&w);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 1); /* W's now, though it has not run */
    ASSERT_EQ(corio_lock_try_acquire(&lk), -EAGAIN);
    ASSERT_EQ(corio_lock_acquire(&lk), 0); /* queues behind W */
    test_trace("main");
    ASSERT_STR_EQ(test_trace_get(), "W main");
    ASSERT_EQ(w.release_rc, 0);
    ASSERT_EQ(finish(t), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 1);
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), 0);
    return NULL;
}

TEST(sync_lock_release_hands_off_no_barging)
{
    ASSERT_EQ(test_run_virtual(main_lock_handoff, NULL, NULL), 0);
}

/* asyncio test_acquire_cancel: a cancelled waiter leaves the lock's queue */
static void *main_lock_acquire_cancel(void *arg)
{
    (void)arg;
    corio_lock lk;
    ASSERT_EQ(corio_lock_init(&lk), 0);
    test_trace_reset();
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    waiter a = {.name = "A", .op = OP_LOCK, .obj = &lk};
    corio_task *ta = go(&a);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(ta), 1);
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 0); /* A no longer waited */
    ASSERT_EQ(finish(ta), -ECANCELED);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), 0);
    ASSERT_EQ(corio_lock_init(&lk), 0);

    /* the middle of three: the lock skips it */
    test_trace_reset();
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    waiter b = {.name = "B", .op = OP_LOCK, .obj = &lk, .release = 1};
    waiter c = {.name = "C", .op = OP_LOCK, .obj = &lk, .release = 1};
    waiter d = {.name = "D", .op = OP_LOCK, .obj = &lk, .release = 1};
    corio_task *tb = go(&b), *tc = go(&c), *td = go(&d);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(tc), 1);
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(finish(td), 0);
    ASSERT_EQ(finish(tb), 0);
    ASSERT_EQ(finish(tc), -ECANCELED);
    ASSERT_STR_EQ(test_trace_get(), "C! B D");
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), 0);
    return NULL;
}

TEST(sync_lock_acquire_cancel)
{
    ASSERT_EQ(test_run_virtual(main_lock_acquire_cancel, NULL, NULL), 0);
}

/* asyncio test_cancel_race: A holds the lock, B and C wait; A releases (it
 * goes to B) and B is cancelled at the same moment: C gets it. */
struct lockit {
    corio_lock *lk;
    corio_event *blocker;
    int acquired;
};

static void *lockit_fn(void *arg)
{
    struct lockit *k = arg;
    int rc = corio_lock_acquire(k->lk);
    if (rc < 0)
        return corio_fail(rc);
    k->acquired++;
    if (k->blocker)
        ASSERT_EQ(corio_event_wait(k->blocker), 0);
    ASSERT_EQ(corio_lock_release(k->lk), 0);
    return NULL;
}

static void *main_lock_cancel_race(void *arg)
{
    (void)arg;
    corio_lock lk;
    corio_event fa;
    ASSERT_EQ(corio_lock_init(&lk), 0);
    ASSERT_EQ(corio_event_init(&fa), 0);
    struct lockit a = {&lk, &fa, 0}, b = {&lk, NULL, 0}, c = {&lk, NULL, 0};
    corio_task *ta = corio_create_task(corio_coro(lockit_fn, &a));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 1);
    corio_task *tb = corio_create_task(corio_coro(lockit_fn, &b));
    ASSERT_EQ(corio_yield(), 0);
    corio_task *tc = corio_create_task(corio_coro(lockit_fn, &c));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), -EBUSY);
    /* the race: A is let go (it will release), B is cancelled */
    ASSERT_EQ(corio_event_set(&fa), 0);
    ASSERT_EQ(corio_cancel(tb), 1);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_task_done(ta), 1);
    ASSERT_EQ(finish(tb), -ECANCELED);
    ASSERT_EQ(finish(tc), 0);
    ASSERT_EQ(finish(ta), 0);
    ASSERT_EQ(a.acquired + b.acquired * 10 + c.acquired * 100, 101);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), 0);
    ASSERT_EQ(corio_event_destroy(&fa), 0);
    return NULL;
}

TEST(sync_lock_cancel_race)
{
    ASSERT_EQ(test_run_virtual(main_lock_cancel_race, NULL, NULL), 0);
}

/* asyncio test_cancel_release_race (bpo-32734): cancel the first of three
 * waiters and release: exactly one task gets the lock. */
struct counted {
    corio_lock *lk;
    int *calls, *locks;
};

static void *counted_lockit(void *arg)
{
    struct counted *k = arg;
    (*k->calls)++;
    int rc = corio_lock_acquire(k->lk);
    if (rc < 0)
        return corio_fail(rc);
    (*k->locks)++;
    return NULL;
}

static void *main_lock_cancel_release_race(void *arg)
{
    (void)arg;
    corio_lock lk;
    int calls = 0, locks = 0;
    ASSERT_EQ(corio_lock_init(&lk), 0);
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    struct counted k = {&lk, &calls, &locks};
    corio_task *t1 = corio_create_task(corio_coro(counted_lockit, &k));
    corio_task *t2 = corio_create_task(corio_coro(counted_lockit, &k));
    corio_task *t3 = corio_create_task(corio_coro(counted_lockit, &k));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(t1), 1);
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_await(t1, NULL), -ECANCELED);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(locks, 1);
    ASSERT_EQ(calls, 3);
    ASSERT_EQ(corio_task_done(t2), 1);
    ASSERT_EQ(corio_task_done(t3), 0);
    ASSERT_EQ(corio_cancel(t3), 1);
    ASSERT_EQ(finish(t3), -ECANCELED);
    ASSERT_EQ(finish(t2), 0);
    ASSERT_EQ(finish(t1), -ECANCELED);
    ASSERT_EQ(locks, 1);
    ASSERT_EQ(corio_lock_locked(&lk), 1); /* t2 ended holding it */
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), 0);
    return NULL;
}

TEST(sync_lock_cancel_release_race)
{
    ASSERT_EQ(test_run_virtual(main_lock_cancel_release_race, NULL, NULL), 0);
}

/* asyncio test_finished_waiter_cancelled, and the rest of the woken-then-
 * cancelled cases: the lock handed to a waiter that is cancelled (or whose
 * scope expires) before it resumes goes to the next waiter, or is unlocked. */
static void *main_lock_woken_then_cancelled(void *arg)
{
    (void)arg;
    corio_lock lk;
    ASSERT_EQ(corio_lock_init(&lk), 0);

    /* to the next waiter */
    test_trace_reset();
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    waiter b = {.name = "B", .op = OP_LOCK, .obj = &lk, .release = 1};
    waiter c = {.name = "C", .op = OP_LOCK, .obj = &lk, .release = 1};
    corio_task *tb = go(&b), *tc = go(&c);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_release(&lk), 0); /* B's */
    ASSERT_EQ(corio_cancel(tb), 1);        /* B passes it on to C */
    ASSERT_EQ(corio_lock_locked(&lk), 1);
    ASSERT_EQ(corio_lock_try_acquire(&lk), -EAGAIN);
    ASSERT_EQ(finish(tc), 0);
    ASSERT_EQ(finish(tb), -ECANCELED);
    ASSERT_STR_EQ(test_trace_get(), "B! C");
    ASSERT_EQ(corio_lock_locked(&lk), 0);

    /* nobody next: back to unlocked, at once */
    test_trace_reset();
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    waiter d = {.name = "D", .op = OP_LOCK, .obj = &lk, .release = 1};
    corio_task *td = go(&d);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_cancel(td), 1);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(corio_lock_try_acquire(&lk), 0);
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(finish(td), -ECANCELED);
    ASSERT_STR_EQ(test_trace_get(), "D!");
    ASSERT_EQ(corio_lock_locked(&lk), 0);

    /* a chain: E and F both cancelled after being handed the lock, G gets it */
    test_trace_reset();
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    waiter e = {.name = "E", .op = OP_LOCK, .obj = &lk, .release = 1};
    waiter f = {.name = "F", .op = OP_LOCK, .obj = &lk, .release = 1};
    waiter g = {.name = "G", .op = OP_LOCK, .obj = &lk, .release = 1};
    corio_task *te = go(&e), *tf = go(&f), *tg = go(&g);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_cancel(te), 1);
    ASSERT_EQ(corio_cancel(tf), 1);
    ASSERT_EQ(finish(tg), 0);
    ASSERT_EQ(finish(te), -ECANCELED);
    ASSERT_EQ(finish(tf), -ECANCELED);
    ASSERT_STR_EQ(test_trace_get(), "E! F! G");
    ASSERT_EQ(corio_lock_locked(&lk), 0);

    /* the same with scopes expiring instead of cancels */
    test_trace_reset();
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    waiter h = {.name = "H", .op = OP_LOCK, .obj = &lk, .release = 1, .timeout_ns = 10 * SEC};
    waiter i = {.name = "I", .op = OP_LOCK, .obj = &lk, .release = 1, .timeout_ns = 10 * SEC};
    corio_task *th = go(&h), *ti = go(&i);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_release(&lk), 0); /* H's */
    ASSERT_EQ(corio_scope_reschedule(&h.scope, corio_now_ns()), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 1);  /* I's */
    ASSERT_EQ(finish(ti), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(finish(th), -ECANCELED);
    ASSERT_EQ(h.scope_rc, -ETIMEDOUT);
    ASSERT_EQ(i.scope_rc, 0);
    ASSERT_STR_EQ(test_trace_get(), "H! I");

    test_trace_reset();
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    waiter j = {.name = "J", .op = OP_LOCK, .obj = &lk, .release = 1, .timeout_ns = 10 * SEC};
    corio_task *tj = go(&j);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_scope_reschedule(&j.scope, corio_now_ns()), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(finish(tj), -ECANCELED);
    ASSERT_EQ(j.scope_rc, -ETIMEDOUT);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), 0);
    return NULL;
}

TEST(sync_lock_woken_then_cancelled_passes_on)
{
    ASSERT_EQ(test_run_virtual(main_lock_woken_then_cancelled, NULL, NULL), 0);
}

static void *release_lock_after_1s(void *arg)
{
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_lock_release(arg), 0);
    return NULL;
}

static void *main_lock_timeout(void *arg)
{
    (void)arg;
    corio_lock lk;
    ASSERT_EQ(corio_lock_init(&lk), 0);
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    waiter w = {.name = "W", .op = OP_LOCK, .obj = &lk, .release = 1, .timeout_ns = 1 * SEC};
    corio_task *t = go(&w);
    ASSERT_EQ(finish(t), -ECANCELED);
    ASSERT_EQ(w.at, 1 * SEC);
    ASSERT_EQ(w.scope_rc, -ETIMEDOUT);
    ASSERT_EQ(corio_lock_locked(&lk), 1); /* still main's */
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 0); /* W did not wait on any more */

    /* asyncio.wait_for(lock.acquire(), 0.5) */
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    ASSERT_EQ(corio_wait_for(corio_coro(run_lock_acquire, &lk), 0.5, NULL), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 1500 * MS);
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 0);

    /* released before the deadline: acquired, the scope reports nothing */
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    corio_task *r = corio_create_task(corio_coro(release_lock_after_1s, &lk));
    waiter w2 = {.name = "W2", .op = OP_LOCK, .obj = &lk, .release = 1, .timeout_ns = 2 * SEC};
    t = go(&w2);
    ASSERT_EQ(finish(t), 0);
    ASSERT_EQ(w2.at, 2500 * MS);
    ASSERT_EQ(w2.scope_rc, 0);
    ASSERT_EQ(finish(r), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 0);

    /* released at the very instant of the deadline (the releaser's timer is
     * older): the deadline fires first, the release finds nobody waiting */
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    r = corio_create_task(corio_coro(release_lock_after_1s, &lk));
    waiter w3 = {.name = "W3", .op = OP_LOCK, .obj = &lk, .release = 1, .timeout_ns = 1 * SEC};
    t = go(&w3);
    ASSERT_EQ(finish(t), -ECANCELED);
    ASSERT_EQ(w3.at, 3500 * MS);
    ASSERT_EQ(w3.scope_rc, -ETIMEDOUT);
    ASSERT_EQ(finish(r), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), 0);
    return NULL;
}

TEST(sync_lock_acquire_timeout)
{
    ASSERT_EQ(test_run_virtual(main_lock_timeout, NULL, NULL), 0);
}

/* Fairness: tasks that release and at once re-acquire a contended lock
 * queue behind the others: strict round robin. */
struct looper {
    const char *name;
    int op; /* OP_LOCK or OP_SEM */
    void *obj;
    int rounds;
    int64_t hold_ns; /* 0: hold across a yield; else sleep that long */
};

static void *looper_fn(void *arg)
{
    struct looper *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        if (p->op == OP_LOCK)
            ASSERT_EQ(corio_lock_acquire(p->obj), 0);
        else
            ASSERT_EQ(corio_sem_acquire(p->obj), 0);
        if (p->hold_ns) {
            test_trace("%s%d@%lld", p->name, i, (long long)(corio_now_ns() / MS));
            ASSERT_EQ(corio_sleep_ns(p->hold_ns), 0);
        } else {
            test_trace("%s%d", p->name, i);
            ASSERT_EQ(corio_yield(), 0);
        }
        if (p->op == OP_LOCK)
            ASSERT_EQ(corio_lock_release(p->obj), 0);
        else
            ASSERT_EQ(corio_sem_release(p->obj), 0);
    }
    return NULL;
}

static void run_loopers(struct looper *p, int n)
{
    corio_task *t[8] = {NULL};
    ASSERT_LE(n, 8);
    for (int i = 0; i < n; i++) {
        t[i] = corio_create_task(corio_coro(looper_fn, &p[i]));
        ASSERT_NOT_NULL(t[i]);
    }
    ASSERT_EQ(corio_gather_tasks(t, (size_t)n, NULL), 0);
    for (int i = 0; i < n; i++)
        ASSERT_EQ(corio_task_release(t[i]), 0);
}

static void *main_lock_fair(void *arg)
{
    (void)arg;
    corio_lock lk;
    ASSERT_EQ(corio_lock_init(&lk), 0);
    test_trace_reset();
    struct looper p[3] = {{"A", OP_LOCK, &lk, 3, 0}, {"B", OP_LOCK, &lk, 3, 0},
                          {"C", OP_LOCK, &lk, 3, 0}};
    run_loopers(p, 3);
    ASSERT_STR_EQ(test_trace_get(), "A0 B0 C0 A1 B1 C1 A2 B2 C2");
    ASSERT_EQ(corio_now_ns(), 0);

    /* holding across a sleep: each turn takes 10 ms, strictly in turn */
    test_trace_reset();
    struct looper q[3] = {{"A", OP_LOCK, &lk, 2, 10 * MS}, {"B", OP_LOCK, &lk, 2, 10 * MS},
                          {"C", OP_LOCK, &lk, 2, 10 * MS}};
    run_loopers(q, 3);
    ASSERT_STR_EQ(test_trace_get(), "A0@0 B0@10 C0@20 A1@30 B1@40 C1@50");
    ASSERT_EQ(corio_now_ns(), 60 * MS);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), 0);
    return NULL;
}

TEST(sync_lock_fifo_no_starvation)
{
    ASSERT_EQ(test_run_virtual(main_lock_fair, NULL, NULL), 0);
}

/* Waiters are served in arrival order, whatever order they were created in. */
static void *main_lock_fifo_many(void *arg)
{
    (void)arg;
    corio_lock lk;
    ASSERT_EQ(corio_lock_init(&lk), 0);
    test_trace_reset();
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    static const char *names[8] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    waiter w[8];
    corio_task *t[8];
    /* arrive in the order h, g, ..., a: each one created and let run alone */
    for (int i = 7; i >= 0; i--) {
        w[i] = (waiter){.name = names[i], .op = OP_LOCK, .obj = &lk, .release = 1};
        t[i] = go(&w[i]);
        ASSERT_EQ(corio_yield(), 0);
    }
    ASSERT_EQ(corio_lock_release(&lk), 0);
    for (int i = 0; i < 8; i++)
        ASSERT_EQ(finish(t[i]), 0);
    ASSERT_STR_EQ(test_trace_get(), "h g f e d c b a");
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), 0);
    return NULL;
}

TEST(sync_lock_waiters_served_in_arrival_order)
{
    ASSERT_EQ(test_run_virtual(main_lock_fifo_many, NULL, NULL), 0);
}

/* A shielded acquire is not interrupted by a cancel; the shield's end
 * reports it. */
struct shielded {
    corio_lock *lk;
    int rc, end_rc, after_rc;
};

static void *shielded_acquire(void *arg)
{
    struct shielded *s = arg;
    corio_scope sc;
    ASSERT_EQ(corio_shield_begin(&sc), 0);
    s->rc = corio_lock_acquire(s->lk);
    s->end_rc = corio_scope_end(&sc);
    ASSERT_EQ(corio_lock_release(s->lk), 0);
    s->after_rc = corio_lock_acquire(s->lk); /* uncontended, no suspension */
    if (s->after_rc == 0)
        ASSERT_EQ(corio_lock_release(s->lk), 0);
    return NULL;
}

static void *main_lock_shield(void *arg)
{
    (void)arg;
    corio_lock lk;
    ASSERT_EQ(corio_lock_init(&lk), 0);
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    struct shielded s = {&lk, 1, 1, 1};
    corio_task *t = corio_create_task(corio_coro(shielded_acquire, &s));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_task_done(t), 0); /* still waiting for the lock */
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 1); /* handed to it */
    ASSERT_EQ(finish(t), 0);
    ASSERT_EQ(s.rc, 0);
    ASSERT_EQ(s.end_rc, -ECANCELED);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), 0);
    return NULL;
}

TEST(sync_lock_shielded_acquire_not_interrupted)
{
    ASSERT_EQ(test_run_virtual(main_lock_shield, NULL, NULL), 0);
}

/* =================================================================================
 * Semaphore and BoundedSemaphore
 * ================================================================================= */

/* asyncio test_acquire (semaphore counting) */
static void *main_sem_counting(void *arg)
{
    (void)arg;
    corio_sem s;
    ASSERT_EQ(corio_sem_init(&s, 3), 0);
    ASSERT_EQ(corio_sem_value(&s), 3);
    test_trace_reset();
    ASSERT_EQ(corio_sem_acquire(&s), 0);
    ASSERT_EQ(corio_sem_acquire(&s), 0);
    ASSERT_EQ(corio_sem_value(&s), 1);
    waiter w1 = {.name = "1", .op = OP_SEM, .obj = &s};
    waiter w2 = {.name = "2", .op = OP_SEM, .obj = &s};
    waiter w3 = {.name = "3", .op = OP_SEM, .obj = &s};
    waiter w4 = {.name = "4", .op = OP_SEM, .obj = &s};
    corio_task *t1 = go(&w1), *t2 = go(&w2), *t3 = go(&w3);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "1");
    ASSERT_EQ(corio_sem_value(&s), 0);
    ASSERT_EQ(corio_sem_try_acquire(&s), -EAGAIN);
    corio_task *t4 = go(&w4);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_value(&s), 0); /* both handed to 2 and 3 */
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "1 2 3"); /* 4 came later: it waits */
    ASSERT_EQ(corio_sem_value(&s), 0);
    ASSERT_EQ(w4.started, 1);
    ASSERT_EQ(w4.done, 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(finish(t4), 0);
    ASSERT_STR_EQ(test_trace_get(), "1 2 3 4");
    ASSERT_EQ(finish(t1), 0);
    ASSERT_EQ(finish(t2), 0);
    ASSERT_EQ(finish(t3), 0);
    ASSERT_EQ(corio_sem_value(&s), 0);
    for (int i = 0; i < 6; i++)
        ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_value(&s), 6); /* not bounded */
    ASSERT_EQ(corio_sem_destroy(&s), 0);
    return NULL;
}

TEST(sync_sem_counting)
{
    ASSERT_EQ(test_run_virtual(main_sem_counting, NULL, NULL), 0);
}

/* asyncio test_semaphore_value, test_initial_value_zero, test_release_no_waiters */
static void *main_sem_values(void *arg)
{
    (void)arg;
    corio_sem s;
    ASSERT_EQ(corio_sem_init(&s, -1), -EINVAL);
    ASSERT_EQ(corio_sem_init(&s, INT_MIN), -EINVAL);
    ASSERT_EQ(corio_sem_init_bounded(&s, -1), -EINVAL);
    ASSERT_EQ(corio_sem_init(&s, 0), 0);
    ASSERT_EQ(corio_sem_value(&s), 0);
    ASSERT_EQ(corio_sem_try_acquire(&s), -EAGAIN);
    ASSERT_EQ(corio_sem_value(&s), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_EQ(corio_sem_try_acquire(&s), 0);
    ASSERT_EQ(corio_sem_value(&s), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_acquire(&s), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_EQ(corio_sem_destroy(&s), 0);

    /* up to INT_MAX permits; one more release fails and changes nothing */
    ASSERT_EQ(corio_sem_init(&s, INT_MAX), 0);
    ASSERT_EQ(corio_sem_value(&s), INT_MAX);
    ASSERT_LT(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_value(&s), INT_MAX);
    ASSERT_EQ(corio_sem_acquire(&s), 0);
    ASSERT_EQ(corio_sem_value(&s), INT_MAX - 1);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_value(&s), INT_MAX);
    ASSERT_EQ(corio_sem_destroy(&s), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    return NULL;
}

TEST(sync_sem_init_values_and_release)
{
    ASSERT_EQ(test_run_virtual(main_sem_values, NULL, NULL), 0);
}

/* asyncio BoundedSemaphore test_release_not_acquired */
static void *main_sem_bounded(void *arg)
{
    (void)arg;
    corio_sem s;
    ASSERT_EQ(corio_sem_init_bounded(&s, 2), 0);
    ASSERT_EQ(corio_sem_release(&s), -EOVERFLOW);
    ASSERT_EQ(corio_sem_value(&s), 2);
    ASSERT_EQ(corio_sem_acquire(&s), 0);
    ASSERT_EQ(corio_sem_try_acquire(&s), 0);
    ASSERT_EQ(corio_sem_try_acquire(&s), -EAGAIN);
    ASSERT_EQ(corio_sem_value(&s), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_value(&s), 2);
    ASSERT_EQ(corio_sem_release(&s), -EOVERFLOW);
    ASSERT_EQ(corio_sem_value(&s), 2);
    ASSERT_EQ(corio_sem_destroy(&s), 0);

    ASSERT_EQ(corio_sem_init_bounded(&s, 0), 0);
    ASSERT_EQ(corio_sem_release(&s), -EOVERFLOW);
    ASSERT_EQ(corio_sem_value(&s), 0);
    ASSERT_EQ(corio_sem_destroy(&s), 0);

    /* a release with a waiter hands the permit over: no overflow */
    test_trace_reset();
    ASSERT_EQ(corio_sem_init_bounded(&s, 1), 0);
    ASSERT_EQ(corio_sem_acquire(&s), 0);
    waiter w = {.name = "W", .op = OP_SEM, .obj = &s, .release = 1};
    corio_task *t = go(&w);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_value(&s), 0);
    ASSERT_EQ(finish(t), 0);
    ASSERT_EQ(w.release_rc, 0);
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_EQ(corio_sem_release(&s), -EOVERFLOW);
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_STR_EQ(test_trace_get(), "W");
    ASSERT_EQ(corio_sem_destroy(&s), 0);
    return NULL;
}

TEST(sync_sem_bounded_over_release_is_eoverflow)
{
    ASSERT_EQ(test_run_virtual(main_sem_bounded, NULL, NULL), 0);
}

/* asyncio test_acquire_cancel */
static void *main_sem_acquire_cancel(void *arg)
{
    (void)arg;
    corio_sem s;
    ASSERT_EQ(corio_sem_init(&s, 1), 0);
    ASSERT_EQ(corio_sem_acquire(&s), 0);
    waiter a = {.name = "A", .op = OP_SEM, .obj = &s};
    corio_task *ta = go(&a);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_sem_destroy(&s), -EBUSY);
    ASSERT_EQ(corio_cancel(ta), 1);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_value(&s), 1); /* A no longer waited */
    ASSERT_EQ(finish(ta), -ECANCELED);
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_EQ(corio_sem_destroy(&s), 0);
    return NULL;
}

TEST(sync_sem_acquire_cancel)
{
    ASSERT_EQ(test_run_virtual(main_sem_acquire_cancel, NULL, NULL), 0);
}

/* asyncio test_acquire_cancel_before_awoken and test_acquire_hang */
static void *main_sem_cancel_before_awoken(void *arg)
{
    (void)arg;
    corio_sem s;
    ASSERT_EQ(corio_sem_init(&s, 0), 0);
    test_trace_reset();
    waiter w1 = {.name = "1", .op = OP_SEM, .obj = &s};
    waiter w2 = {.name = "2", .op = OP_SEM, .obj = &s};
    waiter w3 = {.name = "3", .op = OP_SEM, .obj = &s};
    waiter w4 = {.name = "4", .op = OP_SEM, .obj = &s};
    corio_task *t1 = go(&w1), *t2 = go(&w2), *t3 = go(&w3), *t4 = go(&w4);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(t1), 1);
    ASSERT_EQ(corio_cancel(t2), 1);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(w3.done, 1);
    ASSERT_EQ(w3.rc, 0);
    ASSERT_EQ(w4.done, 0);
    ASSERT_EQ(corio_sem_value(&s), 0);
    ASSERT_EQ(corio_cancel(t3), 0); /* already ended */
    ASSERT_EQ(corio_cancel(t4), 1);
    ASSERT_EQ(finish(t1), -ECANCELED);
    ASSERT_EQ(finish(t2), -ECANCELED);
    ASSERT_EQ(finish(t3), 0);
    ASSERT_EQ(finish(t4), -ECANCELED);
    ASSERT_STR_EQ(test_trace_get(), "1! 2! 3 4!");
    ASSERT_EQ(corio_sem_value(&s), 0);

    /* test_acquire_hang */
    test_trace_reset();
    waiter h1 = {.name = "1", .op = OP_SEM, .obj = &s};
    waiter h2 = {.name = "2", .op = OP_SEM, .obj = &s};
    t1 = go(&h1);
    t2 = go(&h2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(t1), 1);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_sem_value(&s), 0);
    ASSERT_EQ(h2.done, 1);
    ASSERT_EQ(finish(t1), -ECANCELED);
    ASSERT_EQ(finish(t2), 0);
    ASSERT_STR_EQ(test_trace_get(), "1! 2");
    ASSERT_EQ(corio_sem_destroy(&s), 0);
    return NULL;
}

TEST(sync_sem_cancel_before_awoken)
{
    ASSERT_EQ(test_run_virtual(main_sem_cancel_before_awoken, NULL, NULL), 0);
}

/* asyncio test_acquire_no_hang: a task cancelled while it waits does not
 * swallow the permit of the task that releases it */
struct nohang {
    corio_sem *s;
    corio_task *other;
    int ran_body;
};

static void *nohang_c1(void *arg)
{
    struct nohang *n = arg;
    ASSERT_EQ(corio_sem_acquire(n->s), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_sem_release(n->s), 0);
    ASSERT_EQ(corio_cancel(n->other), 1);
    return NULL;
}

static void *nohang_c2(void *arg)
{
    struct nohang *n = arg;
    int rc = corio_sem_acquire(n->s);
    if (rc < 0)
        return corio_fail(rc);
    n->ran_body = 1;
    ASSERT_EQ(corio_sem_release(n->s), 0);
    return NULL;
}

static void *main_sem_no_hang(void *arg)
{
    (void)arg;
    corio_sem s;
    ASSERT_EQ(corio_sem_init(&s, 1), 0);
    struct nohang n = {&s, NULL, 0};
    corio_task *t[2];
    t[0] = corio_create_task(corio_coro(nohang_c1, &n));
    t[1] = corio_create_task(corio_coro(nohang_c2, &n));
    n.other = t[1];
    int st[2];
    ASSERT_EQ(corio_gather_tasks_status(t, 2, NULL, st), 0);
    ASSERT_EQ(st[0], 0);
    ASSERT_EQ(st[1], -ECANCELED);
    ASSERT_EQ(n.ran_body, 0);
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_EQ(corio_wait_for(corio_coro(run_sem_acquire, &s), 1.0, NULL), 0);
    ASSERT_EQ(corio_sem_value(&s), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_task_release(t[0]), 0);
    ASSERT_EQ(corio_task_release(t[1]), 0);
    ASSERT_EQ(corio_sem_destroy(&s), 0);
    return NULL;
}

TEST(sync_sem_acquire_no_hang)
{
    ASSERT_EQ(test_run_virtual(main_sem_no_hang, NULL, NULL), 0);
}

/* A permit handed to a waiter cancelled (or timed out) before it resumed
 * goes to the next waiter, or back to the count. */
static void *main_sem_woken_then_cancelled(void *arg)
{
    (void)arg;
    corio_sem s;
    ASSERT_EQ(corio_sem_init(&s, 0), 0);

    test_trace_reset();
    waiter a = {.name = "A", .op = OP_SEM, .obj = &s};
    waiter b = {.name = "B", .op = OP_SEM, .obj = &s};
    corio_task *ta = go(&a), *tb = go(&b);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_sem_release(&s), 0); /* A's */
    ASSERT_EQ(corio_cancel(ta), 1);      /* to B */
    ASSERT_EQ(corio_sem_value(&s), 0);
    ASSERT_EQ(corio_sem_try_acquire(&s), -EAGAIN);
    ASSERT_EQ(finish(ta), -ECANCELED);
    ASSERT_EQ(finish(tb), 0);
    ASSERT_STR_EQ(test_trace_get(), "A! B");
    ASSERT_EQ(corio_sem_value(&s), 0);

    /* nobody next: back to the count, at once */
    test_trace_reset();
    waiter c = {.name = "C", .op = OP_SEM, .obj = &s};
    corio_task *tc = go(&c);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_cancel(tc), 1);
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_EQ(finish(tc), -ECANCELED);
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_EQ(corio_sem_acquire(&s), 0);

    /* two permits out, both holders cancelled: one to D, one back */
    test_trace_reset();
    waiter e = {.name = "E", .op = OP_SEM, .obj = &s};
    waiter f = {.name = "F", .op = OP_SEM, .obj = &s};
    waiter d = {.name = "D", .op = OP_SEM, .obj = &s};
    corio_task *te = go(&e), *tf = go(&f), *td = go(&d);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_cancel(te), 1); /* E's permit to D */
    ASSERT_EQ(corio_sem_value(&s), 0);
    ASSERT_EQ(corio_cancel(tf), 1); /* F's back to the count */
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_EQ(finish(te), -ECANCELED);
    ASSERT_EQ(finish(tf), -ECANCELED);
    ASSERT_EQ(finish(td), 0);
    ASSERT_STR_EQ(test_trace_get(), "E! F! D");
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_EQ(corio_sem_destroy(&s), 0);

    /* bounded: the permit that comes back counts within the bound */
    ASSERT_EQ(corio_sem_init_bounded(&s, 1), 0);
    ASSERT_EQ(corio_sem_acquire(&s), 0);
    waiter g = {.name = "G", .op = OP_SEM, .obj = &s};
    corio_task *tg = go(&g);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_cancel(tg), 1);
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_EQ(corio_sem_release(&s), -EOVERFLOW);
    ASSERT_EQ(finish(tg), -ECANCELED);
    ASSERT_EQ(corio_sem_value(&s), 1);

    /* scopes expiring instead of cancels */
    test_trace_reset();
    ASSERT_EQ(corio_sem_acquire(&s), 0);
    waiter h = {.name = "H", .op = OP_SEM, .obj = &s, .timeout_ns = 10 * SEC, .release = 1};
    waiter i = {.name = "I", .op = OP_SEM, .obj = &s, .timeout_ns = 10 * SEC, .release = 1};
    corio_task *th = go(&h), *ti = go(&i);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_sem_release(&s), 0); /* H's */
    ASSERT_EQ(corio_scope_reschedule(&h.scope, corio_now_ns()), 0);
    ASSERT_EQ(corio_sem_value(&s), 0); /* I's */
    ASSERT_EQ(finish(th), -ECANCELED);
    ASSERT_EQ(h.scope_rc, -ETIMEDOUT);
    ASSERT_EQ(finish(ti), 0);
    ASSERT_EQ(i.scope_rc, 0);
    ASSERT_EQ(i.release_rc, 0);
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_STR_EQ(test_trace_get(), "H! I");
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_sem_destroy(&s), 0);
    return NULL;
}

TEST(sync_sem_woken_then_cancelled_passes_on)
{
    ASSERT_EQ(test_run_virtual(main_sem_woken_then_cancelled, NULL, NULL), 0);
}

static void *main_sem_timeout(void *arg)
{
    (void)arg;
    corio_sem s;
    ASSERT_EQ(corio_sem_init(&s, 0), 0);
    waiter w = {.name = "W", .op = OP_SEM, .obj = &s, .timeout_ns = 1 * SEC};
    corio_task *t = go(&w);
    ASSERT_EQ(finish(t), -ECANCELED);
    ASSERT_EQ(w.at, 1 * SEC);
    ASSERT_EQ(w.scope_rc, -ETIMEDOUT);
    ASSERT_EQ(corio_sem_value(&s), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_value(&s), 1); /* W did not wait any more */
    ASSERT_EQ(corio_sem_acquire(&s), 0);

    ASSERT_EQ(corio_wait_for(corio_coro(run_sem_acquire, &s), 0.5, NULL), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 1500 * MS);
    ASSERT_EQ(corio_sem_value(&s), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_EQ(corio_sem_destroy(&s), 0);

    /* bounded, same */
    ASSERT_EQ(corio_sem_init_bounded(&s, 1), 0);
    ASSERT_EQ(corio_sem_acquire(&s), 0);
    waiter w2 = {.name = "W2", .op = OP_SEM, .obj = &s, .timeout_ns = 1 * SEC};
    t = go(&w2);
    ASSERT_EQ(finish(t), -ECANCELED);
    ASSERT_EQ(w2.at, 2500 * MS);
    ASSERT_EQ(w2.scope_rc, -ETIMEDOUT);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_EQ(corio_sem_release(&s), -EOVERFLOW);
    ASSERT_EQ(corio_sem_destroy(&s), 0);
    return NULL;
}

TEST(sync_sem_acquire_timeout)
{
    ASSERT_EQ(test_run_virtual(main_sem_timeout, NULL, NULL), 0);
}

/* asyncio test_acquire_fifo_order: each holds its permit for 10 ms */
static void *main_sem_fifo_order(void *arg)
{
    (void)arg;
    corio_sem s;
    ASSERT_EQ(corio_sem_init(&s, 1), 0);
    test_trace_reset();
    struct looper p[3] = {{"c1_", OP_SEM, &s, 2, 10 * MS}, {"c2_", OP_SEM, &s, 2, 10 * MS},
                          {"c3_", OP_SEM, &s, 2, 10 * MS}};
    run_loopers(p, 3);
    ASSERT_STR_EQ(test_trace_get(), "c1_0@0 c2_0@10 c3_0@20 c1_1@30 c2_1@40 c3_1@50");
    ASSERT_EQ(corio_now_ns(), 60 * MS);
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_EQ(corio_sem_destroy(&s), 0);
    return NULL;
}

TEST(sync_sem_acquire_fifo_order)
{
    ASSERT_EQ(test_run_virtual(main_sem_fifo_order, NULL, NULL), 0);
}

/* asyncio test_acquire_fifo_order_2. Permits are handed over in FIFO
 * order: the two releases go to c2 then c3; c2's release finds nobody
 * waiting (c3 already has its permit), so its next acquire takes that
 * permit at once and c2 appends 4 before c3 gets to run (asyncio, which
 * wakes without handing over, prints 1 2 3 4). */
struct fifo2 {
    corio_sem *s;
    int id;
};

static void *fifo2_fn(void *arg)
{
    struct fifo2 *f = arg;
    ASSERT_EQ(corio_sem_acquire(f->s), 0);
    test_trace("%d", f->id);
    if (f->id == 2) {
        ASSERT_EQ(corio_sem_release(f->s), 0);
        ASSERT_EQ(corio_sem_acquire(f->s), 0);
        test_trace("4");
    }
    return NULL;
}

static void *main_sem_fifo_order_2(void *arg)
{
    (void)arg;
    corio_sem s;
    ASSERT_EQ(corio_sem_init(&s, 1), 0);
    test_trace_reset();
    struct fifo2 f[3] = {{&s, 1}, {&s, 2}, {&s, 3}};
    corio_task *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = corio_create_task(corio_coro(fifo2_fn, &f[i]));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_gather_tasks(t, 3, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "1 2 4 3");
    ASSERT_EQ(corio_sem_value(&s), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(corio_task_release(t[i]), 0);
    ASSERT_EQ(corio_sem_destroy(&s), 0);
    return NULL;
}

TEST(sync_sem_acquire_fifo_order_2)
{
    ASSERT_EQ(test_run_virtual(main_sem_fifo_order_2, NULL, NULL), 0);
}

/* asyncio test_acquire_fifo_order_3: a cancelled first waiter is skipped */
static void *main_sem_fifo_order_3(void *arg)
{
    (void)arg;
    corio_sem s;
    ASSERT_EQ(corio_sem_init(&s, 0), 0);
    test_trace_reset();
    waiter w1 = {.name = "1", .op = OP_SEM, .obj = &s};
    waiter w2 = {.name = "2", .op = OP_SEM, .obj = &s};
    waiter w3 = {.name = "3", .op = OP_SEM, .obj = &s};
    corio_task *t[3] = {go(&w1), go(&w2), go(&w3)};
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(t[0]), 1);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_release(&s), 0);
    int st[3];
    ASSERT_EQ(corio_gather_tasks_status(t, 3, NULL, st), 0);
    ASSERT_EQ(st[0], -ECANCELED);
    ASSERT_EQ(st[1], 0);
    ASSERT_EQ(st[2], 0);
    ASSERT_STR_EQ(test_trace_get(), "1! 2 3");
    ASSERT_EQ(corio_sem_value(&s), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(corio_task_release(t[i]), 0);
    ASSERT_EQ(corio_sem_destroy(&s), 0);
    return NULL;
}

TEST(sync_sem_acquire_fifo_order_3)
{
    ASSERT_EQ(test_run_virtual(main_sem_fifo_order_3, NULL, NULL), 0);
}

/* Fairness with two permits and three tasks releasing and re-acquiring in a
 * loop: nobody is starved, strict round robin. */
static void *main_sem_fair(void *arg)
{
    (void)arg;
    corio_sem s;
    ASSERT_EQ(corio_sem_init(&s, 2), 0);
    test_trace_reset();
    struct looper p[3] = {{"A", OP_SEM, &s, 3, 0}, {"B", OP_SEM, &s, 3, 0}, {"C", OP_SEM, &s, 3, 0}};
    run_loopers(p, 3);
    ASSERT_STR_EQ(test_trace_get(), "A0 B0 C0 A1 B1 C1 A2 B2 C2");
    ASSERT_EQ(corio_sem_value(&s), 2);

    /* one permit: like the lock */
    ASSERT_EQ(corio_sem_destroy(&s), 0);
    ASSERT_EQ(corio_sem_init(&s, 1), 0);
    test_trace_reset();
    struct looper q[3] = {{"A", OP_SEM, &s, 3, 0}, {"B", OP_SEM, &s, 3, 0}, {"C", OP_SEM, &s, 3, 0}};
    run_loopers(q, 3);
    ASSERT_STR_EQ(test_trace_get(), "A0 B0 C0 A1 B1 C1 A2 B2 C2");
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_sem_destroy(&s), 0);
    return NULL;
}

TEST(sync_sem_fifo_no_starvation)
{
    ASSERT_EQ(test_run_virtual(main_sem_fair, NULL, NULL), 0);
}

/* =================================================================================
 * Condition
 * ================================================================================= */

/* asyncio test_wait */
static void *main_cond_wait(void *arg)
{
    (void)arg;
    corio_cond c;
    ASSERT_EQ(corio_cond_init(&c, NULL), 0);
    corio_lock *lk = corio_cond_lock(&c);
    ASSERT_NOT_NULL(lk);
    test_trace_reset();
    waiter w1 = {.name = "1", .op = OP_COND, .obj = &c};
    waiter w2 = {.name = "2", .op = OP_COND, .obj = &c};
    waiter w3 = {.name = "3", .op = OP_COND, .obj = &c};
    corio_task *t1 = go(&w1), *t2 = go(&w2), *t3 = go(&w3);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "");
    ASSERT_EQ(corio_lock_locked(lk), 0); /* each released it as it waited */

    ASSERT_EQ(corio_lock_acquire(lk), 0);
    ASSERT_EQ(corio_cond_notify(&c, 1), 1);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), ""); /* 1 waits for the lock */
    ASSERT_EQ(corio_lock_locked(lk), 1);

    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "1");
    ASSERT_EQ(corio_lock_locked(lk), 1); /* 1 ended holding it */
    ASSERT_EQ(w1.lock_held, 1);

    ASSERT_EQ(corio_cond_notify(&c, 2), 2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "1");
    ASSERT_EQ(corio_lock_locked(lk), 1);

    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "1 2");
    ASSERT_EQ(corio_lock_locked(lk), 1);

    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "1 2 3");
    ASSERT_EQ(corio_lock_locked(lk), 1);
    ASSERT_EQ(finish(t1), 0);
    ASSERT_EQ(finish(t2), 0);
    ASSERT_EQ(finish(t3), 0);
    ASSERT_EQ(corio_cond_destroy(&c), -EBUSY); /* its own lock is held */
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_cond_destroy(&c), 0);
    return NULL;
}

TEST(sync_cond_wait_notify)
{
    ASSERT_EQ(test_run_virtual(main_cond_wait, NULL, NULL), 0);
}

/* asyncio test_notify, test_notify_all */
static void *main_cond_notify(void *arg)
{
    (void)arg;
    corio_cond c;
    ASSERT_EQ(corio_cond_init(&c, NULL), 0);
    corio_lock *lk = corio_cond_lock(&c);
    test_trace_reset();
    waiter w1 = {.name = "1", .op = OP_COND, .obj = &c, .release = 1};
    waiter w2 = {.name = "2", .op = OP_COND, .obj = &c, .release = 1};
    waiter w3 = {.name = "3", .op = OP_COND, .obj = &c, .release = 1};
    corio_task *t1 = go(&w1), *t2 = go(&w2), *t3 = go(&w3);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "");

    ASSERT_EQ(corio_lock_acquire(lk), 0);
    ASSERT_EQ(corio_cond_notify(&c, 0), 0);
    ASSERT_EQ(corio_cond_notify(&c, 1), 1);
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(finish(t1), 0);
    ASSERT_STR_EQ(test_trace_get(), "1");
    ASSERT_EQ(w2.done + w3.done, 0);

    ASSERT_EQ(corio_lock_acquire(lk), 0);
    ASSERT_EQ(corio_cond_notify(&c, 1), 1);
    ASSERT_EQ(corio_cond_notify(&c, 2048), 1);
    ASSERT_EQ(corio_cond_notify(&c, 2048), 0);
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(finish(t2), 0);
    ASSERT_EQ(finish(t3), 0);
    ASSERT_STR_EQ(test_trace_get(), "1 2 3");
    ASSERT_EQ(w1.release_rc + w2.release_rc + w3.release_rc, 0);
    ASSERT_EQ(corio_lock_locked(lk), 0);

    /* notify_all */
    test_trace_reset();
    waiter a = {.name = "A", .op = OP_COND, .obj = &c, .release = 1};
    waiter b = {.name = "B", .op = OP_COND, .obj = &c, .release = 1};
    corio_task *ta = go(&a), *tb = go(&b);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    ASSERT_EQ(corio_cond_notify_all(&c), 2);
    ASSERT_EQ(corio_cond_notify_all(&c), 0);
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(finish(ta), 0);
    ASSERT_EQ(finish(tb), 0);
    ASSERT_STR_EQ(test_trace_get(), "A B");
    ASSERT_EQ(corio_lock_locked(lk), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_cond_destroy(&c), 0);
    return NULL;
}

TEST(sync_cond_notify_and_notify_all)
{
    ASSERT_EQ(test_run_virtual(main_cond_notify, NULL, NULL), 0);
}

/* asyncio test_wait_unacquired, test_wait_for_unacquired,
 * test_notify_unacquired, test_notify_all_unacquired */
static void *main_cond_unheld(void *arg)
{
    (void)arg;
    corio_cond c;
    ASSERT_EQ(corio_cond_init(&c, NULL), 0);
    corio_lock *lk = corio_cond_lock(&c);
    ASSERT_EQ(corio_cond_wait(&c), -EPERM);
    ASSERT_EQ(corio_cond_wait_for(&c, never, NULL), -EPERM);
    ASSERT_EQ(corio_cond_notify(&c, 1), -EPERM);
    ASSERT_EQ(corio_cond_notify_all(&c), -EPERM);
    ASSERT_EQ(corio_lock_locked(lk), 0);

    /* with a waiter: an unheld notify wakes nobody */
    test_trace_reset();
    waiter w = {.name = "W", .op = OP_COND, .obj = &c, .release = 1};
    corio_task *t = go(&w);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cond_notify(&c, 1), -EPERM);
    ASSERT_EQ(corio_cond_notify_all(&c), -EPERM);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(w.done, 0);
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    ASSERT_EQ(corio_cond_notify(&c, 1), 1); /* it was still there */
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(finish(t), 0);
    ASSERT_STR_EQ(test_trace_get(), "W");
    ASSERT_EQ(corio_lock_locked(lk), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_cond_destroy(&c), 0);
    return NULL;
}

TEST(sync_cond_without_lock_is_eperm)
{
    ASSERT_EQ(test_run_virtual(main_cond_unheld, NULL, NULL), 0);
}

/* asyncio test_wait_for: the predicate is checked with the lock held, at
 * each wakeup, until it is true */
struct pred_state {
    corio_lock *lk;
    int value;
    int calls;
    int unlocked_calls;
};

static int counted_pred(void *arg)
{
    struct pred_state *p = arg;
    p->calls++;
    if (corio_lock_locked(p->lk) != 1)
        p->unlocked_calls++;
    return p->value;
}

static void *main_cond_wait_for(void *arg)
{
    (void)arg;
    corio_cond c;
    ASSERT_EQ(corio_cond_init(&c, NULL), 0);
    corio_lock *lk = corio_cond_lock(&c);
    struct pred_state p = {lk, 0, 0, 0};
    test_trace_reset();
    waiter w = {.name = "1", .op = OP_COND_FOR, .obj = &c, .pred = counted_pred, .parg = &p,
                .release = 1};
    corio_task *t = go(&w);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), "");
    ASSERT_EQ(p.calls, 1);

    ASSERT_EQ(corio_lock_acquire(lk), 0);
    ASSERT_EQ(corio_cond_notify(&c, 1), 1);
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_STR_EQ(test_trace_get(), ""); /* woke, checked, waits again */
    ASSERT_EQ(p.calls, 2);
    ASSERT_EQ(corio_lock_locked(lk), 0);

    p.value = 1;
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    ASSERT_EQ(corio_cond_notify(&c, 1), 1);
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(finish(t), 0);
    ASSERT_STR_EQ(test_trace_get(), "1");
    ASSERT_EQ(p.calls, 3);
    ASSERT_EQ(p.unlocked_calls, 0);
    ASSERT_EQ(w.lock_held, 1);
    ASSERT_EQ(corio_lock_locked(lk), 0);

    /* a predicate already true: returns at once, the lock still held */
    test_trace_reset();
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    corio_task *o = corio_create_task(corio_coro(trace_arg, "other"));
    ASSERT_EQ(corio_cond_wait_for(&c, always, NULL), 0);
    test_trace("main");
    ASSERT_EQ(corio_lock_locked(lk), 1);
    ASSERT_EQ(corio_cond_wait_for(&c, NULL, NULL), -EINVAL);
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(finish(o), 0);
    ASSERT_STR_EQ(test_trace_get(), "main other");
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_cond_destroy(&c), 0);
    return NULL;
}

TEST(sync_cond_wait_for_predicate)
{
    ASSERT_EQ(test_run_virtual(main_cond_wait_for, NULL, NULL), 0);
}

/* asyncio test_wait_cancel: a cancelled wait returns -ECANCELED only once it
 * holds the lock again, and leaves no waiter behind */
static void *main_cond_wait_cancel(void *arg)
{
    (void)arg;
    corio_cond c;
    ASSERT_EQ(corio_cond_init(&c, NULL), 0);
    corio_lock *lk = corio_cond_lock(&c);
    test_trace_reset();
    waiter w = {.name = "W", .op = OP_COND, .obj = &c, .release = 1};
    corio_task *t = go(&w);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(corio_cond_notify(&c, 1), 0); /* W no longer waits for a notify */
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(w.done, 0); /* it waits for the lock */
    ASSERT_STR_EQ(test_trace_get(), "");
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(corio_lock_locked(lk), 1); /* handed to W */
    ASSERT_EQ(finish(t), -ECANCELED);
    ASSERT_EQ(w.rc, -ECANCELED);
    ASSERT_EQ(w.lock_held, 1);
    ASSERT_EQ(w.at, 1 * SEC);
    ASSERT_EQ(w.release_rc, 0);
    ASSERT_STR_EQ(test_trace_get(), "W!");
    ASSERT_EQ(corio_lock_locked(lk), 0);

    /* the wait_for form, cancelled during its second wait */
    struct pred_state p = {lk, 0, 0, 0};
    test_trace_reset();
    waiter f = {.name = "F", .op = OP_COND_FOR, .obj = &c, .pred = counted_pred, .parg = &p,
                .release = 1};
    t = go(&f);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    ASSERT_EQ(corio_cond_notify(&c, 1), 1);
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(p.calls, 2);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(finish(t), -ECANCELED);
    ASSERT_EQ(f.lock_held, 1);
    ASSERT_EQ(f.release_rc, 0);
    ASSERT_EQ(p.calls, 2);
    ASSERT_EQ(p.unlocked_calls, 0);
    ASSERT_EQ(corio_lock_locked(lk), 0);
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    ASSERT_EQ(corio_cond_notify_all(&c), 0);
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(corio_cond_destroy(&c), 0);
    return NULL;
}

TEST(sync_cond_wait_cancel_reacquires_lock)
{
    ASSERT_EQ(test_run_virtual(main_cond_wait_cancel, NULL, NULL), 0);
}

/* asyncio test_timeout_in_block */
static void *main_cond_wait_timeout(void *arg)
{
    (void)arg;
    corio_cond c;
    ASSERT_EQ(corio_cond_init(&c, NULL), 0);
    corio_lock *lk = corio_cond_lock(&c);
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    corio_scope sc;
    ASSERT_EQ(corio_timeout_begin(&sc, 0.5), 0);
    ASSERT_EQ(corio_cond_wait(&c), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 500 * MS);
    ASSERT_EQ(corio_lock_locked(lk), 1);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_EQ(corio_cond_notify(&c, 1), 0);

    ASSERT_EQ(corio_wait_for(corio_coro(run_cond_wait, &c), 0.5, NULL), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 1000 * MS);
    ASSERT_EQ(corio_lock_locked(lk), 1);
    ASSERT_EQ(corio_cond_notify_all(&c), 0);

    ASSERT_EQ(corio_timeout_begin(&sc, 0.5), 0);
    ASSERT_EQ(corio_cond_wait_for(&c, never, NULL), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 1500 * MS);
    ASSERT_EQ(corio_lock_locked(lk), 1);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_EQ(corio_lock_release(lk), 0);

    /* with the lock contended when the deadline passes: the wait returns
     * when it has the lock again, and the scope still reports it */
    waiter w = {.name = "W", .op = OP_COND, .obj = &c, .timeout_ns = 1 * SEC, .release = 1};
    corio_task *t = go(&w);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    ASSERT_EQ(corio_sleep(2), 0);
    ASSERT_EQ(w.done, 0);
    ASSERT_EQ(corio_cond_notify(&c, 1), 0); /* W left the waiters at its deadline */
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(finish(t), -ECANCELED);
    ASSERT_EQ(w.at, 3500 * MS);
    ASSERT_EQ(w.lock_held, 1);
    ASSERT_EQ(w.scope_rc, -ETIMEDOUT);
    ASSERT_EQ(corio_lock_locked(lk), 0);
    ASSERT_EQ(corio_cond_destroy(&c), 0);
    return NULL;
}

TEST(sync_cond_wait_timeout)
{
    ASSERT_EQ(test_run_virtual(main_cond_wait_timeout, NULL, NULL), 0);
}

/* asyncio test_cancelled_wakeup: a consumer notified and cancelled before
 * it resumes passes the notification on: the item is still consumed. */
struct consumer {
    corio_cond *c;
    int *state;
    int consumed;
};

static void *consumer_fn(void *arg)
{
    struct consumer *k = arg;
    corio_lock *lk = corio_cond_lock(k->c);
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    for (;;) {
        int rc = corio_cond_wait_for(k->c, int_nonzero, k->state);
        if (rc < 0) {
            ASSERT_EQ(corio_lock_locked(lk), 1);
            ASSERT_EQ(corio_lock_release(lk), 0);
            return corio_fail(rc);
        }
        if (*k->state < 0)
            break;
        (*k->state)--;
        k->consumed++;
    }
    ASSERT_EQ(corio_lock_release(lk), 0);
    return NULL;
}

static void *main_cond_woken_then_cancelled(void *arg)
{
    (void)arg;
    corio_cond c;
    ASSERT_EQ(corio_cond_init(&c, NULL), 0);
    corio_lock *lk = corio_cond_lock(&c);
    int state = 0;
    struct consumer k0 = {&c, &state, 0}, k1 = {&c, &state, 0};
    corio_task *c0 = corio_create_task(corio_coro(consumer_fn, &k0));
    corio_task *c1 = corio_create_task(corio_coro(consumer_fn, &k1));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    state++;
    ASSERT_EQ(corio_cond_notify(&c, 1), 1); /* c0 */
    ASSERT_EQ(corio_cancel(c0), 1);          /* before it resumes: to c1 */
    corio_scope sc;
    ASSERT_EQ(corio_timeout_begin(&sc, 0.01), 0);
    /* nobody notifies us when c1 consumes: we time out, as asyncio's test
     * does; what matters is that the item was consumed */
    ASSERT_EQ(corio_cond_wait_for(&c, int_zero, &state), -ECANCELED);
    ASSERT_EQ(corio_lock_locked(lk), 1);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 10 * MS);
    ASSERT_EQ(state, 0);
    ASSERT_EQ(k0.consumed, 0);
    ASSERT_EQ(k1.consumed, 1);
    state = -1;
    ASSERT_EQ(corio_cond_notify_all(&c), 1);
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(finish(c1), 0);
    ASSERT_EQ(finish(c0), -ECANCELED);
    ASSERT_EQ(corio_lock_locked(lk), 0);
    ASSERT_EQ(corio_cond_destroy(&c), 0);
    return NULL;
}

TEST(sync_cond_woken_then_cancelled_passes_notification)
{
    ASSERT_EQ(test_run_virtual(main_cond_woken_then_cancelled, NULL, NULL), 0);
}

/* The plain cases: notified then cancelled (or timed out) before resuming:
 * -ECANCELED, lock held, the notification to the next waiter, or dropped
 * when nobody else waits. */
static void *main_cond_woken_then_cancelled_plain(void *arg)
{
    (void)arg;
    corio_cond c;
    ASSERT_EQ(corio_cond_init(&c, NULL), 0);
    corio_lock *lk = corio_cond_lock(&c);

    test_trace_reset();
    waiter a = {.name = "A", .op = OP_COND, .obj = &c, .release = 1};
    waiter b = {.name = "B", .op = OP_COND, .obj = &c, .release = 1};
    waiter d = {.name = "D", .op = OP_COND, .obj = &c, .release = 1};
    corio_task *ta = go(&a), *tb = go(&b), *td = go(&d);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    ASSERT_EQ(corio_cond_notify(&c, 1), 1); /* A */
    ASSERT_EQ(corio_cancel(ta), 1);          /* A's goes to B */
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(finish(ta), -ECANCELED);
    ASSERT_EQ(finish(tb), 0);
    ASSERT_EQ(a.lock_held, 1);
    ASSERT_EQ(a.release_rc, 0);
    ASSERT_STR_EQ(test_trace_get(), "A! B");
    ASSERT_EQ(d.done, 0); /* only one notification was ever sent */
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    ASSERT_EQ(corio_cond_notify(&c, 5), 1); /* D still waits */
    ASSERT_EQ(corio_cancel(td), 1);          /* nobody next: dropped */
    ASSERT_EQ(corio_cond_notify(&c, 5), 0);
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(finish(td), -ECANCELED);
    ASSERT_EQ(d.lock_held, 1);
    ASSERT_STR_EQ(test_trace_get(), "A! B D!");
    ASSERT_EQ(corio_lock_locked(lk), 0);

    /* scopes expiring instead of cancels */
    test_trace_reset();
    waiter h = {.name = "H", .op = OP_COND, .obj = &c, .release = 1, .timeout_ns = 10 * SEC};
    waiter i = {.name = "I", .op = OP_COND, .obj = &c, .release = 1, .timeout_ns = 10 * SEC};
    corio_task *th = go(&h), *ti = go(&i);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    ASSERT_EQ(corio_cond_notify(&c, 1), 1); /* H */
    ASSERT_EQ(corio_scope_reschedule(&h.scope, corio_now_ns()), 0);
    ASSERT_EQ(corio_cond_notify(&c, 1), 0); /* I already has H's */
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(finish(th), -ECANCELED);
    ASSERT_EQ(finish(ti), 0);
    ASSERT_EQ(h.scope_rc, -ETIMEDOUT);
    ASSERT_EQ(h.lock_held, 1);
    ASSERT_EQ(i.scope_rc, 0);
    ASSERT_STR_EQ(test_trace_get(), "H! I");
    ASSERT_EQ(corio_lock_locked(lk), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_cond_destroy(&c), 0);
    return NULL;
}

TEST(sync_cond_woken_then_cancelled_plain)
{
    ASSERT_EQ(test_run_virtual(main_cond_woken_then_cancelled_plain, NULL, NULL), 0);
}

/* asyncio test_cancelled_wakeup_relock: the consumer is cancelled while it
 * re-acquires the lock after its notify; the item is still consumed (by
 * whichever consumer) and nothing hangs. */
static void *main_cond_relock_loses_nothing(void *arg)
{
    (void)arg;
    corio_cond c;
    ASSERT_EQ(corio_cond_init(&c, NULL), 0);
    corio_lock *lk = corio_cond_lock(&c);
    int state = 0;
    struct consumer k0 = {&c, &state, 0}, k1 = {&c, &state, 0};
    corio_task *c0 = corio_create_task(corio_coro(consumer_fn, &k0));
    corio_task *c1 = corio_create_task(corio_coro(consumer_fn, &k1));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    state++;
    ASSERT_EQ(corio_cond_notify(&c, 1), 1);
    ASSERT_EQ(corio_yield(), 0); /* c0 resumes and waits for the lock */
    ASSERT_EQ(corio_cancel(c0), 1);
    corio_scope sc;
    ASSERT_EQ(corio_timeout_begin(&sc, 0.01), 0);
    int rc = corio_cond_wait_for(&c, int_zero, &state);
    ASSERT(rc == 0 || rc == -ECANCELED);
    int src = corio_scope_end(&sc);
    ASSERT(rc == 0 ? src == 0 : src == -ETIMEDOUT);
    ASSERT_EQ(corio_lock_locked(lk), 1);
    ASSERT_EQ(state, 0);
    ASSERT_EQ(k0.consumed + k1.consumed, 1);
    state = -1;
    ASSERT_EQ(corio_cond_notify_all(&c), 1);
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(finish(c1), 0);
    ASSERT_EQ(finish(c0), -ECANCELED);
    ASSERT_EQ(corio_lock_locked(lk), 0);
    ASSERT_EQ(corio_cond_destroy(&c), 0);
    return NULL;
}

TEST(sync_cond_cancel_while_reacquiring_loses_nothing)
{
    ASSERT_EQ(test_run_virtual(main_cond_relock_loses_nothing, NULL, NULL), 0);
}

/* The re-acquire is the wait's second suspension. A cancel that reaches it
 * there makes the wait return -ECANCELED (still with the lock held, as
 * asyncio re-raises the CancelledError it got in acquire()), and the
 * notification it had been handed goes to the next waiter. */
static void *main_cond_cancel_while_reacquiring(void *arg)
{
    (void)arg;
    corio_cond c;
    ASSERT_EQ(corio_cond_init(&c, NULL), 0);
    corio_lock *lk = corio_cond_lock(&c);
    test_trace_reset();
    waiter a = {.name = "A", .op = OP_COND, .obj = &c, .release = 1};
    waiter b = {.name = "B", .op = OP_COND, .obj = &c, .release = 1};
    corio_task *ta = go(&a), *tb = go(&b);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    ASSERT_EQ(corio_cond_notify(&c, 1), 1);
    ASSERT_EQ(corio_yield(), 0); /* A resumes, waits for the lock */
    ASSERT_EQ(a.done, 0);
    ASSERT_EQ(corio_cancel(ta), 1);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(a.done, 0); /* it still needs the lock */
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(corio_await(ta, NULL), -ECANCELED);
    ASSERT_EQ(a.rc, -ECANCELED);
    ASSERT_EQ(a.lock_held, 1);
    ASSERT_EQ(a.at, 1 * SEC);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(b.done, 1); /* A's notification went to B */
    ASSERT_EQ(b.rc, 0);
    ASSERT_STR_EQ(test_trace_get(), "A! B");
    ASSERT_EQ(finish(tb), 0);
    ASSERT_EQ(corio_task_release(ta), 0);
    ASSERT_EQ(corio_lock_locked(lk), 0);
    ASSERT_EQ(corio_cond_destroy(&c), 0);
    return NULL;
}

TEST(sync_cond_cancel_while_reacquiring_returns_ecanceled)
{
    ASSERT_EQ(test_run_virtual(main_cond_cancel_while_reacquiring, NULL, NULL), 0);
}

/* The same with a timeout scope whose deadline passes while the notified
 * waiter waits for the lock: -ECANCELED once it holds the lock, the scope
 * reports -ETIMEDOUT, the notification goes to the next waiter. */
static void *main_cond_timeout_while_reacquiring(void *arg)
{
    (void)arg;
    corio_cond c;
    ASSERT_EQ(corio_cond_init(&c, NULL), 0);
    corio_lock *lk = corio_cond_lock(&c);
    test_trace_reset();
    waiter a = {.name = "A", .op = OP_COND, .obj = &c, .release = 1, .timeout_ns = 1 * SEC};
    waiter b = {.name = "B", .op = OP_COND, .obj = &c, .release = 1};
    corio_task *ta = go(&a), *tb = go(&b);
    ASSERT_EQ(corio_sleep(0.5), 0);
    ASSERT_EQ(corio_lock_acquire(lk), 0);
    ASSERT_EQ(corio_cond_notify(&c, 1), 1); /* A, at 0.5 s */
    ASSERT_EQ(corio_sleep(1.5), 0);         /* A's deadline passes at 1 s */
    ASSERT_EQ(a.done, 0);
    ASSERT_EQ(corio_lock_release(lk), 0);
    ASSERT_EQ(corio_await(ta, NULL), -ECANCELED);
    ASSERT_EQ(a.rc, -ECANCELED);
    ASSERT_EQ(a.at, 2 * SEC);
    ASSERT_EQ(a.lock_held, 1);
    ASSERT_EQ(a.scope_rc, -ETIMEDOUT);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(b.done, 1);
    ASSERT_EQ(b.rc, 0);
    ASSERT_STR_EQ(test_trace_get(), "A! B");
    ASSERT_EQ(finish(tb), 0);
    ASSERT_EQ(corio_task_release(ta), 0);
    ASSERT_EQ(corio_lock_locked(lk), 0);
    ASSERT_EQ(corio_cond_destroy(&c), 0);
    return NULL;
}

TEST(sync_cond_timeout_while_reacquiring)
{
    ASSERT_EQ(test_run_virtual(main_cond_timeout_while_reacquiring, NULL, NULL), 0);
}

/* asyncio test_explicit_lock, test_context_manager */
static void *main_cond_explicit_lock(void *arg)
{
    (void)arg;
    corio_lock lk;
    corio_cond c1, c2, own;
    ASSERT_EQ(corio_lock_init(&lk), 0);
    ASSERT_EQ(corio_cond_init(&c1, &lk), 0);
    ASSERT_EQ(corio_cond_init(&c2, &lk), 0);
    ASSERT_EQ(corio_cond_init(&own, NULL), 0);
    ASSERT_PTR_EQ(corio_cond_lock(&c1), &lk);
    ASSERT_PTR_EQ(corio_cond_lock(&c2), &lk);
    ASSERT_NOT_NULL(corio_cond_lock(&own));
    ASSERT_PTR_NE(corio_cond_lock(&own), &lk);
    ASSERT_PTR_EQ(corio_cond_lock(&own), corio_cond_lock(&own));

    /* holding the shared lock is holding both conditions' lock */
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    ASSERT_EQ(corio_cond_notify(&c1, 1), 0);
    ASSERT_EQ(corio_cond_notify_all(&c2), 0);
    ASSERT_EQ(corio_cond_notify(&own, 1), -EPERM);
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_cond_notify(&c1, 1), -EPERM);

    /* a waiter on c1 is not woken through c2, though they share the lock */
    test_trace_reset();
    waiter w1 = {.name = "1", .op = OP_COND, .obj = &c1, .release = 1};
    waiter w2 = {.name = "2", .op = OP_COND, .obj = &c2, .release = 1};
    corio_task *t1 = go(&w1), *t2 = go(&w2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    ASSERT_EQ(corio_cond_notify_all(&c2), 1);
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(finish(t2), 0);
    ASSERT_EQ(w1.done, 0);
    ASSERT_EQ(corio_lock_destroy(&lk), 0);  /* nobody holds it nor waits on it */
    ASSERT_EQ(corio_lock_init(&lk), 0);     /* (same storage: c1 still uses it) */
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    ASSERT_EQ(corio_cond_notify(&c1, 1), 1);
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(finish(t1), 0);
    ASSERT_STR_EQ(test_trace_get(), "2 1");

    /* its own lock works like any lock */
    corio_lock *ol = corio_cond_lock(&own);
    ASSERT_EQ(corio_lock_locked(ol), 0);
    ASSERT_EQ(corio_lock_acquire(ol), 0);
    ASSERT_EQ(corio_lock_locked(ol), 1);
    ASSERT_EQ(corio_lock_try_acquire(ol), -EAGAIN);
    ASSERT_EQ(corio_cond_destroy(&own), -EBUSY);
    ASSERT_EQ(corio_lock_release(ol), 0);
    ASSERT_EQ(corio_lock_release(ol), -EPERM);
    ASSERT_EQ(corio_cond_destroy(&own), 0);
    ASSERT_EQ(corio_cond_destroy(&c1), 0);
    ASSERT_EQ(corio_cond_destroy(&c2), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 0); /* destroying a condition leaves its lock */
    ASSERT_EQ(corio_lock_destroy(&lk), 0);
    return NULL;
}

TEST(sync_cond_explicit_and_own_lock)
{
    ASSERT_EQ(test_run_virtual(main_cond_explicit_lock, NULL, NULL), 0);
}

/* =================================================================================
 * Barrier
 * ================================================================================= */

/* asyncio test_filling_task_by_task, test_context_manager: indices in
 * arrival order, n_waiting, the barrier starts over */
static void *main_barrier_indices(void *arg)
{
    (void)arg;
    corio_barrier b;
    ASSERT_EQ(corio_barrier_init(&b, 3), 0);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 0);
    ASSERT_EQ(corio_barrier_broken(&b), 0);
    for (int round = 0; round < 2; round++) {
        test_trace_reset();
        waiter w1 = {.name = "1", .op = OP_BARRIER, .obj = &b};
        waiter w2 = {.name = "2", .op = OP_BARRIER, .obj = &b};
        waiter w3 = {.name = "3", .op = OP_BARRIER, .obj = &b};
        corio_task *t1 = go(&w1);
        ASSERT_EQ(corio_yield(), 0);
        ASSERT_EQ(corio_barrier_n_waiting(&b), 1);
        corio_task *t2 = go(&w2);
        ASSERT_EQ(corio_yield(), 0);
        ASSERT_EQ(corio_barrier_n_waiting(&b), 2);
        ASSERT_STR_EQ(test_trace_get(), "");
        corio_task *t3 = go(&w3);
        ASSERT_EQ(corio_yield(), 0);
        ASSERT_EQ(corio_barrier_n_waiting(&b), 0);
        ASSERT_EQ(finish(t1), 0);
        ASSERT_EQ(finish(t2), 0);
        ASSERT_EQ(finish(t3), 0);
        ASSERT_EQ(w1.rc, 0);
        ASSERT_EQ(w2.rc, 1);
        ASSERT_EQ(w3.rc, 2);
        ASSERT_STR_EQ(test_trace_get(), "3#2 1#0 2#1"); /* the last one does not wait */
        ASSERT_EQ(corio_barrier_broken(&b), 0);
    }
    /* the caller itself as the last party */
    test_trace_reset();
    waiter w1 = {.name = "1", .op = OP_BARRIER, .obj = &b};
    waiter w2 = {.name = "2", .op = OP_BARRIER, .obj = &b};
    corio_task *t1 = go(&w1), *t2 = go(&w2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_barrier_destroy(&b), -EBUSY);
    ASSERT_EQ(corio_barrier_wait(&b), 2);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 0);
    ASSERT_EQ(finish(t1), 0);
    ASSERT_EQ(finish(t2), 0);
    ASSERT_EQ(w1.rc, 0);
    ASSERT_EQ(w2.rc, 1);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_barrier_destroy(&b), 0);
    return NULL;
}

TEST(sync_barrier_indices_and_n_waiting)
{
    ASSERT_EQ(test_run_virtual(main_barrier_indices, NULL, NULL), 0);
}

/* asyncio test_barrier_parties, test_filling_one_task(_twice) */
static void *main_barrier_parties(void *arg)
{
    (void)arg;
    corio_barrier b;
    ASSERT_EQ(corio_barrier_init(&b, 0), -EINVAL);
    ASSERT_EQ(corio_barrier_init(&b, -4), -EINVAL);
    ASSERT_EQ(corio_barrier_init(&b, INT_MIN), -EINVAL);
    ASSERT_EQ(corio_barrier_init(&b, 1), 0);
    ASSERT_EQ(corio_barrier_wait(&b), 0);
    ASSERT_EQ(corio_barrier_wait(&b), 0);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 0);
    ASSERT_EQ(corio_barrier_broken(&b), 0);
    waiter w1 = {.name = "1", .op = OP_BARRIER, .obj = &b};
    waiter w2 = {.name = "2", .op = OP_BARRIER, .obj = &b};
    corio_task *t1 = go(&w1);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 0);
    corio_task *t2 = go(&w2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(w1.done + w2.done, 2);
    ASSERT_EQ(finish(t1), 0);
    ASSERT_EQ(finish(t2), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_barrier_destroy(&b), 0);
    return NULL;
}

TEST(sync_barrier_parties)
{
    ASSERT_EQ(test_run_virtual(main_barrier_parties, NULL, NULL), 0);
}

/* asyncio test_filling_tasks_wait_twice / check_return_value: N tasks pass
 * the barrier twice; each round hands out 0..N-1 once each */
struct twice {
    corio_barrier *b;
    int first, second;
};

static void *wait_twice(void *arg)
{
    struct twice *w = arg;
    w->first = corio_barrier_wait(w->b);
    w->second = corio_barrier_wait(w->b);
    return NULL;
}

static void *main_barrier_twice(void *arg)
{
    (void)arg;
    enum { N = 5 };
    corio_barrier b;
    ASSERT_EQ(corio_barrier_init(&b, N), 0);
    struct twice w[N];
    corio_task *t[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct twice){&b, -1, -1};
        t[i] = corio_create_task(corio_coro(wait_twice, &w[i]));
    }
    ASSERT_EQ(corio_gather_tasks(t, N, NULL), 0);
    int seen1 = 0, seen2 = 0;
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(w[i].first, i); /* arrival order */
        ASSERT_GE(w[i].second, 0);
        ASSERT_LT(w[i].second, N);
        seen1 |= 1 << w[i].first;
        seen2 |= 1 << w[i].second;
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    ASSERT_EQ(seen1, (1 << N) - 1);
    ASSERT_EQ(seen2, (1 << N) - 1);
    /* the last to arrive went on at once and came first the second time */
    ASSERT_EQ(w[N - 1].second, 0);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 0);
    ASSERT_EQ(corio_barrier_broken(&b), 0);
    ASSERT_EQ(corio_barrier_destroy(&b), 0);
    return NULL;
}

TEST(sync_barrier_wait_twice)
{
    ASSERT_EQ(test_run_virtual(main_barrier_twice, NULL, NULL), 0);
}

/* asyncio test_filling_tasks_cancel_one: a task cancelled while the
 * barrier fills leaves it; the barrier then needs another party */
static void *main_barrier_cancel_one(void *arg)
{
    (void)arg;
    corio_barrier b;
    ASSERT_EQ(corio_barrier_init(&b, 3), 0);
    test_trace_reset();
    waiter w1 = {.name = "1", .op = OP_BARRIER, .obj = &b};
    waiter w2 = {.name = "2", .op = OP_BARRIER, .obj = &b};
    waiter w3 = {.name = "3", .op = OP_BARRIER, .obj = &b};
    waiter w4 = {.name = "4", .op = OP_BARRIER, .obj = &b};
    corio_task *t1 = go(&w1);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 1);
    corio_task *t2 = go(&w2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 2);
    ASSERT_EQ(corio_cancel(t1), 1);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 1); /* at once */
    ASSERT_EQ(finish(t1), -ECANCELED);
    corio_task *t3 = go(&w3);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 2);
    ASSERT_EQ(w2.done + w3.done, 0);
    corio_task *t4 = go(&w4);
    ASSERT_GE(finish(t2), 0);
    ASSERT_GE(finish(t3), 0);
    ASSERT_GE(finish(t4), 0);
    ASSERT_EQ(w2.done + w3.done + w4.done, 3);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 0);
    ASSERT_EQ(corio_barrier_broken(&b), 0);
    ASSERT_EQ(corio_barrier_destroy(&b), 0);
    return NULL;
}

TEST(sync_barrier_cancel_while_filling_leaves)
{
    ASSERT_EQ(test_run_virtual(main_barrier_cancel_one, NULL, NULL), 0);
}

/* A waiter whose timeout expires while the barrier fills leaves it: the
 * count drops and its scope reports -ETIMEDOUT (once through corio_wait_for,
 * once through a timeout scope). */
static void *main_barrier_timeout(void *arg)
{
    (void)arg;
    corio_barrier b;
    ASSERT_EQ(corio_barrier_init(&b, 2), 0);
    corio_task *tr = corio_create_task(corio_coro(run_barrier_wait, &b));
    ASSERT_NOT_NULL(tr);
    ASSERT_EQ(corio_wait_for(tr, 0.5, NULL), -ETIMEDOUT);
    ASSERT_EQ(corio_task_release(tr), 0);
    ASSERT_EQ(corio_now_ns(), 500 * MS);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 0);
    waiter w = {.name = "W", .op = OP_BARRIER, .obj = &b, .timeout_ns = 1 * SEC};
    corio_task *tw = go(&w);
    ASSERT_EQ(finish(tw), -ECANCELED);
    ASSERT_EQ(w.rc, -ECANCELED);
    ASSERT_EQ(w.scope_rc, -ETIMEDOUT);
    ASSERT_EQ(w.at, 1500 * MS);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 0);
    ASSERT_EQ(corio_barrier_broken(&b), 0);

    /* a full cycle afterwards, indices from 0 */
    test_trace_reset();
    waiter a = {.name = "A", .op = OP_BARRIER, .obj = &b, .timeout_ns = 1 * SEC};
    waiter c = {.name = "C", .op = OP_BARRIER, .obj = &b};
    corio_task *ta = go(&a), *tc = go(&c);
    ASSERT_EQ(finish(ta), 0);
    ASSERT_EQ(finish(tc), 0);
    ASSERT_EQ(a.rc, 0);
    ASSERT_EQ(c.rc, 1);
    ASSERT_EQ(a.scope_rc, 0);
    ASSERT_STR_EQ(test_trace_get(), "C#1 A#0");
    ASSERT_EQ(corio_now_ns(), 1500 * MS);
    ASSERT_EQ(corio_barrier_destroy(&b), 0);
    return NULL;
}

TEST(sync_barrier_wait_timeout_leaves)
{
    ASSERT_EQ(test_run_virtual(main_barrier_timeout, NULL, NULL), 0);
}

/* asyncio test_abort_barrier */
static void *main_barrier_abort(void *arg)
{
    (void)arg;
    corio_barrier b;
    ASSERT_EQ(corio_barrier_init(&b, 3), 0);
    test_trace_reset();
    waiter w1 = {.name = "1", .op = OP_BARRIER, .obj = &b};
    waiter w2 = {.name = "2", .op = OP_BARRIER, .obj = &b};
    corio_task *t1 = go(&w1), *t2 = go(&w2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_barrier_abort(&b), 0);
    ASSERT_EQ(corio_barrier_broken(&b), 1);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 0);
    ASSERT_EQ(finish(t1), -EPIPE);
    ASSERT_EQ(finish(t2), -EPIPE);
    ASSERT_STR_EQ(test_trace_get(), "1:pipe 2:pipe");
    /* later callers too, at once, until reset */
    ASSERT_EQ(corio_barrier_wait(&b), -EPIPE);
    ASSERT_EQ(corio_barrier_wait(&b), -EPIPE);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 0);
    ASSERT_EQ(corio_barrier_abort(&b), 0);
    ASSERT_EQ(corio_barrier_broken(&b), 1);
    ASSERT_EQ(corio_barrier_reset(&b), 0);
    ASSERT_EQ(corio_barrier_broken(&b), 0);
    /* and a full cycle works again */
    test_trace_reset();
    waiter a = {.name = "a", .op = OP_BARRIER, .obj = &b};
    waiter c = {.name = "c", .op = OP_BARRIER, .obj = &b};
    corio_task *ta = go(&a), *tc = go(&c);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_barrier_wait(&b), 2);
    ASSERT_EQ(finish(ta), 0);
    ASSERT_EQ(finish(tc), 0);
    ASSERT_STR_EQ(test_trace_get(), "a#0 c#1");
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_barrier_destroy(&b), 0);
    return NULL;
}

TEST(sync_barrier_abort_is_epipe_until_reset)
{
    ASSERT_EQ(test_run_virtual(main_barrier_abort, NULL, NULL), 0);
}

/* asyncio test_reset_barrier, test_reset_barrier_while_tasks_waiting */
static void *main_barrier_reset(void *arg)
{
    (void)arg;
    enum { N = 5 };
    corio_barrier b;
    ASSERT_EQ(corio_barrier_init(&b, N), 0);
    ASSERT_EQ(corio_barrier_reset(&b), 0); /* idle: nothing happens */
    ASSERT_EQ(corio_barrier_n_waiting(&b), 0);
    ASSERT_EQ(corio_barrier_broken(&b), 0);
    static const char *names[N] = {"a", "b", "c", "d", "e"};
    waiter w[N];
    corio_task *t[N];
    test_trace_reset();
    for (int i = 0; i < N - 1; i++) {
        w[i] = (waiter){.name = names[i], .op = OP_BARRIER, .obj = &b};
        t[i] = go(&w[i]);
    }
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_barrier_n_waiting(&b), N - 1);
    ASSERT_EQ(corio_barrier_reset(&b), 0);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 0);
    ASSERT_EQ(corio_barrier_broken(&b), 0);
    for (int i = 0; i < N - 1; i++)
        ASSERT_EQ(finish(t[i]), -EPIPE);
    ASSERT_STR_EQ(test_trace_get(), "a:pipe b:pipe c:pipe d:pipe");
    /* not broken: a full cycle works, indices from 0 */
    test_trace_reset();
    for (int i = 0; i < N; i++) {
        w[i] = (waiter){.name = names[i], .op = OP_BARRIER, .obj = &b};
        t[i] = go(&w[i]);
    }
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(finish(t[i]), 0);
        ASSERT_EQ(w[i].rc, i);
    }
    ASSERT_STR_EQ(test_trace_get(), "e#4 a#0 b#1 c#2 d#3");
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_barrier_destroy(&b), 0);
    return NULL;
}

TEST(sync_barrier_reset_while_waiting)
{
    ASSERT_EQ(test_run_virtual(main_barrier_reset, NULL, NULL), 0);
}

/* A waiter released by the barrier (or by abort) and cancelled before it
 * resumes reports -ECANCELED; the cycle it was part of is complete for the
 * others, and the barrier is ready for the next one. */
static void *main_barrier_woken_then_cancelled(void *arg)
{
    (void)arg;
    corio_barrier b;
    ASSERT_EQ(corio_barrier_init(&b, 3), 0);
    test_trace_reset();
    waiter w1 = {.name = "1", .op = OP_BARRIER, .obj = &b};
    waiter w2 = {.name = "2", .op = OP_BARRIER, .obj = &b};
    corio_task *t1 = go(&w1), *t2 = go(&w2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_barrier_wait(&b), 2);
    ASSERT_EQ(corio_cancel(t1), 1);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 0);
    ASSERT_EQ(finish(t1), -ECANCELED);
    ASSERT_EQ(finish(t2), 0);
    ASSERT_EQ(w2.rc, 1);
    ASSERT_STR_EQ(test_trace_get(), "1! 2#1");
    ASSERT_EQ(corio_barrier_n_waiting(&b), 0);
    ASSERT_EQ(corio_barrier_broken(&b), 0);

    /* aborted, then cancelled before it resumes */
    test_trace_reset();
    waiter w3 = {.name = "3", .op = OP_BARRIER, .obj = &b};
    corio_task *t3 = go(&w3);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_barrier_abort(&b), 0);
    ASSERT_EQ(corio_cancel(t3), 1);
    ASSERT_EQ(finish(t3), -ECANCELED);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 0);
    ASSERT_EQ(corio_barrier_reset(&b), 0);

    /* the next cycle starts from index 0 */
    test_trace_reset();
    waiter a = {.name = "a", .op = OP_BARRIER, .obj = &b};
    waiter c = {.name = "c", .op = OP_BARRIER, .obj = &b};
    corio_task *ta = go(&a), *tc = go(&c);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_barrier_wait(&b), 2);
    ASSERT_EQ(finish(ta), 0);
    ASSERT_EQ(finish(tc), 0);
    ASSERT_EQ(a.rc, 0);
    ASSERT_EQ(c.rc, 1);
    ASSERT_EQ(corio_barrier_destroy(&b), 0);
    return NULL;
}

TEST(sync_barrier_woken_then_cancelled)
{
    ASSERT_EQ(test_run_virtual(main_barrier_woken_then_cancelled, NULL, NULL), 0);
}

/* =================================================================================
 * Level-triggered cancel and expired scopes: a wait that would block returns
 * -ECANCELED at once and leaves the object untouched.
 * ================================================================================= */

struct objs {
    corio_event ev;
    corio_lock lk;
    corio_sem sm;
    corio_cond cd;
    corio_barrier br;
    corio_lock free_lk; /* for uncontended cases */
    corio_sem free_sm;  /* value 1 */
    corio_event set_ev;
    corio_barrier one;  /* parties 1 */
};

static void objs_init(struct objs *o)
{
    ASSERT_EQ(corio_event_init(&o->ev), 0);
    ASSERT_EQ(corio_lock_init(&o->lk), 0);
    ASSERT_EQ(corio_sem_init(&o->sm, 0), 0);
    ASSERT_EQ(corio_cond_init(&o->cd, NULL), 0);
    ASSERT_EQ(corio_barrier_init(&o->br, 2), 0);
    ASSERT_EQ(corio_lock_init(&o->free_lk), 0);
    ASSERT_EQ(corio_sem_init(&o->free_sm, 1), 0);
    ASSERT_EQ(corio_event_init(&o->set_ev), 0);
    ASSERT_EQ(corio_event_set(&o->set_ev), 0);
    ASSERT_EQ(corio_barrier_init(&o->one, 1), 0);
}

/* Every blocking wait on o (lk held, cd's lock held) returns -ECANCELED at
 * once. */
static void all_waits_cancelled(struct objs *o)
{
    int64_t t0 = corio_now_ns();
    ASSERT_EQ(corio_event_wait(&o->ev), -ECANCELED);
    ASSERT_EQ(corio_lock_acquire(&o->lk), -ECANCELED);
    ASSERT_EQ(corio_sem_acquire(&o->sm), -ECANCELED);
    ASSERT_EQ(corio_sem_value(&o->sm), 0);
    ASSERT_EQ(corio_barrier_wait(&o->br), -ECANCELED);
    ASSERT_EQ(corio_barrier_n_waiting(&o->br), 0);
    ASSERT_EQ(corio_cond_wait(&o->cd), -ECANCELED);
    ASSERT_EQ(corio_lock_locked(corio_cond_lock(&o->cd)), 1);
    ASSERT_EQ(corio_cond_wait_for(&o->cd, never, NULL), -ECANCELED);
    ASSERT_EQ(corio_lock_locked(corio_cond_lock(&o->cd)), 1);
    ASSERT_EQ(corio_now_ns(), t0);
}

static void objs_check_untouched_and_destroy(struct objs *o)
{
    ASSERT_EQ(corio_event_is_set(&o->ev), 0);
    ASSERT_EQ(corio_event_destroy(&o->ev), 0); /* nobody waits */
    ASSERT_EQ(corio_lock_locked(&o->lk), 1);
    ASSERT_EQ(corio_lock_release(&o->lk), 0);
    ASSERT_EQ(corio_lock_locked(&o->lk), 0); /* nobody took it */
    ASSERT_EQ(corio_lock_destroy(&o->lk), 0);
    ASSERT_EQ(corio_sem_release(&o->sm), 0);
    ASSERT_EQ(corio_sem_value(&o->sm), 1);
    ASSERT_EQ(corio_sem_destroy(&o->sm), 0);
    ASSERT_EQ(corio_cond_notify_all(&o->cd), 0);
    ASSERT_EQ(corio_lock_release(corio_cond_lock(&o->cd)), 0);
    ASSERT_EQ(corio_cond_destroy(&o->cd), 0);
    ASSERT_EQ(corio_barrier_n_waiting(&o->br), 0);
    ASSERT_EQ(corio_barrier_broken(&o->br), 0);
    ASSERT_EQ(corio_barrier_destroy(&o->br), 0);
}

static void *self_cancelled_waits(void *arg)
{
    struct objs *o = arg;
    ASSERT_EQ(corio_cancel(corio_current_task()), 1);
    all_waits_cancelled(o);
    all_waits_cancelled(o); /* level-triggered: again */
    return NULL;
}

static void *main_level_triggered(void *arg)
{
    (void)arg;
    struct objs o;
    objs_init(&o);
    ASSERT_EQ(corio_lock_acquire(&o.lk), 0);
    ASSERT_EQ(corio_lock_acquire(corio_cond_lock(&o.cd)), 0);
    corio_task *t = corio_create_task(corio_coro(self_cancelled_waits, &o));
    ASSERT_EQ(finish(t), 0);
    objs_check_untouched_and_destroy(&o);

    /* an already expired scope: the same, and its end reports it */
    objs_init(&o);
    ASSERT_EQ(corio_lock_acquire(&o.lk), 0);
    ASSERT_EQ(corio_lock_acquire(corio_cond_lock(&o.cd)), 0);
    corio_scope sc;
    ASSERT_EQ(corio_timeout_begin(&sc, 0), 0);
    all_waits_cancelled(&o);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    objs_check_untouched_and_destroy(&o);
    ASSERT_EQ(corio_now_ns(), 0);
    return NULL;
}

TEST(sync_waits_in_cancelled_task_return_at_once)
{
    ASSERT_EQ(test_run_virtual(main_level_triggered, NULL, NULL), 0);
}

/* =================================================================================
 * Bad input
 * ================================================================================= */

static void *main_null_objects(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_event_init(NULL), -EINVAL);
    ASSERT_EQ(corio_event_destroy(NULL), -EINVAL);
    ASSERT_EQ(corio_event_set(NULL), -EINVAL);
    ASSERT_EQ(corio_event_clear(NULL), -EINVAL);
    ASSERT_EQ(corio_event_is_set(NULL), -EINVAL);
    ASSERT_EQ(corio_event_wait(NULL), -EINVAL);

    ASSERT_EQ(corio_lock_init(NULL), -EINVAL);
    ASSERT_EQ(corio_lock_destroy(NULL), -EINVAL);
    ASSERT_EQ(corio_lock_acquire(NULL), -EINVAL);
    ASSERT_EQ(corio_lock_try_acquire(NULL), -EINVAL);
    ASSERT_EQ(corio_lock_release(NULL), -EINVAL);
    ASSERT_EQ(corio_lock_locked(NULL), -EINVAL);

    ASSERT_EQ(corio_sem_init(NULL, 1), -EINVAL);
    ASSERT_EQ(corio_sem_init_bounded(NULL, 1), -EINVAL);
    ASSERT_EQ(corio_sem_destroy(NULL), -EINVAL);
    ASSERT_EQ(corio_sem_acquire(NULL), -EINVAL);
    ASSERT_EQ(corio_sem_try_acquire(NULL), -EINVAL);
    ASSERT_EQ(corio_sem_release(NULL), -EINVAL);
    ASSERT_EQ(corio_sem_value(NULL), -EINVAL);

    ASSERT_EQ(corio_cond_init(NULL, NULL), -EINVAL);
    ASSERT_EQ(corio_cond_destroy(NULL), -EINVAL);
    ASSERT_NULL(corio_cond_lock(NULL));
    ASSERT_EQ(corio_cond_wait(NULL), -EINVAL);
    ASSERT_EQ(corio_cond_wait_for(NULL, always, NULL), -EINVAL);
    ASSERT_EQ(corio_cond_notify(NULL, 1), -EINVAL);
    ASSERT_EQ(corio_cond_notify_all(NULL), -EINVAL);

    ASSERT_EQ(corio_barrier_init(NULL, 2), -EINVAL);
    ASSERT_EQ(corio_barrier_destroy(NULL), -EINVAL);
    ASSERT_EQ(corio_barrier_wait(NULL), -EINVAL);
    ASSERT_EQ(corio_barrier_abort(NULL), -EINVAL);
    ASSERT_EQ(corio_barrier_reset(NULL), -EINVAL);
    ASSERT_EQ(corio_barrier_n_waiting(NULL), -EINVAL);
    ASSERT_EQ(corio_barrier_broken(NULL), -EINVAL);

    /* bad arguments beside a good object */
    corio_cond c;
    ASSERT_EQ(corio_cond_init(&c, NULL), 0);
    ASSERT_EQ(corio_lock_acquire(corio_cond_lock(&c)), 0);
    ASSERT_EQ(corio_cond_wait_for(&c, NULL, NULL), -EINVAL);
    test_trace_reset();
    waiter w = {.name = "W", .op = OP_COND, .obj = &c, .release = 1};
    corio_task *t = go(&w);
    ASSERT_EQ(corio_lock_release(corio_cond_lock(&c)), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_acquire(corio_cond_lock(&c)), 0);
    ASSERT_EQ(corio_cond_notify(&c, -1), -EINVAL);
    ASSERT_EQ(corio_cond_notify(&c, INT_MIN), -EINVAL);
    ASSERT_EQ(corio_lock_release(corio_cond_lock(&c)), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(w.done, 0); /* the failed notify woke nobody */
    ASSERT_EQ(corio_lock_acquire(corio_cond_lock(&c)), 0);
    ASSERT_EQ(corio_cond_notify(&c, 1), 1);
    ASSERT_EQ(corio_lock_release(corio_cond_lock(&c)), 0);
    ASSERT_EQ(finish(t), 0);
    ASSERT_EQ(corio_cond_destroy(&c), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    return NULL;
}

TEST(sync_bad_null_objects_and_arguments)
{
    ASSERT_EQ(test_run_virtual(main_null_objects, NULL, NULL), 0);
}

/* Objects that were never initialized (zeroed, or garbage) are rejected by
 * every call, waits included (none of them suspends). */
static void check_uninitialized(unsigned char fill)
{
    corio_event ev;
    corio_lock lk;
    corio_sem sm;
    corio_cond cd;
    corio_barrier br;
    memset(&ev, fill, sizeof ev);
    memset(&lk, fill, sizeof lk);
    memset(&sm, fill, sizeof sm);
    memset(&cd, fill, sizeof cd);
    memset(&br, fill, sizeof br);
    int64_t t0 = corio_now_ns();

    ASSERT_EQ(corio_event_destroy(&ev), -EINVAL);
    ASSERT_EQ(corio_event_set(&ev), -EINVAL);
    ASSERT_EQ(corio_event_clear(&ev), -EINVAL);
    ASSERT_EQ(corio_event_is_set(&ev), -EINVAL);
    ASSERT_EQ(corio_event_wait(&ev), -EINVAL);

    ASSERT_EQ(corio_lock_destroy(&lk), -EINVAL);
    ASSERT_EQ(corio_lock_acquire(&lk), -EINVAL);
    ASSERT_EQ(corio_lock_try_acquire(&lk), -EINVAL);
    ASSERT_EQ(corio_lock_release(&lk), -EINVAL);
    ASSERT_EQ(corio_lock_locked(&lk), -EINVAL);

    ASSERT_EQ(corio_sem_destroy(&sm), -EINVAL);
    ASSERT_EQ(corio_sem_acquire(&sm), -EINVAL);
    ASSERT_EQ(corio_sem_try_acquire(&sm), -EINVAL);
    ASSERT_EQ(corio_sem_release(&sm), -EINVAL);
    ASSERT_EQ(corio_sem_value(&sm), -EINVAL);

    ASSERT_EQ(corio_cond_destroy(&cd), -EINVAL);
    ASSERT_NULL(corio_cond_lock(&cd));
    ASSERT_EQ(corio_cond_wait(&cd), -EINVAL);
    ASSERT_EQ(corio_cond_wait_for(&cd, always, NULL), -EINVAL);
    ASSERT_EQ(corio_cond_notify(&cd, 1), -EINVAL);
    ASSERT_EQ(corio_cond_notify_all(&cd), -EINVAL);
    /* a condition cannot be made on an uninitialized lock */
    ASSERT_EQ(corio_cond_init(&cd, &lk), -EINVAL);
    ASSERT_NULL(corio_cond_lock(&cd));

    ASSERT_EQ(corio_barrier_destroy(&br), -EINVAL);
    ASSERT_EQ(corio_barrier_wait(&br), -EINVAL);
    ASSERT_EQ(corio_barrier_abort(&br), -EINVAL);
    ASSERT_EQ(corio_barrier_reset(&br), -EINVAL);
    ASSERT_EQ(corio_barrier_n_waiting(&br), -EINVAL);
    ASSERT_EQ(corio_barrier_broken(&br), -EINVAL);
    ASSERT_EQ(corio_now_ns(), t0);
}

static void *main_uninitialized(void *arg)
{
    (void)arg;
    check_uninitialized(0);
    check_uninitialized(0xA5);
    return NULL;
}

TEST(sync_bad_uninitialized_objects)
{
    ASSERT_EQ(test_run_virtual(main_uninitialized, NULL, NULL), 0);
}

/* A destroyed object is rejected like an uninitialized one; it can be
 * initialized again. */
static void *main_destroyed(void *arg)
{
    (void)arg;
    corio_event ev;
    corio_lock lk;
    corio_sem sm;
    corio_cond cd;
    corio_barrier br;
    ASSERT_EQ(corio_event_init(&ev), 0);
    ASSERT_EQ(corio_event_set(&ev), 0);
    ASSERT_EQ(corio_lock_init(&lk), 0);
    ASSERT_EQ(corio_sem_init(&sm, 3), 0);
    ASSERT_EQ(corio_cond_init(&cd, NULL), 0);
    ASSERT_EQ(corio_barrier_init(&br, 1), 0);
    ASSERT_EQ(corio_event_destroy(&ev), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), 0);
    ASSERT_EQ(corio_sem_destroy(&sm), 0);
    ASSERT_EQ(corio_cond_destroy(&cd), 0);
    ASSERT_EQ(corio_barrier_destroy(&br), 0);

    ASSERT_EQ(corio_event_destroy(&ev), -EINVAL);
    ASSERT_EQ(corio_event_wait(&ev), -EINVAL); /* was set: still rejected */
    ASSERT_EQ(corio_event_set(&ev), -EINVAL);
    ASSERT_EQ(corio_event_is_set(&ev), -EINVAL);
    ASSERT_EQ(corio_lock_destroy(&lk), -EINVAL);
    ASSERT_EQ(corio_lock_acquire(&lk), -EINVAL);
    ASSERT_EQ(corio_lock_try_acquire(&lk), -EINVAL);
    ASSERT_EQ(corio_lock_locked(&lk), -EINVAL);
    ASSERT_EQ(corio_sem_destroy(&sm), -EINVAL);
    ASSERT_EQ(corio_sem_acquire(&sm), -EINVAL);
    ASSERT_EQ(corio_sem_release(&sm), -EINVAL);
    ASSERT_EQ(corio_sem_value(&sm), -EINVAL);
    ASSERT_EQ(corio_cond_destroy(&cd), -EINVAL);
    ASSERT_NULL(corio_cond_lock(&cd));
    ASSERT_EQ(corio_cond_notify(&cd, 1), -EINVAL);
    ASSERT_EQ(corio_barrier_destroy(&br), -EINVAL);
    ASSERT_EQ(corio_barrier_wait(&br), -EINVAL);
    ASSERT_EQ(corio_barrier_n_waiting(&br), -EINVAL);

    ASSERT_EQ(corio_event_init(&ev), 0);
    ASSERT_EQ(corio_event_is_set(&ev), 0);
    ASSERT_EQ(corio_lock_init(&lk), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(corio_sem_init(&sm, 1), 0);
    ASSERT_EQ(corio_sem_value(&sm), 1);
    ASSERT_EQ(corio_barrier_init(&br, 1), 0);
    ASSERT_EQ(corio_barrier_wait(&br), 0);
    ASSERT_EQ(corio_event_destroy(&ev), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), 0);
    ASSERT_EQ(corio_sem_destroy(&sm), 0);
    ASSERT_EQ(corio_barrier_destroy(&br), 0);
    return NULL;
}

TEST(sync_bad_destroyed_objects)
{
    ASSERT_EQ(test_run_virtual(main_destroyed, NULL, NULL), 0);
}

/* A failed init has no other effect: the object keeps its state and its
 * waiters. */
static void *main_failed_init(void *arg)
{
    (void)arg;
    corio_sem s;
    ASSERT_EQ(corio_sem_init(&s, 2), 0);
    ASSERT_EQ(corio_sem_acquire(&s), 0);
    ASSERT_EQ(corio_sem_init(&s, -1), -EINVAL);
    ASSERT_EQ(corio_sem_init_bounded(&s, -1), -EINVAL);
    ASSERT_EQ(corio_sem_value(&s), 1);
    ASSERT_EQ(corio_sem_release(&s), 0);
    ASSERT_EQ(corio_sem_release(&s), 0); /* still unbounded */
    ASSERT_EQ(corio_sem_value(&s), 3);
    ASSERT_EQ(corio_sem_destroy(&s), 0);

    corio_barrier b;
    ASSERT_EQ(corio_barrier_init(&b, 2), 0);
    waiter w = {.name = "W", .op = OP_BARRIER, .obj = &b};
    corio_task *t = go(&w);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_barrier_init(&b, 0), -EINVAL);
    ASSERT_EQ(corio_barrier_init(&b, -1), -EINVAL);
    ASSERT_EQ(corio_barrier_n_waiting(&b), 1);
    ASSERT_EQ(corio_barrier_wait(&b), 1);
    ASSERT_EQ(finish(t), 0);
    ASSERT_EQ(corio_barrier_destroy(&b), 0);

    corio_cond c;
    corio_lock bad;
    memset(&bad, 0, sizeof bad);
    ASSERT_EQ(corio_cond_init(&c, NULL), 0);
    corio_lock *own = corio_cond_lock(&c);
    waiter cw = {.name = "C", .op = OP_COND, .obj = &c, .release = 1};
    t = go(&cw);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cond_init(&c, &bad), -EINVAL);
    ASSERT_PTR_EQ(corio_cond_lock(&c), own);
    ASSERT_EQ(corio_lock_acquire(own), 0);
    ASSERT_EQ(corio_cond_notify(&c, 1), 1);
    ASSERT_EQ(corio_lock_release(own), 0);
    ASSERT_EQ(finish(t), 0);
    ASSERT_EQ(corio_cond_destroy(&c), 0);
    return NULL;
}

TEST(sync_bad_failed_init_has_no_effect)
{
    ASSERT_EQ(test_run_virtual(main_failed_init, NULL, NULL), 0);
}

/* destroy while a task waits (or a lock is held): -EBUSY, and nothing
 * changes: the object goes on working. */
static void *main_destroy_busy(void *arg)
{
    (void)arg;
    test_trace_reset();

    corio_event ev;
    ASSERT_EQ(corio_event_init(&ev), 0);
    waiter we = {.name = "ev", .op = OP_EVENT, .obj = &ev};
    corio_task *t = go(&we);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_event_destroy(&ev), -EBUSY);
    ASSERT_EQ(corio_event_destroy(&ev), -EBUSY);
    ASSERT_EQ(corio_event_is_set(&ev), 0);
    ASSERT_EQ(corio_event_set(&ev), 0);
    ASSERT_EQ(finish(t), 0);
    ASSERT_EQ(corio_event_destroy(&ev), 0);

    corio_lock lk;
    ASSERT_EQ(corio_lock_init(&lk), 0);
    ASSERT_EQ(corio_lock_acquire(&lk), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), -EBUSY); /* held */
    ASSERT_EQ(corio_lock_locked(&lk), 1);
    waiter wl = {.name = "lk", .op = OP_LOCK, .obj = &lk, .release = 1};
    t = go(&wl);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), -EBUSY); /* held, and waited on */
    ASSERT_EQ(corio_lock_release(&lk), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), -EBUSY); /* held by the waiter now */
    ASSERT_EQ(finish(t), 0);
    ASSERT_EQ(corio_lock_locked(&lk), 0);
    ASSERT_EQ(corio_lock_destroy(&lk), 0);

    corio_sem sm;
    ASSERT_EQ(corio_sem_init(&sm, 0), 0);
    waiter ws = {.name = "sm", .op = OP_SEM, .obj = &sm};
    t = go(&ws);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_sem_destroy(&sm), -EBUSY);
    ASSERT_EQ(corio_sem_value(&sm), 0);
    ASSERT_EQ(corio_sem_release(&sm), 0);
    ASSERT_EQ(finish(t), 0);
    ASSERT_EQ(corio_sem_destroy(&sm), 0);

    corio_cond cd;
    ASSERT_EQ(corio_cond_init(&cd, NULL), 0);
    corio_lock *cl = corio_cond_lock(&cd);
    waiter wc = {.name = "cd", .op = OP_COND, .obj = &cd, .release = 1};
    t = go(&wc);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_lock_locked(cl), 0);
    ASSERT_EQ(corio_cond_destroy(&cd), -EBUSY); /* a waiter */
    ASSERT_EQ(corio_lock_acquire(cl), 0);
    ASSERT_EQ(corio_cond_destroy(&cd), -EBUSY);
    ASSERT_EQ(corio_cond_notify(&cd, 1), 1);
    ASSERT_EQ(corio_cond_destroy(&cd), -EBUSY); /* lock held, and waited on */
    ASSERT_EQ(corio_lock_release(cl), 0);
    ASSERT_EQ(finish(t), 0);
    ASSERT_EQ(corio_cond_destroy(&cd), 0);

    corio_barrier br;
    ASSERT_EQ(corio_barrier_init(&br, 2), 0);
    waiter wb = {.name = "br", .op = OP_BARRIER, .obj = &br};
    t = go(&wb);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_barrier_destroy(&br), -EBUSY);
    ASSERT_EQ(corio_barrier_n_waiting(&br), 1);
    ASSERT_EQ(corio_barrier_broken(&br), 0);
    ASSERT_EQ(corio_barrier_wait(&br), 1);
    ASSERT_EQ(finish(t), 0);
    ASSERT_EQ(corio_barrier_destroy(&br), 0);

    ASSERT_STR_EQ(test_trace_get(), "ev lk sm cd br#0");
    ASSERT_EQ(corio_now_ns(), 0);
    return NULL;
}

TEST(sync_destroy_busy_changes_nothing)
{
    ASSERT_EQ(test_run_virtual(main_destroy_busy, NULL, NULL), 0);
}

/* ---- waits outside a task ----------------------------------------------------------- */

struct outside {
    struct objs o;
    int ran;
    int in_task; /* corio_current_task() was non-NULL in the callback */
};

/* The waits that would have to suspend. */
static void outside_blocking_waits(struct objs *o)
{
    ASSERT_EQ(corio_event_wait(&o->ev), -EPERM);
    ASSERT_EQ(corio_lock_acquire(&o->lk), -EPERM);
    ASSERT_EQ(corio_sem_acquire(&o->sm), -EPERM);
    ASSERT_EQ(corio_cond_wait(&o->cd), -EPERM);
    ASSERT_EQ(corio_cond_wait_for(&o->cd, never, NULL), -EPERM);
    ASSERT_EQ(corio_barrier_wait(&o->br), -EPERM);
    /* nothing changed */
    ASSERT_EQ(corio_lock_locked(&o->lk), 1);
    ASSERT_EQ(corio_sem_value(&o->sm), 0);
    ASSERT_EQ(corio_lock_locked(corio_cond_lock(&o->cd)), 1);
    ASSERT_EQ(corio_barrier_n_waiting(&o->br), 0);
    ASSERT_EQ(corio_event_destroy(&o->ev), 0); /* no waiter was left */
    ASSERT_EQ(corio_event_init(&o->ev), 0);
}

/* The waits that could complete at once: still waits, still -EPERM. */
static void outside_uncontended_waits(struct objs *o)
{
    ASSERT_EQ(corio_event_wait(&o->set_ev), -EPERM);
    ASSERT_EQ(corio_lock_acquire(&o->free_lk), -EPERM);
    ASSERT_EQ(corio_lock_locked(&o->free_lk), 0);
    ASSERT_EQ(corio_sem_acquire(&o->free_sm), -EPERM);
    ASSERT_EQ(corio_sem_value(&o->free_sm), 1);
    ASSERT_EQ(corio_cond_wait_for(&o->cd, always, NULL), -EPERM);
    ASSERT_EQ(corio_barrier_wait(&o->one), -EPERM);
}

static void cb_blocking(corio_task *t, void *arg)
{
    (void)t;
    struct outside *x = arg;
    x->in_task = corio_current_task() != NULL;
    outside_blocking_waits(&x->o);
    /* the calls that do not wait work from here */
    ASSERT_EQ(corio_event_set(&x->o.ev), 0);
    ASSERT_EQ(corio_event_clear(&x->o.ev), 0);
    ASSERT_EQ(corio_sem_release(&x->o.sm), 0);
    ASSERT_EQ(corio_sem_try_acquire(&x->o.sm), 0);
    ASSERT_EQ(corio_lock_try_acquire(&x->o.lk), -EAGAIN);
    ASSERT_EQ(corio_cond_notify(&x->o.cd, 1), 0);
    x->ran = 1;
}

static void cb_uncontended(corio_task *t, void *arg)
{
    (void)t;
    struct outside *x = arg;
    x->in_task = corio_current_task() != NULL;
    outside_uncontended_waits(&x->o);
    x->ran = 1;
}

static void *return_null(void *arg)
{
    (void)arg;
    return NULL;
}

static void *main_outside_task(void *arg)
{
    corio_done_fn *cb = (corio_done_fn *)arg;
    struct outside x;
    memset(&x, 0, sizeof x);
    objs_init(&x.o);
    ASSERT_EQ(corio_lock_acquire(&x.o.lk), 0);
    ASSERT_EQ(corio_lock_acquire(corio_cond_lock(&x.o.cd)), 0);
    corio_task *t = corio_create_task(corio_coro(return_null, NULL));
    ASSERT_EQ(corio_task_add_done_callback(t, cb, &x), 0);
    ASSERT_EQ(finish(t), 0);
    for (int i = 0; i < 5 && !x.ran; i++)
        ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(x.ran, 1);
    ASSERT_EQ(x.in_task, 0);
    ASSERT_EQ(corio_lock_locked(&x.o.free_lk), 0);
    ASSERT_EQ(corio_sem_value(&x.o.free_sm), 1);
    objs_check_untouched_and_destroy(&x.o);
    return NULL;
}

TEST(sync_blocking_waits_outside_task_are_eperm)
{
    /* in a done callback: on the loop's thread, outside any task */
    ASSERT_EQ(test_run_virtual(main_outside_task, (void *)cb_blocking, NULL), 0);
    /* on a thread with no loop at all */
    struct objs o;
    objs_init(&o);
    ASSERT_EQ(corio_lock_try_acquire(&o.lk), 0);
    ASSERT_EQ(corio_lock_try_acquire(corio_cond_lock(&o.cd)), 0);
    outside_blocking_waits(&o);
}

TEST(sync_uncontended_waits_outside_task_are_eperm)
{
    ASSERT_EQ(test_run_virtual(main_outside_task, (void *)cb_uncontended, NULL), 0);
    struct objs o;
    objs_init(&o);
    ASSERT_EQ(corio_lock_try_acquire(corio_cond_lock(&o.cd)), 0);
    outside_uncontended_waits(&o);
}

/* ---- another thread's loop: -EXDEV ------------------------------------------------- */

struct xdev {
    struct objs o;
    int destroy; /* the second thread tries destroy too */
};

static void *xdev_main_b(void *arg)
{
    struct xdev *x = arg;
    struct objs *o = &x->o;
    if (x->destroy) {
        ASSERT_EQ(corio_event_destroy(&o->ev), -EXDEV);
        ASSERT_EQ(corio_lock_destroy(&o->free_lk), -EXDEV);
        ASSERT_EQ(corio_sem_destroy(&o->sm), -EXDEV);
        ASSERT_EQ(corio_cond_destroy(&o->cd), -EXDEV);
        ASSERT_EQ(corio_barrier_destroy(&o->br), -EXDEV);
        return NULL;
    }
    ASSERT_EQ(corio_event_set(&o->ev), -EXDEV);
    ASSERT_EQ(corio_event_clear(&o->set_ev), -EXDEV);
    ASSERT_EQ(corio_event_wait(&o->ev), -EXDEV);
    ASSERT_EQ(corio_event_wait(&o->set_ev), -EXDEV);

    ASSERT_EQ(corio_lock_acquire(&o->lk), -EXDEV);      /* held: would block */
    ASSERT_EQ(corio_lock_acquire(&o->free_lk), -EXDEV); /* free: would not */
    ASSERT_EQ(corio_lock_try_acquire(&o->free_lk), -EXDEV);
    ASSERT_EQ(corio_lock_release(&o->lk), -EXDEV);

    ASSERT_EQ(corio_sem_acquire(&o->sm), -EXDEV);
    ASSERT_EQ(corio_sem_acquire(&o->free_sm), -EXDEV);
    ASSERT_EQ(corio_sem_try_acquire(&o->free_sm), -EXDEV);
    ASSERT_EQ(corio_sem_release(&o->sm), -EXDEV);

    ASSERT_EQ(corio_cond_wait(&o->cd), -EXDEV);
    ASSERT_EQ(corio_cond_wait_for(&o->cd, never, NULL), -EXDEV);
    ASSERT_EQ(corio_cond_wait_for(&o->cd, always, NULL), -EXDEV);
    ASSERT_EQ(corio_cond_notify(&o->cd, 1), -EXDEV);
    ASSERT_EQ(corio_cond_notify_all(&o->cd), -EXDEV);

    ASSERT_EQ(corio_barrier_wait(&o->br), -EXDEV);
    ASSERT_EQ(corio_barrier_wait(&o->one), -EXDEV);
    ASSERT_EQ(corio_barrier_abort(&o->br), -EXDEV);
    ASSERT_EQ(corio_barrier_reset(&o->br), -EXDEV);

    /* a condition of this loop cannot wait on the other loop's lock */
    corio_cond mine;
    int rc = corio_cond_init(&mine, &o->free_lk);
    if (rc == 0) {
        ASSERT_EQ(corio_cond_notify(&mine, 1), -EXDEV);
        ASSERT_EQ(corio_cond_wait(&mine), -EXDEV);
        ASSERT_EQ(corio_cond_destroy(&mine), 0);
    } else {
        ASSERT_EQ(rc, -EXDEV);
    }
    return NULL;
}

static void *xdev_thread(void *arg)
{
    ASSERT_EQ(test_run_virtual(xdev_main_b, arg, NULL), 0);
    return NULL;
}

static void *xdev_main_a(void *arg)
{
    struct xdev *x = arg;
    struct objs *o = &x->o;
    objs_init(o);
    ASSERT_EQ(corio_lock_acquire(&o->lk), 0);
    ASSERT_EQ(corio_lock_acquire(corio_cond_lock(&o->cd)), 0);
    /* this loop stays alive (blocked in this task) while the other runs */
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, xdev_thread, x), 0);
    ASSERT_EQ(pthread_join(th, NULL), 0);

    /* nothing changed, and everything still works here */
    ASSERT_EQ(corio_event_is_set(&o->ev), 0);
    ASSERT_EQ(corio_event_is_set(&o->set_ev), 1);
    ASSERT_EQ(corio_lock_locked(&o->free_lk), 0);
    ASSERT_EQ(corio_sem_value(&o->free_sm), 1);
    ASSERT_EQ(corio_barrier_broken(&o->br), 0);
    ASSERT_EQ(corio_event_wait(&o->set_ev), 0);
    ASSERT_EQ(corio_lock_acquire(&o->free_lk), 0);
    ASSERT_EQ(corio_lock_release(&o->free_lk), 0);
    ASSERT_EQ(corio_sem_acquire(&o->free_sm), 0);
    ASSERT_EQ(corio_sem_release(&o->free_sm), 0);
    ASSERT_EQ(corio_barrier_wait(&o->one), 0);
    waiter w = {.name = "W", .op = OP_BARRIER, .obj = &o->br};
    corio_task *t = go(&w);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_barrier_wait(&o->br), 1);
    ASSERT_EQ(finish(t), 0);
    objs_check_untouched_and_destroy(o);
    ASSERT_EQ(corio_lock_destroy(&o->free_lk), 0);
    ASSERT_EQ(corio_sem_destroy(&o->free_sm), 0);
    ASSERT_EQ(corio_event_destroy(&o->set_ev), 0);
    ASSERT_EQ(corio_barrier_destroy(&o->one), 0);
    return NULL;
}

TEST(sync_other_threads_loop_is_exdev)
{
    struct xdev x;
    memset(&x, 0, sizeof x);
    ASSERT_EQ(test_run_virtual(xdev_main_a, &x, NULL), 0);
}

TEST(sync_destroy_from_other_threads_loop_is_exdev)
{
    struct xdev x;
    memset(&x, 0, sizeof x);
    x.destroy = 1;
    ASSERT_EQ(test_run_virtual(xdev_main_a, &x, NULL), 0);
}
