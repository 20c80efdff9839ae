/* corio.h - asyncio for C: stackful coroutines, one event loop per thread.
 *
 * Read in order: coroutine objects, running a loop, tasks, awaiting, sleeping,
 * cancellation, scopes (timeouts, shields), task groups, waiting on several
 * tasks, done callbacks, synchronization, queues, select, the clock,
 * explicit loops, then I/O: fd operations, sockets, blocking calls on
 * worker threads (to_thread, getaddrinfo), streams.
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
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

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

/* Where the loop waits for I/O. DEFAULT: io_uring when the kernel allows it
 * (else epoll), unless CORIO_BACKEND=epoll|io_uring is set in the
 * environment. Naming IO_URING where the kernel refuses it (ENOSYS, EPERM,
 * seccomp, too old) makes loop creation fail with that errno; the
 * environment variable falls back to epoll instead. */
enum corio_backend_kind {
    CORIO_BACKEND_DEFAULT = 0,
    CORIO_BACKEND_EPOLL,
    CORIO_BACKEND_IO_URING,
};

typedef struct corio_loop_opts {
    size_t stack_size; /* default stack per task in bytes; 0 = CORIO_STACK_DEFAULT */
    int clock;         /* enum corio_clock_kind */
    int backend;       /* enum corio_backend_kind */
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
    int compact;       /* nonzero: run on the loop's shared stack (below); stack_size 0 */
} corio_task_opts;

/* Compact tasks: for very many tasks that mostly wait (timers, sleepers).
 * A compact task has no stack of its own: it runs on one stack the loop
 * shares among its compact tasks, of the loop's default size. When another
 * compact task needs that stack, the bytes the suspended one uses (a sleeper:
 * a few hundred) are copied out to the loop's memory, and copied back before it
 * resumes. A waiting compact task costs its 64-byte task, a small side block
 * and those bytes, instead of a stack page; each switch between two compact
 * tasks costs a copy out and a copy in, and goes through the scheduler.
 *
 * The rule that comes with it: nothing another task, the loop or the kernel
 * uses while the task is suspended may live on its stack (those addresses may
 * hold another task's frames by then). Locals used only by the task itself
 * are fine; a buffer, an object or a result slot you hand to someone else
 * must be on the heap (or in a static, or on a task with its own stack).
 * corio keeps the rule for its own records: in a compact task everything
 * works as anywhere (sleep, await, gather, wait, wait_for, select, queues, the
 * sync objects, to_thread, cancellation), except:
 *  - a corio_taskgroup on its own stack: begin returns -ENOTSUP (put it on
 *    the heap). A corio_scope on its stack works (corio moves the scope itself
 *    to the heap until it ends), but only the task itself may use it;
 *  - I/O that would wait returns -ENOTSUP, having done nothing (on epoll a
 *    socket or pipe call that completes at once works; io_uring always waits
 *    for its completion, and a regular file always goes to a worker thread,
 *    so those refuse every call). */

/* The full form: 0 and *out set, or -EINVAL (NULL out/fn, stack size out of
 * range, or compact with a stack size), -EPERM (no loop on this thread),
 * -ENOMEM. opts may be NULL. */
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

/* ---- I/O: fd operations ------------------------------------------------------------
 * Each call suspends only the calling task until the fd is ready or the
 * kernel completed the operation, and returns what the system call would
 * (a count, 0 at EOF, a new fd) or a negative errno. All are cancellable
 * and obey timeout scopes (-ECANCELED). An operation the kernel already
 * completed when the cancel arrives returns its result (no byte is lost);
 * the cancel then hits the task's next suspension. On io_uring a cancelled
 * operation is cancelled in the kernel, and the call returns only once the
 * kernel has let go of the buffer.
 *
 * fds: any fd works; corio makes it O_NONBLOCK the first time it sees it
 * (epoll). Close an fd that corio has seen with corio_close: it wakes the
 * tasks still waiting on it (-EBADF) and forgets its registration, which a
 * plain close(2) would leave stale when the number is reused.
 * Regular files go through io_uring, or on epoll through the worker pool.
 * Sockets: send/sendto/sendmsg always add MSG_NOSIGNAL, and write/writev on a
 * socket go out as send/sendmsg with it (a reset peer gives -EPIPE or
 * -ECONNRESET, never SIGPIPE); accept returns a non-blocking close-on-exec fd.
 * Fairness: on epoll an operation whose fd is ready completes without
 * suspending; after 128 of those in a row the task yields once first, so a
 * task streaming through ready sockets cannot starve the others.
 * wait_readable/writable may return spuriously: the next read gives -EAGAIN
 * then; wait again. Outside a task every call returns -EPERM. */
