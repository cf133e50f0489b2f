#include "fdn/task.h"

#include <string.h>

#include "fdn/engine.h"
#include "fdn/error.h"
#include "internal.h"

static uint64_t deadline_after(const fdn_engine_t *engine, uint64_t delay) {
  uint64_t now;
  if (delay == FDN_FOREVER)
    return FDN_FOREVER;
  now = fdn_engine_now(engine);
  return delay > FDN_FOREVER - now ? FDN_FOREVER : now + delay;
}

int fdn_task_init(fdn_engine_t *engine, fdn_task_t *task, fdn_task_run_cb run) {
  void *data;
  if (engine == NULL || task == NULL || run == NULL)
    return FDN_EINVAL;
  if (engine->closing)
    return FDN_ECLOSED;
  data = task->data;
  memset(task, 0, sizeof(*task));
  task->data = data;
  task->engine = engine;
  task->run = run;
  task->id = engine->next_id++;
  fdn_heap_node_init(&task->timer, FDN__TAG_TASK);
  fdn_waitq_init(&task->joiners);
  task->state = FDN_TASK_NEW;
  engine->live++;
  return 0;
}

int fdn_task_start(fdn_task_t *task) {
  if (task->state != FDN_TASK_NEW)
    return FDN_ESTATE;
  task->state = FDN_TASK_READY;
  fdn__engine_ready_push(task->engine, task);
  return 0;
}

fdn_cancel_cause_t fdn_task_cancel_pending(const fdn_task_t *task) {
  const fdn_scope_t *scope;
  for (scope = task->scope; scope != NULL; scope = scope->parent) {
    if (scope->expired)
      return scope->cancelled ? FDN_CANCEL_SCOPE : FDN_CANCEL_DEADLINE;
    if (scope->shield)
      return FDN_CANCEL_NONE;
  }
  return (task->flags & FDN__TASK_CANCELLED) ? FDN_CANCEL_TASK
                                             : FDN_CANCEL_NONE;
}

static int check_can_park(const fdn_task_t *task) {
  if (task->state != FDN_TASK_RUNNING)
    return FDN_ESTATE;
  if (fdn_task_cancel_pending(task) != FDN_CANCEL_NONE)
    return FDN_ECANCELED;
  return 0;
}

int fdn_task_yield(fdn_task_t *task) {
  int rc = check_can_park(task);
  if (rc != 0)
    return rc;
  task->state = FDN_TASK_READY;
  fdn__engine_ready_push(task->engine, task);
  return 0;
}

static void waitq_push(fdn_waitq_t *q, fdn_task_t *task) {
  fdn_task_t *first = q->first;
  if (first == NULL) {
    q->first = task;
    task->next = task;
    task->prev = task;
  } else {
    task->prev = first->prev;
    task->next = first;
    first->prev->next = task;
    first->prev = task;
  }
  task->waitq = q;
  q->len++;
}

static void waitq_remove(fdn_waitq_t *q, fdn_task_t *task) {
  if (task->next == task) {
    q->first = NULL;
  } else {
    task->prev->next = task->next;
    task->next->prev = task->prev;
    if (q->first == task)
      q->first = task->next;
  }
  task->next = NULL;
  task->prev = NULL;
  task->waitq = NULL;
  q->len--;
}

/* Parks the running task on `q` (may be NULL) with an optional deadline. */
static int park(fdn_task_t *task, fdn_waitq_t *q, uint64_t deadline,
                int timed_wait) {
  int rc = check_can_park(task);
  if (rc != 0)
    return rc;
  task->flags &= (uint8_t)~FDN__TASK_TIMED_WAIT;
  if (deadline != FDN_FOREVER) {
    rc = fdn__engine_arm(task->engine, &task->timer, deadline);
    if (rc != 0)
      return rc;
    if (timed_wait)
      task->flags |= FDN__TASK_TIMED_WAIT;
  }
  if (q != NULL)
    waitq_push(q, task);
  task->state = FDN_TASK_WAITING;
  return 0;
}

int fdn_task_sleep_until(fdn_task_t *task, uint64_t deadline_ns) {
  return park(task, NULL, deadline_ns, 0);
}

