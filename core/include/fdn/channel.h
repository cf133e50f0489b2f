/* A channel: a bounded FIFO of opaque items between tasks.
 *
 * Items are intptr_t values the channel never looks into (a pointer, an
 * index into the caller's own table). A getter finding the channel empty
 * parks; a putter finding it full parks. Both queues are FIFO and every
 * transfer is a direct hand-off: a put with getters waiting gives the item
 * to the first getter (made READY, already holding it); a get from a full
 * channel moves the first waiting putter's item in behind the others and
 * wakes that putter. So no task overtakes one that waits, and items leave
 * in the order they were put.
 *
 * A task handed an item and cancelled before it runs still has the item:
 * its get succeeded and the cancellation is seen at its next suspension. A
 * waiter that is cancelled or times out while parked leaves the queue with
 * nothing taken: a getter took no item, a putter still owns its item.
 *
 * Closing refuses new items at once (putters, parked or not, see
 * FDN_ECLOSED) while getters drain what is queued before they see
 * FDN_ECLOSED.
 *
 * The channel is caller-allocated and belongs to no engine: tasks of any
 * engine (one at a time, on one thread) may use it. It is not thread safe.
 */
#ifndef FDN_CHANNEL_H
#define FDN_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "fdn/task.h"

/* maxsize of a channel that never fills (memory permitting). */
#define FDN_CHANNEL_UNBOUNDED SIZE_MAX

typedef struct fdn_channel_s {
  void *data; /* free for the owner */
  /* private */
  intptr_t *ring; /* grows on demand up to maxsize, shrinks when mostly empty */
  size_t cap;
  size_t head;
  size_t len;
  size_t maxsize;
  fdn_waitq_t getters;
  fdn_waitq_t putters;
  uint8_t closed;
} fdn_channel_t;

/* Initialises an empty channel holding at most `maxsize` items (at least 1;
 * FDN_CHANNEL_UNBOUNDED for no limit). Allocates nothing until the first
 * item is queued. Returns FDN_EINVAL for a NULL channel or maxsize 0.
 */
int fdn_channel_init(fdn_channel_t *ch, size_t maxsize);

/* Frees the ring. Items still queued are dropped unseen: drain them first
 * with fdn_channel_try_get() when they own memory. Tasks must not be
 * waiting (close the channel and let them run first).
 */
void fdn_channel_destroy(fdn_channel_t *ch);

/* Puts `item` for `task`.
 *
 * Returns 1 when the item was handed to a waiting getter or queued (the task
 * did not park), 0 when the channel was full and the task parked at the tail
 * of the putters: its run callback is later called with status 0 once a
 * getter took the item, or FDN_ECANCELED, FDN_ETIMEDOUT (after `timeout_ns`;
 * FDN_FOREVER for none) or FDN_ECLOSED when it was not taken: the item is
 * then still the caller's, also readable with fdn_channel_item(task).
 *
 * Fails without parking with FDN_ECLOSED once closed, FDN_ECANCELED when a
 * cancellation is pending, FDN_ETIMEDOUT when full and `timeout_ns` is 0,
 * FDN_ENOMEM when the ring cannot grow, and FDN_ESTATE when `task` is not
 * the running task. `task` may be NULL: the call then never parks and
 * returns FDN_EAGAIN when full.
 */
int fdn_channel_put(fdn_channel_t *ch, fdn_task_t *task, intptr_t item,
                    uint64_t timeout_ns);

/* Gets the oldest item for `task`.
 *
 * Returns 1 with `*item` set when one was queued (the task did not park), 0
 * when the channel was empty and the task parked at the tail of the
 * getters: its run callback is later called with status 0 once a putter
 * handed it an item, read with fdn_channel_item(task), or FDN_ECANCELED,
 * FDN_ETIMEDOUT or FDN_ECLOSED (closed while it waited) with no item.
 *
 * Fails without parking with FDN_ECLOSED when closed and drained,
 * FDN_ECANCELED when a cancellation is pending (even if items are queued),
 * FDN_ETIMEDOUT when empty and `timeout_ns` is 0, and FDN_ESTATE when `task`
 * is not the running task. `task` may be NULL: the call then never parks and
 * returns FDN_EAGAIN when empty.
 */
int fdn_channel_get(fdn_channel_t *ch, fdn_task_t *task, intptr_t *item,
                    uint64_t timeout_ns);

/* Non-blocking forms for any caller, task or not: 0 on success, FDN_EAGAIN
 * when full (put) or empty (get), FDN_ECLOSED when closed (put) or closed
 * and drained (get), FDN_ENOMEM when the ring cannot grow.
 */
int fdn_channel_try_put(fdn_channel_t *ch, intptr_t item);
int fdn_channel_try_get(fdn_channel_t *ch, intptr_t *item);

/* Closes the channel: wakes every parked putter and getter with
 * FDN_ECLOSED. Queued items stay for getters to drain. Idempotent.
 */
void fdn_channel_close(fdn_channel_t *ch);

/* The item a parked getter was handed (after a wake with status 0), or the
 * item a parked putter still owns (after a wake with an error status).
 */
static inline intptr_t fdn_channel_item(const fdn_task_t *task) {
  return task->handoff;
}

static inline size_t fdn_channel_len(const fdn_channel_t *ch) {
  return ch->len;
}
static inline size_t fdn_channel_maxsize(const fdn_channel_t *ch) {
  return ch->maxsize;
}
static inline int fdn_channel_closed(const fdn_channel_t *ch) {
  return ch->closed;
}
static inline uint32_t fdn_channel_getters(const fdn_channel_t *ch) {
  return fdn_waitq_len(&ch->getters);
}
static inline uint32_t fdn_channel_putters(const fdn_channel_t *ch) {
  return fdn_waitq_len(&ch->putters);
}

#endif
