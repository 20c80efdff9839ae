/* test/cancel_model.h - a model of the cancellation rules, with checked
 * wrappers of the calls, shared by test_property.c and test_systematic.c.
 *
 * Every task body runs in wrap_entry (made with wcoro or wtask), inside a
 * timeout scope with a far deadline, and registers in its treg the scopes it
 * opens through the wrappers (m_timeout, m_shield, m_group_begin). From them
 * model_cause() computes the outermost visible cause of an interruption as
 * corio__interrupt_cause defines it (the task's cancel first, then the
 * outermost expired timeout scope or aborted group; a shield hides what is
 * outside it). Each wrapped call (SLEEP, YIELD, AWAIT, GATHER*, WAIT,
 * AC_NEXT, WAIT_FOR_TASK, GROUP_END, m_scope_end) checks its result against
 * the model as it returns and notes which timeout scopes were, or may have
 * been, credited with an interruption; their ends must say so.
 *
 * The suites plug in through struct cm_suite, given to cm_reset before each
 * run: the context of a failure message (the property suite's seed; the
 * systematic suite's program, mode and N), a look at every wrapped call as it
 * returns (the property suite's trace digest; the systematic suite's check of
 * the call its hook interrupted), and the end of each timeout scope. The
 * systematic suite also uses what the property suite never needs: opaque
 * tasks (inside m_wait_for_coro, whose timeout scope the model cannot see, so
 * the checks that need the exact cause are skipped), timeout scopes its hook
 * expired (ent.hooked), and uninstrumented bodies (the seed programs). */
#ifndef CORIO_TEST_CANCEL_MODEL_H
#define CORIO_TEST_CANCEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "corio.h"

#define SEC 1000000000LL
#define MS 1000000LL
#define FAR_NS (1000000LL * SEC) /* the far deadline of the task bodies' scopes */

/* ---- checks: a failure prints the suite's context, then ends the test ---------------------- */

__attribute__((noreturn, format(printf, 3, 4))) void cm_fail(const char *file, int line,
                                                              const char *fmt, ...);

#define CK_FAIL(...) cm_fail(__FILE__, __LINE__, __VA_ARGS__)

