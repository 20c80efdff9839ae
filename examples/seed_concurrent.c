/* The seed's "Efficient" program: three tasks run concurrently, so three
 * 3 s fetches take about 3 s, not 9.
 *
 *   task1 = asyncio.create_task(fetch_data(1))   ...
 *   await task1; await task2; await task3
 */
#include <corio.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

static void *fetch_data(void *arg)
{
    long data_id = (long)(intptr_t)arg;
    printf("Fetching data for ID %ld\n", data_id);
    int rc = corio_sleep(3); /* simulates waiting for a response from a server */
    if (rc < 0)
        return corio_fail(rc);
    printf("Finished fetching data for ID %ld\n", data_id);
    return NULL;
}

static void *main_coro(void *arg)
{
    (void)arg;
    double start = corio_now();
    /* Create tasks for concurrent execution */
    corio_task *task1 = corio_create_task(corio_coro(fetch_data, (void *)1));
    corio_task *task2 = corio_create_task(corio_coro(fetch_data, (void *)2));
    corio_task *task3 = corio_create_task(corio_coro(fetch_data, (void *)3));
    if (!task1 || !task2 || !task3)
        return corio_fail(-ENOMEM);
    /* Await all tasks */
    int rc = corio_await(task1, NULL);
    if (rc == 0)
        rc = corio_await(task2, NULL);
    if (rc == 0)
        rc = corio_await(task3, NULL);
    if (rc < 0)
        return corio_fail(rc);
    fprintf(stderr, "took %.2f s\n", corio_now() - start);
    return NULL;
}

int main(void)
{
    return corio_run(corio_coro(main_coro, NULL), NULL) < 0;
}
