/* test/test_api_queue.c - queues (asyncio.Queue, LifoQueue, PriorityQueue)
 * and select over queue operations, against the contract in corio.h.
 *
 * The first tests mirror the cases of CPython's
 * Lib/test/test_asyncio/test_queues.py that apply (written anew in C, for
 * the three kinds); then: nothing lost or delivered twice when a waiter is
 * cancelled or times out after its wakeup was handed to it, timeouts at
 * every suspension, shutdown, FIFO fairness among waiters, priority
 * stability, select over every combination of ready and waiting operations,
 * stress with 100,000 tasks, bad input.
 *
 * Everything timed runs on the virtual clock (test_run_virtual), so the
 * instants asserted with corio_now_ns() are exact. Test names start with
 * "queue_" or "select_": `corio_tests queue select` runs them all. */
#include "test.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC 1000000000LL
#define MS 1000000LL
#define IT(n) ((void *)(intptr_t)(n))
#define NUM(p) ((long)(intptr_t)(p))
#define NOT_YET 12345          /* rc of a call that has not returned yet */
#define SENTINEL IT(-7777)     /* an item slot nobody wrote */

static const int kinds[3] = {CORIO_QUEUE_FIFO, CORIO_QUEUE_LIFO, CORIO_QUEUE_PRIORITY};
#define KIND(arg) ((int)(intptr_t)(arg))

/* ---- helpers ------------------------------------------------------------------- */

/* Items are the integers themselves (cmp gets the items, as stored). */
static int cmp_int(const void *a, const void *b)
{
    intptr_t x = (intptr_t)a, y = (intptr_t)b;
    return (x > y) - (x < y);
}

/* item = key * KEY_DIV + id: items with the same key compare equal */
#define KEY_DIV 10000
static int cmp_key(const void *a, const void *b)
{
    intptr_t x = (intptr_t)a / KEY_DIV, y = (intptr_t)b / KEY_DIV;
    return (x > y) - (x < y);
}

static void qinit(corio_queue *q, int kind, size_t maxsize)
{
    ASSERT_EQ(corio_queue_init(q, kind, maxsize, kind == CORIO_QUEUE_PRIORITY ? cmp_int : NULL), 0);
}

/* try_get that must succeed; the item as a number */
static long take(corio_queue *q)
{
    void *it = SENTINEL;
    ASSERT_EQ(corio_queue_try_get(q, &it), 0);
    ASSERT_PTR_NE(it, SENTINEL);
    return NUM(it);
}

/* get that must succeed (may suspend) */
static long get_num(corio_queue *q)
{
    void *it = SENTINEL;
    ASSERT_EQ(corio_queue_get(q, &it), 0);
    return NUM(it);
}

static void expect_nothing(corio_queue *q)
{
    void *it = SENTINEL;
    ASSERT_EQ(corio_queue_try_get(q, &it), -EAGAIN);
    ASSERT_PTR_EQ(it, SENTINEL);
    ASSERT_EQ(corio_queue_size(q), 0);
    ASSERT_EQ(corio_queue_empty(q), 1);
}

/* task_done exactly n times, then it must overflow */
static void done_n(corio_queue *q, long n)
{
    for (long i = 0; i < n; i++)
        ASSERT_EQ(corio_queue_task_done(q), 0);
    ASSERT_EQ(corio_queue_task_done(q), -EOVERFLOW);
}

static void run_kinds(corio_fn *fn)
{
    for (int k = 0; k < 3; k++)
        ASSERT_EQ(test_run_virtual(fn, IT(kinds[k]), NULL), 0);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* One queue call run as a task. */
typedef struct qop {
    corio_queue *q;
    void *item;     /* put: the item; get: what it got (SENTINEL if nothing) */
    int rc;         /* NOT_YET until the call returned */
    int64_t at;     /* corio_now_ns() when it returned */
} qop;

static qop mkop(corio_queue *q, void *item)
{
    qop o = {q, item, NOT_YET, -1};
    return o;
}

static void *t_put(void *arg)
{
    qop *o = arg;
    o->rc = corio_queue_put(o->q, o->item);
    o->at = corio_now_ns();
    return NULL;
}

static void *t_get(void *arg)
{
    qop *o = arg;
    o->item = SENTINEL;
    o->rc = corio_queue_get(o->q, &o->item);
    o->at = corio_now_ns();
    return NULL;
}

static void *t_join(void *arg)
{
    qop *o = arg;
    o->rc = corio_queue_join(o->q);
    o->at = corio_now_ns();
    return NULL;
}

/* The same as coroutines for corio_wait_for: fail with the call's error. */
static void *c_get(void *arg)
{
    qop *o = arg;
    t_get(o);
    return o->rc < 0 ? corio_fail(o->rc) : o->item;
}

static void *c_put(void *arg)
{
    qop *o = arg;
    t_put(o);
    return o->rc < 0 ? corio_fail(o->rc) : NULL;
}

static void *c_join(void *arg)
{
    qop *o = arg;
    t_join(o);
    return o->rc < 0 ? corio_fail(o->rc) : NULL;
}

static corio_task *spawn(corio_fn *fn, void *arg)
{
    corio_task *t = corio_create_task(corio_coro(fn, arg));
    ASSERT_NOT_NULL(t);
    return t;
}

static void reap(corio_task *t)
{
    ASSERT_EQ(corio_await(t, NULL), 0);
    ASSERT_EQ(corio_task_release(t), 0);
}

/* Something done to a queue after a delay, from a task of its own. */
enum { L_PUT, L_TAKE, L_TASK_DONE };
typedef struct later {
    corio_queue *q;
    int64_t delay;
    int action;
    void *item;   /* L_PUT: what; L_TAKE: what it took */
    int rc;
} later;

static void *t_later(void *arg)
{
    later *l = arg;
    ASSERT_EQ(corio_sleep_ns(l->delay), 0);
    switch (l->action) {
    case L_PUT:
        l->rc = corio_queue_try_put(l->q, l->item);
        break;
    case L_TAKE:
        l->item = SENTINEL;
        l->rc = corio_queue_try_get(l->q, &l->item);
        break;
    default:
        l->rc = corio_queue_task_done(l->q);
        break;
    }
    return NULL;
}

/* A select run as a task; ops are filled in place (outs point into it). */
typedef struct sel {
    corio_select_op ops[8];
    void *outs[8];
    size_t n;
    double timeout;
    int rc;
    int64_t at;
} sel;

static void sel_init(sel *s, double timeout)
{
    memset(s, 0, sizeof *s);
    s->timeout = timeout;
    s->rc = NOT_YET;
}

static void sel_get(sel *s, size_t i, corio_queue *q)
{
    s->outs[i] = SENTINEL;
    s->ops[i] = (corio_select_op){.kind = CORIO_SELECT_GET, .queue = q, .item = NULL,
                                  .item_out = &s->outs[i], .result = NOT_YET};
    if (i >= s->n)
        s->n = i + 1;
}

static void sel_put(sel *s, size_t i, corio_queue *q, void *item)
{
    s->outs[i] = SENTINEL;
    s->ops[i] = (corio_select_op){.kind = CORIO_SELECT_PUT, .queue = q, .item = item,
                                  .item_out = NULL, .result = NOT_YET};
    if (i >= s->n)
        s->n = i + 1;
}

static void *t_select(void *arg)
{
    sel *s = arg;
    s->rc = corio_select(s->ops, s->n, s->timeout);
    s->at = corio_now_ns();
    return NULL;
}

/* A queue call (or select) inside a timeout scope the test can reschedule. */
enum { W_GET, W_PUT, W_JOIN, W_SELECT };
typedef struct scoped {
    qop o;
    int what;
    sel *s;
    double seconds;
    corio_scope sc;
    int trc;
    int begun;
} scoped;

static void *t_scoped(void *arg)
{
    scoped *s = arg;
    s->trc = NOT_YET;
    ASSERT_EQ(corio_timeout_begin(&s->sc, s->seconds), 0);
    s->begun = 1;
    switch (s->what) {
    case W_GET:
        s->o.item = SENTINEL;
        s->o.rc = corio_queue_get(s->o.q, &s->o.item);
        break;
    case W_PUT:
        s->o.rc = corio_queue_put(s->o.q, s->o.item);
        break;
    case W_JOIN:
        s->o.rc = corio_queue_join(s->o.q);
        break;
    default:
        s->o.rc = corio_select(s->s->ops, s->s->n, s->s->timeout);
        break;
    }
    s->o.at = corio_now_ns();
    s->trc = corio_scope_end(&s->sc);
    s->begun = 0;
    return NULL;
}

/* A small reference model of a queue for the randomized checks. */
typedef struct model {
    long v[128];
    int n;
    int kind;
} model;

static long model_take(model *m)
{
    int at = 0;
    if (m->kind == CORIO_QUEUE_LIFO)
        at = m->n - 1;
    else if (m->kind == CORIO_QUEUE_PRIORITY)
        for (int i = 1; i < m->n; i++)
            if (cmp_key(IT(m->v[i]), IT(m->v[at])) < 0)
                at = i; /* strictly smaller: the first of equals stays */
    long x = m->v[at];
    memmove(&m->v[at], &m->v[at + 1], (size_t)(m->n - at - 1) * sizeof m->v[0]);
    m->n--;
    return x;
}

/* ===================================================================================
 * CPython's test_queues.py, QueueBasicTests
 * =================================================================================== */

static void *main_basic(void *arg)
{
    int kind = KIND(arg);
    corio_queue q;
    qinit(&q, kind, 0);
    ASSERT_EQ(corio_queue_empty(&q), 1);
    ASSERT_EQ(corio_queue_full(&q), 0);
    ASSERT_EQ(corio_queue_size(&q), 0);
    ASSERT_EQ(corio_queue_put(&q, IT(1)), 0);
    ASSERT_EQ(corio_queue_empty(&q), 0);
    ASSERT_EQ(corio_queue_size(&q), 1);
    ASSERT_EQ(get_num(&q), 1);
    ASSERT_EQ(corio_queue_empty(&q), 1);

    /* unbounded: never full; items are stored as given, NULL included */
    for (long i = 0; i < 1000; i++)
        ASSERT_EQ(corio_queue_try_put(&q, IT(i)), 0);
    ASSERT_EQ(corio_queue_full(&q), 0);
    ASSERT_EQ(corio_queue_size(&q), 1000);
    long sum = 0, nulls = 0;
    for (long i = 0; i < 1000; i++) {
        void *it = SENTINEL;
        ASSERT_EQ(corio_queue_get(&q, &it), 0);
        sum += NUM(it);
        nulls += it == NULL;
        ASSERT_EQ(corio_queue_size(&q), 999 - i);
    }
    ASSERT_EQ(sum, 999 * 1000 / 2);
    ASSERT_EQ(nulls, 1);
    /* item_out NULL: the item is taken and dropped */
    ASSERT_EQ(corio_queue_try_put(&q, IT(3)), 0);
    ASSERT_EQ(corio_queue_try_get(&q, NULL), 0);
    ASSERT_EQ(corio_queue_put(&q, IT(4)), 0);
    ASSERT_EQ(corio_queue_get(&q, NULL), 0);
    expect_nothing(&q);
    done_n(&q, 1 + 1000 + 2);
    ASSERT_EQ(corio_queue_destroy(&q), 0);

    /* bounded */
    qinit(&q, kind, 2);
    ASSERT_EQ(corio_queue_full(&q), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    ASSERT_EQ(corio_queue_full(&q), 0);
    ASSERT_EQ(corio_queue_put(&q, IT(2)), 0);
    ASSERT_EQ(corio_queue_full(&q), 1);
    ASSERT_EQ(corio_queue_try_put(&q, IT(3)), -EAGAIN);
    ASSERT_EQ(corio_queue_size(&q), 2);
    ASSERT_EQ(corio_queue_full(&q), 1);
    ASSERT_EQ(corio_queue_empty(&q), 0);
    ASSERT_EQ(take(&q), kind == CORIO_QUEUE_LIFO ? 2 : 1);
    ASSERT_EQ(corio_queue_full(&q), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(3)), 0);
    ASSERT_EQ(corio_queue_full(&q), 1);
    if (kind == CORIO_QUEUE_LIFO) {
        ASSERT_EQ(take(&q), 3);
        ASSERT_EQ(take(&q), 1);
    } else {
        ASSERT_EQ(take(&q), 2);
        ASSERT_EQ(take(&q), 3);
    }
    expect_nothing(&q);
    done_n(&q, 3); /* the failed try_put counted nothing */
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    return NULL;
}

TEST(queue_basic_empty_full_size)
{
    run_kinds(main_basic);
}

static void *main_order(void *arg)
{
    int kind = KIND(arg);
    static const long in[3] = {1, 3, 2};
    static const long fifo[3] = {1, 3, 2}, lifo[3] = {2, 3, 1}, prio[3] = {1, 2, 3};
    const long *expect = kind == CORIO_QUEUE_FIFO ? fifo : kind == CORIO_QUEUE_LIFO ? lifo : prio;
    corio_queue q;
    qinit(&q, kind, 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(corio_queue_put(&q, IT(in[i])), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(get_num(&q), expect[i]);
    for (int i = 0; i < 3; i++) /* the non-suspending forms, bounded */
        ASSERT_EQ(corio_queue_try_put(&q, IT(in[i])), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(take(&q), expect[i]);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    qinit(&q, kind, 3);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(corio_queue_try_put(&q, IT(in[i])), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(take(&q), expect[i]);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_order_fifo_lifo_priority)
{
    run_kinds(main_order);
}

struct putter3 {
    corio_queue *q;
    int n;
};

static void *putter3(void *arg)
{
    struct putter3 *p = arg;
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(corio_queue_put(p->q, IT(i + 1)), 0);
        p->n++;
    }
    return NULL;
}

/* test_maxsize, test_get_with_putters */
static void *main_maxsize(void *arg)
{
    int kind = KIND(arg);
    corio_queue q;
    qinit(&q, kind, 2);
    struct putter3 p = {&q, 0};
    corio_task *t = spawn(putter3, &p);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(p.n, 2); /* blocked after two */
    ASSERT_EQ(corio_task_done(t), 0);
    ASSERT_EQ(corio_queue_size(&q), 2);
    ASSERT_EQ(get_num(&q), kind == CORIO_QUEUE_LIFO ? 2 : 1);
    ASSERT_EQ(corio_yield(), 0); /* the putter resumes and puts the last */
    ASSERT_EQ(p.n, 3);
    ASSERT_EQ(corio_task_done(t), 1);
    if (kind == CORIO_QUEUE_LIFO) {
        ASSERT_EQ(get_num(&q), 3);
        ASSERT_EQ(get_num(&q), 1);
    } else {
        ASSERT_EQ(get_num(&q), 2);
        ASSERT_EQ(get_num(&q), 3);
    }
    reap(t);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_maxsize_putter_blocks)
{
    run_kinds(main_maxsize);
}

/* ===================================================================================
 * QueueGetTests
 * =================================================================================== */

static void *main_blocking_get_wait(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 0);
    void *it = SENTINEL;
    ASSERT_EQ(corio_queue_try_get(&q, &it), -EAGAIN); /* test_nonblocking_get_exception */
    ASSERT_PTR_EQ(it, SENTINEL);
    qop g = mkop(&q, NULL);
    corio_task *t = spawn(t_get, &g);
    ASSERT_EQ(corio_sleep(0.01), 0);
    ASSERT_EQ(g.rc, NOT_YET);
    ASSERT_EQ(corio_queue_put(&q, IT(1)), 0);
    reap(t);
    ASSERT_EQ(g.rc, 0);
    ASSERT_EQ(NUM(g.item), 1);
    ASSERT_EQ(g.at, 10 * MS);
    expect_nothing(&q);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_blocking_get_wait)
{
    run_kinds(main_blocking_get_wait);
}

static void *main_get_cancelled_race(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 0);
    qop g1 = mkop(&q, NULL), g2 = mkop(&q, NULL);
    corio_task *t1 = spawn(t_get, &g1), *t2 = spawn(t_get, &g2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(t1), 1);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_task_done(t1), 1);
    ASSERT_EQ(g1.rc, -ECANCELED);
    ASSERT_PTR_EQ(g1.item, SENTINEL);
    ASSERT_EQ(corio_queue_put(&q, IT(7)), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(g2.rc, 0);
    ASSERT_EQ(NUM(g2.item), 7);
    reap(t1);
    reap(t2);
    expect_nothing(&q);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_get_cancelled_race)
{
    run_kinds(main_get_cancelled_race);
}

static void *main_get_with_waiting_putters(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 1);
    qop pa = mkop(&q, IT(1)), pb = mkop(&q, IT(2));
    corio_task *ta = spawn(t_put, &pa), *tb = spawn(t_put, &pb);
    ASSERT_EQ(get_num(&q), 1);
    ASSERT_EQ(get_num(&q), 2);
    reap(ta);
    reap(tb);
    ASSERT_EQ(pa.rc, 0);
    ASSERT_EQ(pb.rc, 0);
    expect_nothing(&q);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_get_with_waiting_putters)
{
    run_kinds(main_get_with_waiting_putters);
}

struct pc {
    corio_queue *q;
    int n;
    long got[8];
    int ngot;
};

static void *pc_producer(void *arg)
{
    struct pc *p = arg;
    for (int i = 0; i < p->n; i++) {
        int rc = corio_queue_put(p->q, IT(i + 1));
        if (rc < 0)
            return corio_fail(rc);
    }
    return NULL;
}

static void *pc_consumer(void *arg)
{
    struct pc *p = arg;
    for (int i = 0; i < p->n; i++) {
        void *it;
        int rc = corio_queue_get(p->q, &it);
        if (rc < 0)
            return corio_fail(rc);
        p->got[p->ngot++] = NUM(it);
    }
    return NULL;
}

/* test_why_are_getters_waiting */
static void *main_why_getters_waiting(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 1);
    struct pc p = {.q = &q, .n = 5};
    corio_taskgroup g;
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(pc_producer, &p), NULL), 0);
    ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(pc_consumer, &p), NULL), 0);
    ASSERT_EQ(corio_taskgroup_end(&g, 0), 0);
    ASSERT_EQ(p.ngot, 5);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(p.got[i], i + 1); /* one item at a time: put order, any kind */
    expect_nothing(&q);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_why_are_getters_waiting)
{
    run_kinds(main_why_getters_waiting);
}

