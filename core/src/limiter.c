#include "fdn/limiter.h"

#include <stddef.h>

#include "fdn/error.h"

int fdn_limiter_init(fdn_limiter_t *lim, uint64_t limit) {
  if (lim == NULL || limit > FDN_LIMITER_MAX)
    return FDN_EINVAL;
  fdn_waitq_init(&lim->waiters);
  lim->limit = limit;
  lim->held = 0;
  lim->closed = 0;
  return 0;
}

/* Hands free permits to waiters, first come first served. Invariant kept by
 * every entry point: while anyone waits, no permit is free.
 */
static void serve_waiters(fdn_limiter_t *lim) {
  while (lim->held < lim->limit && fdn_waitq_first(&lim->waiters) != NULL) {
    lim->held++;
    fdn_waitq_wake_one(&lim->waiters, 0);
  }
}

/* A task that may not take the fast path: it is not running, or a
 * cancellation it would see at a suspension is pending.
 */
static int check_task(const fdn_task_t *task) {
  if (fdn_task_state(task) != FDN_TASK_RUNNING)
    return FDN_ESTATE;
  if (fdn_task_cancel_pending(task) != FDN_CANCEL_NONE)
    return FDN_ECANCELED;
  return 0;
}

int fdn_limiter_acquire(fdn_limiter_t *lim, fdn_task_t *task,
                        uint64_t timeout_ns) {
  int rc;
  if (lim->closed)
    return FDN_ECLOSED;
  if (task != NULL && (rc = check_task(task)) != 0)
    return rc;
  if (lim->held < lim->limit) {
    lim->held++;
    return 1;
  }
  if (task == NULL)
    return FDN_EAGAIN;
  if (timeout_ns == 0)
    return FDN_ETIMEDOUT;
  return fdn_task_wait(task, &lim->waiters, timeout_ns);
}

int fdn_limiter_try_acquire(fdn_limiter_t *lim) {
  if (lim->closed)
    return FDN_ECLOSED;
  if (lim->held >= lim->limit)
    return FDN_EAGAIN;
  lim->held++;
  return 0;
}

int fdn_limiter_release(fdn_limiter_t *lim) {
  if (lim->held == 0)
    return FDN_ESTATE;
  lim->held--;
  if (!lim->closed)
    serve_waiters(lim);
  return 0;
}

int fdn_limiter_resize(fdn_limiter_t *lim, uint64_t limit) {
  if (limit > FDN_LIMITER_MAX)
    return FDN_EINVAL;
  lim->limit = limit;
  if (!lim->closed)
    serve_waiters(lim);
  return 0;
}

void fdn_limiter_close(fdn_limiter_t *lim) {
  if (lim->closed)
    return;
  lim->closed = 1;
  fdn_waitq_wake_all(&lim->waiters, FDN_ECLOSED);
}
