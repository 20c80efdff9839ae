/* cancel.c - cancellation: task cancels, scopes (timeouts and shields), and
 * wait_for, all on the suspension primitive of task.c.
 *
 * Two kinds of cause cancel a suspension: a cancel of the task (for good:
 * level-triggered until it ends) and a cancelled scope around the code that
 * suspends (an expired timeout, an aborting task group: only until that
 * scope ends). A shield scope hides every cause outside it. When a cause
 * appears, corio__deliver_cancel interrupts the task's pending suspension;
 * every later suspension checks for a cause before it waits
 * (corio__suspend). The interruption is credited, when the task resumes, to
 * the outermost visible cause, which is the one whose end reports it: a timeout scope's end then
 * returns -ETIMEDOUT. See docs/cancellation.md. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#define container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

_Static_assert(sizeof(corio__scope) <= sizeof(corio_scope), "corio_scope too small");
_Static_assert(_Alignof(corio__scope) <= _Alignof(corio_scope), "corio_scope misaligned");

/* Stands for "the task itself was cancelled" among the causes. */
static corio__scope task_cause;

/* ---- causes ------------------------------------------------------------------------ */

corio__scope *corio__interrupt_cause(corio_task *t)
{
    corio__scope *found = NULL;
    if (t->stack)
        for (corio__scope *s = corio__frame(t)->scopes; s; s = s->outer) {
            if (s->kind == CORIO__SCOPE_SHIELD)
                return found; /* nothing outside a shield gets in */
            if (s->cancelled)
                found = s;
        }
    if (t->flags & CORIO__TF_CANCELLED)
        return &task_cause;
    return found;
}

void corio__credit(corio__scope *cause)
{
    if (cause != &task_cause)
        cause->hit = true;
}

/* A cause has just appeared for t: interrupt the suspension it is in, if any
 * and if the cause reaches it. A task that is running or ready (yielded)
 * meets the cause at its next suspension. */
void corio__deliver_cancel(corio_loop *l, corio_task *t)
{
    corio__wait *w = t->wait;
    if (!w || !w->cancel || w->interrupted)
        return; /* not suspended, uninterruptible, or already interrupted */
    if (!corio__interrupt_cause(t))
        return;
    if (w->io) {
        /* I/O: a completed operation's result stands (the cancel hits the
         * next suspension); else the backend stops it, and wakes the task
         * with -ECANCELED once the kernel has let go of its buffer */
        if (!w->woken) {
            w->interrupted = true;
            w->cancel(w);
        }
        return;
    }
    w->interrupted = true; /* credited when it resumes (corio__suspend): by then a
                              cause further out may have appeared at the same instant */
    if (!w->woken) {
        w->cancel(w);
        corio__wake(l, w, -ECANCELED);
    } else {
        /* woken but not yet resumed: it still reports the cancel, and the
         * wakeup it was handed goes to the next waiter */
        if (w->pass_on)
            w->pass_on(w); /* it may look at what it was woken with */
        w->result = -ECANCELED;
    }
}

/* ---- task cancel -------------------------------------------------------------------- */

/* Where the reason is kept: on the stack's frame while the task has a stack,
 * in the unused sp before it starts and after it ends. */
static const char **reason_slot(const corio_task *t)
{
    return t->stack ? &corio__frame(t)->reason : (const char **)(void *)&t->sp;
}

int corio__task_cancel(corio_loop *l, corio_task *t, const char *reason)
{
    if (t->state == CORIO__T_DONE || (t->flags & CORIO__TF_CANCELLED))
        return 0;
    t->flags |= CORIO__TF_CANCELLED;
    if (reason)
        *reason_slot(t) = reason;
    corio__deliver_cancel(l, t);
    return 1;
}

int corio_cancel_with(corio_task *t, const char *reason)
{
    corio_loop *l = corio__tls_loop;
    int rc = corio__check_task(l, t);
    return rc < 0 ? rc : corio__task_cancel(l, t, reason);
}

