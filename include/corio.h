/* corio.h - asyncio for C: stackful coroutines, one event loop per thread.
 *
 * Read in order: coroutine objects, running a loop, tasks, awaiting, sleeping,
 * cancellation, gathering, the clock, explicit loops.
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
 * one return -ECANCELED until it ends. A task cancelled before it first ran
 * never runs and ends with -ECANCELED. The task ends with what its function
 * reports, so propagate: `if (rc < 0) return corio_fail(rc);`.
 * Returns 1 if the request was made, 0 if the task had already ended or was
 * already cancelled, -EINVAL for NULL, -EXDEV for a task of another loop. */
int corio_cancel(corio_task *t);

/* ---- Gathering --------------------------------------------------------------------
 * asyncio.gather: wait until all n tasks have ended. results[i] (if results
 * is non-NULL) gets task i's result. Returns 0 if all succeeded, else the
 * status of the first task to fail (in the order they ended). If the caller is
 * cancelled while it waits, it cancels the tasks, waits for them to end and
 * returns -ECANCELED. -EINVAL for NULL tasks with n > 0, -EPERM outside a task. */
int corio_gather_tasks(corio_task *const *tasks, size_t n, void **results);

/* The same over coroutine objects: each runs as a task of its own,
 * concurrently; the tasks are released before it returns. */
int corio_gather(const corio_coro_t *coros, size_t n, void **results);

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
