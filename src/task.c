/* task.c - tasks: creation, the switch, the entry trampoline, the suspension
 * primitive, and the calls built on it (await, sleep, yield), and done
 * callbacks. Cancellation and scopes are in cancel.c, groups and the calls
 * that wait on several tasks in group.c.
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
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#include <stdio.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define CORIO_HAVE_MEMCHECK 1
#endif
#endif

/* Before reading frames off the shared stack or writing them back: ASan's
 * shadow there still holds the poison of whoever used those addresses last. */
static inline void shared_stack_unpoison(char *top, size_t size)
{
#ifdef CORIO_ASAN
    __asan_unpoison_memory_region(top - size, size);
#else
    (void)top;
    (void)size;
#endif
}

/* Before writing a compact task's frames back: memcheck marks what lies below
 * the lowest stack pointer it last saw on the shared stack as unaddressable. */
static inline void shared_stack_writable(char *p, size_t len)
{
#ifdef CORIO_HAVE_MEMCHECK
    VALGRIND_MAKE_MEM_UNDEFINED(p, len);
#else
    (void)p;
    (void)len;
#endif
}

__thread uintptr_t corio__last_caller __attribute__((tls_model("initial-exec")));

#define container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* ---- allocation: 64-byte tasks in 64 KiB slabs whose header names the loop ---- */

