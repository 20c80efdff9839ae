/* group.c - waiting on several tasks: gather, wait, as_completed, and task
 * groups (structured concurrency).
 *
 * Each of them hangs an awaiter on every task it watches; the task's end
 * calls the awaiter's `done`, which does the bookkeeping and wakes the
 * waiting task when its condition is met. The awaiters live on the waiter's
 * stack (gather, wait), in a heap block (as_completed) or in chunks owned by
 * the group, and are unlinked from tasks still running when the wait ends,
 * whichever way it ends. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#define container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* Check n handles the caller may wait on. */
static int check_handles(corio_loop *l, corio_task *self, corio_task *const *tasks, size_t n)
{
    if (n && !tasks)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int rc = corio__check_handle(l, tasks[i]);
        if (rc < 0)
            return rc;
        if (tasks[i] == self)
            return -EDEADLK;
    }
    return 0;
}

static void link_awaiter(corio__awaiter *a, corio_task *t)
{
    a->next = t->awaiters;
    t->awaiters = a;
}

/* Unlink the awaiters whose task has not ended (an ended task already
 * dropped its list). */
static void unlink_pending(corio__awaiter *as, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (as[i].target && as[i].target->state != CORIO__T_DONE)
            corio__awaiter_unlink(&as[i]);
}

/* Cancel the tasks, then wait (uninterruptibly: we may be cancelled
 * ourselves) until every one has ended. */
static void cancel_and_reap(corio_loop *l, corio_task *self, corio_task *const *tasks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        corio__task_cancel(l, tasks[i], NULL);
    for (size_t i = 0; i < n; i++)
        corio__wait_task(l, self, tasks[i], true);
}

/* ---- gather ------------------------------------------------------------------------------ */

typedef struct gather_wait {
    corio__wait w;
    corio__awaiter *as;
    size_t n, left;
    int first_error;
} gather_wait;
_Static_assert(sizeof(gather_wait) <= CORIO__RECORD_BYTES, "a compact task's record holds a gather");

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
    unlink_pending(g->as, g->n);
}

static int gather_tasks(corio_task *const *tasks, size_t n, void **results, int *statuses)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!self)
        return -EPERM;
    int rc = check_handles(l, self, tasks, n);
    if (rc < 0)
        return rc;
    /* the awaiters and the record stay off a compact task's stack (internal.h) */
    bool on_heap = n > 8 || (self->flags & CORIO__TF_COMPACT);
    corio__awaiter small[8], *as = on_heap ? calloc(n ? n : 1, sizeof *as) : small;
    if (!as)
        return -ENOMEM;
    gather_wait local, *g = corio__record(self, &local);
    *g = (gather_wait){.w = {.cancel = gather_cancel, .what = "gather"}, .as = as, .n = n};
    for (size_t i = 0; i < n; i++) {
        as[i] = (corio__awaiter){.target = tasks[i], .done = gather_done, .wait = &g->w};
        if (tasks[i]->state != CORIO__T_DONE) {
            link_awaiter(&as[i], tasks[i]);
            g->left++;
        } else if (tasks[i]->status < 0 && g->first_error == 0) {
            g->first_error = tasks[i]->status;
        }
    }
    rc = g->left ? corio__suspend(l, self, &g->w) : 0;
    int first_error = g->first_error; /* (the record is reused by the reaps below) */
    if (rc == -ECANCELED) /* asyncio: cancelling gather cancels its children */
        cancel_and_reap(l, self, tasks, n);
    if (as != small)
        free(as);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (results)
            results[i] = tasks[i]->value;
        if (statuses)
            statuses[i] = tasks[i]->status;
    }
    return statuses ? 0 : first_error;
}

int corio_gather_tasks(corio_task *const *tasks, size_t n, void **results)
{
    return gather_tasks(tasks, n, results, NULL);
}

int corio_gather_tasks_status(corio_task *const *tasks, size_t n, void **results,
                              int *statuses)
{
    if (n && !statuses)
        return -EINVAL;
    return gather_tasks(tasks, n, results, statuses);
}

