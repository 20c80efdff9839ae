/* sync.c - asyncio's synchronization primitives: Event, Lock, Semaphore
 * (bounded or not), Condition and Barrier.
 *
 * Each object keeps a FIFO list of waiters (internal.h). Whatever an object
 * gives a waiter (the lock, a permit, a notification) it hands over directly
 * as it wakes it, so nobody can barge in between: that is the fairness rule.
 * A waiter cancelled before it resumes gives back what it was handed through
 * the wait's pass_on hook, to the next waiter. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>

#define container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

#define SYNC_MAGIC 0x5E1C0A11u

/* What every object starts with. */
typedef struct sync_head {
    uint32_t magic;
    corio_loop *loop;          /* the loop it belongs to (bound on first use if none) */
    corio__waitlist waiters;
} sync_head;

/* A wait on one object: the suspension, its place in the list, the object. */
typedef struct sync_wait {
    corio__wait w;
    corio__waiter wt;
    sync_head *obj;
} sync_wait;
_Static_assert(sizeof(sync_wait) <= CORIO__RECORD_BYTES, "a compact task's record holds a sync wait");

static void head_init(sync_head *h)
{
    *h = (sync_head){.magic = SYNC_MAGIC, .loop = corio__tls_loop};
}

/* An initialized object usable from this thread's loop. */
static int head_check(sync_head *h)
{
    if (!h || h->magic != SYNC_MAGIC)
        return -EINVAL;
    corio_loop *l = corio__tls_loop;
    if (!h->loop)
        h->loop = l;
    else if (l != h->loop)
        return l ? -EXDEV : -EPERM;
    return 0;
}

/* A call that may suspend: inside a task (of this thread's loop), even when
 * this time it would not have to wait, so that a program is right or wrong
 * whatever the timing. */
static int head_check_wait(sync_head *h)
{
    int rc = head_check(h);
    if (rc == 0 && !(corio__tls_loop && corio__tls_loop->current))
        rc = -EPERM;
    return rc;
}

/* busy: read only once the object is known to be initialized. */
static int head_destroy(sync_head *h, const bool *busy)
{
    int rc = head_check(h);
    if (rc < 0)
        return rc;
    if (h->waiters.head || (busy && *busy))
        return -EBUSY;
    h->magic = 0;
    return 0;
}

static void sync_wait_cancel(corio__wait *w)
{
    sync_wait *sw = container_of(w, sync_wait, w);
    corio__waitlist_remove(&sw->obj->waiters, &sw->wt);
}

/* Suspend the calling task on the object's list until it is woken (0 or what
 * the waker said) or cancelled. */
static int sync_block(sync_head *h, const char *what, void (*pass_on)(corio__wait *w),
                      bool interruptible, int value, int *value_out)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!self)
        return -EPERM;
    sync_wait local, *sw = corio__record(self, &local);
    *sw = (sync_wait){.w = {.cancel = interruptible ? sync_wait_cancel : NULL, .pass_on = pass_on,
                            .what = what},
                      .wt = {.value = value},
                      .obj = h};
    sw->wt.wait = &sw->w;
    corio__waitlist_push(&h->waiters, &sw->wt);
    int rc = corio__suspend(l, self, &sw->w);
    corio__waitlist_remove(&h->waiters, &sw->wt); /* if level-triggered cancel returned at once */
    if (value_out)
        *value_out = sw->wt.value;
    return rc;
}

/* Wake the first waiter (unlinked) with `result`; false if none waits. */
static bool wake_first(sync_head *h, int result)
{
    corio__waiter *wt = corio__waitlist_take(&h->waiters);
    if (!wt)
        return false;
    corio__wake(h->loop, wt->wait, result);
    return true;
}

static void wake_all(sync_head *h, int result)
{
    while (wake_first(h, result))
        ;
}

/* ---- Event ------------------------------------------------------------------------------ */

typedef struct event {
    sync_head h;
    bool set;
} event;
_Static_assert(sizeof(event) <= sizeof(corio_event), "corio_event too small");

#define EV(e) ((event *)(void *)(e)->opaque_)
#define CEV(e) ((const event *)(const void *)(e)->opaque_)

int corio_event_init(corio_event *pe)
{
    if (!pe)
        return -EINVAL;
    *EV(pe) = (event){0};
    head_init(&EV(pe)->h);
    return 0;
}

int corio_event_destroy(corio_event *pe)
{
    return pe ? head_destroy(&EV(pe)->h, NULL) : -EINVAL;
}

