/* The seed's first program ("Running"): await coroutines one after another.
 * fetch_data takes 2 s, compute_result 1 s: about 3 s in all.
 *
 *   async def process_data():
 *       data = await fetch_data(1)
 *       result = await compute_result(5)
 */
#include <corio.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *fetch_data(void *arg) /* async def fetch_data(data_id) -> str */
{
    long data_id = (long)(intptr_t)arg;
    printf("Fetching data for ID %ld\n", data_id);
    int rc = corio_sleep(2); /* simulates a delay like a network request */
    if (rc < 0)
        return corio_fail(rc);
    printf("Data fetched for ID %ld\n", data_id);
    char *data = malloc(32);
    if (!data)
        return corio_fail(-ENOMEM);
    snprintf(data, 32, "Data %ld", data_id);
    return data;
}

static void *compute_result(void *arg) /* async def compute_result(value) -> int */
{
    long value = (long)(intptr_t)arg;
    int rc = corio_sleep(1); /* simulates a delay like a computation */
    if (rc < 0)
        return corio_fail(rc);
    return (void *)(intptr_t)(value * 2);
}

static void *process_data(void *arg)
{
    (void)arg;
    double start = corio_now();
    void *data, *result;
    int rc = corio_await(corio_coro(fetch_data, (void *)1), &data); /* 2 s */
    if (rc < 0)
        return corio_fail(rc);
    rc = corio_await(corio_coro(compute_result, (void *)5), &result); /* 1 s */
    if (rc < 0) {
        free(data);
        return corio_fail(rc);
    }
    printf("Result: %ld\n", (long)(intptr_t)result);
    printf("Processed Data: %s\n", (char *)data);
    free(data);
    fprintf(stderr, "took %.2f s\n", corio_now() - start);
    return NULL;
}

int main(void)
{
    return corio_run(corio_coro(process_data, NULL), NULL) < 0; /* asyncio.run(process_data()) */
}
