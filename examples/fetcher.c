/* fetcher: the seed's three fetch_data calls made real.
 *
 * A local server (corio_start_server on 127.0.0.1, port 0) answers each
 * request line "GET <id>\n" after DELAY seconds with "data for ID <id>\n".
 * The client fetches three resources over TCP, first one after another
 * (about 3 x DELAY), then as three concurrent tasks (about 1 x DELAY): the
 * seed's lesson with a real socket in place of asyncio.sleep.
 *
 *   build/examples/fetcher [DELAY_SECONDS]     (default 1; the times go to stdout)
 */
#include <corio.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double delay = 1.0;
static int port;

/* The server side: one task per connection, as asyncio's start_server. */
static int slow_handler(corio_stream *s, void *arg)
{
    (void)arg;
    char line[64];
    ssize_t n;
    while ((n = corio_stream_readline(s, line, sizeof line - 1)) > 0) {
        line[n] = '\0';
        int id = 0;
        if (sscanf(line, "GET %d", &id) != 1)
            return -EPROTO;
        int rc = corio_sleep(delay); /* the server takes its time */
        if (rc < 0)
            return rc;
        char reply[64];
        int len = snprintf(reply, sizeof reply, "data for ID %d\n", id);
        if ((rc = corio_stream_write(s, reply, (size_t)len)) < 0 || (rc = corio_stream_drain(s)) < 0)
            return rc;
    }
    return n < 0 ? (int)n : 0;
}

/* async def fetch_data(data_id): a real request now. */
static void *fetch_data(void *arg)
{
    int data_id = (int)(intptr_t)arg;
    printf("Fetching data for ID %d\n", data_id);
    corio_stream *s;
    int rc = corio_open_connection("127.0.0.1", port, &s, NULL);
    if (rc < 0)
        return corio_fail(rc);
    char req[32], reply[64];
    int len = snprintf(req, sizeof req, "GET %d\n", data_id);
    ssize_t n = corio_stream_write(s, req, (size_t)len);
    if (n == 0)
        n = corio_stream_readline(s, reply, sizeof reply - 1);
    rc = corio_stream_wait_closed(s);
    if (n <= 0)
        return corio_fail(n < 0 ? (int)n : -ECONNRESET);
    reply[n] = '\0';
    printf("Finished fetching data for ID %d: %s", data_id, reply);
    return rc < 0 ? corio_fail(rc) : NULL;
}

static void *main_coro(void *arg)
{
    (void)arg;
    corio_server *srv;
    int rc = corio_start_server(&srv, "127.0.0.1", 0, slow_handler, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "fetcher: cannot start the server: %s\n", strerror(-rc));
        return corio_fail(rc);
    }
    port = corio_server_port(srv);
    printf("server on 127.0.0.1:%d answers after %.2f s (backend %s)\n", port, delay,
           corio_backend());

    printf("\n-- sequential: await fetch_data(1); await fetch_data(2); await fetch_data(3)\n");
    double t0 = corio_now();
    for (intptr_t id = 1; id <= 3 && rc == 0; id++)
        rc = corio_await(corio_coro(fetch_data, (void *)id), NULL);
    double seq = corio_now() - t0;
    printf("sequential: %.2f s (about 3 x %.2f)\n", seq, delay);

    printf("\n-- concurrent: three tasks, then await them all\n");
    t0 = corio_now();
    corio_coro_t coros[3] = {corio_coro(fetch_data, (void *)1), corio_coro(fetch_data, (void *)2),
                             corio_coro(fetch_data, (void *)3)};
    if (rc == 0)
        rc = corio_gather(coros, 3, NULL);
    double conc = corio_now() - t0;
    printf("concurrent: %.2f s (about 1 x %.2f)\n", conc, delay);

    corio_server_close(srv);
    int wrc = corio_server_wait_closed(srv);
    if (rc == 0)
        rc = wrc;
    if (rc < 0) {
        fprintf(stderr, "fetcher: %s\n", strerror(-rc));
        return corio_fail(rc);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        char *end;
        delay = strtod(argv[1], &end);
        if (*end || !(delay >= 0) || delay > 3600) {
            fprintf(stderr, "usage: fetcher [DELAY_SECONDS]\n");
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    return corio_run(corio_coro(main_coro, NULL), NULL) < 0;
}
