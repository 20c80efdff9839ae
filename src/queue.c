/* queue.c - asyncio's queues (FIFO, LIFO, priority; bounded or not), and
 * select over queue operations.
 *
 * Items are pointers. A put that finds a getter waiting hands the item to it
 * directly (the item never touches the buffer); a get that frees space in a
 * full queue promises the space to the first waiting putter (`reserved`),
 * which puts its item when it resumes. So:
 *  - a getter cancelled after an item was handed to it puts the item back at
 *    the front (pass_on), where the next getter finds it;
 *  - a putter cancelled after space was promised to it gives the space to
 *    the next putter, and its item was never put.
 * Nothing is lost or delivered twice.
 *
 * A plain put or get is a select with one operation: both suspend through
 * the same wait record (qwait), with one waiter per operation, so select's
 * "exactly one completes" rule is the same code as a single get's. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

#define QUEUE_MAGIC 0x0E0E0E01u

typedef struct prio_entry {
    void *item;
    int64_t seq;               /* ties: put order; items given back get negative seqs */
} prio_entry;

typedef struct queue {
    uint32_t magic;
    uint8_t kind;
    bool shut;                 /* shutdown: puts fail; gets fail once empty */
    bool dropping;             /* shut down immediately: items given back are dropped */
    corio_loop *loop;
    corio__waitlist getters, putters, joiners;
    void *buf;                 /* FIFO: ring of void *; LIFO: stack; PRIORITY: heap */
    size_t cap, head, count;
    size_t maxsize;            /* 0: unbounded */
    size_t reserved;           /* space promised to woken putters */
    size_t unfinished;         /* put and not yet task_done */
    size_t ngetters;           /* getters waiting (for buffer room on give-back) */
    corio_cmp_fn *cmp;
    int64_t seq, back_seq;
} queue;
_Static_assert(sizeof(queue) <= sizeof(corio_queue), "corio_queue too small");

#define Q(q) ((queue *)(void *)(q)->opaque_)
#define CQ(q) ((const queue *)(const void *)(q)->opaque_)

/* ---- the buffer ---------------------------------------------------------------------------- */

static size_t elem_size(const queue *q)
{
    return q->kind == CORIO_QUEUE_PRIORITY ? sizeof(prio_entry) : sizeof(void *);
}

/* Room for at least `want` items: grow the buffer. */
static __attribute__((noinline)) int grow(queue *q, size_t want)
{
    size_t cap = q->cap ? q->cap * 2 : 16;
    while (cap < want)
        cap *= 2;
    void *nb = malloc(cap * elem_size(q));
    if (!nb)
        return -ENOMEM;
    if (q->kind == CORIO_QUEUE_FIFO) { /* unwrap the ring */
        void **o = q->buf, **n = nb;
        for (size_t i = 0; i < q->count; i++)
            n[i] = o[(q->head + i) % q->cap];
        q->head = 0;
    } else if (q->count) {
        memcpy(nb, q->buf, q->count * elem_size(q));
    }
    free(q->buf);
    q->buf = nb;
    q->cap = cap;
    return 0;
}

static inline int reserve(queue *q, size_t want)
{
    return want <= q->cap ? 0 : grow(q, want);
}

static bool prio_before(const queue *q, const prio_entry *a, const prio_entry *b)
{
    int c = q->cmp(a->item, b->item);
    return c < 0 || (c == 0 && a->seq < b->seq);
}