int fdn_task_sleep(fdn_task_t *task, uint64_t delay_ns) {
  return park(task, NULL, deadline_after(task->engine, delay_ns), 0);
}

int fdn_task_wait(fdn_task_t *task, fdn_waitq_t *q, uint64_t timeout_ns) {
  if (q == NULL)
    return FDN_EINVAL;
  return park(task, q, deadline_after(task->engine, timeout_ns), 1);
}

int fdn_task_park(fdn_task_t *task, uint64_t timeout_ns) {
  return park(task, NULL, deadline_after(task->engine, timeout_ns), 1);
}

int fdn_task_join(fdn_task_t *task, fdn_task_t *target) {
  if (task == target)
    return FDN_ESTATE;
  if (fdn_task_finished(target))
    return 1;
  return park(task, &target->joiners, FDN_FOREVER, 0);
}

static void unpark(fdn_task_t *task) {
  if (task->waitq != NULL)
    waitq_remove(task->waitq, task);
  fdn__engine_disarm(task->engine, &task->timer);
}

int fdn_task_wake(fdn_task_t *task, int status) {
  if (task->state != FDN_TASK_WAITING)
    return FDN_ESTATE;
  unpark(task);
  task->wake_status = status;
  task->state = FDN_TASK_READY;
  fdn__engine_ready_push(task->engine, task);
  return 0;
}

void fdn__task_timer_fired(fdn_task_t *task) {
  fdn_task_wake(task, (task->flags & FDN__TASK_TIMED_WAIT) ? FDN_ETIMEDOUT : 0);
}

int fdn_task_cancel(fdn_task_t *task) {
  if (fdn_task_finished(task))
    return FDN_ESTATE;
  task->flags |= FDN__TASK_CANCELLED;
  if (task->state == FDN_TASK_WAITING &&
      fdn_task_cancel_pending(task) != FDN_CANCEL_NONE)
    fdn_task_wake(task, FDN_ECANCELED);
  return 0;
}

static void detach_scopes(fdn_task_t *task) {
  fdn_scope_t *scope = task->scope;
  while (scope != NULL) {
    fdn_scope_t *parent = scope->parent;
    fdn__engine_disarm(task->engine, &scope->deadline);
    scope->entered = 0;
    scope->task = NULL;
    scope->parent = NULL;
    scope = parent;
  }
  task->scope = NULL;
}

static void finish(fdn_task_t *task, fdn_task_state_t final_state) {
  fdn_engine_t *engine = task->engine;
  fdn_listener_t *listener;
  detach_scopes(task);
  task->state = (uint8_t)final_state;
  engine->live--;
  if (engine->current == task)
    engine->current = NULL;
  fdn_waitq_wake_all(&task->joiners, 0);
  while ((listener = task->listeners) != NULL) {
    fdn_listener_remove(listener);
    listener->cb(listener, task);
  }
}

int fdn_task_finish(fdn_task_t *task, fdn_task_state_t final_state) {
  if (final_state < FDN_TASK_DONE || final_state > FDN_TASK_CANCELLED)
    return FDN_EINVAL;
  if (task->state != FDN_TASK_RUNNING)
    return FDN_ESTATE;
  finish(task, final_state);
  return 0;
}

int fdn_task_abandon(fdn_task_t *task) {
  switch (task->state) {
  case FDN_TASK_WAITING:
    unpark(task);
    break;
  case FDN_TASK_READY:
    fdn__engine_ready_remove(task->engine, task);
    break;
  case FDN_TASK_NEW:
    break;
  default:
    return FDN_ESTATE;
  }
  task->flags |= FDN__TASK_ABANDONED | FDN__TASK_CANCELLED;
  finish(task, FDN_TASK_CANCELLED);
  return 0;
}

const char *fdn_task_state_name(fdn_task_state_t state) {
  static const char *const names[] = {"new",  "ready",  "running",  "waiting",
                                      "done", "failed", "cancelled"};
  if ((unsigned)state > FDN_TASK_CANCELLED)
    return "unknown";
  return names[state];
}

