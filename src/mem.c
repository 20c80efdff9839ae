/* mem.c - a loop's bulk memory on transparent huge pages (see mem.h). */
#include "mem.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define CORIO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORIO_ASAN 1
#endif
#endif
#ifdef CORIO_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) __asan_poison_memory_region((p), (n))
#define UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define CORIO_HAVE_MEMCHECK 1
#endif
#endif

#define HUGE_BYTES ((size_t)2 << 20)
#define CHUNK_FIRST HUGE_BYTES
#define CHUNK_MAX ((size_t)256 << 20)

/* Each chunk's bookkeeping sits in its first 64 bytes. */
struct corio__mem_chunk {
    corio__mem_chunk *next;
    size_t bytes;
};

void corio__mem_init(corio__mem *m)
{
    *m = (corio__mem){0};
    m->next_bytes = CHUNK_FIRST;
    m->advise = -1;
}

void corio__mem_fini(corio__mem *m)
{
    corio__mem_chunk *c = m->chunks;
    while (c) {
        corio__mem_chunk *next = c->next;
        UNPOISON(c, c->bytes); /* the addresses may be mapped again */
        munmap(c, c->bytes);
        c = next;
    }
    corio__mem_init(m);
}

static bool want_huge(corio__mem *m)
{
    if (m->advise < 0) {
        const char *e = getenv("CORIO_HUGEPAGES");
        m->advise = !(e && strcmp(e, "0") == 0);
    }
    return m->advise;
}

/* A 2 MiB-aligned chunk of at least `need` bytes. Huge pages only back
 * aligned 2 MiB ranges, so the mapping is over-sized and trimmed. */
static bool chunk_more(corio__mem *m, size_t need)
{
    size_t bytes = m->next_bytes;
    while (bytes < need + 64)
        bytes *= 2;
    char *raw = mmap(NULL, bytes + HUGE_BYTES, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        return false;
    char *base = (char *)(((uintptr_t)raw + HUGE_BYTES - 1) & ~(uintptr_t)(HUGE_BYTES - 1));
    if (base > raw)
        munmap(raw, (size_t)(base - raw));
    if (base + bytes < raw + bytes + HUGE_BYTES)
        munmap(base + bytes, (size_t)(raw + bytes + HUGE_BYTES - (base + bytes)));
    if (m->chunks && want_huge(m) && madvise(base, bytes, MADV_HUGEPAGE) == 0)
        m->huge += bytes; /* (a kernel without THP says EINVAL: small pages it is) */
    corio__mem_chunk *c = (corio__mem_chunk *)(void *)base;
    c->bytes = bytes;
    c->next = m->chunks;
    m->chunks = c;
    m->mapped += bytes;
    m->carve = base + 64;
    m->carve_end = base + bytes;
    POISON(m->carve, (size_t)(m->carve_end - m->carve));
    if (m->next_bytes < CHUNK_MAX)
        m->next_bytes = bytes * 2;
    return true;
}

void *corio__mem_carve(corio__mem *m, size_t bytes, size_t align)
{
    for (int tries = 0; tries < 2; tries++) {
        if (m->carve) {
            char *p = (char *)(((uintptr_t)m->carve + align - 1) & ~(uintptr_t)(align - 1));
            if (p <= m->carve_end && bytes <= (size_t)(m->carve_end - p)) {
                m->carve = p + bytes;
                UNPOISON(p, bytes);
                return p;
            }
        }
        /* (the old chunk's tail is left unused: requests are small next to chunks) */
        if (!chunk_more(m, bytes + align))
            return NULL;
    }
    return NULL;
}

void *corio__mem_get(corio__mem *m, size_t bytes)
{
    if (bytes == 0 || bytes > CORIO__MEM_MAX)
        return NULL;
    bytes = corio__mem_round(bytes);
    void **head = &m->free[bytes / CORIO__MEM_GRAIN - 1];
    void *p = *head;
    if (p) {
        UNPOISON(p, sizeof(void *));
        *head = *(void **)p;
    } else if (!(p = corio__mem_carve(m, bytes, CORIO__MEM_GRAIN))) {
        return NULL;
    }
    UNPOISON(p, bytes);
#ifdef CORIO_HAVE_MEMCHECK
    VALGRIND_MALLOCLIKE_BLOCK(p, bytes, 0, 0);
#endif
    return p;
}

void corio__mem_put(corio__mem *m, void *p, size_t bytes)
{
    if (!p)
        return;
    bytes = corio__mem_round(bytes);
    void **head = &m->free[bytes / CORIO__MEM_GRAIN - 1];
#ifdef CORIO_HAVE_MEMCHECK
    VALGRIND_FREELIKE_BLOCK(p, 0);
    VALGRIND_MAKE_MEM_UNDEFINED(p, sizeof(void *)); /* the link, and only the link */
#endif
    *(void **)p = *head;
    *head = p;
    POISON(p, bytes);
}
