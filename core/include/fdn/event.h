/* An event: a flag tasks can wait for.
 *
 * While the event is clear, waiters park in FIFO order; setting it wakes
 * every waiter at once and lets later waits return without parking until
 * it is cleared again. The event is caller-allocated, belongs to no engine
 * and is not thread safe.
 */
#ifndef FDN_EVENT_H
#define FDN_EVENT_H

#include <stdint.h>

#include "fdn/task.h"

typedef struct fdn_event_s {
  void *data; /* free for the owner */
  /* private */
  fdn_waitq_t waiters;
  uint8_t set;
} fdn_event_t;

/* Initialises a clear event. */
void fdn_event_init(fdn_event_t *ev);

/* Waits for the event to be set.
 *
 * Returns 1 when it is set (the task did not park), 0 when the task parked:
 * its run callback is later called with status 0 once the event was set,
 * or FDN_ECANCELED / FDN_ETIMEDOUT (after `timeout_ns`; FDN_FOREVER for
 * none) when it left without it.
 *
 * Fails without parking with FDN_ECANCELED when a cancellation is pending
 * (even if the event is set), FDN_ETIMEDOUT when clear and `timeout_ns` is
 * 0, and FDN_ESTATE when `task` is not the running task.
 */
int fdn_event_wait(fdn_event_t *ev, fdn_task_t *task, uint64_t timeout_ns);

/* Sets the event and wakes every waiter, in FIFO order; returns how many. */
uint32_t fdn_event_set(fdn_event_t *ev);

/* Clears the event: later waits park again. Tasks already woken stay woken. */
void fdn_event_clear(fdn_event_t *ev);

static inline int fdn_event_is_set(const fdn_event_t *ev) {
  return ev->set;
}
static inline uint32_t fdn_event_waiting(const fdn_event_t *ev) {
  return fdn_waitq_len(&ev->waiters);
}

#endif
