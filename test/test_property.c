/* test/test_property.c - property-style tests: random trees of tasks with
 * random cancels and timeouts, on the virtual clock.
 *
 * Per seed, a seeded PRNG (splitmix64, one stream per task) builds a random
 * program as it runs: each task sleeps random durations, yields, spawns
 * children (awaited, gathered, waited on with corio_wait or as_completed, or
 * in task groups whose children spawn siblings), wraps parts in timeout
 * scopes (some already expired, some rescheduled) or shields, fails on
 * purpose (-EIO), cancels random tasks whose handles are still held, and
 * passes errors on or swallows them at random (a swallowed cancel meets the
 * next suspension again: level-triggered).
 *
 * Every call goes through a wrapper that checks it against a model of the
 * cancel rules (the scopes each task has open, which of them expired or
 * aborted, shields, the task's cancel): e.g. a sleep returns -ECANCELED
 * exactly when a cause is visible as it returns and otherwise lasted at
 * least its duration; a timeout scope has expired exactly when the virtual
 * clock reached its deadline; an interruption is credited as the
 * suspension resumes, to the outermost cause visible then (the task's own
 * cancel first), so a timeout scope's end must return -ETIMEDOUT when the
 * model knows it was credited, may only when it can have been (and past its
 * deadline), and returns 0 after an interrupted sleep inside only if another
 * cause exists; a shield's end reports exactly what it held back; a task
 * group's end returns its first error, or 0 only if no child failed and
 * nothing cancelled it, and waits for every child; gather, wait and
 * as_completed agree with the statuses of the tasks, and corio_wait returns
 * in the instant its condition is met. After each run: corio_run returned,
 * corio_loop_close found no live task, stack, timer or deferred call, every
 * task ended with an allowed status, and (every 8th seed) a second run of
 * the same seed made exactly the same calls with the same results.
 *
 * CORIO_PROPERTY_SEED=N runs just seed N (a failure prints its seed);
 * CORIO_PROPERTY_SEEDS=N sets how many seeds the full run covers. */
#define _GNU_SOURCE
#include "test.h"

#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC 1000000000LL
#define MS 1000000LL
#define FAR_NS (1000000LL * SEC) /* the far deadline of the task bodies' scopes */

/* ---- context for failure messages --------------------------------------------------- */

static uint64_t g_seed;

__attribute__((noreturn, format(printf, 2, 3))) static void ctx_fail(int line, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "property: seed %llu (replay: CORIO_PROPERTY_SEED=%llu): ",
            (unsigned long long)g_seed, (unsigned long long)g_seed);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    test__fail(__FILE__, line, "check failed (seed %llu)", (unsigned long long)g_seed);
}

