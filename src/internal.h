/* internal.h - the loop and task structures shared by the core's files.
 *
 * Layers, bottom up: arch/ (context switch) - stack (stack pool) - timer
 * (timer lanes) - poller (where the loop blocks) - loop (ready queue, turns,
 * dispatch) - task (tasks, awaiting, sleeping, cancellation). Public names
 * are corio_noun_verb; internal ones corio__module_verb. */
#ifndef CORIO_INTERNAL_H
#define CORIO_INTERNAL_H

#include "corio.h"
#include "arch/context.h"
#include "mem.h"
#include "arch/resuming.h"
#include "poller.h"
#include "stack.h"
#include "timer.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- The suspension primitive ---------------------------------------------
 * Every call that blocks fills a wait record (on its own stack), links it to
 * what it waits on and calls corio__suspend. Whoever resolves the wait calls
 * corio__wake with a result. A cancel that finds the task suspended calls
 * `cancel` (unlink from what it waits on; NULL means the wait cannot be
 * interrupted, e.g. a reap after a cancel) and wakes it with -ECANCELED. A
 * cancel that finds the wakeup already handed over (woken, not yet resumed)
 * still makes the suspension return -ECANCELED and calls `pass_on`, so the
 * primitive can give what it handed over (an item, a permit) to the next
 * waiter: nothing is lost. */
typedef struct corio__wait corio__wait;
struct corio__wait {
    corio_task *task;
    void (*cancel)(corio__wait *w);
    void (*pass_on)(corio__wait *w);
    const char *what;   /* what it waits on, for the deadlock report */
    int result;
    bool woken;         /* resolved: queued to resume */
    bool interrupted;   /* resolved by a cancel (or an expired scope) */
    bool io;            /* an I/O operation (poller.h): a cancel asks the backend to
                           stop it, and the backend wakes the task once the kernel
                           is done with it; a result it was woken with stands */
};

/* ---- Waiter lists: FIFO queues of suspended tasks on a sync object -------------
 * A waiter lives on the waiting task's stack. Several waiters may share one
 * wait (a select waits on many queues at once); whoever resolves one of them
 * first records it in *won and wakes the wait, and the others, still linked
 * elsewhere, are skipped as stale (their wait is already woken) and unlinked
 * by their owner when it resumes. */
typedef struct corio__waiter corio__waiter;
struct corio__waiter {
    corio__waiter *prev, *next;
    corio__wait *wait;
    corio__waiter **won;  /* where the resolver records which waiter it took */
    void *item;           /* a queue item: to put, or handed over */
    int value;            /* per object: barrier index, select op index */
    bool linked;
};

typedef struct corio__waitlist {
    corio__waiter *head, *tail;
} corio__waitlist;

static inline void corio__waitlist_push(corio__waitlist *wl, corio__waiter *w)
{
    w->next = NULL;
    w->prev = wl->tail;
    if (wl->tail)
        wl->tail->next = w;
    else
        wl->head = w;
    wl->tail = w;
    w->linked = true;
}

static inline void corio__waitlist_remove(corio__waitlist *wl, corio__waiter *w)
{
    if (!w->linked)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        wl->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        wl->tail = w->prev;
    w->linked = false;
}

/* The first waiter whose wait can still be resolved, unlinked; stale ones
 * (a select that another of its waiters already won) are dropped on the way. */
static inline corio__waiter *corio__waitlist_take(corio__waitlist *wl)
{
    corio__waiter *w;
    while ((w = wl->head)) {
        corio__waitlist_remove(wl, w);
        if (!w->wait->woken)
            return w;
    }
    return NULL;
}

/* ---- Tasks: 64 bytes, allocated in aligned slabs ----------------------------- */
enum corio__task_state {
    CORIO__T_FREE = 0, /* slot on the free list */
    CORIO__T_NEW,      /* created, queued, no stack yet */
    CORIO__T_READY,    /* in the ready queue */
    CORIO__T_RUNNING,
    CORIO__T_WAITING,  /* suspended on task->wait */
    CORIO__T_DONE,
};

enum corio__task_flag {
    CORIO__TF_CANCELLED = 1,    /* cancel requested: level-triggered */
    CORIO__TF_RELEASED = 2,     /* the handle was given back */
    CORIO__TF_SCOPE_CANCEL = 4, /* a scope it is in has expired or aborted (cancel.c) */
    CORIO__TF_COMPACT = 8,      /* runs on the loop's shared stack (below) */
};

typedef struct corio__awaiter corio__awaiter;