static void heap_push(queue *q, void *item, int64_t seq)
{
    prio_entry *h = q->buf, e = {item, seq};
    size_t i = q->count++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!prio_before(q, &e, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = e;
}

static void *heap_pop(queue *q)
{
    prio_entry *h = q->buf;
    void *top = h[0].item;
    prio_entry last = h[--q->count];
    size_t i = 0, n = q->count;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && prio_before(q, &h[c + 1], &h[c]))
            c++;
        if (!prio_before(q, &h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (n)
        h[i] = last;
    return top;
}

/* Store an item (room was reserved). `back`: an item given back by a
 * cancelled getter, which goes where the next get finds it first. */
static void buf_add(queue *q, void *item, bool back)
{
    void **b = q->buf;
    switch (q->kind) {
    case CORIO_QUEUE_FIFO:
        if (back) {
            q->head = (q->head + q->cap - 1) % q->cap;
            b[q->head] = item;
        } else {
            b[(q->head + q->count) % q->cap] = item;
        }
        q->count++;
        break;
    case CORIO_QUEUE_LIFO:
        b[q->count++] = item;
        break;
    default:
        heap_push(q, item, back ? --q->back_seq : q->seq++);
        break;
    }
}

static void *buf_take(queue *q)
{
    void **b = q->buf;
    switch (q->kind) {
    case CORIO_QUEUE_FIFO: {
        void *item = b[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        return item;
    }
    case CORIO_QUEUE_LIFO:
        return b[--q->count];
    default:
        return heap_pop(q);
    }
}

/* ---- the moves ---------------------------------------------------------------------------- */

/* The wait of a put, get or select, on the waiting task's stack. */
typedef struct qwait {
    corio__wait w;
    corio__waiter *won;        /* the waiter a queue resolved */
    corio__waiter *ws;         /* one per operation */
    corio_select_op *ops;      /* NULL for a plain put or get */
    size_t n;
} qwait;

static queue *waiter_queue(const qwait *qw, const corio__waiter *wt);

/* Whether a live waiter is queued: stale ones (a select that already won
 * elsewhere and has not resumed yet) are dropped from the front, so they
 * never make a put or get wait behind nobody. */
static inline bool waiting(corio__waitlist *wl)
{
    corio__waiter *w;
    while ((w = wl->head) && w->wait->woken)
        corio__waitlist_remove(wl, w);
    return w != NULL;
}

static bool room(const queue *q)
{
    return q->maxsize == 0 || q->count + q->reserved < q->maxsize;
}

/* An item enters the queue: to the first waiting getter, else the buffer. */
static inline void deliver(queue *q, void *item, bool back)
{
    corio__waiter *g = corio__waitlist_take(&q->getters);
    if (g) {
        g->item = item;
        *g->won = g;
        corio__wake(q->loop, g->wait, 0);
        return;
    }
    buf_add(q, item, back);
}

/* Space freed: promise it to the first waiting putter. */
static void space_freed(queue *q)
{
    if (!room(q))
        return;
    corio__waiter *p = corio__waitlist_take(&q->putters);
    if (p) {
        q->reserved++;
        *p->won = p;
        corio__wake(q->loop, p->wait, 0);
    }
}

static void wake_joiners(queue *q)
{
    corio__waiter *j;
    while ((j = corio__waitlist_take(&q->joiners)))
        corio__wake(q->loop, j->wait, 0);
}

/* A put that can go ahead now: 0, or -ENOMEM (nothing put). The buffer
 * keeps room for one more item per waiting getter, so that whichever of
 * them is handed an item and then cancelled can give it back (pass_on
 * cannot fail). */
static inline __attribute__((always_inline)) int put_now(queue *q, void *item)
{
    if (reserve(q, q->count + q->ngetters + 1) < 0)
        return -ENOMEM;
    q->unfinished++;
    deliver(q, item, false);
    return 0;
}

static inline void *get_now(queue *q)
{
    void *item = buf_take(q);
    space_freed(q);
    return item;
}

static inline int check_queue(queue *q)
{
    if (q->magic != QUEUE_MAGIC)
        return -EINVAL;
    corio_loop *l = corio__tls_loop;
    if (!q->loop)
        q->loop = l;
    else if (l != q->loop)
        return l ? -EXDEV : -EPERM;
    return 0;
}

/* ---- waiting --------------------------------------------------------------------------- */

static void qwait_unlink(qwait *qw)
{
    if (!qw->ops) { /* a plain put or get: one waiter, usually already unlinked */
        corio__waiter *wt = qw->ws;
        if (wt->linked) {
            queue *q = waiter_queue(qw, wt);
            corio__waitlist_remove(wt->value < 0 ? &q->putters : &q->getters, wt);
        }
        return;
    }
    for (size_t i = 0; i < qw->n; i++) {
        queue *q = waiter_queue(qw, &qw->ws[i]);
        corio__waitlist *wl = qw->ws[i].value < 0 ? &q->putters : &q->getters;
        if (qw->ws[i].linked)
            corio__waitlist_remove(wl, &qw->ws[i]);
    }
}

static void qwait_cancel(corio__wait *w)
{
    qwait_unlink(container_of(w, qwait, w));
}

/* A select's wait: a qwait with a timeout. */
typedef struct select_wait {
    qwait qw;
    corio__timer timer;
} select_wait;
_Static_assert(sizeof(select_wait) <= CORIO__RECORD_BYTES, "a compact task's record holds a select");

static void select_cancel(corio__wait *w)
{
    select_wait *sw = container_of(container_of(w, qwait, w), select_wait, qw);
    qwait_unlink(&sw->qw);
    corio__timers_remove(&corio__tls_loop->timers, &sw->timer);
}

/* Resolved, then cancelled before it resumed: give back what it was given. */
static void qwait_pass_on(corio__wait *w)
{
    qwait *qw = container_of(w, qwait, w);
    corio__waiter *won = qw->won;
    if (!won || w->result != 0)
        return; /* woken by a shutdown or a timeout: nothing was given */
    queue *q = waiter_queue(qw, won);
    qw->won = NULL;
    if (won->value < 0) { /* a putter: the promised space goes to the next one */
        q->reserved--;
        space_freed(q);
    } else if (q->dropping) { /* shut down immediately since: dropped, counted done */
        if (q->unfinished && --q->unfinished == 0)
            wake_joiners(q);
    } else {              /* a getter: the item goes back to the front */
        deliver(q, won->item, true);
    }
}

static void qwait_fire(corio__timer *tm)
{
    qwait *qw = &container_of(tm, select_wait, timer)->qw;
    if (qw->w.woken)
        return; /* a queue resolved it first, in the same turn */
    qwait_unlink(qw);
    corio__wake(corio__tls_loop, &qw->w, -ETIMEDOUT);
}

/* The waiters of a plain put or get keep their queue in a side slot; a
 * select's in its ops. Waiter value: op index for a get, -1 - index for a put. */
typedef struct single {
    qwait qw;
    corio__waiter wt;
    queue *q;
} single;
_Static_assert(sizeof(single) <= CORIO__RECORD_BYTES, "a compact task's record holds a put or get");

static queue *waiter_queue(const qwait *qw, const corio__waiter *wt)
{
    if (!qw->ops)
        return container_of(qw, single, qw)->q;
    size_t i = wt->value < 0 ? (size_t)(-1 - wt->value) : (size_t)wt->value;
    return Q(qw->ops[i].queue);
}

/* Field by field, not `= {...}`: zeroing the whole record on every wait is
 * measurable in a ping-pong (corio__suspend sets the wait's other fields). */
static inline void single_init(single *s, queue *q, const char *what)
{
    s->qw.w.cancel = qwait_cancel;
    s->qw.w.pass_on = qwait_pass_on;
    s->qw.w.what = what;
    s->qw.won = NULL;
    s->qw.ws = &s->wt;
    s->qw.ops = NULL;
    s->qw.n = 1;
    s->q = q;
}

static inline void waiter_link(qwait *qw, corio__waiter *wt, queue *q, bool put, size_t index,
                               void *item)
{
    wt->wait = &qw->w;
    wt->won = &qw->won;
    wt->item = item;
    wt->value = put ? -1 - (int)index : (int)index;
    corio__waitlist_push(put ? &q->putters : &q->getters, wt);
    if (!put)
        q->ngetters++;
}

/* After a resolved wait: the getters' count, the putter's promised space. */
static void waiter_done(queue *q, corio__waiter *wt)
{
    if (wt->value >= 0)
        q->ngetters--;
}

/* ---- put and get ----------------------------------------------------------------------------- */

/* The put and get that need no waiting: 0 done, -EAGAIN (it would have to
 * wait), -ESHUTDOWN, -ENOMEM. put, try_put and select all start here. */
static inline __attribute__((always_inline)) int put_at_once(queue *q, void *item)
{
    if (q->shut)
        return -ESHUTDOWN;
    if (!room(q) || waiting(&q->putters))
        return -EAGAIN; /* full, or others were first */
    return put_now(q, item);
}

static inline __attribute__((always_inline)) int get_at_once(queue *q, void **item)
{
    if (!q->count)
        return q->shut ? -ESHUTDOWN : -EAGAIN;
    void *it = get_now(q);
    if (item)
        *item = it;
    return 0;
}

/* A woken putter puts into the space promised to it: 0, -ESHUTDOWN (shut
 * down since), -ENOMEM. */
static int put_promised(queue *q, void *item)
{
    q->reserved--;
    if (q->shut)
        return -ESHUTDOWN;
    int rc = put_now(q, item);
    space_freed(q); /* the item may have gone straight to a getter: room is left */
    return rc;
}

/* The hot case of a put, a ping-pong's every put: a live getter waits at the
 * head and nothing stands in the way (not shut down, room, no putter ahead,
 * buffer room for a give-back, as put_at_once checks), so the item goes
 * straight to it: put_at_once's outcome without its re-checks and buffer
 * reservation. False: nothing done, take the general path. */
static inline __attribute__((always_inline)) bool put_handoff(queue *q, void *item)
{
    corio__waiter *g = q->getters.head;
    if (!g || g->wait->woken || q->shut || q->putters.head || !room(q) ||
        q->count + q->ngetters + 1 > q->cap)
        return false;
    q->unfinished++;
    deliver(q, item, false); /* to g */
    return true;
}

/* A queue of this loop, called from a task: the checks of every call, in
 * the order that lets the hot paths skip the general ones. */
static inline __attribute__((always_inline)) queue *hot_queue(corio_queue *pq, corio_loop *l)
{
    if (!pq || !l || !l->current)
        return NULL;
    queue *q = Q(pq);
    return q->magic == QUEUE_MAGIC && q->loop == l ? q : NULL;
}

static __attribute__((noinline)) int put_general(corio_queue *pq, void *item);

int CORIO__IMPL(corio_queue_put)(corio_queue *pq, void *item)
{
    corio_loop *l = corio__tls_loop;
    queue *q = hot_queue(pq, l);
    if (__builtin_expect(q != NULL, 1) && put_handoff(q, item))
        return 0;
    return put_general(pq, item);
}

static int put_general(corio_queue *pq, void *item)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!pq)
        return -EINVAL;
    queue *q = Q(pq);
    int rc = check_queue(q);
    if (rc < 0)
        return rc;
    if (!self)
        return -EPERM; /* a call that may suspend, even if this one would not */
    if ((rc = put_at_once(q, item)) != -EAGAIN)
        return rc;
    single local, *s = corio__record(self, &local);
    single_init(s, q, "a queue put");
    waiter_link(&s->qw, &s->wt, q, true, 0, item);
    rc = corio__suspend(l, self, &s->qw.w);
    if (__builtin_expect(s->wt.linked, 0))
        qwait_unlink(&s->qw);
    if (rc < 0)
        return rc; /* -ECANCELED, or -ESHUTDOWN */
    return put_promised(q, item);
}

int corio_queue_try_put(corio_queue *pq, void *item)
{
    if (!pq)
        return -EINVAL;
    queue *q = Q(pq);
    int rc = check_queue(q);
    if (rc < 0)
        return rc;
    return put_at_once(q, item);
}

/* A get that waits, once the buffer is empty, the queue open and the room
 * for a give-back reserved. */
static inline __attribute__((always_inline)) int get_wait(corio_loop *l, corio_task *self,
                                                          queue *q, void **item)
{
    single local, *s = corio__record(self, &local);
    single_init(s, q, "a queue get");
    waiter_link(&s->qw, &s->wt, q, false, 0, NULL);
    int rc = corio__suspend(l, self, &s->qw.w);
    if (__builtin_expect(s->wt.linked, 0))
        qwait_unlink(&s->qw);
    waiter_done(q, &s->wt);
    if (rc < 0)
        return rc;
    if (item)
        *item = s->wt.item;
    return 0;
}

static __attribute__((noinline)) int get_general(corio_queue *pq, void **item)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!pq)
        return -EINVAL;
    queue *q = Q(pq);
    int rc = check_queue(q);
    if (rc < 0)
        return rc;
    if (!self)
        return -EPERM;
    if ((rc = get_at_once(q, item)) != -EAGAIN)
        return rc;
    if (reserve(q, q->count + q->ngetters + 1) < 0)
        return -ENOMEM; /* room to give the item back if this getter is cancelled */
    return get_wait(l, self, q, item);
}

