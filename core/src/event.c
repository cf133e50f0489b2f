#include "fdn/event.h"

#include "fdn/error.h"

void fdn_event_init(fdn_event_t *ev) {
  fdn_waitq_init(&ev->waiters);
  ev->set = 0;
}

int fdn_event_wait(fdn_event_t *ev, fdn_task_t *task, uint64_t timeout_ns) {
  if (fdn_task_state(task) != FDN_TASK_RUNNING)
    return FDN_ESTATE;
  if (fdn_task_cancel_pending(task) != FDN_CANCEL_NONE)
    return FDN_ECANCELED;
  if (ev->set)
    return 1;
  if (timeout_ns == 0)
    return FDN_ETIMEDOUT;
  return fdn_task_wait(task, &ev->waiters, timeout_ns);
}

uint32_t fdn_event_set(fdn_event_t *ev) {
  ev->set = 1;
  return fdn_waitq_wake_all(&ev->waiters, 0);
}

void fdn_event_clear(fdn_event_t *ev) {
  ev->set = 0;
}
