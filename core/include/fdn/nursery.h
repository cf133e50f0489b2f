/* A nursery: a set of child tasks with a concurrency limit, fail-fast
 * cancellation, and a way to wait until every child has finished.
 *
 * Children are added before they start (state NEW). The nursery starts
 * each one when a slot is free, in the order they were added, so at most
 * `limit` run at a time and a child waiting for its turn costs no
 * scheduling at all. When a child finishes the nursery starts the next.
 *
 * In fail-fast mode the first child that finishes FAILED aborts the
 * nursery: every other child is cancelled (those still waiting for a slot
 * are started at once, cancelled, so they end without running), and so is
 * the scope given to fdn_nursery_set_scope() (the body that created the
 * children). Without fail-fast, failures are only counted.
 *
 * The owner learns of each finished child through `on_done`, called after
 * the nursery let go of the member, so the callback may free it. The
 * nursery is caller-allocated, belongs to no engine and is not thread safe.
 */
#ifndef FDN_NURSERY_H
#define FDN_NURSERY_H

#include <stdint.h>

#include "fdn/task.h"

typedef struct fdn_nursery_s fdn_nursery_t;
typedef struct fdn_nursery_member_s fdn_nursery_member_t;

/* Called once per member when its task has finished (or was abandoned). */
typedef void (*fdn_nursery_cb)(fdn_nursery_t *nursery,
                               fdn_nursery_member_t *member);

/* One child: caller-allocated, borrowed by the nursery until `on_done`. */
struct fdn_nursery_member_s {
  fdn_listener_t listener; /* private */
  void *data;              /* free for the owner */
  fdn_nursery_t *nursery;
  fdn_task_t *task;
  fdn_nursery_member_t *prev; /* private: the pending or running list */
  fdn_nursery_member_t *next;
  uint8_t started;
};

struct fdn_nursery_s {
  void *data; /* free for the owner */
  fdn_nursery_cb on_done;
  /* private */
  fdn_nursery_member_t *running;
  fdn_nursery_member_t *pending_head;
  fdn_nursery_member_t *pending_tail;
  fdn_scope_t *scope;
  fdn_waitq_t waiters;
  uint64_t limit; /* 0: none */
  uint64_t nrunning;
  uint64_t npending;
  uint64_t finished;
  uint64_t failed;
  uint8_t fail_fast;
  uint8_t aborted;
};

/* Initialises an empty nursery running at most `limit` children at a time
 * (0 for no limit). `on_done` may be NULL. Returns FDN_EINVAL for a NULL
 * nursery.
 */
int fdn_nursery_init(fdn_nursery_t *nursery, uint64_t limit, int fail_fast,
                     fdn_nursery_cb on_done);

/* The scope cancelled along with the children when the nursery aborts
 * (borrowed; NULL for none). Unset it before the scope is exited.
 */
void fdn_nursery_set_scope(fdn_nursery_t *nursery, fdn_scope_t *scope);

/* Adds `task`, initialised but not started (state NEW), as a child. It
 * starts now when a slot is free, else after the children added before it.
 * Once the nursery has aborted, the task is cancelled and started at once,
 * so it finishes without running. Returns FDN_ESTATE when the task is not
 * NEW.
 */
int fdn_nursery_add(fdn_nursery_t *nursery, fdn_nursery_member_t *member,
                    fdn_task_t *task);

/* Cancels every child (starting those still waiting, so they end at once)
 * and the scope; later additions are cancelled too. Idempotent.
 */
void fdn_nursery_abort(fdn_nursery_t *nursery);

/* Waits until no child is left. Returns 1 when none is (the task did not
 * park), 0 when the task parked: its run callback is later called with
 * status 0 once the last child finished, or FDN_ECANCELED / FDN_ETIMEDOUT.
 * Fails without parking with FDN_ECANCELED when a cancellation is pending
 * and FDN_ESTATE when `task` is not the running task.
 */
int fdn_nursery_wait(fdn_nursery_t *nursery, fdn_task_t *task,
                     uint64_t timeout_ns);

/* Lets go of every member without waiting (their tasks go on, unwatched;
 * `on_done` is called for each) and wakes the waiters with FDN_ECLOSED:
 * what an owner does before freeing a nursery whose children may live on.
 */
void fdn_nursery_detach(fdn_nursery_t *nursery);

static inline uint64_t fdn_nursery_running(const fdn_nursery_t *n) {
  return n->nrunning;
}
static inline uint64_t fdn_nursery_pending(const fdn_nursery_t *n) {
  return n->npending;
}
static inline uint64_t fdn_nursery_finished(const fdn_nursery_t *n) {
  return n->finished;
}
static inline uint64_t fdn_nursery_failed(const fdn_nursery_t *n) {
  return n->failed;
}
static inline int fdn_nursery_aborted(const fdn_nursery_t *n) {
  return n->aborted;
}

#endif
