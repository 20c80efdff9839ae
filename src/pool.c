/* pool.c - blocking calls on worker threads: corio_to_thread (asyncio's
 * to_thread) and corio_getaddrinfo (loop.getaddrinfo).
 *
 * Some calls have no non-blocking form (getaddrinfo, a slow library, a
 * regular file on epoll); run on the loop's thread they would stall every
 * task. Here they run on one process-wide pool of worker threads shared by
 * all loops, as in libuv: made on first use, CORIO_THREADPOOL_SIZE threads
 * at most (default 4), started one by one as jobs find every started thread
 * busy, and kept until the process exits. Jobs wait in one FIFO under a
 * mutex. At exit the idle workers are stopped and joined (so that valgrind
 * sees no thread's memory left behind); if a job is still running user code
 * then, the workers are left to die with the process instead.
 *
 * A job is malloc'd and belongs to the pool from the moment it is queued
 * until its completion has run on the loop's thread: the worker runs fn and
 * posts the job back to its loop (corio__post, the only thing a worker does
 * to a loop); there, outside any task, job_done() ends the loop's remote
 * count, hands the result to the waiting task (or, if the task stopped
 * waiting, gives it to `discard`) and frees the job. The waiting task keeps
 * its side of the handoff (the result it was handed, whether it gave up) in
 * a record on its own stack, and never touches the job after it resumes, so
 * the job has one owner at any time and the result exactly one taker:
 *   - completed: job_done() stores the result in the record, wakes the
 *     task, frees the job; the task returns 0 and the result.
 *   - cancelled while waiting: the wait's cancel callback detaches the task
 *     from the job (abandoned); the task returns -ECANCELED at once;
 *     job_done() later calls discard(result) and frees the job.
 *   - cancelled after job_done() woke it but before it resumed: the
 *     suspension still reports -ECANCELED (corio__deliver_cancel), so the
 *     task itself calls discard on the result it was handed, which nobody
 *     else holds. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

#define POOL_DEFAULT_SIZE 4
#define POOL_MAX_SIZE 256

typedef struct pool_wait pool_wait;

typedef struct job {
    struct job *next;          /* the pool's FIFO */
    corio__soon soon;          /* posted back to the loop when fn has returned */
    corio_loop *loop;
    corio_blocking_fn *fn;
    void *arg;
    void *result;              /* written by the worker before it posts */
    void (*discard)(void *result, void *arg);
    pool_wait *waiter;         /* the task's record; NULL once it gave up */
} job;

/* The waiting task's side, on its stack (a compact task's: in its side block). */
struct pool_wait {
    corio__wait w;
    job *job;                  /* valid only while the task waits */
    void *result;              /* what done() handed over */
    bool abandoned;            /* the task gave up: the job discards its result */
};
_Static_assert(sizeof(pool_wait) <= CORIO__RECORD_BYTES, "a compact task's record holds a job wait");

/* ---- the pool: process-wide, guarded by mu ------------------------------------------ */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* a job was queued, or stopping was set */
    job *head, *tail;
    unsigned queued;           /* jobs in the FIFO */
    unsigned idle;             /* workers waiting on cv */
    unsigned in_fn;            /* workers running a job's fn: all they do outside mu */
    unsigned threads;          /* workers started */
    unsigned size;             /* the most it may start; 0 until first use */
    bool stopping;             /* the process is exiting: workers leave */
    pthread_t tids[POOL_MAX_SIZE];
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* CORIO_THREADPOOL_SIZE, clamped to 1..256; unset or not a number: 4. */
static unsigned pool_size_from_env(void)
{
    const char *s = getenv("CORIO_THREADPOOL_SIZE");
    if (!s || !*s)
        return POOL_DEFAULT_SIZE;
    char *end;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (*end != '\0')
        return POOL_DEFAULT_SIZE;
    if (errno == ERANGE)
        n = n < 0 ? 1 : POOL_MAX_SIZE;
    return n < 1 ? 1 : n > POOL_MAX_SIZE ? POOL_MAX_SIZE : (unsigned)n;
}

/* A child of fork has none of the workers (only the forking thread goes
 * on), and the mutex may have been held by one of them: start afresh. Jobs
 * queued or running at the fork are the parent's; the child does not see
 * them complete. */
static void pool_atfork_child(void)
{
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.cv, NULL);
    pool.head = pool.tail = NULL;
    pool.queued = pool.idle = pool.in_fn = pool.threads = 0;
    pool.stopping = false;
}