const char *corio_backend(void); /* "io_uring" or "epoll" for this thread's loop; NULL outside one */

int corio_wait_readable(int fd);
int corio_wait_writable(int fd);
ssize_t corio_read(int fd, void *buf, size_t len);
ssize_t corio_write(int fd, const void *buf, size_t len);
ssize_t corio_readv(int fd, const struct iovec *iov, int iovcnt);
ssize_t corio_writev(int fd, const struct iovec *iov, int iovcnt);
ssize_t corio_pread(int fd, void *buf, size_t len, off_t offset);
ssize_t corio_pwrite(int fd, const void *buf, size_t len, off_t offset);
ssize_t corio_recv(int fd, void *buf, size_t len, int flags);
ssize_t corio_send(int fd, const void *buf, size_t len, int flags);
ssize_t corio_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                       socklen_t *addrlen);
ssize_t corio_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr,
                     socklen_t addrlen);
ssize_t corio_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t corio_sendmsg(int fd, const struct msghdr *msg, int flags);
int corio_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);
/* connect: 0 once connected; -ECONNREFUSED, -ENETUNREACH, -ETIMEDOUT... */
int corio_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
int corio_close(int fd);

/* ---- Sockets ------------------------------------------------------------------------
 * Every socket made here is non-blocking and close-on-exec. host: an IPv4 or
 * IPv6 literal or a name (resolved with corio_getaddrinfo, on the worker
 * pool; a literal never leaves the thread); NULL or "" listens on every
 * address (IPv4 and IPv6). port 0 lets the kernel pick (corio_socket_port
 * tells which). Listening sockets get SO_REUSEADDR, and SO_REUSEPORT with
 * CORIO_REUSEPORT. connect tries each resolved address in turn and returns
 * the last error when none answers. Return the fd or a negative errno. */
enum corio_sock_flag { CORIO_REUSEPORT = 1 };
int corio_socket(int domain, int type, int protocol);
int corio_tcp_listen(const char *host, int port, int backlog, int flags);
int corio_tcp_connect(const char *host, int port);
int corio_udp_bind(const char *host, int port, int flags);
int corio_udp_connect(const char *host, int port);
/* Unix sockets: type SOCK_STREAM or SOCK_DGRAM; listen unlinks a stale
 * socket file first (not any other kind of file: -EADDRINUSE). A datagram
 * "listen" only binds. */
int corio_unix_listen(const char *path, int type, int backlog);
int corio_unix_connect(const char *path, int type);
int corio_socket_port(int fd);            /* the local port, or a negative errno */
int corio_set_nodelay(int fd, int on);    /* TCP_NODELAY */

/* ---- Blocking calls on worker threads (asyncio.to_thread, loop.getaddrinfo) -----------
 * fn(arg) runs on a bounded pool of worker threads shared by every loop of
 * the process (CORIO_THREADPOOL_SIZE threads, default 4, at most 256; made
 * on first use); the calling task suspends until it returns, then resumes on
 * its own loop with *result = fn's return value. Jobs start in FIFO order.
 * A cancelled (or timed-out) caller stops waiting at once with -ECANCELED;
 * the worker still finishes fn on its own, and then `discard` (if not NULL)
 * gets the result nobody will read, so nothing leaks. A loop's close waits
 * for the jobs its tasks started. Returns 0, -ECANCELED, -EINVAL (NULL fn),
 * -EPERM (outside a task), -ENOMEM, -EAGAIN (no thread could be started). */
typedef void *corio_blocking_fn(void *arg);
int corio_to_thread(corio_blocking_fn *fn, void *arg, void **result);
int corio_to_thread_discard(corio_blocking_fn *fn, void *arg, void **result,
                            void (*discard)(void *result, void *arg));