int corio_cancel(corio_task *t)
{
    return corio_cancel_with(t, NULL);
}

const char *corio_cancel_reason(const corio_task *t)
{
    if (!t || t->state == CORIO__T_FREE || !(t->flags & CORIO__TF_CANCELLED))
        return NULL;
    return *reason_slot(t);
}

int corio_task_cancelled(const corio_task *t)
{
    if (!t || t->state == CORIO__T_FREE)
        return -EINVAL;
    return (t->flags & CORIO__TF_CANCELLED) != 0;
}

static void cancel_one(corio_loop *l, corio_task *t)
{
    corio__task_cancel(l, t, NULL);
}

void corio__cancel_all(corio_loop *l)
{
    corio__for_each_live(l, cancel_one);
}

/* ---- scopes --------------------------------------------------------------------------- */

/* A compact task's corio_scope on its own stack holds only a forward to the
 * scope's real place on the heap: the loop walks a task's scopes, and fires
 * their timers, while the task is away and its stack holds another's frames.
 * The forward is the scope's shape with magic CORIO__SCOPE_FORWARD and the
 * heap scope in `outer`. */
#define CORIO__SCOPE_FORWARD 0xF02A5C09u

static corio__scope *scope_of(corio_scope *ps)
{
    corio__scope *s = (corio__scope *)(void *)ps->opaque_;
    return __builtin_expect(s->magic == CORIO__SCOPE_FORWARD, 0) ? s->outer : s;
}

static const corio__scope *scope_of_const(const corio_scope *ps)
{
    return scope_of((corio_scope *)(uintptr_t)ps);
}

/* Where a scope being begun lives: in *ps, or (see above) on the heap. NULL:
 * out of memory. */
static corio__scope *scope_place(corio_loop *l, corio_task *self, corio_scope *ps)
{
    corio__scope *s = (corio__scope *)(void *)ps->opaque_;
    if (!corio__compact_refuse_object(l, self, ps))
        return s;
    corio__scope *heap = malloc(sizeof *heap);
    if (heap)
        *s = (corio__scope){.outer = heap, .magic = CORIO__SCOPE_FORWARD};
    return heap;
}

/* A scope that ended (or never began): bring a forwarded one back into *ps,
 * so that what is asked of it afterwards reads the same, and free the heap. */
static void scope_unplace(corio_scope *ps, corio__scope *s)
{
    corio__scope *in_place = (corio__scope *)(void *)ps->opaque_;
    if (s != in_place) {
        *in_place = *s;
        in_place->outer = NULL;
        free(s);
    }
}

static bool scope_live(const corio__scope *s)
{
    return s->magic == CORIO__SCOPE_MAGIC;
}

/* Keep TF_SCOPE_CANCEL equal to "some scope in the chain is cancelled". */
static void scope_flag_update(corio_task *t)
{
    t->flags &= (uint8_t)~CORIO__TF_SCOPE_CANCEL;
    for (corio__scope *s = corio__frame(t)->scopes; s; s = s->outer)
        if (s->cancelled) {
            t->flags |= CORIO__TF_SCOPE_CANCEL;
            return;
        }
}

/* s must be zeroed but for its timer (and cancelled, if it starts so). */
void corio__scope_push(corio_task *self, corio__scope *s, int kind)
{
    corio__task_frame *f = corio__frame(self);
    s->outer = f->scopes;
    s->task = self;
    s->kind = (uint8_t)kind;
    s->magic = CORIO__SCOPE_MAGIC;
    s->in_chain = true;
    f->scopes = s;
    if (s->cancelled)
        self->flags |= CORIO__TF_SCOPE_CANCEL;
}

int corio__scope_pop(corio_loop *l, corio_task *self, corio__scope *s, int kind)
{
    if (!scope_live(s) || s->kind != kind || s->task != self || corio__frame(self)->scopes != s)
        return -EINVAL; /* not begun, already ended, another task's, or not the innermost */
    corio__frame(self)->scopes = s->outer;
    s->in_chain = false;
    s->magic = 0;
    corio__timers_remove(&l->timers, &s->timer);
    scope_flag_update(self);
    return 0;
}

