/* test/cancel_model.c - the model of the cancellation rules and the checked
 * wrappers that test_property.c and test_systematic.c share (see
 * cancel_model.h). */
#define _GNU_SOURCE
#include "cancel_model.h"

#include "test.h"

#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the suite, and failure messages ----------------------------------------------------- */

static struct cm_suite suite;
int cm_site;
corio_task *cm_site_task;

void cm_fail(const char *file, int line, const char *fmt, ...)
{
    char full[256], brief[256];
    if (suite.context) {
        suite.context(full, sizeof full, false);
        suite.context(brief, sizeof brief, true);
    } else {
        snprintf(full, sizeof full, "cancel model");
        snprintf(brief, sizeof brief, "cancel model");
    }
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s: ", full);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    test__fail(file, line, "check failed (%s)", brief);
}

/* ---- task records: every task body runs in wrap_entry ------------------------------------ */

struct trec trecs[MAXT];
int ntrecs;

static struct trec *trec_new(const char *name, corio_fn *fn, void *arg)
{
    CK(ntrecs < MAXT);
    struct trec *tr = &trecs[ntrecs++];
    *tr = (struct trec){.name = name, .fn = fn, .arg = arg, .propagates = true, .used = true};
    return tr;
}

/* ---- the model: each task's registered scopes -------------------------------------------- */

struct treg regs[MAXREG];

struct treg *reg_find(corio_task *t)
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

struct treg *reg_self(void)
{
    corio_task *self = corio_current_task();
    CK(self != NULL);
    struct treg *r = reg_find(self);
    CK(r != NULL);
    return r;
}

static bool ent_cancelled(const struct ent *e)
{
    if (e->kind == SK_TIMEOUT) {
        int ex = corio_scope_expired(e->sc);
        int64_t dl = corio_scope_deadline(e->sc);
        int64_t now = corio_now_ns();
        CK(ex == 0 || ex == 1);
        /* on the virtual clock a scope has expired exactly when its deadline is reached */
        if (ex != (dl != CORIO_NO_DEADLINE && now >= dl))
            CK_FAIL("scope expired=%d but deadline %lld, now %lld", ex, (long long)dl,
                    (long long)now);
        return ex == 1;
    }
    if (e->kind == SK_GROUP)
        return e->g->aborted;
    return false;
}

/* The outermost visible cause of an interruption, as corio__interrupt_cause
 * defines it: walk outwards, stop at a shield, the task's cancel beats all. */
int model_cause(const struct treg *r)
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

struct cm_cov cm_cov;

/* ---- instrumented calls -------------------------------------------------------------------- */

static void pre(struct call *c, int site, int kind)
{
    c->r = reg_self();
    c->site = site;
    c->kind = kind;
    c->pre_cause = model_cause(c->r);
    c->exact = false;
    c->t0 = corio_now_ns();
    cm_site = site;
    cm_site_task = c->r->t;
}

/* alt: another value the interrupted call may return (a group's first error) */
static void post(struct call *c, int rc, int alt)
{
    cm_site = 0;
    cm_site_task = NULL;
    if (suite.returned)
        suite.returned(c, rc, alt);
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
                CK_FAIL("call at line %d (kind %d): cause %d before, %d after", c->site, c->kind,
                        c->pre_cause, now_cause);
        }
        credit(c->r, c->pre_cause);
        c->exact = true;
    }
    if (now_cause != C_NONE)
        CK_EQ(rc, -ECANCELED);
    if (exact && rc == -ECANCELED && !c->r->opaque)
        CK(now_cause != C_NONE); /* never a spurious -ECANCELED */
    if (single && !c->r->opaque && c->pre_cause == C_NONE) {
        credit(c->r, now_cause); /* C_NONE: it was not interrupted, nothing credited */
        c->exact = true;
    }
}

int m_sleep(int site, int64_t ns)
{
    struct call c;
    pre(&c, site, ns == 0 ? K_YIELD : K_SLEEP);
    int rc = corio_sleep_ns(ns);
    CK(rc == 0 || rc == -ECANCELED);
    if (rc == 0)
        CK(corio_now_ns() - c.t0 >= ns);
    if (ns == 0) {
        int cause = model_cause(c.r);
        CK(c.r->opaque || (rc == -ECANCELED) == (cause != C_NONE));
        if (rc == -ECANCELED)
            credit(c.r, cause); /* a yield checks (and credits) when it resumes */
        c.exact = !c.r->opaque;
    } else {
        check_suspended(&c, rc, true, true);
    }
    post(&c, rc, 0);
    return rc;
}

