/* Tasks, wait queues, completion listeners and cancel scopes.
 *
 * A task is a caller-allocated record that the engine schedules. The engine
 * calls the task's run callback when the task is ready; inside it the task
 * either parks (sleep, wait on a queue, join), yields, finishes, or simply
 * returns, which re-queues it. A Lua task is one whose run callback resumes
 * a coroutine, but the core knows nothing of Lua.
 *
 * Parked tasks are woken with a status: 0 for a normal wake, FDN_ECANCELED
 * when cancelled, FDN_ETIMEDOUT when a wait's own timeout passed, or any
 * status a primitive chooses (FDN_ECLOSED for a closed queue).
 *
 * Cancellation is sticky: once a task is cancelled every later attempt to
 * park fails with FDN_ECANCELED, unless a shielding scope hides it.
 */
#ifndef FDN_TASK_H
#define FDN_TASK_H

#include <stdint.h>

#include "fdn/clock.h"
#include "fdn/heap.h"

/* Declared in several headers; C99 allows one typedef per name. */
#ifndef FDN_ENGINE_T_DECLARED
#define FDN_ENGINE_T_DECLARED
typedef struct fdn_engine_s fdn_engine_t;
#endif
typedef struct fdn_task_s fdn_task_t;
typedef struct fdn_waitq_s fdn_waitq_t;
typedef struct fdn_listener_s fdn_listener_t;
typedef struct fdn_scope_s fdn_scope_t;

typedef void (*fdn_task_run_cb)(fdn_task_t *task, int status);
typedef void (*fdn_listener_cb)(fdn_listener_t *listener, fdn_task_t *task);

typedef enum {
  FDN_TASK_NEW = 0,
  FDN_TASK_READY,
  FDN_TASK_RUNNING,
  FDN_TASK_WAITING,
  FDN_TASK_DONE,
  FDN_TASK_FAILED,
  FDN_TASK_CANCELLED
} fdn_task_state_t;

/* What fdn_task_cancel_pending() reports. */
typedef enum {
  FDN_CANCEL_NONE = 0,
  FDN_CANCEL_TASK = 1,     /* fdn_task_cancel() was called */
  FDN_CANCEL_DEADLINE = 2, /* a scope's deadline passed */
  FDN_CANCEL_SCOPE = 3     /* fdn_scope_cancel() was called */
} fdn_cancel_cause_t;

/* FIFO of parked tasks, linked through the tasks themselves. */
struct fdn_waitq_s {
  fdn_task_t *first;
  uint32_t len;
};

/* Called once when the task it listens to finishes. The listener is
 * unlinked before the call, so the callback may free it.
 */
struct fdn_listener_s {
  fdn_listener_t *next;
  fdn_listener_t **pprev;
  fdn_listener_cb cb;
  void *data;
};

/* A region of a task's execution with an optional deadline and an optional
 * shield. Scopes nest; they must be exited in LIFO order.
 */
struct fdn_scope_s {
  fdn_scope_t *parent;
  fdn_task_t *task;
  fdn_heap_node_t deadline;
  uint64_t deadline_ns; /* FDN_FOREVER for none */
  uint8_t shield;
  uint8_t expired;
  uint8_t entered;
  uint8_t cancelled; /* expired by fdn_scope_cancel(), not the deadline */
};

struct fdn_task_s {
  void *data; /* free for the owner */
  fdn_engine_t *engine;
  fdn_task_run_cb run;
  uint64_t id;
  /* private */
  fdn_task_t *next; /* ready queue or wait queue */
  fdn_task_t *prev;
  fdn_waitq_t *waitq;
  fdn_heap_node_t timer;
  fdn_waitq_t joiners;
  fdn_listener_t *listeners;
  fdn_scope_t *scope;
  intptr_t handoff; /* a value handed over with a wake (a channel item) */
  int32_t wake_status;
  uint8_t state;
  uint8_t flags;
};

/* Initialises a task in state NEW and gives it the engine's next id. The
 * engine borrows the record until the task finishes. Returns FDN_EINVAL for
 * a NULL callback and FDN_ECLOSED when the engine is closing.
 */
int fdn_task_init(fdn_engine_t *engine, fdn_task_t *task, fdn_task_run_cb run);

/* NEW -> READY: the task runs at the engine's next scheduling turn. */
int fdn_task_start(fdn_task_t *task);

/* The following park the running task; they fail without parking with
 * FDN_ECANCELED when a cancellation is pending, and with FDN_ESTATE when the
 * task is not the one running.
 */

/* RUNNING -> READY at the tail of the ready queue. */
int fdn_task_yield(fdn_task_t *task);