static int gather_coros(const corio_coro_t *coros, size_t n, void **results, int *statuses)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
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
        rc = gather_tasks(ts, n, results, statuses);
    for (size_t i = 0; i < made; i++)
        corio_task_release(ts[i]);
    if (ts != small)
        free(ts);
    return rc;
}

int corio_gather(const corio_coro_t *coros, size_t n, void **results)
{
    return gather_coros(coros, n, results, NULL);
}

int corio_gather_status(const corio_coro_t *coros, size_t n, void **results, int *statuses)
{
    if (n && !statuses)
        return -EINVAL;
    return gather_coros(coros, n, results, statuses);
}

/* ---- wait ------------------------------------------------------------------------------------ */

typedef struct waitn_wait {
    corio__wait w;
    corio__timer timer;
    corio__awaiter *as;
    size_t n, done;
    int mode;
    bool failed;
} waitn_wait;
_Static_assert(sizeof(waitn_wait) <= CORIO__RECORD_BYTES, "a compact task's record holds a wait");

static bool waitn_met(const waitn_wait *wn)
{
    switch (wn->mode) {
    case CORIO_FIRST_COMPLETED:
        return wn->done > 0;
    case CORIO_FIRST_EXCEPTION:
        return wn->failed || wn->done == wn->n;
    default:
        return wn->done == wn->n;
    }
}

static void waitn_done(corio__awaiter *a)
{
    waitn_wait *wn = container_of(a->wait, waitn_wait, w);
    wn->done++;
    if (a->target->status < 0)
        wn->failed = true;
    if (!wn->w.woken && waitn_met(wn)) {
        corio_loop *l = corio__tls_loop;
        corio__timers_remove(&l->timers, &wn->timer);
        corio__wake(l, &wn->w, 0);
    }
}

static void waitn_fire(corio__timer *tm)
{
    waitn_wait *wn = container_of(tm, waitn_wait, timer);
    corio__wake(corio__tls_loop, &wn->w, -ETIMEDOUT);
}

static void waitn_cancel(corio__wait *w)
{
    corio__timers_remove(&corio__tls_loop->timers, &container_of(w, waitn_wait, w)->timer);
}

int corio_wait(corio_task *const *tasks, size_t n, int mode, double timeout)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!self)
        return -EPERM;
    if (n == 0 || isnan(timeout) ||
        (mode != CORIO_FIRST_COMPLETED && mode != CORIO_FIRST_EXCEPTION && mode != CORIO_ALL_COMPLETED))
        return -EINVAL;
    int rc = check_handles(l, self, tasks, n);
    if (rc < 0)
        return rc;
    waitn_wait wn = {.w = {.cancel = waitn_cancel, .what = "corio_wait"}, .n = n, .mode = mode};
    for (size_t i = 0; i < n; i++)
        if (tasks[i]->state == CORIO__T_DONE) {
            wn.done++;
            wn.failed |= tasks[i]->status < 0;
        }
    int64_t deadline = corio__deadline_in(l, timeout);
    if (waitn_met(&wn) || deadline <= corio__now(l))
        return (int)wn.done; /* nothing to wait for, or a zero timeout: a poll */
    /* the awaiters, timer and record stay off a compact task's stack (internal.h) */
    bool on_heap = n > 8 || (self->flags & CORIO__TF_COMPACT);
    corio__awaiter small[8], *as = on_heap ? calloc(n, sizeof *as) : small;
    if (!as)
        return -ENOMEM;
    waitn_wait *w = corio__record(self, &wn);
    if (w != &wn)
        *w = wn;
    w->as = as;
    for (size_t i = 0; i < n; i++) {
        as[i] = (corio__awaiter){.wait = &w->w, .done = waitn_done};
        if (tasks[i]->state != CORIO__T_DONE) {
            as[i].target = tasks[i];
            link_awaiter(&as[i], tasks[i]);
        }
    }
    rc = 0;
    if (deadline != INT64_MAX)
        rc = corio__timers_add(&l->timers, &w->timer, deadline, waitn_fire);
    if (rc == 0)
        rc = corio__suspend(l, self, &w->w);
    unlink_pending(as, n);
    corio__timers_remove(&l->timers, &w->timer);
    if (as != small)
        free(as);
    if (rc == -ECANCELED || rc == -ENOMEM)
        return rc;
    return (int)w->done;
}