/* getaddrinfo(3) on the pool. Returns 0 with *res to free with freeaddrinfo,
 * or a negative errno: -ENOENT (no such name: EAI_NONAME, EAI_NODATA),
 * -EAGAIN (EAI_AGAIN: try later), -EINVAL (bad arguments, EAI_SERVICE,
 * EAI_FAMILY, EAI_SOCKTYPE, EAI_BADFLAGS), -ENOMEM, the errno of
 * EAI_SYSTEM, -EIO otherwise; -ECANCELED (the worker frees what it found). */
struct addrinfo;
int corio_getaddrinfo(const char *host, const char *service, const struct addrinfo *hints,
                      struct addrinfo **res);

/* ---- Streams (asyncio.open_connection, start_server) ----------------------------------
 * A corio_stream is asyncio's StreamReader and StreamWriter in one object, for
 * one connected stream socket (TCP or Unix). It owns its fd. One task at a
 * time may read (a second concurrent reader gets -EBUSY, as asyncio raises
 * RuntimeError); any task of the stream's loop may write and drain. Calls that
 * may suspend (the reads, drain, wait_closed) need a task (-EPERM outside
 * one), are cancellable and obey timeout scopes (-ECANCELED); none of them
 * loses a byte when interrupted: what was received stays readable.
 *
 *     corio_stream *s;
 *     int rc = corio_open_connection("example.org", 80, &s, NULL);
 *     corio_stream_write(s, req, len);
 *     rc = corio_stream_drain(s);                     // backpressure
 *     char line[256];
 *     ssize_t n = corio_stream_readline(s, line, sizeof line);
 *     corio_stream_close(s);
 *     rc = corio_stream_wait_closed(s);               // flushes, closes, frees
 *
 * Memory: nothing is kept for an idle connection but the object itself
 * (160 bytes). The read buffer is allocated while data waits in it
 * (reads go to the socket CORIO_STREAM_CHUNK bytes at a time) and freed, or
 * shrunk to the leftovers, before the stream waits for more; the write buffer
 * holds only what the socket did not take at once. Neither call keeps the
 * kernel pointing into a buffer while it waits (it waits for readiness, then
 * sends or receives without blocking), so buffers move and shrink freely.
 *
 * Reading. The limit (opts.limit) bounds a line: readline and readuntil need
 * the separator within the first `limit` bytes (the separator included), so
 * the read buffer never grows past limit + CORIO_STREAM_CHUNK however long a
 * line a peer sends. Results never carry a terminating NUL.
 *   read:        up to n bytes: what is buffered, else what one receive gets;
 *                0 at EOF (asyncio read(n)). n >= CORIO_STREAM_CHUNK with an
 *                empty buffer receives straight into buf.
 *   readexactly: n, or at EOF 0 if nothing at all was left, -ENODATA if fewer
 *                than n bytes came (asyncio IncompleteReadError). It consumes
 *                all or nothing: on -ENODATA, -ECANCELED or an error the bytes
 *                it had taken stay buffered, for read() to return (their
 *                content in buf is not to be relied on). -ENOMEM if those
 *                bytes could not be kept (then they are lost).
 *   readline:    through '\n' (included); at EOF, a last line without '\n' is
 *                returned as it is (as asyncio's readline), 0 when nothing is
 *                left.
 *   readuntil:   through the first occurrence of sep (included); 0 at EOF with
 *                nothing left; -ENODATA at EOF with a partial record, which
 *                stays readable by read() (asyncio raises IncompleteReadError;
 *                here nothing is consumed).
 *   readline and readuntil fail with -EMSGSIZE when the separator is not
 *   within `limit` bytes (asyncio LimitOverrunError) and with -ENOBUFS when
 *   the record (or a final partial line) would not fit in cap bytes; either
 *   way the data stays buffered, so a caller may read() it away (or call
 *   again with a larger buffer after -ENOBUFS). Unlike asyncio's readline,
 *   which discards the buffered data on overrun, nothing is dropped: a peer
 *   sending an endless line makes every readline return -EMSGSIZE until the
 *   data is read or the stream closed. -EINVAL for seplen 0 or seplen > limit.
 *   A receive error (-ECONNRESET...) is reported once the buffered data cannot
 *   answer a call, and sticks. at_eof: 1 once EOF has been seen and nothing
 *   is buffered (asyncio at_eof), 0 otherwise.
 *
 * Writing. write never suspends (asyncio write): with nothing buffered it
 * sends at once, without blocking, and buffers what the socket did not
 * take; otherwise it appends. Buffered data goes out in the background: a
 * small flusher task is started while data waits (the job of asyncio's
 * transport) and ends when the buffer is empty, so a stream never holds data
 * unsent while its loop runs, even if nobody drains. drain is the flow
 * control: with more than high_water bytes buffered it suspends until at most
 * low_water are (sending itself meanwhile), else it returns at once.
 * Defaults: high_water 64 KiB, low_water high_water / 4 (asyncio's);
 * low_water > high_water is -EINVAL. A send error sticks: the buffered data
 * is dropped and that error (-EPIPE, -ECONNRESET, ...) is what write, drain,
 * write_eof and wait_closed return from then on. write returns 0 or that
 * error, -EPIPE after write_eof or close, -ENOMEM (if part of the data had
 * already gone out, the error sticks too: the stream would be corrupt). No
 * call raises SIGPIPE. write_eof (asyncio write_eof) does not suspend either:
 * it shuts the sending side (SHUT_WR) once the buffer is empty, at once or
 * from the flusher; the peer then reads EOF. Calling it again does nothing.
 *
 * Closing. close (asyncio close) stops both directions for the caller: reads
 * then return what is buffered and then behave as at EOF; writes fail with
 * -EPIPE. It does not suspend and frees nothing. wait_closed (which closes
 * first if close was not called) waits until the flusher has sent what is
 * buffered, then closes the fd and frees the stream: do not use it after.
 * Waiting for a peer that does not read is bounded only by the caller's
 * timeout scope or cancel: then the unsent data is dropped, the fd closed,
 * the stream freed all the same, and it returns -ECANCELED. Otherwise it
 * returns 0, or the sticky send error if data could not be delivered. It
 * returns -EBUSY, and does nothing but close, while another task is inside a
 * read or drain on the stream (cancel that task first).
 *
 * open_connection: TCP to host:port (a name is resolved on the worker pool;
 * each address is tried in turn), TCP_NODELAY on, as asyncio does.
 * open_unix_connection: a Unix stream socket. stream_from_fd: takes
 * ownership of a connected stream socket (-ENOTSOCK for anything else,
 * -EINVAL for a socket that is not SOCK_STREAM; the fd stays yours on
 * failure). All three: 0 and *out, or a negative errno (and nothing to free).
 * opts may be NULL (defaults). */