/* test_cancelled_getters_not_being_held_in_self_getters */
static void *main_get_timeout_leaves_no_getter(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 5);
    qop g = mkop(&q, NULL);
    void *res = SENTINEL;
    ASSERT_EQ(corio_wait_for(corio_coro(c_get, &g), 0.1, &res), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 100 * MS);
    ASSERT_EQ(g.rc, -ECANCELED);
    ASSERT_PTR_EQ(g.item, SENTINEL);
    ASSERT_EQ(corio_queue_try_put(&q, IT(5)), 0); /* no stale getter swallows it */
    ASSERT_EQ(corio_queue_size(&q), 1);
    ASSERT_EQ(take(&q), 5);
    ASSERT_EQ(corio_queue_destroy(&q), 0); /* nothing waits on it */
    return NULL;
}

TEST(queue_get_timeout_leaves_no_getter)
{
    run_kinds(main_get_timeout_leaves_no_getter);
}

struct wf {
    qop o;
    double timeout;
    int rc;
    void *res;
};

static void *t_wait_for_get(void *arg)
{
    struct wf *w = arg;
    w->res = SENTINEL;
    w->rc = corio_wait_for(corio_coro(c_get, &w->o), w->timeout, &w->res);
    return NULL;
}

/* test_get_cancelled: the item comes before the wait_for deadline */
static void *main_get_within_timeout(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 0);
    struct wf w = {.o = mkop(&q, NULL), .timeout = 0.051, .rc = NOT_YET};
    corio_task *t = spawn(t_wait_for_get, &w);
    ASSERT_EQ(corio_sleep(0.01), 0);
    ASSERT_EQ(corio_queue_put(&q, IT(1)), 0);
    reap(t);
    ASSERT_EQ(w.rc, 0);
    ASSERT_EQ(NUM(w.res), 1);
    ASSERT_EQ(w.o.at, 10 * MS);
    ASSERT_EQ(corio_sleep(1), 0); /* the ended scope's deadline does nothing */
    expect_nothing(&q);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_get_within_wait_for_timeout)
{
    run_kinds(main_get_within_timeout);
}

/* ===================================================================================
 * QueuePutTests
 * =================================================================================== */

struct put12 {
    corio_queue *q;
    int n;
    int64_t at;
};

static void *put12(void *arg)
{
    struct put12 *p = arg;
    ASSERT_EQ(corio_queue_put(p->q, IT(1)), 0);
    p->n++;
    ASSERT_EQ(corio_queue_put(p->q, IT(2)), 0);
    p->n++;
    p->at = corio_now_ns();
    return NULL;
}

static void *main_blocking_put_wait(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 1);
    struct put12 p = {&q, 0, -1};
    corio_task *t = spawn(put12, &p);
    ASSERT_EQ(corio_sleep(0.01), 0);
    ASSERT_EQ(p.n, 1);
    ASSERT_EQ(take(&q), 1);
    reap(t);
    ASSERT_EQ(p.n, 2);
    ASSERT_EQ(p.at, 10 * MS);
    ASSERT_EQ(take(&q), 2);
    expect_nothing(&q);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_blocking_put_wait)
{
    run_kinds(main_blocking_put_wait);
}

/* test_get_cancel_drop_one_pending_reader */
static void *main_drop_one_reader(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 0);
    qop r = mkop(&q, NULL);
    corio_task *t = spawn(t_get, &r);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0); /* handed to the reader */
    ASSERT_EQ(corio_queue_try_put(&q, IT(2)), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    reap(t);
    ASSERT_EQ(r.rc, -ECANCELED);
    ASSERT_PTR_EQ(r.item, SENTINEL);
    /* if we get 2, 1 was dropped; back at the front, any kind */
    ASSERT_EQ(get_num(&q), 1);
    ASSERT_EQ(get_num(&q), 2);
    expect_nothing(&q);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_get_cancel_drop_one_pending_reader)
{
    run_kinds(main_drop_one_reader);
}

/* test_get_cancel_drop_many_pending_readers */
static void *main_drop_many_readers(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 0);
    qop r[3];
    corio_task *t[3];
    for (int i = 0; i < 3; i++) {
        r[i] = mkop(&q, NULL);
        t[i] = spawn(t_get, &r[i]);
    }
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0); /* to reader 0 */
    ASSERT_EQ(corio_queue_try_put(&q, IT(2)), 0); /* to reader 1 */
    ASSERT_EQ(corio_cancel(t[0]), 1);             /* 1 goes on to reader 2 */
    for (int i = 0; i < 3; i++)
        reap(t[i]);
    ASSERT_EQ(r[0].rc, -ECANCELED);
    ASSERT_EQ(r[1].rc, 0);
    ASSERT_EQ(r[2].rc, 0);
    ASSERT_EQ(NUM(r[1].item), 2);
    ASSERT_EQ(NUM(r[2].item), 1);
    expect_nothing(&q);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_get_cancel_drop_many_pending_readers)
{
    run_kinds(main_drop_many_readers);
}

/* test_put_cancel_drop */
static void *main_put_cancel_drop(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 1);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    qop w = mkop(&q, IT(2));
    corio_task *t = spawn(t_put, &w);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(take(&q), 1); /* space promised to the writer */
    ASSERT_EQ(corio_cancel(t), 1);
    reap(t);
    ASSERT_EQ(w.rc, -ECANCELED);
    expect_nothing(&q); /* its item was not put */
    w = mkop(&q, IT(2)); /* try again */
    t = spawn(t_put, &w);
    reap(t);
    ASSERT_EQ(w.rc, 0);
    ASSERT_EQ(take(&q), 2);
    expect_nothing(&q);
    done_n(&q, 2); /* the cancelled put counted nothing */
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_put_cancel_drop)
{
    run_kinds(main_put_cancel_drop);
}

/* test_put_cancelled_race */
static void *main_put_cancelled_race(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 1);
    qop a = mkop(&q, IT(1)), b = mkop(&q, IT(2)), c = mkop(&q, IT(99));
    corio_task *ta = spawn(t_put, &a), *tb = spawn(t_put, &b), *tc = spawn(t_put, &c);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_task_done(ta), 1);
    ASSERT_EQ(corio_task_done(tb), 0);
    ASSERT_EQ(corio_cancel(tc), 1);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_task_done(tc), 1);
    ASSERT_EQ(c.rc, -ECANCELED);
    ASSERT_EQ(take(&q), 1);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(take(&q), 2);
    reap(ta);
    reap(tb);
    reap(tc);
    ASSERT_EQ(b.rc, 0);
    expect_nothing(&q);
    done_n(&q, 2);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_put_cancelled_race)
{
    run_kinds(main_put_cancelled_race);
}

/* test_put_with_waiting_getters, test_put_cancelled */
static void *main_put_with_waiting_getters(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 0);
    qop g = mkop(&q, NULL);
    corio_task *t = spawn(t_get, &g);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_put(&q, IT(5)), 0);
    ASSERT_EQ(corio_queue_size(&q), 0); /* went to the getter */
    reap(t);
    ASSERT_EQ(g.rc, 0);
    ASSERT_EQ(NUM(g.item), 5);
    /* a put task and a get: the get receives it, the put task has finished */
    qop p = mkop(&q, IT(1));
    t = spawn(t_put, &p);
    ASSERT_EQ(get_num(&q), 1);
    ASSERT_EQ(corio_task_done(t), 1);
    ASSERT_EQ(p.rc, 0);
    reap(t);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_put_with_waiting_getters)
{
    run_kinds(main_put_with_waiting_getters);
}

struct drain_all {
    corio_queue *q;
    long got[8];
    int n;
};

static void *drain_after_yield(void *arg)
{
    struct drain_all *d = arg;
    ASSERT_EQ(corio_yield(), 0);
    long num = corio_queue_size(d->q);
    for (long i = 0; i < num; i++)
        d->got[d->n++] = take(d->q);
    return NULL;
}

static void *put_arg_coro(void *arg)
{
    qop *o = arg;
    return c_put(o);
}

/* test_why_are_putters_waiting */
static void *main_why_putters_waiting(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 2);
    struct drain_all d = {.q = &q};
    qop p[4];
    corio_taskgroup g;
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(drain_after_yield, &d), NULL), 0);
    for (int i = 0; i < 4; i++) {
        p[i] = mkop(&q, IT(i + 1));
        ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(put_arg_coro, &p[i]), NULL), 0);
    }
    ASSERT_EQ(corio_taskgroup_end(&g, 0), 0);
    ASSERT_EQ(d.n, 2);
    ASSERT_EQ(d.got[0] + d.got[1], 1 + 2);
    ASSERT_EQ(corio_queue_size(&q), 2);
    long a = take(&q), b = take(&q);
    ASSERT_EQ(a + b, 3 + 4);
    ASSERT_NE(a, b);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_why_are_putters_waiting)
{
    run_kinds(main_why_putters_waiting);
}

/* test_cancelled_puts_not_being_held_in_self_putters, and
 * test_cancelled_put_silence_value_error_exception */
static void *main_cancelled_putter_not_held(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 1);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    qop p = mkop(&q, IT(2));
    corio_task *t = spawn(t_put, &p);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_destroy(&q), -EBUSY); /* a putter waits */
    ASSERT_EQ(corio_cancel(t), 1);
    reap(t);
    ASSERT_EQ(p.rc, -ECANCELED);
    ASSERT_EQ(corio_queue_size(&q), 1);
    ASSERT_EQ(corio_queue_destroy(&q), 0); /* the putter is gone from it */

    /* cancelled after a get made room for it: -ECANCELED, the room stays */
    qinit(&q, KIND(arg), 1);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    p = mkop(&q, IT(2));
    t = spawn(t_put, &p);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(take(&q), 1);
    ASSERT_EQ(corio_cancel(t), 1);
    reap(t);
    ASSERT_EQ(p.rc, -ECANCELED);
    expect_nothing(&q);
    ASSERT_EQ(corio_queue_full(&q), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(3)), 0); /* the space came back */
    ASSERT_EQ(take(&q), 3);
    done_n(&q, 2);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_cancelled_putter_not_held)
{
    run_kinds(main_cancelled_putter_not_held);
}

/* ===================================================================================
 * task_done / join (_QueueJoinTestMixin)
 * =================================================================================== */

static void *main_task_done_underflow(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 0);
    ASSERT_EQ(corio_queue_task_done(&q), -EOVERFLOW);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    ASSERT_EQ(take(&q), 1);
    ASSERT_EQ(corio_queue_task_done(&q), 0);
    ASSERT_EQ(corio_queue_task_done(&q), -EOVERFLOW);
    ASSERT_EQ(corio_queue_join(&q), 0);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_task_done_underflow)
{
    run_kinds(main_task_done_underflow);
}

struct worker {
    corio_queue *q;
    long acc;
};

static void *join_worker(void *arg)
{
    struct worker *w = arg;
    for (;;) {
        long it = get_num(w->q);
        if (it == -1)
            return NULL;
        w->acc += it;
        ASSERT_EQ(corio_sleep(0.001), 0);
        ASSERT_EQ(corio_queue_task_done(w->q), 0);
    }
}

static void *main_task_done_join(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 0);
    for (long i = 1; i <= 100; i++)
        ASSERT_EQ(corio_queue_try_put(&q, IT(i)), 0);
    struct worker w = {&q, 0};
    corio_task *t[2] = {spawn(join_worker, &w), spawn(join_worker, &w)};
    ASSERT_EQ(corio_queue_join(&q), 0);
    ASSERT_EQ(w.acc, 5050);
    ASSERT_EQ(corio_now_ns(), 50 * MS); /* two workers, 1 ms an item */
    ASSERT_EQ(corio_queue_try_put(&q, IT(-1)), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(-1)), 0);
    reap(t[0]);
    reap(t[1]);
    done_n(&q, 2); /* the two stop items */
    ASSERT_EQ(corio_queue_join(&q), 0);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_task_done_join_workers)
{
    run_kinds(main_task_done_join);
}

static void *main_join_empty(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 0);
    ASSERT_EQ(corio_queue_join(&q), 0);
    ASSERT_EQ(corio_queue_join(&q), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_join_empty_queue)
{
    run_kinds(main_join_empty);
}

static void *slow_worker(void *arg)
{
    corio_queue *q = arg;
    for (int i = 0; i < 3; i++) {
        get_num(q);
        ASSERT_EQ(corio_sleep(1), 0);
        ASSERT_EQ(corio_queue_task_done(q), 0);
    }
    return NULL;
}

static void *main_join_waits(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(corio_queue_try_put(&q, IT(i + 1)), 0);
    qop j1 = mkop(&q, NULL), j2 = mkop(&q, NULL);
    corio_task *tj1 = spawn(t_join, &j1);
    corio_task *tw = spawn(slow_worker, &q);
    ASSERT_EQ(corio_sleep(1.5), 0);
    corio_task *tj2 = spawn(t_join, &j2);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(j1.rc, NOT_YET); /* 2.5 s: two done, one to go */
    ASSERT_EQ(corio_queue_destroy(&q), -EBUSY); /* joiners wait */
    reap(tj1);
    reap(tj2);
    reap(tw);
    ASSERT_EQ(j1.rc, 0);
    ASSERT_EQ(j2.rc, 0);
    ASSERT_EQ(j1.at, 3 * SEC);
    ASSERT_EQ(j2.at, 3 * SEC);
    ASSERT_EQ(corio_queue_join(&q), 0);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_join_waits_for_last_task_done)
{
    run_kinds(main_join_waits);
}

/* ===================================================================================
 * shutdown (_QueueShutdownTestMixin, asyncio 3.13)
 * =================================================================================== */