/* ---- as_completed ------------------------------------------------------------------------ */

typedef struct as_completed {
    corio_loop *loop;
    corio_task *owner;
    corio__wait *waiting;    /* the owner's wait in next(), while it waits */
    corio__timer timer;      /* the overall deadline, armed while waiting */
    int64_t deadline;
    size_t n, handed, head, tail;
    corio_task **ready;      /* ended, not yet handed out: a FIFO of n slots */
    struct ac_node {
        corio__awaiter a;    /* target NULL once it ended (or if it had at begin) */
        struct as_completed *ac;
    } nodes[];
} as_completed;

typedef struct ac_wait {
    corio__wait w;
    as_completed *ac;
} ac_wait;

static void ac_ended(corio__awaiter *a)
{
    as_completed *ac = container_of(a, struct ac_node, a)->ac;
    ac->ready[ac->tail++ % ac->n] = a->target;
    a->target = NULL; /* nothing to unlink any more */
    if (ac->waiting && !ac->waiting->woken) {
        corio__timers_remove(&ac->loop->timers, &ac->timer);
        corio__wake(ac->loop, ac->waiting, 0);
    }
}

static void ac_fire(corio__timer *tm)
{
    as_completed *ac = container_of(tm, as_completed, timer);
    if (ac->waiting && !ac->waiting->woken)
        corio__wake(ac->loop, ac->waiting, -ETIMEDOUT);
}

static void ac_cancel(corio__wait *w)
{
    as_completed *ac = container_of(w, ac_wait, w)->ac;
    corio__timers_remove(&ac->loop->timers, &ac->timer);
}

int corio_as_completed_begin(corio_as_completed *pac, corio_task *const *tasks, size_t n,
                             double timeout)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!pac)
        return -EINVAL;
    pac->impl_ = NULL;
    if (!self)
        return -EPERM;
    if (n == 0 || isnan(timeout))
        return -EINVAL;
    int rc = check_handles(l, self, tasks, n);
    if (rc < 0)
        return rc;
    as_completed *ac = calloc(1, sizeof *ac + n * sizeof(struct ac_node) + n * sizeof(corio_task *));
    if (!ac)
        return -ENOMEM;
    ac->loop = l;
    ac->owner = self;
    ac->n = n;
    ac->deadline = corio__deadline_in(l, timeout);
    ac->ready = (corio_task **)(void *)&ac->nodes[n];
    for (size_t i = 0; i < n; i++) {
        if (tasks[i]->state == CORIO__T_DONE) {
            ac->ready[ac->tail++] = tasks[i]; /* ended already: first, in array order */
            continue;
        }
        ac->nodes[i] = (struct ac_node){.a = {.target = tasks[i], .done = ac_ended}, .ac = ac};
        link_awaiter(&ac->nodes[i].a, tasks[i]);
    }
    pac->impl_ = ac;
    return 0;
}

int corio_as_completed_next(corio_as_completed *pac, corio_task **out)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!pac || !pac->impl_ || !out)
        return -EINVAL;
    as_completed *ac = pac->impl_;
    if (!self)
        return -EPERM;
    if (ac->owner != self)
        return -EINVAL;
    for (;;) {
        if (ac->handed == ac->n)
            return 0;
        if (ac->head != ac->tail) {
            *out = ac->ready[ac->head++ % ac->n];
            ac->handed++;
            return 1;
        }
        if (ac->deadline <= corio__now(l))
            return -ETIMEDOUT;
        ac_wait local, *aw = corio__record(self, &local);
        *aw = (ac_wait){.w = {.cancel = ac_cancel, .what = "as_completed"}, .ac = ac};
        int rc = 0;
        if (ac->deadline != INT64_MAX)
            rc = corio__timers_add(&l->timers, &ac->timer, ac->deadline, ac_fire);
        if (rc < 0)
            return rc;
        ac->waiting = &aw->w;
        rc = corio__suspend(l, self, &aw->w);
        ac->waiting = NULL;
        corio__timers_remove(&l->timers, &ac->timer);
        if (rc < 0)
            return rc; /* -ECANCELED or -ETIMEDOUT; an ended task stays queued */
    }
}

