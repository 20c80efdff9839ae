/* corio.h - asyncio for C: stackful coroutines, one event loop per thread.
 *
 * Read in order: coroutine objects, running a loop, tasks, awaiting, sleeping,
 * cancellation, scopes (timeouts, shields), task groups, waiting on several
 * tasks, done callbacks, synchronization, queues, select, the clock,
 * explicit loops.
 *
 * Error convention, everywhere: a call returns 0 (or a count) on success and a
 * negative errno on failure; a failed call has no other effect. errno is never
 * the channel. Calls that suspend must be made from inside a corio task; from
 * anywhere else they return -EPERM.
 */
#ifndef CORIO_H
#define CORIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Coroutine objects ------------------------------------------------------
 * A coroutine is a plain C function `void *fn(void *arg)`. A coroutine object
 * pairs it with its argument; making one runs nothing (like calling an
 * `async def`). It runs when passed to corio_run, corio_create_task or
 * corio_await. It is a small value: copy it freely. */
typedef void *corio_fn(void *arg);
typedef struct corio_coro {
    corio_fn *fn;
    void *arg;
} corio_coro_t;

static inline corio_coro_t corio_coro(corio_fn *fn, void *arg)
{
    corio_coro_t c = {fn, arg};
    return c;
}

typedef struct corio_task corio_task;
typedef struct corio_loop corio_loop;

/* ---- Running ---------------------------------------------------------------- */
enum corio_clock_kind {
    CORIO_CLOCK_DEFAULT = 0, /* real time, unless CORIO_CLOCK=virtual is set in the environment */
    CORIO_CLOCK_REAL,        /* CLOCK_MONOTONIC */
    CORIO_CLOCK_VIRTUAL,     /* starts at 0; when every task waits on a timer, jumps to the next deadline */
};

typedef struct corio_loop_opts {
    size_t stack_size; /* default stack per task in bytes; 0 = CORIO_STACK_DEFAULT */
    int clock;         /* enum corio_clock_kind */
} corio_loop_opts;

#define CORIO_STACK_DEFAULT ((size_t)64 * 1024) /* raise it for deep C call chains */
#define CORIO_STACK_MIN ((size_t)16 * 1024)
#define CORIO_STACK_MAX ((size_t)1024 * 1024 * 1024)

/* asyncio.run(main): makes a loop on this thread, runs `main` as a task to
 * completion, cancels and reaps the tasks still alive, closes the loop.
 * *result (if non-NULL) gets main's result. Returns main's status: 0, or the
 * negative errno main ended with (see corio_fail), or:
 *   -EINVAL  main.fn is NULL, or bad opts (stack size out of range, unknown clock)
 *   -EBUSY   a loop is already running on this thread
 *   -EDEADLK every task waits and nothing can ever wake one (each is printed to stderr)
 *   -ENOMEM  out of memory */
int corio_run(corio_coro_t main, void **result);
int corio_run_opts(corio_coro_t main, void **result, const corio_loop_opts *opts);

/* ---- Tasks ----------------------------------------------------------------------
 * asyncio.create_task: schedules the coroutine as a task (FIFO); it first runs
 * when the creating task next suspends. Returns NULL on bad input (NULL fn),
 * outside a loop, or when out of memory; corio_task_create says which.
 *
 * The returned handle is yours: await it as often as you like, then give it
 * back with corio_task_release (or let the loop's close reclaim it). A task
 * runs to its end whether or not anyone holds its handle. */
corio_task *corio_create_task(corio_coro_t coro);

typedef struct corio_task_opts {
    size_t stack_size; /* 0 = the loop's default */
} corio_task_opts;

/* The full form: 0 and *out set, or -EINVAL (NULL out/fn, stack size out of
 * range), -EPERM (no loop on this thread), -ENOMEM. opts may be NULL. */
int corio_task_create(corio_task **out, corio_coro_t coro, const corio_task_opts *opts);

/* Fire and forget (Go's `go f(x)`): create a task and release its handle at
 * once. 0 or the errors of corio_task_create. */
int corio_spawn(corio_coro_t coro);

/* Drop your handle. A finished task is freed now, a running one when it ends.
 * 0, or -EINVAL (NULL, or already released). Do not use the handle after. */
