/* task.c - tasks: creation, the switch, the entry trampoline, the suspension
 * primitive, and the calls built on it (await, sleep, yield, cancel, gather).
 *
 * A task gets a stack only when it first runs, and gives it back when it
 * ends. When a task ends and the next one to run has never run, the next one
 * simply starts on the same stack, in the same trampoline: no switch, no
 * stack traffic (this is what makes spawn-and-await cheap). */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define CORIO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORIO_ASAN 1
#endif
#endif
#ifdef CORIO_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#define container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* The running task and its loop; NULL outside a task. */
static inline corio_task *self_task(corio_loop **lp)
{
    corio_loop *l = corio__tls_loop;
    *lp = l;
    return l ? l->current : NULL;
}

/* ---- allocation: 64-byte tasks in 64 KiB slabs whose header names the loop ---- */

static __attribute__((noinline)) corio_task *task_alloc_carve(corio_loop *l)
{
    if (l->carve == l->carve_end) {
        corio__task_slab *s = aligned_alloc(CORIO__TASK_SLAB_BYTES, CORIO__TASK_SLAB_BYTES);
        if (!s)
            return NULL;
        s->loop = l;
        s->next = l->slabs;
        l->slabs = s;
        l->carve = s->tasks;
        l->carve_end = (corio_task *)(void *)((char *)s + CORIO__TASK_SLAB_BYTES);
    }
    return l->carve++;
}

static inline corio_task *task_alloc(corio_loop *l)
{
    corio_task *t = l->free_tasks;
    if (__builtin_expect(t != NULL, 1)) {
        l->free_tasks = t->next;
        return t;
    }
    return task_alloc_carve(l);
}

static void task_free(corio_loop *l, corio_task *t)
{
    t->state = CORIO__T_FREE;
    t->next = l->free_tasks;
    l->free_tasks = t;
}

/* Visit every task that has not ended (for close and the deadlock report). */
void corio__for_each_live(corio_loop *l, void (*fn)(corio_loop *, corio_task *))
{
    for (corio__task_slab *s = l->slabs; s; s = s->next) {
        corio_task *end = s == l->slabs
                              ? l->carve
                              : (corio_task *)(void *)((char *)s + CORIO__TASK_SLAB_BYTES);
        for (corio_task *t = s->tasks; t < end; t++)
            if (t->state != CORIO__T_FREE && t->state != CORIO__T_DONE)
                fn(l, t);
    }
}

void corio__task_free_all(corio_loop *l)
{
    corio__task_slab *s = l->slabs;
    while (s) {
        corio__task_slab *next = s->next;
        free(s);
        s = next;
    }
    l->slabs = NULL;
    l->free_tasks = NULL;
    l->carve = l->carve_end = NULL;
}

void corio__task_free_done(corio_loop *l, corio_task *t)
{
    task_free(l, t);
}

static inline __attribute__((always_inline)) int task_new(corio_loop *l, corio_task **out,
                                                           corio_coro_t coro, uint16_t cls)
{
    corio_task *t = task_alloc(l);
    if (!t)
        return -ENOMEM;
    *t = (corio_task){.fn = coro.fn, .value = coro.arg, .state = CORIO__T_NEW, .stack_class = cls};
    l->live++;
    corio__ready_push(l, t);
    *out = t;
    return 0;
}

int corio__task_new(corio_loop *l, corio_task **out, corio_coro_t coro, uint16_t cls)
{
    return task_new(l, out, coro, cls);
}

/* ---- switching ---------------------------------------------------------------------- */

static void stack_bounds(corio_loop *l, corio_task *t, const void **lo, size_t *size)
{
    if (!t) {
        *lo = l->sched_stack_lo;
        *size = l->sched_stack_size;
        return;
    }
    corio__stack_pool *p = &l->stacks[t->stack_class];
    *lo = corio__stack_lo(p, t->stack);
    *size = p->size;
}

/* The overflow check made on every switch away from a task: the canary
 * below its stack is intact and its stack pointer is inside the stack. */
static inline void stack_check(corio_loop *l, corio_task *t)
{
    corio__stack_pool *p = &l->stacks[t->stack_class];
    uint64_t *canary = corio__stack_canary(p, t->stack);
    char *sp = __builtin_frame_address(0);
    if (*canary != corio__stack_canary_value(canary) || sp < corio__stack_lo(p, t->stack) + 256)
        corio__overflow_abort(l, t); /* reports from the scheduler's healthy stack */
}