int fdn_task_listen(fdn_task_t *task, fdn_listener_t *listener,
                    fdn_listener_cb cb) {
  if (fdn_task_finished(task))
    return 1;
  listener->cb = cb;
  listener->next = task->listeners;
  if (listener->next != NULL)
    listener->next->pprev = &listener->next;
  listener->pprev = &task->listeners;
  task->listeners = listener;
  return 0;
}

void fdn_listener_remove(fdn_listener_t *listener) {
  if (listener->pprev == NULL)
    return;
  *listener->pprev = listener->next;
  if (listener->next != NULL)
    listener->next->pprev = listener->pprev;
  listener->next = NULL;
  listener->pprev = NULL;
}

void fdn_waitq_init(fdn_waitq_t *q) {
  q->first = NULL;
  q->len = 0;
}

fdn_task_t *fdn_waitq_wake_one(fdn_waitq_t *q, int status) {
  fdn_task_t *task = q->first;
  if (task != NULL)
    fdn_task_wake(task, status);
  return task;
}

uint32_t fdn_waitq_wake_all(fdn_waitq_t *q, int status) {
  uint32_t woken = 0;
  while (q->first != NULL) {
    fdn_task_wake(q->first, status);
    woken++;
  }
  return woken;
}

int fdn_scope_enter(fdn_task_t *task, fdn_scope_t *scope, uint64_t deadline_ns,
                    int shield) {
  if (task == NULL || scope == NULL)
    return FDN_EINVAL;
  if (fdn_task_finished(task))
    return FDN_ESTATE;
  fdn_heap_node_init(&scope->deadline, FDN__TAG_SCOPE);
  scope->deadline_ns = deadline_ns;
  scope->shield = shield != 0;
  scope->expired = 0;
  scope->cancelled = 0;
  if (deadline_ns != FDN_FOREVER) {
    if (deadline_ns <= fdn_engine_now(task->engine)) {
      scope->expired = 1;
    } else {
      int rc = fdn__engine_arm(task->engine, &scope->deadline, deadline_ns);
      if (rc != 0)
        return rc;
    }
  }
  scope->parent = task->scope;
  scope->task = task;
  scope->entered = 1;
  task->scope = scope;
  return 0;
}

int fdn_scope_cancel(fdn_scope_t *scope) {
  fdn_task_t *task = scope->task;
  if (!scope->entered || task == NULL)
    return FDN_ESTATE;
  fdn__engine_disarm(task->engine, &scope->deadline);
  scope->cancelled = !scope->expired || scope->cancelled;
  scope->expired = 1;
  if (task->state == FDN_TASK_WAITING &&
      fdn_task_cancel_pending(task) != FDN_CANCEL_NONE)
    fdn_task_wake(task, FDN_ECANCELED);
  return 0;
}

int fdn_scope_exit(fdn_scope_t *scope) {
  fdn_task_t *task = scope->task;
  if (!scope->entered || task == NULL || task->scope != scope)
    return FDN_ESTATE;
  fdn__engine_disarm(task->engine, &scope->deadline);
  task->scope = scope->parent;
  scope->parent = NULL;
  scope->task = NULL;
  scope->entered = 0;
  return scope->expired;
}

void fdn__scope_deadline_fired(fdn_scope_t *scope) {
  fdn_task_t *task = scope->task;
  scope->expired = 1;
  if (task != NULL && task->state == FDN_TASK_WAITING &&
      fdn_task_cancel_pending(task) != FDN_CANCEL_NONE)
    fdn_task_wake(task, FDN_ECANCELED);
}

int fdn_task_deadline(const fdn_task_t *task, uint64_t *out) {
  const fdn_scope_t *scope;
  uint64_t earliest = FDN_FOREVER;
  for (scope = task->scope; scope != NULL; scope = scope->parent) {
    if (scope->expired) {
      earliest = 0;
      break;
    }
    if (fdn_heap_node_active(&scope->deadline) && scope->deadline_ns < earliest)
      earliest = scope->deadline_ns;
    if (scope->shield)
      break;
  }
  if (earliest == FDN_FOREVER)
    return FDN_EAGAIN;
  *out = earliest;
  return 0;
}
