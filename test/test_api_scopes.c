/* test/test_api_scopes.c - timeout and shield scopes, level-triggered
 * cancel, cancel reasons and corio_wait_for.
 *
 * Everything timed runs on the virtual clock (test_run_virtual), so every
 * instant asserted with corio_now_ns() is exact. Test names start with
 * "scopes_" so that `corio_tests scopes` selects them all. */
#include "test.h"

#include <signal.h>
#include <sys/wait.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define SEC 1000000000LL
#define MS 1000000LL

/* ---- helpers ------------------------------------------------------------------- */

/* Sleep arg nanoseconds, then return 77; a failed sleep is propagated. */
static void *sleep_ns_then_77(void *arg)
{
    int rc = corio_sleep_ns((int64_t)(intptr_t)arg);
    if (rc < 0)
        return corio_fail(rc);
    return (void *)(intptr_t)77;
}

static void *return_5(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)5;
}

static void *fail_eio_after_ns(void *arg)
{
    int rc = corio_sleep_ns((int64_t)(intptr_t)arg);
    return corio_fail(rc < 0 ? rc : -EIO);
}

/* A task that moves a scope's deadline at a given instant. */
struct resched {
    corio_scope *sc;
    int64_t at;     /* when (absolute) */
    int64_t to;     /* the new deadline */
    int rc;
};

static void *rescheduler(void *arg)
{
    struct resched *r = arg;
    ASSERT_EQ(corio_sleep_ns(r->at - corio_now_ns()), 0);
    r->rc = corio_scope_reschedule(r->sc, r->to);
    return NULL;
}

/* ---- timeout scopes ------------------------------------------------------------ */

static void *main_timeout_interrupts(void *arg)
{
    (void)arg;
    corio_scope sc;
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_scope_expired(&sc), 0);
    ASSERT_EQ(corio_sleep(5), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 1 * SEC); /* at the deadline, not at the sleep's end */
    ASSERT_EQ(corio_scope_expired(&sc), 1);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    /* the scope is over: nothing cancels any more */
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);

    /* the header's idiom, with an awaited coroutine */
    ASSERT_EQ(corio_timeout_begin(&sc, 2.5), 0);
    void *r = (void *)1;
    int rc = corio_await(corio_coro(sleep_ns_then_77, (void *)(intptr_t)(10 * SEC)), &r);
    ASSERT_EQ(rc, -ECANCELED);
    int trc = corio_scope_end(&sc);
    ASSERT_EQ(trc, -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 4500 * MS);
    return NULL;
}

TEST(scopes_timeout_interrupts_suspension)
{
    ASSERT_EQ(test_run_virtual(main_timeout_interrupts, NULL, NULL), 0);
}

static void *main_timeout_body_first(void *arg)
{
    (void)arg;
    corio_scope sc;
    /* finishes well before the deadline */
    ASSERT_EQ(corio_timeout_begin(&sc, 2.0), 0);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_scope_expired(&sc), 0);
    ASSERT_EQ(corio_scope_end(&sc), 0);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    /* the ended scope's deadline (2 s) must not cancel anything later */
    ASSERT_EQ(corio_sleep(3), 0);
    ASSERT_EQ(corio_now_ns(), 4 * SEC);

    /* finishes 1 ns before the deadline */
    ASSERT_EQ(corio_timeout_begin_ns(&sc, 1 * SEC), 0);
    void *r = NULL;
    ASSERT_EQ(corio_await(corio_coro(sleep_ns_then_77, (void *)(intptr_t)(SEC - 1)), &r), 0);
    ASSERT_EQ((intptr_t)r, 77);
    ASSERT_EQ(corio_scope_end(&sc), 0);
    ASSERT_EQ(corio_now_ns(), 5 * SEC - 1);

    /* past the deadline, but nothing was interrupted: 0 */
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_sleep(0.5), 0);
    ASSERT_EQ(corio_scope_reschedule(&sc, corio_now_ns()), 0); /* the deadline is now */
    ASSERT_EQ(corio_scope_expired(&sc), 1);
    ASSERT_EQ(corio_scope_end(&sc), 0);

    /* a deadline already past at begin, and a body that never suspends */
    int64_t now = corio_now_ns();
    ASSERT_EQ(corio_timeout_at_begin(&sc, now - 1), 0);
    ASSERT_EQ(corio_scope_expired(&sc), 1);
    ASSERT_EQ(corio_await(corio_coro(return_5, NULL), &r), 0);
    ASSERT_EQ((intptr_t)r, 5);
    ASSERT_EQ(corio_scope_end(&sc), 0);
    ASSERT_EQ(corio_now_ns(), now);
    return NULL;
}

TEST(scopes_timeout_body_finishing_first_returns_zero)
{
    ASSERT_EQ(test_run_virtual(main_timeout_body_first, NULL, NULL), 0);
}

