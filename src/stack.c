/* stack.c - task stacks carved from a few large mappings (see stack.h).
 *
 * Concrete layout of a mapping holding n slots of `slot` bytes (P = page):
 *   base                 bookkeeping (the list of mappings)
 *   base+P               guard page (PROT_NONE)
 *   base+2P+i*slot       canary of slot i (16 bytes), then slot i's stack
 *   base+2P+(i+1)*slot   top of slot i (page aligned) = canary of slot i+1
 */
#include "stack.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CORIO_HAVE_VALGRIND 1
#endif
#endif

struct corio__stack_map {
    corio__stack_map *next;
    size_t bytes;
};

#define MAP_FIRST ((size_t)8 << 20)
#define MAP_MAX ((size_t)8 << 30)

static size_t page_size(void)
{
    static size_t page;
    if (!page)
        page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

void corio__stack_pool_init(corio__stack_pool *p, size_t size)
{
    size_t page = page_size();
    *p = (corio__stack_pool){0};
    p->slot = (size + CORIO__STACK_CANARY_BYTES + page - 1) & ~(page - 1);
    p->size = p->slot - CORIO__STACK_CANARY_BYTES;
    p->map_bytes_next = MAP_FIRST;
}

void corio__stack_pool_fini(corio__stack_pool *p)
{
    corio__stack_map *m = p->maps;
    while (m) {
        corio__stack_map *next = m->next;
        munmap(m, m->bytes);
        m = next;
    }
    p->maps = NULL;
    p->free = NULL;
    p->carve = p->carve_end = NULL;
}

/* A new mapping: a bookkeeping page (the list node), a guard page, then whole
 * slots. Three VMAs per mapping, and mappings double in size up to 8 GiB. */
static int map_more(corio__stack_pool *p)
{
    size_t page = page_size();
    size_t want = p->map_bytes_next;
    size_t slots = want / p->slot;
    if (slots < 16)
        slots = 16;
    size_t bytes = 2 * page + slots * p->slot;
    char *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return -1;
    /* page 0: the mapping's bookkeeping; page 1: the guard below slot 0 */
    if (mprotect(base + page, page, PROT_NONE) != 0) {
        munmap(base, bytes);
        return -1;
    }
    corio__stack_map *m = (corio__stack_map *)base;
    m->bytes = bytes;
    m->next = p->maps;
    p->maps = m;
    p->carve = base + 2 * page;
    p->carve_end = base + bytes;
    if (p->map_bytes_next < MAP_MAX)
        p->map_bytes_next *= 2;
    return 0;
}

uint64_t *corio__stack_canary(const corio__stack_pool *p, char *top)
{
    return (uint64_t *)(void *)(top - p->slot);
}

char *corio__stack_get(corio__stack_pool *p)
{
    char *top;
    if (p->free) {
        top = p->free;
        p->free = *(void **)(void *)(top - 16);
    } else {
        if (p->carve + p->slot > p->carve_end && map_more(p) != 0)
            return NULL;
        char *slot = p->carve;
        p->carve += p->slot;
        top = slot + p->slot;
        uint64_t *canary = (uint64_t *)(void *)slot; /* = top of the slot below */
        *canary = corio__stack_canary_value(canary);
#ifdef CORIO_HAVE_VALGRIND
        VALGRIND_STACK_REGISTER(slot + CORIO__STACK_CANARY_BYTES, top);
#endif
    }
    p->in_use++;
    return top;
}

void corio__stack_put(corio__stack_pool *p, char *top)
{
    *(void **)(void *)(top - 16) = p->free;
    p->free = top;
    p->in_use--;
}