#define CK(cond)                                                  \
    do {                                                          \
        if (!(cond))                                              \
            ctx_fail(__LINE__, "CK(%s) failed", #cond);           \
    } while (0)

#define CK_EQ(a, b)                                                                     \
    do {                                                                                \
        long long ck_a_ = (long long)(a), ck_b_ = (long long)(b);                       \
        if (ck_a_ != ck_b_)                                                             \
            ctx_fail(__LINE__, "CK_EQ(%s, %s) failed: %lld != %lld", #a, #b, ck_a_, ck_b_); \
    } while (0)

/* ---- task records: every task body runs in wrap_entry ------------------------------------ */

struct grp;

struct trec {
    const char *name;
    corio_fn *fn;
    void *arg;
    struct grp *g;     /* the task group it was spawned into, if any */
    int allow_err;     /* a deliberate error it may end with (0: none) */
    bool used;         /* a task was made for it */
    bool started, ended;
    int status;
    void *result;
    int64_t end_ns;    /* corio_now_ns when it ended */
    corio_task *task;  /* its handle, when it was made with one */
};

#define MAXT 256
static struct trec trecs[MAXT];
static int ntrecs;

static struct trec *trec_new(const char *name, corio_fn *fn, void *arg)
{
    CK(ntrecs < MAXT);
    struct trec *tr = &trecs[ntrecs++];
    *tr = (struct trec){.name = name, .fn = fn, .arg = arg, .used = true};
    return tr;
}

/* ---- the model: each task's registered scopes -------------------------------------------- */

enum { SK_TIMEOUT = 1, SK_SHIELD, SK_GROUP };
#define C_NONE (-2) /* no visible cause */
#define C_TASK (-1) /* the task's own cancel */

struct ent {
    int kind;
    corio_scope *sc;
    struct grp *g;
    bool sure_hit;    /* an interruption was surely credited to it: its end must say -ETIMEDOUT */
    bool maybe_hit;   /* an interruption may have been credited to it */
    bool saw_int;     /* a sleep/yield inside returned -ECANCELED while it was expired */
    bool inner_cause; /* a scope inside it was a cause (expired or aborted) */
};

#define MD 24
struct treg {
    corio_task *t;
    struct trec *tr;
    int depth;
    struct ent e[MD];
};

#define MAXREG 256
static struct treg regs[MAXREG];

static struct treg *reg_find(corio_task *t)
{
    for (int i = 0; i < MAXREG; i++)
        if (regs[i].t == t)
            return &regs[i];
    return NULL;
}

static struct treg *reg_add(corio_task *t, struct trec *tr)
{
    CK(reg_find(t) == NULL);
    struct treg *r = reg_find(NULL);
    CK(r != NULL);
    *r = (struct treg){.t = t, .tr = tr};
    return r;
}

static struct treg *reg_self(void)
{
    corio_task *self = corio_current_task();
    CK(self != NULL);
    struct treg *r = reg_find(self);
    CK(r != NULL);
    return r;
}

struct grp {
    corio_taskgroup g;
    bool aborted;      /* a child failed: the group cancels the body and the children */
    bool ending;       /* end was called */
    bool end_cancels;  /* end was called with a body error: spawn says -ECANCELED */
    bool ended;
    int nfailed;
    int first_error;
    int nkids;
    corio_task *kids[64];
};

static bool ent_cancelled(const struct ent *e)
{
    if (e->kind == SK_TIMEOUT) {
        int ex = corio_scope_expired(e->sc);
        int64_t dl = corio_scope_deadline(e->sc);
        int64_t now = corio_now_ns();
        CK(ex == 0 || ex == 1);
        /* on the virtual clock a scope has expired exactly when its deadline is reached */
        if (ex != (dl != CORIO_NO_DEADLINE && now >= dl))
            ctx_fail(__LINE__, "scope expired=%d but deadline %lld, now %lld", ex, (long long)dl,
                     (long long)now);
        return ex == 1;
    }
    if (e->kind == SK_GROUP)
        return e->g->aborted;
    return false;
}

/* The outermost visible cause of an interruption, as corio__interrupt_cause
 * defines it: walk outwards, stop at a shield, the task's cancel beats all. */
static int model_cause(const struct treg *r)
{
    int found = C_NONE;
    for (int i = r->depth - 1; i >= 0; i--) {
        const struct ent *e = &r->e[i];
        if (e->kind == SK_SHIELD)
            return found;
        if (ent_cancelled(e))
            found = i;
    }
    if (corio_task_cancelled(r->t) == 1)
        return C_TASK;
    return found;
}

/* The library credited this interruption to `cause`, and to nothing else. */
static void credit(struct treg *r, int cause)
{
    if (cause >= 0 && r->e[cause].kind == SK_TIMEOUT)
        r->e[cause].sure_hit = r->e[cause].maybe_hit = true;
}

/* After a call failed: an interruption inside it may have been credited to
 * any expired timeout scope visible from here (out to the nearest shield). */
static void mark_maybe_hit(struct treg *r)
{
    for (int i = r->depth - 1; i >= 0 && r->e[i].kind != SK_SHIELD; i--)
        if (r->e[i].kind == SK_TIMEOUT && corio_scope_expired(r->e[i].sc) == 1)
            r->e[i].maybe_hit = true;
}

/* A sleep or yield returned -ECANCELED: note it in every expired scope. */
static void mark_saw_int(struct treg *r)
{
    for (int i = 0; i < r->depth; i++)
        if (r->e[i].kind == SK_TIMEOUT && corio_scope_expired(r->e[i].sc) == 1)
            r->e[i].saw_int = true;
}

static void push_ent(struct treg *r, int kind, corio_scope *sc, struct grp *g)
{
    CK(r->depth < MD);
    r->e[r->depth++] = (struct ent){.kind = kind, .sc = sc, .g = g};
}

/* How often the interesting paths ran (printed, and asserted non-zero over all seeds). */
static struct {
    long sure_hit_ends, timeout_ends, shield_cancels, group_ends_failed, group_ends_cancelled,
        cancels_made, cancels_noop, swallowed, spawn_refused;
} cov;

/* ---- the trace digest (determinism) ----------------------------------------------------- */

enum { K_SLEEP = 1, K_YIELD, K_AWAIT, K_GATHER, K_GATHER_ST, K_WAIT, K_AC, K_GEND };

static uint64_t g_digest;
static long g_calls;

static void digest(uint64_t v)
{
    g_digest = (g_digest ^ v) * 0x100000001b3ull;
}

/* ---- instrumented calls -------------------------------------------------------------------- */

struct call {
    struct treg *r;
    int site, kind;
    int pre_cause;
    bool exact;        /* the credit of its interruption is known (credit() was called) */
    int64_t t0;
};

static void pre(struct call *c, int site, int kind)
{
    c->r = reg_self();
    c->site = site;
    c->kind = kind;
    c->pre_cause = model_cause(c->r);
    c->exact = false;
    c->t0 = corio_now_ns();
}

static void post(struct call *c, int rc, int alt)
{
    (void)alt;
    g_calls++;
    digest((uint64_t)c->site);
    digest((uint64_t)(int64_t)rc);
    digest((uint64_t)corio_now_ns());
    if (rc < 0 && !c->exact)
        mark_maybe_hit(c->r);
    if (rc == -ECANCELED && (c->kind == K_SLEEP || c->kind == K_YIELD))
        mark_saw_int(c->r);
}

/* A call that suspended for sure: a cause visible as it returns means it was
 * interrupted (a cause that appears before the task resumes reaches it).
 * exact: -ECANCELED comes only from an interruption (not from a task's
 * status). single: it suspends once, so an interruption was credited as it
 * resumed, i.e. just now, to the outermost cause visible now. */
static void check_suspended(struct call *c, int rc, bool exact, bool single)
{
    int now_cause = model_cause(c->r);
    if (c->pre_cause != C_NONE) { /* level-triggered: it did not wait at all */
        CK_EQ(rc, -ECANCELED);
        if (single) { /* nothing ran in between (a gather still reaps what it cancelled) */
            CK_EQ(corio_now_ns(), c->t0);
            if (now_cause != c->pre_cause)
                ctx_fail(__LINE__, "call at line %d (kind %d): cause %d before, %d after", c->site,
                         c->kind, c->pre_cause, now_cause);
        }
        credit(c->r, c->pre_cause);
        c->exact = true;
    }
    if (now_cause != C_NONE)
        CK_EQ(rc, -ECANCELED);
    if (exact && rc == -ECANCELED)
        CK(now_cause != C_NONE); /* never a spurious -ECANCELED */
    if (single && c->pre_cause == C_NONE) {
        credit(c->r, now_cause); /* C_NONE: it was not interrupted, nothing credited */
        c->exact = true;
    }
}

static int m_sleep(int site, int64_t ns)
{
    struct call c;
    pre(&c, site, ns == 0 ? K_YIELD : K_SLEEP);
    int rc = corio_sleep_ns(ns);
    CK(rc == 0 || rc == -ECANCELED);
    if (rc == 0)
        CK(corio_now_ns() - c.t0 >= ns);
    if (ns == 0) {
        int cause = model_cause(c.r);
        CK((rc == -ECANCELED) == (cause != C_NONE));
        if (rc == -ECANCELED)
            credit(c.r, cause); /* a yield checks (and credits) when it resumes */
        c.exact = true;
    } else {
        check_suspended(&c, rc, true, true);
    }
    post(&c, rc, 0);
    return rc;
}
#define SLEEP(ns) m_sleep(__LINE__, (ns))

static int m_yield(int site)
{
    struct call c;
    pre(&c, site, K_YIELD);
    int rc = corio_yield();
    CK(rc == 0 || rc == -ECANCELED);
    CK_EQ(corio_now_ns(), c.t0); /* time does not pass while a task is ready */
    int cause = model_cause(c.r);
    CK((rc == -ECANCELED) == (cause != C_NONE));
    if (rc == -ECANCELED)
        credit(c.r, cause);
    c.exact = true;
    post(&c, rc, 0);
    return rc;
}
#define YIELD() m_yield(__LINE__)

static struct trec *trec_of(corio_task *t)
{
    for (int i = ntrecs - 1; i >= 0; i--)
        if (trecs[i].task == t && trecs[i].used)
            return &trecs[i];
    return NULL;
}

/* The status of an ended task, without suspending. */
static int status_of(corio_task *t)
{
    CK_EQ(corio_task_done(t), 1);
    return corio_await(t, NULL);
}

static int m_await(int site, corio_task *t, void **res)
{
    struct call c;
    pre(&c, site, K_AWAIT);
    bool was_done = corio_task_done(t) == 1;
    int rc = corio_await(t, res);
    if (!was_done)
        check_suspended(&c, rc, false, true);
    if (corio_task_done(t) != 1)
        CK_EQ(rc, -ECANCELED); /* only an interruption leaves before it ends */
    else if (rc != -ECANCELED)
        CK_EQ(rc, status_of(t));
    post(&c, rc, 0);
    return rc;
}
#define AWAIT(t, res) m_await(__LINE__, (t), (res))

static int m_gather_tasks(int site, corio_task *const *ts, size_t n, void **res, int *st)
{
    struct call c;
    pre(&c, site, st ? K_GATHER_ST : K_GATHER);
    bool all_done = true;
    for (size_t i = 0; i < n; i++)
        all_done &= corio_task_done(ts[i]) == 1;
    int rc = st ? corio_gather_tasks_status(ts, n, res, st) : corio_gather_tasks(ts, n, res);
    for (size_t i = 0; i < n; i++)
        CK_EQ(corio_task_done(ts[i]), 1); /* gather returns only when all have ended */
    if (!all_done)
        check_suspended(&c, rc, st != NULL, false);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) {
            if (st)
                CK_EQ(st[i], status_of(ts[i]));
            else
                CK_EQ(status_of(ts[i]), 0);
        }
    } else if (st) {
        CK_EQ(rc, -ECANCELED);
    } else if (rc != -ECANCELED) {
        bool found = false; /* the status of one that failed */
        for (size_t i = 0; i < n; i++)
            found |= status_of(ts[i]) == rc;
        CK(found);
    }
    post(&c, rc, 0);
    return rc;
}
#define GATHER_TASKS(ts, n, res) m_gather_tasks(__LINE__, (ts), (n), (res), NULL)
#define GATHER_TASKS_STATUS(ts, n, res, st) m_gather_tasks(__LINE__, (ts), (n), (res), (st))