static void *main_timeout_level(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(sleep_ns_then_77, (void *)(intptr_t)(2 * SEC)));
    ASSERT_NOT_NULL(t);
    corio_scope sc;
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_sleep(5), -ECANCELED);
    /* every later suspension inside the scope is interrupted too, at once */
    ASSERT_EQ(corio_yield(), -ECANCELED);
    ASSERT_EQ(corio_sleep(0), -ECANCELED);
    ASSERT_EQ(corio_sleep_ns(1), -ECANCELED);
    ASSERT_EQ(corio_sleep(3), -ECANCELED);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED); /* t itself goes on */
    corio_coro_t c = corio_coro(sleep_ns_then_77, (void *)(intptr_t)SEC);
    ASSERT_EQ(corio_await(c, NULL), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(corio_task_cancelled(t), 0);
    ASSERT_EQ(corio_task_cancelled(corio_current_task()), 0); /* the scope, not the task */
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    /* outside the scope, t can be awaited normally */
    void *r = NULL;
    ASSERT_EQ(corio_await(t, &r), 0);
    ASSERT_EQ((intptr_t)r, 77);
    ASSERT_EQ(corio_now_ns(), 2 * SEC); /* t sleeps from 0 to 2 s */
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(scopes_timeout_is_level_triggered_until_end)
{
    ASSERT_EQ(test_run_virtual(main_timeout_level, NULL, NULL), 0);
}

static void *main_timeout_variants(void *arg)
{
    (void)arg;
    corio_scope sc;
    ASSERT_EQ(corio_sleep(1), 0);
    /* relative in ns */
    ASSERT_EQ(corio_timeout_begin_ns(&sc, 250 * MS), 0);
    ASSERT_EQ(corio_scope_deadline(&sc), 1250 * MS);
    ASSERT_EQ(corio_sleep(1), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 1250 * MS);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    /* absolute */
    ASSERT_EQ(corio_timeout_at_begin(&sc, 3 * SEC), 0);
    ASSERT_EQ(corio_scope_deadline(&sc), 3 * SEC);
    ASSERT_EQ(corio_sleep(10), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    /* seconds */
    ASSERT_EQ(corio_timeout_begin(&sc, 1.5), 0);
    ASSERT_EQ(corio_scope_deadline(&sc), 4500 * MS);
    ASSERT_EQ(corio_sleep(10), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 4500 * MS);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    /* infinite seconds: neither NaN nor negative, never expires */
    ASSERT_EQ(corio_timeout_begin(&sc, INFINITY), 0);
    ASSERT_EQ(corio_sleep(100), 0);
    ASSERT_EQ(corio_scope_expired(&sc), 0);
    ASSERT_EQ(corio_scope_end(&sc), 0);
    return NULL;
}

TEST(scopes_timeout_begin_variants)
{
    ASSERT_EQ(test_run_virtual(main_timeout_variants, NULL, NULL), 0);
}

static void *main_deadline_past(void *arg)
{
    (void)arg;
    corio_scope sc;
    ASSERT_EQ(corio_sleep(2), 0);
    /* absolute deadline before now */
    ASSERT_EQ(corio_timeout_at_begin(&sc, 1 * SEC), 0);
    ASSERT_EQ(corio_scope_expired(&sc), 1);
    ASSERT_EQ(corio_sleep(1), -ECANCELED); /* the first suspension inside */
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    /* exactly now */
    ASSERT_EQ(corio_timeout_at_begin(&sc, corio_now_ns()), 0);
    ASSERT_EQ(corio_scope_expired(&sc), 1);
    ASSERT_EQ(corio_yield(), -ECANCELED);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    /* negative absolute deadline: just long past */
    ASSERT_EQ(corio_timeout_at_begin(&sc, -5), 0);
    ASSERT_EQ(corio_sleep(1), -ECANCELED);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    /* zero durations */
    ASSERT_EQ(corio_timeout_begin(&sc, 0.0), 0);
    ASSERT_EQ(corio_scope_expired(&sc), 1);
    ASSERT_EQ(corio_sleep(1), -ECANCELED);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_EQ(corio_timeout_begin_ns(&sc, 0), 0);
    ASSERT_EQ(corio_sleep(1), -ECANCELED);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    /* and the task is fine afterwards */
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    return NULL;
}

TEST(scopes_deadline_already_past_expires_at_once)
{
    ASSERT_EQ(test_run_virtual(main_deadline_past, NULL, NULL), 0);
}

static void *main_no_deadline(void *arg)
{
    (void)arg;
    corio_scope sc;
    ASSERT_EQ(corio_timeout_at_begin(&sc, CORIO_NO_DEADLINE), 0);
    ASSERT_EQ(corio_scope_deadline(&sc), CORIO_NO_DEADLINE);
    ASSERT_EQ(corio_scope_expired(&sc), 0);
    ASSERT_EQ(corio_sleep(1000), 0);
    ASSERT_EQ(corio_scope_expired(&sc), 0);
    /* given a deadline, it works as any timeout */
    ASSERT_EQ(corio_scope_reschedule(&sc, corio_now_ns() + 2 * SEC), 0);
    ASSERT_EQ(corio_scope_deadline(&sc), 1002 * SEC);
    ASSERT_EQ(corio_sleep(10), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 1002 * SEC);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);

    /* begin_ns with a huge duration does not overflow into the past */
    ASSERT_EQ(corio_timeout_begin_ns(&sc, CORIO_NO_DEADLINE), 0);
    ASSERT_GT(corio_scope_deadline(&sc), corio_now_ns() + 1000 * SEC);
    ASSERT_EQ(corio_sleep(5), 0);
    ASSERT_EQ(corio_scope_end(&sc), 0);
    return NULL;
}

TEST(scopes_no_deadline_never_expires)
{
    ASSERT_EQ(test_run_virtual(main_no_deadline, NULL, NULL), 0);
}

/* ---- nesting ----------------------------------------------------------------- */

static void *main_nested_inner_first(void *arg)
{
    (void)arg;
    corio_scope outer, inner;
    ASSERT_EQ(corio_timeout_begin(&outer, 5.0), 0);
    ASSERT_EQ(corio_timeout_begin(&inner, 1.0), 0);
    ASSERT_EQ(corio_sleep(3), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(corio_scope_expired(&outer), 0);
    ASSERT_EQ(corio_scope_end(&inner), -ETIMEDOUT);
    /* the outer scope is unaffected */
    ASSERT_EQ(corio_scope_expired(&outer), 0);
    ASSERT_EQ(corio_scope_deadline(&outer), 5 * SEC);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(corio_scope_end(&outer), 0);
    return NULL;
}

TEST(scopes_nested_inner_expiry_leaves_outer)
{
    ASSERT_EQ(test_run_virtual(main_nested_inner_first, NULL, NULL), 0);
}

static void *main_nested_outer_first(void *arg)
{
    (void)arg;
    corio_scope outer, inner;
    ASSERT_EQ(corio_timeout_begin(&outer, 1.0), 0);
    ASSERT_EQ(corio_timeout_begin(&inner, 5.0), 0);
    ASSERT_EQ(corio_sleep(3), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(corio_scope_expired(&inner), 0);
    ASSERT_EQ(corio_scope_end(&inner), 0); /* not its expiry */
    /* still inside the expired outer scope */
    ASSERT_EQ(corio_sleep(1), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(corio_scope_end(&outer), -ETIMEDOUT);
    /* the inner scope's 5 s deadline is gone with it */
    ASSERT_EQ(corio_sleep(10), 0);
    ASSERT_EQ(corio_now_ns(), 11 * SEC);
    return NULL;
}

TEST(scopes_nested_outer_expiry_inner_end_returns_zero)
{
    ASSERT_EQ(test_run_virtual(main_nested_outer_first, NULL, NULL), 0);
}

static void *main_nested_same_instant_outer_armed_first(void *arg)
{
    (void)arg;
    corio_scope outer, mid, inner;
    ASSERT_EQ(corio_timeout_at_begin(&outer, 1 * SEC), 0);
    ASSERT_EQ(corio_timeout_at_begin(&mid, 1 * SEC), 0);
    ASSERT_EQ(corio_timeout_begin(&inner, 1.0), 0);
    ASSERT_EQ(corio_sleep(5), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(corio_scope_expired(&inner), 1);
    ASSERT_EQ(corio_scope_expired(&mid), 1);
    ASSERT_EQ(corio_scope_expired(&outer), 1);
    ASSERT_EQ(corio_scope_end(&inner), 0);
    ASSERT_EQ(corio_scope_end(&mid), 0);
    ASSERT_EQ(corio_scope_end(&outer), -ETIMEDOUT);
    return NULL;
}

TEST(scopes_nested_expiring_together_credit_outermost)
{
    ASSERT_EQ(test_run_virtual(main_nested_same_instant_outer_armed_first, NULL, NULL), 0);
}

/* The same, but the inner scope's timer is armed before the outer one's
 * (the outer gets its deadline by reschedule): the credit must not depend on
 * which timer fires first within the instant. */
static void *main_nested_same_instant_inner_armed_first(void *arg)
{
    (void)arg;
    corio_scope outer, inner;
    ASSERT_EQ(corio_timeout_at_begin(&outer, CORIO_NO_DEADLINE), 0);
    ASSERT_EQ(corio_timeout_at_begin(&inner, 1 * SEC), 0);
    ASSERT_EQ(corio_scope_reschedule(&outer, 1 * SEC), 0);
    ASSERT_EQ(corio_sleep(5), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(corio_scope_expired(&inner), 1);
    ASSERT_EQ(corio_scope_expired(&outer), 1);
    ASSERT_EQ(corio_scope_end(&inner), 0);
    ASSERT_EQ(corio_scope_end(&outer), -ETIMEDOUT);
    return NULL;
}

TEST(scopes_nested_expiring_together_credit_outermost_any_timer_order)
{
    ASSERT_EQ(test_run_virtual(main_nested_same_instant_inner_armed_first, NULL, NULL), 0);
}

/* ---- reschedule, deadline, expired ------------------------------------------------ */

static void *main_reschedule(void *arg)
{
    (void)arg;
    corio_scope sc;
    /* later */
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_scope_reschedule(&sc, 3 * SEC), 0);
    ASSERT_EQ(corio_scope_deadline(&sc), 3 * SEC);
    ASSERT_EQ(corio_sleep(2), 0); /* past the old deadline: nothing */
    ASSERT_EQ(corio_scope_expired(&sc), 0);
    ASSERT_EQ(corio_sleep(10), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    /* too late now */
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_sleep(5), -ECANCELED);
    ASSERT_EQ(corio_scope_reschedule(&sc, corio_now_ns() + 10 * SEC), -EALREADY);
    ASSERT_EQ(corio_scope_reschedule(&sc, CORIO_NO_DEADLINE), -EALREADY);
    ASSERT_EQ(corio_scope_deadline(&sc), 4 * SEC); /* unchanged */
    ASSERT_EQ(corio_scope_expired(&sc), 1);
    ASSERT_EQ(corio_sleep(1), -ECANCELED); /* still expired */
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 4 * SEC);
    /* earlier */
    ASSERT_EQ(corio_timeout_begin(&sc, 5.0), 0);
    ASSERT_EQ(corio_scope_reschedule(&sc, 6 * SEC), 0);
    ASSERT_EQ(corio_sleep(10), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 6 * SEC);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    /* to the past: expires at once, the next suspension is interrupted */
    ASSERT_EQ(corio_timeout_begin(&sc, 5.0), 0);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_scope_reschedule(&sc, 2 * SEC), 0);
    ASSERT_EQ(corio_scope_deadline(&sc), 2 * SEC);
    ASSERT_EQ(corio_scope_expired(&sc), 1);
    ASSERT_EQ(corio_sleep(1), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 7 * SEC);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    /* disarm */
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_scope_reschedule(&sc, CORIO_NO_DEADLINE), 0);
    ASSERT_EQ(corio_scope_deadline(&sc), CORIO_NO_DEADLINE);
    ASSERT_EQ(corio_sleep(5), 0);
    ASSERT_EQ(corio_now_ns(), 12 * SEC);
    ASSERT_EQ(corio_scope_expired(&sc), 0);
    ASSERT_EQ(corio_scope_end(&sc), 0);
    /* expired from its begin: too late as well */
    ASSERT_EQ(corio_timeout_at_begin(&sc, 0), 0);
    ASSERT_EQ(corio_scope_reschedule(&sc, 100 * SEC), -EALREADY);
    ASSERT_EQ(corio_scope_deadline(&sc), 0);
    ASSERT_EQ(corio_scope_end(&sc), 0);
    /* an ended scope cannot be rescheduled */
    ASSERT_EQ(corio_scope_reschedule(&sc, 20 * SEC), -EINVAL);
    /* the bad reschedule armed nothing: no stray interruption at 20 s */
    ASSERT_EQ(corio_timeout_at_begin(&sc, CORIO_NO_DEADLINE), 0);
    ASSERT_EQ(corio_sleep(10), 0);
    ASSERT_EQ(corio_scope_end(&sc), 0);
    return NULL;
}

TEST(scopes_reschedule_later_earlier_past_and_too_late)
{
    ASSERT_EQ(test_run_virtual(main_reschedule, NULL, NULL), 0);
}

/* Another task moves the deadline of a scope whose task is suspended. */
static void *main_reschedule_from_other_task(void *arg)
{
    (void)arg;
    corio_scope sc;
    /* to now, from no deadline: interrupts the suspended sleep at once */
    struct resched r1 = {&sc, 2 * SEC, 2 * SEC, 1};
    ASSERT_EQ(corio_timeout_at_begin(&sc, CORIO_NO_DEADLINE), 0);
    ASSERT_EQ(corio_spawn(corio_coro(rescheduler, &r1)), 0);
    ASSERT_EQ(corio_sleep(10), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(r1.rc, 0);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    /* later, while suspended */
    struct resched r2 = {&sc, 3 * SEC, 6 * SEC, 1};
    ASSERT_EQ(corio_timeout_at_begin(&sc, 4 * SEC), 0);
    ASSERT_EQ(corio_spawn(corio_coro(rescheduler, &r2)), 0);
    ASSERT_EQ(corio_sleep(10), -ECANCELED);
    ASSERT_EQ(r2.rc, 0);
    ASSERT_EQ(corio_now_ns(), 6 * SEC);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    /* earlier, while suspended */
    struct resched r3 = {&sc, 7 * SEC, 8 * SEC, 1};
    ASSERT_EQ(corio_timeout_at_begin(&sc, 100 * SEC), 0);
    ASSERT_EQ(corio_spawn(corio_coro(rescheduler, &r3)), 0);
    ASSERT_EQ(corio_sleep(50), -ECANCELED);
    ASSERT_EQ(r3.rc, 0);
    ASSERT_EQ(corio_now_ns(), 8 * SEC);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    return NULL;
}

TEST(scopes_reschedule_from_another_task)
{
    ASSERT_EQ(test_run_virtual(main_reschedule_from_other_task, NULL, NULL), 0);
}

static void *main_queries(void *arg)
{
    (void)arg;
    corio_scope a, b, c, sh;
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_timeout_begin(&a, 1.5), 0);
    ASSERT_EQ(corio_timeout_begin_ns(&b, 7), 0);
    ASSERT_EQ(corio_timeout_at_begin(&c, 42 * SEC), 0);
    ASSERT_EQ(corio_shield_begin(&sh), 0);
    ASSERT_EQ(corio_scope_deadline(&a), 2500 * MS);
    ASSERT_EQ(corio_scope_deadline(&b), SEC + 7);
    ASSERT_EQ(corio_scope_deadline(&c), 42 * SEC);
    ASSERT_EQ(corio_scope_deadline(&sh), CORIO_NO_DEADLINE);
    ASSERT_EQ(corio_scope_expired(&a), 0);
    ASSERT_EQ(corio_scope_expired(&b), 0);
    ASSERT_EQ(corio_scope_expired(&sh), 0);
    ASSERT_EQ(corio_scope_reschedule(&sh, 5 * SEC), -EINVAL); /* not a timeout scope */
    ASSERT_EQ(corio_scope_deadline(&sh), CORIO_NO_DEADLINE);
    /* inside the shield, b's and a's expiries do not interrupt */
    ASSERT_EQ(corio_sleep(2), 0);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    ASSERT_EQ(corio_scope_expired(&a), 1);
    ASSERT_EQ(corio_scope_expired(&b), 1);
    ASSERT_EQ(corio_scope_expired(&c), 0);
    ASSERT_EQ(corio_scope_expired(&sh), 0);
    ASSERT_EQ(corio_scope_end(&sh), -ECANCELED); /* held back: delivered now */
    ASSERT_EQ(corio_scope_end(&c), 0);
    ASSERT_EQ(corio_scope_end(&b), 0);
    ASSERT_EQ(corio_scope_end(&a), -ETIMEDOUT); /* the outermost expired one */
    ASSERT_EQ(corio_scope_deadline(NULL), -EINVAL);
    ASSERT_EQ(corio_scope_expired(NULL), -EINVAL);
    ASSERT_EQ(corio_scope_reschedule(NULL, 0), -EINVAL);
    corio_scope z;
    memset(&z, 0, sizeof z);
    ASSERT_EQ(corio_scope_deadline(&z), -EINVAL);
    ASSERT_EQ(corio_scope_expired(&z), -EINVAL);
    ASSERT_EQ(corio_scope_reschedule(&z, 0), -EINVAL);
    return NULL;
}

TEST(scopes_deadline_and_expired_queries)
{
    ASSERT_EQ(test_run_virtual(main_queries, NULL, NULL), 0);
}

/* ---- shields ---------------------------------------------------------------------- */

static int sh_rc[8];
static int64_t sh_at[8];

static void *shielded_worker(void *arg)
{
    (void)arg;
    corio_scope sh, inner_sh;
    ASSERT_EQ(corio_shield_begin(&sh), 0);
    sh_rc[0] = corio_sleep(2); /* cancelled at 1 s: sleeps on */
    sh_at[0] = corio_now_ns();
    sh_rc[1] = corio_yield();
    /* a shield inside the shield: its end is still shielded */
    ASSERT_EQ(corio_shield_begin(&inner_sh), 0);
    sh_rc[2] = corio_sleep(1);
    sh_rc[3] = corio_scope_end(&inner_sh);
    sh_rc[4] = corio_sleep(1);
    sh_at[4] = corio_now_ns();
    sh_rc[5] = corio_scope_end(&sh);     /* the held cancel is delivered */
    sh_rc[6] = corio_sleep(1);           /* and the next suspension too */
    sh_rc[7] = corio_yield();
    sh_at[7] = corio_now_ns();
    return corio_fail(sh_rc[6]);
}

static void *main_shield_task_cancel(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(shielded_worker, NULL));
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(corio_task_cancelled(t), 1);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_EQ(sh_rc[0], 0);
    ASSERT_EQ(sh_at[0], 2 * SEC);
    ASSERT_EQ(sh_rc[1], 0);
    ASSERT_EQ(sh_rc[2], 0);
    ASSERT_EQ(sh_rc[3], 0);
    ASSERT_EQ(sh_rc[4], 0);
    ASSERT_EQ(sh_at[4], 4 * SEC);
    ASSERT_EQ(sh_rc[5], -ECANCELED);
    ASSERT_EQ(sh_rc[6], -ECANCELED);
    ASSERT_EQ(sh_rc[7], -ECANCELED);
    ASSERT_EQ(sh_at[7], 4 * SEC);
    ASSERT_EQ(corio_now_ns(), 4 * SEC);
    ASSERT_EQ(corio_task_release(t), 0);
    /* a shield with nothing held back ends with 0 */
    corio_scope sh;
    ASSERT_EQ(corio_shield_begin(&sh), 0);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_scope_end(&sh), 0);
    ASSERT_EQ(corio_sleep(1), 0);
    return NULL;
}

