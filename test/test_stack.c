/* test_stack.c - the stack pool on its own (src/stack.c): stacks are
 * distinct, reused LIFO, carved from few mappings, and each has its canary
 * in the top bytes of the slot below it. */
#include "stack.h"
#include "test.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0, c;
    if (!f)
        return -1;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Whether addr lies in one of this process's mappings (/proc/self/maps). */
static bool is_mapped(const void *addr)
{
    FILE *f = fopen("/proc/self/maps", "r");
    ASSERT_NOT_NULL(f);
    uintptr_t lo, hi, a = (uintptr_t)addr;
    bool in = false;
    char line[512];
    while (!in && fgets(line, sizeof line, f))
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2 && a >= lo && a < hi)
            in = true;
    fclose(f);
    return in;
}

TEST(stack_get_put_reuses_lifo)
{
    corio__stack_pool p;
    corio__stack_pool_init(&p, 64 * 1024);
    ASSERT_GE(p.size, 64 * 1024);
    char *a = corio__stack_get(&p), *b = corio__stack_get(&p);
    ASSERT_NOT_NULL(a);
    ASSERT_NOT_NULL(b);
    ASSERT_NE((intptr_t)a, (intptr_t)b);
    ASSERT_EQ(((uintptr_t)a) % 16, 0);
    corio__stack_put(&p, a);
    corio__stack_put(&p, b);
    ASSERT_PTR_EQ(corio__stack_get(&p), b); /* warmest first */
    ASSERT_PTR_EQ(corio__stack_get(&p), a);
    ASSERT_EQ(p.in_use, 2);
    corio__stack_pool_fini(&p);
}

TEST(stack_canaries_sit_below_each_stack)
{
    corio__stack_pool p;
    corio__stack_pool_init(&p, 16 * 1024);
    char *s[40];
    for (int i = 0; i < 40; i++) {
        s[i] = corio__stack_get(&p);
        ASSERT_NOT_NULL(s[i]);
        uint64_t *c = corio__stack_canary(&p, s[i]);
        ASSERT_EQ(*c, corio__stack_canary_value(c));
        /* just below the usable stack, never inside it */
        ASSERT_LE((uintptr_t)(c + 2), (uintptr_t)corio__stack_lo(&p, s[i]));
    }
    /* stacks never overlap: every usable range is disjoint from the others */
    for (int i = 0; i < 40; i++)
        for (int j = 0; j < 40; j++)
            if (i != j)
                ASSERT(s[i] <= corio__stack_lo(&p, s[j]) || corio__stack_lo(&p, s[i]) >= s[j]);
    /* the whole usable range is writable */
    memset(corio__stack_lo(&p, s[7]), 0xab, p.size);
    ASSERT_EQ(*corio__stack_canary(&p, s[8]), corio__stack_canary_value(corio__stack_canary(&p, s[8])));
    corio__stack_pool_fini(&p);
}

TEST(stack_many_stacks_few_mappings)
{
    corio__stack_pool p;
    corio__stack_pool_init(&p, 64 * 1024);
    int before = count_maps();
    int n = 100000 / test_scale();
    static char *sample[128];
    int nsample = 0;
    for (int i = 0; i < n; i++) {
        char *st = corio__stack_get(&p);
        ASSERT_NOT_NULL(st);
        if (i % (n / 100) == 0 && nsample < 128)
            sample[nsample++] = st;
    }
    int after = count_maps();
    /* 100k stacks of 68 KiB: 6.5 GiB in doubling mappings, a few dozen VMAs */
    ASSERT_LT(after - before, 64);
    corio__stack_pool_fini(&p);
    /* fini unmapped them all: no sampled stack lies in a mapping any more */
    for (int i = 0; i < nsample; i++)
        ASSERT(!is_mapped(sample[i] - 1));
    /* (valgrind maps memory of its own meanwhile: the count is exact only without it) */
    if (!test_under_valgrind())
        ASSERT_LE(count_maps(), before + 2);
}
