/* test/test_api_bad_input.c - every documented error of the public API,
 * and that a failed call has no other effect. */
#include "test.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>

static int ran;

static void *count(void *arg)
{
    (void)arg;
    ran++;
    return (void *)(intptr_t)5;
}

static void *main_bad_inputs(void *arg)
{
    (void)arg;
    void *r = (void *)0x77;
    corio_task *t = (corio_task *)0x88;
    corio_task_opts big = {.stack_size = CORIO_STACK_MAX + 1}, small = {.stack_size = CORIO_STACK_MIN - 1};
    corio_task_opts sized_compact = {.stack_size = CORIO_STACK_MIN, .compact = 1};

    ASSERT_NULL(corio_create_task(corio_coro(NULL, &ran)));
    ASSERT_EQ(corio_task_create(NULL, corio_coro(count, NULL), NULL), -EINVAL);
    ASSERT_EQ(corio_task_create(&t, corio_coro(NULL, NULL), NULL), -EINVAL);
    ASSERT_EQ(corio_task_create(&t, corio_coro(count, NULL), &big), -EINVAL);
    ASSERT_EQ(corio_task_create(&t, corio_coro(count, NULL), &small), -EINVAL);
    ASSERT_EQ(corio_task_create(&t, corio_coro(count, NULL), &sized_compact), -EINVAL);
    ASSERT_PTR_EQ(t, (void *)0x88);
    ASSERT_EQ(corio_spawn(corio_coro(NULL, NULL)), -EINVAL);
    ASSERT_EQ(corio_task_release(NULL), -EINVAL);
    ASSERT_EQ(corio_task_done(NULL), -EINVAL);
    ASSERT_EQ(corio_cancel(NULL), -EINVAL);
    ASSERT_EQ(corio_await_task(NULL, &r), -EINVAL);
    ASSERT_EQ(corio_await_coro(corio_coro(NULL, NULL), &r), -EINVAL);
    ASSERT_PTR_EQ(r, (void *)0x77);
    ASSERT_EQ(corio_gather_tasks(NULL, 1, &r), -EINVAL);
    ASSERT_EQ(corio_gather(NULL, 1, &r), -EINVAL);
    ASSERT_PTR_EQ(r, (void *)0x77);
    ASSERT_EQ(corio_sleep(-0.5), -EINVAL);
    ASSERT_EQ(corio_sleep(NAN), -EINVAL);
    ASSERT_EQ(corio_sleep(INFINITY), -EINVAL);
    ASSERT_EQ(corio_sleep_ns(-5), -EINVAL);
    ASSERT_EQ(corio_run(corio_coro(count, NULL), &r), -EBUSY);
    ASSERT_PTR_EQ(r, (void *)0x77);
    /* nothing ran, nothing suspended, no time passed */
    ASSERT_EQ(ran, 0);
    ASSERT_EQ(corio_now_ns(), 0);
    /* the loop is fine afterwards */
    ASSERT_EQ(corio_await(corio_coro(count, NULL), &r), 0);
    ASSERT_EQ((intptr_t)r, 5);
    ASSERT_EQ(ran, 1);
    return NULL;
}

TEST(bad_input_is_rejected_without_effect)
{
    ASSERT_EQ(test_run_virtual(main_bad_inputs, NULL, NULL), 0);
    ASSERT_EQ(ran, 1);
}

static void *fail_with(void *arg)
{
    return corio_fail((int)(intptr_t)arg);
}

TEST(fail_with_non_negative_is_einval)
{
    void *r = (void *)1;
    ASSERT_EQ(test_run_virtual(fail_with, (void *)(intptr_t)0, &r), -EINVAL);
    ASSERT_NULL(r);
    ASSERT_EQ(test_run_virtual(fail_with, (void *)(intptr_t)EIO, &r), -EINVAL);
    ASSERT_EQ(test_run_virtual(fail_with, (void *)(intptr_t)-ECANCELED, &r), -ECANCELED);
    ASSERT_EQ(test_run_virtual(fail_with, (void *)(intptr_t)-EPIPE, &r), -EPIPE);
}