TEST(scopes_shield_holds_back_task_cancel)
{
    ASSERT_EQ(test_run_virtual(main_shield_task_cancel, NULL, NULL), 0);
}

static void *main_shield_outer_timeout(void *arg)
{
    (void)arg;
    corio_scope to, sh;
    ASSERT_EQ(corio_timeout_begin(&to, 1.0), 0);
    ASSERT_EQ(corio_shield_begin(&sh), 0);
    ASSERT_EQ(corio_sleep(2), 0);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(corio_scope_expired(&to), 1);
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_scope_end(&sh), -ECANCELED);
    ASSERT_EQ(corio_sleep(1), -ECANCELED); /* the next suspension too */
    ASSERT_EQ(corio_yield(), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(corio_scope_end(&to), -ETIMEDOUT); /* credited through the shield's end */
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    /* the timeout expiring while the shield is on, but the shield ends with
     * no suspension after it: still credited by the shield's end */
    ASSERT_EQ(corio_timeout_begin(&to, 1.0), 0);
    ASSERT_EQ(corio_shield_begin(&sh), 0);
    ASSERT_EQ(corio_sleep(5), 0);
    ASSERT_EQ(corio_scope_end(&sh), -ECANCELED);
    ASSERT_EQ(corio_scope_end(&to), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 8 * SEC);
    return NULL;
}