static void expect_all_shut(corio_queue *q)
{
    void *it = SENTINEL;
    ASSERT_EQ(corio_queue_put(q, IT(50)), -ESHUTDOWN);
    ASSERT_EQ(corio_queue_try_put(q, IT(51)), -ESHUTDOWN);
    ASSERT_EQ(corio_queue_get(q, &it), -ESHUTDOWN);
    ASSERT_EQ(corio_queue_try_get(q, &it), -ESHUTDOWN);
    ASSERT_PTR_EQ(it, SENTINEL);
    ASSERT_EQ(corio_queue_size(q), 0);
}

static void *main_shutdown_empty(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 0);
    qop g = mkop(&q, NULL);
    corio_task *t = spawn(t_get, &g);
    ASSERT_EQ(corio_yield(), 0); /* the get is pending before shutdown */
    ASSERT_EQ(corio_queue_shutdown(&q, 0), 0);
    ASSERT_EQ(corio_queue_size(&q), 0);
    ASSERT_EQ(corio_queue_join(&q), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_task_done(t), 1);
    ASSERT_EQ(g.rc, -ESHUTDOWN);
    ASSERT_PTR_EQ(g.item, SENTINEL);
    ASSERT_EQ(g.at, 0);
    reap(t);
    expect_all_shut(&q);
    ASSERT_EQ(corio_queue_task_done(&q), -EOVERFLOW);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_shutdown_empty)
{
    run_kinds(main_shutdown_empty);
}

static void *main_shutdown_nonempty(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 1);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    qop j = mkop(&q, NULL), p = mkop(&q, IT(2));
    corio_task *tj = spawn(t_join, &j), *tp = spawn(t_put, &p);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_task_done(tp), 0);
    ASSERT_EQ(corio_queue_shutdown(&q, 0), 0);
    ASSERT_EQ(corio_queue_size(&q), 1);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_task_done(tp), 1);
    ASSERT_EQ(p.rc, -ESHUTDOWN);
    ASSERT_EQ(get_num(&q), 1); /* get drains what is left */
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_task_done(tj), 0);
    expect_all_shut(&q);
    ASSERT_EQ(corio_queue_task_done(&q), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_task_done(tj), 1);
    ASSERT_EQ(j.rc, 0);
    ASSERT_EQ(corio_queue_task_done(&q), -EOVERFLOW);
    reap(tj);
    reap(tp);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_shutdown_nonempty)
{
    run_kinds(main_shutdown_nonempty);
}

static void *main_shutdown_immediate(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    qop j = mkop(&q, NULL);
    corio_task *tj = spawn(t_join, &j);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_shutdown(&q, 1), 0);
    ASSERT_EQ(corio_queue_size(&q), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_task_done(tj), 1);
    ASSERT_EQ(j.rc, 0);
    reap(tj);
    expect_all_shut(&q);
    ASSERT_EQ(corio_queue_task_done(&q), -EOVERFLOW); /* the dropped item counted done */
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_shutdown_immediate)
{
    run_kinds(main_shutdown_immediate);
}

static void *main_shutdown_immediate_unfinished(void *arg)
{
    int kind = KIND(arg);
    corio_queue q;
    qinit(&q, kind, 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(2)), 0);
    qop j = mkop(&q, NULL);
    corio_task *tj = spawn(t_join, &j);
    ASSERT_EQ(get_num(&q), kind == CORIO_QUEUE_LIFO ? 2 : 1);
    ASSERT_EQ(corio_queue_shutdown(&q, 1), 0); /* unfinished 2 -> 1 */
    ASSERT_EQ(corio_queue_size(&q), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_task_done(tj), 0);
    expect_all_shut(&q);
    ASSERT_EQ(corio_queue_task_done(&q), 0);
    ASSERT_EQ(corio_queue_task_done(&q), -EOVERFLOW);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_task_done(tj), 1);
    ASSERT_EQ(j.rc, 0);
    reap(tj);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_shutdown_immediate_with_unfinished)
{
    run_kinds(main_shutdown_immediate_unfinished);
}

/* Every waiter at once, in both modes; a putter owed space gets -ESHUTDOWN. */
static void *main_shutdown_waiters(void *arg)
{
    int kind = KIND(arg);
    corio_queue q;
    qop o[3];
    corio_task *t[3];

    /* getters on an empty queue, immediate or not */
    for (int immediate = 0; immediate < 2; immediate++) {
        qinit(&q, kind, 0);
        for (int i = 0; i < 3; i++) {
            o[i] = mkop(&q, NULL);
            t[i] = spawn(t_get, &o[i]);
        }
        ASSERT_EQ(corio_sleep(1), 0);
        int64_t t0 = corio_now_ns();
        ASSERT_EQ(corio_queue_shutdown(&q, immediate), 0);
        for (int i = 0; i < 3; i++) {
            reap(t[i]);
            ASSERT_EQ(o[i].rc, -ESHUTDOWN);
            ASSERT_EQ(o[i].at, t0); /* at once */
            ASSERT_PTR_EQ(o[i].item, SENTINEL);
        }
        expect_all_shut(&q);
        ASSERT_EQ(corio_queue_destroy(&q), 0);
    }

    /* putters on a full queue: not immediate keeps the item */
    for (int immediate = 0; immediate < 2; immediate++) {
        qinit(&q, kind, 1);
        ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
        qop j = mkop(&q, NULL);
        corio_task *tj = spawn(t_join, &j);
        for (int i = 0; i < 3; i++) {
            o[i] = mkop(&q, IT(10 + i));
            t[i] = spawn(t_put, &o[i]);
        }
        ASSERT_EQ(corio_sleep(1), 0);
        int64_t t0 = corio_now_ns();
        ASSERT_EQ(corio_queue_shutdown(&q, immediate), 0);
        for (int i = 0; i < 3; i++) {
            reap(t[i]);
            ASSERT_EQ(o[i].rc, -ESHUTDOWN);
            ASSERT_EQ(o[i].at, t0);
        }
        if (!immediate) {
            ASSERT_EQ(corio_queue_size(&q), 1);
            ASSERT_EQ(get_num(&q), 1);
            ASSERT_EQ(corio_queue_task_done(&q), 0);
        }
        reap(tj);
        ASSERT_EQ(j.rc, 0);
        expect_all_shut(&q);
        ASSERT_EQ(corio_queue_task_done(&q), -EOVERFLOW);
        ASSERT_EQ(corio_queue_destroy(&q), 0);
    }

    /* a putter that was promised space, not yet resumed: put fails */
    qinit(&q, kind, 1);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    o[0] = mkop(&q, IT(2));
    t[0] = spawn(t_put, &o[0]);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(take(&q), 1);
    ASSERT_EQ(corio_queue_shutdown(&q, 0), 0);
    reap(t[0]);
    ASSERT_EQ(o[0].rc, -ESHUTDOWN);
    expect_all_shut(&q); /* its item is not in the queue */
    done_n(&q, 1);
    ASSERT_EQ(corio_queue_destroy(&q), 0);

    /* a getter handed an item, not yet resumed, then shutdown (not immediate):
     * the item was already its own; it gets it */
    qinit(&q, kind, 0);
    o[0] = mkop(&q, NULL);
    t[0] = spawn(t_get, &o[0]);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(5)), 0);
    ASSERT_EQ(corio_queue_shutdown(&q, 0), 0);
    reap(t[0]);
    ASSERT_EQ(o[0].rc, 0);
    ASSERT_EQ(NUM(o[0].item), 5);
    expect_all_shut(&q);
    done_n(&q, 1);
    ASSERT_EQ(corio_queue_destroy(&q), 0);

    /* the same, immediate: either it got the item (and owes a task_done) or
     * it failed and the item counts as done; never both, never neither */
    qinit(&q, kind, 0);
    o[0] = mkop(&q, NULL);
    t[0] = spawn(t_get, &o[0]);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(5)), 0);
    ASSERT_EQ(corio_queue_shutdown(&q, 1), 0);
    reap(t[0]);
    if (o[0].rc == 0) {
        ASSERT_EQ(NUM(o[0].item), 5);
        done_n(&q, 1);
    } else {
        ASSERT_EQ(o[0].rc, -ESHUTDOWN);
        ASSERT_PTR_EQ(o[0].item, SENTINEL);
        done_n(&q, 0);
    }
    ASSERT_EQ(corio_queue_join(&q), 0);
    expect_all_shut(&q);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_shutdown_wakes_all_waiters)
{
    run_kinds(main_shutdown_waiters);
}

/* ===================================================================================
 * Never lost, never twice: cancels after the wakeup was handed over
 * =================================================================================== */

static void *main_get_cancel_after_handoff(void *arg)
{
    int kind = KIND(arg);
    corio_queue q;
    qinit(&q, kind, 0);
    /* X handed to G, Y queued, G cancelled before it resumed: X back in front */
    qop g = mkop(&q, NULL);
    corio_task *t = spawn(t_get, &g);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_put(&q, IT(5)), 0);
    ASSERT_EQ(corio_queue_size(&q), 0);
    ASSERT_EQ(corio_queue_put(&q, IT(7)), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(g.rc, -ECANCELED);
    ASSERT_PTR_EQ(g.item, SENTINEL);
    reap(t);
    ASSERT_EQ(corio_queue_size(&q), 2);
    ASSERT_EQ(get_num(&q), 5);
    ASSERT_EQ(get_num(&q), 7);
    expect_nothing(&q);

    /* the same with a smaller item queued: a priority queue still hands out
     * the smallest; the others the given-back item first */
    g = mkop(&q, NULL);
    t = spawn(t_get, &g);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_put(&q, IT(5)), 0);
    ASSERT_EQ(corio_queue_put(&q, IT(3)), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    reap(t);
    ASSERT_EQ(g.rc, -ECANCELED);
    ASSERT_EQ(get_num(&q), kind == CORIO_QUEUE_PRIORITY ? 3 : 5);
    ASSERT_EQ(get_num(&q), kind == CORIO_QUEUE_PRIORITY ? 5 : 3);
    expect_nothing(&q);

    /* the next waiting getter receives it */
    qop g1 = mkop(&q, NULL), g2 = mkop(&q, NULL);
    corio_task *t1 = spawn(t_get, &g1), *t2 = spawn(t_get, &g2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_put(&q, IT(9)), 0);
    ASSERT_EQ(corio_cancel(t1), 1);
    ASSERT_EQ(corio_queue_size(&q), 0); /* straight to g2, not the buffer */
    reap(t1);
    reap(t2);
    ASSERT_EQ(g1.rc, -ECANCELED);
    ASSERT_EQ(g2.rc, 0);
    ASSERT_EQ(NUM(g2.item), 9);
    expect_nothing(&q);
    done_n(&q, 5);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_get_cancel_after_handoff_item_back_in_front)
{
    run_kinds(main_get_cancel_after_handoff);
}

/* The item handed to G, then the queue fills up (past its buffer's first
 * size), then G is cancelled: the item must come back, nothing else lost. */
static void *main_get_cancel_after_handoff_refilled(void *arg)
{
    int kind = KIND(arg);
    static const size_t maxsizes[3] = {0, 16, 40};
    for (int m = 0; m < 3; m++) {
        size_t maxsize = maxsizes[m];
        long more = maxsize ? (long)maxsize : 40;
        corio_queue q;
        qinit(&q, kind, maxsize);
        qop g = mkop(&q, NULL);
        corio_task *t = spawn(t_get, &g);
        ASSERT_EQ(corio_yield(), 0);
        ASSERT_EQ(corio_queue_try_put(&q, IT(1000)), 0); /* handed to g */
        for (long i = 1; i <= more; i++)
            ASSERT_EQ(corio_queue_try_put(&q, IT(i)), 0);
        ASSERT_EQ(corio_queue_size(&q), more);
        ASSERT_EQ(corio_cancel(t), 1);
        reap(t);
        ASSERT_EQ(g.rc, -ECANCELED);
        long got[64], n = 0;
        void *it;
        while (corio_queue_try_get(&q, &it) == 0) {
            ASSERT_LT(n, 64);
            got[n++] = NUM(it);
        }
        ASSERT_EQ(n, more + 1);
        for (long i = 0; i < n; i++) {
            long expect;
            if (kind == CORIO_QUEUE_FIFO)
                expect = i == 0 ? 1000 : i;
            else if (kind == CORIO_QUEUE_LIFO)
                expect = i == 0 ? 1000 : more + 1 - i;
            else
                expect = i == more ? 1000 : i + 1;
            ASSERT_EQ(got[i], expect);
        }
        done_n(&q, more + 1);
        ASSERT_EQ(corio_queue_destroy(&q), 0);
    }
    return NULL;
}

TEST(queue_get_cancel_after_handoff_then_refilled)
{
    run_kinds(main_get_cancel_after_handoff_refilled);
}

