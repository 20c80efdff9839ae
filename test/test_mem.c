/* test_mem.c - a loop's bulk memory on its own (src/mem.c): size classes
 * reused LIFO, blocks that never overlap, carving aligned across chunks, and
 * the huge-page advice (first chunk without, later ones with, none when
 * CORIO_HUGEPAGES=0). */
#include "mem.h"
#include "test.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TEST(mem_get_rounds_to_classes_and_reuses_lifo)
{
    corio__mem m;
    corio__mem_init(&m);
    ASSERT_EQ(corio__mem_round(1), 16);
    ASSERT_EQ(corio__mem_round(100), 112);
    ASSERT_EQ(corio__mem_round(112), 112);
    char *a = corio__mem_get(&m, 100), *b = corio__mem_get(&m, 100);
    ASSERT_NOT_NULL(a);
    ASSERT_NOT_NULL(b);
    ASSERT_NE((intptr_t)a, (intptr_t)b);
    ASSERT_EQ((uintptr_t)a % 16, 0);
    ASSERT_EQ((uintptr_t)b % 16, 0);
    memset(a, 0xaa, 112);
    memset(b, 0xbb, 112);
    corio__mem_put(&m, a, 100);
    corio__mem_put(&m, b, 112); /* the same class */
    char *c = corio__mem_get(&m, 96); /* another class: a fresh block */
    ASSERT_NOT_NULL(c);
    ASSERT(c != a && c != b);
    ASSERT_PTR_EQ(corio__mem_get(&m, 112), b); /* warmest first */
    ASSERT_PTR_EQ(corio__mem_get(&m, 101), a);
    corio__mem_put(&m, a, 101);
    corio__mem_put(&m, b, 112);
    corio__mem_put(&m, c, 96);
    corio__mem_put(&m, NULL, 64); /* nothing */
    corio__mem_fini(&m);
}

TEST(mem_get_refuses_sizes_out_of_range)
{
    corio__mem m;
    corio__mem_init(&m);
    ASSERT_NULL(corio__mem_get(&m, 0));
    ASSERT_NULL(corio__mem_get(&m, CORIO__MEM_MAX + 1));
    ASSERT_EQ(m.mapped, 0); /* and mapped nothing for them */
    void *p = corio__mem_get(&m, CORIO__MEM_MAX);
    ASSERT_NOT_NULL(p);
    memset(p, 1, CORIO__MEM_MAX);
    corio__mem_put(&m, p, CORIO__MEM_MAX);
    corio__mem_fini(&m);
}

/* Blocks of every class, interleaved, each filled with its own byte: none
 * overwrites another, across chunk boundaries too. */
TEST(mem_blocks_never_overlap)
{
    enum { N = 20000 };
    corio__mem m;
    corio__mem_init(&m);
    static unsigned char *p[N];
    static size_t len[N];
    unsigned seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        len[i] = 1 + (seed >> 8) % CORIO__MEM_MAX;
        p[i] = corio__mem_get(&m, len[i]);
        ASSERT_NOT_NULL(p[i]);
        memset(p[i], i & 0xff, len[i]);
        if (i % 3 == 2) { /* give some back, so later gets reuse them */
            corio__mem_put(&m, p[i - 1], len[i - 1]);
            p[i - 1] = NULL;
        }
    }
    ASSERT_GT(m.mapped, (size_t)4 << 20); /* more than one chunk */
    for (int i = 0; i < N; i++) {
        if (!p[i])
            continue;
        for (size_t k = 0; k < len[i]; k++)
            if (p[i][k] != (unsigned char)(i & 0xff))
                test__fail(__FILE__, __LINE__, "block %d (%zu bytes) overwritten at byte %zu", i, len[i], k);
        corio__mem_put(&m, p[i], len[i]);
    }
    corio__mem_fini(&m);
    ASSERT_EQ(m.mapped, 0);
}

TEST(mem_carve_aligns_across_chunks)
{
    corio__mem m;
    corio__mem_init(&m);
    char *prev = NULL;
    for (int i = 0; i < 200; i++) { /* 12.5 MiB of 64 KiB slabs: several chunks */
        char *s = corio__mem_carve(&m, 64 * 1024, 64 * 1024);
        ASSERT_NOT_NULL(s);
        ASSERT_EQ((uintptr_t)s % (64 * 1024), 0);
        ASSERT(s != prev);
        s[0] = s[64 * 1024 - 1] = (char)i;
        prev = s;
    }
    ASSERT_GE(m.mapped, (size_t)200 * 64 * 1024);
    char *big = corio__mem_carve(&m, (size_t)300 << 20, 16); /* more than a chunk's most */
    ASSERT_NOT_NULL(big);
    big[0] = big[((size_t)300 << 20) - 1] = 1;
    corio__mem_fini(&m);
}

/* THP is compiled into the kernel when this directory exists; madvise then
 * accepts MADV_HUGEPAGE whatever the current policy. */
static bool kernel_has_thp(void)
{
    return access("/sys/kernel/mm/transparent_hugepage", F_OK) == 0;
}

TEST(mem_advises_huge_pages_after_the_first_chunk)
{
    corio__mem m;
    corio__mem_init(&m);
    void *small = corio__mem_get(&m, 64);
    ASSERT_NOT_NULL(small);
    ASSERT_EQ(m.huge, 0); /* a small program stays on small pages */
    ASSERT_NOT_NULL(corio__mem_carve(&m, (size_t)3 << 20, 64));
    ASSERT_GT(m.mapped, (size_t)2 << 20);
    if (kernel_has_thp())
        ASSERT_EQ(m.huge, m.mapped - ((size_t)2 << 20));
    corio__mem_put(&m, small, 64);
    corio__mem_fini(&m);
}

TEST(mem_huge_pages_off_by_environment)
{
    const char *old = getenv("CORIO_HUGEPAGES");
    char *saved = old ? strdup(old) : NULL;
    setenv("CORIO_HUGEPAGES", "0", 1);
    corio__mem m;
    corio__mem_init(&m);
    ASSERT_NOT_NULL(corio__mem_carve(&m, (size_t)8 << 20, 64));
    ASSERT_GT(m.mapped, (size_t)8 << 20);
    ASSERT_EQ(m.huge, 0);
    corio__mem_fini(&m);
    if (saved) {
        setenv("CORIO_HUGEPAGES", saved, 1);
        free(saved);
    } else {
        unsetenv("CORIO_HUGEPAGES");
    }
}