int CORIO__IMPL(corio_queue_get)(corio_queue *pq, void **item)
{
    corio_loop *l = corio__tls_loop;
    queue *q = hot_queue(pq, l);
    /* The hot case, a ping-pong's every get: empty, open, room reserved */
    if (__builtin_expect(q != NULL, 1) && q->count == 0 && !q->shut &&
        q->count + q->ngetters + 1 <= q->cap)
        return get_wait(l, l->current, q, item);
    return get_general(pq, item);
}

int corio_queue_try_get(corio_queue *pq, void **item)
{
    if (!pq)
        return -EINVAL;
    queue *q = Q(pq);
    int rc = check_queue(q);
    if (rc < 0)
        return rc;
    return get_at_once(q, item);
}

/* ---- the rest of the queue -------------------------------------------------------------------- */

int corio_queue_init(corio_queue *pq, int kind, size_t maxsize, corio_cmp_fn *cmp)
{
    if (!pq || kind < CORIO_QUEUE_FIFO || kind > CORIO_QUEUE_PRIORITY ||
        (kind == CORIO_QUEUE_PRIORITY && !cmp))
        return -EINVAL;
    queue *q = Q(pq);
    *q = (queue){.magic = QUEUE_MAGIC, .kind = (uint8_t)kind, .loop = corio__tls_loop,
                 .maxsize = maxsize, .cmp = cmp};
    return 0;
}