static void pool_atfork_register(void)
{
    pthread_atfork(NULL, NULL, pool_atfork_child);
}

static void *worker_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!pool.head && !pool.stopping) {
            pool.idle++;
            pthread_cond_wait(&pool.cv, &pool.mu);
            pool.idle--;
        }
        if (pool.stopping)
            break;
        job *j = pool.head;
        pool.head = j->next;
        if (!pool.head)
            pool.tail = NULL;
        pool.queued--;
        pool.in_fn++;
        pthread_mutex_unlock(&pool.mu);
        j->result = j->fn(j->arg);
        pthread_mutex_lock(&pool.mu);
        pool.in_fn--;
        /* Posted under mu, so that in_fn == 0 means no worker is busy at all
         * (see pool_shutdown). The job may be freed from here on: hands off. */
        corio__post(j->loop, &j->soon);
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

/* Start one more worker, with every signal blocked (they are the loops'
 * threads' business). Called with mu held. 0 or -errno. */
static int worker_start(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&pool.tids[pool.threads], NULL, worker_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -rc;
    pool.threads++;
    return 0;
}

/* At exit (or when the library is unloaded): stop the workers and join
 * them, which frees what each thread holds (its TLS, glibc's resolver
 * state), when none is running a job. One that is (a job that blocks, or
 * exit called from fn itself) would keep the process from exiting: then
 * the workers are left as they are. Jobs still queued are dropped: the
 * process is going away. */
__attribute__((destructor)) static void pool_shutdown(void)
{
    pthread_mutex_lock(&pool.mu);
    unsigned n = pool.threads;
    if (n == 0 || pool.in_fn > 0) {
        pthread_mutex_unlock(&pool.mu);
        return;
    }
    pool.stopping = true; /* and no worker starts after this */
    pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    for (unsigned i = 0; i < n; i++)
        pthread_join(pool.tids[i], NULL);
}

/* Queue a job, starting a worker when none is free to take it. -EAGAIN (and
 * nothing queued) only when there is no worker at all and none could start
 * (with at least one, the job simply waits its turn), or the process exits. */
