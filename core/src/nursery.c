#include "fdn/nursery.h"

#include <stddef.h>

#include "fdn/error.h"
#include "internal.h"

int fdn_nursery_init(fdn_nursery_t *nursery, uint64_t limit, int fail_fast,
                     fdn_nursery_cb on_done) {
  if (nursery == NULL)
    return FDN_EINVAL;
  nursery->on_done = on_done;
  nursery->running = NULL;
  nursery->pending_head = NULL;
  nursery->pending_tail = NULL;
  nursery->scope = NULL;
  fdn_waitq_init(&nursery->waiters);
  nursery->limit = limit;
  nursery->nrunning = 0;
  nursery->npending = 0;
  nursery->finished = 0;
  nursery->failed = 0;
  nursery->fail_fast = fail_fast != 0;
  nursery->aborted = 0;
  return 0;
}

void fdn_nursery_set_scope(fdn_nursery_t *nursery, fdn_scope_t *scope) {
  nursery->scope = scope;
}

static void unlink_member(fdn_nursery_t *n, fdn_nursery_member_t *m) {
  if (m->prev != NULL)
    m->prev->next = m->next;
  else if (m->started)
    n->running = m->next;
  else
    n->pending_head = m->next;
  if (m->next != NULL)
    m->next->prev = m->prev;
  else if (!m->started)
    n->pending_tail = m->prev;
  if (m->started)
    n->nrunning--;
  else
    n->npending--;
  m->prev = NULL;
  m->next = NULL;
}

static void link_running(fdn_nursery_t *n, fdn_nursery_member_t *m) {
  m->started = 1;
  m->prev = NULL;
  m->next = n->running;
  if (n->running != NULL)
    n->running->prev = m;
  n->running = m;
  n->nrunning++;
}

static void start_member(fdn_nursery_t *n, fdn_nursery_member_t *m) {
  link_running(n, m);
  fdn_task_start(m->task);
}

/* Starts the oldest waiting children while slots are free. */
static void fill_slots(fdn_nursery_t *n) {
  fdn_nursery_member_t *m;
  while ((m = n->pending_head) != NULL &&
         (n->limit == 0 || n->nrunning < n->limit)) {
    unlink_member(n, m);
    start_member(n, m);
  }
}

void fdn_nursery_abort(fdn_nursery_t *n) {
  fdn_nursery_member_t *m;
  if (n->aborted)
    return;
  n->aborted = 1;
  for (m = n->running; m != NULL; m = m->next)
    fdn_task_cancel(m->task);
  /* Waiting children start cancelled: they finish at their first run. */
  while ((m = n->pending_head) != NULL) {
    unlink_member(n, m);
    fdn_task_cancel(m->task);
    start_member(n, m);
  }
  if (n->scope != NULL)
    (void)fdn_scope_cancel(n->scope);
}

static void on_finished(fdn_listener_t *listener, fdn_task_t *task) {
  fdn_nursery_member_t *m = (fdn_nursery_member_t *)listener;
  fdn_nursery_t *n = m->nursery;
  unlink_member(n, m);
  n->finished++;
  if (fdn_task_state(task) == FDN_TASK_FAILED) {
    n->failed++;
    if (n->fail_fast)
      fdn_nursery_abort(n);
  }
  /* An engine shutting down abandons its tasks one by one: starting a
   * waiting child now would bring it back to life behind the shutdown.
   */
  if (!(task->flags & FDN__TASK_ABANDONED))
    fill_slots(n);
  if (n->nrunning + n->npending == 0)
    fdn_waitq_wake_all(&n->waiters, 0);
  /* Last: the callback may free the member, or run code that drops the
   * owner of the nursery.
   */
  if (n->on_done != NULL)
    n->on_done(n, m);
}

int fdn_nursery_add(fdn_nursery_t *n, fdn_nursery_member_t *m,
                    fdn_task_t *task) {
  if (fdn_task_state(task) != FDN_TASK_NEW)
    return FDN_ESTATE;
  m->nursery = n;
  m->task = task;
  m->started = 0;
  m->prev = NULL;
  m->next = NULL;
  fdn_task_listen(task, &m->listener, on_finished);
  if (n->aborted) {
    fdn_task_cancel(task);
    start_member(n, m);
  } else if (n->pending_head == NULL &&
             (n->limit == 0 || n->nrunning < n->limit)) {
    start_member(n, m);
  } else {
    m->prev = n->pending_tail;
    if (n->pending_tail != NULL)
      n->pending_tail->next = m;
    else
      n->pending_head = m;
    n->pending_tail = m;
    n->npending++;
  }
  return 0;
}

int fdn_nursery_wait(fdn_nursery_t *n, fdn_task_t *task, uint64_t timeout_ns) {
  if (fdn_task_state(task) != FDN_TASK_RUNNING)
    return FDN_ESTATE;
  if (fdn_task_cancel_pending(task) != FDN_CANCEL_NONE)
    return FDN_ECANCELED;
  if (n->nrunning + n->npending == 0)
    return 1;
  if (timeout_ns == 0)
    return FDN_ETIMEDOUT;
  return fdn_task_wait(task, &n->waiters, timeout_ns);
}

void fdn_nursery_detach(fdn_nursery_t *n) {
  fdn_nursery_member_t *m;
  /* Children still waiting for a slot run unlimited from now on. */
  while ((m = n->pending_head) != NULL) {
    unlink_member(n, m);
    start_member(n, m);
  }
  while ((m = n->running) != NULL) {
    fdn_listener_remove(&m->listener);
    unlink_member(n, m);
    if (n->on_done != NULL)
      n->on_done(n, m);
  }
  n->scope = NULL;
  fdn_waitq_wake_all(&n->waiters, FDN_ECLOSED);
}
