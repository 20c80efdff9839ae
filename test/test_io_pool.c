/* test/test_io_pool.c - blocking calls on worker threads: corio_to_thread,
 * corio_to_thread_discard and corio_getaddrinfo (corio.h, "Blocking calls
 * on worker threads").
 *
 * Parts: results and threads (fn runs off the loop's thread, the pool never
 * runs more than CORIO_THREADPOOL_SIZE jobs at once, FIFO start order, jobs
 * run in parallel, the loop keeps running while they block), cancellation
 * (a waiter stops at once, the job goes on and its result reaches discard
 * exactly once, also when the cancel lands after the wakeup; a loop's close
 * waits for abandoned jobs), bad input, getaddrinfo, and one loop per
 * thread.
 *
 * Everything runs on the real clock (the pool works in real time); the
 * timing asserts are generous. Each test runs in its own forked process, so
 * a test may set CORIO_THREADPOOL_SIZE before its first use of the pool.
 * Test names start with "pool_" so that `corio_tests pool` selects them. */
#define _GNU_SOURCE
#include "test.h"

#include "internal.h" /* the task's state, to cancel between wakeup and resume */

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------------------- */

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* corio_run on the real clock, whatever CORIO_CLOCK says; main must succeed. */
static void run_real(corio_fn *fn, void *arg)
{
    corio_loop_opts o = {.clock = CORIO_CLOCK_REAL};
    ASSERT_EQ(corio_run_opts(corio_coro(fn, arg), NULL, &o), 0);
}

static void set_pool_size(const char *v)
{
    ASSERT_EQ(setenv("CORIO_THREADPOOL_SIZE", v, 1), 0);
}

static corio_task *spawn(corio_fn *fn, void *arg)
{
    corio_task *t = corio_create_task(corio_coro(fn, arg));
    ASSERT_NOT_NULL(t);
    return t;
}

static int finish(corio_task *t, void **result)
{
    int rc = corio_await(t, result);
    ASSERT_EQ(corio_task_release(t), 0);
    return rc;
}

static void *double_fn(void *arg)
{
    return (void *)((intptr_t)arg * 2);
}

/* Blocks the worker for arg microseconds; returns arg. */
static void *usleep_fn(void *arg)
{
    usleep((useconds_t)(intptr_t)arg);
    return arg;
}

/* ---- results and threads ------------------------------------------------------------------ */

static void *self_fn(void *arg)
{
    *(pthread_t *)arg = pthread_self();
    return (void *)0x5eed;
}

static void *result_main(void *arg)
{
    (void)arg;
    void *r = NULL;
    ASSERT_EQ(corio_to_thread(double_fn, (void *)21, &r), 0);
    ASSERT_EQ((intptr_t)r, 42);
    pthread_t worker;
    ASSERT_EQ(corio_to_thread(self_fn, &worker, &r), 0);
    ASSERT_PTR_EQ(r, (void *)0x5eed);
    ASSERT(!pthread_equal(worker, pthread_self()));
    /* result may be NULL: the value is dropped */
    ASSERT_EQ(corio_to_thread(double_fn, (void *)1, NULL), 0);
    return NULL;
}

TEST(pool_to_thread_result)
{
    run_real(result_main, NULL);
}

/* Counts the jobs running at once and the distinct workers. */
static struct {
    atomic_int running, max_running, calls;
    pthread_mutex_t mu;
    pthread_t seen[512];
    int nseen;
    int order[64];
    atomic_int norder;
} conc = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *counting_fn(void *arg)
{
    int now = atomic_fetch_add(&conc.running, 1) + 1;
    int max = atomic_load(&conc.max_running);
    while (now > max && !atomic_compare_exchange_weak(&conc.max_running, &max, now))
        ;
    pthread_mutex_lock(&conc.mu);
    int i = 0;
    while (i < conc.nseen && !pthread_equal(conc.seen[i], pthread_self()))
        i++;
    if (i == conc.nseen && conc.nseen < 512)
        conc.seen[conc.nseen++] = pthread_self();
    pthread_mutex_unlock(&conc.mu);
    usleep(3000);
    atomic_fetch_sub(&conc.running, 1);
    atomic_fetch_add(&conc.calls, 1);
    return double_fn(arg);
}