struct corio_task {
    void *sp;                  /* saved context while not running */
    char *stack;               /* top of its stack, NULL before it first runs */
    corio_task *next;          /* ready queue / free list link */
    corio_fn *fn;
    void *value;               /* the argument until it starts, then the result */
    corio__wait *wait;         /* the suspension it is in, if any */
    corio__awaiter *awaiters;  /* notified when it ends (LIFO list) */
    uint8_t state;
    uint8_t flags;
    uint8_t stack_class;       /* which of the loop's stack pools */
    uint8_t callbacks_queued;  /* done callbacks not yet run: keep it from being freed */
    int32_t status;            /* 0 or the negative errno it ends with */
};

/* What a started task keeps at the top of its own stack (there is no room
 * left in the 64-byte task, and only a task with a stack needs it): its
 * innermost scope and its cancel reason. Before it starts and after it ends,
 * the reason lives in task->sp instead (unused then). */
typedef struct corio__scope corio__scope;
typedef struct corio__task_frame {
    corio__scope *scopes;
    const char *reason;
} corio__task_frame;

static inline corio__task_frame *corio__frame(const corio_task *t)
{
    return (corio__task_frame *)(void *)(t->stack - sizeof(corio__task_frame));
}

/* ---- Compact tasks: one shared stack, frames copied out while away ------------
 * A compact task runs on the loop's shared stack. While it is suspended its
 * frames stay there until another compact task needs the stack; only then are
 * the bytes it uses (a sleeper: a few hundred) copied into its image, and they
 * are copied back, to the same addresses, before it resumes. So a suspended
 * compact task costs its image, not a stack page.
 *
 * Nothing that the loop, the kernel or another task reaches while it waits may
 * live on its stack, since those bytes may be someone else's by then. Its task
 * frame lives in this side block (t->stack points just past `frame`, so
 * corio__frame works unchanged), and so does the record of the one suspension
 * it can be in (corio__record); what does not fit goes to the heap. Scopes on
 * its stack are forwarded to the heap (cancel.c). I/O that would wait, whose
 * record and buffer the kernel or a worker would reach, refuses a compact task
 * with -ENOTSUP before it does anything (corio__compact_refuse). */
#define CORIO__RECORD_BYTES 128

typedef struct corio__compact {
    char *image;               /* its frames, while evicted */
    uint32_t image_len, image_cap;
    _Alignas(16) char record[CORIO__RECORD_BYTES];
    corio__task_frame frame;   /* last: t->stack == (char *)(&frame + 1) */
} corio__compact;

static inline corio__compact *corio__compact_of(const corio_task *t)
{
    return (corio__compact *)(void *)(t->stack - offsetof(corio__compact, frame) -
                                      sizeof(corio__task_frame));
}

/* Where a suspension's record lives: the caller's local for a task with its
 * own stack, the side block for a compact one (size <= CORIO__RECORD_BYTES,
 * one suspension at a time). */
static inline void *corio__record(corio_task *self, void *local)
{
    if (__builtin_expect(self->flags & CORIO__TF_COMPACT, 0))
        return corio__compact_of(self)->record;
    return local;
}

/* -ENOTSUP for a compact task (I/O that would wait), 0 otherwise. */
static inline int corio__compact_refuse(const corio_task *self)
{
    return __builtin_expect(self->flags & CORIO__TF_COMPACT, 0) ? -ENOTSUP : 0;
}

/* ---- Scopes (cancel.c, group.c): timeouts, shields, task groups -----------------
 * A task's scopes form a chain from the innermost outwards, held in its
 * frame. A suspension is interrupted when, walking outwards, it meets a
 * cancelled (expired, aborted) scope before any shield, or reaches the end of
 * the chain with the task itself cancelled; the outermost such cause is
 * credited with the interruption. */
enum { CORIO__SCOPE_TIMEOUT = 1, CORIO__SCOPE_SHIELD, CORIO__SCOPE_GROUP };

struct corio__scope {
    corio__scope *outer;
    corio_task *task;          /* the task whose code it brackets */
    corio__timer timer;        /* armed while a timeout scope has a deadline */
    uint32_t magic;            /* CORIO__SCOPE_MAGIC from begin to end */
    uint8_t kind;
    bool cancelled;            /* expired, or the group aborted */
    bool hit;                  /* its cancel interrupted a suspension */
    bool in_chain;
};

#define CORIO__SCOPE_MAGIC 0x5C09E5C0u

/* Deferred calls, run at the start of a turn outside any task (asyncio's
 * call_soon): done callbacks. */