int corio_queue_destroy(corio_queue *pq)
{
    if (!pq)
        return -EINVAL;
    queue *q = Q(pq);
    int rc = check_queue(q);
    if (rc < 0)
        return rc;
    if (waiting(&q->getters) || waiting(&q->putters) || q->joiners.head || q->reserved)
        return -EBUSY;
    free(q->buf);
    q->magic = 0;
    q->buf = NULL;
    return 0;
}

long corio_queue_size(const corio_queue *pq)
{
    if (!pq || CQ(pq)->magic != QUEUE_MAGIC)
        return -EINVAL;
    return (long)CQ(pq)->count;
}

int corio_queue_empty(const corio_queue *pq)
{
    if (!pq || CQ(pq)->magic != QUEUE_MAGIC)
        return -EINVAL;
    return CQ(pq)->count == 0;
}

int corio_queue_full(const corio_queue *pq)
{
    if (!pq || CQ(pq)->magic != QUEUE_MAGIC)
        return -EINVAL;
    return !room(CQ(pq));
}

int corio_queue_task_done(corio_queue *pq)
{
    if (!pq)
        return -EINVAL;
    queue *q = Q(pq);
    int rc = check_queue(q);
    if (rc < 0)
        return rc;
    if (q->unfinished == 0)
        return -EOVERFLOW;
    if (--q->unfinished == 0)
        wake_joiners(q);
    return 0;
}

