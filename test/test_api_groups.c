/* test/test_api_groups.c - task groups, gather with statuses, corio_wait,
 * corio_as_completed, done callbacks, and the races between completion,
 * cancel and timeouts.
 *
 * Everything timed runs on the virtual clock (test_run_virtual), so every
 * instant asserted with corio_now_ns() is exact. Test names start with
 * "groups_" so that `corio_tests groups` selects them all. */
#include "test.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SEC 1000000000LL
#define MS 1000000LL

/* ---- a configurable child ------------------------------------------------------- */

struct child {
    int64_t ns;       /* how long it sleeps */
    int fail;         /* negative errno to end with after the sleep, or 0 */
    intptr_t value;   /* its result */
    int ignore;       /* ignore the sleep's failure (still ends with `fail`/value) */
    int64_t cleanup;  /* after a failed sleep: a shielded cleanup this long */
    int rc;           /* what its sleep returned (1 before) */
    int64_t woke;     /* when the sleep returned */
    int64_t ended;    /* when it returned */
};

static void child_init(struct child *c, int64_t ns, int fail, intptr_t value)
{
    memset(c, 0, sizeof *c);
    c->ns = ns;
    c->fail = fail;
    c->value = value;
    c->rc = 1;
    c->woke = c->ended = -1;
}

static void *child_fn(void *arg)
{
    struct child *c = arg;
    c->rc = corio_sleep_ns(c->ns);
    c->woke = corio_now_ns();
    if (c->rc < 0 && c->cleanup) {
        corio_scope sh;
        ASSERT_EQ(corio_shield_begin(&sh), 0);
        ASSERT_EQ(corio_sleep_ns(c->cleanup), 0);
        ASSERT_EQ(corio_scope_end(&sh), -ECANCELED);
    }
    c->ended = corio_now_ns();
    test_trace("end%ld", (long)c->value);
    if (c->rc < 0 && !c->ignore)
        return corio_fail(c->rc);
    if (c->fail)
        return corio_fail(c->fail);
    return (void *)c->value;
}

static int counted;

static void *count_run(void *arg)
{
    (void)arg;
    counted++;
    return NULL;
}

static void *sleep_ns_then_77(void *arg)
{
    int rc = corio_sleep_ns((int64_t)(intptr_t)arg);
    if (rc < 0)
        return corio_fail(rc);
    return (void *)(intptr_t)77;
}

/* ---- task groups ------------------------------------------------------------------- */

static void *main_group_waits_all(void *arg)
{
    (void)arg;
    struct child c[3];
    child_init(&c[0], 1 * SEC, 0, 10);
    child_init(&c[1], 3 * SEC, 0, 11);
    child_init(&c[2], 2 * SEC, 0, 12);
    corio_taskgroup g;
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_fn, &c[i]), NULL), 0);
    ASSERT_EQ(corio_taskgroup_failed(&g), 0);
    ASSERT_EQ(corio_sleep(0.5), 0); /* the body may suspend */
    ASSERT_EQ(corio_taskgroup_end(&g, 0), 0);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    ASSERT_EQ(corio_taskgroup_failed(&g), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(c[i].rc, 0);
    ASSERT_EQ(c[0].ended, 1 * SEC);
    ASSERT_EQ(c[1].ended, 3 * SEC);
    ASSERT_EQ(c[2].ended, 2 * SEC);
    /* an empty group ends at once */
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    ASSERT_EQ(corio_taskgroup_end(&g, 0), 0);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    return NULL;
}

TEST(groups_end_waits_for_every_child)
{
    test_trace_reset();
    ASSERT_EQ(test_run_virtual(main_group_waits_all, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "end10 end12 end11");
}

static void *main_group_first_failure(void *arg)
{
    (void)arg;
    struct child c[3];
    child_init(&c[0], 10 * SEC, 0, 0);
    child_init(&c[1], 1 * SEC, -EIO, 1);
    child_init(&c[2], 10 * SEC, 0, 2);
    corio_taskgroup g;
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_fn, &c[i]), NULL), 0);
    int rc = corio_sleep(10);
    ASSERT_EQ(rc, -ECANCELED); /* the body is cancelled too */
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(corio_yield(), -ECANCELED); /* until end */
    ASSERT_EQ(corio_sleep(1), -ECANCELED);
    ASSERT_EQ(corio_taskgroup_failed(&g), 1);
    ASSERT_EQ(corio_task_cancelled(corio_current_task()), 0); /* the group's scope, not the task */
    ASSERT_EQ(corio_taskgroup_end(&g, rc), -EIO);
    ASSERT_EQ(corio_taskgroup_failed(&g), 1);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(c[0].rc, -ECANCELED);
    ASSERT_EQ(c[0].woke, 1 * SEC);
    ASSERT_EQ(c[2].rc, -ECANCELED);
    ASSERT_EQ(c[2].woke, 1 * SEC);
    /* after end the body's cancel is gone */
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    return NULL;
}

TEST(groups_first_failure_cancels_siblings_and_body)
{
    ASSERT_EQ(test_run_virtual(main_group_first_failure, NULL, NULL), 0);
}

/* Several children fail at the same virtual instant. The first to end (c0,
 * woken first) aborts the group; the others were woken at that instant but
 * have not resumed, so the abort reaches their sleeps (-ECANCELED); they
 * ignore that and fail with their own errors, which count as failures. */
static void *main_group_failures_together(void *arg)
{
    (void)arg;
    struct child c[4];
    child_init(&c[0], 1 * SEC, -EIO, 0);
    child_init(&c[1], 1 * SEC, -ENOENT, 1);
    child_init(&c[2], 1 * SEC, -EPIPE, 2);
    child_init(&c[3], 5 * SEC, 0, 3);
    c[0].ignore = c[1].ignore = c[2].ignore = 1;
    corio_taskgroup g;
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_fn, &c[i]), NULL), 0);
    ASSERT_EQ(corio_taskgroup_end(&g, 0), -EIO);
    ASSERT_EQ(corio_taskgroup_failed(&g), 3);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(c[0].rc, 0);
    ASSERT_EQ(c[1].rc, -ECANCELED);
    ASSERT_EQ(c[2].rc, -ECANCELED);
    ASSERT_EQ(c[3].rc, -ECANCELED);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(c[i].ended, 1 * SEC);
    return NULL;
}

TEST(groups_race_failures_in_several_children_at_once)
{
    test_trace_reset();
    ASSERT_EQ(test_run_virtual(main_group_failures_together, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "end0 end1 end2 end3");
}

static void *fail_ecanceled_now(void *arg)
{
    (void)arg;
    return corio_fail(-ECANCELED);
}

static void *main_group_child_cancelled(void *arg)
{
    (void)arg;
    struct child c[2];
    child_init(&c[0], 10 * SEC, 0, 0);
    child_init(&c[1], 2 * SEC, 0, 1);
    corio_taskgroup g;
    corio_task *h = NULL;
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_fn, &c[0]), &h), 0);
    ASSERT_NOT_NULL(h);
    ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_fn, &c[1]), NULL), 0);
    ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(fail_ecanceled_now, NULL), NULL), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(h), 1);
    ASSERT_EQ(corio_sleep(1), 0); /* the body is not cancelled */
    ASSERT_EQ(corio_taskgroup_failed(&g), 0);
    ASSERT_EQ(corio_taskgroup_end(&g, 0), 0);
    ASSERT_EQ(corio_taskgroup_failed(&g), 0);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(c[0].rc, -ECANCELED);
    ASSERT_EQ(c[0].woke, 0);
    ASSERT_EQ(c[1].rc, 0); /* the sibling was not cancelled */
    ASSERT_EQ(corio_await(h, NULL), -ECANCELED);
    ASSERT_EQ(corio_task_release(h), 0);
    return NULL;
}

TEST(groups_child_cancelled_on_its_own_is_not_a_failure)
{
    ASSERT_EQ(test_run_virtual(main_group_child_cancelled, NULL, NULL), 0);
}