static int m_gather_coros(int site, const corio_coro_t *cs, size_t n, void **res, int *st)
{
    struct call c;
    pre(&c, site, st ? K_GATHER_ST : K_GATHER);
    int rc = st ? corio_gather_status(cs, n, res, st) : corio_gather(cs, n, res);
    if (st)
        CK(rc == 0 || rc == -ECANCELED);
    if (n > 0)
        check_suspended(&c, rc, st != NULL, false);
    for (size_t i = 0; i < n; i++) { /* the tasks it made have all ended */
        struct trec *tr = cs[i].arg;
        if (tr->started)
            CK(tr->ended);
        if (rc == 0 && st)
            CK_EQ(st[i], tr->started ? tr->status : -ECANCELED);
        if (rc == 0 && !st)
            CK(tr->started && tr->status == 0);
    }
    post(&c, rc, 0);
    return rc;
}
#define GATHER(cs, n, res) m_gather_coros(__LINE__, (cs), (n), (res), NULL)
#define GATHER_STATUS(cs, n, res, st) m_gather_coros(__LINE__, (cs), (n), (res), (st))

static int m_wait(int site, corio_task *const *ts, size_t n, int mode, double timeout)
{
    struct call c;
    pre(&c, site, K_WAIT);
    size_t done0 = 0;
    bool failed0 = false;
    for (size_t i = 0; i < n; i++)
        if (corio_task_done(ts[i]) == 1) {
            done0++;
            failed0 |= status_of(ts[i]) < 0;
        }
    bool met0 = mode == CORIO_FIRST_COMPLETED   ? done0 > 0
                : mode == CORIO_FIRST_EXCEPTION ? failed0 || done0 == n
                                                : done0 == n;
    int rc = corio_wait(ts, n, mode, timeout);
    CK(rc >= 0 || rc == -ECANCELED);
    if (!met0 && timeout != 0)
        check_suspended(&c, rc, true, true);
    else
        CK_EQ(rc, done0); /* met already, or a poll: causes are checked only where it would wait */
    if (rc >= 0) {
        size_t done = 0;
        bool failed = false;
        for (size_t i = 0; i < n; i++)
            if (corio_task_done(ts[i]) == 1) {
                done++;
                failed |= status_of(ts[i]) < 0;
            }
        CK_EQ(rc, done); /* nothing ends between its wakeup and its return */
        bool met = mode == CORIO_FIRST_COMPLETED   ? done > 0
                   : mode == CORIO_FIRST_EXCEPTION ? failed || done == n
                                                   : done == n;
        if (!met) { /* only a timeout returns early */
            CK(timeout >= 0);
            CK(corio_now_ns() - c.t0 >= (int64_t)(timeout * 1e9));
        } else if (!met0) { /* and it returns as soon as it is met: when did that happen? */
            int64_t first = INT64_MAX, first_fail = INT64_MAX, last = INT64_MIN;
            bool known = true;
            for (size_t i = 0; i < n && known; i++) {
                struct trec *tr = trec_of(ts[i]);
                if (corio_task_done(ts[i]) != 1)
                    continue;
                if (!tr || !tr->started) { /* ended unstarted: when is not known */
                    known = false;
                    break;
                }
                first = tr->end_ns < first ? tr->end_ns : first;
                last = tr->end_ns > last ? tr->end_ns : last;
                if (tr->status < 0 && tr->end_ns < first_fail)
                    first_fail = tr->end_ns;
            }
            int64_t when = mode == CORIO_FIRST_COMPLETED ? first
                           : mode == CORIO_ALL_COMPLETED ? last
                           : done == n && last < first_fail ? last
                                                             : first_fail;
            if (known && corio_now_ns() != (when > c.t0 ? when : c.t0))
                ctx_fail(__LINE__, "corio_wait(mode %d) returned at %lld, met at %lld (called at %lld)",
                         mode, (long long)corio_now_ns(), (long long)when, (long long)c.t0);
        }
    }
    post(&c, rc, 0);
    return rc;
}
#define WAIT(ts, n, mode, timeout) m_wait(__LINE__, (ts), (n), (mode), (timeout))