int corio_task_release(corio_task *t);

/* End the current task with an error: `return corio_fail(-ETIMEDOUT);`.
 * err must be a negative errno (anything else is recorded as -EINVAL).
 * Returns NULL, the value to return. Awaiting the task then reports err. */
void *corio_fail(int err);

/* 1 if the task has ended, 0 if not, -EINVAL for NULL. */
int corio_task_done(const corio_task *t);

/* The task running now, or NULL outside a task. */
corio_task *corio_current_task(void);

/* ---- Awaiting ---------------------------------------------------------------------
 * corio_await(x, &result) is `await x`:
 *  - x a task: suspend until it ends; returns its status (0, or the negative
 *    errno it ended with, -ECANCELED if it was cancelled before it ran) and
 *    stores its result. If the awaiting task is itself cancelled while it
 *    waits, returns -ECANCELED at once (the awaited task goes on).
 *  - x a coroutine object: run it inline in this task, as `await coro` does
 *    (no new task, no scheduling); returns its status.
 * result may be NULL. Errors: -EPERM outside a task, -EINVAL for NULL task or
 * fn, -EDEADLK when a task awaits itself, -EXDEV for a task of another loop. */
int corio_await_task(corio_task *t, void **result);
int corio_await_coro(corio_coro_t coro, void **result);
#define corio_await(x, result)                                                    \
    _Generic((x), corio_task *: corio_await_task, corio_coro_t: corio_await_coro)( \
        (x), (result))

/* ---- Sleeping and yielding -------------------------------------------------------
 * asyncio.sleep: suspend this task for at least the given time, without
 * blocking the thread. 0 on success, -ECANCELED if cancelled, -EINVAL for a
 * negative or non-finite duration, -EPERM outside a task. A zero duration
 * is a plain yield. */
int corio_sleep(double seconds);
int corio_sleep_ns(int64_t ns);

/* Let every other ready task run once, then continue (asyncio.sleep(0)).
 * 0, -ECANCELED, or -EPERM outside a task. */
int corio_yield(void);

/* ---- Cancellation ----------------------------------------------------------------
 * Ask a task to stop. Level-triggered: its pending suspension and every later
 * one return -ECANCELED until it ends (except inside a shield, below). A task
 * cancelled before it first ran never runs and ends with -ECANCELED. The task
 * ends with what its function reports, so propagate:
 * `if (rc < 0) return corio_fail(rc);`.
 *
 * Prompt and lossless: a cancel that reaches a suspended task before it has
 * resumed makes that suspension return -ECANCELED even if its wakeup had
 * already been handed to it; the primitive then passes the wakeup on (a
 * queue item back to the front, a permit to the next waiter). An awaited
 * task that ended is not "used up" by a cancelled await: it can be awaited
 * again. A completion and a cancel at the same instant resolve by order: if
 * the task resumed first it completed; otherwise the suspension reports
 * -ECANCELED. Either way exactly once.
 *
 * corio_cancel returns 1 if the request was made, 0 if the task had already
 * ended or was already cancelled (harmless), -EINVAL for NULL or a freed
 * task, -EXDEV for a task of another thread's loop (-EPERM with no loop on
 * this thread). corio_cancel_with also records `reason` (a static string,
 * kept by pointer), which corio_cancel_reason returns for the task (NULL:
 * none given, or not cancelled). Only the first cancel counts: a reason
 * given to a task already cancelled is not recorded. */
int corio_cancel(corio_task *t);
int corio_cancel_with(corio_task *t, const char *reason);
const char *corio_cancel_reason(const corio_task *t);

/* 1 if the task has been cancelled (whether it has ended or not), 0 if not,
 * -EINVAL for NULL. */
int corio_task_cancelled(const corio_task *t);

