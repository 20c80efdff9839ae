/* net_bench - corio's network benchmarks: bulk transfer (w5) and memory per idle
 * connection (w6). bench/net.sh runs them with W4 (HTTP hello under wrk) beside the peers.
 *
 * Usage:
 *   net_bench w5 [BYTES] [--backend epoll|io_uring] [--plain] [--full-check]
 *   net_bench w6 [N] [--backend epoll|io_uring] [--server PATH]
 *                    [--server-cmd "CMD ... {port} ..."] [--name NAME] [--settle SECONDS]
 *
 * Prints one JSON line per run to stdout, in corio_bench's format:
 *   {"workload":"w5","runtime":"corio","backend":"io_uring","n":BYTES,"wall_s":..,"rss_kb":..,
 *    "gb_s":..,"chunk":262144,"check":"sampled","words_checked":..}
 *   {"workload":"w6","runtime":"corio","backend":"epoll","n":N,"wall_s":..,"rss_kb":..,
 *    "rss_before_kb":..,"kib_per_conn":..,"server_exit":"exit 0"}
 * Exits 1 on a failed call or a wrong result (a byte lost, a bad response), 2 on bad usage.
 *
 * W5: BYTES (default 1 GiB) through one loopback TCP connection. corio: a writer task sends
 * 256 KiB chunks with corio_send, a reader task corio_recv's into a 256 KiB buffer, both in
 * one loop on one thread (--backend picks the loop's backend; default as corio_run's).
 * --plain: the same with blocking sockets and two threads (write/read loops, one pthread
 * each): what the kernel's loopback can do. The connection is made and accepted before the
 * clock starts; wall_s runs from starting the writer and the reader to both having ended
 * (the reader at EOF: the writer shuts its side down after the last byte). Buffers are
 * allocated and touched before the clock. gb_s = BYTES / wall_s / 1e9; rss_kb = peak RSS.
 * The stream is a known pattern of 64-bit words, word w = the chunk's index where w starts
 * a 256 KiB chunk, else a hash of w's place in its chunk: the writer sends one buffer over
 * and over, changing one word per chunk. The reader checks the byte count, and for every
 * recv the first and last whole word it got and every chunk-start word in it (so a lost,
 * doubled or reordered byte or chunk shows); --full-check checks every byte (slower: it
 * then times the checking too, and says "check":"full").
 *
 * W6: memory per idle keep-alive connection of an HTTP server. The server runs as a child
 * process: by default build/examples/http_hello (next to this program: ../examples/), started
 * as `http_hello 0 [--backend B]`, its port read from the line it prints; or --server-cmd,
 * run with /bin/sh -c "exec CMD" after {port} is replaced by a free port (the command must
 * listen on 127.0.0.1:{port}; a peer from ../shared/peers, say). This process then opens N
 * connections (default 10,000; blocking sockets, one after another), each sends one request
 * and reads its whole response, so the server's per-connection state exists and has run,
 * and is now idle waiting for the next request. rss_before_kb is the server's VmRSS (from
 * /proc/PID/status, plus its child processes': nginx's workers) after one warm-up request
 * on a connection since closed; rss_kb the same once the N connections are open and
 * SETTLE seconds (default 1) have passed; kib_per_conn = (rss_kb - rss_before_kb) / N.
 * wall_s is the time to open the N connections and get their responses. Then a request on
 * every 1,000th connection checks they are still served, the server gets SIGTERM
 * (server_exit: how it ended; http_hello exits 0 after closing the N connections), and
 * the client sockets are closed. RLIMIT_NOFILE's soft limit is raised to the hard one
 * here (the server inherits it); a hard limit below N + 64 is an error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "corio.h"

static const char *g_workload = "?";
static int g_failed;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fail(const char *what, int rc)
{
    fprintf(stderr, "net_bench %s: %s: %s\n", g_workload, what,
            rc < 0 ? strerror(-rc) : "wrong result");
    g_failed = 1;
}

/* s as a JSON string, or null when empty (written into buf). */
static const char *json_str(char *buf, size_t size, const char *s)
{
    if (!s || !*s)
        return "null";
    snprintf(buf, size, "\"%s\"", s);
    return buf;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Raise the soft fd limit to the hard one; returns the limit now in force. */
static long raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY ? LONG_MAX : (long)rl.rlim_cur;
}

/* ==== W5: bulk transfer ================================================================ */
#define CHUNK ((size_t)256 * 1024)
#define WORDS (CHUNK / 8)