typedef struct corio__soon corio__soon;
struct corio__soon {
    corio__soon *next;
    void (*run)(corio_loop *l, corio__soon *s);
};

/* Someone waiting for a task to end: a plain await wakes its task; gather
 * counts. Lives on the waiter's stack. */
struct corio__awaiter {
    corio__awaiter *next;
    corio_task *target;
    void (*done)(corio__awaiter *a);
    corio__wait *wait;
};

#define CORIO__TASK_SLAB_BYTES ((size_t)64 * 1024)

typedef struct corio__task_slab {
    corio_loop *loop;
    struct corio__task_slab *next;
    char pad[48];              /* tasks start 64-byte aligned */
    corio_task tasks[];
} corio__task_slab;

#define CORIO__MAX_STACK_CLASSES 16

/* ---- The loop ----------------------------------------------------------------- */
/* Immediate I/O completions a task may make in one dispatch before it
 * yields (io.c; Tokio's coop budget is 128 too). */
#define CORIO__IO_BUDGET 128

enum { CORIO__LOOP_IDLE, CORIO__LOOP_RUNNING, CORIO__LOOP_CLOSED };

struct corio_loop {
    corio_task *current;       /* running task; NULL while the scheduler runs */
    void *sched_sp;            /* the scheduler's context (the thread's stack) */
    corio_task *ready_head, *ready_tail;
    size_t ready_count;
    corio__soon *soon_head, *soon_tail; /* deferred calls for the next turn */
    size_t turn_left;          /* dispatches left in this turn's snapshot */
    uint32_t since_poll;       /* dispatches since the poller last looked */
    uint32_t io_streak;        /* I/O calls the running task completed without suspending */
    bool stopping;             /* the run's main task ended: finish the turn, return */
    int state;
    int clock;                 /* CORIO_CLOCK_REAL or CORIO_CLOCK_VIRTUAL */
    int64_t vnow;              /* virtual time */
    corio_task *main;
    size_t live;               /* tasks not yet ended */
    corio__timers timers;
    corio__poller poller;
    corio__stack_pool stacks[CORIO__MAX_STACK_CLASSES];
    int nstack_classes;
    uint8_t default_class;
    corio__mem mem;            /* task slabs, compact side blocks and images */
    corio__task_slab *slabs;
    corio_task *free_tasks;
    corio_task *carve, *carve_end;
    void *sched_stack_lo;      /* for sanitizer fiber annotations */
    size_t sched_stack_size;
    corio_task *overflowed;    /* set just before jumping to the scheduler to report */
    char *shared_top;          /* compact tasks' shared stack (default class), once needed */
    corio_task *resident;      /* the compact task whose frames are on it, if any */
    corio_task *handoff;       /* a compact task the scheduler must bring in and run next */
    void *altstack;            /* the SIGSEGV handler's stack, if this loop made it */
    /* other threads' posts (corio__post): the one lock in the loop */
    pthread_mutex_t remote_lock;
    corio__soon *remote_head, *remote_tail;
    size_t remote_expected;    /* remote_begin without remote_end yet (loop thread only) */
};

/* The top of the stack a started task runs on: its own, or the shared one. */
static inline char *corio__stack_top(const corio_loop *l, const corio_task *t)
{
    if (__builtin_expect(t->flags & CORIO__TF_COMPACT, 0))
        return l->shared_top;
    return t->stack;
}

/* Whether p lies on the shared stack of compact task `self`'s loop. */
static inline bool corio__on_shared_stack(const corio_loop *l, const corio_task *self,
                                          const void *p)
{
    const char *top = l->shared_top, *lo = top - l->stacks[self->stack_class].size;
    return (const char *)p >= lo && (const char *)p < top;
}

/* -ENOTSUP if `self` is compact and p lies on the shared stack: an object the
 * loop reaches while its task waits (a scope, a group) cannot live there. */
static inline int corio__compact_refuse_object(const corio_loop *l, const corio_task *self,
                                               const void *p)
{
    if (__builtin_expect(!(self->flags & CORIO__TF_COMPACT), 1))
        return 0;
    return corio__on_shared_stack(l, self, p) ? -ENOTSUP : 0;
}

/* Test hook: called at every suspension (after the wait is set up, before
 * the task switches away) and at every yield (w NULL). Tests use it to
 * cancel or expire scopes at each suspension point in turn. */
typedef void corio__suspend_hook_fn(corio_loop *l, corio_task *t, corio__wait *w);
extern corio__suspend_hook_fn *corio__suspend_hook __attribute__((visibility("hidden")));