TEST(scopes_shield_holds_back_outer_timeout)
{
    ASSERT_EQ(test_run_virtual(main_shield_outer_timeout, NULL, NULL), 0);
}

static int in_rc[5];
static int64_t in_at[5];

static void *shield_with_inner_timeout(void *arg)
{
    (void)arg;
    corio_scope sh, to;
    ASSERT_EQ(corio_shield_begin(&sh), 0);
    ASSERT_EQ(corio_timeout_begin(&to, 1.0), 0);
    in_rc[0] = corio_sleep(5); /* cancelled at 0.5 s (held), inner expiry at 1 s */
    in_at[0] = corio_now_ns();
    in_rc[1] = corio_scope_end(&to);
    in_rc[2] = corio_sleep(1); /* still shielded from the task's cancel */
    in_at[2] = corio_now_ns();
    in_rc[3] = corio_scope_end(&sh);
    in_rc[4] = corio_sleep(1);
    in_at[4] = corio_now_ns();
    return corio_fail(in_rc[4]);
}

static void *main_inner_timeout_in_shield(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(shield_with_inner_timeout, NULL));
    ASSERT_EQ(corio_sleep(0.5), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_EQ(in_rc[0], -ECANCELED);
    ASSERT_EQ(in_at[0], 1 * SEC);
    ASSERT_EQ(in_rc[1], -ETIMEDOUT);
    ASSERT_EQ(in_rc[2], 0);
    ASSERT_EQ(in_at[2], 2 * SEC);
    ASSERT_EQ(in_rc[3], -ECANCELED);
    ASSERT_EQ(in_rc[4], -ECANCELED);
    ASSERT_EQ(in_at[4], 2 * SEC);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(scopes_inner_timeout_inside_shield_still_works)
{
    ASSERT_EQ(test_run_virtual(main_inner_timeout_in_shield, NULL, NULL), 0);
}

/* The task's own cancel and an expired scope, both active: the task's cancel
 * is the outermost cause, the timeout's end returns 0. */
static int tc_rc[4];

static void *timeout_shield_worker(void *arg)
{
    (void)arg;
    corio_scope to, sh;
    ASSERT_EQ(corio_timeout_begin(&to, 1.0), 0);
    ASSERT_EQ(corio_shield_begin(&sh), 0);
    tc_rc[0] = corio_sleep(2); /* timeout at 1 s, task cancel at 1.5 s: both held */
    tc_rc[1] = corio_scope_end(&sh);
    tc_rc[2] = corio_scope_end(&to);
    tc_rc[3] = corio_sleep(1); /* the task's cancel stays */
    return corio_fail(tc_rc[3]);
}

static corio_scope *published;
static int yield_rc = 1, yield_end_rc = 1;

static void *timeout_yield_worker(void *arg)
{
    (void)arg;
    corio_scope to;
    ASSERT_EQ(corio_timeout_begin(&to, 10.0), 0);
    published = &to;
    yield_rc = corio_yield(); /* expired and cancelled while it waits in the ready queue */
    yield_end_rc = corio_scope_end(&to);
    return corio_fail(yield_rc);
}

static void *main_task_cancel_outermost(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(timeout_shield_worker, NULL));
    ASSERT_EQ(corio_sleep(1.5), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(tc_rc[0], 0);
    ASSERT_EQ(tc_rc[1], -ECANCELED);
    ASSERT_EQ(tc_rc[2], 0);
    ASSERT_EQ(tc_rc[3], -ECANCELED);
    ASSERT_EQ(corio_task_release(t), 0);

    /* both causes appear while the task is ready, not suspended */
    t = corio_create_task(corio_coro(timeout_yield_worker, NULL));
    ASSERT_EQ(corio_yield(), 0); /* t begins its scope and yields */
    ASSERT_NOT_NULL(published);
    ASSERT_EQ(corio_scope_reschedule(published, corio_now_ns()), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_EQ(yield_rc, -ECANCELED);
    ASSERT_EQ(yield_end_rc, 0);
    ASSERT_EQ(corio_task_release(t), 0);

    /* a cancelled task that begins an already expired scope */
    ASSERT_EQ(corio_cancel(corio_current_task()), 1);
    corio_scope sc;
    ASSERT_EQ(corio_timeout_at_begin(&sc, 0), 0);
    ASSERT_EQ(corio_sleep(1), -ECANCELED);
    ASSERT_EQ(corio_scope_end(&sc), 0);
    ASSERT_EQ(corio_sleep(1), -ECANCELED);
    return NULL;
}

TEST(scopes_task_cancel_is_outermost_cause)
{
    ASSERT_EQ(test_run_virtual(main_task_cancel_outermost, NULL, NULL), 0);
}

/* A scope that expires while its task waits in the ready queue (after a
 * yield), not in a suspension: the yield reports it, the end credits it. */
static void *main_expiry_while_ready(void *arg)
{
    (void)arg;
    yield_rc = yield_end_rc = 1;
    published = NULL;
    corio_task *t = corio_create_task(corio_coro(timeout_yield_worker, NULL));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_NOT_NULL(published);
    ASSERT_EQ(corio_scope_reschedule(published, corio_now_ns() - 1), 0);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_EQ(yield_rc, -ECANCELED);
    ASSERT_EQ(yield_end_rc, -ETIMEDOUT);
    ASSERT_EQ(corio_task_cancelled(t), 0);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(scopes_expiry_while_ready_interrupts_yield)
{
    ASSERT_EQ(test_run_virtual(main_expiry_while_ready, NULL, NULL), 0);
}

/* ---- level-triggered task cancel: every kind of suspension ------------------------------ */

static int lv_rc[16];
static int lv_n;
static int64_t lv_end = -1;

static void *level_worker(void *arg)
{
    (void)arg;
    int i = 0;
    lv_rc[i++] = corio_sleep(10); /* cancelled here */
    lv_rc[i++] = corio_yield();
    lv_rc[i++] = corio_sleep(0);
    lv_rc[i++] = corio_sleep_ns(1);
    lv_rc[i++] = corio_sleep(1);
    corio_task *c = corio_create_task(corio_coro(sleep_ns_then_77, (void *)(intptr_t)SEC));
    lv_rc[i++] = corio_await(c, NULL);
    corio_coro_t one = corio_coro(sleep_ns_then_77, (void *)(intptr_t)SEC);
    lv_rc[i++] = corio_gather(&one, 1, NULL);
    lv_rc[i++] = corio_wait(&c, 1, CORIO_ALL_COMPLETED, -1);
    corio_as_completed ac;
    ASSERT_EQ(corio_as_completed_begin(&ac, &c, 1, -1), 0);
    corio_task *got = NULL;
    lv_rc[i++] = corio_as_completed_next(&ac, &got);
    ASSERT_EQ(corio_as_completed_end(&ac), 0);
    lv_rc[i++] = corio_wait_for(one, 5.0, NULL);
    lv_rc[i++] = corio_wait_for(c, 5.0, NULL); /* cancels and reaps c */
    corio_scope sc;
    ASSERT_EQ(corio_timeout_begin(&sc, 5.0), 0);
    lv_rc[i++] = corio_sleep(1);
    lv_rc[i++] = corio_scope_end(&sc); /* not the scope's doing */
    corio_taskgroup g;
    ASSERT_EQ(corio_taskgroup_begin(&g), 0);
    ASSERT_EQ(corio_taskgroup_spawn(&g, one, NULL), 0);
    lv_rc[i++] = corio_taskgroup_end(&g, 0);
    lv_rc[i++] = corio_yield();
    lv_n = i;
    lv_end = corio_now_ns();
    ASSERT_EQ(corio_task_done(c), 1);
    ASSERT_EQ(corio_task_cancelled(c), 1);
    ASSERT_EQ(corio_task_release(c), 0);
    return (void *)(intptr_t)9; /* it may still end as it likes */
}

static void *main_level_all(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(level_worker, NULL));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    void *r = NULL;
    ASSERT_EQ(corio_await(t, &r), 0);
    ASSERT_EQ((intptr_t)r, 9);
    ASSERT_EQ(lv_n, 15);
    for (int i = 0; i < lv_n; i++) {
        if (i == 12) {
            ASSERT_EQ(lv_rc[i], 0); /* the timeout scope's end */
            continue;
        }
        ASSERT_EQ(lv_rc[i], -ECANCELED);
    }
    ASSERT_EQ(lv_end, 0);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(scopes_cancel_is_level_triggered_for_every_suspension)
{
    ASSERT_EQ(test_run_virtual(main_level_all, NULL, NULL), 0);
}

/* ---- cancel reasons ------------------------------------------------------------------ */

static const char REASON1[] = "shutting down";
static const char REASON2[] = "deadline";
static const char *seen_reason = (const char *)1;
static int seen_cancelled = -9;

static void *reason_worker(void *arg)
{
    (void)arg;
    int rc = corio_sleep(10);
    seen_reason = corio_cancel_reason(corio_current_task());
    seen_cancelled = corio_task_cancelled(corio_current_task());
    if (rc < 0)
        return corio_fail(rc);
    return NULL;
}

static void *main_reasons(void *arg)
{
    (void)arg;
    /* before it starts */
    corio_task *t = corio_create_task(corio_coro(reason_worker, NULL));
    ASSERT_NULL(corio_cancel_reason(t));
    ASSERT_EQ(corio_task_cancelled(t), 0);
    ASSERT_EQ(corio_cancel_with(t, REASON1), 1);
    ASSERT_PTR_EQ(corio_cancel_reason(t), REASON1);
    ASSERT_EQ(corio_task_cancelled(t), 1);
    ASSERT_EQ(corio_cancel_with(t, REASON2), 0); /* the first reason wins */
    ASSERT_EQ(corio_cancel(t), 0);
    ASSERT_PTR_EQ(corio_cancel_reason(t), REASON1);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_PTR_EQ(seen_reason, (const char *)1); /* it never ran */
    ASSERT_PTR_EQ(corio_cancel_reason(t), REASON1); /* after its end */
    ASSERT_EQ(corio_task_cancelled(t), 1);
    ASSERT_EQ(corio_task_release(t), 0);

    /* while it runs (suspended) */
    t = corio_create_task(corio_coro(reason_worker, NULL));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel_with(t, REASON2), 1);
    ASSERT_EQ(corio_cancel_with(t, REASON1), 0);
    ASSERT_PTR_EQ(corio_cancel_reason(t), REASON2);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_PTR_EQ(seen_reason, REASON2); /* read inside the task */
    ASSERT_EQ(seen_cancelled, 1);
    ASSERT_PTR_EQ(corio_cancel_reason(t), REASON2); /* and after its end */
    ASSERT_EQ(corio_task_cancelled(t), 1);
    ASSERT_EQ(corio_task_release(t), 0);

    /* not cancelled: no reason, ever */
    seen_reason = (const char *)1;
    t = corio_create_task(corio_coro(sleep_ns_then_77, (void *)(intptr_t)SEC));
    ASSERT_EQ(corio_await(t, NULL), 0);
    ASSERT_NULL(corio_cancel_reason(t));
    ASSERT_EQ(corio_task_cancelled(t), 0);
    /* a cancel after the end is no cancel */
    ASSERT_EQ(corio_cancel_with(t, REASON1), 0);
    ASSERT_NULL(corio_cancel_reason(t));
    ASSERT_EQ(corio_task_cancelled(t), 0);
    ASSERT_EQ(corio_task_release(t), 0);

    /* cancelled without a reason */
    t = corio_create_task(corio_coro(reason_worker, NULL));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_NULL(corio_cancel_reason(t));
    ASSERT_EQ(corio_task_cancelled(t), 1);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_NULL(seen_reason);
    ASSERT_EQ(corio_task_release(t), 0);

    /* a task may cancel itself with a reason, and read it */
    ASSERT_EQ(corio_cancel_with(corio_current_task(), REASON1), 1);
    ASSERT_PTR_EQ(corio_cancel_reason(corio_current_task()), REASON1);
    ASSERT_EQ(corio_sleep(1), -ECANCELED);

    ASSERT_NULL(corio_cancel_reason(NULL));
    ASSERT_EQ(corio_task_cancelled(NULL), -EINVAL);
    ASSERT_EQ(corio_cancel_with(NULL, REASON1), -EINVAL);
    return NULL;
}

TEST(scopes_cancel_reasons)
{
    ASSERT_EQ(test_run_virtual(main_reasons, NULL, NULL), 0);
}

/* A task that keeps running after its cancel (a long shielded cleanup on
 * another stack than its creator's) still reports the reason after it ends. */
static void *cleanup_then_value(void *arg)
{
    (void)arg;
    int rc = corio_sleep(10);
    ASSERT_EQ(rc, -ECANCELED);
    corio_scope sh;
    ASSERT_EQ(corio_shield_begin(&sh), 0);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_scope_end(&sh), -ECANCELED);
    return (void *)(intptr_t)31; /* swallows the cancel */
}

static void *cleanup_then_propagate(void *arg)
{
    (void)arg;
    int rc = corio_sleep(10);
    corio_scope sh;
    ASSERT_EQ(corio_shield_begin(&sh), 0);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_scope_end(&sh), rc < 0 ? -ECANCELED : 0);
    return corio_fail(rc < 0 ? rc : -EPROTO);
}