static void *counting_task(void *arg)
{
    void *r = NULL;
    int rc = corio_to_thread(counting_fn, arg, &r);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ((intptr_t)r, (intptr_t)arg * 2);
    return r;
}

static void *many_main(void *arg)
{
    int n = (int)(intptr_t)arg;
    corio_task *t[100];
    for (int i = 0; i < n; i++)
        t[i] = spawn(counting_task, (void *)(intptr_t)i);
    for (int i = 0; i < n; i++) {
        void *r;
        ASSERT_EQ(finish(t[i], &r), 0);
        ASSERT_EQ((intptr_t)r, 2 * i);
    }
    return NULL;
}

/* Run n counting jobs from n tasks; the most that ran at once must be
 * exactly `expect` (the pool's size: enough jobs to fill it). */
static void check_concurrency(int n, int expect)
{
    run_real(many_main, (void *)(intptr_t)n);
    ASSERT_EQ(atomic_load(&conc.calls), n);
    ASSERT_EQ(atomic_load(&conc.running), 0);
    ASSERT_EQ(atomic_load(&conc.max_running), expect);
    ASSERT_EQ(conc.nseen, expect); /* threads start on demand, up to the size */
}

TEST(pool_many_tasks_bounded)
{
    set_pool_size("3");
    check_concurrency(100, 3);
}

TEST(pool_size_default)
{
    ASSERT_EQ(unsetenv("CORIO_THREADPOOL_SIZE"), 0);
    check_concurrency(40, 4);
}

TEST(pool_size_bad_value_is_default)
{
    set_pool_size("many");
    check_concurrency(40, 4);
}

TEST(pool_size_clamped_to_one)
{
    set_pool_size("0");
    check_concurrency(10, 1);
}

static void *order_fn(void *arg)
{
    conc.order[atomic_fetch_add(&conc.norder, 1)] = (int)(intptr_t)arg;
    usleep(500);
    return NULL;
}

static void *order_task(void *arg)
{
    ASSERT_EQ(corio_to_thread(order_fn, arg, NULL), 0);
    return NULL;
}

static void *order_main(void *arg)
{
    (void)arg;
    corio_task *t[20];
    for (int i = 0; i < 20; i++)
        t[i] = spawn(order_task, (void *)(intptr_t)i);
    for (int i = 0; i < 20; i++)
        ASSERT_EQ(finish(t[i], NULL), 0);
    return NULL;
}

/* With one worker, jobs start (and so run) in the order they were queued. */
TEST(pool_fifo_order)
{
    set_pool_size("1");
    run_real(order_main, NULL);
    ASSERT_EQ(atomic_load(&conc.norder), 20);
    for (int i = 0; i < 20; i++)
        ASSERT_EQ(conc.order[i], i);
}

static void *sleeper_task(void *arg)
{
    void *r = NULL;
    ASSERT_EQ(corio_to_thread(usleep_fn, arg, &r), 0);
    ASSERT_PTR_EQ(r, arg);
    return NULL;
}

static void *parallel_main(void *arg)
{
    (void)arg;
    double t0 = mono();
    corio_task *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn(sleeper_task, (void *)(intptr_t)200000);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(finish(t[i], NULL), 0);
    double el = mono() - t0;
    ASSERT_GE(el * 1000, 190);
    ASSERT_LT(el * 1000, 500); /* in parallel: about 0.2 s, not 0.6 s */
    return NULL;
}

TEST(pool_blocking_calls_in_parallel)
{
    set_pool_size("4");
    run_real(parallel_main, NULL);
}

static atomic_int ticks;
static atomic_int stop_ticking;

static void *ticker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_ticking)) {
        ASSERT_EQ(corio_sleep(0.01), 0);
        atomic_fetch_add(&ticks, 1);
    }
    return NULL;
}