int corio_event_set(corio_event *pe)
{
    int rc = pe ? head_check(&EV(pe)->h) : -EINVAL;
    if (rc < 0)
        return rc;
    EV(pe)->set = true;
    wake_all(&EV(pe)->h, 0);
    return 0;
}

int corio_event_clear(corio_event *pe)
{
    int rc = pe ? head_check(&EV(pe)->h) : -EINVAL;
    if (rc < 0)
        return rc;
    EV(pe)->set = false;
    return 0;
}

int corio_event_is_set(const corio_event *pe)
{
    if (!pe || CEV(pe)->h.magic != SYNC_MAGIC)
        return -EINVAL;
    return CEV(pe)->set;
}

int CORIO__IMPL(corio_event_wait)(corio_event *pe)
{
    int rc = pe ? head_check_wait(&EV(pe)->h) : -EINVAL;
    if (rc < 0)
        return rc;
    if (EV(pe)->set)
        return 0;
    return sync_block(&EV(pe)->h, "an event", NULL, true, 0, NULL);
}

/* ---- Lock --------------------------------------------------------------------------------- */

typedef struct lock {
    sync_head h;
    bool locked;
} lock;
_Static_assert(sizeof(lock) <= sizeof(corio_lock), "corio_lock too small");

#define LK(l) ((lock *)(void *)(l)->opaque_)

/* Hand the lock to the first waiter, or unlock it. */
static void lock_pass(lock *k)
{
    if (!wake_first(&k->h, 0))
        k->locked = false;
}

static void lock_pass_on(corio__wait *w)
{
    lock_pass(container_of(container_of(w, sync_wait, w)->obj, lock, h));
}

int corio_lock_init(corio_lock *pl)
{
    if (!pl)
        return -EINVAL;
    *LK(pl) = (lock){0};
    head_init(&LK(pl)->h);
    return 0;
}

int corio_lock_destroy(corio_lock *pl)
{
    return pl ? head_destroy(&LK(pl)->h, &LK(pl)->locked) : -EINVAL;
}

int corio_lock_try_acquire(corio_lock *pl)
{
    int rc = pl ? head_check(&LK(pl)->h) : -EINVAL;
    if (rc < 0)
        return rc;
    if (LK(pl)->locked)
        return -EAGAIN; /* unlocked implies nobody waits: the lock is handed over */
    LK(pl)->locked = true;
    return 0;
}

/* shielded: the wait cannot be interrupted (a condition re-acquiring). */
static int lock_acquire(lock *k, bool shielded)
{
    if (!k->locked) {
        k->locked = true;
        return 0;
    }
    return sync_block(&k->h, "a lock", lock_pass_on, !shielded, 0, NULL);
}

int corio_lock_acquire(corio_lock *pl)
{
    int rc = pl ? head_check_wait(&LK(pl)->h) : -EINVAL;
    if (rc < 0)
        return rc;
    if (!LK(pl)->locked) {
        LK(pl)->locked = true;
        return 0;
    }
    return lock_acquire(LK(pl), false);
}

int corio_lock_release(corio_lock *pl)
{
    int rc = pl ? head_check(&LK(pl)->h) : -EINVAL;
    if (rc < 0)
        return rc;
    if (!LK(pl)->locked)
        return -EPERM;
    lock_pass(LK(pl));
    return 0;
}

int corio_lock_locked(const corio_lock *pl)
{
    if (!pl || ((const lock *)(const void *)pl->opaque_)->h.magic != SYNC_MAGIC)
        return -EINVAL;
    return ((const lock *)(const void *)pl->opaque_)->locked;
}

/* ---- Semaphore ------------------------------------------------------------------------------ */

typedef struct sem {
    sync_head h;
    int value;
    int initial;
    bool bounded;
} sem;
_Static_assert(sizeof(sem) <= sizeof(corio_sem), "corio_sem too small");

#define SM(s) ((sem *)(void *)(s)->opaque_)

/* A permit comes back: to the first waiter, or to the count. */
static void sem_pass(sem *s)
{
    if (!wake_first(&s->h, 0))
        s->value++;
}

static void sem_pass_on(corio__wait *w)
{
    sem_pass(container_of(container_of(w, sync_wait, w)->obj, sem, h));
}

static int sem_init(corio_sem *ps, int value, bool bounded)
{
    if (!ps || value < 0)
        return -EINVAL;
    *SM(ps) = (sem){.value = value, .initial = value, .bounded = bounded};
    head_init(&SM(ps)->h);
    return 0;
}