/* ---- Scopes: timeouts and shields ---------------------------------------------------
 * A scope brackets part of a task's code: corio_*_begin ... corio_scope_end,
 * on the same task, properly nested (a scope is ended before the one around
 * it). The corio_scope object lives wherever you like (usually the stack) and
 * must stay put until ended. A task whose function returns with a scope of
 * its own still open aborts the program with a message naming the task
 * (the scope's timer would fire into frames that are gone).
 *
 * Timeout scope (asyncio.timeout, Trio's move_on_after): when its deadline
 * passes, it cancels what runs inside it, by the same rule as a task cancel
 * but only until the scope ends: suspensions in it return -ECANCELED. Its end
 * returns -ETIMEDOUT if its expiry interrupted a suspension inside it, and 0
 * if the body finished without being interrupted (even past the deadline).
 * Scopes nest: an outer one is unaffected by an inner one's expiry. When
 * several enclosing causes are active at once (nested scopes expiring
 * together, or the task cancelled too), the interruption belongs to the
 * outermost: the task's own cancel first, then the outermost expired scope.
 * Only that one reports it; the inner ends return 0 and the -ECANCELED the
 * body propagates travels on to it. Idiom:
 *
 *     corio_scope sc;
 *     corio_timeout_begin(&sc, 2.5);
 *     int rc = fetch(...);                 // -ECANCELED if the 2.5 s ran out
 *     int trc = corio_scope_end(&sc);
 *     if (trc < 0) rc = trc;               // -ETIMEDOUT: it was ours
 *
 * Shield scope (asyncio.shield, Trio's shield=True): suspensions inside it
 * are not interrupted by a cancel of the task or by the expiry of scopes
 * around it (scopes opened inside it still work). Such a cancel stays
 * pending and is delivered when the shield ends: corio_scope_end returns
 * -ECANCELED, and the next suspension after it does too. For cleanup that
 * must flush or close.
 *
 * begin: 0, -EINVAL (NULL scope, NaN or negative duration), -EPERM (not in a
 * task), -ENOMEM. A deadline in the past expires at once (the first
 * suspension inside is interrupted). CORIO_NO_DEADLINE: a timeout scope that
 * never expires until given a deadline.
 * end: 0, -ETIMEDOUT or -ECANCELED as above; -EINVAL if s is NULL, not
 * begun, or not the innermost scope of the calling task (nothing changes). */
typedef struct corio_scope {
    _Alignas(8) unsigned char opaque_[96];
} corio_scope;

#define CORIO_NO_DEADLINE INT64_MAX

int corio_timeout_begin(corio_scope *s, double seconds);
int corio_timeout_begin_ns(corio_scope *s, int64_t ns);
/* An absolute deadline on the loop's clock (corio_now_ns). */
int corio_timeout_at_begin(corio_scope *s, int64_t deadline_ns);
int corio_shield_begin(corio_scope *s);
int corio_scope_end(corio_scope *s);

/* Move a running timeout scope's deadline (asyncio's Timeout.reschedule),
 * later or earlier; CORIO_NO_DEADLINE disarms it. Any task of the loop may
 * call it. 0, -EINVAL (NULL, not a running timeout scope), -EALREADY (it has
 * already expired: too late), -EXDEV (another thread's loop), -EPERM (no
 * loop here), -ENOMEM (the old deadline stays; should even that fail, the
 * scope expires rather than never). */
int corio_scope_reschedule(corio_scope *s, int64_t deadline_ns);
/* The deadline (CORIO_NO_DEADLINE if none), or -EINVAL. */
int64_t corio_scope_deadline(const corio_scope *s);
/* 1 if the scope has expired (it cancels what runs in it), 0 if not, -EINVAL.
 * Expiry happens when the loop fires its timer, or at once for a deadline
 * already reached at begin or reschedule: a task running past its deadline
 * without suspending still sees 0. */
int corio_scope_expired(const corio_scope *s);

/* asyncio.wait_for: corio_wait_for(x, seconds, &result)
 *  - x a coroutine object: run it inline in a timeout scope of `seconds`
 *    (the scoped form of corio_timeout_begin/corio_scope_end);
 *  - x a task: await it for at most `seconds`; on timeout cancel it, wait
 *    until it has ended, and report -ETIMEDOUT (if it completed anyway before
 *    the cancel landed, its own status and result are reported).
 * Returns the status of x, or -ETIMEDOUT, or -ECANCELED (the caller was
 * cancelled; a task x is then cancelled and reaped too), or the errors of
 * corio_await. A negative seconds value means no timeout. */