static void *main_group_body_error(void *arg)
{
    (void)arg;
    struct child c[2];
    child_init(&c[0], 5 * SEC, 0, 0);
    child_init(&c[1], 5 * SEC, 0, 1);
    c[1].cleanup = 1 * SEC;
    corio_taskgroup g;
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_fn, &c[i]), NULL), 0);
    ASSERT_EQ(corio_yield(), 0); /* the children are asleep */
    /* the body fails: the children are cancelled, end waits for them */
    ASSERT_EQ(corio_taskgroup_end(&g, -EPROTO), -EPROTO);
    ASSERT_EQ(corio_taskgroup_failed(&g), 0); /* the body is not a child */
    ASSERT_EQ(corio_now_ns(), 1 * SEC);   /* c1's cleanup */
    ASSERT_EQ(c[0].rc, -ECANCELED);
    ASSERT_EQ(c[0].woke, 0);
    ASSERT_EQ(c[1].rc, -ECANCELED);
    ASSERT_EQ(c[1].ended, 1 * SEC);

    /* a child's failure came first: it is what end reports */
    child_init(&c[0], 1 * SEC, -EIO, 0);
    child_init(&c[1], 10 * SEC, 0, 1);
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_fn, &c[i]), NULL), 0);
    ASSERT_EQ(corio_sleep(5), -ECANCELED);
    ASSERT_EQ(corio_taskgroup_end(&g, -EPROTO), -EIO);
    ASSERT_EQ(corio_taskgroup_failed(&g), 1);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(c[1].rc, -ECANCELED);
    return NULL;
}

TEST(groups_body_error_cancels_children_and_is_reported)
{
    ASSERT_EQ(test_run_virtual(main_group_body_error, NULL, NULL), 0);
}

struct group_waiter {
    struct child c[2];
    int end_rc;
    int failed;
    int64_t end_at;
    int body_rc;      /* 1: the body does not suspend before end */
};

static void *group_waiter_fn(void *arg)
{
    struct group_waiter *w = arg;
    corio_taskgroup g;
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_fn, &w->c[i]), NULL), 0);
    int body = 0;
    if (w->body_rc != 1)
        body = w->body_rc = corio_sleep(10); /* cancelled while in the body */
    w->end_rc = corio_taskgroup_end(&g, body);
    w->failed = corio_taskgroup_failed(&g);
    w->end_at = corio_now_ns();
    return corio_fail(w->end_rc);
}

static void *main_group_caller_cancelled(void *arg)
{
    (void)arg;
    /* cancelled while it waits in end */
    struct group_waiter w;
    memset(&w, 0, sizeof w);
    child_init(&w.c[0], 3 * SEC, 0, 0);
    child_init(&w.c[1], 3 * SEC, 0, 1);
    w.c[0].cleanup = 1 * SEC;
    w.body_rc = 1;
    corio_task *t = corio_create_task(corio_coro(group_waiter_fn, &w));
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_EQ(w.end_rc, -ECANCELED);
    ASSERT_EQ(w.failed, 0);
    ASSERT_EQ(w.end_at, 2 * SEC); /* end still waited for c0's cleanup */
    ASSERT_EQ(w.c[0].rc, -ECANCELED);
    ASSERT_EQ(w.c[0].woke, 1 * SEC);
    ASSERT_EQ(w.c[0].ended, 2 * SEC);
    ASSERT_EQ(w.c[1].rc, -ECANCELED);
    ASSERT_EQ(w.c[1].woke, 1 * SEC);
    ASSERT_EQ(corio_task_release(t), 0);

    /* cancelled in the body, which passes its -ECANCELED to end */
    memset(&w, 0, sizeof w);
    child_init(&w.c[0], 3 * SEC, 0, 0);
    child_init(&w.c[1], 3 * SEC, 0, 1);
    w.c[1].cleanup = 1 * SEC;
    t = corio_create_task(corio_coro(group_waiter_fn, &w));
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_EQ(w.body_rc, -ECANCELED);
    ASSERT_EQ(w.end_rc, -ECANCELED);
    ASSERT_EQ(w.failed, 0);
    ASSERT_EQ(w.end_at, 4 * SEC);
    ASSERT_EQ(w.c[0].rc, -ECANCELED);
    ASSERT_EQ(w.c[1].rc, -ECANCELED);
    ASSERT_EQ(w.c[1].ended, 4 * SEC);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(groups_caller_cancelled_in_end_cancels_and_waits)
{
    ASSERT_EQ(test_run_virtual(main_group_caller_cancelled, NULL, NULL), 0);
}

static void *main_group_outer_timeout(void *arg)
{
    (void)arg;
    struct child c[2];
    child_init(&c[0], 5 * SEC, 0, 0);
    child_init(&c[1], 5 * SEC, 0, 1);
    c[1].cleanup = 1 * SEC;
    corio_scope sc;
    corio_taskgroup g;
    /* the outer scope expires while the caller waits in end */
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_fn, &c[i]), NULL), 0);
    ASSERT_EQ(corio_taskgroup_end(&g, 0), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 2 * SEC); /* waited for c1's cleanup */
    ASSERT_EQ(corio_taskgroup_failed(&g), 0);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_EQ(c[0].rc, -ECANCELED);
    ASSERT_EQ(c[0].woke, 1 * SEC);
    ASSERT_EQ(c[1].ended, 2 * SEC);
    ASSERT_EQ(corio_task_cancelled(corio_current_task()), 0);

    /* the outer scope expires while the body is suspended */
    child_init(&c[0], 5 * SEC, 0, 0);
    child_init(&c[1], 5 * SEC, 0, 1);
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_fn, &c[i]), NULL), 0);
    int rc = corio_sleep(10);
    ASSERT_EQ(rc, -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    ASSERT_EQ(corio_taskgroup_end(&g, rc), -ECANCELED);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    ASSERT_EQ(c[0].rc, -ECANCELED);
    ASSERT_EQ(c[1].rc, -ECANCELED);
    /* nothing is left cancelled */
    ASSERT_EQ(corio_sleep(1), 0);
    return NULL;
}

TEST(groups_outer_timeout_around_group)
{
    ASSERT_EQ(test_run_virtual(main_group_outer_timeout, NULL, NULL), 0);
}

static void *main_group_nested(void *arg)
{
    (void)arg;
    struct child oc, ic[2];
    child_init(&oc, 3 * SEC, 0, 100);
    child_init(&ic[0], 1 * SEC, -EIO, 0);
    child_init(&ic[1], 10 * SEC, 0, 1);
    corio_taskgroup outer, inner;
    ASSERT_EQ(corio_taskgroup_begin(&outer), 0);
    ASSERT_EQ(corio_taskgroup_spawn(&outer, corio_coro(child_fn, &oc), NULL), 0);
    ASSERT_EQ(corio_taskgroup_begin(&inner), 0);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(corio_taskgroup_spawn(&inner, corio_coro(child_fn, &ic[i]), NULL), 0);
    int rc = corio_sleep(10);
    ASSERT_EQ(rc, -ECANCELED);
    ASSERT_EQ(corio_taskgroup_end(&inner, rc), -EIO);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    /* the outer group is not affected */
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_taskgroup_end(&outer, 0), 0);
    ASSERT_EQ(corio_taskgroup_failed(&outer), 0);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    ASSERT_EQ(oc.rc, 0);
    return NULL;
}

TEST(groups_nested_inner_failure_leaves_outer)
{
    ASSERT_EQ(test_run_virtual(main_group_nested, NULL, NULL), 0);
}

/* A shield in the body holds the group's abort back until it ends. */
static void *main_group_shielded_body(void *arg)
{
    (void)arg;
    struct child c[2];
    child_init(&c[0], 1 * SEC, -EIO, 0);
    child_init(&c[1], 10 * SEC, 0, 1);
    corio_taskgroup g;
    corio_scope sh;
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_fn, &c[i]), NULL), 0);
    ASSERT_EQ(corio_shield_begin(&sh), 0);
    ASSERT_EQ(corio_sleep(2), 0); /* the abort at 1 s does not interrupt it */
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(corio_taskgroup_failed(&g), 1);
    ASSERT_EQ(corio_scope_end(&sh), -ECANCELED);
    int rc = corio_yield();
    ASSERT_EQ(rc, -ECANCELED);
    ASSERT_EQ(corio_taskgroup_end(&g, rc), -EIO);
    ASSERT_EQ(c[1].rc, -ECANCELED);
    ASSERT_EQ(c[1].woke, 1 * SEC); /* the siblings were cancelled at once */
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    return NULL;
}

TEST(groups_shield_in_body_holds_back_abort)
{
    ASSERT_EQ(test_run_virtual(main_group_shielded_body, NULL, NULL), 0);
}