static void *responsive_main(void *arg)
{
    (void)arg;
    corio_task *t = spawn(ticker, NULL);
    ASSERT_EQ(corio_to_thread(usleep_fn, (void *)(intptr_t)200000, NULL), 0);
    int n = atomic_load(&ticks);
    atomic_store(&stop_ticking, 1);
    ASSERT_EQ(finish(t, NULL), 0);
    ASSERT_GE(n, 5); /* about 20 ticks of 10 ms while the job blocked its worker */
    return NULL;
}

TEST(pool_loop_stays_responsive)
{
    run_real(responsive_main, NULL);
}

/* ---- cancellation ------------------------------------------------------------------------- */

/* A slow job and what became of its result. */
static struct {
    atomic_int fn_started, fn_done;
    int discards;
    void *discard_result, *discard_arg;
    corio_task *discard_task; /* corio_current_task() inside discard */
    int rc, scope_rc;
    double returned_after;    /* seconds from the cancel to the waiter's return */
} job_st;

#define MARKER ((void *)0xC0FFEE)

static void *slow_fn(void *arg)
{
    atomic_store(&job_st.fn_started, 1);
    usleep((useconds_t)(intptr_t)arg);
    atomic_store(&job_st.fn_done, 1);
    return MARKER;
}

static void record_discard(void *result, void *arg)
{
    job_st.discards++;
    job_st.discard_result = result;
    job_st.discard_arg = arg;
    job_st.discard_task = corio_current_task();
}

static void *slow_waiter(void *arg)
{
    void *r = NULL;
    int rc = corio_to_thread_discard(slow_fn, arg, &r, record_discard);
    job_st.rc = rc;
    if (rc < 0)
        return corio_fail(rc);
    ASSERT_PTR_EQ(r, MARKER);
    return NULL;
}

/* Poll (the loop stays free) until the discard came, for at most 5 s. */
static void wait_for_discard(void)
{
    double t0 = mono();
    while (job_st.discards == 0 && mono() - t0 < 5)
        ASSERT_EQ(corio_sleep(0.005), 0);
}

static void *cancel_main(void *arg)
{
    (void)arg;
    corio_task *t = spawn(slow_waiter, (void *)(intptr_t)200000);
    double t0 = mono();
    while (!atomic_load(&job_st.fn_started) && mono() - t0 < 5)
        ASSERT_EQ(corio_sleep(0.001), 0);
    ASSERT_EQ(atomic_load(&job_st.fn_started), 1);
    t0 = mono();
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(finish(t, NULL), -ECANCELED);
    ASSERT_LT((mono() - t0) * 1000, 100); /* at once, not when the job ends */
    ASSERT_EQ(atomic_load(&job_st.fn_done), 0); /* the job goes on */
    ASSERT_EQ(job_st.discards, 0);
    wait_for_discard();
    ASSERT_EQ(atomic_load(&job_st.fn_done), 1);
    ASSERT_EQ(job_st.discards, 1);
    ASSERT_PTR_EQ(job_st.discard_result, MARKER);
    ASSERT_PTR_EQ(job_st.discard_arg, (void *)(intptr_t)200000);
    ASSERT_NULL(job_st.discard_task); /* from the loop, outside any task */
    return NULL;
}

TEST(pool_cancel_waiter)
{
    run_real(cancel_main, NULL);
    ASSERT_EQ(job_st.discards, 1);
    ASSERT_EQ(job_st.rc, -ECANCELED);
}

static void *timeout_main(void *arg)
{
    (void)arg;
    corio_scope sc;
    double t0 = mono();
    ASSERT_EQ(corio_timeout_begin(&sc, 0.05), 0);
    int rc = corio_to_thread_discard(slow_fn, (void *)(intptr_t)200000, NULL, record_discard);
    ASSERT_EQ(rc, -ECANCELED);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    ASSERT_LT((mono() - t0) * 1000, 150);
    ASSERT_EQ(atomic_load(&job_st.fn_done), 0);
    wait_for_discard();
    ASSERT_EQ(job_st.discards, 1);
    ASSERT_PTR_EQ(job_st.discard_result, MARKER);
    /* the task is not cancelled itself: the next call works */
    void *r = NULL;
    ASSERT_EQ(corio_to_thread(double_fn, (void *)4, &r), 0);
    ASSERT_EQ((intptr_t)r, 8);
    return NULL;
}