int corio_wait_for_coro(corio_coro_t coro, double seconds, void **result);
int corio_wait_for_task(corio_task *t, double seconds, void **result);
#define corio_wait_for(x, seconds, result)                                               \
    _Generic((x), corio_task *: corio_wait_for_task, corio_coro_t: corio_wait_for_coro)( \
        (x), (seconds), (result))

/* ---- Task groups (asyncio.TaskGroup, Trio's nursery) --------------------------------
 *     corio_taskgroup g;
 *     corio_taskgroup_begin(&g);
 *     corio_taskgroup_spawn(&g, corio_coro(fetch, a), NULL);
 *     corio_taskgroup_spawn(&g, corio_coro(fetch, b), NULL);
 *     int rc = corio_taskgroup_end(&g, 0);  // waits for both
 *
 * The body between begin and end is a scope of the calling task. end waits
 * until every task spawned into the group has ended. The first child to fail
 * (end with a negative status other than -ECANCELED) cancels the other
 * children and the body (its suspensions return -ECANCELED until end); end
 * then returns that first error, and corio_taskgroup_failed tells how many
 * children failed. Pass end the body's own status: a body error (other than
 * the -ECANCELED the group itself caused) also cancels the children and is
 * reported if it came first. If the calling task is cancelled (or an outer
 * scope expires) while it waits in end, the children are cancelled, end
 * still waits for all of them, and returns -ECANCELED. A child cancelled on
 * its own (corio_cancel on it) does not count as a failure.
 *
 * spawn: 0 (and *out, if non-NULL, a handle you must release), -EINVAL (NULL
 * group or fn, group not running), -ECANCELED (the group is already
 * cancelling: nothing is spawned), -EXDEV (another thread's group), -EPERM,
 * -ENOMEM. When a child fails and an outer cancel also arrives, end reports
 * the child's error. Any task of the loop may
 * spawn into a running group. end: as above, or -EINVAL (NULL, not begun,
 * not the innermost scope of the calling task). */
typedef struct corio_taskgroup {
    _Alignas(8) unsigned char opaque_[192];
} corio_taskgroup;

int corio_taskgroup_begin(corio_taskgroup *g);
int corio_taskgroup_spawn(corio_taskgroup *g, corio_coro_t coro, corio_task **out);
int corio_taskgroup_end(corio_taskgroup *g, int body_status);
/* How many children failed so far (not counting cancelled ones), or -EINVAL. */
int corio_taskgroup_failed(const corio_taskgroup *g);

/* ---- Waiting on several tasks ------------------------------------------------------
 * asyncio.gather: wait until all n tasks have ended. results[i] (if results
 * is non-NULL) gets task i's result. Returns 0 if all succeeded, else the
 * status of the first task to fail (in the order they ended). If the caller is
 * cancelled while it waits, it cancels the tasks, waits for them to end and
 * returns -ECANCELED. -EINVAL for NULL tasks with n > 0 or a released handle,
 * -EDEADLK if the caller is among them, -EXDEV for another loop's task, -EPERM
 * outside a task, -ENOMEM. */
int corio_gather_tasks(corio_task *const *tasks, size_t n, void **results);

/* The same over coroutine objects: each runs as a task of its own,
 * concurrently; the tasks are released before it returns. */
int corio_gather(const corio_coro_t *coros, size_t n, void **results);

/* gather(..., return_exceptions=True): as above, but statuses[i] gets task
 * i's status and a failed task does not make the call fail: it returns 0
 * once all have ended (or -ECANCELED, -EINVAL, -ENOMEM, -EPERM for the call
 * itself). statuses must not be NULL when n > 0. */
int corio_gather_tasks_status(corio_task *const *tasks, size_t n, void **results,
                              int *statuses);
int corio_gather_status(const corio_coro_t *coros, size_t n, void **results, int *statuses);