static void *main_group_spawn_out(void *arg)
{
    (void)arg;
    struct child c;
    child_init(&c, 1 * SEC, 0, 42);
    corio_taskgroup g;
    corio_task *h = NULL;
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_fn, &c), &h), 0);
    ASSERT_NOT_NULL(h);
    ASSERT_EQ(corio_task_done(h), 0);
    ASSERT_EQ(corio_taskgroup_end(&g, 0), 0);
    ASSERT_EQ(corio_task_done(h), 1);
    void *r = NULL;
    ASSERT_EQ(corio_await(h, &r), 0);
    ASSERT_EQ((intptr_t)r, 42);
    ASSERT_EQ(corio_task_release(h), 0);
    /* the handle may also be awaited from the body, before end */
    child_init(&c, 1 * SEC, 0, 43);
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_fn, &c), &h), 0);
    ASSERT_EQ(corio_await(h, &r), 0);
    ASSERT_EQ((intptr_t)r, 43);
    ASSERT_EQ(corio_taskgroup_end(&g, 0), 0);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(corio_task_release(h), 0);
    return NULL;
}

TEST(groups_spawn_with_out_handle)
{
    ASSERT_EQ(test_run_virtual(main_group_spawn_out, NULL, NULL), 0);
}

/* A server's group lives long and spawns a child per connection: the slots
 * of ended children are reused, so its memory follows the live children,
 * not the total ever spawned (200,000 here; ~10 MB of slots otherwise). */
static void *main_group_reuses_slots(void *arg)
{
    (void)arg;
    long total = 200000 / test_scale();
    corio_taskgroup g;
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    size_t rss0 = 0;
    for (long i = 0; i < total; i += 8) {
        for (int k = 0; k < 8; k++)
            ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(count_run, NULL), NULL), 0);
        ASSERT_EQ(corio_yield(), 0); /* they run and end */
        if (i == 8000)
            rss0 = test_rss_bytes(); /* after the warm-up: task slabs, stacks */
    }
    size_t rss1 = test_rss_bytes(); /* before the end frees the group's slots */
    ASSERT_EQ(corio_taskgroup_end(&g, 0), 0);
    ASSERT_EQ(counted, (int)(total + 7) / 8 * 8);
    if (test_scale() == 1) {
        printf("rss growth over %ld children: %ld KiB\n", total, ((long)rss1 - (long)rss0) / 1024);
        ASSERT_LT((long)rss1 - (long)rss0, 2L << 20);
    }
    return NULL;
}

TEST(groups_long_lived_group_reuses_child_slots)
{
    counted = 0;
    ASSERT_EQ(test_run_virtual(main_group_reuses_slots, NULL, NULL), 0);
}

static int late_spawn_rc = 1;
static corio_taskgroup *the_group;

/* A child that, once cancelled, tries to spawn into its (aborting) group. */
static void *child_spawns_when_cancelled(void *arg)
{
    (void)arg;
    int rc = corio_sleep(10);
    late_spawn_rc = corio_taskgroup_spawn(the_group, corio_coro(count_run, NULL), NULL);
    return corio_fail(rc < 0 ? rc : -EPROTO);
}

static void *main_group_spawn_after_abort(void *arg)
{
    (void)arg;
    struct child c;
    child_init(&c, 1 * SEC, -EIO, 0);
    corio_taskgroup g;
    the_group = &g;
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_fn, &c), NULL), 0);
    ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_spawns_when_cancelled, NULL), NULL), 0);
    int rc = corio_sleep(10);
    ASSERT_EQ(rc, -ECANCELED);
    corio_task *h = (corio_task *)0x99;
    ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(count_run, NULL), &h), -ECANCELED);
    ASSERT_PTR_EQ(h, (void *)0x99);
    ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(count_run, NULL), NULL), -ECANCELED);
    ASSERT_EQ(corio_taskgroup_end(&g, rc), -EIO);
    ASSERT_EQ(late_spawn_rc, -ECANCELED);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(counted, 0); /* nothing was spawned */
    return NULL;
}

TEST(groups_spawn_after_abort_is_ecanceled)
{
    ASSERT_EQ(test_run_virtual(main_group_spawn_after_abort, NULL, NULL), 0);
    ASSERT_EQ(counted, 0);
}

static struct child grandchild;
static int child_spawn_rc = 1;

static void *child_spawns_sibling(void *arg)
{
    corio_taskgroup *g = arg;
    ASSERT_EQ(corio_sleep(1), 0); /* the body is in end by now */
    child_spawn_rc = corio_taskgroup_spawn(g, corio_coro(child_fn, &grandchild), NULL);
    return NULL;
}

static void *main_group_spawn_from_child(void *arg)
{
    (void)arg;
    child_init(&grandchild, 2 * SEC, 0, 7);
    corio_taskgroup g;
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_spawns_sibling, &g), NULL), 0);
    ASSERT_EQ(corio_taskgroup_end(&g, 0), 0);
    ASSERT_EQ(child_spawn_rc, 0);
    ASSERT_EQ(grandchild.rc, 0);
    ASSERT_EQ(grandchild.ended, 3 * SEC);
    ASSERT_EQ(corio_now_ns(), 3 * SEC); /* end waited for the late child too */
    /* a late child's failure counts too */
    child_init(&grandchild, 2 * SEC, -ENOENT, 8);
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_spawns_sibling, &g), NULL), 0);
    ASSERT_EQ(corio_taskgroup_end(&g, 0), -ENOENT);
    ASSERT_EQ(corio_taskgroup_failed(&g), 1);
    ASSERT_EQ(corio_now_ns(), 6 * SEC);
    return NULL;
}

TEST(groups_spawn_from_a_child_into_running_group)
{
    ASSERT_EQ(test_run_virtual(main_group_spawn_from_child, NULL, NULL), 0);
}

static void *main_group_bad(void *arg)
{
    (void)arg;
    corio_taskgroup g, z;
    memset(&z, 0, sizeof z);
    corio_coro_t ok = corio_coro(count_run, NULL);
    ASSERT_EQ(corio_taskgroup_begin(NULL), -EINVAL);
    ASSERT_EQ(corio_taskgroup_spawn(NULL, ok, NULL), -EINVAL);
    ASSERT_EQ(corio_taskgroup_end(NULL, 0), -EINVAL);
    ASSERT_EQ(corio_taskgroup_failed(NULL), -EINVAL);
    ASSERT_EQ(corio_taskgroup_failed(&z), -EINVAL);
    /* never begun */
    ASSERT_EQ(corio_taskgroup_spawn(&z, ok, NULL), -EINVAL);
    ASSERT_EQ(corio_taskgroup_end(&z, 0), -EINVAL);
    ASSERT_EQ(counted, 0);

    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(NULL, NULL), NULL), -EINVAL);
    /* not the innermost scope: nothing changes */
    corio_scope sc;
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_taskgroup_end(&g, 0), -EINVAL);
    ASSERT_EQ(corio_taskgroup_spawn(&g, ok, NULL), 0); /* still running */
    ASSERT_EQ(corio_sleep(5), -ECANCELED); /* the timeout still works */
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    /* and the other way round */
    ASSERT_EQ(corio_taskgroup_begin(&z), 0);
    ASSERT_EQ(corio_taskgroup_end(&g, 0), -EINVAL);
    ASSERT_EQ(corio_taskgroup_end(&z, 0), 0);
    ASSERT_EQ(corio_taskgroup_end(&g, 0), 0);
    ASSERT_EQ(counted, 1);
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    ASSERT_EQ(corio_scope_end(&sc), -EINVAL); /* the group is innermost */
    ASSERT_EQ(corio_taskgroup_end(&g, 0), 0);
    ASSERT_EQ(corio_scope_end(&sc), 0);
    /* after end */
    ASSERT_EQ(corio_taskgroup_spawn(&g, ok, NULL), -EINVAL);
    ASSERT_EQ(corio_taskgroup_end(&g, 0), -EINVAL);
    ASSERT_EQ(corio_taskgroup_failed(&g), 0);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(counted, 1);
    return NULL;
}

TEST(groups_bad_input)
{
    ASSERT_EQ(test_run_virtual(main_group_bad, NULL, NULL), 0);
}

