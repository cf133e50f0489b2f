/* Bulkhead: at most `max_concurrent` callers inside at once, at most
 * `max_queue` more waiting (FIFO) for a slot; callers beyond that are
 * turned away at once.
 *
 * A leaving caller hands its slot straight to the first waiter, which is
 * woken with status 0 already holding it. Such a waiter is READY, not
 * parked, so a cancellation that arrives before it runs cannot take the
 * slot back: the waiter's owner must check fdn_task_cancel_pending() when
 * it resumes and, if set, call fdn_bulkhead_leave() itself. That check is
 * what keeps slots from leaking when a waiter is cancelled (or its
 * deadline passes) just after being handed one.
 */
#ifndef FDN_BULKHEAD_H
#define FDN_BULKHEAD_H

#include <stdint.h>

#include "fdn/task.h"

/* max_queue meaning "no limit". */
#define FDN_BULKHEAD_UNLIMITED UINT32_MAX

typedef struct fdn_bulkhead_s {
  void *data; /* free for the owner */
  uint32_t max_concurrent;
  uint32_t max_queue;
  /* private */
  uint32_t active; /* slots held, handed-over ones included */
  fdn_waitq_t waiters;
  uint64_t admitted;
  uint64_t rejected; /* queue full */
  uint64_t timed_out;
} fdn_bulkhead_t;

/* Returns FDN_EINVAL when max_concurrent is 0. */
int fdn_bulkhead_init(fdn_bulkhead_t *bh, uint32_t max_concurrent,
                      uint32_t max_queue);

/* Takes a slot if one is free and nobody waits: 0 or FDN_EAGAIN. */
int fdn_bulkhead_try_enter(fdn_bulkhead_t *bh);

/* Takes a slot for the running task `task`. Returns 0 when it got one at
 * once; 1 when it parked (it is woken with 0 holding a slot, FDN_ETIMEDOUT
 * after `timeout_ns`, or FDN_ECANCELED); FDN_EFULL when `max_queue` tasks
 * already wait; FDN_ECANCELED when a cancellation is pending (nothing
 * taken). A timeout of 0 never parks: FDN_ETIMEDOUT when no slot is free.
 */
int fdn_bulkhead_enter(fdn_bulkhead_t *bh, fdn_task_t *task,
                       uint64_t timeout_ns);

/* Gives a slot back: to the first waiter, or to the free pool. */
void fdn_bulkhead_leave(fdn_bulkhead_t *bh);

/* Called by the owner of a task that fdn_bulkhead_enter parked, when it
 * woke with FDN_ETIMEDOUT: counts the timeout.
 */
void fdn_bulkhead_timed_out(fdn_bulkhead_t *bh);

static inline uint32_t fdn_bulkhead_active(const fdn_bulkhead_t *bh) {
  return bh->active;
}
static inline uint32_t fdn_bulkhead_waiting(const fdn_bulkhead_t *bh) {
  return fdn_waitq_len(&bh->waiters);
}

#endif