/* asyncio.wait: wait until `mode` is met or `timeout` seconds pass (negative:
 * no timeout), then return how many of the tasks have ended (corio_task_done
 * tells which). Nothing is cancelled; on timeout it simply returns the count.
 *   CORIO_FIRST_COMPLETED  any one has ended
 *   CORIO_FIRST_EXCEPTION  any one has failed (ended with a negative status,
 *                          -ECANCELED included), or all have ended
 *   CORIO_ALL_COMPLETED    all have ended
 * -ECANCELED if the caller is cancelled, -EINVAL (bad mode, NULL tasks, n
 * == 0, released handle, NaN timeout), -EDEADLK (the caller is among them),
 * -EXDEV, -EPERM, -ENOMEM. */
enum corio_wait_mode { CORIO_FIRST_COMPLETED = 1, CORIO_FIRST_EXCEPTION, CORIO_ALL_COMPLETED };
int corio_wait(corio_task *const *tasks, size_t n, int mode, double timeout);

/* asyncio.as_completed: the tasks one by one as they end.
 *     corio_as_completed ac;
 *     corio_as_completed_begin(&ac, tasks, n, 10.0);
 *     corio_task *t;
 *     while ((rc = corio_as_completed_next(&ac, &t)) > 0) use(t);
 *     corio_as_completed_end(&ac);
 * next: 1 and *t the next task to end (ones already ended come first, in
 * array order), 0 when all n have been handed out, -ETIMEDOUT when `timeout`
 * seconds (counted from begin; negative: none) have passed first, -ECANCELED
 * if the caller is cancelled. The tasks stay yours (nothing is cancelled or
 * released). begin: 0, -EINVAL, -EXDEV, -EPERM, -ENOMEM. end: releases what
 * begin took (always call it). */
typedef struct corio_as_completed {
    void *impl_;
} corio_as_completed;

int corio_as_completed_begin(corio_as_completed *ac, corio_task *const *tasks, size_t n,
                             double timeout);
int corio_as_completed_next(corio_as_completed *ac, corio_task **t);
int corio_as_completed_end(corio_as_completed *ac);

/* ---- Done callbacks (asyncio's add_done_callback) -----------------------------------
 * cb(task, arg) runs once the task has ended, soon after (at the start of the
 * loop's next turn, in the order added), on the loop's thread and outside any
 * task: it must not suspend (suspending calls return -EPERM there), but may
 * cancel, create tasks, add callbacks. Added to an already ended task, it
 * runs at the next turn. The task object stays valid until its callbacks ran.
 * add: 0, -EINVAL (NULL, released handle), -EXDEV, -EPERM, -ENOMEM,
 * -ENOSPC (255 callbacks of this task not yet run). remove: how many
 * registrations of (cb, arg) were removed (0 once they have been scheduled). */
typedef void corio_done_fn(corio_task *t, void *arg);
int corio_task_add_done_callback(corio_task *t, corio_done_fn *cb, void *arg);
int corio_task_remove_done_callback(corio_task *t, corio_done_fn *cb, void *arg);

/* ---- Synchronization (asyncio.Event, Lock, Semaphore, Condition, Barrier) -----------
 * Objects live in your storage: init before use, destroy after (destroy
 * returns -EBUSY and changes nothing while a task waits on it, or a lock is
 * held). An object belongs to the loop of the task that initialized it (or of
 * the thread, outside a task); using it from another thread's loop returns
 * -EXDEV. Every wait suspends only the calling task, is cancellable and obeys
 * timeout scopes (-ECANCELED), and waiters are served first come, first
 * served. A cancelled waiter leaves the object as if it had never waited: a
 * permit, a lock or a notification it had been handed goes to the next
 * waiter. NULL objects give -EINVAL; waits outside a task give -EPERM, even
 * those that would not have to wait this time.
 *
 * Lock: FIFO handoff. release gives the lock straight to the first waiter,
 * so a task that releases and re-acquires in a loop queues behind the
 * others and cannot starve them. Any task may release it (as in asyncio).
 * release of an unlocked lock: -EPERM. try_acquire: 0 or -EAGAIN.
 *
 * Semaphore: `value` permits (up to INT_MAX). release on a bounded semaphore
 * that would exceed its initial value returns -EOVERFLOW.
 *
 * Condition: wait releases the lock (which the caller must hold: -EPERM
 * otherwise), waits for a notify, and re-acquires the lock before it returns,
 * also when cancelled (then it returns -ECANCELED, lock held; a notification
 * it had been handed goes to the next waiter). wait_for loops until pred(arg)
 * is true. notify wakes up to n waiters (returns how many), notify_all all;
 * both need the lock held (-EPERM).
 *
 * Barrier (asyncio.Barrier): wait returns this task's arrival index (0 ..
 * parties-1) once `parties` tasks have arrived; the barrier then starts over.
 * A task cancelled while the barrier fills leaves it (the count drops, so, as
 * in asyncio, a later arrival may get an index already handed out). After
 * abort, waiters and later callers get -EPIPE until reset; reset also sends
 * -EPIPE to the tasks waiting at that moment and empties the barrier. */