static int pool_submit(job *j)
{
    static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
    pthread_once(&atfork_once, pool_atfork_register);
    pthread_mutex_lock(&pool.mu);
    if (pool.stopping) {
        pthread_mutex_unlock(&pool.mu);
        return -EAGAIN;
    }
    if (pool.size == 0)
        pool.size = pool_size_from_env();
    if (pool.queued + 1 > pool.idle && pool.threads < pool.size) {
        int rc = worker_start();
        if (rc < 0 && pool.threads == 0) {
            pthread_mutex_unlock(&pool.mu);
            return -EAGAIN;
        }
    }
    j->next = NULL;
    if (pool.tail)
        pool.tail->next = j;
    else
        pool.head = j;
    pool.tail = j;
    pool.queued++;
    pthread_cond_signal(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    return 0;
}

/* ---- the loop's side ----------------------------------------------------------------- */

/* On the loop's thread, at the start of a turn, outside any task. */
static void job_done(corio_loop *l, corio__soon *s)
{
    job *j = container_of(s, job, soon);
    corio__remote_end(l);
    if (j->waiter) {
        j->waiter->result = j->result;
        corio__wake(l, &j->waiter->w, 0);
    } else if (j->discard) {
        j->discard(j->result, j->arg); /* nobody will read it */
    }
    free(j);
}

/* The task stops waiting (cancel, expired scope): the job goes on alone. */
static void job_abandon(corio__wait *w)
{
    pool_wait *pw = container_of(w, pool_wait, w);
    pw->job->waiter = NULL;
    pw->abandoned = true;
}

/* *queued: whether the job reached the pool, after which a -ECANCELED
 * means discard gets (or got) the result. */
static int to_thread(corio_blocking_fn *fn, void *arg, void **result,
                     void (*discard)(void *result, void *arg), bool *queued)
{
    *queued = false;
    if (!fn)
        return -EINVAL;
    corio_loop *l;
    corio_task *self = corio__self(&l);
    if (!self)
        return -EPERM;
    /* A task already cancelled does not start a job it would abandon at once. */
    int rc = corio__interrupt_pending(self);
    if (rc < 0)
        return rc;
    job *j = malloc(sizeof *j);
    if (!j)
        return -ENOMEM;
    pool_wait local, *pw = corio__record(self, &local); /* job_done writes into it */
    *pw = (pool_wait){.w = {.cancel = job_abandon, .what = "a worker thread"}, .job = j};
    *j = (job){.soon = {.run = job_done}, .loop = l, .fn = fn, .arg = arg, .discard = discard,
               .waiter = pw};
    corio__remote_begin(l); /* the loop stays open and awake until job_done */
    rc = pool_submit(j);
    if (rc < 0) {
        corio__remote_end(l);
        free(j);
        return rc;
    }
    *queued = true;
    rc = corio__suspend(l, self, &pw->w);
    if (rc == 0) {
        if (result)
            *result = pw->result;
    } else if (!pw->abandoned && discard) {
        discard(pw->result, arg); /* woken with the result, then cancelled before it resumed */
    }
    return rc;
}

int corio_to_thread_discard(corio_blocking_fn *fn, void *arg, void **result,
                            void (*discard)(void *result, void *arg))
{
    bool queued;
    return to_thread(fn, arg, result, discard, &queued);
}

int corio_to_thread(corio_blocking_fn *fn, void *arg, void **result)
{
    return corio_to_thread_discard(fn, arg, result, NULL);
}

/* ---- getaddrinfo ---------------------------------------------------------------------- */

/* One lookup: private copies of the inputs (the caller's may be gone when a
 * cancelled lookup finishes), and what getaddrinfo gave. The worker returns
 * it as its result; whoever ends up with it frees it. */
typedef struct gai_job {
    char *host, *service;      /* NULL or copies */
    struct addrinfo hints;
    bool has_hints;
    int rc;                    /* getaddrinfo's EAI_* code */
    int err;                   /* errno, for EAI_SYSTEM */
    struct addrinfo *res;
} gai_job;

static void *gai_run(void *arg)
{
    gai_job *g = arg;
    errno = 0;
    g->rc = getaddrinfo(g->host, g->service, g->has_hints ? &g->hints : NULL, &g->res);
    g->err = errno;
    return g;
}

static void gai_free(gai_job *g)
{
    free(g->host);
    free(g->service);
    free(g);
}

static void gai_discard(void *result, void *arg)
{
    (void)arg;
    gai_job *g = result;
    if (g->rc == 0)
        freeaddrinfo(g->res);
    gai_free(g);
}

static int gai_errno(int rc, int err)
{
    switch (rc) {
    case 0: return 0;
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
        return -ENOENT;
    case EAI_AGAIN: return -EAGAIN;
    case EAI_SERVICE:
    case EAI_FAMILY:
    case EAI_SOCKTYPE:
    case EAI_BADFLAGS: return -EINVAL;
    case EAI_MEMORY: return -ENOMEM;
    case EAI_SYSTEM: return err > 0 ? -err : -EIO;
    default: return -EIO;
    }
}

/* A service that is all digits (what AI_NUMERICSERV demands). */
static bool numeric(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static char *dup_or_null(const char *s, bool *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

int corio_getaddrinfo(const char *host, const char *service, const struct addrinfo *hints,
                      struct addrinfo **res)
{
    if (!res || (!host && !service))
        return -EINVAL;
    /* glibc calls this EAI_NONAME ("no such name"); it is a bad argument */
    if (hints && (hints->ai_flags & AI_NUMERICSERV) && service && !numeric(service))
        return -EINVAL;
    corio_loop *l;
    if (!corio__self(&l))
        return -EPERM;
    gai_job *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    bool failed = false;
    g->host = dup_or_null(host, &failed);
    g->service = dup_or_null(service, &failed);
    if (failed) {
        gai_free(g);
        return -ENOMEM;
    }
    if (hints) {
        /* only the fields getaddrinfo reads from hints; the rest must be 0 */
        g->hints.ai_flags = hints->ai_flags;
        g->hints.ai_family = hints->ai_family;
        g->hints.ai_socktype = hints->ai_socktype;
        g->hints.ai_protocol = hints->ai_protocol;
        g->has_hints = true;
    }
    bool queued;
    int rc = to_thread(gai_run, g, NULL, gai_discard, &queued);
    if (rc < 0) {
        if (!queued)
            gai_free(g); /* never reached the pool */
        return rc;       /* else gai_discard has it, or will */
    }
    rc = gai_errno(g->rc, g->err);
    if (rc == 0)
        *res = g->res;
    gai_free(g);
    return rc;
}