static void join_cancel(corio__wait *w)
{
    single *s = container_of(container_of(w, qwait, w), single, qw);
    corio__waitlist_remove(&s->q->joiners, &s->wt);
}

int CORIO__IMPL(corio_queue_join)(corio_queue *pq)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!pq)
        return -EINVAL;
    queue *q = Q(pq);
    int rc = check_queue(q);
    if (rc < 0)
        return rc;
    if (!self)
        return -EPERM;
    if (q->unfinished == 0)
        return 0;
    single local, *s = corio__record(self, &local);
    *s = (single){.qw = {.w = {.cancel = join_cancel, .what = "a queue join"}}, .q = q};
    s->wt = (corio__waiter){.wait = &s->qw.w, .won = &s->qw.won};
    corio__waitlist_push(&q->joiners, &s->wt);
    rc = corio__suspend(l, self, &s->qw.w);
    corio__waitlist_remove(&q->joiners, &s->wt);
    return rc;
}

int corio_queue_shutdown(corio_queue *pq, int immediate)
{
    if (!pq)
        return -EINVAL;
    queue *q = Q(pq);
    int rc = check_queue(q);
    if (rc < 0)
        return rc;
    q->shut = true;
    if (immediate)
        q->dropping = true;
    if (immediate && q->count) { /* drop what is queued; it counts as done */
        q->unfinished = q->unfinished > q->count ? q->unfinished - q->count : 0;
        q->count = 0;
        q->head = 0;
        if (q->unfinished == 0)
            wake_joiners(q);
    }
    corio__waiter *w;
    while ((w = corio__waitlist_take(&q->putters))) {
        *w->won = w;
        corio__wake(q->loop, w->wait, -ESHUTDOWN);
    }
    if (q->count == 0)
        while ((w = corio__waitlist_take(&q->getters))) {
            *w->won = w;
            corio__wake(q->loop, w->wait, -ESHUTDOWN);
        }
    return 0;
}