struct m_ac {
    corio_as_completed ac;
    corio_task *ts[16];
    bool handed[16];
    size_t n, nhanded;
    int64_t deadline;
};

static void m_ac_begin(struct m_ac *a, corio_task *const *ts, size_t n, double timeout)
{
    CK(n <= 16);
    memset(a, 0, sizeof *a);
    memcpy(a->ts, ts, n * sizeof *ts);
    a->n = n;
    a->deadline = timeout < 0 ? INT64_MAX : corio_now_ns() + (int64_t)(timeout * 1e9);
    CK_EQ(corio_as_completed_begin(&a->ac, ts, n, timeout), 0);
}

static int m_ac_next(int site, struct m_ac *a, corio_task **out)
{
    struct call c;
    pre(&c, site, K_AC);
    *out = NULL;
    int rc = corio_as_completed_next(&a->ac, out);
    CK(rc == 1 || rc == 0 || rc == -ETIMEDOUT || rc == -ECANCELED);
    if (rc == 1) {
        size_t i = 0;
        while (i < a->n && a->ts[i] != *out)
            i++;
        CK(i < a->n);
        CK(!a->handed[i]); /* each once */
        a->handed[i] = true;
        a->nhanded++;
        CK_EQ(corio_task_done(*out), 1);
    } else if (rc == 0) {
        CK_EQ(a->nhanded, a->n);
    } else if (rc == -ETIMEDOUT) {
        CK(corio_now_ns() >= a->deadline);
    } else {
        CK(model_cause(c.r) != C_NONE);
    }
    post(&c, rc, 0);
    return rc;
}
#define AC_NEXT(a, out) m_ac_next(__LINE__, (a), (out))

/* ---- scopes ---------------------------------------------------------------------------------- */

static void m_timeout_at(corio_scope *sc, int64_t deadline)
{
    struct treg *r = reg_self();
    CK_EQ(corio_timeout_at_begin(sc, deadline), 0);
    push_ent(r, SK_TIMEOUT, sc, NULL);
}

static void m_timeout(corio_scope *sc, int64_t ns)
{
    struct treg *r = reg_self();
    int64_t now = corio_now_ns();
    CK_EQ(corio_timeout_begin_ns(sc, ns), 0);
    CK_EQ(corio_scope_deadline(sc), now + ns);
    push_ent(r, SK_TIMEOUT, sc, NULL);
}