int m_yield(int site)
{
    struct call c;
    pre(&c, site, K_YIELD);
    int rc = corio_yield();
    CK(rc == 0 || rc == -ECANCELED);
    CK_EQ(corio_now_ns(), c.t0); /* time does not pass while a task is ready */
    int cause = model_cause(c.r);
    CK(c.r->opaque || (rc == -ECANCELED) == (cause != C_NONE));
    if (rc == -ECANCELED)
        credit(c.r, cause);
    c.exact = !c.r->opaque;
    post(&c, rc, 0);
    return rc;
}

struct trec *trec_of(corio_task *t)
{
    for (int i = ntrecs - 1; i >= 0; i--)
        if (trecs[i].task == t && trecs[i].used)
            return &trecs[i];
    return NULL;
}

/* The status of an ended task, without suspending. */
int status_of(corio_task *t)
{
    CK_EQ(corio_task_done(t), 1);
    return corio_await(t, NULL);
}

int m_await(int site, corio_task *t, void **res)
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

int m_gather_tasks(int site, corio_task *const *ts, size_t n, void **res, int *st)
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

int m_gather_coros(int site, const corio_coro_t *cs, size_t n, void **res, int *st)
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

int m_wait(int site, corio_task *const *ts, size_t n, int mode, double timeout)
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
                CK_FAIL("corio_wait(mode %d) returned at %lld, met at %lld (called at %lld)", mode,
                        (long long)corio_now_ns(), (long long)when, (long long)c.t0);
        }
    }
    post(&c, rc, 0);
    return rc;
}

void m_ac_begin(struct m_ac *a, corio_task *const *ts, size_t n, double timeout)
{
    CK(n <= 16);
    memset(a, 0, sizeof *a);
    memcpy(a->ts, ts, n * sizeof *ts);
    a->n = n;
    a->deadline = timeout < 0 ? INT64_MAX : corio_now_ns() + (int64_t)(timeout * 1e9);
    CK_EQ(corio_as_completed_begin(&a->ac, ts, n, timeout), 0);
}

int m_ac_next(int site, struct m_ac *a, corio_task **out)
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
    } else if (!c.r->opaque) {
        CK(model_cause(c.r) != C_NONE);
    }
    post(&c, rc, 0);
    return rc;
}

int m_wait_for_task(int site, corio_task *t, double secs, void **res)
{
    struct call c;
    pre(&c, site, K_WAITFOR);
    int rc = corio_wait_for(t, secs, res);
    CK_EQ(corio_task_done(t), 1); /* on a timeout or a cancel it waits until t has ended */
    if (rc == -ETIMEDOUT) /* its timeout, or t's own status */
        CK(corio_now_ns() - c.t0 >= (int64_t)(secs * 1e9) || status_of(t) == -ETIMEDOUT);
    else if (rc != -ECANCELED)
        CK_EQ(rc, status_of(t));
    post(&c, rc, 0);
    return rc;
}

int m_wait_for_coro(corio_coro_t coro, double secs, void **res)
{
    struct treg *r = reg_self();
    int64_t t0 = corio_now_ns();
    r->opaque++;
    int rc = corio_wait_for(coro, secs, res);
    r->opaque--;
    if (rc == -ETIMEDOUT)
        CK(corio_now_ns() - t0 >= (int64_t)(secs * 1e9));
    return rc;
}

/* ---- scopes ---------------------------------------------------------------------------------- */

void m_timeout_at(corio_scope *sc, int64_t deadline)
{
    struct treg *r = reg_self();
    CK_EQ(corio_timeout_at_begin(sc, deadline), 0);
    push_ent(r, SK_TIMEOUT, sc, NULL);
}

void m_timeout(corio_scope *sc, int64_t ns)
{
    struct treg *r = reg_self();
    int64_t now = corio_now_ns();
    CK_EQ(corio_timeout_begin_ns(sc, ns), 0);
    CK_EQ(corio_scope_deadline(sc), now + ns);
    push_ent(r, SK_TIMEOUT, sc, NULL);
}

void m_shield(corio_scope *sc)
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