TEST(groups_calls_outside_a_task_are_eperm)
{
    corio_taskgroup g;
    memset(&g, 0, sizeof g);
    /* no loop on this thread */
    ASSERT_EQ(corio_taskgroup_begin(&g), -EPERM);
    ASSERT_EQ(corio_taskgroup_end(&g, 0), -EPERM);
    ASSERT_EQ(corio_gather_status(NULL, 0, NULL, NULL), -EPERM);
    /* a loop on this thread, but no task running */
    corio_loop *l = NULL;
    corio_loop_opts o = test_virtual_opts();
    ASSERT_EQ(corio_loop_new(&l, &o), 0);
    corio_task *t = NULL;
    ASSERT_EQ(corio_task_create(&t, corio_coro(count_run, NULL), NULL), 0);
    ASSERT_EQ(corio_taskgroup_begin(&g), -EPERM);
    ASSERT_EQ(corio_taskgroup_end(&g, 0), -EPERM);
    int st = 1;
    ASSERT_EQ(corio_gather_tasks_status(&t, 1, NULL, &st), -EPERM);
    ASSERT_EQ(st, 1);
    ASSERT_EQ(corio_wait(&t, 1, CORIO_ALL_COMPLETED, 0), -EPERM);
    ASSERT_EQ(corio_wait(&t, 1, CORIO_ALL_COMPLETED, -1), -EPERM);
    corio_as_completed ac;
    ASSERT_EQ(corio_as_completed_begin(&ac, &t, 1, -1), -EPERM);
    ASSERT_EQ(corio_as_completed_end(&ac), 0);
    ASSERT_EQ(counted, 0);
    ASSERT_EQ(corio_task_cancelled(t), 0);
    ASSERT_EQ(corio_task_done(t), 0);
    ASSERT_EQ(corio_task_release(t), 0);
    ASSERT_EQ(corio_loop_free(l), 0);
}

/* ---- gather with statuses ------------------------------------------------------------- */

static void *main_gather_status(void *arg)
{
    (void)arg;
    struct child c[3];
    child_init(&c[0], 1 * SEC, 0, 10);
    child_init(&c[1], 2 * SEC, -EIO, 11);
    child_init(&c[2], 3 * SEC, 0, 12);
    corio_coro_t coros[3];
    for (int i = 0; i < 3; i++)
        coros[i] = corio_coro(child_fn, &c[i]);
    void *r[3] = {(void *)1, (void *)1, (void *)1};
    int st[3] = {1, 1, 1};
    ASSERT_EQ(corio_gather_status(coros, 3, r, st), 0);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    ASSERT_EQ(st[0], 0);
    ASSERT_EQ(st[1], -EIO);
    ASSERT_EQ(st[2], 0);
    ASSERT_EQ((intptr_t)r[0], 10);
    ASSERT_NULL(r[1]);
    ASSERT_EQ((intptr_t)r[2], 12);
    ASSERT_EQ(c[1].rc, 0); /* nothing was cancelled by the failure */
    ASSERT_EQ(c[2].rc, 0);

    /* over tasks: one cancelled before it ran, one failing, one fine */
    child_init(&c[0], 1 * SEC, 0, 20);
    child_init(&c[1], 1 * SEC, 0, 21);
    child_init(&c[2], 2 * SEC, -ENOENT, 22);
    corio_task *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = corio_create_task(corio_coro(child_fn, &c[i]));
    ASSERT_EQ(corio_cancel(t[1]), 1);
    ASSERT_EQ(corio_gather_tasks_status(t, 3, r, st), 0);
    ASSERT_EQ(corio_now_ns(), 5 * SEC);
    ASSERT_EQ(st[0], 0);
    ASSERT_EQ(st[1], -ECANCELED);
    ASSERT_EQ(st[2], -ENOENT);
    ASSERT_EQ((intptr_t)r[0], 20);
    ASSERT_EQ(c[1].rc, 1); /* never ran */
    /* all ended already: the same answer, at once; results may be NULL */
    st[0] = st[1] = st[2] = 1;
    ASSERT_EQ(corio_gather_tasks_status(t, 3, NULL, st), 0);
    ASSERT_EQ(st[0], 0);
    ASSERT_EQ(st[1], -ECANCELED);
    ASSERT_EQ(st[2], -ENOENT);
    ASSERT_EQ(corio_now_ns(), 5 * SEC);
    /* bad input */
    ASSERT_EQ(corio_gather_tasks_status(t, 3, r, NULL), -EINVAL);
    ASSERT_EQ(corio_gather_status(coros, 3, r, NULL), -EINVAL);
    ASSERT_EQ(corio_gather_tasks_status(NULL, 2, r, st), -EINVAL);
    ASSERT_EQ(corio_gather_status(NULL, 2, r, st), -EINVAL);
    ASSERT_EQ(corio_gather_tasks_status(NULL, 0, NULL, NULL), 0);
    ASSERT_EQ(corio_gather_status(NULL, 0, NULL, NULL), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(corio_task_release(t[i]), 0);
    return NULL;
}

TEST(groups_gather_status_reports_each_status)
{
    ASSERT_EQ(test_run_virtual(main_gather_status, NULL, NULL), 0);
}

struct gs_waiter {
    corio_task **t;
    int rc;
    int64_t at;
};

static void *gather_status_waiter(void *arg)
{
    struct gs_waiter *w = arg;
    int st[2];
    w->rc = corio_gather_tasks_status(w->t, 2, NULL, st);
    w->at = corio_now_ns();
    return corio_fail(w->rc);
}

static void *main_gather_status_cancelled(void *arg)
{
    (void)arg;
    struct child c[2];
    child_init(&c[0], 5 * SEC, 0, 0);
    child_init(&c[1], 5 * SEC, 0, 1);
    c[1].cleanup = 1 * SEC;
    corio_task *t[2];
    for (int i = 0; i < 2; i++)
        t[i] = corio_create_task(corio_coro(child_fn, &c[i]));
    struct gs_waiter w = {t, 1, -1};
    corio_task *wt = corio_create_task(corio_coro(gather_status_waiter, &w));
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_cancel(wt), 1);
    ASSERT_EQ(corio_await(wt, NULL), -ECANCELED);
    ASSERT_EQ(w.rc, -ECANCELED);
    ASSERT_EQ(w.at, 2 * SEC); /* it cancelled the tasks and waited for them */
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(corio_task_done(t[i]), 1);
        ASSERT_EQ(corio_task_cancelled(t[i]), 1);
        ASSERT_EQ(c[i].rc, -ECANCELED);
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    ASSERT_EQ(corio_task_release(wt), 0);
    return NULL;
}

TEST(groups_gather_status_caller_cancelled)
{
    ASSERT_EQ(test_run_virtual(main_gather_status_cancelled, NULL, NULL), 0);
}

/* ---- corio_wait ------------------------------------------------------------------------- */

static void make_tasks(corio_task **t, struct child *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        t[i] = corio_create_task(corio_coro(child_fn, &c[i]));
        ASSERT_NOT_NULL(t[i]);
    }
}

static void release_all(corio_task **t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ(corio_task_release(t[i]), 0);
}

static void *main_wait_modes(void *arg)
{
    (void)arg;
    struct child c[3];
    corio_task *t[3];
    /* FIRST_COMPLETED */
    child_init(&c[0], 3 * SEC, 0, 0);
    child_init(&c[1], 1 * SEC, 0, 1);
    child_init(&c[2], 2 * SEC, 0, 2);
    make_tasks(t, c, 3);
    ASSERT_EQ(corio_wait(t, 3, CORIO_FIRST_COMPLETED, -1), 1);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(corio_task_done(t[0]), 0);
    ASSERT_EQ(corio_task_done(t[1]), 1);
    ASSERT_EQ(corio_task_done(t[2]), 0);
    /* already met: at once */
    ASSERT_EQ(corio_wait(t, 3, CORIO_FIRST_COMPLETED, -1), 1);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    /* ALL_COMPLETED; nothing was cancelled */
    ASSERT_EQ(corio_wait(t, 3, CORIO_ALL_COMPLETED, -1), 3);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(c[i].rc, 0);
        ASSERT_EQ(corio_task_cancelled(t[i]), 0);
    }
    release_all(t, 3);

    /* FIRST_EXCEPTION: a failure */
    child_init(&c[0], 3 * SEC, 0, 0);
    child_init(&c[1], 2 * SEC, -EIO, 1);
    child_init(&c[2], 1 * SEC, 0, 2);
    make_tasks(t, c, 3);
    ASSERT_EQ(corio_wait(t, 3, CORIO_FIRST_EXCEPTION, -1), 2);
    ASSERT_EQ(corio_now_ns(), 5 * SEC);
    ASSERT_EQ(corio_task_done(t[0]), 0);
    ASSERT_EQ(corio_task_cancelled(t[0]), 0);
    ASSERT_EQ(corio_wait(t, 3, CORIO_ALL_COMPLETED, -1), 3);
    ASSERT_EQ(c[0].rc, 0);
    ASSERT_EQ(corio_now_ns(), 6 * SEC);
    release_all(t, 3);

    /* FIRST_EXCEPTION: none fails, so all */
    child_init(&c[0], 2 * SEC, 0, 0);
    child_init(&c[1], 1 * SEC, 0, 1);
    child_init(&c[2], 3 * SEC, 0, 2);
    make_tasks(t, c, 3);
    ASSERT_EQ(corio_wait(t, 3, CORIO_FIRST_EXCEPTION, -1), 3);
    ASSERT_EQ(corio_now_ns(), 9 * SEC);
    release_all(t, 3);

    /* FIRST_EXCEPTION: -ECANCELED counts */
    child_init(&c[0], 2 * SEC, 0, 0);
    child_init(&c[1], 1 * SEC, 0, 1);
    make_tasks(t, c, 2);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(t[0]), 1);
    ASSERT_EQ(corio_wait(t, 2, CORIO_FIRST_EXCEPTION, -1), 1);
    ASSERT_EQ(corio_now_ns(), 9 * SEC);
    ASSERT_EQ(corio_task_done(t[0]), 1);
    ASSERT_EQ(corio_task_done(t[1]), 0);
    ASSERT_EQ(corio_wait(t, 2, CORIO_ALL_COMPLETED, -1), 2);
    release_all(t, 2);
    return NULL;
}