/* What corio_loop_close found before it freed everything (for leak tests). */
typedef struct corio__close_stats {
    size_t live_tasks, stacks_in_use, timers, soon;
    unsigned long closes;
} corio__close_stats;
extern corio__close_stats corio__last_close __attribute__((visibility("hidden")));

/* loop.c */
void corio__soon_push(corio_loop *l, corio__soon *s);
/* Cross-thread handoff (the worker pool). The loop's thread calls
 * corio__remote_begin before it hands work to another thread: the loop then
 * counts as busy (it blocks in the poller instead of reporting a deadlock,
 * and its close waits). The other thread, once done, calls corio__post (the
 * only thread-safe call here); s->run then runs on the loop's thread at the
 * start of a turn, outside any task, and must call corio__remote_end. */
void corio__remote_begin(corio_loop *l);
void corio__remote_end(corio_loop *l);
void corio__post(corio_loop *l, corio__soon *s);
/* The loop's side: move what other threads posted to the soon queue (the
 * backends call it when the loop's wake fd fires). */
void corio__remote_drain(corio_loop *l);
extern __thread corio_loop *corio__tls_loop __attribute__((tls_model("initial-exec")));

/* Public calls that may suspend (arch/resuming.h lists them): on x86-64 the
 * public symbol is a stub that returns by jump when the task resumes after
 * another task's call through a stub from elsewhere (arch/resume_x86_64.S),
 * and the C function behind it is corio__impl_NAME. Define such a call, and
 * call it from inside corio, as CORIO__IMPL(name). corio__last_caller: the
 * return address of this thread's latest call into a stub. */
extern __thread uintptr_t corio__last_caller __attribute__((tls_model("initial-exec")));
#if defined(__x86_64__)
#define CORIO__IMPL(name) corio__impl_##name
#define CORIO__DECLARE_IMPL(name) \
    extern __typeof__(name) corio__impl_##name __attribute__((visibility("hidden")));
CORIO__RESUMING_CALLS(CORIO__DECLARE_IMPL)
#else
#define CORIO__IMPL(name) name
#endif
int64_t corio__now(corio_loop *l);
int64_t corio__deadline_in(corio_loop *l, double seconds);
corio_task *corio__pick_next_slow(corio_loop *l);
int corio__stack_class(corio_loop *l, size_t size);

/* task.c */
void corio__switch_away(corio_loop *l, corio_task *self);
bool corio__suspend_interrupted(corio__wait *w);
void corio__credit_interruption(corio_task *self);
void corio__switch_to(corio_loop *l, corio_task *from, corio_task *to);
bool corio__task_prepare(corio_loop *l, corio_task *t);
void corio__task_end_unstarted(corio_loop *l, corio_task *t, int status);
void corio__task_free_all(corio_loop *l);
int corio__task_new(corio_loop *l, corio_task **out, corio_coro_t coro, uint8_t cls);
void corio__task_free_if_unused(corio_loop *l, corio_task *t);
int corio__check_task(corio_loop *l, const corio_task *t);
int corio__check_handle(corio_loop *l, const corio_task *t);
int corio__wait_task(corio_loop *l, corio_task *self, corio_task *t, bool shielded);
void corio__awaiter_unlink(corio__awaiter *a);
void corio__compact_check_record(corio_loop *l, corio_task *self, const corio__wait *w);
void corio__compact_free_all(corio_loop *l);

/* cancel.c */
corio__scope *corio__interrupt_cause(corio_task *t);
void corio__credit(corio__scope *cause);
void corio__deliver_cancel(corio_loop *l, corio_task *t);
int corio__task_cancel(corio_loop *l, corio_task *t, const char *reason);
void corio__cancel_all(corio_loop *l);
void corio__scope_push(corio_task *self, corio__scope *s, int kind);
int corio__scope_pop(corio_loop *l, corio_task *self, corio__scope *s, int kind);
void corio__for_each_live(corio_loop *l, void (*fn)(corio_loop *, corio_task *));

/* debug.c */
__attribute__((noreturn)) void corio__overflow_abort(corio_loop *l, corio_task *t);
void corio__overflow_check_sched(corio_loop *l);
void corio__overflow_guard_install(corio_loop *l);
void corio__overflow_guard_remove(corio_loop *l);
void corio__report_stuck(corio_loop *l);
__attribute__((noreturn)) void corio__scope_leak_abort(corio_loop *l, corio_task *t);

/* ---- the ready queue: an intrusive FIFO, on every hot path, so inline ---- */