static void m_shield(corio_scope *sc)
{
    struct treg *r = reg_self();
    CK_EQ(corio_shield_begin(sc), 0);
    push_ent(r, SK_SHIELD, sc, NULL);
}

/* Any cause visible from where the scope just ended (outwards to a shield). */
static bool outer_cause(const struct treg *r)
{
    for (int i = r->depth - 1; i >= 0; i--) {
        if (r->e[i].kind == SK_SHIELD)
            return false;
        if (ent_cancelled(&r->e[i]))
            return true;
    }
    return corio_task_cancelled(r->t) == 1;
}

static void mark_inner_cause(struct treg *r)
{
    for (int i = 0; i < r->depth; i++)
        r->e[i].inner_cause = true;
}

static int m_scope_end(corio_scope *sc)
{
    struct treg *r = reg_self();
    CK(r->depth > 0);
    struct ent e = r->e[r->depth - 1];
    CK(e.sc == sc && e.kind != SK_GROUP);
    if (e.kind == SK_TIMEOUT) {
        bool ex = ent_cancelled(&e);
        int64_t dl = corio_scope_deadline(sc);
        r->depth--;
        int rc = corio_scope_end(sc);
        CK(rc == 0 || rc == -ETIMEDOUT);
        if (rc == -ETIMEDOUT) { /* it expired, and that interrupted something inside */
            CK(ex);
            CK(corio_now_ns() >= dl);
            if (!e.maybe_hit)
                ctx_fail(__LINE__, "a timeout scope's end said -ETIMEDOUT, but no interruption "
                                   "can have been credited to it");
        }
        if (e.sure_hit)
            CK_EQ(rc, -ETIMEDOUT);
        cov.sure_hit_ends += e.sure_hit;
        cov.timeout_ends += rc == -ETIMEDOUT;
        if (rc == 0 && e.saw_int) /* then the interruption was another cause's */
            CK(e.inner_cause || outer_cause(r));
        if (ex)
            mark_inner_cause(r);
        return rc;
    }
    r->depth--;
    int cause = model_cause(r); /* what the shield held back */
    int rc = corio_scope_end(sc);
    if (cause != C_NONE)
        CK_EQ(rc, -ECANCELED);
    else
        CK_EQ(rc, 0);
    if (rc == -ECANCELED) {
        credit(r, cause);
        cov.shield_cancels++;
    }
    return rc;
}

/* ---- task groups ------------------------------------------------------------------------------ */

static void *wrap_entry(void *arg);

/* The handles held right now: random cancels pick among them. */
#define MAXHELD 256
static corio_task *held[MAXHELD];
static int nheld;

static void hold(corio_task *t)
{
    CK(nheld < MAXHELD);
    held[nheld++] = t;
}

static void unhold_release(corio_task *t)
{
    int i = 0;
    while (i < nheld && held[i] != t)
        i++;
    CK(i < nheld);
    held[i] = held[--nheld];
    CK_EQ(corio_task_release(t), 0);
}

static void m_group_begin(struct grp *G)
{
    struct treg *r = reg_self();
    memset(G, 0, sizeof *G);
    CK_EQ(corio_taskgroup_begin(&G->g), 0);
    push_ent(r, SK_GROUP, NULL, G);
}

static int m_group_spawn(struct grp *G, const char *name, corio_fn *fn, void *arg, int allow_err)
{
    struct trec *tr = trec_new(name, fn, arg);
    tr->g = G;
    tr->allow_err = allow_err;
    corio_task *h = NULL;
    int rc = corio_taskgroup_spawn(&G->g, corio_coro(wrap_entry, tr), &h);
    if (G->aborted || G->end_cancels)
        CK_EQ(rc, -ECANCELED);
    else if (!G->ending)
        CK_EQ(rc, 0);
    else
        CK(rc == 0 || rc == -ECANCELED); /* -ECANCELED if end was interrupted */
    if (rc == 0) {
        CK(G->nkids < 64);
        G->kids[G->nkids++] = h;
        tr->task = h;
        hold(h);
    } else {
        tr->used = false;
        cov.spawn_refused++;
    }
    return rc;
}

static int m_group_end(int site, struct grp *G, int body)
{
    struct call c;
    pre(&c, site, K_GEND);
    struct treg *r = c.r;
    CK(r->depth > 0 && r->e[r->depth - 1].kind == SK_GROUP && r->e[r->depth - 1].g == G);
    r->depth--;
    bool group_caused = G->aborted;
    G->ending = true;
    if (body < 0) {
        G->end_cancels = true;
        if (body != -ECANCELED && G->first_error == 0)
            G->first_error = body;
    }
    int rc = corio_taskgroup_end(&G->g, body);
    G->ended = true;
    for (int i = 0; i < G->nkids; i++)
        CK_EQ(corio_task_done(G->kids[i]), 1); /* end waits for every child */
    CK_EQ(corio_taskgroup_failed(&G->g), G->nfailed);
    cov.group_ends_failed += G->first_error != 0;
    cov.group_ends_cancelled += rc == -ECANCELED;
    if (G->first_error) {
        CK_EQ(rc, G->first_error);
    } else {
        CK(rc == 0 || rc == -ECANCELED);
        if (body == -ECANCELED && !group_caused)
            CK_EQ(rc, -ECANCELED); /* cancelled from outside */
        if (rc == 0)
            CK(body >= 0);
        if (rc == -ECANCELED && body != -ECANCELED)
            CK(model_cause(r) != C_NONE); /* it was interrupted while it waited */
    }
    if (G->aborted)
        mark_inner_cause(r);
    for (int i = 0; i < G->nkids; i++)
        unhold_release(G->kids[i]);
    post(&c, rc, G->first_error);
    return rc;
}
#define GROUP_END(G, body) m_group_end(__LINE__, (G), (body))