/* ---- select ----------------------------------------------------------------------------------- */

/* Try an op now: true if it completed (result set), or if the attempt
 * failed as a call (*rc: -ENOMEM). */
static bool select_now(corio_select_op *op, int *rc)
{
    queue *q = Q(op->queue);
    int r = op->kind == CORIO_SELECT_PUT ? put_at_once(q, op->item) : get_at_once(q, op->item_out);
    if (r == -EAGAIN)
        return false;
    if (r == -ENOMEM)
        *rc = r;
    else
        op->result = r; /* 0, or -ESHUTDOWN */
    return true;
}

int CORIO__IMPL(corio_select)(corio_select_op *ops, size_t n, double timeout)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!ops || n == 0 || n > INT32_MAX || isnan(timeout))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!ops[i].queue || (ops[i].kind != CORIO_SELECT_GET && ops[i].kind != CORIO_SELECT_PUT))
            return -EINVAL;
        int rc = check_queue(Q(ops[i].queue));
        if (rc < 0)
            return rc;
    }
    if (!self && timeout != 0)
        return -EPERM; /* only a poll may be made outside a task */
    for (size_t i = 0; i < n; i++) {
        int rc = 0;
        if (select_now(&ops[i], &rc))
            return rc < 0 ? rc : (int)i;
    }
    if (timeout == 0)
        return -ETIMEDOUT;
    for (size_t i = 0; i < n; i++) /* room for a cancelled getter to give its item back */
        if (ops[i].kind == CORIO_SELECT_GET) {
            queue *q = Q(ops[i].queue);
            if (reserve(q, q->count + q->ngetters + 1) < 0)
                return -ENOMEM;
        }
    /* A compact task's waiters, a copy of its ops (a cancel or a handover reads
     * them while it waits) and its record stay off its stack (internal.h). */
    bool compact = self->flags & CORIO__TF_COMPACT;
    corio__waiter small[4], *ws = small;
    corio_select_op *wops = ops;
    if (compact || n > 4) {
        ws = calloc(n, sizeof *ws + (compact ? sizeof *ops : 0));
        if (!ws)
            return -ENOMEM;
        if (compact)
            wops = memcpy(ws + n, ops, n * sizeof *ops);
    }
    select_wait local, *sw = corio__record(self, &local);
    *sw = (select_wait){.qw = {.w = {.cancel = select_cancel, .pass_on = qwait_pass_on,
                                     .what = "a select"},
                               .ws = ws, .ops = wops, .n = n}};
    qwait *qw = &sw->qw;
    for (size_t i = 0; i < n; i++)
        waiter_link(qw, &ws[i], Q(ops[i].queue), ops[i].kind == CORIO_SELECT_PUT, i,
                    ops[i].item);
    int rc = 0;
    int64_t deadline = corio__deadline_in(l, timeout);
    if (deadline != INT64_MAX)
        rc = corio__timers_add(&l->timers, &sw->timer, deadline, qwait_fire);
    if (rc == 0)
        rc = corio__suspend(l, self, &qw->w);
    qwait_unlink(qw);
    corio__timers_remove(&l->timers, &sw->timer);
    for (size_t i = 0; i < n; i++)
        waiter_done(Q(ops[i].queue), &ws[i]);
    corio__waiter *won = qw->won;
    int i = won ? (won->value < 0 ? -1 - won->value : won->value) : -1;
    void *handed = won ? won->item : NULL;
    if (ws != small)
        free(ws);
    if (rc == -ECANCELED || rc == -ETIMEDOUT || rc == -ENOMEM || i < 0)
        return rc < 0 ? rc : -EINVAL;
    queue *q = Q(ops[i].queue);
    if (rc < 0) { /* -ESHUTDOWN: the op completed with it */
        ops[i].result = rc;
        return i;
    }
    if (ops[i].kind == CORIO_SELECT_GET) {
        if (ops[i].item_out)
            *ops[i].item_out = handed;
        ops[i].result = 0;
        return i;
    }
    rc = put_promised(q, ops[i].item);
    if (rc == -ENOMEM)
        return rc;
    ops[i].result = rc; /* 0, or -ESHUTDOWN */
    return i;
}