TEST(pool_timeout_scope)
{
    run_real(timeout_main, NULL);
    ASSERT_EQ(job_st.discards, 1);
}

/* A task cancelled before the call: no job starts at all. A scope expired
 * before the call: the same, and its end reports it. */
static void *precancelled_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_cancel(corio_current_task()), 1);
    int rc = corio_to_thread_discard(slow_fn, (void *)1000, NULL, record_discard);
    ASSERT_EQ(rc, -ECANCELED);
    return corio_fail(rc);
}

static void *expired_scope_main(void *arg)
{
    (void)arg;
    corio_scope sc;
    ASSERT_EQ(corio_timeout_begin(&sc, 0), 0);
    ASSERT_EQ(corio_to_thread_discard(slow_fn, (void *)1000, NULL, record_discard), -ECANCELED);
    ASSERT_EQ(corio_scope_end(&sc), -ETIMEDOUT);
    /* a shield lets the call run despite a pending cancel */
    ASSERT_EQ(corio_cancel(corio_current_task()), 1);
    ASSERT_EQ(corio_shield_begin(&sc), 0);
    void *r = NULL;
    ASSERT_EQ(corio_to_thread(double_fn, (void *)5, &r), 0);
    ASSERT_EQ((intptr_t)r, 10);
    ASSERT_EQ(corio_scope_end(&sc), -ECANCELED);
    return NULL;
}

TEST(pool_cancelled_before_call)
{
    corio_loop_opts o = {.clock = CORIO_CLOCK_REAL};
    ASSERT_EQ(corio_run_opts(corio_coro(precancelled_main, NULL), NULL, &o), -ECANCELED);
    ASSERT_EQ(corio_run_opts(corio_coro(expired_scope_main, NULL), NULL, &o), 0);
    ASSERT_EQ(atomic_load(&job_st.fn_started), 0);
    ASSERT_EQ(job_st.discards, 0);
}

/* The cancel lands after the job's completion woke the waiter but before the
 * waiter resumed: the canceller is a task that keeps yielding, so it is
 * always ahead of the waiter in the ready queue when the completion (run at
 * the start of a turn) makes the waiter ready. The waiter reports
 * -ECANCELED and discards the result it was handed, itself. */
static corio_task *late_waiter;
static int late_cancelled;

static void *late_canceller(void *arg)
{
    (void)arg;
    double t0 = mono();
    bool waited = false;
    while (mono() - t0 < 5) {
        if (late_waiter->state == CORIO__T_WAITING)
            waited = true;
        else if (waited && late_waiter->state == CORIO__T_READY) {
            ASSERT_EQ(corio_cancel(late_waiter), 1);
            late_cancelled = 1;
            return NULL;
        }
        ASSERT_EQ(corio_yield(), 0);
    }
    return NULL;
}

static void *late_main(void *arg)
{
    (void)arg;
    late_waiter = spawn(slow_waiter, (void *)(intptr_t)20000);
    corio_task *c = spawn(late_canceller, NULL);
    ASSERT_EQ(finish(c, NULL), 0);
    ASSERT_EQ(late_cancelled, 1);
    ASSERT_EQ(finish(late_waiter, NULL), -ECANCELED);
    ASSERT_EQ(job_st.rc, -ECANCELED);
    ASSERT_EQ(job_st.discards, 1);
    ASSERT_PTR_EQ(job_st.discard_result, MARKER);
    ASSERT_PTR_EQ(job_st.discard_task, late_waiter); /* by the waiter, as it resumed */
    return NULL;
}

TEST(pool_cancel_after_wakeup)
{
    run_real(late_main, NULL);
    ASSERT_EQ(job_st.discards, 1);
}

/* corio_run returns while an abandoned job still runs: the loop's close
 * waits for it, and its result goes to discard. */
