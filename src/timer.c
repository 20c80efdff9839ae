/* timer.c - timers by (deadline, sequence): a FIFO lane for deadlines that
 * only grow, a 4-ary min-heap for the rest (see timer.h). */
#include "timer.h"

#include <errno.h>
#include <stdlib.h>

void corio__timers_init(corio__timers *ts)
{
    *ts = (corio__timers){0};
}

void corio__timers_fini(corio__timers *ts)
{
    free(ts->heap);
    *ts = (corio__timers){0};
}

static int timer_before(const corio__timer *a, const corio__timer *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

/* ---- the heap: 4 children per node keeps it shallow (log4 n levels) ---- */

static void heap_place(corio__timers *ts, size_t i, corio__timer *t)
{
    ts->heap[i] = t;
    t->heap_index = (uint32_t)i;
}

static void heap_sift_up(corio__timers *ts, size_t i, corio__timer *t)
{
    while (i > 0) {
        size_t parent = (i - 1) / 4;
        if (!timer_before(t, ts->heap[parent]))
            break;
        heap_place(ts, i, ts->heap[parent]);
        i = parent;
    }
    heap_place(ts, i, t);
}

static void heap_sift_down(corio__timers *ts, size_t i, corio__timer *t)
{
    size_t n = ts->heap_len;
    for (;;) {
        size_t first = 4 * i + 1, best = i;
        corio__timer *min = t;
        for (size_t c = first; c < first + 4 && c < n; c++)
            if (timer_before(ts->heap[c], min)) {
                min = ts->heap[c];
                best = c;
            }
        if (best == i)
            break;
        heap_place(ts, i, min);
        i = best;
    }
    heap_place(ts, i, t);
}

static int heap_push(corio__timers *ts, corio__timer *t)
{
    if (ts->heap_len == ts->heap_cap) {
        size_t cap = ts->heap_cap ? 2 * ts->heap_cap : 64;
        corio__timer **h = realloc(ts->heap, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        ts->heap = h;
        ts->heap_cap = cap;
    }
    heap_sift_up(ts, ts->heap_len++, t);
    return 0;
}

static void heap_remove(corio__timers *ts, corio__timer *t)
{
    size_t i = t->heap_index;
    corio__timer *last = ts->heap[--ts->heap_len];
    if (last == t)
        return;
    /* the last element takes the hole and moves whichever way it must */
    if (i > 0 && timer_before(last, ts->heap[(i - 1) / 4]))
        heap_sift_up(ts, i, last);
    else
        heap_sift_down(ts, i, last);
}

/* ---- the FIFO lane: a doubly linked list sorted by construction ---- */

static void fifo_append(corio__timers *ts, corio__timer *t)
{
    t->next = NULL;
    t->prev = ts->fifo_tail;
    if (ts->fifo_tail)
        ts->fifo_tail->next = t;
    else
        ts->fifo_head = t;
    ts->fifo_tail = t;
}

static void fifo_remove(corio__timers *ts, corio__timer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        ts->fifo_head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        ts->fifo_tail = t->prev;
}

int corio__timers_add(corio__timers *ts, corio__timer *t, int64_t deadline, corio__timer_fn *fire)
{
    t->deadline = deadline;
    t->seq = ts->next_seq++;
    t->fire = fire;
    /* seq only grows, so a deadline no earlier than the tail's keeps the lane sorted */
    if (!ts->fifo_tail || deadline >= ts->fifo_tail->deadline) {
        fifo_append(ts, t);
        t->lane = CORIO__TIMER_FIFO;
    } else {
        int rc = heap_push(ts, t);
        if (rc < 0)
            return rc;
        t->lane = CORIO__TIMER_HEAP;
    }
    ts->count++;
    return 0;
}

void corio__timers_remove(corio__timers *ts, corio__timer *t)
{
    if (t->lane == CORIO__TIMER_FIFO)
        fifo_remove(ts, t);
    else if (t->lane == CORIO__TIMER_HEAP)
        heap_remove(ts, t);
    else
        return;
    t->lane = CORIO__TIMER_NONE;
    ts->count--;
}

corio__timer *corio__timers_first(const corio__timers *ts)
{
    corio__timer *f = ts->fifo_head, *h = ts->heap_len ? ts->heap[0] : NULL;
    if (!f)
        return h;
    if (!h)
        return f;
    return timer_before(h, f) ? h : f;
}

size_t corio__timers_run_due(corio__timers *ts, int64_t now)
{
    size_t fired = 0;
    corio__timer *t;
    /* re-read the head each time: a fire callback may arm or disarm timers */
    while ((t = corio__timers_first(ts)) && t->deadline <= now) {
        corio__timers_remove(ts, t);
        t->fire(t);
        fired++;
    }
    return fired;
}