/* The scope's cancel: set it, and interrupt its task if it is suspended. */
static void scope_cancel(corio_loop *l, corio__scope *s)
{
    if (s->cancelled)
        return;
    s->cancelled = true;
    if (s->in_chain) {
        s->task->flags |= CORIO__TF_SCOPE_CANCEL;
        corio__deliver_cancel(l, s->task);
    }
}

static void scope_fire(corio__timer *tm)
{
    scope_cancel(corio__tls_loop, container_of(tm, corio__scope, timer));
}

/* Arm (or, for a deadline already reached, cancel) a timeout scope. */
static int scope_arm(corio_loop *l, corio__scope *s, int64_t deadline)
{
    s->timer.deadline = deadline;
    if (deadline == CORIO_NO_DEADLINE)
        return 0;
    if (deadline <= corio__now(l)) {
        scope_cancel(l, s);
        return 0;
    }
    return corio__timers_add(&l->timers, &s->timer, deadline, scope_fire);
}

int corio_timeout_at_begin(corio_scope *ps, int64_t deadline_ns)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!ps)
        return -EINVAL;
    if (!self)
        return -EPERM;
    corio__scope *s = scope_place(l, self, ps);
    if (!s)
        return -ENOMEM;
    *s = (corio__scope){0};
    if (deadline_ns != CORIO_NO_DEADLINE && deadline_ns <= corio__now(l)) {
        s->cancelled = true; /* expired from the start */
        s->timer.deadline = deadline_ns;
    } else {
        int rc = scope_arm(l, s, deadline_ns);
        if (rc < 0) {
            scope_unplace(ps, s);
            return rc;
        }
    }
    corio__scope_push(self, s, CORIO__SCOPE_TIMEOUT);
    return 0;
}

static int64_t deadline_after(corio_loop *l, int64_t ns)
{
    int64_t now = corio__now(l);
    return ns >= CORIO_NO_DEADLINE - now ? CORIO_NO_DEADLINE : now + ns;
}

int corio_timeout_begin_ns(corio_scope *ps, int64_t ns)
{
    corio_loop *l = corio__tls_loop;
    if (!ps || ns < 0)
        return -EINVAL;
    if (!l || !l->current)
        return -EPERM;
    return corio_timeout_at_begin(ps, deadline_after(l, ns));
}

int corio_timeout_begin(corio_scope *ps, double seconds)
{
    if (!(seconds >= 0))
        return -EINVAL; /* negative or NaN */
    double ns = ceil(seconds * 1e9);
    return corio_timeout_begin_ns(ps, ns >= 9.2e18 ? CORIO_NO_DEADLINE : (int64_t)ns);
}

int corio_shield_begin(corio_scope *ps)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!ps)
        return -EINVAL;
    if (!self)
        return -EPERM;
    corio__scope *s = scope_place(l, self, ps);
    if (!s)
        return -ENOMEM;
    *s = (corio__scope){0};
    s->timer.deadline = CORIO_NO_DEADLINE;
    corio__scope_push(self, s, CORIO__SCOPE_SHIELD);
    return 0;
}

int corio_scope_end(corio_scope *ps)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!ps)
        return -EINVAL;
    if (!self)
        return -EPERM;
    corio__scope *s = scope_of(ps);
    int kind = s->kind;
    if (kind != CORIO__SCOPE_TIMEOUT && kind != CORIO__SCOPE_SHIELD)
        return -EINVAL; /* a task group ends with corio_taskgroup_end */
    int rc = corio__scope_pop(l, self, s, kind);
    if (rc < 0)
        return rc;
    bool hit = s->hit;
    scope_unplace(ps, s);
    if (kind == CORIO__SCOPE_TIMEOUT)
        return hit ? -ETIMEDOUT : 0;
    /* a shield: what it held back is delivered now */
    corio__scope *cause = corio__interrupt_cause(self);
    if (!cause)
        return 0;
    corio__credit(cause);
    return -ECANCELED;
}