/* ---- the task wrapper ----------------------------------------------------------------------- */

static void *wrap_entry(void *arg)
{
    struct trec *tr = arg;
    CK(!tr->started);
    tr->started = true;
    struct treg *r = reg_add(corio_current_task(), tr);
    corio_scope sc;
    m_timeout(&sc, FAR_NS);
    void *res = NULL;
    int rc = corio_await(corio_coro(tr->fn, tr->arg), &res);
    int trc = m_scope_end(&sc);
    if (trc < 0)
        rc = trc;
    CK_EQ(r->depth, 0);
    r->t = NULL;
    tr->ended = true;
    tr->end_ns = corio_now_ns();
    tr->status = rc;
    tr->result = res;
    if (tr->g && rc < 0 && rc != -ECANCELED) { /* a failure of a group's child */
        struct grp *G = tr->g;
        CK(!G->ended);
        G->nfailed++;
        if (G->first_error == 0)
            G->first_error = rc;
        G->aborted = true;
    }
    return rc < 0 ? corio_fail(rc) : res;
}

static corio_coro_t wcoro(const char *name, corio_fn *fn, void *arg)
{
    return corio_coro(wrap_entry, trec_new(name, fn, arg));
}

static corio_task *wtask(const char *name, corio_fn *fn, void *arg)
{
    corio_task *t = corio_create_task(wcoro(name, fn, arg));
    CK(t != NULL);
    trecs[ntrecs - 1].task = t;
    return t;
}


/* ---- the random programs ---------------------------------------------------------------------- */

#define UNIT MS        /* durations are small multiples of it: many ties */
#define MAXNODES 48
#define MAXDEPTH 3     /* task tree depth */
#define MAXNEST 3      /* scopes and groups nested in one task */

struct node {
    uint64_t rng;
    int id, depth;
    struct grp *G;     /* the group it is a child of (it may spawn siblings into it) */
};

static struct node nodes[MAXNODES];
static int nnodes, budget;

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static unsigned rnd(struct node *nd, unsigned n)
{
    return (unsigned)(splitmix64(&nd->rng) % n);
}

static struct node *node_new(const struct node *parent, struct grp *G)
{
    if (nnodes >= budget || (parent && parent->depth >= MAXDEPTH))
        return NULL;
    struct node *c = &nodes[nnodes];
    *c = (struct node){.id = nnodes, .depth = parent ? parent->depth + 1 : 0, .G = G};
    c->rng = g_seed * 0xD1B54A32D192ED03ull + (uint64_t)nnodes * 0x8CB92BA72F3D8DD7ull + 1;
    nnodes++;
    return c;
}

static void *node_body(void *arg);

static corio_task *node_task(struct node *c)
{
    corio_task *t = wtask("node", node_body, c);
    trecs[ntrecs - 1].allow_err = -EIO;
    hold(t);
    return t;
}

static corio_coro_t node_coro(struct node *c)
{
    corio_coro_t co = wcoro("node", node_body, c);
    trecs[ntrecs - 1].allow_err = -EIO;
    return co;
}

static int block(struct node *nd, int steps, int nest);

static int act_child_await(struct node *nd, int nest)
{
    struct node *c = node_new(nd, NULL);
    if (!c)
        return SLEEP(UNIT);
    corio_task *t = node_task(c);
    int rc = rnd(nd, 2) ? block(nd, 1 + (int)rnd(nd, 2), nest) : 0; /* overlap with it */
    void *res = NULL;
    int arc = AWAIT(t, &res);
    if (arc == 0)
        CK_EQ((intptr_t)res, c->id);
    unhold_release(t);
    return rc < 0 ? rc : arc;
}

static int act_gather(struct node *nd)
{
    corio_task *ts[3];
    struct node *cs[3];
    void *res[3] = {0};
    int st[3] = {1, 1, 1};
    size_t k = 0, want = 1 + rnd(nd, 3);
    while (k < want && (cs[k] = node_new(nd, NULL)) != NULL)
        k++;
    if (k == 0)
        return YIELD();
    unsigned variant = rnd(nd, 4);
    int rc;
    if (variant < 2) {
        for (size_t i = 0; i < k; i++)
            ts[i] = node_task(cs[i]);
        rc = variant == 0 ? GATHER_TASKS(ts, k, res) : GATHER_TASKS_STATUS(ts, k, res, st);
        for (size_t i = 0; i < k; i++)
            unhold_release(ts[i]);
    } else {
        corio_coro_t co[3];
        for (size_t i = 0; i < k; i++)
            co[i] = node_coro(cs[i]);
        rc = variant == 2 ? GATHER(co, k, res) : GATHER_STATUS(co, k, res, st);
    }
    if (rc == 0)
        for (size_t i = 0; i < k; i++)
            if (variant % 2 == 0 || st[i] == 0)
                CK_EQ((intptr_t)res[i], cs[i]->id);
    if (rc == 0 && variant % 2 == 1)
        for (size_t i = 0; i < k; i++)
            if (st[i] < 0 && rnd(nd, 2))
                return st[i]; /* pass a child's failure on */
    return rc;
}