int corio_sem_init(corio_sem *ps, int value)
{
    return sem_init(ps, value, false);
}

int corio_sem_init_bounded(corio_sem *ps, int value)
{
    return sem_init(ps, value, true);
}

int corio_sem_destroy(corio_sem *ps)
{
    return ps ? head_destroy(&SM(ps)->h, NULL) : -EINVAL;
}

int corio_sem_try_acquire(corio_sem *ps)
{
    int rc = ps ? head_check(&SM(ps)->h) : -EINVAL;
    if (rc < 0)
        return rc;
    if (SM(ps)->value == 0)
        return -EAGAIN; /* a free permit implies nobody waits: permits are handed over */
    SM(ps)->value--;
    return 0;
}

int corio_sem_acquire(corio_sem *ps)
{
    int rc = ps ? head_check_wait(&SM(ps)->h) : -EINVAL;
    if (rc < 0)
        return rc;
    if (SM(ps)->value > 0) {
        SM(ps)->value--;
        return 0;
    }
    return sync_block(&SM(ps)->h, "a semaphore", sem_pass_on, true, 0, NULL);
}

int corio_sem_release(corio_sem *ps)
{
    int rc = ps ? head_check(&SM(ps)->h) : -EINVAL;
    if (rc < 0)
        return rc;
    sem *s = SM(ps);
    if ((s->bounded && s->value >= s->initial) || (!s->h.waiters.head && s->value == INT_MAX))
        return -EOVERFLOW;
    sem_pass(s);
    return 0;
}

int corio_sem_value(const corio_sem *ps)
{
    if (!ps || ((const sem *)(const void *)ps->opaque_)->h.magic != SYNC_MAGIC)
        return -EINVAL;
    return ((const sem *)(const void *)ps->opaque_)->value;
}

/* ---- Condition ------------------------------------------------------------------------------ */

typedef struct cond {
    sync_head h;
    lock *lk;
    corio_lock own;            /* used when init was given no lock */
} cond;
_Static_assert(sizeof(cond) <= sizeof(corio_cond), "corio_cond too small");

#define CD(c) ((cond *)(void *)(c)->opaque_)

/* A notified waiter was cancelled before it resumed: asyncio (3.13) hands its
 * notification to the next waiter, so a notify is never lost. */
static void cond_pass_on(corio__wait *w)
{
    wake_first(container_of(w, sync_wait, w)->obj, 0);
}

int corio_cond_init(corio_cond *pc, corio_lock *pl)
{
    if (!pc || (pl && LK(pl)->h.magic != SYNC_MAGIC))
        return -EINVAL;
    cond *c = CD(pc);
    *c = (cond){0};
    head_init(&c->h);
    if (!pl) {
        corio_lock_init(&c->own);
        pl = &c->own;
    }
    c->lk = LK(pl);
    return 0;
}

int corio_cond_destroy(corio_cond *pc)
{
    if (!pc)
        return -EINVAL;
    cond *c = CD(pc);
    int rc = head_check(&c->h);
    if (rc < 0)
        return rc;
    bool own = c->lk == LK(&c->own);
    if (own && (c->lk->locked || c->lk->h.waiters.head))
        return -EBUSY;
    rc = head_destroy(&c->h, NULL);
    if (rc == 0 && own)
        corio_lock_destroy(&c->own);
    return rc;
}

corio_lock *corio_cond_lock(corio_cond *pc)
{
    if (!pc || CD(pc)->h.magic != SYNC_MAGIC)
        return NULL;
    return (corio_lock *)(void *)CD(pc)->lk; /* the corio_lock whose storage it is */
}

static int cond_check(corio_cond *pc)
{
    int rc = pc ? head_check(&CD(pc)->h) : -EINVAL;
    if (rc == 0)
        rc = head_check(&CD(pc)->lk->h);
    if (rc == 0 && !CD(pc)->lk->locked)
        rc = -EPERM; /* the caller must hold the lock */
    return rc;
}

int corio_cond_wait(corio_cond *pc)
{
    corio_loop *l;
    if (!corio__self(&l))
        return pc ? -EPERM : -EINVAL;
    int rc = cond_check(pc);
    if (rc < 0)
        return rc;
    cond *c = CD(pc);
    lock_pass(c->lk);                                     /* release */
    rc = sync_block(&c->h, "a condition", cond_pass_on, true, 0, NULL);
    lock_acquire(c->lk, true); /* re-acquire, even when cancelled (asyncio does too) */
    corio_task *self = corio__self(&l);
    corio__scope *cause;
    if (rc == 0 && (cause = corio__interrupt_cause(self))) {
        /* cancelled while it re-acquired: report it, and hand the
         * notification it consumed to the next waiter (asyncio 3.13) */
        corio__credit(cause);
        wake_first(&c->h, 0);
        rc = -ECANCELED;
    }
    return rc;
}