static inline void corio__ready_push(corio_loop *l, corio_task *t)
{
    t->next = NULL;
    if (l->ready_tail)
        l->ready_tail->next = t;
    else
        l->ready_head = t;
    l->ready_tail = t;
    l->ready_count++;
}

static inline corio_task *corio__ready_pop(corio_loop *l)
{
    corio_task *t = l->ready_head;
    l->ready_head = t->next;
    if (!l->ready_head)
        l->ready_tail = NULL;
    l->ready_count--;
    return t;
}

/* The next task to run in this turn, or NULL when the scheduler must take
 * over. The common case (the turn goes on, the task was not cancelled before
 * it ever ran) stays inline; the rest is corio__pick_next_slow. */
static inline corio_task *corio__pick_next(corio_loop *l)
{
    /* A new turn with nothing but tasks to run (no timers, no I/O, no
     * deferred calls, not stopping): take the snapshot here, inline. This is
     * every switch of a ping-pong between two tasks. */
    if (l->turn_left == 0 && l->ready_count && !l->stopping && !l->soon_head &&
        corio__timers_empty(&l->timers) && !corio__poller_busy(&l->poller))
        l->turn_left = l->ready_count;
    if (__builtin_expect(l->turn_left != 0, 1)) {
        corio_task *t = l->ready_head;
        if (__builtin_expect(t->state != CORIO__T_NEW || !(t->flags & CORIO__TF_CANCELLED), 1)) {
            corio__ready_pop(l);
            l->turn_left--;
            l->since_poll++;
            l->io_streak = 0;
            return t;
        }
    }
    return corio__pick_next_slow(l);
}

/* The running task and this thread's loop; NULL outside a task. */
static inline corio_task *corio__self(corio_loop **lp)
{
    corio_loop *l = corio__tls_loop;
    *lp = l;
    return l ? l->current : NULL;
}

/* Resolve a wait: its task becomes ready and its suspension returns result. */
static inline void corio__wake(corio_loop *l, corio__wait *w, int result)
{
    w->woken = true;
    w->result = result;
    w->task->state = CORIO__T_READY;
    corio__ready_push(l, w->task);
}

static inline corio_loop *corio__task_loop(const corio_task *t)
{
    return ((corio__task_slab *)((uintptr_t)t & ~(uintptr_t)(CORIO__TASK_SLAB_BYTES - 1)))->loop;
}


/* A cancel (or an expired scope) that a suspension now would hit: credits
 * it and returns -ECANCELED, else 0. For waits that must know before they
 * commit to anything (an SQE handed to the kernel cannot be taken back). */
static inline int corio__interrupt_pending(corio_task *self)
{
    if (__builtin_expect(self->flags & (CORIO__TF_CANCELLED | CORIO__TF_SCOPE_CANCEL), 0)) {
        corio__scope *cause = corio__interrupt_cause(self);
        if (cause) {
            corio__credit(cause);
            return -ECANCELED;
        }
    }
    return 0;
}

/* ---- the suspension: inline, since every blocking call in every module is
 * built on it (the slow halves are in task.c) ---- */
static inline __attribute__((always_inline)) int corio__suspend_as(corio_loop *l, corio_task *self,
                                                                  corio__wait *w, bool io)
{
    w->task = self;
    w->woken = false;
    w->interrupted = false;
    w->io = io;
    w->result = 0;
    if (__builtin_expect(self->flags & (CORIO__TF_CANCELLED | CORIO__TF_SCOPE_CANCEL |
                                        CORIO__TF_COMPACT), 0)) {
        if (self->flags & CORIO__TF_COMPACT)
            corio__compact_check_record(l, self, w); /* a call that missed its refusal: abort */
        /* (I/O waits check with corio__interrupt_pending before they commit) */
        if (!io && (self->flags & (CORIO__TF_CANCELLED | CORIO__TF_SCOPE_CANCEL)) && w->cancel &&
            corio__suspend_interrupted(w))
            return -ECANCELED; /* level-triggered: a cancelled task does not wait */
    }
    self->wait = w;
    self->state = CORIO__T_WAITING;
    if (__builtin_expect(corio__suspend_hook != NULL, 0))
        corio__suspend_hook(l, self, w);
    corio__switch_away(l, self);
    self->wait = NULL;
    if (__builtin_expect(w->interrupted, 0))
        corio__credit_interruption(self); /* to the outermost cause visible now */
    return w->result;
}

static inline __attribute__((always_inline)) int corio__suspend(corio_loop *l, corio_task *self,
                                                               corio__wait *w)
{
    return corio__suspend_as(l, self, w, false);
}

#endif