static void *main_reason_after_clean_end(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(cleanup_then_value, NULL));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_EQ(corio_cancel_with(t, REASON2), 1);
    void *r = NULL;
    ASSERT_EQ(corio_await(t, &r), 0);
    ASSERT_EQ((intptr_t)r, 31);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_PTR_EQ(corio_cancel_reason(t), REASON2);
    ASSERT_EQ(corio_task_cancelled(t), 1);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(scopes_cancel_reason_kept_after_task_ends_normally)
{
    ASSERT_EQ(test_run_virtual(main_reason_after_clean_end, NULL, NULL), 0);
}

/* ---- wait_for ------------------------------------------------------------------------- */

static void *main_wait_for_coro(void *arg)
{
    (void)arg;
    void *r = NULL;
    /* in time */
    ASSERT_EQ(corio_wait_for(corio_coro(sleep_ns_then_77, (void *)(intptr_t)SEC), 2.0, &r), 0);
    ASSERT_EQ((intptr_t)r, 77);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    /* timed out */
    ASSERT_EQ(corio_wait_for(corio_coro(sleep_ns_then_77, (void *)(intptr_t)(5 * SEC)), 2.0, &r),
              -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    /* its own error, in time */
    ASSERT_EQ(corio_wait_for(corio_coro(fail_eio_after_ns, (void *)(intptr_t)SEC), 2.0, NULL),
              -EIO);
    ASSERT_EQ(corio_now_ns(), 4 * SEC);
    /* the expiry and the end of its sleep at the same instant: the expiry
     * reaches the suspension before it resumes */
    ASSERT_EQ(corio_wait_for(corio_coro(sleep_ns_then_77, (void *)(intptr_t)SEC), 1.0, NULL),
              -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 5 * SEC);
    /* negative: no timeout */
    r = NULL;
    ASSERT_EQ(corio_wait_for(corio_coro(sleep_ns_then_77, (void *)(intptr_t)(100 * SEC)), -1.0, &r),
              0);
    ASSERT_EQ((intptr_t)r, 77);
    ASSERT_EQ(corio_now_ns(), 105 * SEC);
    /* zero: expired from the start, the first suspension is interrupted */
    ASSERT_EQ(corio_wait_for(corio_coro(sleep_ns_then_77, (void *)(intptr_t)SEC), 0.0, NULL),
              -ETIMEDOUT);
    /* ... but a coroutine that never suspends completes */
    ASSERT_EQ(corio_wait_for(corio_coro(return_5, NULL), 0.0, &r), 0);
    ASSERT_EQ((intptr_t)r, 5);
    ASSERT_EQ(corio_now_ns(), 105 * SEC);
    /* the scope it used is gone: nothing cancels later */
    ASSERT_EQ(corio_sleep(3), 0);
    return NULL;
}

TEST(scopes_wait_for_coroutine)
{
    ASSERT_EQ(test_run_virtual(main_wait_for_coro, NULL, NULL), 0);
}

static void *main_wait_for_task_timeout(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(sleep_ns_then_77, (void *)(intptr_t)(5 * SEC)));
    void *r = (void *)3;
    ASSERT_EQ(corio_wait_for(t, 1.0, &r), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    /* cancelled and reaped before wait_for returned */
    ASSERT_EQ(corio_task_done(t), 1);
    ASSERT_EQ(corio_task_cancelled(t), 1);
    ASSERT_EQ(corio_await(t, &r), -ECANCELED);
    ASSERT_EQ(corio_task_release(t), 0);

    /* a task whose cancel takes time (shielded cleanup): wait_for waits for it */
    t = corio_create_task(corio_coro(cleanup_then_propagate, NULL));
    ASSERT_EQ(corio_wait_for(t, 2.0, &r), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 4 * SEC);
    ASSERT_EQ(corio_task_done(t), 1);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_EQ(corio_task_release(t), 0);

    /* zero timeout on a running task */
    t = corio_create_task(corio_coro(sleep_ns_then_77, (void *)(intptr_t)SEC));
    ASSERT_EQ(corio_wait_for(t, 0.0, NULL), -ETIMEDOUT);
    ASSERT_EQ(corio_task_done(t), 1);
    ASSERT_EQ(corio_now_ns(), 4 * SEC);
    /* zero timeout on an ended task: its status and result */
    r = NULL;
    ASSERT_EQ(corio_wait_for(t, 0.0, &r), -ECANCELED);
    ASSERT_EQ(corio_task_release(t), 0);
    t = corio_create_task(corio_coro(return_5, NULL));
    ASSERT_EQ(corio_await(t, NULL), 0);
    ASSERT_EQ(corio_wait_for(t, 0.0, &r), 0);
    ASSERT_EQ((intptr_t)r, 5);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(scopes_wait_for_task_timeout_cancels_and_reaps)
{
    ASSERT_EQ(test_run_virtual(main_wait_for_task_timeout, NULL, NULL), 0);
}

static void *main_wait_for_task_in_time(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(sleep_ns_then_77, (void *)(intptr_t)(3 * SEC)));
    void *r = NULL;
    ASSERT_EQ(corio_wait_for(t, 10.0, &r), 0);
    ASSERT_EQ((intptr_t)r, 77);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    ASSERT_EQ(corio_task_cancelled(t), 0);
    ASSERT_EQ(corio_task_release(t), 0);
    /* its error, in time */
    t = corio_create_task(corio_coro(fail_eio_after_ns, (void *)(intptr_t)SEC));
    ASSERT_EQ(corio_wait_for(t, 10.0, &r), -EIO);
    ASSERT_EQ(corio_now_ns(), 4 * SEC);
    ASSERT_EQ(corio_task_cancelled(t), 0);
    ASSERT_EQ(corio_task_release(t), 0);
    /* negative: no timeout at all */
    t = corio_create_task(corio_coro(sleep_ns_then_77, (void *)(intptr_t)(1000 * SEC)));
    r = NULL;
    ASSERT_EQ(corio_wait_for(t, -1.0, &r), 0);
    ASSERT_EQ((intptr_t)r, 77);
    ASSERT_EQ(corio_now_ns(), 1004 * SEC);
    ASSERT_EQ(corio_task_release(t), 0);
    /* the ended scope's deadline does not interrupt anything later */
    ASSERT_EQ(corio_sleep(20), 0);
    return NULL;
}

TEST(scopes_wait_for_task_in_time_returns_its_status)
{
    ASSERT_EQ(test_run_virtual(main_wait_for_task_in_time, NULL, NULL), 0);
}

struct wf_arg {
    corio_task *t;
    double seconds;
    int rc;
    int64_t at;
};

static void *wait_for_waiter(void *arg)
{
    struct wf_arg *a = arg;
    a->rc = corio_wait_for(a->t, a->seconds, NULL);
    a->at = corio_now_ns();
    return corio_fail(a->rc);
}

static void caller_cancelled_case(double seconds)
{
    corio_task *t = corio_create_task(corio_coro(sleep_ns_then_77, (void *)(intptr_t)(5 * SEC)));
    struct wf_arg a = {t, seconds, 1, -1};
    int64_t t0 = corio_now_ns();
    corio_task *w = corio_create_task(corio_coro(wait_for_waiter, &a));
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_task_done(t), 0);
    ASSERT_EQ(corio_cancel(w), 1);
    ASSERT_EQ(corio_await(w, NULL), -ECANCELED);
    ASSERT_EQ(a.rc, -ECANCELED);
    ASSERT_EQ(a.at, t0 + 1 * SEC);
    /* the task was cancelled and reaped before wait_for returned */
    ASSERT_EQ(corio_task_cancelled(t), 1);
    ASSERT_EQ(corio_task_done(t), 1);
    ASSERT_EQ(corio_await(t, NULL), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), t0 + 1 * SEC);
    ASSERT_EQ(corio_task_release(t), 0);
    ASSERT_EQ(corio_task_release(w), 0);
}