typedef struct corio_event { _Alignas(8) unsigned char opaque_[40]; } corio_event;
typedef struct corio_lock { _Alignas(8) unsigned char opaque_[40]; } corio_lock;
typedef struct corio_sem { _Alignas(8) unsigned char opaque_[48]; } corio_sem;
typedef struct corio_cond { _Alignas(8) unsigned char opaque_[88]; } corio_cond;
typedef struct corio_barrier { _Alignas(8) unsigned char opaque_[56]; } corio_barrier;

int corio_event_init(corio_event *e);
int corio_event_destroy(corio_event *e);
int corio_event_set(corio_event *e);        /* wakes every waiter; 0 */
int corio_event_clear(corio_event *e);
int corio_event_is_set(const corio_event *e); /* 1, 0, -EINVAL */
int corio_event_wait(corio_event *e);       /* 0 once set, -ECANCELED */

int corio_lock_init(corio_lock *l);
int corio_lock_destroy(corio_lock *l);
int corio_lock_acquire(corio_lock *l);
int corio_lock_try_acquire(corio_lock *l);
int corio_lock_release(corio_lock *l);
int corio_lock_locked(const corio_lock *l); /* 1, 0, -EINVAL */

int corio_sem_init(corio_sem *s, int value);         /* -EINVAL if value < 0 */
int corio_sem_init_bounded(corio_sem *s, int value); /* BoundedSemaphore */
int corio_sem_destroy(corio_sem *s);
int corio_sem_acquire(corio_sem *s);
int corio_sem_try_acquire(corio_sem *s);
int corio_sem_release(corio_sem *s);
int corio_sem_value(const corio_sem *s);             /* permits free now, or -EINVAL */

/* lock: the lock it goes with, or NULL for one of its own (corio_cond_lock). */
int corio_cond_init(corio_cond *c, corio_lock *lock);
int corio_cond_destroy(corio_cond *c);
corio_lock *corio_cond_lock(corio_cond *c);
int corio_cond_wait(corio_cond *c);
int corio_cond_wait_for(corio_cond *c, int (*pred)(void *arg), void *arg);
int corio_cond_notify(corio_cond *c, int n);
int corio_cond_notify_all(corio_cond *c);

int corio_barrier_init(corio_barrier *b, int parties); /* -EINVAL if parties < 1 */
int corio_barrier_destroy(corio_barrier *b);
int corio_barrier_wait(corio_barrier *b);  /* index >= 0, -EPIPE broken, -ECANCELED */
int corio_barrier_abort(corio_barrier *b);
int corio_barrier_reset(corio_barrier *b);
int corio_barrier_n_waiting(const corio_barrier *b);
int corio_barrier_broken(const corio_barrier *b);

/* ---- Queues (asyncio.Queue, LifoQueue, PriorityQueue) --------------------------------
 * Items are pointers (void *), stored as given: the queue never copies or frees
 * what they point to. maxsize 0 means unbounded. A priority queue hands out
 * the smallest item by cmp (like heapq; cmp < 0 means a comes first), items
 * that compare equal in the order they were put.
 *
 * put suspends while the queue is full, get while it is empty (FIFO among
 * waiters); try_put / try_get return -EAGAIN instead, and are the ones to
 * use outside a task (put, get and join give -EPERM there). An item is never lost
 * or delivered twice: a getter cancelled after an item was handed to it gives
 * the item back to the front of the queue (to the next getter, if one
 * waits); a putter cancelled after space was made for it gives the space to
 * the next putter, and its item was not put. (Two items given back go to the
 * front one after the other, so the second comes out first; a given-back
 * item may make the queue hold one more than maxsize for a while. After an
 * immediate shutdown a given-back item is dropped and counted done.)
 *
 * task_done / join: as asyncio; task_done more often than items were put:
 * -EOVERFLOW. shutdown (asyncio 3.13): put fails with -ESHUTDOWN at once,
 * waiting putters too; get drains what is left, then fails with -ESHUTDOWN
 * (waiting getters at once). immediate: the items still queued are dropped
 * (and counted as done for join) and get fails at once.
 * init: 0, -EINVAL (bad kind, PRIORITY without cmp), -ENOMEM. destroy: the
 * items left are simply forgotten; -EBUSY while a task waits on it. */