/* Suspend `from` (NULL: the scheduler) and resume `to` (NULL: the scheduler).
 * Inline: it is the heart of every yield and wait. */
static inline __attribute__((always_inline)) void task_switch(corio_loop *l, corio_task *from,
                                                              corio_task *to)
{
    void **save = from ? &from->sp : &l->sched_sp;
    if (from)
        stack_check(l, from);
    l->current = to;
    bool fresh = false;
    if (to) {
        fresh = to->state == CORIO__T_NEW;
        to->state = CORIO__T_RUNNING;
    }
#ifdef CORIO_ASAN
    void *fake = NULL;
    const void *lo;
    size_t size;
    stack_bounds(l, to, &lo, &size);
    __sanitizer_start_switch_fiber(&fake, lo, size);
#else
    (void)stack_bounds;
#endif
    if (fresh)
        corio__ctx_switch_fresh(save, to->sp);
    else
        corio__ctx_switch(save, to ? to->sp : l->sched_sp);
#ifdef CORIO_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    if (!from)
        corio__overflow_check_sched(l); /* a task may have jumped here to report one */
}

void corio__switch_to(corio_loop *l, corio_task *from, corio_task *to)
{
    task_switch(l, from, to);
}

/* Make `to` (NULL: the scheduler) the running context for good, from a
 * stack that is being given up; returns the saved context to jump to. */
static void *leave_for(corio_loop *l, corio_task *to)
{
    l->current = to;
    if (to)
        to->state = CORIO__T_RUNNING;
#ifdef CORIO_ASAN
    const void *lo;
    size_t size;
    stack_bounds(l, to, &lo, &size);
    __sanitizer_start_switch_fiber(NULL, lo, size);
#endif
    return to ? to->sp : l->sched_sp;
}

/* Leave the running task `self` (already queued or waiting): run the next
 * ready task directly, or the scheduler when none is. */
static void switch_away(corio_loop *l, corio_task *self)
{
    corio_task *next;
    while ((next = corio__pick_next(l)) && !corio__task_prepare(l, next))
        ;
    if (next == self) {
        self->state = CORIO__T_RUNNING;
        return;
    }
    task_switch(l, self, next);
}

/* ---- start and end ------------------------------------------------------------------ */

static void *task_entry(void *arg);

/* Give a task that has never run its stack and first frame. False (and the
 * task ended with -ENOMEM) if no stack can be had. */
bool corio__task_prepare(corio_loop *l, corio_task *t)
{
    if (t->stack)
        return true;
    corio__stack_pool *p = &l->stacks[t->stack_class];
    t->stack = corio__stack_get(p);
    if (!t->stack) {
        corio__task_end_unstarted(l, t, -ENOMEM);
        return false;
    }
    t->sp = corio__ctx_make(t->stack, p->size, task_entry, l);
    return true;
}

static void notify_awaiters(corio_task *t)
{
    corio__awaiter *list = NULL, *a = t->awaiters;
    t->awaiters = NULL;
    if (!a->next) { /* the common case: one awaiter */
        a->done(a);
        return;
    }
    while (a) { /* the list is LIFO: reverse it so awaiters wake in arrival order */
        corio__awaiter *next = a->next;
        a->next = list;
        list = a;
        a = next;
    }
    while (list) {
        a = list;
        list = a->next;
        a->next = NULL;
        a->done(a);
    }
}

static inline __attribute__((always_inline)) void task_end(corio_loop *l, corio_task *t,
                                                            void *result, int status)
{
    t->value = result;
    t->status = status;
    t->state = CORIO__T_DONE;
    t->wait = NULL;
    l->live--;
    if (t->awaiters)
        notify_awaiters(t);
    if (t == l->main)
        l->stopping = true; /* asyncio: finish this turn, then return */
    if (t->flags & CORIO__TF_RELEASED && t != l->main) /* main: freed by its run */
        task_free(l, t);
}

void corio__task_end_unstarted(corio_loop *l, corio_task *t, int status)
{
    task_end(l, t, NULL, status);
}

/* Every task's stack starts here and loops: when a task ends and the next
 * one has never run and wants a stack of the same size, it runs right here.
 * Otherwise the stack goes back to its pool and entry returns the context to
 * resume (arch/ jumps there). */
