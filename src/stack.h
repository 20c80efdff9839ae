/* stack.h - task stacks carved from a few large mappings.
 *
 * A pool hands out stacks of one size. Stacks are carved in order from big
 * MAP_NORESERVE mappings (so a million stacks cost tens of VMAs, not two
 * million: vm.max_map_count is 65530 on a stock kernel), reused LIFO while
 * still warm, and never zeroed: only the pages a task really touches become
 * resident. Each mapping has one PROT_NONE guard page below its first slot.
 *
 * Overflow is caught without a guard page per stack: the last 16 bytes of
 * each slot hold a canary for the slot just above it, i.e. the word an
 * overflowing stack writes first. Those bytes lie in the top page of the
 * lower stack, which its own task has already touched, so the canary costs
 * no memory. The task layer checks it, and the stack pointer, on every switch.
 * A runaway overflow reaches unmapped memory or a guard page and is caught by
 * the SIGSEGV handler (debug.c). What neither catches: a bounded overflow that
 * skips the canary word (a big frame written only at its far end) and returns
 * before the task next switches; it can corrupt the slot below unseen.
 *
 *   mapping: [guard][book-keeping|c0][slot 0       |c1][slot 1       |c2] ...
 *   slot i:  [lo_i ... stack grows down ... top_i][c(i+1): canary of slot i+1]
 */
#ifndef CORIO_STACK_H
#define CORIO_STACK_H

#include <stddef.h>
#include <stdint.h>

typedef struct corio__stack_map corio__stack_map;

typedef struct corio__stack_pool {
    size_t size;              /* usable bytes per stack */
    size_t slot;              /* size + 16 canary bytes, page-rounded */
    char *carve, *carve_end;  /* unused part of the newest mapping */
    void *free;               /* released stacks, LIFO */
    corio__stack_map *maps;
    size_t map_bytes_next;    /* mappings grow geometrically */
    size_t in_use;
} corio__stack_pool;

#define CORIO__STACK_CANARY_BYTES 16

/* size: usable bytes, already validated by the caller. */
void corio__stack_pool_init(corio__stack_pool *p, size_t size);
/* Unmap everything, including stacks still handed out. */
void corio__stack_pool_fini(corio__stack_pool *p);
/* A stack: returns its top (just past its highest usable byte, 16-byte
 * aligned, not page aligned: the canary above it takes 16 bytes), or NULL if
 * the address space or the kernel says no. */
char *corio__stack_get_new(corio__stack_pool *p);

/* The free list is threaded through the word just below each free stack's
 * top: get and put are on every task's start and end, so they are inline. */
static inline char *corio__stack_get(corio__stack_pool *p)
{
    char *top = p->free;
    if (__builtin_expect(top == NULL, 0))
        return corio__stack_get_new(p);
    p->free = *(void **)(void *)(top - 16);
    p->in_use++;
    return top;
}

static inline void corio__stack_put(corio__stack_pool *p, char *top)
{
    *(void **)(void *)(top - 16) = p->free;
    p->free = top;
    p->in_use--;
}

/* The lowest usable address of the stack whose top is `top`. */
static inline char *corio__stack_lo(const corio__stack_pool *p, char *top)
{
    return top - p->size;
}

/* Address and expected value of the canary below the stack at `top`
 * (NULL for the first slot of a mapping, which has the guard page). */
static inline uint64_t *corio__stack_canary(const corio__stack_pool *p, char *top)
{
    return (uint64_t *)(void *)(top - p->slot);
}
static inline uint64_t corio__stack_canary_value(const uint64_t *where)
{
    return 0xC0210DEADC0210ULL ^ (uint64_t)(uintptr_t)where;
}

#endif
