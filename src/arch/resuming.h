/* arch/resuming.h - the public calls that return by jump after a switch
 * (arch/resume_x86_64.S says why). Included by C (internal.h) and by the
 * stubs' assembly, so the two lists cannot differ: a name defined in C with
 * CORIO__IMPL must be here, and a name here must be defined so, or the
 * link fails. */
#ifndef CORIO_ARCH_RESUMING_H
#define CORIO_ARCH_RESUMING_H

#define CORIO__RESUMING_CALLS(X) \
    X(corio_yield)               \
    X(corio_queue_put)           \
    X(corio_queue_get)           \
    X(corio_queue_join)          \
    X(corio_select)              \
    X(corio_event_wait)

#endif