int corio_as_completed_end(corio_as_completed *pac)
{
    if (!pac)
        return -EINVAL;
    as_completed *ac = pac->impl_;
    if (!ac)
        return 0;
    for (size_t i = 0; i < ac->n; i++)
        if (ac->nodes[i].a.target)
            corio__awaiter_unlink(&ac->nodes[i].a);
    free(ac);
    pac->impl_ = NULL;
    return 0;
}

/* ---- task groups ---------------------------------------------------------------------------- */

/* One per running child, in chunks the group owns until its end. An ended
 * child's slot goes on the group's free list for the next spawn, so a
 * long-lived group (a server's) holds slots for its peak, not its total. */
typedef struct group_child {
    corio__awaiter a;          /* target NULL once the child has ended */
    struct taskgroup *g;
    struct group_child *next_free;
} group_child;

#define CHILDREN_PER_CHUNK 32

typedef struct child_chunk {
    struct child_chunk *next;
    size_t used;
    group_child c[CHILDREN_PER_CHUNK];
} child_chunk;

typedef struct taskgroup {
    corio__scope scope;        /* the body's scope: cancelled when the group aborts */
    corio_loop *loop;
    corio__wait *waiting;      /* end's wait, while it waits for the children */
    child_chunk *chunks;
    group_child *free_slots;   /* ended children's slots */
    size_t live;               /* children not yet ended */
    int nfailed;
    int first_error;
    bool ended;
} taskgroup;

_Static_assert(sizeof(taskgroup) <= sizeof(corio_taskgroup), "corio_taskgroup too small");

static taskgroup *group_of(corio_taskgroup *g)
{
    return (taskgroup *)(void *)g->opaque_;
}

static bool group_live(const taskgroup *g)
{
    return g->scope.magic == CORIO__SCOPE_MAGIC && g->scope.kind == CORIO__SCOPE_GROUP && !g->ended;
}

/* Cancel every child still running. */
static void group_cancel_children(taskgroup *g)
{
    for (child_chunk *ch = g->chunks; ch; ch = ch->next)
        for (size_t i = 0; i < ch->used; i++)
            if (ch->c[i].a.target)
                corio__task_cancel(g->loop, ch->c[i].a.target, NULL);
}

/* The first failure: cancel the children and the body. */
static void group_abort(taskgroup *g)
{
    if (g->scope.cancelled)
        return;
    g->scope.cancelled = true;
    if (g->scope.in_chain) {
        g->scope.task->flags |= CORIO__TF_SCOPE_CANCEL;
        corio__deliver_cancel(g->loop, g->scope.task);
    }
    group_cancel_children(g);
}

static void child_ended(corio__awaiter *a)
{
    group_child *c = container_of(a, group_child, a);
    taskgroup *g = c->g;
    int status = a->target->status;
    a->target = NULL;
    c->next_free = g->free_slots;
    g->free_slots = c;
    g->live--;
    if (status < 0 && status != -ECANCELED) {
        g->nfailed++;
        if (g->first_error == 0)
            g->first_error = status;
        group_abort(g);
    }
    if (g->live == 0 && g->waiting && !g->waiting->woken)
        corio__wake(g->loop, g->waiting, 0);
}