static uint64_t g_bytes = (uint64_t)1 << 30;
static int g_full_check;

static inline uint64_t pattern(uint64_t j) /* word j (1..WORDS-1) of every chunk */
{
    return (j + 1) * 0x9E3779B97F4A7C15ull;
}
static inline uint64_t stamp(uint64_t k) /* word 0 of chunk k */
{
    return k ^ 0xC0110C0110C0110Cull;
}
static inline uint64_t expected_word(uint64_t w)
{
    return w % WORDS == 0 ? stamp(w / WORDS) : pattern(w % WORDS);
}
static inline uint8_t expected_byte(uint64_t off)
{
    uint64_t v = expected_word(off / 8);
    uint8_t b[8];
    memcpy(b, &v, 8);
    return b[off % 8];
}

/* The writer's buffer: the pattern, word 0 stamped per chunk as it goes. */
static uint64_t *pattern_buffer(void)
{
    uint64_t *buf = aligned_alloc(4096, CHUNK);
    if (buf)
        for (size_t j = 0; j < WORDS; j++)
            buf[j] = pattern(j);
    return buf;
}

/* What the reader has seen so far. */
typedef struct rx_check {
    uint64_t off;     /* bytes received */
    uint64_t words;   /* words compared */
    uint64_t bad_at;  /* first offset found wrong, if bad */
    int bad;
} rx_check;

static inline int word_ok(rx_check *c, const unsigned char *buf, uint64_t w)
{
    uint64_t v;
    memcpy(&v, buf + (w * 8 - c->off), 8);
    c->words++;
    if (v == expected_word(w))
        return 1;
    if (!c->bad++)
        c->bad_at = w * 8;
    return 0;
}

/* Check the n bytes just received into buf (they start at stream offset c->off). */
static void check_chunk(rx_check *c, const unsigned char *buf, size_t n)
{
    uint64_t end = c->off + n;
    if (end > g_bytes) {
        if (!c->bad++)
            c->bad_at = g_bytes;
    }
    uint64_t w0 = (c->off + 7) / 8, w1 = end / 8; /* whole words: [w0, w1) */
    if (g_full_check) {
        for (uint64_t o = c->off; o < end && o < w0 * 8; o++)
            if (buf[o - c->off] != expected_byte(o) && !c->bad++)
                c->bad_at = o;
        for (uint64_t w = w0; w < w1; w++)
            word_ok(c, buf, w);
        for (uint64_t o = w1 * 8 > c->off ? w1 * 8 : c->off; o < end; o++)
            if (buf[o - c->off] != expected_byte(o) && !c->bad++)
                c->bad_at = o;
    } else if (w0 < w1) {
        word_ok(c, buf, w0);
        if (w1 - 1 > w0)
            word_ok(c, buf, w1 - 1);
        for (uint64_t w = (w0 + WORDS - 1) / WORDS * WORDS; w < w1; w += WORDS)
            word_ok(c, buf, w);
    }
    c->off = end;
}

static int check_report(const rx_check *c)
{
    if (c->bad) {
        fprintf(stderr, "net_bench w5: %d wrong words or bytes; the first at offset %" PRIu64 "\n",
                c->bad, c->bad_at);
        return -1;
    }
    if (c->off != g_bytes) {
        fprintf(stderr, "net_bench w5: received %" PRIu64 " bytes, sent %" PRIu64 "\n", c->off,
                g_bytes);
        return -1;
    }
    return 0;
}

/* ---- W5, corio: two tasks in one loop ---- */
typedef struct w5_state {
    int wfd, rfd;
    uint64_t *wbuf;
    unsigned char *rbuf;
    rx_check rx;
    int wrc, rrc;
    double wall_s;
    char backend[16];
} w5_state;

static void *w5_writer(void *arg)
{
    w5_state *s = arg;
    uint64_t left = g_bytes;
    for (uint64_t k = 0; left > 0; k++) {
        s->wbuf[0] = stamp(k);
        size_t len = left < CHUNK ? (size_t)left : CHUNK;
        const char *p = (const char *)s->wbuf;
        left -= len;
        while (len > 0) {
            ssize_t n = corio_send(s->wfd, p, len, 0);
            if (n < 0) {
                s->wrc = (int)n;
                return corio_fail((int)n);
            }
            p += n;
            len -= (size_t)n;
        }
    }
    shutdown(s->wfd, SHUT_WR); /* EOF for the reader */
    return NULL;
}