static __attribute__((noinline)) corio_task *task_alloc_carve(corio_loop *l)
{
    if (l->carve == l->carve_end) {
        corio__task_slab *s = corio__mem_carve(&l->mem, CORIO__TASK_SLAB_BYTES,
                                               CORIO__TASK_SLAB_BYTES);
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

/* Free an ended task nobody can reach any more: its handle was released, its
 * done callbacks have run, and it is not main (freed by its run). */
static inline void task_free_if_unused(corio_loop *l, corio_task *t)
{
    if ((t->flags & CORIO__TF_RELEASED) && !t->callbacks_queued && t != l->main)
        task_free(l, t);
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

/* (The slabs themselves go with the loop's memory, corio__mem_fini.) */
void corio__task_free_all(corio_loop *l)
{
    l->slabs = NULL;
    l->free_tasks = NULL;
    l->carve = l->carve_end = NULL;
}

static inline __attribute__((always_inline)) int task_new(corio_loop *l, corio_task **out,
                                                           corio_coro_t coro, uint8_t cls)
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

int corio__task_new(corio_loop *l, corio_task **out, corio_coro_t coro, uint8_t cls)
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
    *lo = corio__stack_lo(p, corio__stack_top(l, t));
    *size = p->size;
}

/* The stack pointer, read without making the caller keep a frame pointer. */
static inline __attribute__((always_inline)) char *stack_pointer(void)
{
    char *sp;
#if defined(__x86_64__)
    __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
#elif defined(__aarch64__)
    __asm__ volatile("mov %0, sp" : "=r"(sp));
#else
    sp = __builtin_frame_address(0); /* (costs a frame pointer) */
#endif
    return sp;
}

/* The overflow check made on every switch away from a task: the canary
 * below its stack is intact and its stack pointer is inside the stack. */
static inline void stack_check(corio_loop *l, corio_task *t)
{
    corio__stack_pool *p = &l->stacks[t->stack_class];
    char *top = corio__stack_top(l, t);
    uint64_t *canary = corio__stack_canary(p, top);
    char *sp = stack_pointer();
    if (*canary != corio__stack_canary_value(canary) || sp < corio__stack_lo(p, top) + 256)
        corio__overflow_abort(l, t); /* reports from the scheduler's healthy stack */
}

/* Suspend `from` (NULL: the scheduler) and resume `to` (NULL: the scheduler),
 * whose frames are in place. Inline: it is the heart of every yield and wait. */
static inline __attribute__((always_inline)) void switch_plain(corio_loop *l, corio_task *from,
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

/* ---- compact tasks (internal.h): the shared stack's comings and goings ---------- */

static void *task_entry(void *arg);
static inline __attribute__((always_inline)) bool task_prepare(corio_loop *l, corio_task *t);

/* An image of `cap` bytes: from the loop's memory up to CORIO__MEM_MAX (a
 * million sleepers' images ride on huge pages), from malloc beyond. */
static char *image_get(corio_loop *l, size_t cap)
{
    return cap <= CORIO__MEM_MAX ? corio__mem_get(&l->mem, cap) : malloc(cap);
}

static void image_put(corio_loop *l, char *image, size_t cap)
{
    if (cap <= CORIO__MEM_MAX)
        corio__mem_put(&l->mem, image, cap);
    else
        free(image);
}

/* Copy the resident's frames off the shared stack, into its image. */
static void compact_evict(corio_loop *l, corio_task *r)
{
    corio__compact *c = corio__compact_of(r);
    size_t len = (size_t)(l->shared_top - (char *)r->sp);
    if (len > c->image_cap) {
        size_t cap = corio__mem_round(len);
        char *image = image_get(l, cap);
        if (!image) { /* nowhere to put its frames, and no caller to tell */
            fprintf(stderr, "corio: out of memory saving compact task %p's %zu-byte stack\n",
                    (void *)r, len);
            abort();
        }
        image_put(l, c->image, c->image_cap);
        c->image = image;
        c->image_cap = (uint32_t)cap;
    }
    shared_stack_unpoison(l->shared_top, l->stacks[r->stack_class].size);
    memcpy(c->image, r->sp, len);
    c->image_len = (uint32_t)len;
}

/* Make the shared stack hold `to`'s frames: evict the resident, then copy
 * `to`'s image back to where it was taken from, or make its first frame. */
static void compact_bring_in(corio_loop *l, corio_task *to)
{
    if (l->resident)
        compact_evict(l, l->resident);
    l->resident = to;
    corio__stack_pool *p = &l->stacks[to->stack_class];
    if (to->state == CORIO__T_NEW) {
        shared_stack_writable(l->shared_top - 1024, 1024); /* (its first frame) */
        to->sp = corio__ctx_make(l->shared_top, p->size, task_entry, l);
        return;
    }
    corio__compact *c = corio__compact_of(to);
    shared_stack_unpoison(l->shared_top, p->size);
    shared_stack_writable(l->shared_top - c->image_len, c->image_len);
    memcpy(l->shared_top - c->image_len, c->image, c->image_len);
}

/* A switch into a compact task that is not resident. Its frames cannot be
 * copied in from a context that runs on the shared stack itself: such a
 * switch goes through the scheduler, which brings `to` in (schedule_until). */
static __attribute__((noinline)) void compact_switch(corio_loop *l, corio_task *from,
                                                     corio_task *to)
{
    if (from && (from->flags & CORIO__TF_COMPACT)) {
        l->handoff = to;
        switch_plain(l, from, NULL);
        return;
    }
    compact_bring_in(l, to);
    switch_plain(l, from, to);
}

static inline __attribute__((always_inline)) void task_switch(corio_loop *l, corio_task *from,
                                                              corio_task *to)
{
    if (__builtin_expect(to && (to->flags & CORIO__TF_COMPACT) && to != l->resident, 0))
        compact_switch(l, from, to);
    else
        switch_plain(l, from, to);
}

static void compact_free(corio_loop *l, corio_task *t)
{
    corio__compact *c = corio__compact_of(t);
    image_put(l, c->image, c->image_cap);
    corio__mem_put(&l->mem, c, sizeof *c);
    if (l->resident == t)
        l->resident = NULL;
}

/* A compact task suspending with its record on the shared stack: a call
 * that should have refused it (corio__compact_refuse) did not. */
void corio__compact_check_record(corio_loop *l, corio_task *self, const corio__wait *w)
{
    if (corio__on_shared_stack(l, self, w)) {
        fprintf(stderr, "corio: bug: compact task %p waits on %s with its record on the shared "
                        "stack\n", (void *)self, w->what ? w->what : "?");
        abort();
    }
}

/* Close: compact tasks that never ended give back their side blocks, and the
 * shared stack goes back to its pool. */
static void compact_free_one(corio_loop *l, corio_task *t)
{
    if ((t->flags & CORIO__TF_COMPACT) && t->stack) {
        compact_free(l, t);
        t->stack = NULL;
    }
}

void corio__compact_free_all(corio_loop *l)
{
    corio__for_each_live(l, compact_free_one);
    if (l->shared_top)
        corio__stack_put(&l->stacks[l->default_class], l->shared_top);
    l->shared_top = NULL;
    l->resident = l->handoff = NULL;
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
void corio__switch_away(corio_loop *l, corio_task *self)
{
    if (!self)
        __builtin_unreachable(); /* lets the inlined switch drop its scheduler cases */
    corio_task *next;
    while ((next = corio__pick_next(l)) && !task_prepare(l, next))
        ;
    if (next == self) {
        self->state = CORIO__T_RUNNING;
        return;
    }
    if (next)
        task_switch(l, self, next); /* task to task: the hot case, specialized */
    else
        task_switch(l, self, NULL);
}

/* ---- start and end ------------------------------------------------------------------ */

/* A compact task's side block (and, for the loop's first, the shared stack);
 * its first frame is made when it comes in (compact_bring_in). */
static __attribute__((noinline)) bool compact_prepare(corio_loop *l, corio_task *t)
{
    corio__compact *c = NULL;
    if ((l->shared_top || (l->shared_top = corio__stack_get(&l->stacks[t->stack_class]))) &&
        (c = corio__mem_get(&l->mem, sizeof *c))) {
        c->image = NULL;
        c->image_len = c->image_cap = 0;
        c->frame = (corio__task_frame){0};
        t->stack = (char *)(&c->frame + 1);
        return true;
    }
    corio__task_end_unstarted(l, t, -ENOMEM);
    return false;
}

/* Give a task that has never run its stack and first frame. False (and the
 * task ended with -ENOMEM) if no stack can be had. */
static inline __attribute__((always_inline)) bool task_prepare(corio_loop *l, corio_task *t)
{
    if (t->stack)
        return true;
    if (__builtin_expect(t->flags & CORIO__TF_COMPACT, 0))
        return compact_prepare(l, t);
    corio__stack_pool *p = &l->stacks[t->stack_class];
    t->stack = corio__stack_get(p);
    if (!t->stack) {
        corio__task_end_unstarted(l, t, -ENOMEM);
        return false;
    }
    *corio__frame(t) = (corio__task_frame){0};
    t->sp = corio__ctx_make(t->stack - sizeof(corio__task_frame), p->size - sizeof(corio__task_frame),
                            task_entry, l);
    return true;
}

bool corio__task_prepare(corio_loop *l, corio_task *t)
{
    return task_prepare(l, t);
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
    task_free_if_unused(l, t);
}

void corio__task_free_if_unused(corio_loop *l, corio_task *t)
{
    task_free_if_unused(l, t);
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
    bool shared = t->flags & CORIO__TF_COMPACT; /* this runs on the compact tasks' stack */
    char *stack = t->stack; /* (unused on the shared stack) */
    uint8_t cls = t->stack_class;
    for (;;) {
        void *result = t->fn(t->value);
        stack_check(l, t);
        if (__builtin_expect(corio__frame(t)->scopes != NULL, 0))
            corio__scope_leak_abort(l, t); /* its timers would fire into dead frames */
        t->sp = (void *)corio__frame(t)->reason; /* kept for corio_cancel_reason */
        if (shared)
            compact_free(l, t); /* the shared stack holds nobody's frames now */
        t->stack = NULL;
        task_end(l, t, result, t->status);
        /* A fresh task that can start right here, in this frame: on a stack of
         * its own class, one that wants such a stack; on the shared stack, a
         * compact one (prepare gives it its side block). */
        corio_task *next;
        if (__builtin_expect(!shared, 1)) {
            while ((next = corio__pick_next(l)) && !next->stack) {
                if (next->stack_class == cls && !(next->flags & CORIO__TF_COMPACT))
                    break;
                if (task_prepare(l, next))
                    break;
            }
            if (next && !next->stack) { /* reuse this stack in place */
                next->stack = stack;
                *corio__frame(next) = (corio__task_frame){0};
                next->state = CORIO__T_RUNNING;
                l->current = t = next;
                continue;
            }
            corio__stack_put(&l->stacks[cls], stack);
            if (next && (next->flags & CORIO__TF_COMPACT) && next != l->resident)
                compact_bring_in(l, next);
            return leave_for(l, next);
        }
        while ((next = corio__pick_next(l)) && !task_prepare(l, next))
            ;
        if (next && (next->flags & CORIO__TF_COMPACT) && next->state == CORIO__T_NEW) {
            l->resident = next; /* start it in place */
            next->state = CORIO__T_RUNNING;
            l->current = t = next;
            continue;
        }
        if (next && (next->flags & CORIO__TF_COMPACT)) { /* its frames would go where this one
                                                            runs: the scheduler brings it in */
            l->handoff = next;
            next = NULL;
        }
        return leave_for(l, next);
    }
}

/* ---- the suspension primitive ---------------------------------------------------------- */

corio__suspend_hook_fn *corio__suspend_hook;

/* The slow half of a suspension's cancel check: the task or one of its scopes
 * is cancelled. True (and the wait undone) if this suspension must not wait. */
bool corio__suspend_interrupted(corio__wait *w)
{
    corio__scope *cause = corio__interrupt_cause(w->task);
    if (!cause)
        return false; /* shielded */
    corio__credit(cause);
    w->cancel(w); /* level-triggered: a cancelled task does not wait */
    return true;
}

/* An interrupted suspension is credited as it resumes, to the outermost
 * cause visible then (it cannot have gone away: scopes end only when their
 * task runs, and a cancel stays). */
void corio__credit_interruption(corio_task *self)
{
    corio__scope *cause = corio__interrupt_cause(self);
    if (cause)
        corio__credit(cause);
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
    if (opts && opts->compact) {
        if (opts->stack_size)
            return -EINVAL; /* compact tasks share the loop's default-size stack */
        int rc = task_new(l, out, coro, (uint8_t)cls);
        if (rc == 0)
            (*out)->flags |= CORIO__TF_COMPACT;
        return rc;
    }
    if (opts && opts->stack_size) {
        if (opts->stack_size < CORIO_STACK_MIN || opts->stack_size > CORIO_STACK_MAX)
            return -EINVAL;
        cls = corio__stack_class(l, opts->stack_size);
        if (cls < 0)
            return cls;
    }
    return task_new(l, out, coro, (uint8_t)cls);
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
int corio__check_task(corio_loop *l, const corio_task *t)
{
    if (!t)
        return -EINVAL;
    if (!l || corio__task_loop(t) != l)
        return l ? -EXDEV : -EPERM;
    return t->state == CORIO__T_FREE ? -EINVAL : 0;
}

/* A handle the caller may use: check_task, and not released. */
int corio__check_handle(corio_loop *l, const corio_task *t)
{
    int rc = corio__check_task(l, t);
    if (rc == 0 && (t->flags & CORIO__TF_RELEASED))
        rc = -EINVAL;
    return rc;
}

int corio_task_release(corio_task *t)
{
    corio_loop *l = corio__tls_loop;
    int rc = corio__check_handle(l, t);
    if (rc < 0)
        return rc;
    t->flags |= CORIO__TF_RELEASED;
    if (t->state == CORIO__T_DONE)
        task_free_if_unused(l, t);
    return 0;
}

void *corio_fail(int err)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
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
    return corio__self(&l);
}

/* ---- awaiting --------------------------------------------------------------------------- */

typedef struct await_wait {
    corio__wait w;
    corio__awaiter a;
} await_wait;
_Static_assert(sizeof(await_wait) <= CORIO__RECORD_BYTES, "a compact task's record holds an await");

void corio__awaiter_unlink(corio__awaiter *a)
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
    corio__awaiter_unlink(&container_of(w, await_wait, w)->a);
}

static inline __attribute__((always_inline)) int wait_task_on(corio_loop *l, corio_task *self,
                                                             corio_task *t, bool shielded,
                                                             await_wait *aw)
{
    *aw = (await_wait){.w = {.cancel = shielded ? NULL : await_cancel, .what = "a task"},
                       .a = {.target = t, .done = await_done}};
    aw->a.wait = &aw->w;
    aw->a.next = t->awaiters;
    t->awaiters = &aw->a;
    return corio__suspend(l, self, &aw->w);
}

/* A compact task's await: its record in the side block (internal.h). */
static __attribute__((noinline)) int wait_task_compact(corio_loop *l, corio_task *self,
                                                       corio_task *t, bool shielded)
{
    return wait_task_on(l, self, t, shielded, corio__record(self, NULL));
}

/* Wait for t to end; cancellable unless `shielded` (used to reap after a cancel). */
static inline __attribute__((always_inline)) int wait_task(corio_loop *l, corio_task *self,
                                                          corio_task *t, bool shielded)
{
    if (t->state == CORIO__T_DONE)
        return 0;
    if (__builtin_expect(self->flags & CORIO__TF_COMPACT, 0))
        return wait_task_compact(l, self, t, shielded);
    await_wait aw;
    return wait_task_on(l, self, t, shielded, &aw);
}

int corio__wait_task(corio_loop *l, corio_task *self, corio_task *t, bool shielded)
{
    return wait_task(l, self, t, shielded);
}

int corio_await_task(corio_task *t, void **result)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!self)
        return -EPERM;
    if (t == self)
        return -EDEADLK;
    int rc = corio__check_handle(l, t);
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
    corio_task *self = corio__self(&l);
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
_Static_assert(sizeof(sleep_wait) <= CORIO__RECORD_BYTES, "a compact task's record holds a sleep");

static void sleep_fire(corio__timer *tm)
{
    corio__wake(corio__tls_loop, &container_of(tm, sleep_wait, timer)->w, 0);
}

static void sleep_cancel(corio__wait *w)
{
    corio__timers_remove(&corio__tls_loop->timers, &container_of(w, sleep_wait, w)->timer);
}

static inline __attribute__((always_inline)) int sleep_on(corio_loop *l, corio_task *self,
                                                         sleep_wait *s, int64_t deadline)
{
    *s = (sleep_wait){.w = {.cancel = sleep_cancel, .what = "a timer"}};
    int rc = corio__timers_add(&l->timers, &s->timer, deadline, sleep_fire);
    if (rc < 0)
        return rc;
    return corio__suspend(l, self, &s->w);
}

static __attribute__((noinline)) int sleep_private(corio_loop *l, corio_task *self,
                                                   int64_t deadline)
{
    sleep_wait s;
    return sleep_on(l, self, &s, deadline);
}

static __attribute__((noinline)) int sleep_compact(corio_loop *l, corio_task *self,
                                                   int64_t deadline)
{
    return sleep_on(l, self, (sleep_wait *)(void *)corio__compact_of(self)->record, deadline);
}

int CORIO__IMPL(corio_yield)(void)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!self)
        return -EPERM;
    if (corio__interrupt_pending(self) < 0) /* a yield has no wait record: it just reports */
        return -ECANCELED;
    self->state = CORIO__T_READY;
    corio__ready_push(l, self);
    if (__builtin_expect(corio__suspend_hook != NULL, 0))
        corio__suspend_hook(l, self, NULL);
    corio__switch_away(l, self);
    if (corio__interrupt_pending(self) < 0)
        return -ECANCELED;
    return 0;
}