static void *task_entry(void *arg)
{
    corio_loop *l = arg;
#ifdef CORIO_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    corio_task *t = l->current;
    char *stack = t->stack;
    uint16_t cls = t->stack_class;
    for (;;) {
        void *result = t->fn(t->value);
        stack_check(l, t);
        t->stack = NULL;
        task_end(l, t, result, t->status);
        corio_task *next;
        while ((next = corio__pick_next(l)) && !next->stack) {
            if (next->stack_class == cls)
                break;
            if (corio__task_prepare(l, next))
                break;
        }
        if (next && !next->stack) { /* reuse this stack in place */
            next->stack = stack;
            next->state = CORIO__T_RUNNING;
            l->current = t = next;
            continue;
        }
        corio__stack_put(&l->stacks[cls], stack);
        return leave_for(l, next);
    }
}

/* ---- the suspension primitive ---------------------------------------------------------- */

int corio__suspend(corio_loop *l, corio_task *self, corio__wait *w)
{
    w->task = self;
    w->woken = false;
    w->result = 0;
    if ((self->flags & CORIO__TF_CANCELLED) && w->cancel) {
        w->cancel(w); /* level-triggered: a cancelled task does not wait */
        return -ECANCELED;
    }
    self->wait = w;
    self->state = CORIO__T_WAITING;
    switch_away(l, self);
    self->wait = NULL;
    return w->result;
}

void corio__wake(corio_loop *l, corio__wait *w, int result)
{
    w->woken = true;
    w->result = result;
    w->task->state = CORIO__T_READY;
    corio__ready_push(l, w->task);
}

/* ---- creating and releasing ---------------------------------------------------------- */

int corio_task_create(corio_task **out, corio_coro_t coro, const corio_task_opts *opts)
{
    corio_loop *l = corio__tls_loop;
    if (!out || !coro.fn)
        return -EINVAL;
    if (!l || l->state == CORIO__LOOP_CLOSED)
        return -EPERM;
    int cls = l->default_class;
    if (opts && opts->stack_size) {
        if (opts->stack_size < CORIO_STACK_MIN || opts->stack_size > CORIO_STACK_MAX)
            return -EINVAL;
        cls = corio__stack_class(l, opts->stack_size);
        if (cls < 0)
            return cls;
    }
    return task_new(l, out, coro, (uint16_t)cls);
}

corio_task *corio_create_task(corio_coro_t coro)
{
    corio_task *t;
    return corio_task_create(&t, coro, NULL) < 0 ? NULL : t;
}

int corio_spawn(corio_coro_t coro)
{
    corio_task *t;
    int rc = corio_task_create(&t, coro, NULL);
    if (rc == 0)
        t->flags |= CORIO__TF_RELEASED;
    return rc;
}

/* A task of this thread's loop that still exists. */
static int check_task(corio_loop *l, const corio_task *t)
{
    if (!t)
        return -EINVAL;
    if (!l || corio__task_loop(t) != l)
        return l ? -EXDEV : -EPERM;
    return t->state == CORIO__T_FREE ? -EINVAL : 0;
}

/* A handle the caller may use: check_task, and not released. */
static int check_handle(corio_loop *l, const corio_task *t)
{
    int rc = check_task(l, t);
    if (rc == 0 && (t->flags & CORIO__TF_RELEASED))
        rc = -EINVAL;
    return rc;
}

int corio_task_release(corio_task *t)
{
    corio_loop *l = corio__tls_loop;
    int rc = check_handle(l, t);
    if (rc < 0)
        return rc;
    t->flags |= CORIO__TF_RELEASED;
    if (t->state == CORIO__T_DONE)
        task_free(l, t);
    return 0;
}

void *corio_fail(int err)
{
    corio_loop *l;
    corio_task *self = self_task(&l);
    if (self)
        self->status = err < 0 && err > -4096 ? err : -EINVAL;
    return NULL;
}

int corio_task_done(const corio_task *t)
{
    if (!t)
        return -EINVAL;
    return t->state == CORIO__T_DONE;
}

corio_task *corio_current_task(void)
{
    corio_loop *l;
    return self_task(&l);
}

/* ---- awaiting --------------------------------------------------------------------------- */

typedef struct await_wait {
    corio__wait w;
    corio__awaiter a;
} await_wait;