static void *main_put_cancel_after_promise(void *arg)
{
    int kind = KIND(arg);
    corio_queue q;
    qinit(&q, kind, 1);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    qop p1 = mkop(&q, IT(2)), p2 = mkop(&q, IT(3));
    corio_task *t1 = spawn(t_put, &p1), *t2 = spawn(t_put, &p2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(take(&q), 1);        /* space promised to p1 */
    ASSERT_EQ(corio_queue_try_put(&q, IT(4)), -EAGAIN);
    ASSERT_EQ(corio_cancel(t1), 1); /* ... passed on to p2 */
    reap(t1);
    reap(t2);
    ASSERT_EQ(p1.rc, -ECANCELED);
    ASSERT_EQ(p2.rc, 0);
    ASSERT_EQ(corio_queue_size(&q), 1);
    ASSERT_EQ(take(&q), 3);
    expect_nothing(&q);
    done_n(&q, 2);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_put_cancel_after_promise_space_to_next_putter)
{
    run_kinds(main_put_cancel_after_promise);
}

/* A waiting putter that puts straight into a waiting getter's hands must not
 * leave the putter behind it waiting with room in the queue. */
static void *main_putter_handoff_next_putter(void *arg)
{
    int kind = KIND(arg);
    corio_queue q;
    qinit(&q, kind, 1);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    qop p1 = mkop(&q, IT(2)), p2 = mkop(&q, IT(3));
    corio_task *t1 = spawn(t_put, &p1), *t2 = spawn(t_put, &p2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(take(&q), 1);    /* space promised to p1 */
    ASSERT_EQ(get_num(&q), 2); /* waits; p1 resumes and hands 2 over */
    /* now p2 must be able to put: the queue is empty and has room */
    corio_scope sc;
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    void *it = SENTINEL;
    int rc = corio_queue_get(&q, &it);
    int trc = corio_scope_end(&sc);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(trc, 0);
    ASSERT_EQ(NUM(it), 3);
    ASSERT_EQ(corio_now_ns(), 0);
    reap(t1);
    reap(t2);
    ASSERT_EQ(p1.rc, 0);
    ASSERT_EQ(p2.rc, 0);
    expect_nothing(&q);
    done_n(&q, 3);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_putter_handing_to_getter_wakes_next_putter)
{
    run_kinds(main_putter_handoff_next_putter);
}

static void *cancelled_self_waits(void *arg)
{
    corio_queue *q = arg; /* q[0] empty, q[1] full (maxsize 1) */
    ASSERT_EQ(corio_cancel(corio_current_task()), 1);
    void *it = SENTINEL;
    ASSERT_EQ(corio_queue_get(&q[0], &it), -ECANCELED);
    ASSERT_PTR_EQ(it, SENTINEL);
    ASSERT_EQ(corio_queue_put(&q[1], IT(9)), -ECANCELED);
    ASSERT_EQ(corio_queue_join(&q[1]), -ECANCELED);
    corio_select_op op = {.kind = CORIO_SELECT_GET, .queue = &q[0], .item_out = &it,
                          .result = NOT_YET};
    ASSERT_EQ(corio_select(&op, 1, -1), -ECANCELED);
    ASSERT_EQ(corio_select(&op, 1, 5.0), -ECANCELED);
    ASSERT_EQ(op.result, NOT_YET);
    /* nothing was left waiting on either queue */
    ASSERT_EQ(corio_queue_destroy(&q[0]), 0);
    qinit(&q[0], CORIO_QUEUE_FIFO, 0);
    return NULL;
}

/* Level-triggered: a cancelled task does not wait at all. */
static void *main_cancelled_task_does_not_wait(void *arg)
{
    corio_queue q[2];
    qinit(&q[0], KIND(arg), 0);
    qinit(&q[1], KIND(arg), 1);
    ASSERT_EQ(corio_queue_try_put(&q[1], IT(1)), 0);
    reap(spawn(cancelled_self_waits, q));
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_queue_try_put(&q[0], IT(2)), 0);
    ASSERT_EQ(take(&q[0]), 2);
    ASSERT_EQ(take(&q[1]), 1);
    expect_nothing(&q[1]);
    ASSERT_EQ(corio_queue_destroy(&q[0]), 0);
    ASSERT_EQ(corio_queue_destroy(&q[1]), 0);
    return NULL;
}

TEST(queue_cancelled_task_does_not_wait)
{
    run_kinds(main_cancelled_task_does_not_wait);
}

/* ===================================================================================
 * Timeouts at every suspension: put, get, join
 * =================================================================================== */

static void *main_timeout_scopes(void *arg)
{
    int kind = KIND(arg);
    corio_queue q;
    qinit(&q, kind, 1);
    corio_scope sc;
    void *it = SENTINEL;

    /* get on an empty queue */
    ASSERT_EQ(corio_timeout_begin(&sc, 2.0), 0);
    ASSERT_EQ(corio_queue_get(&q, &it), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_PTR_EQ(it, SENTINEL);
    ASSERT_EQ(corio_queue_try_put(&q, IT(5)), 0); /* no stale getter takes it */
    ASSERT_EQ(corio_queue_size(&q), 1);

    /* put on a full queue */
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_queue_put(&q, IT(6)), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_EQ(corio_queue_size(&q), 1);

    /* join with one unfinished */
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_queue_join(&q), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 4 * SEC);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_EQ(take(&q), 5);
    expect_nothing(&q); /* the timed-out put left nothing */
    ASSERT_EQ(corio_queue_task_done(&q), 0);
    ASSERT_EQ(corio_queue_task_done(&q), -EOVERFLOW); /* ... and counted nothing */
    ASSERT_EQ(corio_queue_join(&q), 0);

    /* each completes before its deadline: the scope ends with 0 */
    later l = {&q, 1 * SEC, L_PUT, IT(7), NOT_YET};
    corio_task *t = spawn(t_later, &l);
    ASSERT_EQ(corio_timeout_begin(&sc, 5.0), 0);
    ASSERT_EQ(get_num(&q), 7);
    ASSERT_EQ(corio_scope_end(&sc), 0);
    ASSERT_EQ(corio_now_ns(), 5 * SEC);
    reap(t);

    ASSERT_EQ(corio_queue_try_put(&q, IT(8)), 0);
    l = (later){&q, 1 * SEC, L_TAKE, NULL, NOT_YET};
    t = spawn(t_later, &l);
    ASSERT_EQ(corio_timeout_begin(&sc, 5.0), 0);
    ASSERT_EQ(corio_queue_put(&q, IT(9)), 0);
    ASSERT_EQ(corio_scope_end(&sc), 0);
    ASSERT_EQ(corio_now_ns(), 6 * SEC);
    reap(t);
    ASSERT_EQ(NUM(l.item), 8);
    ASSERT_EQ(take(&q), 9);

    ASSERT_EQ(corio_queue_task_done(&q), 0); /* 7 */
    ASSERT_EQ(corio_queue_task_done(&q), 0); /* 8 */
    l = (later){&q, 1 * SEC, L_TASK_DONE, NULL, NOT_YET};
    t = spawn(t_later, &l);
    ASSERT_EQ(corio_timeout_begin(&sc, 5.0), 0);
    ASSERT_EQ(corio_queue_join(&q), 0);
    ASSERT_EQ(corio_scope_end(&sc), 0);
    ASSERT_EQ(corio_now_ns(), 7 * SEC);
    reap(t);
    ASSERT_EQ(l.rc, 0);

    ASSERT_EQ(corio_sleep(10), 0); /* the ended scopes' deadlines do nothing */
    expect_nothing(&q);
    ASSERT_EQ(corio_queue_task_done(&q), -EOVERFLOW);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_timeout_scope_get_put_join)
{
    run_kinds(main_timeout_scopes);
}

static void *main_wait_for(void *arg)
{
    int kind = KIND(arg);
    corio_queue q;
    qinit(&q, kind, 1);
    void *res = SENTINEL;

    qop o = mkop(&q, NULL);
    ASSERT_EQ(corio_wait_for(corio_coro(c_get, &o), 0.5, &res), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 500 * MS);
    ASSERT_EQ(o.rc, -ECANCELED);
    ASSERT_PTR_EQ(o.item, SENTINEL);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    ASSERT_EQ(corio_queue_size(&q), 1);

    o = mkop(&q, IT(2));
    ASSERT_EQ(corio_wait_for(corio_coro(c_put, &o), 0.5, NULL), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 1000 * MS);
    ASSERT_EQ(o.rc, -ECANCELED);
    ASSERT_EQ(corio_queue_size(&q), 1);

    o = mkop(&q, NULL);
    ASSERT_EQ(corio_wait_for(corio_coro(c_join, &o), 0.5, NULL), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 1500 * MS);
    ASSERT_EQ(o.rc, -ECANCELED);

    /* ready at once */
    o = mkop(&q, NULL);
    ASSERT_EQ(corio_wait_for(corio_coro(c_get, &o), 0.5, &res), 0);
    ASSERT_EQ(NUM(res), 1);
    ASSERT_EQ(corio_now_ns(), 1500 * MS);

    /* ready before the deadline */
    later l = {&q, 200 * MS, L_PUT, IT(3), NOT_YET};
    corio_task *t = spawn(t_later, &l);
    o = mkop(&q, NULL);
    ASSERT_EQ(corio_wait_for(corio_coro(c_get, &o), 0.5, &res), 0);
    ASSERT_EQ(NUM(res), 3);
    ASSERT_EQ(corio_now_ns(), 1700 * MS);
    reap(t);

    /* a negative timeout is none */
    l = (later){&q, 3 * SEC, L_PUT, IT(4), NOT_YET};
    t = spawn(t_later, &l);
    o = mkop(&q, NULL);
    ASSERT_EQ(corio_wait_for(corio_coro(c_get, &o), -1.0, &res), 0);
    ASSERT_EQ(NUM(res), 4);
    ASSERT_EQ(corio_now_ns(), 4700 * MS);
    reap(t);

    ASSERT_EQ(corio_queue_try_put(&q, IT(5)), 0);
    o = mkop(&q, IT(6));
    l = (later){&q, 100 * MS, L_TAKE, NULL, NOT_YET};
    t = spawn(t_later, &l);
    ASSERT_EQ(corio_wait_for(corio_coro(c_put, &o), 0.5, NULL), 0);
    reap(t);
    ASSERT_EQ(NUM(l.item), 5);
    ASSERT_EQ(take(&q), 6);
    done_n(&q, 5);
    o = mkop(&q, NULL);
    ASSERT_EQ(corio_wait_for(corio_coro(c_join, &o), 0.5, NULL), 0);

    /* wait_for on a getter task (propagating its error): cancelled and
     * reaped on timeout */
    qop g = mkop(&q, NULL);
    t = spawn(c_get, &g);
    int64_t t0 = corio_now_ns();
    ASSERT_EQ(corio_wait_for(t, 1.0, NULL), -ETIMEDOUT);
    ASSERT_EQ(corio_task_done(t), 1);
    ASSERT_EQ(g.rc, -ECANCELED);
    ASSERT_EQ(corio_now_ns(), t0 + SEC);
    ASSERT_EQ(corio_task_release(t), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(7)), 0);
    ASSERT_EQ(take(&q), 7);
    done_n(&q, 1);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_wait_for_get_put_join)
{
    run_kinds(main_wait_for);
}

/* A timeout scope that expires after the wakeup was handed over (rescheduled
 * to now by another task before the waiter resumed): -ECANCELED, the scope
 * reports -ETIMEDOUT, and what it was handed is passed on. */
static void *main_scope_expiry_after_wakeup(void *arg)
{
    int kind = KIND(arg);
    corio_queue q;

    /* get: the item back to the front */
    qinit(&q, kind, 0);
    scoped s = {.o = mkop(&q, NULL), .what = W_GET, .seconds = 100};
    corio_task *t = spawn(t_scoped, &s);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(s.begun, 1);
    ASSERT_EQ(corio_queue_try_put(&q, IT(7)), 0);
    ASSERT_EQ(corio_queue_size(&q), 0);
    ASSERT_EQ(corio_scope_reschedule(&s.sc, corio_now_ns()), 0);
    reap(t);
    ASSERT_EQ(s.o.rc, -ECANCELED);
    ASSERT_EQ(s.trc, -ETIMEDOUT);
    ASSERT_PTR_EQ(s.o.item, SENTINEL);
    ASSERT_EQ(take(&q), 7);

    /* get: the item to the next getter */
    s = (scoped){.o = mkop(&q, NULL), .what = W_GET, .seconds = 100};
    qop g2 = mkop(&q, NULL);
    t = spawn(t_scoped, &s);
    corio_task *t2 = spawn(t_get, &g2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(8)), 0);
    ASSERT_EQ(corio_scope_reschedule(&s.sc, corio_now_ns()), 0);
    reap(t);
    reap(t2);
    ASSERT_EQ(s.o.rc, -ECANCELED);
    ASSERT_EQ(s.trc, -ETIMEDOUT);
    ASSERT_EQ(g2.rc, 0);
    ASSERT_EQ(NUM(g2.item), 8);
    expect_nothing(&q);
    done_n(&q, 2);
    ASSERT_EQ(corio_queue_destroy(&q), 0);

    /* put: the promised space to the next putter */
    qinit(&q, kind, 1);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    s = (scoped){.o = mkop(&q, IT(2)), .what = W_PUT, .seconds = 100};
    qop p2 = mkop(&q, IT(3));
    t = spawn(t_scoped, &s);
    t2 = spawn(t_put, &p2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(take(&q), 1);
    ASSERT_EQ(corio_scope_reschedule(&s.sc, corio_now_ns()), 0);
    reap(t);
    reap(t2);
    ASSERT_EQ(s.o.rc, -ECANCELED);
    ASSERT_EQ(s.trc, -ETIMEDOUT);
    ASSERT_EQ(p2.rc, 0);
    ASSERT_EQ(take(&q), 3);
    expect_nothing(&q);
    done_n(&q, 2);

    /* join: woken, then expired: -ECANCELED; another joiner returns 0 */
    ASSERT_EQ(corio_queue_try_put(&q, IT(4)), 0);
    ASSERT_EQ(take(&q), 4);
    s = (scoped){.o = mkop(&q, NULL), .what = W_JOIN, .seconds = 100};
    qop j2 = mkop(&q, NULL);
    t = spawn(t_scoped, &s);
    t2 = spawn(t_join, &j2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_task_done(&q), 0);
    ASSERT_EQ(corio_scope_reschedule(&s.sc, corio_now_ns()), 0);
    reap(t);
    reap(t2);
    ASSERT_EQ(s.o.rc, -ECANCELED);
    ASSERT_EQ(s.trc, -ETIMEDOUT);
    ASSERT_EQ(j2.rc, 0);
    ASSERT_EQ(corio_queue_join(&q), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_queue_destroy(&q), 0);

    /* join woken then the task cancelled: -ECANCELED all the same */
    qinit(&q, kind, 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(4)), 0);
    ASSERT_EQ(take(&q), 4);
    qop j1 = mkop(&q, NULL);
    j2 = mkop(&q, NULL);
    t = spawn(t_join, &j1);
    t2 = spawn(t_join, &j2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_task_done(&q), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    reap(t);
    reap(t2);
    ASSERT_EQ(j1.rc, -ECANCELED);
    ASSERT_EQ(j2.rc, 0);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_scope_expiry_after_wakeup_passes_it_on)
{
    run_kinds(main_scope_expiry_after_wakeup);
}

/* The deadline and the item arrive at the same virtual instant, in either
 * order of timers: one of the two outcomes, consistently. */
static void *main_timeout_same_instant(void *arg)
{
    int kind = KIND(arg);
    for (int order = 0; order < 2; order++) {
        corio_queue q;
        qinit(&q, kind, 0);
        int64_t base = corio_now_ns();
        scoped s = {.o = mkop(&q, NULL), .what = W_GET, .seconds = 1.0};
        later l = {&q, 1 * SEC, L_PUT, IT(42), NOT_YET};
        corio_task *a, *b;
        if (order == 0) {
            a = spawn(t_scoped, &s);
            b = spawn(t_later, &l);
        } else {
            b = spawn(t_later, &l);
            a = spawn(t_scoped, &s);
        }
        reap(a);
        reap(b);
        ASSERT_EQ(l.rc, 0);
        ASSERT_EQ(s.o.at, base + SEC);
        if (s.o.rc == 0) {
            ASSERT_EQ(NUM(s.o.item), 42);
            ASSERT_EQ(s.trc, 0);
            expect_nothing(&q);
        } else {
            ASSERT_EQ(s.o.rc, -ECANCELED);
            ASSERT_EQ(s.trc, -ETIMEDOUT);
            ASSERT_PTR_EQ(s.o.item, SENTINEL);
            ASSERT_EQ(take(&q), 42);
        }
        done_n(&q, 1);
        ASSERT_EQ(corio_queue_destroy(&q), 0);
    }
    return NULL;
}

TEST(queue_timeout_and_item_same_instant)
{
    run_kinds(main_timeout_same_instant);
}

/* ===================================================================================
 * Fairness: first come, first served
 * =================================================================================== */

static void *main_fair_getters(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 0);
    qop g[8];
    corio_task *t[8];
    for (int i = 0; i < 4; i++) {
        g[i] = mkop(&q, NULL);
        t[i] = spawn(t_get, &g[i]);
    }
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(100)), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(101)), 0);
    for (int i = 4; i < 8; i++) { /* late arrivals queue behind */
        g[i] = mkop(&q, NULL);
        t[i] = spawn(t_get, &g[i]);
    }
    ASSERT_EQ(corio_yield(), 0);
    for (int i = 2; i < 8; i++)
        ASSERT_EQ(corio_queue_try_put(&q, IT(100 + i)), 0);
    for (int i = 0; i < 8; i++) {
        reap(t[i]);
        ASSERT_EQ(g[i].rc, 0);
        ASSERT_EQ(NUM(g[i].item), 100 + i);
    }
    expect_nothing(&q);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_fair_getters_first_come_first_served)
{
    run_kinds(main_fair_getters);
}

static void *main_fair_putters(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 1);
    ASSERT_EQ(corio_queue_try_put(&q, IT(100)), 0);
    qop p[8];
    corio_task *t[8];
    for (int i = 0; i < 4; i++) {
        p[i] = mkop(&q, IT(i));
        t[i] = spawn(t_put, &p[i]);
    }
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(take(&q), 100);
    /* the space is promised to p0: nobody else may take it */
    ASSERT_EQ(corio_queue_full(&q), 1);
    ASSERT_EQ(corio_queue_try_put(&q, IT(99)), -EAGAIN);
    for (int i = 4; i < 8; i++) {
        p[i] = mkop(&q, IT(i));
        t[i] = spawn(t_put, &p[i]);
    }
    for (int i = 0; i < 8; i++) {
        ASSERT_EQ(corio_yield(), 0); /* the putter owed the space puts */
        ASSERT_EQ(take(&q), i);      /* in arrival order */
    }
    for (int i = 0; i < 8; i++) {
        reap(t[i]);
        ASSERT_EQ(p[i].rc, 0);
    }
    expect_nothing(&q);
    ASSERT_EQ(corio_queue_destroy(&q), 0);

    /* several spaces freed at once go to the first putters, in order */
    qinit(&q, KIND(arg), 3);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(corio_queue_try_put(&q, IT(100 + i)), 0);
    for (int i = 0; i < 5; i++) {
        p[i] = mkop(&q, IT(10 + i));
        t[i] = spawn(t_put, &p[i]);
    }
    ASSERT_EQ(corio_yield(), 0);
    take(&q);
    take(&q);
    ASSERT_EQ(corio_queue_try_put(&q, IT(99)), -EAGAIN);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(p[0].rc, 0);
    ASSERT_EQ(p[1].rc, 0);
    for (int i = 2; i < 5; i++)
        ASSERT_EQ(p[i].rc, NOT_YET);
    ASSERT_EQ(corio_queue_size(&q), 3);
    for (int i = 2; i < 5; i++) {
        take(&q);
        ASSERT_EQ(corio_yield(), 0);
        ASSERT_EQ(p[i].rc, 0);
        for (int k = i + 1; k < 5; k++)
            ASSERT_EQ(p[k].rc, NOT_YET);
    }
    while (corio_queue_size(&q) > 0)
        take(&q);
    for (int i = 0; i < 5; i++) {
        reap(t[i]);
        ASSERT_EQ(p[i].rc, 0);
    }
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_fair_putters_first_come_first_served)
{
    run_kinds(main_fair_putters);
}