static void *main_wait_for_caller_cancelled(void *arg)
{
    (void)arg;
    caller_cancelled_case(10.0);
    return NULL;
}

TEST(scopes_wait_for_caller_cancelled_cancels_task)
{
    ASSERT_EQ(test_run_virtual(main_wait_for_caller_cancelled, NULL, NULL), 0);
}

static void *main_wait_for_caller_cancelled_no_timeout(void *arg)
{
    (void)arg;
    caller_cancelled_case(-1.0);
    return NULL;
}

/* A negative timeout means no timeout, nothing else: the caller's cancel
 * still cancels and reaps the task (asyncio.wait_for(t, None)). */
TEST(scopes_wait_for_no_timeout_caller_cancelled_cancels_task)
{
    ASSERT_EQ(test_run_virtual(main_wait_for_caller_cancelled_no_timeout, NULL, NULL), 0);
}

/* Timeout and completion at the same virtual instant, both orders. */
static void *main_wait_for_race(void *arg)
{
    (void)arg;
    /* the task's timer was armed first: it resumes (and completes) before
     * wait_for's cancel can land, so its own status and result win */
    corio_task *t = corio_create_task(corio_coro(sleep_ns_then_77, (void *)(intptr_t)SEC));
    ASSERT_EQ(corio_yield(), 0); /* t is asleep until 1 s */
    void *r = NULL;
    ASSERT_EQ(corio_wait_for(t, 1.0, &r), 0);
    ASSERT_EQ((intptr_t)r, 77);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(corio_task_cancelled(t), 0);
    ASSERT_EQ(corio_task_release(t), 0);
    /* wait_for's timer first: the cancel reaches the task before it resumes */
    t = corio_create_task(corio_coro(sleep_ns_then_77, (void *)(intptr_t)SEC));
    r = (void *)1;
    ASSERT_EQ(corio_wait_for(t, 1.0, &r), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(corio_task_done(t), 1);
    ASSERT_EQ(corio_task_cancelled(t), 1);
    ASSERT_EQ(corio_await(t, &r), -ECANCELED); /* exactly one outcome */
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(scopes_race_wait_for_timeout_vs_completion_same_instant)
{
    ASSERT_EQ(test_run_virtual(main_wait_for_race, NULL, NULL), 0);
}

/* wait_for inside an outer timeout scope: the outer expiry is the caller's
 * cancel, so the task is cancelled and reaped, wait_for reports -ECANCELED
 * and the outer scope's end -ETIMEDOUT; also when both expire together. */
static void *main_wait_for_in_outer_scope(void *arg)
{
    (void)arg;
    corio_scope sc;
    corio_task *t = corio_create_task(corio_coro(sleep_ns_then_77, (void *)(intptr_t)(5 * SEC)));
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_wait_for(t, 10.0, NULL), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(corio_task_done(t), 1);
    ASSERT_EQ(corio_task_cancelled(t), 1);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_EQ(corio_task_release(t), 0);
    /* both expire at 2 s: the outer scope is credited */
    t = corio_create_task(corio_coro(sleep_ns_then_77, (void *)(intptr_t)(5 * SEC)));
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_wait_for(t, 1.0, NULL), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(corio_task_done(t), 1);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_EQ(corio_task_release(t), 0);
    /* the coroutine form, the same */
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_wait_for(corio_coro(sleep_ns_then_77, (void *)(intptr_t)(5 * SEC)), 1.0, NULL),
              -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 3 * SEC);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    return NULL;
}

TEST(scopes_wait_for_inside_outer_timeout)
{
    ASSERT_EQ(test_run_virtual(main_wait_for_in_outer_scope, NULL, NULL), 0);
}


/* A scope's expiry and the end of the sleep inside it at the same instant,
 * the sleep's timer armed first: the task has not resumed when the scope
 * expires, so the sleep reports -ECANCELED and the end -ETIMEDOUT (one
 * outcome, never a completed sleep with -ETIMEDOUT or the reverse). */
static void *main_scope_race(void *arg)
{
    (void)arg;
    corio_scope sc;
    ASSERT_EQ(corio_timeout_at_begin(&sc, CORIO_NO_DEADLINE), 0);
    struct resched r = {&sc, 0, 1 * SEC, 1}; /* sets the deadline at 0, after main's sleep is armed */
    ASSERT_EQ(corio_spawn(corio_coro(rescheduler, &r)), 0);
    ASSERT_EQ(corio_sleep(1), -ECANCELED);
    ASSERT_EQ(r.rc, 0);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    /* scope armed first */
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), 0);
    ASSERT_EQ(corio_sleep(1), -ECANCELED);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    return NULL;
}