/* Parks until `delay_ns` has passed on the engine clock; woken with 0. */
int fdn_task_sleep(fdn_task_t *task, uint64_t delay_ns);
int fdn_task_sleep_until(fdn_task_t *task, uint64_t deadline_ns);

/* Parks at the tail of `q` until a waker hands it a status, or until
 * `timeout_ns` (FDN_FOREVER for none) passes, when it wakes with
 * FDN_ETIMEDOUT.
 */
int fdn_task_wait(fdn_task_t *task, fdn_waitq_t *q, uint64_t timeout_ns);

/* Parks on nothing: only fdn_task_wake(), a timeout or a cancel wakes it. */
int fdn_task_park(fdn_task_t *task, uint64_t timeout_ns);

/* Parks until `target` finishes. Returns 1 without parking when the target
 * has already finished, 0 when parked, FDN_ESTATE for a self-join.
 */
int fdn_task_join(fdn_task_t *task, fdn_task_t *target);

/* WAITING -> READY with `status`, leaving whatever it was parked on.
 * Returns FDN_ESTATE when the task is not parked.
 */
int fdn_task_wake(fdn_task_t *task, int status);

/* Requests cancellation. A parked task is woken at once with FDN_ECANCELED
 * unless a shield hides it; a running or ready task sees it when it next
 * tries to park. Returns FDN_ESTATE once the task has finished.
 */
int fdn_task_cancel(fdn_task_t *task);

/* Which cancellation, if any, the task would see if it parked now. */
fdn_cancel_cause_t fdn_task_cancel_pending(const fdn_task_t *task);

static inline int fdn_task_cancel_requested(const fdn_task_t *task) {
  return (task->flags & 1u) != 0;
}

/* RUNNING -> DONE, FAILED or CANCELLED. Wakes joiners, then calls the
 * listeners. Scopes still entered are detached.
 */
int fdn_task_finish(fdn_task_t *task, fdn_task_state_t final_state);

/* Finishes a task that is not running, whatever its state, as CANCELLED
 * without calling its run callback again: the last resort when an engine
 * shuts down and a task cannot be run to completion.
 */
int fdn_task_abandon(fdn_task_t *task);

static inline fdn_task_state_t fdn_task_state(const fdn_task_t *task) {
  return (fdn_task_state_t)task->state;
}

static inline int fdn_task_finished(const fdn_task_t *task) {
  return task->state >= FDN_TASK_DONE;
}

const char *fdn_task_state_name(fdn_task_state_t state);

/* Registers `listener` to be called when `task` finishes. Returns 1 (and
 * registers nothing) when the task has already finished.
 */
int fdn_task_listen(fdn_task_t *task, fdn_listener_t *listener,
                    fdn_listener_cb cb);
void fdn_listener_remove(fdn_listener_t *listener);

void fdn_waitq_init(fdn_waitq_t *q);

/* Wakes the first waiter with `status`; returns it, or NULL when empty. */
fdn_task_t *fdn_waitq_wake_one(fdn_waitq_t *q, int status);

/* Wakes every waiter with `status`, in FIFO order; returns how many. */
uint32_t fdn_waitq_wake_all(fdn_waitq_t *q, int status);

static inline uint32_t fdn_waitq_len(const fdn_waitq_t *q) {
  return q->len;
}
static inline fdn_task_t *fdn_waitq_first(const fdn_waitq_t *q) {
  return q->first;
}

/* Enters a scope on the running task. `deadline_ns` is an absolute engine
 * time (FDN_FOREVER for none); once it passes, the task sees
 * FDN_CANCEL_DEADLINE. A shield hides cancellations from outside the scope
 * (the task's own, and outer deadlines) while it is entered.
 */
int fdn_scope_enter(fdn_task_t *task, fdn_scope_t *scope, uint64_t deadline_ns,
                    int shield);

/* Cancels what runs inside an entered scope, as if its deadline had
 * passed: the task sees FDN_CANCEL_SCOPE (and is woken at once if parked),
 * and fdn_scope_exit() reports the scope expired. How a structured scope
 * stops its body when one of its children fails. Returns FDN_ESTATE when
 * the scope is not entered.
 */
int fdn_scope_cancel(fdn_scope_t *scope);

/* Leaves the innermost scope. Returns 1 when its deadline had passed, 0
 * when not, FDN_ESTATE when `scope` is not the innermost one entered.
 */
int fdn_scope_exit(fdn_scope_t *scope);

/* The task's effective deadline: the earliest deadline among its entered
 * scopes, from the innermost out to the first shield (a shield hides the
 * deadlines outside it; its own counts). A scope whose deadline already
 * passed gives 0. Returns 0 and sets *out, or FDN_EAGAIN when no deadline
 * applies.
 */
int fdn_task_deadline(const fdn_task_t *task, uint64_t *out);

#endif