enum corio_queue_kind { CORIO_QUEUE_FIFO = 1, CORIO_QUEUE_LIFO, CORIO_QUEUE_PRIORITY };
typedef int corio_cmp_fn(const void *a, const void *b);
typedef struct corio_queue { _Alignas(8) unsigned char opaque_[152]; } corio_queue;

int corio_queue_init(corio_queue *q, int kind, size_t maxsize, corio_cmp_fn *cmp);
int corio_queue_destroy(corio_queue *q);
int corio_queue_put(corio_queue *q, void *item);
int corio_queue_get(corio_queue *q, void **item);
int corio_queue_try_put(corio_queue *q, void *item);
int corio_queue_try_get(corio_queue *q, void **item);
long corio_queue_size(const corio_queue *q);  /* items queued now, or -EINVAL */
int corio_queue_empty(const corio_queue *q);
int corio_queue_full(const corio_queue *q);
int corio_queue_task_done(corio_queue *q);
int corio_queue_join(corio_queue *q);
int corio_queue_shutdown(corio_queue *q, int immediate);

/* ---- Select (Go's select, libdill's choose) -------------------------------------------
 * Wait on several queue operations at once, gets and puts on any queues,
 * with an optional timeout (seconds; negative: none; 0: poll). Exactly one
 * operation completes; the others have no effect. If some can complete at
 * once, the first of them in array order does (libdill's rule: put the one
 * you favour first). Returns the index of the one that completed, with its
 * status in ops[i].result (0, or -ESHUTDOWN for a queue shut down) and, for
 * a get, the item in *ops[i].item_out; or -ETIMEDOUT, -ECANCELED, -EINVAL
 * (n == 0, bad op, NULL queue), -EXDEV, -EPERM (outside a task, unless
 * timeout is 0), -ENOMEM. */
enum corio_select_kind { CORIO_SELECT_GET = 1, CORIO_SELECT_PUT };
typedef struct corio_select_op {
    int kind;
    corio_queue *queue;
    void *item;       /* PUT: what to put */
    void **item_out;  /* GET: where the item goes (may be NULL) */
    int result;       /* set for the op that completed */
} corio_select_op;

int corio_select(corio_select_op *ops, size_t n, double timeout);

/* ---- The clock ------------------------------------------------------------------
 * The loop's time in nanoseconds (monotonic, or virtual), 0 outside a loop. */
int64_t corio_now_ns(void);
double corio_now(void);

/* ---- Explicit loops (what corio_run is made of) ------------------------------------
 * new: make a loop bound to this thread (-EBUSY if it has one).
 * run: run `main` as a task until it ends (other tasks may stay pending and go
 *      on at the next run); returns main's status. -EINVAL on a closed loop,
 *      -EBUSY when called from inside a task.
 * close: cancel and reap the remaining tasks, release every resource; the loop
 *      accepts nothing after it (-EINVAL). 0, -EBUSY from inside a task, -EXDEV
 *      from another thread than the loop's.
 * free: close if needed, then release the loop object itself. 0, or the error
 *      of close (then nothing is freed). */
int corio_loop_new(corio_loop **out, const corio_loop_opts *opts);
int corio_loop_run(corio_loop *loop, corio_coro_t main, void **result);
int corio_loop_close(corio_loop *loop);
int corio_loop_free(corio_loop *loop);

#ifdef __cplusplus
}
#endif
#endif /* CORIO_H */