static int act_group(struct node *nd, int nest)
{
    if (nest >= MAXNEST)
        return SLEEP(rnd(nd, 3) * UNIT);
    struct grp G;
    m_group_begin(&G);
    int rc = 0;
    for (unsigned i = 0, k = 1 + rnd(nd, 3); i < k && rc == 0; i++) {
        struct node *c = node_new(nd, &G);
        if (!c)
            break;
        rc = m_group_spawn(&G, "node", node_body, c, -EIO);
    }
    if (rc == 0)
        rc = block(nd, (int)rnd(nd, 3), nest + 1);
    return GROUP_END(&G, rc);
}

static int act_timeout(struct node *nd, int nest)
{
    if (nest >= MAXNEST)
        return YIELD();
    corio_scope sc;
    if (rnd(nd, 4) == 0)
        m_timeout_at(&sc, corio_now_ns() + (int64_t)rnd(nd, 9) * UNIT);
    else
        m_timeout(&sc, (int64_t)rnd(nd, 9) * UNIT);
    if (rnd(nd, 5) == 0) { /* move it */
        int ex = corio_scope_expired(&sc);
        int64_t dl = rnd(nd, 6) == 0 ? CORIO_NO_DEADLINE : corio_now_ns() + (int64_t)rnd(nd, 6) * UNIT;
        int rrc = corio_scope_reschedule(&sc, dl);
        CK_EQ(rrc, ex == 1 ? -EALREADY : 0);
        if (rrc == 0)
            CK_EQ(corio_scope_deadline(&sc), dl);
    }
    int rc = block(nd, 1 + (int)rnd(nd, 3), nest + 1);
    int trc = m_scope_end(&sc);
    if (trc == -ETIMEDOUT && rc == -ECANCELED && rnd(nd, 2)) {
        cov.swallowed++;
        return 0; /* move_on_after: the cancel was ours */
    }
    return trc < 0 ? trc : rc;
}

static int act_shield(struct node *nd, int nest)
{
    if (nest >= MAXNEST)
        return YIELD();
    corio_scope sc;
    m_shield(&sc);
    int rc = block(nd, 1 + (int)rnd(nd, 2), nest + 1);
    int src = m_scope_end(&sc);
    return rc < 0 ? rc : src;
}

static int act_cancel(struct node *nd)
{
    if (nheld == 0)
        return YIELD();
    corio_task *h = held[rnd(nd, (unsigned)nheld)];
    int done = corio_task_done(h), was = corio_task_cancelled(h);
    CK(done == 0 || done == 1);
    CK(was == 0 || was == 1);
    bool with = rnd(nd, 2);
    int rc = with ? corio_cancel_with(h, "property") : corio_cancel(h);
    CK_EQ(rc, done || was ? 0 : 1);
    CK_EQ(corio_task_cancelled(h), was || !done);
    if (rc == 1 && with)
        CK(corio_cancel_reason(h) && strcmp(corio_cancel_reason(h), "property") == 0);
    if (rc == 1)
        cov.cancels_made++;
    else
        cov.cancels_noop++;
    return 0;
}

static int act_spawn_sibling(struct node *nd)
{
    if (!nd->G)
        return SLEEP(rnd(nd, 2) * UNIT);
    struct node *c = node_new(nd, nd->G);
    if (!c)
        return 0;
    return m_group_spawn(nd->G, "node", node_body, c, -EIO);
}

/* corio_wait, or as_completed, over a few new children; then await and release them */
static int act_wait(struct node *nd, bool ac)
{
    corio_task *ts[3];
    size_t k = 0, want = 1 + rnd(nd, 3);
    struct node *c;
    while (k < want && (c = node_new(nd, NULL)) != NULL)
        ts[k++] = node_task(c);
    if (k == 0)
        return YIELD();
    double timeout = rnd(nd, 3) == 0 ? -1.0 : (double)rnd(nd, 6) * 1e-3;
    int rc;
    if (!ac) {
        rc = WAIT(ts, k, 1 + (int)rnd(nd, 3), timeout);
    } else {
        struct m_ac a;
        m_ac_begin(&a, ts, k, timeout);
        corio_task *d;
        while ((rc = AC_NEXT(&a, &d)) > 0)
            if (rnd(nd, 4) == 0)
                break; /* stop early: end takes care of the rest */
        CK_EQ(corio_as_completed_end(&a.ac), 0);
    }
    if (rc >= 0)
        rc = 0;
    for (size_t i = 0; i < k; i++) {
        if (rnd(nd, 2)) {
            int arc = AWAIT(ts[i], NULL);
            if (rc == 0 && arc < 0 && rnd(nd, 2))
                rc = arc;
        }
        unhold_release(ts[i]); /* released while running: it goes on by itself */
    }
    return rc;
}

static int act(struct node *nd, int nest)
{
    unsigned a = rnd(nd, 100);
    if (a < 22)
        return SLEEP((int64_t)rnd(nd, 5) * UNIT);
    if (a < 29)
        return YIELD();
    if (a < 32)
        return -EIO; /* fail on purpose */
    if (a < 42)
        return act_child_await(nd, nest);
    if (a < 50)
        return act_gather(nd);
    if (a < 58)
        return act_group(nd, nest);
    if (a < 68)
        return act_timeout(nd, nest);
    if (a < 74)
        return act_shield(nd, nest);
    if (a < 84)
        return act_cancel(nd);
    if (a < 89)
        return act_spawn_sibling(nd);
    return act_wait(nd, a >= 95);
}