TEST(groups_wait_modes)
{
    ASSERT_EQ(test_run_virtual(main_wait_modes, NULL, NULL), 0);
}

static void *main_wait_timeout(void *arg)
{
    (void)arg;
    struct child c[3];
    corio_task *t[3];
    child_init(&c[0], 1 * SEC, 0, 0);
    child_init(&c[1], 2 * SEC, 0, 1);
    child_init(&c[2], 3 * SEC, 0, 2);
    make_tasks(t, c, 3);
    ASSERT_EQ(corio_wait(t, 3, CORIO_ALL_COMPLETED, 1.5), 1);
    ASSERT_EQ(corio_now_ns(), 1500 * MS);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(corio_task_cancelled(t[i]), 0);
    ASSERT_EQ(corio_wait(t, 3, CORIO_FIRST_EXCEPTION, 0.25), 1);
    ASSERT_EQ(corio_now_ns(), 1750 * MS);
    /* the timeout and an end at the same instant: the end is counted */
    ASSERT_EQ(corio_wait(t, 3, CORIO_ALL_COMPLETED, 0.25), 2);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(corio_wait(t, 3, CORIO_ALL_COMPLETED, 100), 3);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(c[i].rc, 0);
        ASSERT_EQ(corio_task_cancelled(t[i]), 0);
    }
    release_all(t, 3);
    return NULL;
}

TEST(groups_wait_timeout_returns_count_cancels_nothing)
{
    ASSERT_EQ(test_run_virtual(main_wait_timeout, NULL, NULL), 0);
}

static void *traced(void *arg)
{
    test_trace("ran%ld", (long)(intptr_t)arg);
    return arg;
}

static void *main_wait_poll(void *arg)
{
    (void)arg;
    corio_task *t[2];
    t[0] = corio_create_task(corio_coro(traced, (void *)(intptr_t)0));
    t[1] = corio_create_task(corio_coro(traced, (void *)(intptr_t)1));
    /* a zero timeout polls: no suspension, so the new tasks have not run */
    ASSERT_EQ(corio_wait(t, 2, CORIO_FIRST_COMPLETED, 0), 0);
    ASSERT_EQ(corio_wait(t, 2, CORIO_ALL_COMPLETED, 0.0), 0);
    ASSERT_STR_EQ(test_trace_get(), "");
    ASSERT_EQ(corio_await(t[0], NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "ran0 ran1");
    ASSERT_EQ(corio_wait(t, 2, CORIO_FIRST_COMPLETED, 0), 2);
    ASSERT_EQ(corio_wait(t, 2, CORIO_ALL_COMPLETED, 0), 2);
    ASSERT_EQ(corio_now_ns(), 0);
    release_all(t, 2);
    return NULL;
}

TEST(groups_wait_zero_timeout_is_a_poll)
{
    test_trace_reset();
    ASSERT_EQ(test_run_virtual(main_wait_poll, NULL, NULL), 0);
}

struct wait_waiter {
    corio_task **t;
    int rc;
    int64_t at;
};

static void *wait_waiter_fn(void *arg)
{
    struct wait_waiter *w = arg;
    w->rc = corio_wait(w->t, 2, CORIO_ALL_COMPLETED, -1);
    w->at = corio_now_ns();
    return corio_fail(w->rc < 0 ? w->rc : -EPROTO);
}

static void *main_wait_bad_and_cancelled(void *arg)
{
    (void)arg;
    struct child c[2];
    corio_task *t[2];
    child_init(&c[0], 2 * SEC, 0, 0);
    child_init(&c[1], 3 * SEC, 0, 1);
    make_tasks(t, c, 2);
    ASSERT_EQ(corio_wait(t, 2, 0, -1), -EINVAL);
    ASSERT_EQ(corio_wait(t, 2, CORIO_ALL_COMPLETED + 1, -1), -EINVAL);
    ASSERT_EQ(corio_wait(t, 0, CORIO_ALL_COMPLETED, -1), -EINVAL);
    ASSERT_EQ(corio_wait(NULL, 2, CORIO_ALL_COMPLETED, -1), -EINVAL);
    ASSERT_EQ(corio_wait(t, 2, CORIO_ALL_COMPLETED, NAN), -EINVAL);
    corio_task *withnull[2] = {t[0], NULL};
    ASSERT_EQ(corio_wait(withnull, 2, CORIO_ALL_COMPLETED, -1), -EINVAL);
    /* a released handle (of a task still running) */
    corio_task *rel = corio_create_task(corio_coro(sleep_ns_then_77, (void *)(intptr_t)SEC));
    corio_task *withrel[2] = {t[0], rel};
    ASSERT_EQ(corio_task_release(rel), 0);
    ASSERT_EQ(corio_wait(withrel, 2, CORIO_ALL_COMPLETED, -1), -EINVAL);
    ASSERT_EQ(corio_now_ns(), 0); /* no effect */

    /* the caller cancelled: -ECANCELED, the tasks go on */
    struct wait_waiter w = {t, 1, -1};
    corio_task *wt = corio_create_task(corio_coro(wait_waiter_fn, &w));
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_cancel(wt), 1);
    ASSERT_EQ(corio_await(wt, NULL), -ECANCELED);
    ASSERT_EQ(w.rc, -ECANCELED);
    ASSERT_EQ(w.at, 1 * SEC);
    ASSERT_EQ(corio_task_cancelled(t[0]), 0);
    ASSERT_EQ(corio_task_cancelled(t[1]), 0);
    ASSERT_EQ(corio_wait(t, 2, CORIO_ALL_COMPLETED, -1), 2);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    ASSERT_EQ(c[0].rc, 0);
    ASSERT_EQ(c[1].rc, 0);
    release_all(t, 2);
    ASSERT_EQ(corio_task_release(wt), 0);
    return NULL;
}

TEST(groups_wait_bad_input_and_caller_cancelled)
{
    ASSERT_EQ(test_run_virtual(main_wait_bad_and_cancelled, NULL, NULL), 0);
}

/* ---- as_completed ----------------------------------------------------------------------- */

static void *main_as_completed_order(void *arg)
{
    (void)arg;
    struct child c[3];
    corio_task *t[3];
    child_init(&c[0], 3 * SEC, 0, 0);
    child_init(&c[1], 1 * SEC, 0, 1);
    child_init(&c[2], 2 * SEC, 0, 2);
    make_tasks(t, c, 3);
    corio_as_completed ac;
    ASSERT_EQ(corio_as_completed_begin(&ac, t, 3, -1), 0);
    corio_task *got = NULL;
    ASSERT_EQ(corio_as_completed_next(&ac, &got), 1);
    ASSERT_PTR_EQ(got, t[1]);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(corio_as_completed_next(&ac, &got), 1);
    ASSERT_PTR_EQ(got, t[2]);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(corio_as_completed_next(&ac, &got), 1);
    ASSERT_PTR_EQ(got, t[0]);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    got = (corio_task *)0x5;
    ASSERT_EQ(corio_as_completed_next(&ac, &got), 0);
    ASSERT_EQ(corio_as_completed_next(&ac, &got), 0);
    ASSERT_EQ(corio_as_completed_end(&ac), 0);
    release_all(t, 3); /* the tasks stayed ours */
    return NULL;
}

TEST(groups_as_completed_in_order_of_completion)
{
    ASSERT_EQ(test_run_virtual(main_as_completed_order, NULL, NULL), 0);
}