TEST(fail_outside_task_returns_null)
{
    /* corio_fail's documented return value is NULL; outside a task there is
     * nothing to end, and nothing breaks. */
    ASSERT_NULL(corio_fail(-EIO));
    void *r = NULL;
    ASSERT_EQ(corio_run(corio_coro(count, NULL), &r), 0);
    ASSERT_EQ((intptr_t)r, 5);
}

/* ---- A task of another loop: -EXDEV ----------------------------------------- */

static sem_t b_ready, b_go;
static corio_task *b_task;
static int b_await_rc = 1;
static intptr_t b_result;

static void *b_main(void *arg)
{
    (void)arg;
    b_task = corio_create_task(corio_coro(count, NULL));
    sem_post(&b_ready);
    /* block this thread (not a suspension): b_task stays unstarted until
     * the other loop has tried it */
    while (sem_wait(&b_go) != 0)
        ;
    void *r = NULL;
    b_await_rc = corio_await(b_task, &r);
    b_result = (intptr_t)r;
    corio_task_release(b_task);
    return NULL;
}

static void *b_thread(void *arg)
{
    (void)arg;
    int rc = test_run_virtual(b_main, NULL, NULL);
    return (void *)(intptr_t)rc;
}

static void *a_main(void *arg)
{
    (void)arg;
    while (sem_wait(&b_ready) != 0)
        ;
    void *r = (void *)0x77;
    ASSERT_EQ(corio_await(b_task, &r), -EXDEV);
    ASSERT_PTR_EQ(r, (void *)0x77);
    ASSERT_EQ(corio_cancel(b_task), -EXDEV);
    ASSERT_EQ(corio_now_ns(), 0);
    sem_post(&b_go);
    return NULL;
}

TEST(task_of_another_loop_is_exdev)
{
    ASSERT_EQ(sem_init(&b_ready, 0, 0), 0);
    ASSERT_EQ(sem_init(&b_go, 0, 0), 0);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, b_thread, NULL), 0);
    ASSERT_EQ(test_run_virtual(a_main, NULL, NULL), 0);
    void *rc = (void *)1;
    ASSERT_EQ(pthread_join(th, &rc), 0);
    ASSERT_EQ((intptr_t)rc, 0);
    /* neither call touched the task: it ran normally, uncancelled */
    ASSERT_EQ(b_await_rc, 0);
    ASSERT_EQ(b_result, 5);
    ASSERT_EQ(ran, 1);
}

/* ---- One loop per thread, many threads ---------------------------------------- */

static void *sleeper(void *arg)
{
    ASSERT_EQ(corio_sleep_ns((int64_t)(intptr_t)arg), 0);
    return arg;
}

static void *thread_main(void *arg)
{
    intptr_t base = (intptr_t)arg;
    corio_task *t[10];
    for (intptr_t i = 0; i < 10; i++)
        t[i] = corio_create_task(corio_coro(sleeper, (void *)(base + i)));
    intptr_t sum = 0;
    for (int i = 0; i < 10; i++) {
        void *r = NULL;
        ASSERT_EQ(corio_await(t[i], &r), 0);
        sum += (intptr_t)r;
        ASSERT_EQ(corio_task_release(t[i]), 0);
    }
    ASSERT_EQ(corio_now_ns(), base + 9);
    return (void *)sum;
}

static void *run_thread(void *arg)
{
    void *r = NULL;
    int rc = test_run_virtual(thread_main, arg, &r);
    ASSERT_EQ(rc, 0);
    return r;
}

TEST(loops_on_several_threads)
{
    pthread_t th[4];
    for (intptr_t i = 0; i < 4; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, run_thread, (void *)(i * 1000)), 0);
    void *r = NULL;
    ASSERT_EQ(test_run_virtual(thread_main, (void *)(intptr_t)5000, &r), 0);
    ASSERT_EQ((intptr_t)r, 5000 * 10 + 45);
    for (intptr_t i = 0; i < 4; i++) {
        ASSERT_EQ(pthread_join(th[i], &r), 0);
        ASSERT_EQ((intptr_t)r, i * 1000 * 10 + 45);
    }
}
