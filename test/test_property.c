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
 * cancel rules (test/cancel_model.[ch], shared with test_systematic.c: the
 * scopes each task has open, which of them expired or aborted, shields, the
 * task's cancel): e.g. a sleep returns -ECANCELED
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

#include "cancel_model.h"
#include "internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- context for failure messages --------------------------------------------------- */

static uint64_t g_seed;

static void property_context(char *buf, size_t cap, bool brief)
{
    unsigned long long s = (unsigned long long)g_seed;
    if (brief)
        snprintf(buf, cap, "seed %llu", s);
    else
        snprintf(buf, cap, "property: seed %llu (replay: CORIO_PROPERTY_SEED=%llu)", s, s);
}

/* How often the interesting paths ran, besides the model's cm_cov (printed, and asserted
 * non-zero over all seeds). */
static struct {
    long cancels_made, cancels_noop, swallowed;
} cov;

/* ---- the trace digest (determinism) ----------------------------------------------------- */

static uint64_t g_digest;
static long g_calls;

static void digest(uint64_t v)
{
    g_digest = (g_digest ^ v) * 0x100000001b3ull;
}

/* Every checked call, as it returns: its site, result and time go into the digest. */
static void property_returned(const struct call *c, int rc, int alt)
{
    (void)alt;
    g_calls++;
    digest((uint64_t)c->site);
    digest((uint64_t)(int64_t)rc);
    digest((uint64_t)corio_now_ns());
}

static const struct cm_suite property_suite = {
    .context = property_context,
    .returned = property_returned,
};

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
    cm_reset(&property_suite);
    nnodes = 0;
    g_digest = 0xcbf29ce484222325ull;
    g_calls = 0;
    uint64_t s = seed;
    budget = 4 + (int)(splitmix64(&s) % (MAXNODES - 4)); /* small and large trees */
    unsigned long closes = corio__last_close.closes;

    corio_loop_opts o = test_virtual_opts();
    struct node *root = node_new(NULL, NULL);
    int rc = corio_run_opts(wcoro("root", node_body, root), NULL, &o);

    cm_check_closed(closes);
    if (!(rc == 0 || rc == -ECANCELED || rc == -ETIMEDOUT || rc == -EIO))
        CK_FAIL("corio_run returned %d", rc);
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
            CK_FAIL("task %d ended with %d", i, st);
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
    memset(&cm_cov, 0, sizeof cm_cov);
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
            cov.cancels_noop, cov.swallowed, cm_cov.spawn_refused, cm_cov.timeout_ends,
            cm_cov.sure_hit_ends, cm_cov.shield_cancels, cm_cov.group_ends_failed,
            cm_cov.group_ends_cancelled);
    g_seed = 0;
    if (nseeds >= 1000) { /* the interesting paths were all taken */
        CK(by_rc[0] > 0 && by_rc[1] > 0 && by_rc[2] > 0 && by_rc[3] > 0);
        CK(cov.cancels_made > 0 && cov.swallowed > 0 && cm_cov.spawn_refused > 0);
        CK(cm_cov.sure_hit_ends > 0 && cm_cov.shield_cancels > 0);
        CK(cm_cov.group_ends_failed > 0 && cm_cov.group_ends_cancelled > 0);
    }
}