static void *main_as_completed_done_first(void *arg)
{
    (void)arg;
    struct child c[4];
    corio_task *t[4];
    child_init(&c[0], 2 * SEC, 0, 0);
    child_init(&c[1], 500 * MS, 0, 1);
    child_init(&c[2], 200 * MS, 0, 2);
    child_init(&c[3], 1 * SEC, 0, 3);
    make_tasks(t, c, 4);
    ASSERT_EQ(corio_await(t[1], NULL), 0); /* t2 ended first (0.2 s), then t1 (0.5 s) */
    ASSERT_EQ(corio_task_done(t[2]), 1);
    corio_as_completed ac;
    ASSERT_EQ(corio_as_completed_begin(&ac, t, 4, -1), 0);
    corio_task *got = NULL;
    ASSERT_EQ(corio_as_completed_next(&ac, &got), 1);
    ASSERT_PTR_EQ(got, t[1]); /* array order among the already ended */
    ASSERT_EQ(corio_as_completed_next(&ac, &got), 1);
    ASSERT_PTR_EQ(got, t[2]);
    ASSERT_EQ(corio_now_ns(), 500 * MS);
    ASSERT_EQ(corio_as_completed_next(&ac, &got), 1);
    ASSERT_PTR_EQ(got, t[3]);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(corio_as_completed_next(&ac, &got), 1);
    ASSERT_PTR_EQ(got, t[0]);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(corio_as_completed_next(&ac, &got), 0);
    ASSERT_EQ(corio_as_completed_end(&ac), 0);
    release_all(t, 4);
    return NULL;
}

TEST(groups_as_completed_already_done_first_in_array_order)
{
    ASSERT_EQ(test_run_virtual(main_as_completed_done_first, NULL, NULL), 0);
}

static void *main_as_completed_timeout(void *arg)
{
    (void)arg;
    struct child c[3];
    corio_task *t[3];
    child_init(&c[0], 1 * SEC, 0, 0);
    child_init(&c[1], 2 * SEC, 0, 1);
    child_init(&c[2], 3 * SEC, 0, 2);
    make_tasks(t, c, 3);
    corio_as_completed ac;
    ASSERT_EQ(corio_as_completed_begin(&ac, t, 3, 1.5), 0);
    corio_task *got = NULL;
    ASSERT_EQ(corio_as_completed_next(&ac, &got), 1);
    ASSERT_PTR_EQ(got, t[0]);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(corio_as_completed_next(&ac, &got), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 1500 * MS); /* counted from begin */
    ASSERT_EQ(corio_as_completed_end(&ac), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(corio_task_cancelled(t[i]), 0);
    ASSERT_EQ(corio_wait(t, 3, CORIO_ALL_COMPLETED, -1), 3);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(c[i].rc, 0);
    release_all(t, 3);
    return NULL;
}

TEST(groups_as_completed_timeout)
{
    ASSERT_EQ(test_run_virtual(main_as_completed_timeout, NULL, NULL), 0);
}

struct ac_waiter {
    corio_task **t;
    int rc, end_rc;
    int64_t at;
};

static void *ac_waiter_fn(void *arg)
{
    struct ac_waiter *w = arg;
    corio_as_completed ac;
    ASSERT_EQ(corio_as_completed_begin(&ac, w->t, 2, 100), 0);
    corio_task *got = NULL;
    w->rc = corio_as_completed_next(&ac, &got);
    w->at = corio_now_ns();
    w->end_rc = corio_as_completed_end(&ac);
    return corio_fail(w->rc < 0 ? w->rc : -EPROTO);
}

static void *main_as_completed_cancel_and_end(void *arg)
{
    (void)arg;
    struct child c[2];
    corio_task *t[2];
    child_init(&c[0], 2 * SEC, 0, 0);
    child_init(&c[1], 3 * SEC, 0, 1);
    make_tasks(t, c, 2);
    struct ac_waiter w = {t, 1, 1, -1};
    corio_task *wt = corio_create_task(corio_coro(ac_waiter_fn, &w));
    ASSERT_EQ(corio_sleep(0.5), 0);
    ASSERT_EQ(corio_cancel(wt), 1);
    ASSERT_EQ(corio_await(wt, NULL), -ECANCELED);
    ASSERT_EQ(w.rc, -ECANCELED);
    ASSERT_EQ(w.end_rc, 0);
    ASSERT_EQ(w.at, 500 * MS);
    ASSERT_EQ(corio_task_cancelled(t[0]), 0);
    ASSERT_EQ(corio_task_cancelled(t[1]), 0);
    /* begin and end with no next: the tasks ending later touch nothing freed */
    corio_as_completed ac;
    ASSERT_EQ(corio_as_completed_begin(&ac, t, 2, -1), 0);
    ASSERT_EQ(corio_as_completed_end(&ac), 0);
    ASSERT_EQ(corio_wait(t, 2, CORIO_ALL_COMPLETED, -1), 2);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    ASSERT_EQ(c[0].rc, 0);
    ASSERT_EQ(c[1].rc, 0);
    /* bad input */
    ASSERT_EQ(corio_as_completed_begin(NULL, t, 2, -1), -EINVAL);
    ASSERT_EQ(corio_as_completed_begin(&ac, t, 0, -1), -EINVAL);
    ASSERT_EQ(corio_as_completed_begin(&ac, NULL, 2, -1), -EINVAL);
    ASSERT_EQ(corio_as_completed_begin(&ac, t, 2, NAN), -EINVAL);
    ASSERT_EQ(corio_as_completed_end(NULL), -EINVAL);
    corio_task *got;
    ASSERT_EQ(corio_as_completed_next(NULL, &got), -EINVAL);
    ASSERT_EQ(corio_as_completed_end(&ac), 0);
    release_all(t, 2);
    ASSERT_EQ(corio_task_release(wt), 0);
    return NULL;
}

TEST(groups_as_completed_caller_cancelled_and_end_releases)
{
    ASSERT_EQ(test_run_virtual(main_as_completed_cancel_and_end, NULL, NULL), 0);
}

/* ---- done callbacks ------------------------------------------------------------------------ */

static struct {
    int calls;
    corio_task *task_seen;
    corio_task *current;
    int sleep_rc, sleep0_rc, yield_rc, begin_rc, done, cancelled;
    const char *reason;
    int64_t at;
} cbinfo;

static void cb_record(corio_task *t, void *arg)
{
    test_trace("cb%ld", (long)(intptr_t)arg);
    cbinfo.calls++;
    cbinfo.task_seen = t;
    cbinfo.current = corio_current_task();
    cbinfo.sleep_rc = corio_sleep(1);
    cbinfo.sleep0_rc = corio_sleep(0);
    cbinfo.yield_rc = corio_yield();
    corio_scope sc;
    cbinfo.begin_rc = corio_timeout_begin(&sc, 1.0);
    cbinfo.done = corio_task_done(t);
    cbinfo.cancelled = corio_task_cancelled(t);
    cbinfo.reason = corio_cancel_reason(t);
    cbinfo.at = corio_now_ns();
}

static void *trace_and_return(void *arg)
{
    test_trace("%s", (const char *)arg);
    return NULL;
}

static void *main_callbacks_order(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(trace_and_return, "T"));
    corio_task *r = corio_create_task(corio_coro(trace_and_return, "R"));
    for (intptr_t i = 1; i <= 3; i++)
        ASSERT_EQ(corio_task_add_done_callback(t, cb_record, (void *)i), 0);
    ASSERT_EQ(cbinfo.calls, 0);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(cbinfo.calls, 3);
    ASSERT_PTR_EQ(cbinfo.task_seen, t);
    ASSERT_NULL(cbinfo.current);    /* outside any task */
    ASSERT_EQ(cbinfo.sleep_rc, -EPERM);
    ASSERT_EQ(cbinfo.sleep0_rc, -EPERM);
    ASSERT_EQ(cbinfo.yield_rc, -EPERM);
    ASSERT_EQ(cbinfo.begin_rc, -EPERM);
    ASSERT_EQ(cbinfo.done, 1);
    ASSERT_EQ(cbinfo.cancelled, 0);
    ASSERT_NULL(cbinfo.reason);
    ASSERT_EQ(cbinfo.at, 0);
    ASSERT_EQ(corio_now_ns(), 1 * SEC); /* the callbacks' sleeps did nothing */
    ASSERT_EQ(corio_task_release(t), 0);
    ASSERT_EQ(corio_task_release(r), 0);
    return NULL;
}

/* T ends, R (ready in the same turn) runs, then the callbacks, in the order
 * added, at the start of the next turn. */
