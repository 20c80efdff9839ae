/* The seed's "Inefficient" program: each fetch waits for the previous one,
 * so three 3 s fetches take about 9 s.
 *
 *   async def main():
 *       await fetch_data(1)
 *       await fetch_data(2)
 *       await fetch_data(3)
 */
#include <corio.h>
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
    for (long id = 1; id <= 3; id++) {
        int rc = corio_await(corio_coro(fetch_data, (void *)id), NULL); /* runs inline */
        if (rc < 0)
            return corio_fail(rc);
    }
    fprintf(stderr, "took %.2f s\n", corio_now() - start);
    return NULL;
}

int main(void)
{
    return corio_run(corio_coro(main_coro, NULL), NULL) < 0;
}