TEST(scopes_race_expiry_vs_wakeup_same_instant)
{
    ASSERT_EQ(test_run_virtual(main_scope_race, NULL, NULL), 0);
}

/* ---- bad input -------------------------------------------------------------------------- */

static void *main_bad_null_nan(void *arg)
{
    (void)arg;
    corio_scope sc;
    memset(&sc, 0, sizeof sc);
    ASSERT_EQ(corio_timeout_begin(NULL, 1.0), -EINVAL);
    ASSERT_EQ(corio_timeout_begin_ns(NULL, 1), -EINVAL);
    ASSERT_EQ(corio_timeout_at_begin(NULL, 1), -EINVAL);
    ASSERT_EQ(corio_shield_begin(NULL), -EINVAL);
    ASSERT_EQ(corio_scope_end(NULL), -EINVAL);
    ASSERT_EQ(corio_scope_reschedule(NULL, 1), -EINVAL);
    ASSERT_EQ(corio_scope_deadline(NULL), -EINVAL);
    ASSERT_EQ(corio_scope_expired(NULL), -EINVAL);
    ASSERT_EQ(corio_timeout_begin(&sc, NAN), -EINVAL);
    ASSERT_EQ(corio_timeout_begin(&sc, -NAN), -EINVAL);
    ASSERT_EQ(corio_timeout_begin(&sc, -1.0), -EINVAL);
    ASSERT_EQ(corio_timeout_begin(&sc, -1e-9), -EINVAL);
    ASSERT_EQ(corio_timeout_begin(&sc, -INFINITY), -EINVAL);
    ASSERT_EQ(corio_timeout_begin_ns(&sc, -1), -EINVAL);
    ASSERT_EQ(corio_timeout_begin_ns(&sc, INT64_MIN), -EINVAL);
    /* never begun */
    ASSERT_EQ(corio_scope_end(&sc), -EINVAL);
    ASSERT_EQ(corio_scope_reschedule(&sc, 1), -EINVAL);
    /* wait_for: NaN, NULL */
    corio_task *t = corio_create_task(corio_coro(sleep_ns_then_77, (void *)(intptr_t)SEC));
    void *r = (void *)0x55;
    ASSERT_EQ(corio_wait_for(t, NAN, &r), -EINVAL);
    ASSERT_EQ(corio_wait_for(corio_coro(sleep_ns_then_77, NULL), NAN, &r), -EINVAL);
    ASSERT_EQ(corio_wait_for((corio_task *)NULL, 1.0, &r), -EINVAL);
    ASSERT_EQ(corio_wait_for(corio_coro(NULL, NULL), 1.0, &r), -EINVAL);
    ASSERT_EQ(corio_wait_for(corio_current_task(), 1.0, &r), -EDEADLK);
    ASSERT_PTR_EQ(r, (void *)0x55);
    /* no effect: nothing suspended, t not cancelled, no scope left behind */
    ASSERT_EQ(corio_task_cancelled(t), 0);
    ASSERT_EQ(corio_task_done(t), 0);
    ASSERT_EQ(corio_now_ns(), 0);
    ASSERT_EQ(corio_await(t, &r), 0);
    ASSERT_EQ((intptr_t)r, 77);
    ASSERT_EQ(corio_sleep(10), 0);
    ASSERT_EQ(corio_now_ns(), 11 * SEC);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(scopes_bad_input_null_nan_negative)
{
    ASSERT_EQ(test_run_virtual(main_bad_null_nan, NULL, NULL), 0);
}

static void *main_bad_not_innermost(void *arg)
{
    (void)arg;
    corio_scope outer, inner, sh;
    ASSERT_EQ(corio_timeout_begin(&outer, 2.0), 0);
    ASSERT_EQ(corio_timeout_begin(&inner, 5.0), 0);
    ASSERT_EQ(corio_scope_end(&outer), -EINVAL);
    /* nothing changed: outer still armed and still in the chain */
    ASSERT_EQ(corio_scope_deadline(&outer), 2 * SEC);
    ASSERT_EQ(corio_sleep(10), -ECANCELED);
    ASSERT_EQ(corio_now_ns(), 2 * SEC);
    ASSERT_EQ(corio_scope_end(&outer), -EINVAL);
    ASSERT_EQ(corio_scope_end(&inner), 0);
    ASSERT_EQ(corio_scope_end(&outer), -ETIMEDOUT);
    /* ended twice */
    ASSERT_EQ(corio_scope_end(&outer), -EINVAL);
    ASSERT_EQ(corio_scope_end(&inner), -EINVAL);
    /* a shield in between */
    ASSERT_EQ(corio_timeout_begin(&outer, 1.0), 0);
    ASSERT_EQ(corio_shield_begin(&sh), 0);
    ASSERT_EQ(corio_scope_end(&outer), -EINVAL);
    ASSERT_EQ(corio_sleep(2), 0); /* still shielded */
    ASSERT_EQ(corio_scope_end(&sh), -ECANCELED);
    ASSERT_EQ(corio_scope_end(&sh), -EINVAL);
    ASSERT_EQ(corio_scope_end(&outer), -ETIMEDOUT);
    ASSERT_EQ(corio_scope_end(&outer), -EINVAL);
    ASSERT_EQ(corio_sleep(1), 0);
    ASSERT_EQ(corio_now_ns(), 5 * SEC);
    return NULL;
}

TEST(scopes_bad_end_not_innermost_or_twice)
{
    ASSERT_EQ(test_run_virtual(main_bad_not_innermost, NULL, NULL), 0);
}

static int other_rc = 1, other_end_rc = 1;

static void *scope_owner(void *arg)
{
    (void)arg;
    corio_scope sc;
    ASSERT_EQ(corio_timeout_begin(&sc, 5.0), 0);
    published = &sc;
    other_rc = corio_sleep(1);
    other_end_rc = corio_scope_end(&sc);
    published = NULL;
    return NULL;
}

static void *main_bad_other_task(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(scope_owner, NULL));
    ASSERT_EQ(corio_yield(), 0);
    ASSERT_NOT_NULL(published);
    /* not a scope of the calling task */
    ASSERT_EQ(corio_scope_end(published), -EINVAL);
    ASSERT_EQ(corio_await(t, NULL), 0);
    ASSERT_EQ(other_rc, 0);
    ASSERT_EQ(other_end_rc, 0);
    ASSERT_EQ(corio_now_ns(), 1 * SEC);
    ASSERT_EQ(corio_task_release(t), 0);
    return NULL;
}