typedef struct corio_stream corio_stream;
typedef struct corio_stream_opts {
    size_t limit;      /* readline/readuntil max record incl. separator; 0 = 64 KiB */
    size_t high_water; /* drain suspends while more than this is buffered; 0 = 64 KiB */
    size_t low_water;  /* ...until it falls to this; 0 = high_water / 4 */
} corio_stream_opts;

#define CORIO_STREAM_LIMIT_DEFAULT ((size_t)64 * 1024)
#define CORIO_STREAM_CHUNK ((size_t)4096) /* bytes asked of the socket per receive */

int corio_open_connection(const char *host, int port, corio_stream **out,
                          const corio_stream_opts *opts);
int corio_open_unix_connection(const char *path, corio_stream **out,
                               const corio_stream_opts *opts);
int corio_stream_from_fd(int fd, corio_stream **out, const corio_stream_opts *opts);
int corio_stream_fd(const corio_stream *s); /* the socket, or -EINVAL */

ssize_t corio_stream_read(corio_stream *s, void *buf, size_t n);
ssize_t corio_stream_readexactly(corio_stream *s, void *buf, size_t n);
ssize_t corio_stream_readline(corio_stream *s, void *buf, size_t cap);
ssize_t corio_stream_readuntil(corio_stream *s, const void *sep, size_t seplen, void *buf,
                               size_t cap);
int corio_stream_at_eof(const corio_stream *s);
size_t corio_stream_read_buffered(const corio_stream *s);  /* bytes received, not yet read */

