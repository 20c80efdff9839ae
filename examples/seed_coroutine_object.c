/* The seed's first point: calling a coroutine function runs nothing; it
 * makes a coroutine object that an event loop runs later.
 *
 *   print(multiply_by_two(21))
 *   coro = coroutine_multiply_by_two(21)
 *   print('coroutine object created, nothing ran yet')
 *   print(asyncio.run(coro))
 */
#include <corio.h>
#include <stdint.h>
#include <stdio.h>

static void *coroutine_multiply_by_two(void *arg) /* async def */
{
    long number = (long)(intptr_t)arg;
    printf("multiplying %ld\n", number);
    return (void *)(intptr_t)(number * 2);
}

static long multiply_by_two(long number) /* a plain function: runs at once */
{
    return number * 2;
}

int main(void)
{
    printf("%ld\n", multiply_by_two(21));
    corio_coro_t coro = corio_coro(coroutine_multiply_by_two, (void *)21);
    printf("coroutine object created, nothing ran yet\n");
    void *result;
    int rc = corio_run(coro, &result);
    if (rc < 0) {
        fprintf(stderr, "corio_run: %d\n", rc);
        return 1;
    }
    printf("%ld\n", (long)(intptr_t)result);
    return 0;
}