/* A running timeout scope of this thread's loop. */
static int check_timeout_scope(const corio_scope *ps)
{
    corio_loop *l = corio__tls_loop;
    if (!ps)
        return -EINVAL;
    const corio__scope *s = scope_of_const(ps);
    if (!scope_live(s) || s->kind != CORIO__SCOPE_TIMEOUT)
        return -EINVAL;
    if (!l || corio__task_loop(s->task) != l)
        return l ? -EXDEV : -EPERM;
    return 0;
}

int corio_scope_reschedule(corio_scope *ps, int64_t deadline_ns)
{
    int rc = check_timeout_scope(ps);
    if (rc < 0)
        return rc;
    corio__scope *s = scope_of(ps);
    if (s->cancelled)
        return -EALREADY;
    corio_loop *l = corio__tls_loop;
    int64_t old_deadline = s->timer.deadline;
    corio__timers_remove(&l->timers, &s->timer);
    rc = scope_arm(l, s, deadline_ns);
    if (rc < 0 && scope_arm(l, s, old_deadline) < 0)
        scope_cancel(l, s); /* cannot keep any deadline: expire rather than never */
    return rc;
}

int64_t corio_scope_deadline(const corio_scope *ps)
{
    if (!ps || !scope_live(scope_of_const(ps)))
        return -EINVAL;
    return scope_of_const(ps)->timer.deadline;
}

int corio_scope_expired(const corio_scope *ps)
{
    if (!ps || !scope_live(scope_of_const(ps)))
        return -EINVAL;
    const corio__scope *s = scope_of_const(ps);
    return s->kind == CORIO__SCOPE_TIMEOUT && s->cancelled;
}

/* ---- wait_for --------------------------------------------------------------------------- */

/* A timeout scope of `seconds`; the caller checked seconds >= 0. */
static int begin_seconds(corio_scope *sc, double seconds)
{
    return isinf(seconds) ? corio_timeout_at_begin(sc, CORIO_NO_DEADLINE)
                          : corio_timeout_begin(sc, seconds);
}

int corio_wait_for_coro(corio_coro_t coro, double seconds, void **result)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!self)
        return -EPERM;
    if (!coro.fn || isnan(seconds))
        return -EINVAL;
    if (seconds < 0)
        return corio_await_coro(coro, result);
    corio_scope sc;
    int rc = begin_seconds(&sc, seconds);
    if (rc < 0)
        return rc;
    rc = corio_await_coro(coro, result);
    int trc = corio_scope_end(&sc);
    return trc == -ETIMEDOUT ? trc : rc;
}

int corio_wait_for_task(corio_task *t, double seconds, void **result)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!self)
        return -EPERM;
    if (isnan(seconds))
        return -EINVAL;
    int rc = corio__check_handle(l, t);
    if (rc < 0)
        return rc;
    if (t == self)
        return -EDEADLK;
    if (seconds < 0)
        seconds = INFINITY; /* no timeout, but a cancelled caller still cancels t */
    corio_scope sc;
    rc = begin_seconds(&sc, seconds);
    if (rc < 0)
        return rc;
    rc = corio__wait_task(l, self, t, false);
    bool ended_first = t->state == CORIO__T_DONE;
    if (rc < 0 && !ended_first) {
        /* timed out or cancelled: asyncio cancels the task and waits for it */
        corio__task_cancel(l, t, NULL);
        corio__wait_task(l, self, t, true);
    }
    int trc = corio_scope_end(&sc);
    if (rc == 0 || t->status != -ECANCELED) {
        /* it ended on its own, possibly just before the cancel landed */
        if (result)
            *result = t->value;
        return t->status;
    }
    return trc == -ETIMEDOUT ? trc : -ECANCELED;
}