int m_scope_end(corio_scope *sc)
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
            if (!e.maybe_hit && !r->opaque)
                CK_FAIL("a timeout scope's end said -ETIMEDOUT, but no interruption "
                        "can have been credited to it");
        }
        if (e.sure_hit)
            CK_EQ(rc, -ETIMEDOUT);
        cm_cov.timeout_ends += rc == -ETIMEDOUT;
        bool hooked_hit = e.hooked && !outer_cause(r); /* nothing further out took it */
        if (hooked_hit)
            CK_EQ(rc, -ETIMEDOUT);
        cm_cov.sure_hit_ends += e.sure_hit || hooked_hit;
        if (rc == 0 && e.saw_int && !r->opaque) /* then the interruption was another cause's */
            CK(e.inner_cause || outer_cause(r));
        if (ex)
            mark_inner_cause(r);
        if (suite.timeout_ended)
            suite.timeout_ended(sc);
        return rc;
    }
    r->depth--;
    int cause = model_cause(r); /* what the shield held back */
    int rc = corio_scope_end(sc);
    if (cause != C_NONE)
        CK_EQ(rc, -ECANCELED);
    else if (!r->opaque)
        CK_EQ(rc, 0);
    if (rc == -ECANCELED) {
        credit(r, cause);
        cm_cov.shield_cancels++;
    }
    return rc;
}

/* ---- task groups ------------------------------------------------------------------------------ */

static void *wrap_entry(void *arg);

corio_task *held[MAXHELD];
int nheld;

void hold(corio_task *t)
{
    CK(nheld < MAXHELD);
    held[nheld++] = t;
}

void unhold_release(corio_task *t)
{
    int i = 0;
    while (i < nheld && held[i] != t)
        i++;
    CK(i < nheld);
    held[i] = held[--nheld];
    CK_EQ(corio_task_release(t), 0);
}

void m_group_begin(struct grp *G)
{
    struct treg *r = reg_self();
    memset(G, 0, sizeof *G);
    CK_EQ(corio_taskgroup_begin(&G->g), 0);
    push_ent(r, SK_GROUP, NULL, G);
}

int m_group_spawn(struct grp *G, const char *name, corio_fn *fn, void *arg, int allow_err)
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
        cm_cov.spawn_refused++;
    }
    return rc;
}

int m_group_end(int site, struct grp *G, int body)
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
    cm_cov.group_ends_failed += G->first_error != 0;
    cm_cov.group_ends_cancelled += rc == -ECANCELED;
    if (G->first_error) {
        CK_EQ(rc, G->first_error);
    } else {
        CK(rc == 0 || rc == -ECANCELED);
        if (body == -ECANCELED && !group_caused)
            CK_EQ(rc, -ECANCELED); /* cancelled from outside */
        if (rc == 0)
            CK(body >= 0);
        if (rc == -ECANCELED && body != -ECANCELED && !r->opaque)
            CK(model_cause(r) != C_NONE); /* it was interrupted while it waited */
    }
    if (G->aborted)
        mark_inner_cause(r);
    for (int i = 0; i < G->nkids; i++)
        unhold_release(G->kids[i]);
    post(&c, rc, G->first_error);
    return rc;
}

/* ---- the task wrapper ----------------------------------------------------------------------- */

static void *wrap_entry(void *arg)
{
    struct trec *tr = arg;
    CK(!tr->started);
    tr->started = true;
    cm_site = 0;
    cm_site_task = NULL;
    struct treg *r = reg_add(corio_current_task(), tr);
    corio_scope sc;
    m_timeout(&sc, FAR_NS);
    void *res = NULL;
    int rc = corio_await(corio_coro(tr->fn, tr->arg), &res);
    if (rc < 0 && suite.uninstrumented)
        mark_maybe_hit(r); /* its calls were not checked: the body's error stands for them */
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

corio_coro_t wcoro(const char *name, corio_fn *fn, void *arg)
{
    return corio_coro(wrap_entry, trec_new(name, fn, arg));
}

corio_task *wtask(const char *name, corio_fn *fn, void *arg)
{
    corio_task *t = corio_create_task(wcoro(name, fn, arg));
    CK(t != NULL);
    trecs[ntrecs - 1].task = t;
    return t;
}

struct trec *last_trec(void)
{
    return &trecs[ntrecs - 1];
}

/* ---- runs ------------------------------------------------------------------------------------ */

void cm_reset(const struct cm_suite *s)
{
    suite = *s;
    memset(trecs, 0, sizeof trecs);
    ntrecs = 0;
    memset(regs, 0, sizeof regs);
    nheld = 0;
    cm_site = 0;
    cm_site_task = NULL;
}

void cm_check_closed(unsigned long closes)
{
    CK_EQ(corio__last_close.closes, closes + 1);
    CK_EQ(corio__last_close.live_tasks, 0);
    CK_EQ(corio__last_close.stacks_in_use, 0);
    CK_EQ(corio__last_close.timers, 0);
    CK_EQ(corio__last_close.soon, 0);
}