/* ===================================================================================
 * Priority: smallest by cmp first, equal items in put order
 * =================================================================================== */

static void *main_priority_stable(void *arg)
{
    (void)arg;
    corio_queue q;
    ASSERT_EQ(corio_queue_init(&q, CORIO_QUEUE_PRIORITY, 0, cmp_key), 0);
    static const int keys[] = {3, 1, 3, 2, 1, 3, 2, 1, 0, 3};
    int n = (int)(sizeof keys / sizeof keys[0]);
    for (int i = 0; i < n; i++)
        ASSERT_EQ(corio_queue_try_put(&q, IT(keys[i] * KEY_DIV + i)), 0);
    long prev = -1;
    for (int i = 0; i < n; i++) {
        long x = take(&q);
        ASSERT_GT(x, prev); /* by key, then by put order (id) */
        prev = x;
    }

    /* a given-back item goes ahead of the items equal to it */
    qop g = mkop(&q, NULL);
    corio_task *t = spawn(t_get, &g);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(5 * KEY_DIV + 1)), 0); /* handed to g */
    ASSERT_EQ(corio_queue_try_put(&q, IT(5 * KEY_DIV + 2)), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(5 * KEY_DIV + 3)), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(6 * KEY_DIV + 4)), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    reap(t);
    ASSERT_EQ(g.rc, -ECANCELED);
    ASSERT_EQ(take(&q), 5 * KEY_DIV + 1);
    ASSERT_EQ(take(&q), 5 * KEY_DIV + 2);
    ASSERT_EQ(take(&q), 5 * KEY_DIV + 3);
    ASSERT_EQ(take(&q), 6 * KEY_DIV + 4);

    /* ... but behind a smaller one */
    g = mkop(&q, NULL);
    t = spawn(t_get, &g);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(5 * KEY_DIV + 5)), 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(3 * KEY_DIV + 6)), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    reap(t);
    ASSERT_EQ(take(&q), 3 * KEY_DIV + 6);
    ASSERT_EQ(take(&q), 5 * KEY_DIV + 5);
    expect_nothing(&q);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_priority_equal_items_in_put_order)
{
    ASSERT_EQ(test_run_virtual(main_priority_stable, NULL, NULL), 0);
}

/* Random try_put / try_get against a reference model, for each kind and a
 * few bounds (equal keys are frequent: priority stability). */
static void *main_model(void *arg)
{
    int kind = KIND(arg);
    static const size_t maxsizes[4] = {0, 1, 3, 7};
    uint64_t rng = 0x9E3779B97F4A7C15ULL + (uint64_t)kind;
    long serial = 0;
    for (int m = 0; m < 4; m++) {
        size_t maxsize = maxsizes[m];
        corio_queue q;
        ASSERT_EQ(corio_queue_init(&q, kind, maxsize, kind == CORIO_QUEUE_PRIORITY ? cmp_key : NULL), 0);
        model md = {.n = 0, .kind = kind};
        long puts = 0;
        for (int step = 0; step < 4000; step++) {
            uint64_t r = rng_next(&rng);
            if (r % 10 < 5 && md.n < 100) {
                long item = (long)((r >> 8) % 4) * KEY_DIV + (serial++ % KEY_DIV);
                int rc = corio_queue_try_put(&q, IT(item));
                if (maxsize && (size_t)md.n == maxsize) {
                    ASSERT_EQ(rc, -EAGAIN);
                } else {
                    ASSERT_EQ(rc, 0);
                    md.v[md.n++] = item;
                    puts++;
                }
            } else {
                void *it = SENTINEL;
                int rc = corio_queue_try_get(&q, &it);
                if (md.n == 0) {
                    ASSERT_EQ(rc, -EAGAIN);
                    ASSERT_PTR_EQ(it, SENTINEL);
                } else {
                    ASSERT_EQ(rc, 0);
                    ASSERT_EQ(NUM(it), model_take(&md));
                }
            }
            ASSERT_EQ(corio_queue_size(&q), md.n);
            ASSERT_EQ(corio_queue_empty(&q), md.n == 0);
            ASSERT_EQ(corio_queue_full(&q), maxsize != 0 && (size_t)md.n == maxsize);
        }
        done_n(&q, puts);
        ASSERT_EQ(corio_queue_destroy(&q), 0);
    }
    return NULL;
}

TEST(queue_model_random_try_ops)
{
    run_kinds(main_model);
}

/* ===================================================================================
 * Select
 * =================================================================================== */

/* One scenario: n ops over n queues (maxsize 1, kinds rotating); op i is a
 * GET or a PUT, ready or not:
 *   GET ready: holds 100+i   GET waiting: empty
 *   PUT ready: empty         PUT waiting: full with 200+i
 * A PUT puts 300+i. The helper makes op `trigger` ready first (GET: puts
 * 400+i; PUT: takes the filler), then every other op too, in the same turn. */
struct combo {
    size_t n;
    corio_queue q[8];
    corio_select_op ops[8];
    void *outs[8];
    int is_put[8];
    int trigger;
    int64_t delay;
};

static unsigned combo_salt;

static void combo_setup(struct combo *c, size_t n, unsigned puts, unsigned ready)
{
    unsigned salt = combo_salt++;
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        qinit(&c->q[i], kinds[(salt + i) % 3], 1);
        c->is_put[i] = (puts >> i) & 1;
        int r = (ready >> i) & 1;
        if (!c->is_put[i] && r)
            ASSERT_EQ(corio_queue_try_put(&c->q[i], IT(100 + i)), 0);
        if (c->is_put[i] && !r)
            ASSERT_EQ(corio_queue_try_put(&c->q[i], IT(200 + i)), 0);
        c->outs[i] = SENTINEL;
        c->ops[i] = (corio_select_op){.kind = c->is_put[i] ? CORIO_SELECT_PUT : CORIO_SELECT_GET,
                                      .queue = &c->q[i],
                                      .item = c->is_put[i] ? IT(300 + i) : NULL,
                                      .item_out = c->is_put[i] ? NULL : &c->outs[i],
                                      .result = NOT_YET};
    }
}

static void combo_destroy(struct combo *c)
{
    for (size_t i = 0; i < c->n; i++) {
        expect_nothing(&c->q[i]);
        ASSERT_EQ(corio_queue_destroy(&c->q[i]), 0);
    }
}

static void combo_check_ready(struct combo *c, unsigned ready, int rc)
{
    int first = -1;
    for (size_t i = 0; i < c->n && first < 0; i++)
        if ((ready >> i) & 1)
            first = (int)i;
    ASSERT_EQ(rc, first);
    ASSERT_EQ(c->ops[first].result, 0);
    for (size_t i = 0; i < c->n; i++) {
        int r = (ready >> i) & 1;
        if (!c->is_put[i]) {
            if ((int)i == first) {
                ASSERT_EQ(NUM(c->outs[i]), 100 + (long)i);
            } else {
                ASSERT_PTR_EQ(c->outs[i], SENTINEL);
                if (r)
                    ASSERT_EQ(take(&c->q[i]), 100 + (long)i);
            }
        } else {
            if ((int)i == first)
                ASSERT_EQ(take(&c->q[i]), 300 + (long)i);
            else if (!r)
                ASSERT_EQ(take(&c->q[i]), 200 + (long)i);
        }
    }
    combo_destroy(c);
}

static void combo_make_ready(struct combo *c, size_t i)
{
    if (c->is_put[i])
        ASSERT_EQ(take(&c->q[i]), 200 + (long)i);
    else
        ASSERT_EQ(corio_queue_try_put(&c->q[i], IT(400 + i)), 0);
}

static void *combo_helper(void *arg)
{
    struct combo *c = arg;
    ASSERT_EQ(corio_sleep_ns(c->delay), 0);
    combo_make_ready(c, (size_t)c->trigger);
    for (size_t i = 0; i < c->n; i++)
        if ((int)i != c->trigger)
            combo_make_ready(c, i);
    return NULL;
}

static void combo_check_woken(struct combo *c, int rc)
{
    int k = c->trigger;
    ASSERT_EQ(rc, k);
    ASSERT_EQ(c->ops[k].result, 0);
    for (size_t i = 0; i < c->n; i++) {
        if (!c->is_put[i]) {
            if ((int)i == k) {
                ASSERT_EQ(NUM(c->outs[i]), 400 + (long)i);
            } else {
                ASSERT_PTR_EQ(c->outs[i], SENTINEL);
                ASSERT_EQ(take(&c->q[i]), 400 + (long)i);
            }
        } else if ((int)i == k) {
            ASSERT_EQ(take(&c->q[i]), 300 + (long)i);
        }
        /* a PUT that did not win: the helper emptied it, nothing was put */
    }
    combo_destroy(c);
}

/* Nothing ready, nothing completed: no effect, and no stale waiter left. */
static void combo_check_untouched(struct combo *c)
{
    for (size_t i = 0; i < c->n; i++) {
        ASSERT_EQ(c->ops[i].result, NOT_YET);
        if (!c->is_put[i]) {
            ASSERT_PTR_EQ(c->outs[i], SENTINEL);
            ASSERT_EQ(corio_queue_size(&c->q[i]), 0);
            ASSERT_EQ(corio_queue_try_put(&c->q[i], IT(500 + i)), 0);
            ASSERT_EQ(corio_queue_size(&c->q[i]), 1);
            ASSERT_EQ(take(&c->q[i]), 500 + (long)i);
        } else {
            ASSERT_EQ(corio_queue_size(&c->q[i]), 1);
            ASSERT_EQ(take(&c->q[i]), 200 + (long)i);
        }
    }
    combo_destroy(c);
}

static void *main_select_ready(void *arg)
{
    (void)arg;
    static const double timeouts[3] = {-1.0, 0.0, 5.0};
    struct combo c;
    long cases = 0;
    for (size_t n = 1; n <= 4; n++)
        for (unsigned puts = 0; puts < (1u << n); puts++)
            for (unsigned ready = 1; ready < (1u << n); ready++)
                for (int ti = 0; ti < 3; ti++) {
                    combo_setup(&c, n, puts, ready);
                    int64_t t0 = corio_now_ns();
                    int rc = corio_select(c.ops, n, timeouts[ti]);
                    ASSERT_EQ(corio_now_ns(), t0);
                    combo_check_ready(&c, ready, rc);
                    cases++;
                }
    ASSERT_EQ(cases, 3 * (2 * 1 + 4 * 3 + 8 * 7 + 16 * 15));
    ASSERT_EQ(corio_sleep(10), 0); /* no timer was left behind */
    return NULL;
}

TEST(select_ready_combinations_first_in_array_order)
{
    ASSERT_EQ(test_run_virtual(main_select_ready, NULL, NULL), 0);
}

static void *main_select_waiting(void *arg)
{
    (void)arg;
    struct combo c;
    long cases = 0;
    for (size_t n = 1; n <= 4; n++)
        for (unsigned puts = 0; puts < (1u << n); puts++) {
            /* timeout 0 polls: -ETIMEDOUT, no effect */
            combo_setup(&c, n, puts, 0);
            int64_t t0 = corio_now_ns();
            ASSERT_EQ(corio_select(c.ops, n, 0), -ETIMEDOUT);
            ASSERT_EQ(corio_now_ns(), t0);
            combo_check_untouched(&c);

            /* a positive timeout on the virtual clock */
            combo_setup(&c, n, puts, 0);
            t0 = corio_now_ns();
            ASSERT_EQ(corio_select(c.ops, n, 0.25), -ETIMEDOUT);
            ASSERT_EQ(corio_now_ns(), t0 + 250 * MS);
            combo_check_untouched(&c);

            /* op k becomes ready first, then all the others in the same turn:
             * exactly k completes */
            for (size_t k = 0; k < n; k++)
                for (int ti = 0; ti < 2; ti++) {
                    combo_setup(&c, n, puts, 0);
                    c.trigger = (int)k;
                    c.delay = SEC;
                    corio_task *h = spawn(combo_helper, &c);
                    t0 = corio_now_ns();
                    int rc = corio_select(c.ops, n, ti ? 5.0 : -1.0);
                    ASSERT_EQ(corio_now_ns(), t0 + SEC);
                    reap(h);
                    combo_check_woken(&c, rc);
                    cases++;
                }
        }
    ASSERT_EQ(cases, 2 * (1 * 2 + 2 * 4 + 3 * 8 + 4 * 16));
    int64_t t0 = corio_now_ns();
    ASSERT_EQ(corio_sleep(10), 0); /* the selects' timers are gone */
    ASSERT_EQ(corio_now_ns(), t0 + 10 * SEC);
    return NULL;
}

TEST(select_waiting_combinations_first_ready_wins)
{
    ASSERT_EQ(test_run_virtual(main_select_waiting, NULL, NULL), 0);
}