static int block(struct node *nd, int steps, int nest)
{
    for (int i = 0; i < steps; i++) {
        int rc = act(nd, nest);
        if (rc < 0) {
            if (rc == -EIO || rnd(nd, 4) != 0)
                return rc;
            cov.swallowed++; /* go on: a cancel will meet the next suspension again */
        }
    }
    return 0;
}

static void *node_body(void *arg)
{
    struct node *nd = arg;
    int rc = block(nd, 1 + (int)rnd(nd, 5), 0);
    return rc < 0 ? corio_fail(rc) : (void *)(intptr_t)nd->id;
}

/* ---- the driver ---------------------------------------------------------------------------------- */

struct outcome {
    int rc;
    uint64_t digest;
    long calls;
    int ntasks;
};

static struct outcome run_one_seed(uint64_t seed)
{
    g_seed = seed;
    memset(trecs, 0, sizeof trecs);
    ntrecs = 0;
    memset(regs, 0, sizeof regs);
    nnodes = 0;
    nheld = 0;
    g_digest = 0xcbf29ce484222325ull;
    g_calls = 0;
    uint64_t s = seed;
    budget = 4 + (int)(splitmix64(&s) % (MAXNODES - 4)); /* small and large trees */
    unsigned long closes = corio__last_close.closes;

    corio_loop_opts o = test_virtual_opts();
    struct node *root = node_new(NULL, NULL);
    int rc = corio_run_opts(wcoro("root", node_body, root), NULL, &o);

    CK_EQ(corio__last_close.closes, closes + 1);
    CK_EQ(corio__last_close.live_tasks, 0);
    CK_EQ(corio__last_close.stacks_in_use, 0);
    CK_EQ(corio__last_close.timers, 0);
    CK_EQ(corio__last_close.soon, 0);
    if (!(rc == 0 || rc == -ECANCELED || rc == -ETIMEDOUT || rc == -EIO))
        ctx_fail(__LINE__, "corio_run returned %d", rc);
    for (int i = 0; i < MAXREG; i++)
        CK(regs[i].t == NULL); /* every body that started has ended */
    CK_EQ(nheld, 0);
    CK(trecs[0].started && trecs[0].ended);
    CK_EQ(trecs[0].status, rc);
    for (int i = 0; i < ntrecs; i++) {
        struct trec *tr = &trecs[i];
        if (!tr->used || !tr->started)
            continue; /* never ran: cancelled first */
        CK(tr->ended);
        int st = tr->status;
        if (!(st == 0 || st == -ECANCELED || st == -ETIMEDOUT || st == -EIO))
            ctx_fail(__LINE__, "task %d ended with %d", i, st);
    }
    return (struct outcome){rc, g_digest, g_calls, ntrecs};
}

static void check_seed(uint64_t seed, bool twice)
{
    struct outcome a = run_one_seed(seed);
    if (twice) { /* the same seed makes the same calls with the same results */
        struct outcome b = run_one_seed(seed);
        CK_EQ(b.rc, a.rc);
        CK_EQ(b.calls, a.calls);
        CK_EQ(b.ntasks, a.ntasks);
        CK(b.digest == a.digest);
    }
}

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    long n = strtol(v, &end, 10);
    return *end ? dflt : n;
}

TEST(property_random_trees)
{
    long one = env_long("CORIO_PROPERTY_SEED", -1);
    if (one >= 0) {
        check_seed((uint64_t)one, true);
        fprintf(stderr, "property: seed %ld passed\n", one);
        return;
    }
    long nseeds = env_long("CORIO_PROPERTY_SEEDS", 30000) / test_scale();
    memset(&cov, 0, sizeof cov);
    long calls = 0, tasks = 0, by_rc[4] = {0};
    for (long seed = 1; seed <= nseeds; seed++) {
        check_seed((uint64_t)seed, seed % 8 == 0);
        calls += g_calls;
        tasks += ntrecs;
        int rc = trecs[0].status;
        by_rc[rc == 0 ? 0 : rc == -ECANCELED ? 1 : rc == -ETIMEDOUT ? 2 : 3]++;
    }
    fprintf(stderr,
            "property: %ld seeds, %ld tasks, %ld checked calls; root ended 0/-ECANCELED/-ETIMEDOUT/-EIO: "
            "%ld/%ld/%ld/%ld; cancels %ld (+%ld no-ops), errors swallowed %ld, spawns refused %ld; "
            "timeout ends -ETIMEDOUT %ld (surely credited %ld), shield ends -ECANCELED %ld, "
            "group ends failed %ld / cancelled %ld\n",
            nseeds, tasks, calls, by_rc[0], by_rc[1], by_rc[2], by_rc[3], cov.cancels_made,
            cov.cancels_noop, cov.swallowed, cov.spawn_refused, cov.timeout_ends, cov.sure_hit_ends,
            cov.shield_cancels, cov.group_ends_failed, cov.group_ends_cancelled);
    g_seed = 0;
    if (nseeds >= 1000) { /* the interesting paths were all taken */
        CK(by_rc[0] > 0 && by_rc[1] > 0 && by_rc[2] > 0 && by_rc[3] > 0);
        CK(cov.cancels_made > 0 && cov.swallowed > 0 && cov.spawn_refused > 0);
        CK(cov.sure_hit_ends > 0 && cov.shield_cancels > 0);
        CK(cov.group_ends_failed > 0 && cov.group_ends_cancelled > 0);
    }
}
