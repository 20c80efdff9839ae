/* mem.h - a loop's bulk memory: task slabs and compact tasks' side blocks and
 * images, on transparent huge pages.
 *
 * Why: what a million tasks cost is mostly page faults, and on a virtual
 * machine a fault on a 4 KiB page can cost 10 µs or more (docs/internals.md
 * measured 12 µs under PVM, against 0.3 µs per 4 KiB when the same memory
 * comes in 2 MiB pages). So the objects tasks pile up come from chunks the
 * kernel is asked to back with huge pages (MADV_HUGEPAGE), not from malloc.
 *
 * Chunks are 2 MiB-aligned MAP_NORESERVE mappings that double from 2 MiB to
 * 256 MiB. The first stays on small pages, so a small program pays for what
 * it touches and not for 2 MiB; later ones get the advice. CORIO_HUGEPAGES=0
 * in the environment turns the advice off (RSS then grows by 4 KiB steps).
 * Memory goes back to the kernel when the loop closes, not before.
 *
 * Two ways to take from it:
 *   corio__mem_carve  bytes never given back on their own (task slabs);
 *   corio__mem_get/put blocks of up to CORIO__MEM_MAX bytes in 16-byte size
 *                     classes, each with a LIFO free list threaded through
 *                     its free blocks. put must name the size get was given.
 * Under ASan, free and uncarved memory is poisoned; under valgrind, get and
 * put are malloc and free to memcheck, so leaks and use after put show. */
#ifndef CORIO_MEM_H
#define CORIO_MEM_H

#include <stddef.h>
#include <stdint.h>

#define CORIO__MEM_GRAIN 16
#define CORIO__MEM_MAX ((size_t)4096)
#define CORIO__MEM_CLASSES (CORIO__MEM_MAX / CORIO__MEM_GRAIN)

typedef struct corio__mem_chunk corio__mem_chunk;

typedef struct corio__mem {
    char *carve, *carve_end;   /* unused part of the newest chunk */
    corio__mem_chunk *chunks;
    size_t next_bytes;         /* the next chunk's size */
    size_t mapped;             /* bytes in all chunks */
    size_t huge;               /* of which advised to huge pages */
    int advise;                /* -1: not yet read from the environment */
    void *free[CORIO__MEM_CLASSES];
} corio__mem;

void corio__mem_init(corio__mem *m);
/* Unmap every chunk: whatever was carved or got is gone. */
void corio__mem_fini(corio__mem *m);
/* `bytes` (a multiple of 16) aligned to `align` (a power of two up to 2 MiB),
 * or NULL if the kernel has no more address space to give. */
void *corio__mem_carve(corio__mem *m, size_t bytes, size_t align);
/* A block of `bytes` (1..CORIO__MEM_MAX), 16-byte aligned, or NULL. */
void *corio__mem_get(corio__mem *m, size_t bytes);
void corio__mem_put(corio__mem *m, void *p, size_t bytes);

/* The size a request of `bytes` really gets (its class's). */
static inline size_t corio__mem_round(size_t bytes)
{
    return (bytes + CORIO__MEM_GRAIN - 1) & ~(size_t)(CORIO__MEM_GRAIN - 1);
}

#endif