static void *w5_reader(void *arg)
{
    w5_state *s = arg;
    for (;;) {
        ssize_t n = corio_recv(s->rfd, s->rbuf, CHUNK, 0);
        if (n == 0)
            return NULL;
        if (n < 0) {
            s->rrc = (int)n;
            return corio_fail((int)n);
        }
        check_chunk(&s->rx, s->rbuf, (size_t)n);
    }
}

static void *w5_corio_main(void *arg)
{
    w5_state *s = arg;
    snprintf(s->backend, sizeof s->backend, "%s", corio_backend());
    int lfd = corio_tcp_listen("127.0.0.1", 0, 1, 0);
    if (lfd < 0) {
        fail("corio_tcp_listen", lfd);
        return NULL;
    }
    s->wfd = corio_tcp_connect("127.0.0.1", corio_socket_port(lfd));
    s->rfd = s->wfd < 0 ? s->wfd : corio_accept(lfd, NULL, NULL);
    corio_close(lfd);
    if (s->wfd < 0 || s->rfd < 0) {
        fail("connect/accept", s->wfd < 0 ? s->wfd : s->rfd);
        return NULL;
    }
    double t0 = now_s();
    corio_task *r = corio_create_task(corio_coro(w5_reader, s));
    corio_task *w = corio_create_task(corio_coro(w5_writer, s));
    if (!r || !w) {
        fail("corio_create_task", -ENOMEM);
        return NULL; /* corio_run cancels what was made */
    }
    int wrc = corio_await(w, NULL), rrc = corio_await(r, NULL);
    s->wall_s = now_s() - t0;
    corio_task_release(w);
    corio_task_release(r);
    if (wrc < 0)
        fail("the writer (corio_send)", wrc);
    if (rrc < 0)
        fail("the reader (corio_recv)", rrc);
    corio_close(s->wfd);
    corio_close(s->rfd);
    return NULL;
}

/* ---- W5, plain: blocking sockets, a thread each ---- */
static void *w5_plain_writer(void *arg)
{
    w5_state *s = arg;
    uint64_t left = g_bytes;
    for (uint64_t k = 0; left > 0; k++) {
        s->wbuf[0] = stamp(k);
        size_t len = left < CHUNK ? (size_t)left : CHUNK;
        const char *p = (const char *)s->wbuf;
        left -= len;
        while (len > 0) {
            ssize_t n = write(s->wfd, p, len);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                s->wrc = -errno;
                return NULL;
            }
            p += n;
            len -= (size_t)n;
        }
    }
    shutdown(s->wfd, SHUT_WR);
    return NULL;
}

static void *w5_plain_reader(void *arg)
{
    w5_state *s = arg;
    for (;;) {
        ssize_t n = read(s->rfd, s->rbuf, CHUNK);
        if (n == 0)
            return NULL;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            s->rrc = -errno;
            return NULL;
        }
        check_chunk(&s->rx, s->rbuf, (size_t)n);
    }
}

/* A connected loopback TCP pair of blocking sockets: 0 or -errno. */
static int plain_pair(int *wfd, int *rfd)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        return -errno;
    int rc = 0;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 1) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) < 0)
        rc = -errno;
    *wfd = rc ? -1 : socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!rc && (*wfd < 0 || connect(*wfd, (struct sockaddr *)&a, sizeof a) < 0))
        rc = -errno;
    *rfd = rc ? -1 : accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (!rc && *rfd < 0)
        rc = -errno;
    close(lfd);
    return rc;
}

static int w5_plain(w5_state *s)
{
    int rc = plain_pair(&s->wfd, &s->rfd);
    if (rc < 0) {
        fail("making the connection", rc);
        return rc;
    }
    pthread_t tw, tr;
    double t0 = now_s();
    if (pthread_create(&tr, NULL, w5_plain_reader, s) != 0 ||
        pthread_create(&tw, NULL, w5_plain_writer, s) != 0) {
        fail("pthread_create", -EAGAIN);
        exit(1);
    }
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    s->wall_s = now_s() - t0;
    if (s->wrc < 0)
        fail("the writer (write)", s->wrc);
    if (s->rrc < 0)
        fail("the reader (read)", s->rrc);
    close(s->wfd);
    close(s->rfd);
    return 0;
}