int corio_stream_write(corio_stream *s, const void *buf, size_t n);
int corio_stream_drain(corio_stream *s);
int corio_stream_write_eof(corio_stream *s);
size_t corio_stream_write_buffered(const corio_stream *s); /* asyncio get_write_buffer_size */
int corio_stream_close(corio_stream *s);
int corio_stream_is_closing(const corio_stream *s);       /* 1, 0, -EINVAL */
int corio_stream_wait_closed(corio_stream *s);

/* ---- Stream servers (asyncio.start_server, Server) -------------------------------------
 * start_server listens on host:port (as corio_tcp_listen: NULL or "" for
 * every address, port 0 for one the kernel picks: corio_server_port) and
 * serves at once: an accept task runs `fn(stream, arg)` as a task of its
 * own for each connection (stack opts.stack_size, 0 = the loop's default),
 * with TCP_NODELAY on. The handler returns 0 or a negative errno; a failure
 * (a negative return other than -ECANCELED, or corio_fail inside it) is
 * reported on stderr and the server goes on. When the handler returns, the
 * server closes the stream (wait_closed: what is buffered is still sent) if
 * the handler did not; the stream belongs to the handler's task: do not
 * hand it to a task that outlives the handler.
 *
 * Accept errors never stop the server. Out of fds or memory (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM, or anything unexpected) backs off, 10 ms doubling to 1 s
 * and reset by the next success, with one line on stderr per episode: the
 * waiting clients are served once resources come back. ECONNABORTED, EINTR
 * and the network errors accept(2) passes on are simply retried (64 in a row
 * count as an episode, so nothing can make the loop spin).
 *
 * close (asyncio Server.close): stop accepting; the listening fd is closed
 * at once (a Unix server's socket file is removed if it is still ours).
 * Connection tasks go on. close_clients (asyncio 3.13 close_clients and
 * abort_clients): cancel every connection task (each stream is then closed,
 * its unsent data dropped). wait_closed: wait until close has been called and
 * every connection task has ended, then free the server (call it once, do
 * not use the server after). If the caller is cancelled or its timeout scope
 * expires meanwhile, it closes the server, cancels the connection tasks,
 * waits for them to end, frees the server and returns -ECANCELED; so
 *     corio_server_close(srv); corio_timeout_begin(&sc, 5.0);
 *     corio_server_wait_closed(srv); corio_scope_end(&sc);
 * is a graceful shutdown bounded at 5 s. serve_forever (asyncio
 * serve_forever) suspends until the server is closed (0) or the caller is
 * cancelled: then it closes the server and returns -ECANCELED; wait_closed
 * must still be called to free it.
 * start: 0 and *out, or -EINVAL (NULL out or fn, bad flags or stack size),
 * the errors of corio_tcp_listen / corio_unix_listen, -EPERM (no loop),
 * -ENOMEM. */
typedef int corio_stream_handler(corio_stream *s, void *arg);
typedef struct corio_server corio_server;
typedef struct corio_server_opts {
    int backlog;             /* 0 = SOMAXCONN */
    int flags;               /* CORIO_REUSEPORT (TCP) */
    size_t stack_size;       /* per connection task; 0 = the loop's default */
    corio_stream_opts stream;
} corio_server_opts;

int corio_start_server(corio_server **out, const char *host, int port, corio_stream_handler *fn,
                       void *arg, const corio_server_opts *opts);
int corio_start_unix_server(corio_server **out, const char *path, corio_stream_handler *fn,
                            void *arg, const corio_server_opts *opts);
int corio_server_port(const corio_server *srv);  /* the TCP port, -EAFNOSUPPORT (Unix), -EINVAL */
long corio_server_connections(const corio_server *srv); /* connection tasks alive, or -EINVAL */
int corio_server_close(corio_server *srv);        /* 0 (again: 0), -EINVAL */
int corio_server_close_clients(corio_server *srv); /* how many tasks were cancelled, -EINVAL */
int corio_server_wait_closed(corio_server *srv);  /* 0, -ECANCELED, -EPERM, -EINVAL */
int corio_serve_forever(corio_server *srv);       /* 0, -ECANCELED, -EPERM, -EINVAL */

#ifdef __cplusplus
}
#endif
#endif /* CORIO_H */