/* More ops than fit the small inline array, ready and waiting. */
static void *main_select_many(void *arg)
{
    (void)arg;
    enum { N = 64 };
    corio_queue *q = calloc(N, sizeof *q);
    corio_select_op *ops = calloc(N, sizeof *ops);
    void **outs = calloc(N, sizeof *outs);
    ASSERT_NOT_NULL(q);
    ASSERT_NOT_NULL(ops);
    ASSERT_NOT_NULL(outs);
    for (int i = 0; i < N; i++) {
        qinit(&q[i], kinds[i % 3], 1);
        outs[i] = SENTINEL;
        if (i % 2) { /* PUT on a full queue */
            ASSERT_EQ(corio_queue_try_put(&q[i], IT(200 + i)), 0);
            ops[i] = (corio_select_op){.kind = CORIO_SELECT_PUT, .queue = &q[i], .item = IT(300 + i),
                                       .result = NOT_YET};
        } else {     /* GET on an empty queue */
            ops[i] = (corio_select_op){.kind = CORIO_SELECT_GET, .queue = &q[i],
                                       .item_out = &outs[i], .result = NOT_YET};
        }
    }
    ASSERT_EQ(corio_select(ops, N, 0), -ETIMEDOUT);
    /* ready: the 41st and the 60th; the 41st wins */
    ASSERT_EQ(take(&q[41]), 241);
    ASSERT_EQ(corio_queue_try_put(&q[60], IT(460)), 0);
    ASSERT_EQ(corio_select(ops, N, -1), 41);
    ASSERT_EQ(ops[41].result, 0);
    ASSERT_EQ(take(&q[41]), 341);
    ASSERT_EQ(corio_queue_try_put(&q[41], IT(241)), 0);
    ASSERT_EQ(corio_select(ops, N, -1), 60);
    ASSERT_EQ(NUM(outs[60]), 460);
    /* waiting: the last becomes ready after 1 s */
    later l = {&q[N - 1], SEC, L_TAKE, NULL, NOT_YET};
    corio_task *t = spawn(t_later, &l);
    ASSERT_EQ(corio_select(ops, N, 3.0), N - 1);
    ASSERT_EQ(corio_now_ns(), SEC);
    reap(t);
    ASSERT_EQ(NUM(l.item), 200 + N - 1);
    ASSERT_EQ(take(&q[N - 1]), 300 + N - 1);
    ASSERT_EQ(corio_queue_try_put(&q[N - 1], IT(200 + N - 1)), 0);
    /* and the timeout */
    ASSERT_EQ(corio_select(ops, N, 2.0), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    for (int i = 0; i < N; i++) {
        if (i % 2)
            ASSERT_EQ(take(&q[i]), 200 + i);
        else if (i != 60)
            ASSERT_PTR_EQ(outs[i], SENTINEL);
        expect_nothing(&q[i]);
        ASSERT_EQ(corio_queue_destroy(&q[i]), 0);
    }
    free(q);
    free(ops);
    free(outs);
    return NULL;
}

TEST(select_many_ops)
{
    ASSERT_EQ(test_run_virtual(main_select_many, NULL, NULL), 0);
}

static void *main_select_shutdown(void *arg)
{
    (void)arg;
    corio_queue a, b;
    sel s;

    /* ready at once: a shut-down queue completes its op with -ESHUTDOWN */
    qinit(&a, CORIO_QUEUE_FIFO, 0);
    qinit(&b, CORIO_QUEUE_LIFO, 1);
    ASSERT_EQ(corio_queue_try_put(&b, IT(1)), 0);
    ASSERT_EQ(corio_queue_shutdown(&b, 0), 0);
    sel_init(&s, -1);
    sel_get(&s, 0, &a);
    sel_put(&s, 1, &b, IT(9));
    ASSERT_EQ(corio_select(s.ops, s.n, -1), 1);
    ASSERT_EQ(s.ops[1].result, -ESHUTDOWN);
    ASSERT_PTR_EQ(s.outs[0], SENTINEL);
    ASSERT_EQ(corio_queue_size(&a), 0);
    ASSERT_EQ(corio_queue_size(&b), 1); /* the item stays, 9 was not put */
    /* a GET on it drains first, then -ESHUTDOWN */
    sel_init(&s, 0);
    sel_get(&s, 0, &b);
    ASSERT_EQ(corio_select(s.ops, s.n, 0), 0);
    ASSERT_EQ(s.ops[0].result, 0);
    ASSERT_EQ(NUM(s.outs[0]), 1);
    sel_init(&s, 0);
    sel_get(&s, 0, &a);
    sel_get(&s, 1, &b);
    ASSERT_EQ(corio_select(s.ops, s.n, 0), 1);
    ASSERT_EQ(s.ops[1].result, -ESHUTDOWN);
    ASSERT_PTR_EQ(s.outs[1], SENTINEL);
    /* array order still rules: a ready PUT before the shut-down op */
    sel_init(&s, -1);
    sel_put(&s, 0, &a, IT(5));
    sel_get(&s, 1, &b);
    ASSERT_EQ(corio_select(s.ops, s.n, -1), 0);
    ASSERT_EQ(s.ops[0].result, 0);
    ASSERT_EQ(take(&a), 5);
    ASSERT_EQ(corio_queue_destroy(&a), 0);
    ASSERT_EQ(corio_queue_destroy(&b), 0);

    /* waiting, then shut down: PUT side, GET side, immediate */
    for (int which = 0; which < 3; which++) {
        qinit(&a, CORIO_QUEUE_FIFO, 0);
        qinit(&b, CORIO_QUEUE_PRIORITY, 1);
        ASSERT_EQ(corio_queue_try_put(&b, IT(1)), 0);
        sel_init(&s, -1);
        sel_get(&s, 0, &a);
        sel_put(&s, 1, &b, IT(9));
        corio_task *t = spawn(t_select, &s);
        ASSERT_EQ(corio_sleep(1), 0);
        ASSERT_EQ(s.rc, NOT_YET);
        if (which == 0)
            ASSERT_EQ(corio_queue_shutdown(&b, 0), 0);
        else
            ASSERT_EQ(corio_queue_shutdown(&a, which == 2), 0);
        reap(t);
        ASSERT_EQ(s.at, SEC * (which + 1));
        if (which == 0) {
            ASSERT_EQ(s.rc, 1);
            ASSERT_EQ(s.ops[1].result, -ESHUTDOWN);
            ASSERT_PTR_EQ(s.outs[0], SENTINEL);
            ASSERT_EQ(corio_queue_try_put(&a, IT(2)), 0); /* no stale getter */
            ASSERT_EQ(take(&a), 2);
            ASSERT_EQ(take(&b), 1); /* 9 was not put */
        } else {
            ASSERT_EQ(s.rc, 0);
            ASSERT_EQ(s.ops[0].result, -ESHUTDOWN);
            ASSERT_PTR_EQ(s.outs[0], SENTINEL);
            ASSERT_EQ(take(&b), 1);
            ASSERT_EQ(corio_queue_try_put(&b, IT(3)), 0); /* no stale putter */
            ASSERT_EQ(take(&b), 3);
        }
        ASSERT_EQ(corio_queue_destroy(&a), 0);
        ASSERT_EQ(corio_queue_destroy(&b), 0);
    }
    return NULL;
}

TEST(select_shutdown_completes_op_with_eshutdown)
{
    ASSERT_EQ(test_run_virtual(main_select_shutdown, NULL, NULL), 0);
}

static void *main_select_cancel(void *arg)
{
    int kind = KIND(arg);
    corio_queue a, b, e;
    sel s;
    corio_task *t, *t2;

    /* cancelled while waiting: no effect on either queue */
    qinit(&a, kind, 0);
    qinit(&b, kind, 1);
    ASSERT_EQ(corio_queue_try_put(&b, IT(1)), 0);
    sel_init(&s, -1);
    sel_get(&s, 0, &a);
    sel_put(&s, 1, &b, IT(9));
    t = spawn(t_select, &s);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_destroy(&a), -EBUSY);
    ASSERT_EQ(corio_queue_destroy(&b), -EBUSY);
    ASSERT_EQ(corio_cancel(t), 1);
    reap(t);
    ASSERT_EQ(s.rc, -ECANCELED);
    ASSERT_EQ(s.ops[0].result, NOT_YET);
    ASSERT_EQ(s.ops[1].result, NOT_YET);
    ASSERT_PTR_EQ(s.outs[0], SENTINEL);
    ASSERT_EQ(corio_queue_try_put(&a, IT(5)), 0);
    ASSERT_EQ(take(&a), 5);
    ASSERT_EQ(take(&b), 1);
    expect_nothing(&b);
    ASSERT_EQ(corio_queue_destroy(&a), 0);
    ASSERT_EQ(corio_queue_destroy(&b), 0);

    /* cancelled after a GET was handed its item: back to the queue's front */
    qinit(&a, kind, 0);
    qinit(&e, kind, 0);
    sel_init(&s, -1);
    sel_get(&s, 0, &e);
    sel_get(&s, 1, &a);
    t = spawn(t_select, &s);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_try_put(&a, IT(7)), 0);
    ASSERT_EQ(corio_queue_try_put(&a, IT(8)), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    reap(t);
    ASSERT_EQ(s.rc, -ECANCELED);
    ASSERT_PTR_EQ(s.outs[1], SENTINEL);
    ASSERT_EQ(take(&a), 7);
    ASSERT_EQ(take(&a), 8);
    ASSERT_EQ(corio_queue_try_put(&e, IT(6)), 0); /* no stale getter on e */
    ASSERT_EQ(take(&e), 6);

    /* ... or to the next waiting getter */
    sel_init(&s, -1);
    sel_get(&s, 0, &e);
    sel_get(&s, 1, &a);
    qop g2 = mkop(&a, NULL);
    t = spawn(t_select, &s);
    t2 = spawn(t_get, &g2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_try_put(&a, IT(7)), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    reap(t);
    reap(t2);
    ASSERT_EQ(s.rc, -ECANCELED);
    ASSERT_EQ(g2.rc, 0);
    ASSERT_EQ(NUM(g2.item), 7);
    expect_nothing(&a);
    expect_nothing(&e);
    ASSERT_EQ(corio_queue_destroy(&a), 0);
    ASSERT_EQ(corio_queue_destroy(&e), 0);

    /* cancelled after a PUT was promised space: the space to the next putter */
    qinit(&b, kind, 1);
    qinit(&e, kind, 0);
    ASSERT_EQ(corio_queue_try_put(&b, IT(1)), 0);
    sel_init(&s, -1);
    sel_get(&s, 0, &e);
    sel_put(&s, 1, &b, IT(9));
    qop p2 = mkop(&b, IT(10));
    t = spawn(t_select, &s);
    t2 = spawn(t_put, &p2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(take(&b), 1);
    ASSERT_EQ(corio_cancel(t), 1);
    reap(t);
    reap(t2);
    ASSERT_EQ(s.rc, -ECANCELED);
    ASSERT_EQ(p2.rc, 0);
    ASSERT_EQ(take(&b), 10);
    expect_nothing(&b);
    /* ... and with no next putter the space stays free */
    ASSERT_EQ(corio_queue_try_put(&b, IT(1)), 0);
    sel_init(&s, -1);
    sel_get(&s, 0, &e);
    sel_put(&s, 1, &b, IT(9));
    t = spawn(t_select, &s);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(take(&b), 1);
    ASSERT_EQ(corio_cancel(t), 1);
    reap(t);
    ASSERT_EQ(s.rc, -ECANCELED);
    expect_nothing(&b);
    ASSERT_EQ(corio_queue_try_put(&b, IT(11)), 0);
    ASSERT_EQ(take(&b), 11);
    ASSERT_EQ(corio_queue_destroy(&b), 0);
    ASSERT_EQ(corio_queue_destroy(&e), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    return NULL;
}

TEST(select_cancel_while_waiting_and_after_wakeup)
{
    run_kinds(main_select_cancel);
}

static void *main_select_scopes(void *arg)
{
    int kind = KIND(arg);
    corio_queue a, b;
    qinit(&a, kind, 0);
    qinit(&b, kind, 1);
    ASSERT_EQ(corio_queue_try_put(&b, IT(1)), 0);
    sel s;
    sel_init(&s, -1);
    sel_get(&s, 0, &a);
    sel_put(&s, 1, &b, IT(9));
    corio_scope sc;

    /* a timeout scope around a select with no timeout */
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_select(s.ops, s.n, -1), -ECANCELED);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    /* the scope first */
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_select(s.ops, s.n, 3.0), -ECANCELED);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    /* the select's own timeout first: the scope was not what interrupted */
    ASSERT_EQ(corio_timeout_begin(&sc, 3.0), 0);
    ASSERT_EQ(corio_select(s.ops, s.n, 1.0), -ETIMEDOUT);
    ASSERT_EQ(corio_scope_end(&sc), 0);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    /* wait_for around a select */
    sel s2;
    sel_init(&s2, -1);
    sel_get(&s2, 0, &a);
    sel_put(&s2, 1, &b, IT(9));
    ASSERT_EQ(corio_wait_for(corio_coro(t_select, &s2), 0.5, NULL), -ETIMEDOUT);
    ASSERT_EQ(s2.rc, -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 3500 * MS);
    ASSERT_EQ(s.ops[0].result, NOT_YET);
    ASSERT_PTR_EQ(s.outs[0], SENTINEL);
    ASSERT_EQ(corio_sleep(5), 0);

    /* a scope expiring after the select was handed an item: the item back */
    s2.timeout = -1;
    scoped sp = {.o = mkop(&a, NULL), .what = W_SELECT, .s = &s2, .seconds = 100};
    corio_task *t = spawn(t_scoped, &sp);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_try_put(&a, IT(7)), 0);
    ASSERT_EQ(corio_scope_reschedule(&sp.sc, corio_now_ns()), 0);
    reap(t);
    ASSERT_EQ(sp.o.rc, -ECANCELED);
    ASSERT_EQ(sp.trc, -ETIMEDOUT);
    ASSERT_PTR_EQ(s2.outs[0], SENTINEL);
    ASSERT_EQ(take(&a), 7);
    /* ... after it was promised space: the space back */
    sel_init(&s2, -1);
    sel_get(&s2, 0, &a);
    sel_put(&s2, 1, &b, IT(9));
    sp = (scoped){.o = mkop(&a, NULL), .what = W_SELECT, .s = &s2, .seconds = 100};
    t = spawn(t_scoped, &sp);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(take(&b), 1);
    ASSERT_EQ(corio_scope_reschedule(&sp.sc, corio_now_ns()), 0);
    reap(t);
    ASSERT_EQ(sp.o.rc, -ECANCELED);
    ASSERT_EQ(sp.trc, -ETIMEDOUT);
    expect_nothing(&b);
    ASSERT_EQ(corio_queue_try_put(&b, IT(2)), 0);
    ASSERT_EQ(take(&b), 2);
    expect_nothing(&a);
    ASSERT_EQ(corio_queue_destroy(&a), 0);
    ASSERT_EQ(corio_queue_destroy(&b), 0);
    return NULL;
}

TEST(select_timeout_scopes_and_wait_for)
{
    run_kinds(main_select_scopes);
}

/* The select's own timeout and an item at the same instant: one outcome. */
static void *main_select_timeout_same_instant(void *arg)
{
    (void)arg;
    for (int order = 0; order < 2; order++) {
        corio_queue a;
        qinit(&a, CORIO_QUEUE_FIFO, 0);
        int64_t base = corio_now_ns();
        sel s;
        sel_init(&s, 1.0);
        sel_get(&s, 0, &a);
        later l = {&a, SEC, L_PUT, IT(42), NOT_YET};
        corio_task *x, *y;
        if (order == 0) {
            x = spawn(t_select, &s);
            y = spawn(t_later, &l);
        } else {
            y = spawn(t_later, &l);
            x = spawn(t_select, &s);
        }
        reap(x);
        reap(y);
        ASSERT_EQ(s.at, base + SEC);
        if (s.rc == 0) {
            ASSERT_EQ(NUM(s.outs[0]), 42);
            expect_nothing(&a);
        } else {
            ASSERT_EQ(s.rc, -ETIMEDOUT);
            ASSERT_PTR_EQ(s.outs[0], SENTINEL);
            ASSERT_EQ(take(&a), 42);
        }
        ASSERT_EQ(corio_queue_destroy(&a), 0);
    }
    return NULL;
}

TEST(select_timeout_and_item_same_instant)
{
    ASSERT_EQ(test_run_virtual(main_select_timeout_same_instant, NULL, NULL), 0);
}

/* Selects queue up with plain waiters, first come first served. */
static void *main_select_fair(void *arg)
{
    int kind = KIND(arg);
    corio_queue q, other;
    qinit(&q, kind, 0);
    qinit(&other, kind, 0);
    qop g1 = mkop(&q, NULL), g2 = mkop(&q, NULL);
    sel s;
    sel_init(&s, -1);
    sel_get(&s, 0, &other);
    sel_get(&s, 1, &q);
    corio_task *t1 = spawn(t_get, &g1), *ts = spawn(t_select, &s), *t2 = spawn(t_get, &g2);
    ASSERT_EQ(corio_yield(), 0);
    for (int i = 1; i <= 3; i++)
        ASSERT_EQ(corio_queue_try_put(&q, IT(i)), 0);
    reap(t1);
    reap(ts);
    reap(t2);
    ASSERT_EQ(NUM(g1.item), 1);
    ASSERT_EQ(s.rc, 1);
    ASSERT_EQ(NUM(s.outs[1]), 2);
    ASSERT_EQ(NUM(g2.item), 3);
    expect_nothing(&q);

    /* putters */
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    qinit(&q, kind, 1);
    ASSERT_EQ(corio_queue_try_put(&q, IT(100)), 0);
    qop p1 = mkop(&q, IT(1)), p2 = mkop(&q, IT(3));
    sel_init(&s, -1);
    sel_get(&s, 0, &other);
    sel_put(&s, 1, &q, IT(2));
    t1 = spawn(t_put, &p1);
    ts = spawn(t_select, &s);
    t2 = spawn(t_put, &p2);
    ASSERT_EQ(corio_yield(), 0);
    for (int i = 0; i <= 3; i++) {
        ASSERT_EQ(take(&q), i == 0 ? 100 : i);
        ASSERT_EQ(corio_yield(), 0);
    }
    reap(t1);
    reap(ts);
    reap(t2);
    ASSERT_EQ(s.rc, 1);
    ASSERT_EQ(s.ops[1].result, 0);
    expect_nothing(&q);
    expect_nothing(&other);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    ASSERT_EQ(corio_queue_destroy(&other), 0);
    return NULL;
}