int corio_taskgroup_begin(corio_taskgroup *pg)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!pg)
        return -EINVAL;
    if (!self)
        return -EPERM;
    int rc = corio__compact_refuse_object(l, self, pg);
    if (rc < 0)
        return rc; /* its children and the loop reach it while the task waits */
    taskgroup *g = group_of(pg);
    *g = (taskgroup){.loop = l};
    g->scope.timer.deadline = CORIO_NO_DEADLINE;
    corio__scope_push(self, &g->scope, CORIO__SCOPE_GROUP);
    return 0;
}

int corio_taskgroup_spawn(corio_taskgroup *pg, corio_coro_t coro, corio_task **out)
{
    corio_loop *l = corio__tls_loop;
    if (!pg || !coro.fn)
        return -EINVAL;
    taskgroup *g = group_of(pg);
    if (!group_live(g))
        return -EINVAL;
    if (!l || g->loop != l)
        return l ? -EXDEV : -EPERM;
    if (g->scope.cancelled)
        return -ECANCELED; /* asyncio: the group is shutting down */
    child_chunk *ch = g->chunks;
    if (!g->free_slots && (!ch || ch->used == CHILDREN_PER_CHUNK)) {
        ch = malloc(sizeof *ch);
        if (!ch)
            return -ENOMEM;
        ch->used = 0;
        ch->next = g->chunks;
        g->chunks = ch;
    }
    corio_task *t;
    int rc = corio_task_create(&t, coro, NULL);
    if (rc < 0)
        return rc;
    group_child *c = g->free_slots;
    if (c)
        g->free_slots = c->next_free;
    else
        c = &ch->c[ch->used++];
    *c = (group_child){.a = {.target = t, .done = child_ended}, .g = g};
    link_awaiter(&c->a, t);
    g->live++;
    if (out)
        *out = t;
    else
        t->flags |= CORIO__TF_RELEASED;
    return 0;
}

/* end's wait holds nothing to undo: the group just stops counting on it */
static void group_wait_cancel(corio__wait *w)
{
    (void)w;
}

int corio_taskgroup_end(corio_taskgroup *pg, int body_status)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!pg)
        return -EINVAL;
    if (!self)
        return -EPERM;
    taskgroup *g = group_of(pg);
    if (!group_live(g))
        return -EINVAL;
    bool group_caused = g->scope.cancelled; /* the body's -ECANCELED may be ours */
    int rc = corio__scope_pop(l, self, &g->scope, CORIO__SCOPE_GROUP);
    if (rc < 0)
        return rc;
    g->scope.magic = CORIO__SCOPE_MAGIC; /* out of the chain, but children may still spawn */
    bool cancelled = false;
    if (body_status < 0) {
        if (body_status != -ECANCELED && g->first_error == 0)
            g->first_error = body_status; /* reported, though the body is not a child */
        if (body_status == -ECANCELED && !group_caused)
            cancelled = true; /* cancelled from outside */
        g->scope.cancelled = true; /* no more spawns */
        group_cancel_children(g);
    }
    while (g->live > 0) {
        /* interruptible by what is outside the group; once interrupted, the
         * children are cancelled and we wait for them regardless */
        corio__wait local, *w = corio__record(self, &local);
        *w = (corio__wait){.cancel = cancelled ? NULL : group_wait_cancel,
                           .what = "a task group's children"};
        g->waiting = w;
        rc = corio__suspend(l, self, w);
        g->waiting = NULL;
        if (rc == -ECANCELED && !cancelled) {
            cancelled = true;
            g->scope.cancelled = true;
            group_cancel_children(g);
        }
    }
    g->ended = true;
    g->scope.magic = 0;
    for (child_chunk *ch = g->chunks, *next; ch; ch = next) {
        next = ch->next;
        free(ch);
    }
    g->chunks = NULL;
    if (g->first_error)
        return g->first_error;
    return cancelled ? -ECANCELED : 0;
}

int corio_taskgroup_failed(const corio_taskgroup *pg)
{
    if (!pg)
        return -EINVAL;
    const taskgroup *g = (const taskgroup *)(const void *)pg->opaque_;
    if (g->scope.kind != CORIO__SCOPE_GROUP)
        return -EINVAL;
    return g->nfailed;
}