static void *abandon_main(void *arg)
{
    (void)arg;
    corio_task *t = spawn(slow_waiter, (void *)(intptr_t)200000);
    ASSERT_EQ(corio_sleep(0.02), 0);
    ASSERT_EQ(corio_cancel(t), 1);
    ASSERT_EQ(finish(t, NULL), -ECANCELED);
    return NULL;
}

/* The same, but main leaves the waiter waiting: close cancels it. */
static void *leave_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_spawn(corio_coro(slow_waiter, (void *)(intptr_t)200000)), 0);
    ASSERT_EQ(corio_sleep(0.02), 0);
    return NULL;
}

/* A job abandoned with no discard: the result is simply dropped. */
static void *no_discard_task(void *arg)
{
    (void)arg;
    return corio_fail(corio_to_thread(slow_fn, (void *)(intptr_t)100000, NULL));
}

static void *no_discard_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(corio_spawn(corio_coro(no_discard_task, NULL)), 0);
    ASSERT_EQ(corio_sleep(0.02), 0);
    return NULL;
}

TEST(pool_close_waits_for_abandoned_job)
{
    double t0 = mono();
    run_real(abandon_main, NULL);
    ASSERT_EQ(job_st.discards, 1);
    ASSERT_EQ(atomic_load(&job_st.fn_done), 1);
    ASSERT_GE((mono() - t0) * 1000, 150);
    ASSERT_PTR_EQ(job_st.discard_result, MARKER);

    memset(&job_st, 0, sizeof job_st);
    t0 = mono();
    run_real(leave_main, NULL);
    ASSERT_EQ(job_st.rc, -ECANCELED);
    ASSERT_EQ(job_st.discards, 1);
    ASSERT_EQ(atomic_load(&job_st.fn_done), 1);
    ASSERT_GE((mono() - t0) * 1000, 150);

    memset(&job_st, 0, sizeof job_st);
    run_real(no_discard_main, NULL);
    ASSERT_EQ(atomic_load(&job_st.fn_done), 1);
    ASSERT_EQ(job_st.discards, 0);
}

/* ---- bad input ------------------------------------------------------------------------------ */

static int done_cb_rc = 1;

static void perm_done_cb(corio_task *t, void *arg)
{
    (void)t;
    (void)arg;
    done_cb_rc = corio_to_thread(double_fn, NULL, NULL); /* in the loop, outside a task */
}

static void *nop_task(void *arg)
{
    return arg;
}

static void *bad_input_main(void *arg)
{
    (void)arg;
    void *r = (void *)1;
    ASSERT_EQ(corio_to_thread(NULL, NULL, &r), -EINVAL);
    ASSERT_EQ(corio_to_thread_discard(NULL, NULL, &r, record_discard), -EINVAL);
    ASSERT_PTR_EQ(r, (void *)1);
    struct addrinfo *res = NULL;
    ASSERT_EQ(corio_getaddrinfo(NULL, NULL, NULL, &res), -EINVAL);
    ASSERT_EQ(corio_getaddrinfo("127.0.0.1", "80", NULL, NULL), -EINVAL);
    ASSERT_NULL(res);
    corio_task *t = spawn(nop_task, NULL);
    ASSERT_EQ(corio_task_add_done_callback(t, perm_done_cb, NULL), 0);
    ASSERT_EQ(finish(t, NULL), 0);
    for (int i = 0; i < 10 && done_cb_rc == 1; i++)
        ASSERT_EQ(corio_yield(), 0); /* let the callback run */
    ASSERT_EQ(done_cb_rc, -EPERM);
    return NULL;
}

TEST(pool_bad_input)
{
    void *r = (void *)1;
    ASSERT_EQ(corio_to_thread(double_fn, NULL, &r), -EPERM); /* no loop, no task */
    ASSERT_EQ(corio_to_thread_discard(double_fn, NULL, &r, record_discard), -EPERM);
    ASSERT_PTR_EQ(r, (void *)1);
    struct addrinfo *res = NULL;
    ASSERT_EQ(corio_getaddrinfo("127.0.0.1", "80", NULL, &res), -EPERM);
    ASSERT_NULL(res);
    run_real(bad_input_main, NULL);
    ASSERT_EQ(job_st.discards, 0);
}