TEST(select_fair_with_plain_waiters)
{
    run_kinds(main_select_fair);
}

/* The select version of queue_putter_handing_to_getter_wakes_next_putter. */
static void *main_select_put_handoff_next(void *arg)
{
    int kind = KIND(arg);
    corio_queue q;
    qinit(&q, kind, 1);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    sel s;
    sel_init(&s, -1);
    sel_put(&s, 0, &q, IT(2));
    qop p2 = mkop(&q, IT(3));
    corio_task *ts = spawn(t_select, &s), *t2 = spawn(t_put, &p2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(take(&q), 1);
    ASSERT_EQ(get_num(&q), 2);
    corio_scope sc;
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    void *it = SENTINEL;
    int rc = corio_queue_get(&q, &it);
    int trc = corio_scope_end(&sc);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(trc, 0);
    ASSERT_EQ(NUM(it), 3);
    reap(ts);
    reap(t2);
    ASSERT_EQ(s.rc, 0);
    ASSERT_EQ(p2.rc, 0);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(select_put_handing_to_getter_wakes_next_putter)
{
    run_kinds(main_select_put_handoff_next);
}

static void *main_select_bad(void *arg)
{
    (void)arg;
    corio_queue a, zero;
    memset(&zero, 0, sizeof zero);
    qinit(&a, CORIO_QUEUE_FIFO, 1);
    ASSERT_EQ(corio_queue_try_put(&a, IT(1)), 0);
    void *out = SENTINEL;
    corio_select_op ops[2] = {
        {.kind = CORIO_SELECT_GET, .queue = &a, .item_out = &out, .result = NOT_YET},
        {.kind = CORIO_SELECT_GET, .queue = &a, .item_out = &out, .result = NOT_YET},
    };
    ASSERT_EQ(corio_select(NULL, 1, -1), -EINVAL);
    ASSERT_EQ(corio_select(ops, 0, -1), -EINVAL);
    ASSERT_EQ(corio_select(ops, 1, NAN), -EINVAL);
    static const int bad_kinds[3] = {0, 3, -1};
    for (int i = 0; i < 3; i++) {
        ops[1].kind = bad_kinds[i];
        ASSERT_EQ(corio_select(ops, 2, -1), -EINVAL);
        ASSERT_EQ(corio_select(ops, 2, 0), -EINVAL);
    }
    ops[1].kind = CORIO_SELECT_GET;
    ops[1].queue = NULL;
    ASSERT_EQ(corio_select(ops, 2, -1), -EINVAL);
    ops[1].queue = &zero;
    ASSERT_EQ(corio_select(ops, 2, -1), -EINVAL);
    ops[1].kind = CORIO_SELECT_PUT;
    ASSERT_EQ(corio_select(ops, 2, -1), -EINVAL);
    /* a failed select had no effect, not even on the ready op before it */
    ASSERT_PTR_EQ(out, SENTINEL);
    ASSERT_EQ(ops[0].result, NOT_YET);
    ASSERT_EQ(corio_queue_size(&a), 1);
    /* a bad op before a ready PUT */
    ASSERT_EQ(take(&a), 1);
    corio_select_op ops2[2] = {
        {.kind = CORIO_SELECT_PUT, .queue = &a, .item = IT(5), .result = NOT_YET},
        {.kind = 7, .queue = &a, .result = NOT_YET},
    };
    ASSERT_EQ(corio_select(ops2, 2, 0), -EINVAL);
    expect_nothing(&a);
    ASSERT_EQ(corio_queue_destroy(&a), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    return NULL;
}

TEST(select_bad_ops_einval_no_effect)
{
    ASSERT_EQ(test_run_virtual(main_select_bad, NULL, NULL), 0);
}

/* ===================================================================================
 * Stress: 100,000 tasks on one bounded queue, random cancels
 * =================================================================================== */

struct stress {
    corio_queue q[2];
    long np, nc;
    int *put_rc;
    unsigned char *seen;
    corio_task **prod, **cons;
    long got, dup, bad;
    long cancels_prod, cancels_cons;
    uint64_t rng;
    int use_select;
    int stop;      /* the producers are done: the canceller stops */
};

static struct stress *ST;

static void *st_producer(void *arg)
{
    long i = (long)(intptr_t)arg;
    if (rng_next(&ST->rng) % 4 == 0 && corio_yield() < 0) {
        ST->put_rc[i] = -ECANCELED; /* never tried */
        return NULL;
    }
    if (!ST->use_select) {
        ST->put_rc[i] = corio_queue_put(&ST->q[0], IT(i + 1));
        return NULL;
    }
    uint64_t r = rng_next(&ST->rng);
    int first = (int)(r & 1);
    corio_select_op ops[2] = {
        {.kind = CORIO_SELECT_PUT, .queue = &ST->q[first], .item = IT(i + 1), .result = NOT_YET},
        {.kind = CORIO_SELECT_PUT, .queue = &ST->q[!first], .item = IT(i + 1), .result = NOT_YET},
    };
    /* some with a timeout (the virtual clock moves when everyone waits) */
    double timeout = (r >> 8) % 8 == 0 ? 0.001 : (r >> 8) % 8 == 1 ? 0.0 : -1.0;
    int rc = corio_select(ops, 2, timeout);
    if (rc >= 0) {
        if (ops[rc].result != 0)
            ST->bad++;
        ST->put_rc[i] = ops[rc].result;
    } else {
        if (rc != -ECANCELED && rc != -ETIMEDOUT)
            ST->bad++;
        ST->put_rc[i] = rc;
    }
    return NULL;
}

static void st_record(void *it)
{
    long id = NUM(it) - 1;
    if (id < 0 || id >= ST->np) {
        ST->bad++;
        return;
    }
    if (ST->seen[id]++)
        ST->dup++;
    ST->got++;
}

static void *st_consumer(void *arg)
{
    (void)arg;
    for (;;) {
        void *it = SENTINEL;
        int rc;
        if (!ST->use_select) {
            rc = corio_queue_get(&ST->q[0], &it);
        } else {
            int first = (int)(rng_next(&ST->rng) & 1);
            void *out[2] = {SENTINEL, SENTINEL};
            corio_select_op ops[2] = {
                {.kind = CORIO_SELECT_GET, .queue = &ST->q[first], .item_out = &out[0],
                 .result = NOT_YET},
                {.kind = CORIO_SELECT_GET, .queue = &ST->q[!first], .item_out = &out[1],
                 .result = NOT_YET},
            };
            rc = corio_select(ops, 2, -1);
            if (rc >= 0) {
                if (out[!rc] != SENTINEL)
                    ST->bad++;
                it = out[rc];
                rc = ops[rc].result;
            }
        }
        if (rc == -ECANCELED || rc == -ESHUTDOWN) {
            if (it != SENTINEL)
                ST->bad++;
            return NULL;
        }
        if (rc != 0) {
            ST->bad++;
            return NULL;
        }
        st_record(it);
        if (rng_next(&ST->rng) % 8 == 0 && corio_yield() < 0)
            return NULL;
    }
}

/* Each turn, cancels a few tasks picked at random (not started yet, waiting,
 * or woken and not resumed yet), until the producers are done; at most a
 * quarter of the consumers and a tenth of the producers. */
static void *st_canceller(void *arg)
{
    (void)arg;
    long total = ST->np + ST->nc;
    while (!ST->stop) {
        for (int k = 0; k < 32; k++) {
            long j = (long)(rng_next(&ST->rng) % (uint64_t)total);
            if (j < ST->nc) {
                if (ST->cons[j] && ST->cancels_cons < ST->nc / 4)
                    ST->cancels_cons += corio_cancel(ST->cons[j]) == 1;
            } else if (ST->prod[j - ST->nc] && ST->cancels_prod < ST->np / 10) {
                ST->cancels_prod += corio_cancel(ST->prod[j - ST->nc]) == 1;
            }
        }
        if (corio_yield() < 0)
            break;
    }
    return NULL;
}

static void *main_stress(void *arg)
{
    struct stress *st = arg;
    ST = st;
    int nq = st->use_select ? 2 : 1;
    for (int i = 0; i < nq; i++)
        qinit(&st->q[i], i ? CORIO_QUEUE_LIFO : CORIO_QUEUE_FIFO, st->use_select ? 8 : 64);
    corio_task *canceller = spawn(st_canceller, NULL); /* runs first, each turn */
    /* interleave producers and consumers at random */
    long ip = 0, ic = 0;
    while (ip < st->np || ic < st->nc) {
        int consumer = ic < st->nc && (ip == st->np || rng_next(&st->rng) % 4 == 0);
        if (consumer) {
            st->cons[ic] = spawn(st_consumer, NULL);
            ic++;
        } else {
            st->put_rc[ip] = NOT_YET;
            st->prod[ip] = spawn(st_producer, IT(ip));
            ip++;
        }
    }
    long puts = 0, cancelled_puts = 0;
    for (long i = 0; i < st->np; i++) {
        int rc = corio_await(st->prod[i], NULL);
        ASSERT(rc == 0 || rc == -ECANCELED);
    }
    st->stop = 1;
    for (int i = 0; i < nq; i++)
        ASSERT_EQ(corio_queue_shutdown(&st->q[i], 0), 0);
    for (long j = 0; j < st->nc; j++) {
        int rc = corio_await(st->cons[j], NULL);
        ASSERT(rc == 0 || rc == -ECANCELED);
    }
    reap(canceller); /* it may cancel any handle until it ends */
    for (long i = 0; i < st->np; i++)
        ASSERT_EQ(corio_task_release(st->prod[i]), 0);
    for (long j = 0; j < st->nc; j++)
        ASSERT_EQ(corio_task_release(st->cons[j]), 0);
    /* what no consumer took (the consumers may all have been cancelled first) */
    for (int i = 0; i < nq; i++) {
        void *it;
        int rc;
        while ((rc = corio_queue_try_get(&st->q[i], &it)) == 0)
            st_record(it);
        ASSERT_EQ(rc, -ESHUTDOWN);
    }
    for (long i = 0; i < st->np; i++) {
        int rc = st->put_rc[i];
        ASSERT(rc == 0 || rc == -ECANCELED || rc == -ETIMEDOUT || rc == NOT_YET);
        if (rc == 0)
            puts++;
        else
            cancelled_puts++;
        if (st->seen[i] != (rc == 0))
            fprintf(stderr, "item %ld: put rc %d, seen %d times\n", i + 1, rc, st->seen[i]);
        ASSERT_EQ(st->seen[i], rc == 0);
    }
    ASSERT_EQ(st->dup, 0);
    ASSERT_EQ(st->bad, 0);
    ASSERT_EQ(st->got, puts);
    ASSERT_GT(st->cancels_cons, 0);
    ASSERT_GT(st->cancels_prod, 0);
    ASSERT_GT(cancelled_puts, 0);
    ASSERT_GT(puts, st->np / 2);
    /* join accounting: one task_done per item put */
    for (int i = 0; i < nq; i++)
        while (corio_queue_task_done(&st->q[i]) == 0)
            puts--;
    ASSERT_EQ(puts, 0);
    for (int i = 0; i < nq; i++) {
        ASSERT_EQ(corio_queue_join(&st->q[i]), 0);
        ASSERT_EQ(corio_queue_destroy(&st->q[i]), 0);
    }
    return NULL;
}

static void run_stress(long ntasks, int use_select, uint64_t seed)
{
    struct stress *st = calloc(1, sizeof *st);
    ASSERT_NOT_NULL(st);
    st->np = ntasks * 3 / 4;
    st->nc = ntasks - st->np;
    st->rng = seed;
    st->use_select = use_select;
    st->put_rc = calloc((size_t)st->np, sizeof *st->put_rc);
    st->seen = calloc((size_t)st->np, 1);
    st->prod = calloc((size_t)st->np, sizeof *st->prod);
    st->cons = calloc((size_t)st->nc, sizeof *st->cons);
    ASSERT(st->put_rc && st->seen && st->prod && st->cons);
    ASSERT_EQ(test_run_virtual(main_stress, st, NULL), 0);
    free(st->put_rc);
    free(st->seen);
    free(st->prod);
    free(st->cons);
    free(st);
}

TEST_TIMEOUT(queue_stress_100k_tasks_exactly_once, 120)
{
    run_stress(100000 / test_scale(), 0, 0x1234567887654321ULL);
}

TEST_TIMEOUT(select_stress_two_queues_exactly_once, 120)
{
    run_stress(40000 / test_scale(), 1, 0xABCDEF0123456789ULL);
}

/* ===================================================================================
 * Bad input
 * =================================================================================== */

static void bad_calls_einval(corio_queue *q)
{
    void *it = SENTINEL;
    ASSERT_EQ(corio_queue_destroy(q), -EINVAL);
    ASSERT_EQ(corio_queue_put(q, IT(1)), -EINVAL);
    ASSERT_EQ(corio_queue_get(q, &it), -EINVAL);
    ASSERT_EQ(corio_queue_try_put(q, IT(1)), -EINVAL);
    ASSERT_EQ(corio_queue_try_get(q, &it), -EINVAL);
    ASSERT_EQ(corio_queue_size(q), -EINVAL);
    ASSERT_EQ(corio_queue_empty(q), -EINVAL);
    ASSERT_EQ(corio_queue_full(q), -EINVAL);
    ASSERT_EQ(corio_queue_task_done(q), -EINVAL);
    ASSERT_EQ(corio_queue_join(q), -EINVAL);
    ASSERT_EQ(corio_queue_shutdown(q, 0), -EINVAL);
    ASSERT_EQ(corio_queue_shutdown(q, 1), -EINVAL);
    ASSERT_PTR_EQ(it, SENTINEL);
}

static void *main_bad_calls(void *arg)
{
    (void)arg;
    corio_queue zero;
    memset(&zero, 0, sizeof zero);
    bad_calls_einval(NULL);
    bad_calls_einval(&zero);
    /* a destroyed queue is no queue */
    corio_queue q;
    qinit(&q, CORIO_QUEUE_FIFO, 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    ASSERT_EQ(corio_queue_destroy(&q), 0); /* the item is simply forgotten */
    bad_calls_einval(&q);
    return NULL;
}

TEST(queue_bad_input_einval)
{
    corio_queue q;
    unsigned char pattern[sizeof q];
    memset(&q, 0xAB, sizeof q);
    memcpy(pattern, &q, sizeof q);
    ASSERT_EQ(corio_queue_init(NULL, CORIO_QUEUE_FIFO, 0, NULL), -EINVAL);
    ASSERT_EQ(corio_queue_init(&q, 0, 0, NULL), -EINVAL);
    ASSERT_EQ(corio_queue_init(&q, 4, 0, NULL), -EINVAL);
    ASSERT_EQ(corio_queue_init(&q, -1, 0, cmp_int), -EINVAL);
    ASSERT_EQ(corio_queue_init(&q, CORIO_QUEUE_PRIORITY, 0, NULL), -EINVAL);
    ASSERT_EQ(corio_queue_init(&q, CORIO_QUEUE_PRIORITY, 5, NULL), -EINVAL);
    ASSERT_MEM_EQ(&q, pattern, sizeof q); /* a failed init wrote nothing */
    bad_calls_einval(NULL);               /* outside any loop */
    ASSERT_EQ(test_run_virtual(main_bad_calls, NULL, NULL), 0);
}

static void *main_destroy_busy(void *arg)
{
    int kind = KIND(arg);
    corio_queue q;
    corio_task *t;

    /* a getter */
    qinit(&q, kind, 0);
    qop g = mkop(&q, NULL);
    t = spawn(t_get, &g);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_destroy(&q), -EBUSY);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0); /* still works */
    reap(t);
    ASSERT_EQ(NUM(g.item), 1);
    ASSERT_EQ(corio_queue_destroy(&q), 0);

    /* a putter, also while it is owed space */
    qinit(&q, kind, 1);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    qop p = mkop(&q, IT(2));
    t = spawn(t_put, &p);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_destroy(&q), -EBUSY);
    ASSERT_EQ(corio_queue_size(&q), 1);
    ASSERT_EQ(take(&q), 1);
    ASSERT_EQ(corio_queue_destroy(&q), -EBUSY);
    reap(t);
    ASSERT_EQ(p.rc, 0);
    ASSERT_EQ(take(&q), 2);

    /* a joiner */
    qop j = mkop(&q, NULL);
    t = spawn(t_join, &j);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_destroy(&q), -EBUSY);
    ASSERT_EQ(corio_queue_task_done(&q), 0);
    ASSERT_EQ(corio_queue_task_done(&q), 0);
    reap(t);
    ASSERT_EQ(j.rc, 0);

    /* a select, on each of its queues */
    corio_queue e;
    qinit(&e, kind, 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(3)), 0);
    sel s;
    sel_init(&s, -1);
    sel_get(&s, 0, &e);
    sel_put(&s, 1, &q, IT(4));
    t = spawn(t_select, &s);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_queue_destroy(&e), -EBUSY);
    ASSERT_EQ(corio_queue_destroy(&q), -EBUSY);
    ASSERT_EQ(corio_queue_try_put(&e, IT(5)), 0);
    reap(t);
    ASSERT_EQ(s.rc, 0);
    ASSERT_EQ(NUM(s.outs[0]), 5);
    ASSERT_EQ(take(&q), 3);
    ASSERT_EQ(corio_queue_destroy(&e), 0);
    /* items left and nobody waiting: fine */
    ASSERT_EQ(corio_queue_try_put(&q, IT(6)), 0);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_destroy_with_waiters_ebusy)
{
    run_kinds(main_destroy_busy);
}

