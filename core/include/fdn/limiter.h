/* A limiter: a counting semaphore with FIFO waiters.
 *
 * The limiter has `limit` permits, of which `held` are taken. A task that
 * finds none free parks at the tail of the queue. A release hands its permit
 * straight to the first waiter (made READY, already holding it), so a task
 * arriving later can never overtake one that waits: no barging, no
 * starvation. A waiter cancelled or timed out while parked leaves the queue
 * holding nothing.
 *
 * A waiter that was handed a permit and is cancelled before it runs still
 * owns the permit: its acquire succeeded, and the cancellation is seen at
 * its next suspension (cancellation in fdn is sticky). Whoever acquired must
 * release, exactly once.
 *
 * The limit can change at run time. Growing it hands the new permits to
 * waiters at once; shrinking it below `held` leaves a debt that releases pay
 * off before any waiter is served.
 *
 * The limiter is caller-allocated and belongs to no engine: tasks of any
 * engine (one at a time, on one thread) may wait on it. It is not thread
 * safe.
 */
#ifndef FDN_LIMITER_H
#define FDN_LIMITER_H

#include <stdint.h>

#include "fdn/task.h"

typedef struct fdn_limiter_s {
  void *data; /* free for the owner */
  /* private */
  fdn_waitq_t waiters;
  uint64_t limit;
  uint64_t held;
  uint8_t closed;
} fdn_limiter_t;

/* The largest limit: more permits than any program can hold. */
#define FDN_LIMITER_MAX (UINT64_MAX / 2)

/* Initialises a limiter with `limit` permits, all free. Returns FDN_EINVAL
 * for a NULL limiter or a limit above FDN_LIMITER_MAX.
 */
int fdn_limiter_init(fdn_limiter_t *lim, uint64_t limit);

/* Takes a permit for `task`.
 *
 * Returns 1 when a permit was free and is now held (the task did not park),
 * 0 when the task parked at the tail of the queue: its run callback is
 * later called with status 0 when it was handed a permit, FDN_ECANCELED or
 * FDN_ETIMEDOUT (after `timeout_ns`; FDN_FOREVER for none) when it left the
 * queue without one, or FDN_ECLOSED when the limiter was closed.
 *
 * Fails without parking with FDN_ECANCELED when a cancellation is pending
 * (even if a permit is free), FDN_ETIMEDOUT when none is free and
 * `timeout_ns` is 0, FDN_ECLOSED once closed, and FDN_ESTATE when `task` is
 * not the running task. `task` may be NULL: then the call never parks and
 * returns FDN_EAGAIN when no permit is free.
 */
int fdn_limiter_acquire(fdn_limiter_t *lim, fdn_task_t *task,
                        uint64_t timeout_ns);

/* Takes a permit if one is free and nobody waits: 0, or FDN_EAGAIN. */
int fdn_limiter_try_acquire(fdn_limiter_t *lim);

/* Gives a permit back: to the first waiter when the limit allows, else to
 * the pool. Returns FDN_ESTATE when no permit is held (more releases than
 * acquires), changing nothing.
 */
int fdn_limiter_release(fdn_limiter_t *lim);

/* Changes the number of permits. Growing wakes as many waiters as the new
 * permits allow, in FIFO order; shrinking below the permits held makes the
 * next releases pay off the difference. Returns FDN_EINVAL above
 * FDN_LIMITER_MAX.
 */
int fdn_limiter_resize(fdn_limiter_t *lim, uint64_t limit);

/* Wakes every waiter with FDN_ECLOSED; later acquires fail with
 * FDN_ECLOSED. Permits held stay held and may still be released. Closing
 * twice is a no-op. Close a limiter before freeing it while tasks wait.
 */
void fdn_limiter_close(fdn_limiter_t *lim);

static inline uint64_t fdn_limiter_limit(const fdn_limiter_t *lim) {
  return lim->limit;
}
static inline uint64_t fdn_limiter_held(const fdn_limiter_t *lim) {
  return lim->held;
}
/* Permits free now: 0 while a debt is being paid off. */
static inline uint64_t fdn_limiter_available(const fdn_limiter_t *lim) {
  return lim->held < lim->limit ? lim->limit - lim->held : 0;
}
static inline uint32_t fdn_limiter_waiting(const fdn_limiter_t *lim) {
  return fdn_waitq_len(&lim->waiters);
}
static inline int fdn_limiter_closed(const fdn_limiter_t *lim) {
  return lim->closed;
}

#endif
