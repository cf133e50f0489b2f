#include "fdn/bulkhead.h"

#include "fdn/error.h"

int fdn_bulkhead_init(fdn_bulkhead_t *bh, uint32_t max_concurrent,
                      uint32_t max_queue) {
  if (max_concurrent == 0)
    return FDN_EINVAL;
  bh->max_concurrent = max_concurrent;
  bh->max_queue = max_queue;
  bh->active = 0;
  fdn_waitq_init(&bh->waiters);
  bh->admitted = 0;
  bh->rejected = 0;
  bh->timed_out = 0;
  return 0;
}

int fdn_bulkhead_try_enter(fdn_bulkhead_t *bh) {
  /* Waiters first: a newcomer never overtakes the queue. */
  if (bh->active >= bh->max_concurrent || fdn_waitq_len(&bh->waiters) > 0)
    return FDN_EAGAIN;
  bh->active++;
  bh->admitted++;
  return 0;
}

int fdn_bulkhead_enter(fdn_bulkhead_t *bh, fdn_task_t *task,
                       uint64_t timeout_ns) {
  int rc;
  if (fdn_task_cancel_pending(task) != FDN_CANCEL_NONE)
    return FDN_ECANCELED;
  if (fdn_bulkhead_try_enter(bh) == 0)
    return 0;
  if (bh->max_queue != FDN_BULKHEAD_UNLIMITED &&
      fdn_waitq_len(&bh->waiters) >= bh->max_queue) {
    bh->rejected++;
    return FDN_EFULL;
  }
  if (timeout_ns == 0) {
    bh->timed_out++;
    return FDN_ETIMEDOUT;
  }
  rc = fdn_task_wait(task, &bh->waiters, timeout_ns);
  return rc == 0 ? 1 : rc;
}

void fdn_bulkhead_leave(fdn_bulkhead_t *bh) {
  if (bh->active == 0)
    return;
  /* The slot goes straight to the first waiter: `active` stays. */
  if (fdn_waitq_wake_one(&bh->waiters, 0) != NULL) {
    bh->admitted++;
    return;
  }
  bh->active--;
}

void fdn_bulkhead_timed_out(fdn_bulkhead_t *bh) {
  bh->timed_out++;
}