TEST(groups_done_callbacks_run_next_turn_in_order_outside_tasks)
{
    test_trace_reset();
    ASSERT_EQ(test_run_virtual(main_callbacks_order, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "T R cb1 cb2 cb3");
}

static int cb_cancel_rc = 9;

static void cb_cancel_arg(corio_task *t, void *arg)
{
    (void)t;
    cb_cancel_rc = corio_cancel((corio_task *)arg);
}

static void *main_callback_cancels(void *arg)
{
    (void)arg;
    struct child tc, oc;
    /* a sleeper cancelled by T's done callback when T ends at 1 s */
    child_init(&tc, 1 * SEC, 0, 1);
    child_init(&oc, 10 * SEC, 0, 2);
    corio_task *t = corio_create_task(corio_coro(child_fn, &tc));
    corio_task *o = corio_create_task(corio_coro(child_fn, &oc));
    ASSERT_EQ(corio_task_add_done_callback(t, cb_cancel_arg, o), 0);
    ASSERT_EQ(corio_await(o, NULL), -ECANCELED);
    ASSERT_EQ(cb_cancel_rc, 1);
    ASSERT_EQ(oc.rc, -ECANCELED);
    ASSERT_EQ(oc.woke, 1 * SEC);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    release_all(&t, 1);
    release_all(&o, 1);

    /* race: O ends at the same instant as T, and (ready in the same turn)
     * completes before T's callback runs: the cancel comes too late (0) and
     * O's outcome is its completion */
    cb_cancel_rc = 9;
    child_init(&tc, 1 * SEC, 0, 1);
    child_init(&oc, 1 * SEC, 0, 2);
    t = corio_create_task(corio_coro(child_fn, &tc));
    o = corio_create_task(corio_coro(child_fn, &oc));
    ASSERT_EQ(corio_task_add_done_callback(t, cb_cancel_arg, o), 0);
    void *r = NULL;
    ASSERT_EQ(corio_await(o, &r), 0);
    ASSERT_EQ((intptr_t)r, 2);
    ASSERT_EQ(corio_yield(), 0); /* let the callback run */
    ASSERT_EQ(cb_cancel_rc, 0);
    ASSERT_EQ(corio_task_cancelled(o), 0);
    ASSERT_EQ(oc.rc, 0);
    ASSERT_EQ(corio_await(o, &r), 0);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    release_all(&t, 1);
    release_all(&o, 1);
    return NULL;
}

TEST(groups_race_cancel_from_done_callback)
{
    ASSERT_EQ(test_run_virtual(main_callback_cancels, NULL, NULL), 0);
}

static int cb_hits;

static void cb_count(corio_task *t, void *arg)
{
    (void)t;
    cb_hits++;
    test_trace("hit%ld", (long)(intptr_t)arg);
}

static void *main_callback_on_finished(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(trace_and_return, "T"));
    ASSERT_EQ(corio_await(t, NULL), 0);
    ASSERT_EQ(corio_task_add_done_callback(t, cb_count, (void *)(intptr_t)1), 0);
    ASSERT_EQ(corio_task_add_done_callback(t, cb_count, (void *)(intptr_t)2), 0);
    ASSERT_EQ(cb_hits, 0); /* not called inline */
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(cb_hits, 2);
    ASSERT_EQ(corio_now_ns(), 0);
    /* released right after adding: still runs, with a valid task */
    ASSERT_EQ(corio_task_add_done_callback(t, cb_record, (void *)(intptr_t)3), 0);
    ASSERT_EQ(corio_task_release(t), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(cbinfo.calls, 1);
    ASSERT_PTR_EQ(cbinfo.task_seen, t);
    ASSERT_EQ(cbinfo.done, 1);
    ASSERT_EQ(cbinfo.cancelled, 0);
    return NULL;
}

TEST(groups_done_callback_on_finished_task_runs_soon)
{
    test_trace_reset();
    ASSERT_EQ(test_run_virtual(main_callback_on_finished, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "T hit1 hit2 cb3");
}

static corio_task *remove_target;
static int late_remove_rc = 9;

static void *remove_late(void *arg)
{
    (void)arg;
    /* runs in the same turn right after remove_target ended: its callback
     * is scheduled already, so there is nothing left to remove */
    ASSERT_EQ(corio_task_done(remove_target), 1);
    late_remove_rc = corio_task_remove_done_callback(remove_target, cb_count, (void *)(intptr_t)9);
    return NULL;
}

static void *main_callback_remove(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(trace_and_return, "T"));
    ASSERT_EQ(corio_task_add_done_callback(t, cb_count, (void *)(intptr_t)1), 0);
    ASSERT_EQ(corio_task_add_done_callback(t, cb_count, (void *)(intptr_t)2), 0);
    ASSERT_EQ(corio_task_add_done_callback(t, cb_count, (void *)(intptr_t)1), 0);
    ASSERT_EQ(corio_task_add_done_callback(t, cb_record, (void *)(intptr_t)1), 0);
    ASSERT_EQ(corio_task_remove_done_callback(t, cb_count, (void *)(intptr_t)1), 2);
    ASSERT_EQ(corio_task_remove_done_callback(t, cb_count, (void *)(intptr_t)1), 0);
    ASSERT_EQ(corio_task_remove_done_callback(t, cb_count, (void *)(intptr_t)3), 0);
    ASSERT_EQ(corio_task_remove_done_callback(t, cb_record, (void *)(intptr_t)1), 1);
    ASSERT_EQ(corio_await(t, NULL), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(cb_hits, 1);
    ASSERT_EQ(cbinfo.calls, 0);
    ASSERT_EQ(corio_task_release(t), 0);

    /* removal after the end: already scheduled, 0, and it still runs */
    remove_target = corio_create_task(corio_coro(trace_and_return, "U"));
    corio_task *late = corio_create_task(corio_coro(remove_late, NULL));
    ASSERT_EQ(corio_task_add_done_callback(remove_target, cb_count, (void *)(intptr_t)9), 0);
    ASSERT_EQ(corio_await(late, NULL), 0);
    ASSERT_EQ(late_remove_rc, 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(cb_hits, 2);
    ASSERT_EQ(corio_task_remove_done_callback(remove_target, cb_count, (void *)(intptr_t)9), 0);
    ASSERT_EQ(corio_task_release(remove_target), 0);
    ASSERT_EQ(corio_task_release(late), 0);

    /* bad input */
    t = corio_create_task(corio_coro(trace_and_return, "V"));
    ASSERT_EQ(corio_task_add_done_callback(t, NULL, NULL), -EINVAL);
    ASSERT_EQ(corio_task_add_done_callback(NULL, cb_count, NULL), -EINVAL);
    ASSERT_EQ(corio_task_remove_done_callback(NULL, cb_count, NULL), -EINVAL);
    ASSERT_EQ(corio_task_remove_done_callback(t, cb_count, NULL), 0);
    corio_task *rel = corio_create_task(corio_coro(trace_and_return, "X"));
    ASSERT_EQ(corio_task_release(rel), 0); /* released, not yet run: still exists */
    ASSERT_EQ(corio_task_add_done_callback(rel, cb_count, NULL), -EINVAL);
    ASSERT_EQ(corio_await(t, NULL), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(cb_hits, 2);
    ASSERT_EQ(corio_task_release(t), 0);

    /* a task cancelled before it ever ran still gets its callbacks */
    t = corio_create_task(corio_coro(trace_and_return, "W"));
    ASSERT_EQ(corio_task_add_done_callback(t, cb_count, (void *)(intptr_t)4), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(cb_hits, 3);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(groups_done_callback_remove)
{
    test_trace_reset();
    ASSERT_EQ(test_run_virtual(main_callback_remove, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "T hit2 U hit9 V X hit4");
}

/* A callback may add callbacks (they run at the following turn) and create
 * tasks. */
static int chain_add_rc = 9, chain_spawn_rc = 9;

static void cb_chain(corio_task *t, void *arg)
{
    (void)arg;
    test_trace("chain");
    chain_add_rc = corio_task_add_done_callback(t, cb_count, (void *)(intptr_t)5);
    chain_spawn_rc = corio_spawn(corio_coro(trace_and_return, "spawned"));
}

static void *main_callback_chain(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(trace_and_return, "T"));
    ASSERT_EQ(corio_task_add_done_callback(t, cb_chain, NULL), 0);
    ASSERT_EQ(corio_await(t, NULL), 0);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(chain_add_rc, 0);
    ASSERT_EQ(chain_spawn_rc, 0);
    ASSERT_EQ(cb_hits, 1);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(groups_done_callback_may_add_callbacks_and_create_tasks)
{
    test_trace_reset();
    ASSERT_EQ(test_run_virtual(main_callback_chain, NULL, NULL), 0);
    /* both run at the next turn; their relative order is not specified */
    const char *tr = test_trace_get();
    ASSERT(strcmp(tr, "T chain spawned hit5") == 0 || strcmp(tr, "T chain hit5 spawned") == 0);
}

static const char WHY[] = "stop it";
static corio_task *made_during_turn = (corio_task *)1;

static void *main_callback_keeps_task(void *arg)
{
    (void)arg;
    struct child tc;
    child_init(&tc, 10 * SEC, 0, 5);
    tc.cleanup = 1 * SEC;
    corio_task *t = corio_create_task(corio_coro(child_fn, &tc));
    ASSERT_EQ(corio_task_add_done_callback(t, cb_record, (void *)(intptr_t)1), 0);
    ASSERT_EQ(corio_yield(), 0); /* t sleeps */
    ASSERT_EQ(corio_cancel_with(t, WHY), 1);
    ASSERT_EQ(corio_task_release(t), 0); /* released while it runs */
    ASSERT_EQ(corio_yield(), 0); /* t starts its 1 s cleanup */
    /* main's timer after t's: at 1 s t ends first, then main runs in the
     * same turn, before the callback */
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(cbinfo.calls, 0);
    /* t's object must still be held: a new task does not get its slot */
    corio_task *n = corio_create_task(corio_coro(trace_and_return, "N"));
    made_during_turn = n;
    ASSERT_PTR_NE(n, t);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(cbinfo.calls, 1);
    ASSERT_PTR_EQ(cbinfo.task_seen, t);
    ASSERT_EQ(cbinfo.done, 1);
    ASSERT_EQ(cbinfo.cancelled, 1);
    ASSERT_PTR_EQ(cbinfo.reason, WHY);
    ASSERT_EQ(tc.rc, -ECANCELED);
    ASSERT_EQ(corio_await(n, NULL), 0);
    ASSERT_EQ(corio_task_release(n), 0);
    return NULL;
}

TEST(groups_done_callback_task_valid_until_callbacks_ran)
{
    ASSERT_EQ(test_run_virtual(main_callback_keeps_task, NULL, NULL), 0);
}

/* ---- races -------------------------------------------------------------------------------- */

/* Completion and cancel at the same instant: exactly one outcome, by order. */
static void *main_race_completion_vs_cancel(void *arg)
{
    (void)arg;
    struct child c;
    /* t's timer first: t resumes and completes, the cancel finds it ended */
    child_init(&c, 1 * SEC, 0, 5);
    corio_task *t = corio_create_task(corio_coro(child_fn, &c));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_task_done(t), 1);
    ASSERT_EQ(corio_cancel(t), 0);
    void *r = NULL;
    ASSERT_EQ(corio_await(t, &r), 0);
    ASSERT_EQ((intptr_t)r, 5);
    ASSERT_EQ(c.rc, 0);
    ASSERT_EQ(corio_task_cancelled(t), 0);
    ASSERT_EQ(corio_task_release(t), 0);
    /* main's timer first: the cancel reaches t before it resumes */
    child_init(&c, 1 * SEC, 0, 6);
    t = corio_create_task(corio_coro(child_fn, &c));
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_task_done(t), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    r = (void *)1;
    ASSERT_EQ(corio_await(t, &r), -ECANCELED);
    ASSERT_NULL(r);
    ASSERT_EQ(c.rc, -ECANCELED);
    ASSERT_EQ(c.woke, 2 * SEC);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(groups_race_completion_vs_cancel_same_instant)
{
    test_trace_reset();
    ASSERT_EQ(test_run_virtual(main_race_completion_vs_cancel, NULL, NULL), 0);
    ASSERT_STR_EQ(test_trace_get(), "end5 end6"); /* each ended exactly once */
}

struct awaiter_rec {
    corio_task *target;
    int rc;
    int64_t at;
};

static void *await_target(void *arg)
{
    struct awaiter_rec *a = arg;
    a->rc = corio_await(a->target, NULL);
    a->at = corio_now_ns();
    return corio_fail(a->rc < 0 ? a->rc : -EPROTO);
}

static void *main_race_cancel_awaiter_of_cancelled(void *arg)
{
    (void)arg;
    for (int order = 0; order < 2; order++) {
        struct child bc;
        child_init(&bc, 10 * SEC, 0, 1);
        bc.cleanup = 1 * SEC; /* B takes 1 s to wind down */
        int64_t t0 = corio_now_ns();
        corio_task *b = corio_create_task(corio_coro(child_fn, &bc));
        struct awaiter_rec ar = {b, 1, -1};
        corio_task *a = corio_create_task(corio_coro(await_target, &ar));
        ASSERT_EQ(corio_yield(), 0); /* B sleeps, A awaits B */
        if (order == 0) {
            ASSERT_EQ(corio_cancel(b), 1);
            ASSERT_EQ(corio_cancel(a), 1);
        } else {
            ASSERT_EQ(corio_cancel(a), 1);
            ASSERT_EQ(corio_cancel(b), 1);
        }
        ASSERT_EQ(corio_await(a, NULL), -ECANCELED);
        ASSERT_EQ(ar.rc, -ECANCELED);
        ASSERT_EQ(ar.at, t0);            /* at once, not when B is done */
        ASSERT_EQ(corio_task_done(b), 0); /* B still winds down */
        ASSERT_EQ(corio_await(b, NULL), -ECANCELED);
        ASSERT_EQ(bc.rc, -ECANCELED);
        ASSERT_EQ(bc.ended, t0 + 1 * SEC);
        ASSERT_EQ(corio_now_ns(), t0 + 1 * SEC);
        ASSERT_EQ(corio_task_release(a), 0);
        ASSERT_EQ(corio_task_release(b), 0);
    }
    return NULL;
}

TEST(groups_race_cancel_awaiter_of_task_being_cancelled)
{
    ASSERT_EQ(test_run_virtual(main_race_cancel_awaiter_of_cancelled, NULL, NULL), 0);
}

/* B completes at the instant A (awaiting B) is cancelled, before A resumed:
 * A's await reports -ECANCELED, and B's end is not used up. */
static void *main_race_awaiter_cancelled_as_target_ends(void *arg)
{
    (void)arg;
    struct child bc;
    child_init(&bc, 1 * SEC, 0, 33);
    corio_task *b = corio_create_task(corio_coro(child_fn, &bc));
    struct awaiter_rec ar = {b, 1, -1};
    corio_task *a = corio_create_task(corio_coro(await_target, &ar));
    ASSERT_EQ(corio_yield(), 0); /* B's timer is armed before main's */
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_task_done(b), 1); /* B ran first at 1 s and woke A */
    ASSERT_EQ(ar.rc, 1);              /* A has not resumed yet */
    ASSERT_EQ(corio_cancel(a), 1);
    ASSERT_EQ(corio_await(a, NULL), -ECANCELED);
    ASSERT_EQ(ar.rc, -ECANCELED);
    void *r = NULL;
    ASSERT_EQ(corio_await(b, &r), 0);
    ASSERT_EQ((intptr_t)r, 33);
    ASSERT_EQ(corio_task_cancelled(b), 0);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(corio_task_release(a), 0);
    ASSERT_EQ(corio_task_release(b), 0);
    return NULL;
}

TEST(groups_race_awaiter_cancelled_as_target_completes)
{
    ASSERT_EQ(test_run_virtual(main_race_awaiter_cancelled_as_target_ends, NULL, NULL), 0);
}

/* A group child fails at the very instant the body's own sleep ends: the
 * body had not resumed, so its sleep reports -ECANCELED. */
static void *main_race_group_failure_vs_body_wakeup(void *arg)
{
    (void)arg;
    struct child c;
    child_init(&c, 1 * SEC, -EIO, 0);
    corio_taskgroup g;
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    ASSERT_EQ(corio_taskgroup_spawn(&g, corio_coro(child_fn, &c), NULL), 0);
    ASSERT_EQ(corio_yield(), 0); /* the child's timer first */
    int rc = corio_sleep(1);
    ASSERT_EQ(rc, -ECANCELED);
    ASSERT_EQ(corio_taskgroup_end(&g, rc), -EIO);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    return NULL;
}

TEST(groups_race_child_failure_vs_body_wakeup)
{
    ASSERT_EQ(test_run_virtual(main_race_group_failure_vs_body_wakeup, NULL, NULL), 0);
}