/* ---- getaddrinfo ---------------------------------------------------------------------------- */

static int count_ai(const struct addrinfo *ai)
{
    int n = 0;
    for (; ai; ai = ai->ai_next)
        n++;
    return n;
}

static int ai_port(const struct addrinfo *ai)
{
    if (ai->ai_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_port);
}

static void *gai_main(void *arg)
{
    (void)arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;

    ASSERT_EQ(corio_getaddrinfo("127.0.0.1", "80", &hints, &res), 0);
    ASSERT_EQ(count_ai(res), 1);
    ASSERT_EQ(res->ai_family, AF_INET);
    ASSERT_EQ(res->ai_socktype, SOCK_STREAM);
    ASSERT_EQ(ai_port(res), 80);
    ASSERT_EQ(((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr.s_addr,
              htonl(INADDR_LOOPBACK));
    freeaddrinfo(res);

    res = NULL;
    ASSERT_EQ(corio_getaddrinfo("localhost", "80", &hints, &res), 0);
    ASSERT_GE(count_ai(res), 1);
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        ASSERT(ai->ai_family == AF_INET || ai->ai_family == AF_INET6);
        ASSERT_EQ(ai_port(ai), 80);
    }
    freeaddrinfo(res);

    res = NULL;
    ASSERT_EQ(corio_getaddrinfo("::1", "443", &hints, &res), 0);
    ASSERT_EQ(count_ai(res), 1);
    ASSERT_EQ(res->ai_family, AF_INET6);
    ASSERT_EQ(ai_port(res), 443);
    ASSERT_MEM_EQ(&((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr, &in6addr_loopback,
                  sizeof in6addr_loopback);
    freeaddrinfo(res);

    /* no hints, no service */
    res = NULL;
    ASSERT_EQ(corio_getaddrinfo("127.0.0.1", NULL, NULL, &res), 0);
    ASSERT_GE(count_ai(res), 1);
    ASSERT_EQ(res->ai_family, AF_INET);
    freeaddrinfo(res);

    /* the caller's strings may go away as soon as the call returned */
    char *host = strdup("127.0.0.1"), *service = strdup("8080");
    ASSERT_EQ(corio_getaddrinfo(host, service, &hints, &res), 0);
    free(host);
    free(service);
    ASSERT_EQ(ai_port(res), 8080);
    freeaddrinfo(res);
    return NULL;
}

TEST(pool_getaddrinfo_addresses)
{
    run_real(gai_main, NULL);
}

static void *gai_invalid_main(void *arg)
{
    (void)arg;
    corio_scope sc;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    ASSERT_EQ(corio_timeout_begin(&sc, 10), 0);
    int rc = corio_getaddrinfo("no-such-host.invalid", "80", &hints, &res);
    ASSERT_EQ(corio_scope_end(&sc), 0); /* it answered: no hang */
    ASSERT(rc == -ENOENT || rc == -EAGAIN); /* no network in CI: either */
    ASSERT_NULL(res);
    return NULL;
}

TEST(pool_getaddrinfo_no_such_host)
{
    run_real(gai_invalid_main, NULL);
}

static void *gai_bad_args_main(void *arg)
{
    (void)arg;
    struct addrinfo *res = NULL;
    struct addrinfo hints = {.ai_flags = AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
    ASSERT_EQ(corio_getaddrinfo("127.0.0.1", "http", &hints, &res), -EINVAL);
    ASSERT_EQ(corio_getaddrinfo("127.0.0.1", "", &hints, &res), -EINVAL);
    hints.ai_flags = 0;
    ASSERT_EQ(corio_getaddrinfo("127.0.0.1", "no-such-service-corio", &hints, &res),
              -EINVAL); /* EAI_SERVICE */
    hints.ai_family = 12345;
    ASSERT_EQ(corio_getaddrinfo("127.0.0.1", "80", &hints, &res), -EINVAL); /* EAI_FAMILY */
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = 0x40000000;
    ASSERT_EQ(corio_getaddrinfo("127.0.0.1", "80", &hints, &res), -EINVAL); /* EAI_BADFLAGS */
    ASSERT_NULL(res);
    /* a numeric service with AI_NUMERICSERV is fine */
    hints.ai_flags = AI_NUMERICSERV;
    ASSERT_EQ(corio_getaddrinfo("127.0.0.1", "80", &hints, &res), 0);
    ASSERT_EQ(ai_port(res), 80);
    freeaddrinfo(res);
    return NULL;
}

TEST(pool_getaddrinfo_bad_arguments)
{
    run_real(gai_bad_args_main, NULL);
}

/* Lookups cancelled at various points (before the job starts, while it
 * runs, after it completed but before the waiter resumed): the call reports
 * -ECANCELED or its result, and nothing leaks (ASan, valgrind). The
 * strings go away as soon as the call returned. */
static void *gai_cancel_task(void *arg)
{
    (void)arg;
    char *host = strdup("localhost"), *service = strdup("80");
    struct addrinfo *res = NULL;
    int rc = corio_getaddrinfo(host, service, NULL, &res);
    free(host);
    free(service);
    if (rc == 0)
        freeaddrinfo(res);
    else
        ASSERT_NULL(res);
    return rc < 0 ? corio_fail(rc) : NULL;
}

static void *gai_cancel_main(void *arg)
{
    (void)arg;
    int cancelled = 0;
    for (int i = 0; i < 24; i++) {
        corio_task *t = spawn(gai_cancel_task, NULL);
        for (int k = 0; k < i % 6; k++)
            ASSERT_EQ(corio_yield(), 0);
        if (i % 6 == 5)
            ASSERT_EQ(corio_sleep(0.001), 0);
        corio_cancel(t);
        int rc = finish(t, NULL);
        ASSERT(rc == 0 || rc == -ECANCELED);
        cancelled += rc == -ECANCELED;
    }
    ASSERT_GE(cancelled, 4); /* at least the ones cancelled before they ran */
    /* and one left waiting when the loop closes */
    ASSERT_EQ(corio_spawn(corio_coro(gai_cancel_task, NULL)), 0);
    ASSERT_EQ(corio_yield(), 0);
    return NULL;
}

TEST(pool_getaddrinfo_cancel)
{
    run_real(gai_cancel_main, NULL);
}

/* ---- one loop per thread ---------------------------------------------------------------------- */

static void *thread_task(void *arg)
{
    void *r = NULL;
    ASSERT_EQ(corio_to_thread(usleep_fn, arg, &r), 0);
    ASSERT_PTR_EQ(r, arg);
    ASSERT_EQ(corio_to_thread(double_fn, arg, &r), 0);
    ASSERT_EQ((intptr_t)r, 2 * (intptr_t)arg);
    return NULL;
}

static void *thread_main(void *arg)
{
    intptr_t base = (intptr_t)arg;
    corio_task *t[10];
    for (int i = 0; i < 10; i++)
        t[i] = spawn(thread_task, (void *)(base + i * 100));
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(finish(t[i], NULL), 0);
    return (void *)base;
}

static void *loop_thread(void *arg)
{
    void *r = NULL;
    corio_loop_opts o = {.clock = CORIO_CLOCK_REAL};
    int rc = corio_run_opts(corio_coro(thread_main, arg), &r, &o);
    ASSERT_EQ(rc, 0);
    ASSERT_PTR_EQ(r, arg);
    return r;
}

TEST(pool_loops_on_two_threads)
{
    pthread_t th[2];
    for (intptr_t i = 0; i < 2; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, loop_thread, (void *)(1000 + i * 5000)), 0);
    for (int i = 0; i < 2; i++) {
        void *r;
        ASSERT_EQ(pthread_join(th[i], &r), 0);
        ASSERT_PTR_EQ(r, (void *)(intptr_t)(1000 + i * 5000));
    }
}