static int w5(int plain, int backend)
{
    w5_state s = {.wfd = -1, .rfd = -1};
    s.wbuf = pattern_buffer();
    s.rbuf = aligned_alloc(4096, CHUNK);
    if (!s.wbuf || !s.rbuf) {
        fail("aligned_alloc", -ENOMEM);
        return 1;
    }
    memset(s.rbuf, 0, CHUNK);
    if (plain) {
        w5_plain(&s);
    } else {
        corio_loop_opts opts = {.backend = backend};
        int rc = corio_run_opts(corio_coro(w5_corio_main, &s), NULL, &opts);
        if (rc < 0)
            fail("corio_run", rc);
    }
    if (g_failed || check_report(&s.rx) < 0)
        return 1;
    char bk[32];
    printf("{\"workload\":\"w5\",\"runtime\":\"%s\",\"backend\":%s,\"n\":%" PRIu64
           ",\"wall_s\":%.6f,\"rss_kb\":%ld,\"gb_s\":%.3f,\"chunk\":%zu,\"check\":\"%s\","
           "\"words_checked\":%" PRIu64 "}\n",
           plain ? "plain-threads" : "corio", json_str(bk, sizeof bk, s.backend), g_bytes,
           s.wall_s, peak_rss_kb(),
           s.wall_s > 0 ? (double)g_bytes / s.wall_s / 1e9 : 0.0, CHUNK,
           g_full_check ? "full" : "sampled", s.rx.words);
    free(s.wbuf);
    free(s.rbuf);
    return 0;
}

/* ==== W6: memory per idle connection ========================================================= */
static const char REQUEST[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
static const char BODY[] = "Hello, World!";

typedef struct server {
    pid_t pid;
    int port;
    int out;            /* http_hello's stdout (kept open: it prints again when it stops) */
    char backend[16];
} server;

/* Read one line from fd within timeout seconds: its length, or -1. */
static int read_line(int fd, char *line, size_t size, double timeout)
{
    size_t len = 0;
    double end = now_s() + timeout;
    while (len + 1 < size) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ms = (int)((end - now_s()) * 1000);
        if (ms <= 0 || poll(&p, 1, ms) <= 0)
            return -1;
        ssize_t n = read(fd, line + len, 1);
        if (n <= 0)
            return -1;
        if (line[len] == '\n')
            break;
        len++;
    }
    line[len] = 0;
    return (int)len;
}

/* Start `http_hello 0 [--backend B]`, learn its port from its first line. */
static int start_corio_server(server *s, const char *path, const char *backend)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    s->pid = fork();
    if (s->pid < 0)
        return -errno;
    if (s->pid == 0) {
        dup2(p[1], 1);
        if (backend)
            execl(path, path, "0", "--backend", backend, (char *)NULL);
        else
            execl(path, path, "0", (char *)NULL);
        fprintf(stderr, "net_bench w6: cannot run %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(p[1]);
    s->out = p[0];
    char line[256];
    if (read_line(s->out, line, sizeof line, 10) < 0) {
        fprintf(stderr, "net_bench w6: %s printed no 'listening on' line\n", path);
        return -EIO;
    }
    const char *at = strstr(line, "listening on ");
    const char *colon = at ? strrchr(line, ':') : NULL;
    const char *bk = strstr(line, "(backend ");
    if (!colon || sscanf(colon + 1, "%d", &s->port) != 1 || s->port <= 0) {
        fprintf(stderr, "net_bench w6: cannot read the port in: %s\n", line);
        return -EIO;
    }
    if (bk)
        sscanf(bk, "(backend %15[^)])", s->backend);
    return 0;
}

/* A port free on 127.0.0.1 just now (the kernel's pick for a bind to port 0). */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int connect_to(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

/* One request on fd, and its whole response (up to the body): 0 or -errno (-EPROTO: no body). */
static int request(int fd)
{
    if (send(fd, REQUEST, sizeof REQUEST - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof REQUEST - 1))
        return errno ? -errno : -EIO;
    char buf[1024];
    size_t len = 0;
    while (len < sizeof buf - 1) {
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            return n == 0 ? -ECONNRESET : -errno;
        len += (size_t)n;
        buf[len] = 0;
        char *b = strstr(buf, BODY);
        if (b && b + sizeof BODY - 1 == buf + len)
            return strncmp(buf, "HTTP/1.1 200", 12) == 0 ? 0 : -EPROTO;
    }
    return -EPROTO;
}

/* Start CMD (with {port} replaced) through /bin/sh -c "exec ...", wait until it accepts. */
static int start_cmd_server(server *s, const char *cmd)
{
    s->port = free_port();
    if (s->port < 0)
        return -EADDRNOTAVAIL;
    char port[16], full[4096];
    snprintf(port, sizeof port, "%d", s->port);
    size_t len = (size_t)snprintf(full, sizeof full, "exec ");
    for (const char *c = cmd; *c && len < sizeof full - 16;) {
        if (strncmp(c, "{port}", 6) == 0) {
            len += (size_t)snprintf(full + len, sizeof full - len, "%s", port);
            c += 6;
        } else {
            full[len++] = *c++;
        }
    }
    full[len] = 0;
    s->out = -1;
    s->pid = fork();
    if (s->pid < 0)
        return -errno;
    if (s->pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 1);
        execl("/bin/sh", "sh", "-c", full, (char *)NULL);
        _exit(127);
    }
    for (double end = now_s() + 30; now_s() < end;) {
        int fd = connect_to(s->port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            fprintf(stderr, "net_bench w6: the server command ended: %s\n", full);
            s->pid = -1;
            return -ECHILD;
        }
        usleep(50 * 1000);
    }
    fprintf(stderr, "net_bench w6: nothing listens on port %d 30 s after: %s\n", s->port, full);
    return -ETIMEDOUT;
}

static long vmrss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* VmRSS of pid and its child processes (nginx: master and worker). */
static long server_rss_kb(pid_t pid)
{
    long total = vmrss_kb(pid);
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && total >= 0 && (e = readdir(d))) {
        char path[300], buf[512];
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *rp = strrchr(buf, ')');
        int ppid;
        if (rp && sscanf(rp + 2, "%*c %d", &ppid) == 1 && ppid == pid) {
            long kb = vmrss_kb(atoi(e->d_name));
            if (kb > 0)
                total += kb;
        }
    }
    if (d)
        closedir(d);
    return total;
}

