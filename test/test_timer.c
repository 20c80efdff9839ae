/* test_timer.c - the timer lanes on their own (src/timer.c): order by
 * (deadline, sequence) across the FIFO lane and the heap, removal from
 * either, and callbacks that arm or disarm while timers fire. */
#include "test.h"
#include "timer.h"

#include <stdlib.h>

typedef struct rec {
    corio__timer t;
    int id;
} rec;

static int fired[4096], nfired;

static void record(corio__timer *t)
{
    fired[nfired++] = ((rec *)(void *)t)->id;
}

TEST(timer_equal_deadlines_fire_in_arming_order)
{
    corio__timers ts;
    corio__timers_init(&ts);
    rec r[5];
    nfired = 0;
    for (int i = 0; i < 5; i++) {
        r[i].id = i;
        ASSERT_EQ(corio__timers_add(&ts, &r[i].t, 100, record), 0);
    }
    ASSERT_EQ(corio__timers_run_due(&ts, 99), 0);
    ASSERT_EQ(corio__timers_run_due(&ts, 100), 5);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(fired[i], i);
    ASSERT(corio__timers_empty(&ts));
    corio__timers_fini(&ts);
}

TEST(timer_lanes_merge_in_deadline_order)
{
    corio__timers ts;
    corio__timers_init(&ts);
    /* growing deadlines go to the FIFO lane, the earlier ones to the heap */
    int64_t dl[] = {10, 20, 30, 5, 25, 15, 30, 1, 40, 20};
    rec r[10];
    nfired = 0;
    for (int i = 0; i < 10; i++) {
        r[i].id = i;
        ASSERT_EQ(corio__timers_add(&ts, &r[i].t, dl[i], record), 0);
    }
    ASSERT_EQ(r[0].t.lane, CORIO__TIMER_FIFO);
    ASSERT_EQ(r[3].t.lane, CORIO__TIMER_HEAP);
    ASSERT_EQ(corio__timers_run_due(&ts, 1000), 10);
    /* expected: by deadline, ties by arming order */
    int want[] = {7, 3, 0, 5, 1, 9, 4, 2, 6, 8};
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(fired[i], want[i]);
    corio__timers_fini(&ts);
}

TEST(timer_remove_from_either_lane)
{
    corio__timers ts;
    corio__timers_init(&ts);
    rec r[6];
    int64_t dl[] = {10, 20, 30, 5, 7, 6};
    nfired = 0;
    for (int i = 0; i < 6; i++) {
        r[i].id = i;
        ASSERT_EQ(corio__timers_add(&ts, &r[i].t, dl[i], record), 0);
    }
    corio__timers_remove(&ts, &r[1].t); /* FIFO middle */
    corio__timers_remove(&ts, &r[4].t); /* heap */
    corio__timers_remove(&ts, &r[4].t); /* twice: harmless */
    ASSERT_EQ(ts.count, 4);
    ASSERT_EQ(corio__timers_first(&ts)->deadline, 5);
    ASSERT_EQ(corio__timers_run_due(&ts, 100), 4);
    int want[] = {3, 5, 0, 2};
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(fired[i], want[i]);
    corio__timers_fini(&ts);
}

/* Random arming and disarming against a reference: every timer fires once,
 * in (deadline, sequence) order, never before its deadline. */
TEST(timer_random_against_reference)
{
    enum { N = 3000 };
    static rec r[N];
    static int alive[N];
    unsigned seed = 12345;
    corio__timers ts;
    corio__timers_init(&ts);
    nfired = 0;
    int n = 0;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245 + 12345;
        int64_t d = (seed >> 8) % 500;
        r[i].id = i;
        ASSERT_EQ(corio__timers_add(&ts, &r[i].t, d, record), 0);
        alive[i] = 1;
        n++;
        if ((seed >> 4) % 5 == 0) { /* disarm a random earlier one */
            int j = (int)((seed >> 12) % (unsigned)(i + 1));
            if (alive[j]) {
                corio__timers_remove(&ts, &r[j].t);
                alive[j] = 0;
                n--;
            }
        }
    }
    ASSERT_EQ((int)ts.count, n);
    int64_t last_d = -1;
    uint64_t last_seq = 0;
    for (int64_t now = 0; now < 500 + 7; now += 7) { /* deadlines are below 500 */
        int before = nfired;
        corio__timers_run_due(&ts, now);
        for (int k = before; k < nfired; k++) {
            rec *f = &r[fired[k]];
            ASSERT(alive[f->id]);
            alive[f->id] = 0;
            ASSERT_LE(f->t.deadline, now);
            ASSERT(f->t.deadline > last_d || (f->t.deadline == last_d && f->t.seq > last_seq));
            last_d = f->t.deadline;
            last_seq = f->t.seq;
        }
    }
    ASSERT_EQ(nfired, n);
    ASSERT(corio__timers_empty(&ts));
    corio__timers_fini(&ts);
}

static corio__timers *chain_ts;
static rec chain[3];

static void arm_next(corio__timer *t)
{
    record(t);
    rec *r = (rec *)(void *)t;
    if (r->id < 2) /* a callback arming another due timer: it fires in the same pass */
        corio__timers_add(chain_ts, &chain[r->id + 1].t, t->deadline, arm_next);
}

TEST(timer_callback_may_arm_more)
{
    corio__timers ts;
    corio__timers_init(&ts);
    chain_ts = &ts;
    nfired = 0;
    for (int i = 0; i < 3; i++)
        chain[i].id = i;
    corio__timers_add(&ts, &chain[0].t, 50, arm_next);
    ASSERT_EQ(corio__timers_run_due(&ts, 50), 3);
    ASSERT_EQ(fired[2], 2);
    corio__timers_fini(&ts);
}
