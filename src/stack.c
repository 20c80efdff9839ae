/* stack.c - task stacks carved from a few large mappings (see stack.h).
 *
 * Concrete layout of a mapping holding n slots of `slot` bytes (P = page):
 *   base                 guard page (PROT_NONE)
 *   base+P               bookkeeping (the list of mappings); its last 16
 *                        bytes are slot 0's canary
 *   S_i = base+2P+i*slot slot i: its stack spans [S_i, S_i + slot - 16), and
 *                        its last 16 bytes are slot i+1's canary, in the
 *                        page slot i's own frames already touch
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
    char *base;
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
        munmap(m->base, m->bytes);
        m = next;
    }
    p->maps = NULL;
    p->free = NULL;
    p->carve = p->carve_end = NULL;
}

/* A new mapping: a guard page, a bookkeeping page, then whole slots. Two VMAs
 * per mapping, and mappings double in size up to 8 GiB. */
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
    if (mprotect(base, page, PROT_NONE) != 0) {
        munmap(base, bytes);
        return -1;
    }
    corio__stack_map *m = (corio__stack_map *)(void *)(base + page);
    m->base = base;
    m->bytes = bytes;
    m->next = p->maps;
    p->maps = m;
    p->carve = base + 2 * page;
    p->carve_end = base + bytes;
    if (p->map_bytes_next < MAP_MAX)
        p->map_bytes_next *= 2;
    return 0;
}

/* A stack never used before, carved from the newest mapping. */
char *corio__stack_get_new(corio__stack_pool *p)
{
    if (p->carve + p->slot > p->carve_end && map_more(p) != 0)
        return NULL;
    char *lo = p->carve;
    p->carve += p->slot;
    char *top = lo + p->size;
    uint64_t *canary = corio__stack_canary(p, top); /* = the top of the slot below */
    *canary = corio__stack_canary_value(canary);
#ifdef CORIO_HAVE_VALGRIND
    VALGRIND_STACK_REGISTER(lo, top);
#endif
    p->in_use++;
    return top;
}