int corio_sleep_ns(int64_t ns)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!self)
        return -EPERM;
    if (ns < 0)
        return -EINVAL;
    if (ns == 0)
        return CORIO__IMPL(corio_yield)();
    int64_t now = corio__now(l);
    int64_t deadline = ns > INT64_MAX - now ? INT64_MAX : now + ns;
    /* two tail calls, so that this frame holds no record: a compact task's
     * sleep leaves no unused local in the image it is evicted as */
    if (__builtin_expect(self->flags & CORIO__TF_COMPACT, 0))
        return sleep_compact(l, self, deadline);
    return sleep_private(l, self, deadline);
}

int corio_sleep(double seconds)
{
    if (!(seconds >= 0) || isinf(seconds))
        return -EINVAL;
    double ns = seconds * 1e9;
    return corio_sleep_ns(ns >= 9.2e18 ? INT64_MAX : (int64_t)ceil(ns));
}

/* ---- done callbacks ------------------------------------------------------------------ */

/* A registration: an awaiter in the task's list until the task ends, then an
 * entry in the loop's soon queue until it has run. */
typedef struct done_cb {
    corio__awaiter a;
    corio__soon soon;
    corio_done_fn *fn;
    void *arg;
    corio_task *task;
} done_cb;

static void done_cb_run(corio_loop *l, corio__soon *s)
{
    done_cb *cb = container_of(s, done_cb, soon);
    corio_task *t = cb->task;
    cb->fn(t, cb->arg);
    free(cb);
    t->callbacks_queued--;
    corio__task_free_if_unused(l, t);
}