static void awaiter_unlink(corio__awaiter *a)
{
    for (corio__awaiter **p = &a->target->awaiters; *p; p = &(*p)->next)
        if (*p == a) {
            *p = a->next;
            return;
        }
}

static void await_done(corio__awaiter *a)
{
    corio__wake(corio__tls_loop, a->wait, 0);
}

static void await_cancel(corio__wait *w)
{
    awaiter_unlink(&container_of(w, await_wait, w)->a);
}

/* Wait for t to end; cancellable unless `shielded` (used to reap after a cancel). */
static int wait_task(corio_loop *l, corio_task *self, corio_task *t, bool shielded)
{
    if (t->state == CORIO__T_DONE)
        return 0;
    await_wait aw = {.w = {.cancel = shielded ? NULL : await_cancel, .what = "a task"},
                     .a = {.target = t, .done = await_done}};
    aw.a.wait = &aw.w;
    aw.a.next = t->awaiters;
    t->awaiters = &aw.a;
    return corio__suspend(l, self, &aw.w);
}

int corio_await_task(corio_task *t, void **result)
{
    corio_loop *l;
    corio_task *self = self_task(&l);
    if (!self)
        return -EPERM;
    if (t == self)
        return -EDEADLK;
    int rc = check_handle(l, t);
    if (rc < 0)
        return rc;
    rc = wait_task(l, self, t, false);
    if (rc < 0)
        return rc;
    if (result)
        *result = t->value;
    return t->status;
}

int corio_await_coro(corio_coro_t coro, void **result)
{
    corio_loop *l;
    corio_task *self = self_task(&l);
    if (!self)
        return -EPERM;
    if (!coro.fn)
        return -EINVAL;
    int outer = self->status; /* corio_fail inside reports to us, not to the task */
    self->status = 0;
    void *r = coro.fn(coro.arg);
    int rc = self->status;
    self->status = outer;
    if (result)
        *result = r;
    return rc;
}

/* ---- sleeping and yielding ------------------------------------------------------------- */

typedef struct sleep_wait {
    corio__wait w;
    corio__timer timer;
} sleep_wait;

static void sleep_fire(corio__timer *tm)
{
    corio__wake(corio__tls_loop, &container_of(tm, sleep_wait, timer)->w, 0);
}

static void sleep_cancel(corio__wait *w)
{
    corio__timers_remove(&corio__tls_loop->timers, &container_of(w, sleep_wait, w)->timer);
}

int corio_yield(void)
{
    corio_loop *l;
    corio_task *self = self_task(&l);
    if (!self)
        return -EPERM;
    if (self->flags & CORIO__TF_CANCELLED)
        return -ECANCELED;
    self->state = CORIO__T_READY;
    corio__ready_push(l, self);
    switch_away(l, self);
    return self->flags & CORIO__TF_CANCELLED ? -ECANCELED : 0;
}

int corio_sleep_ns(int64_t ns)
{
    corio_loop *l;
    corio_task *self = self_task(&l);
    if (!self)
        return -EPERM;
    if (ns < 0)
        return -EINVAL;
    if (ns == 0)
        return corio_yield();
    int64_t now = corio__now(l);
    int64_t deadline = ns > INT64_MAX - now ? INT64_MAX : now + ns;
    sleep_wait s = {.w = {.cancel = sleep_cancel, .what = "a timer"}};
    int rc = corio__timers_add(&l->timers, &s.timer, deadline, sleep_fire);
    if (rc < 0)
        return rc;
    return corio__suspend(l, self, &s.w);
}

int corio_sleep(double seconds)
{
    if (!(seconds >= 0) || isinf(seconds))
        return -EINVAL;
    double ns = seconds * 1e9;
    return corio_sleep_ns(ns >= 9.2e18 ? INT64_MAX : (int64_t)ceil(ns));
}

/* ---- cancellation ---------------------------------------------------------------------- */

static int task_cancel(corio_loop *l, corio_task *t)
{
    if (t->state == CORIO__T_DONE || (t->flags & CORIO__TF_CANCELLED))
        return 0;
    t->flags |= CORIO__TF_CANCELLED;
    corio__wait *w = t->wait;
    if (!w || !w->cancel)
        return 1; /* not suspended (or shielded): its next suspension sees the flag */
    if (!w->woken) {
        w->cancel(w);
        corio__wake(l, w, -ECANCELED);
    } else {
        /* woken but not yet resumed: it still reports the cancel, and the
         * wakeup it was handed goes to the next waiter */
        w->result = -ECANCELED;
        if (w->pass_on)
            w->pass_on(w);
    }
    return 1;
}