/* SIGTERM, then up to 15 s for it to end (SIGKILL after): "exit N", "signal N" or "killed". */
static void stop_server(server *s, char *how, size_t size)
{
    int status;
    snprintf(how, size, "unknown");
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    for (double end = now_s() + 15; now_s() < end;) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid) {
            if (WIFEXITED(status))
                snprintf(how, size, "exit %d", WEXITSTATUS(status));
            else
                snprintf(how, size, "signal %d", WTERMSIG(status));
            s->pid = -1;
            return;
        }
        usleep(20 * 1000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    snprintf(how, size, "killed (no exit 15 s after SIGTERM)");
    s->pid = -1;
}

static int w6(long n, const char *server_path, const char *cmd, const char *name,
              const char *backend, double settle)
{
    long limit = raise_nofile();
    if (limit < n + 64) {
        fprintf(stderr, "net_bench w6: the fd limit is %ld (hard limit): too low for %ld client "
                        "connections (need %ld); raise the hard limit (ulimit -Hn, limits.conf)\n",
                limit, n, n + 64);
        return 1;
    }
    server s = {.pid = -1, .out = -1};
    int rc = cmd ? start_cmd_server(&s, cmd) : start_corio_server(&s, server_path, backend);
    if (rc < 0) {
        fail("starting the server", rc);
        if (s.pid > 0) {
            char how[64];
            stop_server(&s, how, sizeof how);
        }
        return 1;
    }
    int *fds = malloc((size_t)(n ? n : 1) * sizeof *fds);
    long nopen = 0;
    char how[64] = "";
    /* warm up: one request on a connection of its own, then the baseline */
    int fd = connect_to(s.port);
    rc = fd < 0 ? fd : request(fd);
    if (fd >= 0)
        close(fd);
    if (rc < 0 || !fds) {
        fail("the warm-up request", rc < 0 ? rc : -ENOMEM);
        goto out;
    }
    usleep(300 * 1000);
    long rss0 = server_rss_kb(s.pid);
    double t0 = now_s();
    for (; nopen < n; nopen++) {
        fd = connect_to(s.port);
        rc = fd < 0 ? fd : request(fd);
        if (rc < 0) {
            if (fd >= 0)
                close(fd);
            fprintf(stderr, "net_bench w6: connection %ld: %s\n", nopen + 1,
                    rc == -EPROTO ? "bad response" : strerror(-rc));
            g_failed = 1;
            goto out;
        }
        fds[nopen] = fd;
    }
    double wall = now_s() - t0;
    usleep((useconds_t)(settle * 1e6));
    long rss1 = server_rss_kb(s.pid);
    for (long i = 0; i < n; i += 1000) { /* still served? */
        rc = request(fds[i]);
        if (rc < 0) {
            fprintf(stderr, "net_bench w6: connection %ld no longer served: %s\n", i + 1,
                    rc == -EPROTO ? "bad response" : strerror(-rc));
            g_failed = 1;
            goto out;
        }
    }
    if (rss0 < 0 || rss1 < 0) {
        fail("reading the server's VmRSS", -ESRCH);
        goto out;
    }
    stop_server(&s, how, sizeof how);
    char bk[32]; /* a corio server says which backend it runs; others: null */
    printf("{\"workload\":\"w6\",\"runtime\":\"%s\",\"backend\":%s,\"n\":%ld,\"wall_s\":%.6f,"
           "\"rss_kb\":%ld,\"rss_before_kb\":%ld,\"kib_per_conn\":%.3f,\"server_exit\":\"%s\"}\n",
           name, json_str(bk, sizeof bk, s.backend), n, wall, rss1, rss0,
           n ? (double)(rss1 - rss0) / (double)n : 0.0, how);
    fflush(stdout);
out:
    if (s.pid > 0)
        stop_server(&s, how, sizeof how);
    if (s.out >= 0) { /* what the server said as it stopped */
        char line[256];
        while (read_line(s.out, line, sizeof line, 1) >= 0)
            fprintf(stderr, "  server: %s\n", line);
        close(s.out);
    }
    for (long i = 0; i < nopen; i++)
        close(fds[i]);
    free(fds);
    if (!cmd && strcmp(how, "exit 0") != 0) {
        fprintf(stderr, "net_bench w6: the server did not exit cleanly on SIGTERM (%s)\n", how);
        g_failed = 1;
    }
    return g_failed;
}

