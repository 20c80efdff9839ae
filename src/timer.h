/* timer.h - the loop's timers, ordered by (deadline, sequence).
 *
 * Two lanes hold them. Most programs arm timers whose deadlines only grow
 * (the same timeout or sleep from many tasks): those go to a FIFO lane, where
 * arming and firing cost O(1). A timer that would break the lane's order goes
 * to a 4-ary min-heap. The earliest timer is the smaller of the two heads, so
 * the order is exactly (deadline, sequence) either way: equal deadlines fire
 * in the order they were armed. A timer record is owned by its caller (it
 * usually lives on the waiting task's stack); nothing here allocates but the
 * heap's array. */
#ifndef CORIO_TIMER_H
#define CORIO_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct corio__timer corio__timer;
typedef void corio__timer_fn(corio__timer *t);

struct corio__timer {
    int64_t deadline;            /* loop clock, ns */
    uint64_t seq;                /* arming order, breaks deadline ties */
    corio__timer_fn *fire;
    corio__timer *prev, *next;   /* FIFO lane links */
    uint32_t heap_index;         /* slot in the heap while in it */
    uint8_t lane;                /* TIMER_NONE, TIMER_HEAP or TIMER_FIFO */
};

enum { CORIO__TIMER_NONE, CORIO__TIMER_HEAP, CORIO__TIMER_FIFO };

typedef struct corio__timers {
    corio__timer **heap;
    size_t heap_len, heap_cap;
    corio__timer *fifo_head, *fifo_tail;
    uint64_t next_seq;
    size_t count;
} corio__timers;

void corio__timers_init(corio__timers *ts);
void corio__timers_fini(corio__timers *ts);
/* Arm t to fire at deadline. -ENOMEM if the heap cannot grow (nothing armed). */
int corio__timers_add(corio__timers *ts, corio__timer *t, int64_t deadline, corio__timer_fn *fire);
/* Disarm t; harmless if it is not armed. */
void corio__timers_remove(corio__timers *ts, corio__timer *t);
/* The earliest timer, or NULL. */
corio__timer *corio__timers_first(const corio__timers *ts);
/* Fire, in order, every timer whose deadline is <= now. Returns how many. */
size_t corio__timers_run_due(corio__timers *ts, int64_t now);

static inline int corio__timers_empty(const corio__timers *ts) { return ts->count == 0; }

#endif