int corio_cancel(corio_task *t)
{
    corio_loop *l = corio__tls_loop;
    int rc = check_task(l, t);
    return rc < 0 ? rc : task_cancel(l, t);
}

static void cancel_one(corio_loop *l, corio_task *t)
{
    task_cancel(l, t);
}

void corio__cancel_all(corio_loop *l)
{
    corio__for_each_live(l, cancel_one);
}

/* ---- gathering ------------------------------------------------------------------------- */

/* Cancel the tasks, then wait (shielded: we may be cancelled ourselves) until
 * every one has ended. */
static void cancel_and_reap(corio_loop *l, corio_task *self, corio_task *const *tasks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        task_cancel(l, tasks[i]);
    for (size_t i = 0; i < n; i++)
        wait_task(l, self, tasks[i], true);
}

typedef struct gather_wait {
    corio__wait w;
    corio__awaiter *as;
    size_t n, left;
    int first_error;
} gather_wait;

static void gather_done(corio__awaiter *a)
{
    gather_wait *g = container_of(a->wait, gather_wait, w);
    if (a->target->status < 0 && g->first_error == 0)
        g->first_error = a->target->status;
    if (--g->left == 0)
        corio__wake(corio__tls_loop, &g->w, 0);
}

static void gather_cancel(corio__wait *w)
{
    gather_wait *g = container_of(w, gather_wait, w);
    for (size_t i = 0; i < g->n; i++)
        if (g->as[i].target->state != CORIO__T_DONE)
            awaiter_unlink(&g->as[i]);
}

int corio_gather_tasks(corio_task *const *tasks, size_t n, void **results)
{
    corio_loop *l;
    corio_task *self = self_task(&l);
    if (!self)
        return -EPERM;
    if (n && !tasks)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int rc = check_handle(l, tasks[i]);
        if (rc < 0)
            return rc;
        if (tasks[i] == self)
            return -EDEADLK;
    }
    corio__awaiter small[8], *as = n <= 8 ? small : calloc(n, sizeof *as);
    if (!as)
        return -ENOMEM;
    gather_wait g = {.w = {.cancel = gather_cancel, .what = "gather"}, .as = as, .n = n};
    for (size_t i = 0; i < n; i++) {
        as[i] = (corio__awaiter){.target = tasks[i], .done = gather_done, .wait = &g.w};
        if (tasks[i]->state != CORIO__T_DONE) {
            as[i].next = tasks[i]->awaiters;
            tasks[i]->awaiters = &as[i];
            g.left++;
        } else if (tasks[i]->status < 0 && g.first_error == 0) {
            g.first_error = tasks[i]->status;
        }
    }
    int rc = g.left ? corio__suspend(l, self, &g.w) : 0;
    if (rc == -ECANCELED) {
        cancel_and_reap(l, self, tasks, n); /* asyncio: cancelling gather cancels its children */
    }
    if (as != small)
        free(as);
    if (rc < 0)
        return rc;
    if (results)
        for (size_t i = 0; i < n; i++)
            results[i] = tasks[i]->value;
    return g.first_error;
}

int corio_gather(const corio_coro_t *coros, size_t n, void **results)
{
    corio_loop *l;
    corio_task *self = self_task(&l);
    if (!self)
        return -EPERM;
    if (n && !coros)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!coros[i].fn)
            return -EINVAL;
    corio_task *small[8] = {0}, **ts = n <= 8 ? small : calloc(n, sizeof *ts);
    if (!ts)
        return -ENOMEM;
    int rc = 0;
    size_t made;
    for (made = 0; made < n; made++)
        if ((rc = corio_task_create(&ts[made], coros[made], NULL)) < 0)
            break;
    if (rc < 0) /* could not start them all: stop the ones that were */
        cancel_and_reap(l, self, ts, made);
    else
        rc = corio_gather_tasks(ts, n, results);
    for (size_t i = 0; i < made; i++)
        corio_task_release(ts[i]);
    if (ts != small)
        free(ts);
    return rc;
}