/* ==== main ======================================================================================= */
static void usage(void)
{
    fprintf(stderr,
            "usage: net_bench w5 [BYTES] [--backend epoll|io_uring] [--plain] [--full-check]\n"
            "       net_bench w6 [N] [--backend epoll|io_uring] [--server PATH]\n"
            "                        [--server-cmd \"CMD {port}\"] [--name NAME] [--settle S]\n");
    exit(2);
}

/* The http_hello built beside this program: DIR/../examples/http_hello. */
static const char *default_server(const char *argv0)
{
    static char path[PATH_MAX + 32];
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        snprintf(self, sizeof self, "%s", argv0);
    else
        self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(self, sizeof self, ".");
    snprintf(path, sizeof path, "%s/../examples/http_hello", self);
    return path;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    g_workload = argv[1];
    int is_w5 = strcmp(g_workload, "w5") == 0, is_w6 = strcmp(g_workload, "w6") == 0;
    if (!is_w5 && !is_w6)
        usage();
    long n = is_w6 ? 10000 : -1;
    int plain = 0, backend = CORIO_BACKEND_DEFAULT;
    const char *backend_name = NULL, *server_path = NULL, *cmd = NULL, *name = NULL;
    double settle = 1.0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (strcmp(a, "--backend") == 0 && more) {
            backend_name = argv[++i];
            if (strcmp(backend_name, "epoll") == 0)
                backend = CORIO_BACKEND_EPOLL;
            else if (strcmp(backend_name, "io_uring") == 0)
                backend = CORIO_BACKEND_IO_URING;
            else
                usage();
        } else if (is_w5 && strcmp(a, "--plain") == 0) {
            plain = 1;
        } else if (is_w5 && strcmp(a, "--full-check") == 0) {
            g_full_check = 1;
        } else if (is_w6 && strcmp(a, "--server") == 0 && more) {
            server_path = argv[++i];
        } else if (is_w6 && strcmp(a, "--server-cmd") == 0 && more) {
            cmd = argv[++i];
        } else if (is_w6 && strcmp(a, "--name") == 0 && more) {
            name = argv[++i];
        } else if (is_w6 && strcmp(a, "--settle") == 0 && more) {
            char *end;
            settle = strtod(argv[++i], &end);
            if (*end || settle < 0 || settle > 600)
                usage();
        } else if (a[0] >= '0' && a[0] <= '9') {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(a, &end, 10);
            if (errno || *end || (is_w5 && v == 0) || (is_w6 && v > 1000000))
                usage();
            if (is_w5)
                g_bytes = v;
            else
                n = (long)v;
        } else {
            usage();
        }
    }
    if (is_w5)
        return w5(plain, backend);
    if (cmd && (server_path || backend_name)) {
        fprintf(stderr, "net_bench w6: --server-cmd runs its own server: no --server or --backend\n");
        return 2;
    }
    return w6(n, server_path ? server_path : default_server(argv[0]), cmd,
              name ? name : cmd ? "external" : "corio", backend_name, settle);
}