#define CK(cond)                                                  \
    do {                                                          \
        if (!(cond))                                              \
            CK_FAIL("CK(%s) failed", #cond);                      \
    } while (0)

#define CK_EQ(a, b)                                                                     \
    do {                                                                                \
        long long ck_a_ = (long long)(a), ck_b_ = (long long)(b);                       \
        if (ck_a_ != ck_b_)                                                             \
            CK_FAIL("CK_EQ(%s, %s) failed: %lld != %lld", #a, #b, ck_a_, ck_b_);         \
    } while (0)

/* ---- task records: every task body runs in wrap_entry ------------------------------------ */

struct grp;

struct trec {
    const char *name;
    corio_fn *fn;
    void *arg;
    struct grp *g;     /* the task group it was spawned into, if any */
    int allow_err;     /* a deliberate error it may end with (0: none) */
    bool propagates;   /* its code passes every error on (the interrupted task ends < 0) */
    bool used;         /* a task was made for it */
    bool started, ended;
    int status;
    void *result;
    int64_t end_ns;    /* corio_now_ns when it ended */
    corio_task *task;  /* its handle, when it was made with one */
};

#define MAXT 256
extern struct trec trecs[MAXT];
extern int ntrecs;

struct trec *trec_of(corio_task *t); /* the record of a handle made by wtask or a group */
struct trec *last_trec(void);        /* the record made last */

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
    bool hooked;      /* systematic: its hook expired it while a wait inside was pending */
};

#define MD 24
struct treg {
    corio_task *t;
    struct trec *tr;
    int depth;
    int opaque;       /* inside wait_for_coro with a timeout: an unregistered scope */
    struct ent e[MD];
};

#define MAXREG 256
extern struct treg regs[MAXREG];

struct treg *reg_find(corio_task *t); /* NULL: none (reg_find(NULL) finds a free one) */
struct treg *reg_self(void);

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

/* The outermost visible cause of an interruption: an index into r->e, C_TASK or C_NONE. */
int model_cause(const struct treg *r);

/* How often the model's interesting paths ran (the suites print them, and assert some). */
struct cm_cov {
    long sure_hit_ends, timeout_ends, shield_cancels, group_ends_failed, group_ends_cancelled,
        spawn_refused;
};
extern struct cm_cov cm_cov;

/* ---- the suite's side ---------------------------------------------------------------------- */

enum { K_SLEEP = 1, K_YIELD, K_AWAIT, K_GATHER, K_GATHER_ST, K_WAIT, K_AC, K_GEND, K_WAITFOR };

/* A wrapped call in progress. */
struct call {
    struct treg *r;
    int site, kind;    /* site: the __LINE__ of the call */
    int pre_cause;
    bool exact;        /* the credit of its interruption is known (credit() was called) */
    int64_t t0;
};

struct cm_suite {
    /* the context of a failure: brief for test__fail's "check failed (...)", or
     * in full for the first line ("<suite>: ..."); cm_fail adds ": " and the message */
    void (*context)(char *buf, size_t cap, bool brief);
    /* a wrapped call returned rc (alt: another value an interrupted call may return) */
    void (*returned)(const struct call *c, int rc, int alt);
    /* a timeout scope ended (NULL: nothing to do) */
    void (*timeout_ended)(corio_scope *sc);
    /* the bodies' calls do not go through the wrappers: a body's error stands for them */
    bool uninstrumented;
};

/* Before each run: forget every task record, registration and held handle. */
void cm_reset(const struct cm_suite *suite);

/* The instrumented call the running task is in (0: none), and that task. */
extern int cm_site;
extern corio_task *cm_site_task;

/* After corio_run: the loop closed clean (closes: corio__last_close.closes before the run). */
void cm_check_closed(unsigned long closes);

/* ---- task handles ---------------------------------------------------------------------------- */

corio_coro_t wcoro(const char *name, corio_fn *fn, void *arg);
corio_task *wtask(const char *name, corio_fn *fn, void *arg);

/* The handles held right now (a group's children, and what a suite adds): random cancels
 * pick among them; unhold_release lets go of one and releases it. */
#define MAXHELD 256
extern corio_task *held[MAXHELD];
extern int nheld;
void hold(corio_task *t);
void unhold_release(corio_task *t);

/* The status of an ended task, without suspending. */
int status_of(corio_task *t);

/* ---- checked calls (site: __LINE__ of the call; the macros pass it) ---------------------- */

int m_sleep(int site, int64_t ns);
#define SLEEP(ns) m_sleep(__LINE__, (ns))
int m_yield(int site);
#define YIELD() m_yield(__LINE__)
int m_await(int site, corio_task *t, void **res);
#define AWAIT(t, res) m_await(__LINE__, (t), (res))

int m_gather_tasks(int site, corio_task *const *ts, size_t n, void **res, int *st);
#define GATHER_TASKS(ts, n, res) m_gather_tasks(__LINE__, (ts), (n), (res), NULL)
#define GATHER_TASKS_STATUS(ts, n, res, st) m_gather_tasks(__LINE__, (ts), (n), (res), (st))
int m_gather_coros(int site, const corio_coro_t *cs, size_t n, void **res, int *st);
#define GATHER(cs, n, res) m_gather_coros(__LINE__, (cs), (n), (res), NULL)
#define GATHER_STATUS(cs, n, res, st) m_gather_coros(__LINE__, (cs), (n), (res), (st))

int m_wait(int site, corio_task *const *ts, size_t n, int mode, double timeout);
#define WAIT(ts, n, mode, timeout) m_wait(__LINE__, (ts), (n), (mode), (timeout))

struct m_ac {
    corio_as_completed ac;
    corio_task *ts[16];
    bool handed[16];
    size_t n, nhanded;
    int64_t deadline;
};
void m_ac_begin(struct m_ac *a, corio_task *const *ts, size_t n, double timeout);
int m_ac_next(int site, struct m_ac *a, corio_task **out);
#define AC_NEXT(a, out) m_ac_next(__LINE__, (a), (out))

int m_wait_for_task(int site, corio_task *t, double secs, void **res);
#define WAIT_FOR_TASK(t, secs, res) m_wait_for_task(__LINE__, (t), (secs), (res))
int m_wait_for_coro(corio_coro_t coro, double secs, void **res); /* opaque while it runs */

/* ---- scopes and task groups ------------------------------------------------------------------ */

void m_timeout_at(corio_scope *sc, int64_t deadline);
void m_timeout(corio_scope *sc, int64_t ns);
void m_shield(corio_scope *sc);
int m_scope_end(corio_scope *sc);

void m_group_begin(struct grp *G);
int m_group_spawn(struct grp *G, const char *name, corio_fn *fn, void *arg, int allow_err);
int m_group_end(int site, struct grp *G, int body);
#define GROUP_END(G, body) m_group_end(__LINE__, (G), (body))

#endif /* CORIO_TEST_CANCEL_MODEL_H */