TEST(scopes_bad_end_of_another_tasks_scope)
{
    ASSERT_EQ(test_run_virtual(main_bad_other_task, NULL, NULL), 0);
}

static int never_ran;

static void *count_run(void *arg)
{
    (void)arg;
    never_ran++;
    return NULL;
}

TEST(scopes_calls_outside_a_task_are_eperm)
{
    corio_scope sc;
    memset(&sc, 0, sizeof sc);
    /* no loop on this thread */
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), -EPERM);
    ASSERT_EQ(corio_timeout_begin_ns(&sc, 1), -EPERM);
    ASSERT_EQ(corio_timeout_at_begin(&sc, 1), -EPERM);
    ASSERT_EQ(corio_shield_begin(&sc), -EPERM);
    ASSERT_EQ(corio_scope_end(&sc), -EPERM);
    ASSERT_EQ(corio_wait_for(corio_coro(count_run, NULL), 1.0, NULL), -EPERM);
    ASSERT_EQ(never_ran, 0);
    /* a loop on this thread, but no task running */
    corio_loop *l = NULL;
    corio_loop_opts o = test_virtual_opts();
    ASSERT_EQ(corio_loop_new(&l, &o), 0);
    corio_task *t = NULL;
    ASSERT_EQ(corio_task_create(&t, corio_coro(count_run, NULL), NULL), 0);
    ASSERT_EQ(corio_timeout_begin(&sc, 1.0), -EPERM);
    ASSERT_EQ(corio_timeout_at_begin(&sc, 1), -EPERM);
    ASSERT_EQ(corio_shield_begin(&sc), -EPERM);
    ASSERT_EQ(corio_scope_end(&sc), -EPERM);
    ASSERT_EQ(corio_wait_for(t, 1.0, NULL), -EPERM);
    ASSERT_EQ(corio_wait_for(corio_coro(count_run, NULL), 1.0, NULL), -EPERM);
    ASSERT_EQ(never_ran, 0);
    ASSERT_EQ(corio_task_cancelled(t), 0); /* no effect */
    /* cancel does not suspend: allowed outside a task */
    ASSERT_EQ(corio_cancel_with(t, REASON1), 1);
    ASSERT_PTR_EQ(corio_cancel_reason(t), REASON1);
    ASSERT_EQ(corio_task_release(t), 0);
    ASSERT_EQ(corio_loop_free(l), 0);
    ASSERT_EQ(never_ran, 0);
}

/* ---- a task that returns with its scope still open aborts, naming itself ---- */

void *leaves_scope_open(void *arg); /* not static: the report names it via dladdr */
void *leaves_scope_open(void *arg)
{
    (void)arg;
    corio_scope sc; /* dies with this frame while its timer is armed */
    corio_timeout_begin(&sc, 5.0);
    return NULL;
}

static void *open_scope_main(void *arg)
{
    (void)arg;
    corio_task *t = corio_create_task(corio_coro(leaves_scope_open, NULL));
    corio_await(t, NULL);
    return NULL;
}

static int open_scope_child(void *arg)
{
    (void)arg;
    corio_loop_opts o = {.clock = CORIO_CLOCK_VIRTUAL};
    corio_run_opts(corio_coro(open_scope_main, NULL), NULL, &o);
    return 0; /* not reached: the end of leaves_scope_open aborts */
}

TEST(scopes_task_ending_inside_open_scope_aborts_with_its_name)
{
    char err[4096];
    int st = 0;
    ASSERT_EQ(test_fork_stderr(open_scope_child, NULL, err, sizeof err, &st), 0);
    ASSERT(WIFSIGNALED(st));
    ASSERT_EQ(WTERMSIG(st), SIGABRT);
    ASSERT(strstr(err, "ended inside a scope it never ended") != NULL);
    ASSERT(strstr(err, "leaves_scope_open") != NULL);
}