struct outside {
    corio_queue *q, *e; /* q full (maxsize 1, one unfinished), e empty */
    int ran;
    int put, get, join, sel_wait, sel_timeout, sel_poll, try_get;
    /* calls that would not have to wait this time: -EPERM all the same */
    int put_room, get_ready, join_none, sel_ready, sel_ready_timeout, sel_ready_poll;
    void *got, *ready_out;
};

static void outside_calls(struct outside *o)
{
    void *it = SENTINEL;
    o->put = corio_queue_put(o->q, IT(2));
    o->get = corio_queue_get(o->e, &it);
    o->join = corio_queue_join(o->q);
    corio_select_op op = {.kind = CORIO_SELECT_GET, .queue = o->e, .item_out = &it,
                          .result = NOT_YET};
    o->sel_wait = corio_select(&op, 1, -1);
    o->sel_timeout = corio_select(&op, 1, 1.0);
    o->sel_poll = corio_select(&op, 1, 0);
    ASSERT_PTR_EQ(it, SENTINEL);
    o->put_room = corio_queue_put(o->e, IT(3));      /* e has room */
    o->ready_out = SENTINEL;
    o->get_ready = corio_queue_get(o->q, &o->ready_out); /* q holds 1 */
    o->join_none = corio_queue_join(o->e);           /* nothing unfinished on e */
    corio_select_op rop = {.kind = CORIO_SELECT_GET, .queue = o->q, .item_out = &o->ready_out,
                           .result = NOT_YET};
    o->sel_ready = corio_select(&rop, 1, -1);
    o->sel_ready_timeout = corio_select(&rop, 1, 1.0);
    corio_select_op pop = {.kind = CORIO_SELECT_PUT, .queue = o->e, .item = IT(4),
                           .result = NOT_YET};
    o->sel_ready_poll = corio_select(&pop, 1, 0); /* a poll may be made anywhere */
    ASSERT_EQ(rop.result, NOT_YET);
    o->got = SENTINEL;
    o->try_get = corio_queue_try_get(o->q, &o->got); /* no wait: fine anywhere */
    o->ran++;
}

static void check_outside(struct outside *o)
{
    ASSERT_EQ(o->ran, 1);
    ASSERT_EQ(o->put, -EPERM);
    ASSERT_EQ(o->get, -EPERM);
    ASSERT_EQ(o->join, -EPERM);
    ASSERT_EQ(o->sel_wait, -EPERM);
    ASSERT_EQ(o->sel_timeout, -EPERM);
    ASSERT_EQ(o->sel_poll, -ETIMEDOUT);
    ASSERT_EQ(o->put_room, -EPERM);
    ASSERT_EQ(o->get_ready, -EPERM);
    ASSERT_EQ(o->join_none, -EPERM);
    ASSERT_EQ(o->sel_ready, -EPERM);
    ASSERT_EQ(o->sel_ready_timeout, -EPERM);
    ASSERT_PTR_EQ(o->ready_out, SENTINEL); /* the refused calls took nothing */
    ASSERT_EQ(o->sel_ready_poll, 0);
    ASSERT_EQ(o->try_get, 0);
    ASSERT_EQ(NUM(o->got), 1);
    /* nothing was left waiting; only the poll put its item */
    expect_nothing(o->q);
    ASSERT_EQ(take(o->e), 4);
    expect_nothing(o->e);
    ASSERT_EQ(corio_queue_task_done(o->q), 0);
    ASSERT_EQ(corio_queue_task_done(o->q), -EOVERFLOW);
    ASSERT_EQ(corio_queue_task_done(o->e), 0);
    ASSERT_EQ(corio_queue_task_done(o->e), -EOVERFLOW);
    ASSERT_EQ(corio_queue_destroy(o->q), 0);
    ASSERT_EQ(corio_queue_destroy(o->e), 0);
}

static void outside_cb(corio_task *t, void *arg)
{
    (void)t;
    outside_calls(arg);
}

static void *return_null(void *arg)
{
    (void)arg;
    return NULL;
}

static void *main_outside_cb(void *arg)
{
    (void)arg;
    corio_queue q, e;
    qinit(&q, CORIO_QUEUE_FIFO, 1);
    qinit(&e, CORIO_QUEUE_FIFO, 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    struct outside o = {.q = &q, .e = &e};
    corio_task *t = spawn(return_null, NULL);
    ASSERT_EQ(corio_task_add_done_callback(t, outside_cb, &o), 0);
    reap(t);
    ASSERT_EQ(corio_sleep(0.001), 0); /* the callback runs at the next turn */
    check_outside(&o);
    return NULL;
}

TEST(queue_waits_outside_task_eperm)
{
    /* no loop on this thread at all */
    corio_queue q, e;
    qinit(&q, CORIO_QUEUE_FIFO, 1);
    qinit(&e, CORIO_QUEUE_FIFO, 0);
    ASSERT_EQ(corio_queue_try_put(&q, IT(1)), 0);
    struct outside o = {.q = &q, .e = &e};
    outside_calls(&o);
    check_outside(&o);
    /* in a done callback: on the loop's thread, outside any task */
    ASSERT_EQ(test_run_virtual(main_outside_cb, NULL, NULL), 0);
}

/* ---- a queue of another thread's loop ---------------------------------------------- */

static sem_t x_ready, x_go;
static corio_queue x_q;
static int x_destroy_only;

static void *x_owner_main(void *arg)
{
    (void)arg;
    qinit(&x_q, CORIO_QUEUE_FIFO, 1);
    ASSERT_EQ(corio_queue_try_put(&x_q, IT(1)), 0); /* full, one unfinished */
    sem_post(&x_ready);
    while (sem_wait(&x_go) != 0)
        ;
    /* the other loop's calls changed nothing */
    ASSERT_EQ(corio_queue_size(&x_q), 1);
    ASSERT_EQ(corio_queue_full(&x_q), 1);
    ASSERT_EQ(take(&x_q), 1);
    ASSERT_EQ(corio_queue_try_put(&x_q, IT(2)), 0);
    ASSERT_EQ(take(&x_q), 2);
    done_n(&x_q, 2);
    ASSERT_EQ(corio_queue_join(&x_q), 0);
    ASSERT_EQ(corio_queue_destroy(&x_q), 0);
    return NULL;
}

static void *x_owner_thread(void *arg)
{
    (void)arg;
    return IT(test_run_virtual(x_owner_main, NULL, NULL));
}

static void *x_user_main(void *arg)
{
    (void)arg;
    if (x_destroy_only) {
        ASSERT_EQ(corio_queue_destroy(&x_q), -EXDEV);
        return NULL;
    }
    corio_queue local;
    qinit(&local, CORIO_QUEUE_FIFO, 0);
    ASSERT_EQ(corio_queue_try_put(&local, IT(5)), 0);
    void *it = SENTINEL;
    ASSERT_EQ(corio_queue_put(&x_q, IT(9)), -EXDEV);
    ASSERT_EQ(corio_queue_get(&x_q, &it), -EXDEV);
    ASSERT_EQ(corio_queue_try_put(&x_q, IT(9)), -EXDEV);
    ASSERT_EQ(corio_queue_try_get(&x_q, &it), -EXDEV);
    ASSERT_PTR_EQ(it, SENTINEL);
    ASSERT_EQ(corio_queue_task_done(&x_q), -EXDEV);
    ASSERT_EQ(corio_queue_join(&x_q), -EXDEV);
    ASSERT_EQ(corio_queue_shutdown(&x_q, 0), -EXDEV);
    ASSERT_EQ(corio_queue_shutdown(&x_q, 1), -EXDEV);
    /* a select mixing it with a ready local op: -EXDEV, no effect */
    corio_select_op ops[2] = {
        {.kind = CORIO_SELECT_GET, .queue = &local, .item_out = &it, .result = NOT_YET},
        {.kind = CORIO_SELECT_GET, .queue = &x_q, .item_out = &it, .result = NOT_YET},
    };
    ASSERT_EQ(corio_select(ops, 2, -1), -EXDEV);
    ASSERT_EQ(corio_select(ops, 2, 0), -EXDEV);
    ASSERT_PTR_EQ(it, SENTINEL);
    ASSERT_EQ(ops[0].result, NOT_YET);
    ASSERT_EQ(corio_queue_size(&local), 1);
    ops[1].kind = CORIO_SELECT_PUT;
    ASSERT_EQ(corio_select(&ops[1], 1, 0), -EXDEV);
    ASSERT_EQ(take(&local), 5);
    ASSERT_EQ(corio_queue_destroy(&local), 0);
    return NULL;
}

static void run_cross_thread(int destroy_only)
{
    x_destroy_only = destroy_only;
    ASSERT_EQ(sem_init(&x_ready, 0, 0), 0);
    ASSERT_EQ(sem_init(&x_go, 0, 0), 0);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, x_owner_thread, NULL), 0);
    while (sem_wait(&x_ready) != 0)
        ;
    if (!destroy_only) {
        /* from a thread with no loop: refused too (and nothing changes) */
        int rc = corio_queue_try_put(&x_q, IT(9));
        ASSERT(rc == -EPERM || rc == -EXDEV);
        void *it = SENTINEL;
        rc = corio_queue_try_get(&x_q, &it);
        ASSERT(rc == -EPERM || rc == -EXDEV);
        ASSERT_PTR_EQ(it, SENTINEL);
    }
    ASSERT_EQ(test_run_virtual(x_user_main, NULL, NULL), 0);
    sem_post(&x_go);
    void *rc = IT(1);
    ASSERT_EQ(pthread_join(th, &rc), 0);
    ASSERT_EQ(NUM(rc), 0);
    sem_destroy(&x_ready);
    sem_destroy(&x_go);
}

TEST(queue_of_another_loop_exdev)
{
    run_cross_thread(0);
}

TEST(queue_destroy_from_another_loop_exdev)
{
    run_cross_thread(1);
}

/* ---- the hot paths' guards (queue.c: put_handoff, the hot get) ---------------------------
 * corio_queue_put hands an item straight to the first getter only when nothing stands in
 * the way; these make sure that each thing that does stand in the way sends it to the
 * general path, with corio_queue_put itself (try_put never takes the hot path). */

typedef struct sel2 {
    corio_queue *a, *b;
    void *got;
    int rc;
} sel2;

static void *t_select_get2(void *arg)
{
    sel2 *s = arg;
    corio_select_op ops[2] = {{.kind = CORIO_SELECT_GET, .queue = s->a, .item_out = &s->got},
                              {.kind = CORIO_SELECT_GET, .queue = s->b, .item_out = &s->got}};
    s->rc = corio_select(ops, 2, -1);
    return NULL;
}

/* A select that won on b stays linked on a, stale, until it resumes: a put on a in the
 * meantime must pass it by and reach the live getter behind it. */
static void *main_put_passes_a_stale_select_waiter(void *arg)
{
    corio_queue a, b;
    qinit(&a, KIND(arg), 1);
    qinit(&b, KIND(arg), 1);
    sel2 s = {&a, &b, SENTINEL, NOT_YET};
    qop g = mkop(&a, NULL);
    corio_task *ts = spawn(t_select_get2, &s), *tg = spawn(t_get, &g);
    ASSERT_EQ(corio_yield(), 0); /* both wait: the select first on a, then g */
    ASSERT_EQ(corio_queue_put(&b, IT(7)), 0); /* the select wins on b ... */
    ASSERT_EQ(corio_queue_put(&a, IT(8)), 0); /* ... and has not resumed yet */
    ASSERT_EQ(corio_await(ts, NULL), 0);
    ASSERT_EQ(corio_await(tg, NULL), 0);
    ASSERT_EQ(s.rc, 1);
    ASSERT_EQ(NUM(s.got), 7);
    ASSERT_EQ(g.rc, 0);
    ASSERT_EQ(NUM(g.item), 8); /* not lost to the stale waiter */
    expect_nothing(&a);
    expect_nothing(&b);
    corio_task_release(ts);
    corio_task_release(tg);
    ASSERT_EQ(corio_queue_destroy(&a), 0);
    ASSERT_EQ(corio_queue_destroy(&b), 0);
    return NULL;
}

TEST(queue_put_passes_a_stale_select_waiter)
{
    run_kinds(main_put_passes_a_stale_select_waiter);
}

/* Space promised to a woken putter belongs to it: a later put that finds a getter waiting
 * must still queue behind that putter, so the getter gets the earlier putter's item. */
static void *main_put_respects_a_promised_space(void *arg)
{
    corio_queue q;
    qinit(&q, KIND(arg), 1);
    ASSERT_EQ(corio_queue_put(&q, IT(1)), 0); /* full */
    qop p1 = mkop(&q, IT(2)), c1 = mkop(&q, NULL), g = mkop(&q, NULL), p2 = mkop(&q, IT(3));
    corio_task *t1 = spawn(t_put, &p1);
    ASSERT_EQ(corio_yield(), 0);              /* p1 waits: full */
    ASSERT_EQ(p1.rc, NOT_YET);
    corio_task *t2 = spawn(t_get, &c1), *t3 = spawn(t_get, &g), *t4 = spawn(t_put, &p2);
    /* one turn: c1 takes 1 and promises the space to p1 (woken, not yet run), g finds the
     * queue empty and waits, p2 finds g waiting but the space promised: it must wait */
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(NUM(c1.item), 1);
    ASSERT_EQ(p2.rc, NOT_YET);
    ASSERT_EQ(corio_await(t1, NULL), 0);
    ASSERT_EQ(corio_await(t3, NULL), 0);
    ASSERT_EQ(corio_await(t4, NULL), 0);
    ASSERT_EQ(corio_await(t2, NULL), 0);
    ASSERT_EQ(NUM(g.item), 2); /* p1's item, put first */
    ASSERT_EQ(p1.rc, 0);
    ASSERT_EQ(p2.rc, 0);
    ASSERT_EQ(take(&q), 3);
    expect_nothing(&q);
    corio_task *ts[] = {t1, t2, t3, t4};
    for (int i = 0; i < 4; i++)
        corio_task_release(ts[i]);
    ASSERT_EQ(corio_queue_destroy(&q), 0);
    return NULL;
}

TEST(queue_put_respects_a_promised_space)
{
    run_kinds(main_put_respects_a_promised_space);
}