static void done_cb_queue(corio_loop *l, done_cb *cb)
{
    cb->soon.run = done_cb_run;
    corio__soon_push(l, &cb->soon);
}

static void done_cb_ended(corio__awaiter *a)
{
    done_cb_queue(corio__tls_loop, container_of(a, done_cb, a));
}

int corio_task_add_done_callback(corio_task *t, corio_done_fn *fn, void *arg)
{
    corio_loop *l = corio__tls_loop;
    if (!fn)
        return -EINVAL;
    int rc = corio__check_handle(l, t);
    if (rc < 0)
        return rc;
    if (t->callbacks_queued == UINT8_MAX)
        return -ENOSPC; /* 255 registered and not yet run: the counter's limit */
    done_cb *cb = malloc(sizeof *cb);
    if (!cb)
        return -ENOMEM;
    t->callbacks_queued++;
    *cb = (done_cb){.a = {.target = t, .done = done_cb_ended}, .fn = fn, .arg = arg, .task = t};
    if (t->state == CORIO__T_DONE) {
        done_cb_queue(l, cb);
        return 0;
    }
    cb->a.next = t->awaiters; /* the list is LIFO; the end reverses it */
    t->awaiters = &cb->a;
    return 0;
}

int corio_task_remove_done_callback(corio_task *t, corio_done_fn *fn, void *arg)
{
    corio_loop *l = corio__tls_loop;
    int rc = corio__check_handle(l, t);
    if (rc < 0)
        return rc;
    int removed = 0;
    for (corio__awaiter **p = &t->awaiters; *p;) {
        corio__awaiter *a = *p;
        done_cb *cb = a->done == done_cb_ended ? container_of(a, done_cb, a) : NULL;
        if (cb && cb->fn == fn && cb->arg == arg) {
            *p = a->next;
            free(cb);
            t->callbacks_queued--;
            removed++;
        } else {
            p = &a->next;
        }
    }
    return removed;
}