int corio_cond_wait_for(corio_cond *pc, int (*pred)(void *arg), void *arg)
{
    if (!pred)
        return -EINVAL;
    int rc = cond_check(pc);
    if (rc == 0 && !(corio__tls_loop && corio__tls_loop->current))
        rc = -EPERM;
    if (rc < 0)
        return rc;
    while (!pred(arg))
        if ((rc = corio_cond_wait(pc)) < 0)
            return rc;
    return 0;
}

int corio_cond_notify(corio_cond *pc, int n)
{
    int rc = cond_check(pc);
    if (rc < 0)
        return rc;
    if (n < 0)
        return -EINVAL;
    int woken = 0;
    while (woken < n && wake_first(&CD(pc)->h, 0))
        woken++;
    return woken;
}

int corio_cond_notify_all(corio_cond *pc)
{
    return corio_cond_notify(pc, INT_MAX);
}

/* ---- Barrier ------------------------------------------------------------------------------- */

typedef struct barrier {
    sync_head h;
    int parties;
    int count;                 /* arrived in this cycle */
    bool broken;
} barrier;
_Static_assert(sizeof(barrier) <= sizeof(corio_barrier), "corio_barrier too small");

#define BR(b) ((barrier *)(void *)(b)->opaque_)
#define CBR(b) ((const barrier *)(const void *)(b)->opaque_)

/* A waiter cancelled while the barrier fills leaves it. */
static void barrier_cancel(corio__wait *w)
{
    sync_wait *sw = container_of(w, sync_wait, w);
    corio__waitlist_remove(&sw->obj->waiters, &sw->wt);
    container_of(sw->obj, barrier, h)->count--;
}

int corio_barrier_init(corio_barrier *pb, int parties)
{
    if (!pb || parties < 1)
        return -EINVAL;
    *BR(pb) = (barrier){.parties = parties};
    head_init(&BR(pb)->h);
    return 0;
}

int corio_barrier_destroy(corio_barrier *pb)
{
    return pb ? head_destroy(&BR(pb)->h, NULL) : -EINVAL;
}

int corio_barrier_wait(corio_barrier *pb)
{
    corio_loop *l;
    corio_task *self = corio__self(&l);
    int rc = pb ? head_check(&BR(pb)->h) : -EINVAL;
    if (rc < 0)
        return rc;
    if (!self)
        return -EPERM;
    barrier *b = BR(pb);
    if (b->broken)
        return -EPIPE;
    int index = b->count++;
    if (b->count == b->parties) { /* the last one in releases the others */
        b->count = 0;
        wake_all(&b->h, 0);
        return index;
    }
    sync_wait local, *sw = corio__record(self, &local);
    *sw = (sync_wait){.w = {.cancel = barrier_cancel, .what = "a barrier"},
                      .wt = {.value = index}, .obj = &b->h};
    sw->wt.wait = &sw->w;
    corio__waitlist_push(&b->h.waiters, &sw->wt);
    rc = corio__suspend(l, self, &sw->w);
    return rc < 0 ? rc : index;
}

int corio_barrier_abort(corio_barrier *pb)
{
    int rc = pb ? head_check(&BR(pb)->h) : -EINVAL;
    if (rc < 0)
        return rc;
    BR(pb)->broken = true;
    BR(pb)->count = 0;
    wake_all(&BR(pb)->h, -EPIPE);
    return 0;
}

int corio_barrier_reset(corio_barrier *pb)
{
    int rc = pb ? head_check(&BR(pb)->h) : -EINVAL;
    if (rc < 0)
        return rc;
    wake_all(&BR(pb)->h, -EPIPE);
    BR(pb)->count = 0;
    BR(pb)->broken = false;
    return 0;
}

int corio_barrier_n_waiting(const corio_barrier *pb)
{
    if (!pb || CBR(pb)->h.magic != SYNC_MAGIC)
        return -EINVAL;
    return CBR(pb)->count;
}

int corio_barrier_broken(const corio_barrier *pb)
{
    if (!pb || CBR(pb)->h.magic != SYNC_MAGIC)
        return -EINVAL;
    return CBR(pb)->broken;
}
