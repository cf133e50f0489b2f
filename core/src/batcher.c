#include "fdn/batcher.h"

#include <stdlib.h>
#include <string.h>

#include "fdn/engine.h"
#include "fdn/error.h"
#include "internal.h"

/* Where a batch is: its list decides which pointers are meaningful. */
enum { BATCH_OPEN = 0, BATCH_SEALED = 1, BATCH_FLYING = 2 };

static void on_timer(fdn_timer_t *timer);

void fdn_batcher_options_init(fdn_batcher_options_t *opts) {
  memset(opts, 0, sizeof(*opts));
  opts->batch_size = 100;
  opts->flush_interval = 1000000000u;
  opts->max_concurrent = 1;
  opts->overflow = FDN_OVERFLOW_BLOCK;
}

int fdn_batcher_init(fdn_engine_t *engine, fdn_batcher_t *b,
                     const fdn_batcher_options_t *opts) {
  fdn_batcher_options_t o;
  if (engine == NULL || b == NULL || opts == NULL)
    return FDN_EINVAL;
  o = *opts;
  if (o.flush == NULL || o.batch_size == 0 || o.max_concurrent == 0)
    return FDN_EINVAL;
  if ((unsigned)o.overflow > FDN_OVERFLOW_DROP_OLDEST)
    return FDN_EINVAL;
  if (o.counting && o.due == NULL && o.flush_interval != FDN_FOREVER)
    return FDN_EINVAL;
  /* Storing mode keeps each batch's items in one allocation. */
  if (o.batch_size > (SIZE_MAX - sizeof(fdn_batch_t)) / sizeof(void *))
    return FDN_EINVAL;
  if (o.max_pending == 0) {
    if (o.batch_size > SIZE_MAX / 10)
      return FDN_EINVAL;
    o.max_pending = o.batch_size * 10;
  }
  if (o.max_pending < o.batch_size)
    return FDN_EINVAL;
  memset(b, 0, sizeof(*b));
  b->engine = engine;
  b->opts = o;
  fdn_timer_init(engine, &b->timer);
  fdn_waitq_init(&b->space);
  fdn_waitq_init(&b->progress);
  return 0;
}

static size_t buffered(const fdn_batcher_t *b) {
  return b->open_len + b->sealed_items;
}

/* Finished batches are kept for reuse, so a busy batcher seals and
 * finishes batches without touching the allocator: many of the small
 * records of counting mode, a few of storing mode's (they hold items).
 */
#define SPARE_COUNTING 64
#define SPARE_STORING 4

static fdn_batch_t *new_batch(fdn_batcher_t *b) {
  size_t extra = b->opts.counting ? 0 : b->opts.batch_size * sizeof(void *);
  fdn_batch_t *batch = b->spare;
  if (batch != NULL) {
    b->spare = batch->next;
    b->nspare--;
  } else if ((batch = malloc(sizeof(*batch) + extra)) == NULL) {
    return NULL;
  }
  memset(batch, 0, sizeof(*batch));
  if (!b->opts.counting)
    batch->items = (void **)(batch + 1);
  return batch;
}

static void release_batch(fdn_batcher_t *b, fdn_batch_t *batch) {
  if (b->nspare >= (b->opts.counting ? SPARE_COUNTING : SPARE_STORING)) {
    free(batch);
    return;
  }
  batch->next = b->spare;
  b->spare = batch;
  b->nspare++;
}

/* Sealed batches: a FIFO through `next`. */
static void sealed_push(fdn_batcher_t *b, fdn_batch_t *batch) {
  batch->next = NULL;
  batch->state = BATCH_SEALED;
  if (b->sealed_tail != NULL)
    b->sealed_tail->next = batch;
  else
    b->sealed_head = batch;
  b->sealed_tail = batch;
  b->sealed_items += batch->len;
}

static fdn_batch_t *sealed_pop(fdn_batcher_t *b) {
  fdn_batch_t *batch = b->sealed_head;
  b->sealed_head = batch->next;
  if (b->sealed_head == NULL)
    b->sealed_tail = NULL;
  batch->next = NULL;
  b->sealed_items -= batch->len;
  return batch;
}

/* Batches in flight: doubly linked, in seal order (they are handed over in
 * that order); they may finish in any order.
 */
static void flying_push(fdn_batcher_t *b, fdn_batch_t *batch) {
  batch->state = BATCH_FLYING;
  batch->next = NULL;
  batch->prev = b->flying_tail;
  if (b->flying_tail != NULL)
    b->flying_tail->next = batch;
  else
    b->flying_head = batch;
  b->flying_tail = batch;
  b->in_flight++;
}

static void flying_remove(fdn_batcher_t *b, fdn_batch_t *batch) {
  if (batch->prev != NULL)
    batch->prev->next = batch->next;
  else
    b->flying_head = batch->next;
  if (batch->next != NULL)
    batch->next->prev = batch->prev;
  else
    b->flying_tail = batch->prev;
  batch->next = batch->prev = NULL;
  b->in_flight--;
}

static int arm_timer(fdn_batcher_t *b) {
  if (b->opts.flush_interval == FDN_FOREVER)
    return 0;
  return fdn_timer_start(&b->timer, on_timer, b->opts.flush_interval);
}

/* Seals the open batch, which has items. In counting mode `batch` is a
 * fresh record allocated by the caller, so sealing itself cannot fail.
 */
static void seal(fdn_batcher_t *b, fdn_batch_t *batch,
                 fdn_batch_reason_t reason) {
  if (!b->opts.counting)
    b->open = NULL;
  batch->len = b->open_len;
  batch->seq = ++b->last_seq;
  batch->reason = reason;
  b->open_len = 0;
  b->due = 0;
  fdn_timer_stop(&b->timer);
  sealed_push(b, batch);
  b->stats.batches++;
  b->stats.by_reason[reason]++;
}

/* Hands sealed batches to the flush callback while the concurrency limit
 * allows. The callback may call fdn_batcher_done() (or add, or flush)
 * re-entrantly: the nested call returns at once and this loop carries on,
 * so the stack never grows with the number of batches.
 */
static void dispatch(fdn_batcher_t *b) {
  if (b->dispatching)
    return;
  b->dispatching = 1;
  while (b->in_flight < b->opts.max_concurrent && b->sealed_head != NULL) {
    fdn_batch_t *batch = sealed_pop(b);
    flying_push(b, batch);
    if (fdn_waitq_len(&b->space) > 0 && buffered(b) < b->opts.max_pending)
      fdn_waitq_wake_all(&b->space, 0);
    b->opts.flush(b, batch);
  }
  b->dispatching = 0;
}

static void free_list(fdn_batch_t *batch) {
  while (batch != NULL) {
    fdn_batch_t *next = batch->next;
    free(batch);
    batch = next;
  }
}

/* Completes a close once nothing is left. Every public entry point calls
 * it last, since the close callback may free the batcher.
 */
static void finish_close_if_done(fdn_batcher_t *b) {
  fdn_batcher_close_cb cb;
  if (!b->closed || b->close_done || b->dispatching || b->sealed_head != NULL ||
      b->flying_head != NULL)
    return;
  b->close_done = 1;
  fdn_timer_stop(&b->timer);
  /* A closed batcher holds no memory: the callback may free it. */
  free(b->open);
  b->open = NULL;
  free_list(b->spare);
  b->spare = NULL;
  b->nspare = 0;
  fdn_waitq_wake_all(&b->progress, 0);
  cb = b->close_cb;
  if (cb != NULL)
    cb(b);
}

/* Drops the first remaining item of the oldest sealed batch. Only called
 * when max_pending items are buffered while the open batch holds fewer than
 * batch_size <= max_pending, so a sealed batch with items exists.
 */
static void drop_oldest(fdn_batcher_t *b, fdn_batcher_grant_t *grant) {
  fdn_batch_t *batch = b->sealed_head;
  void *item = NULL;
  if (batch->items != NULL) {
    item = batch->items[0];
    batch->items++;
  }
  batch->len--;
  batch->dropped++;
  b->sealed_items--;
  b->stats.dropped++;
  if (grant != NULL)
    grant->dropped = batch->seq;
  if (b->opts.drop != NULL)
    b->opts.drop(b, batch, item);
  if (batch->len == 0) {
    sealed_pop(b);
    release_batch(b, batch);
    if (grant != NULL)
      grant->dropped_all = 1;
    fdn_waitq_wake_all(&b->progress, 0);
  }
}

static void on_timer(fdn_timer_t *timer) {
  fdn_batcher_t *b = fdn__container_of(timer, fdn_batcher_t, timer);
  if (b->open_len == 0 || b->closed)
    return;
  if (b->opts.counting) {
    b->due = 1;
    b->opts.due(b);
    return;
  }
  seal(b, b->open, FDN_BATCH_TIME);
  dispatch(b);
  finish_close_if_done(b);
}

int fdn_batcher_add(fdn_batcher_t *b, void *item) {
  int rc;
  if (b->opts.counting)
    return FDN_EINVAL;
  if (b->closed)
    return FDN_ECLOSED;
  if (buffered(b) >= b->opts.max_pending &&
      b->opts.overflow != FDN_OVERFLOW_DROP_OLDEST)
    return FDN_EFULL;
  if (b->open == NULL && (b->open = new_batch(b)) == NULL)
    return FDN_ENOMEM;
  /* The time trigger starts at a batch's first item, unless that item
   * fills the batch at once.
   */
  if (b->open_len == 0 && b->opts.batch_size > 1 && (rc = arm_timer(b)) != 0)
    return rc;
  if (buffered(b) >= b->opts.max_pending)
    drop_oldest(b, NULL);
  b->open->items[b->open_len++] = item;
  b->stats.added++;
  if (b->open_len >= b->opts.batch_size) {
    seal(b, b->open, FDN_BATCH_SIZE);
    dispatch(b);
    finish_close_if_done(b);
  }
  return 0;
}

int fdn_batcher_flush(fdn_batcher_t *b, uint64_t *seq) {
  if (b->opts.counting)
    return FDN_EINVAL;
  if (b->open_len > 0) {
    seal(b, b->open, FDN_BATCH_MANUAL);
    dispatch(b);
  }
  if (seq != NULL)
    *seq = b->last_seq;
  finish_close_if_done(b);
  return 0;
}

int fdn_batcher_done(fdn_batcher_t *b, fdn_batch_t *batch, int failed) {
  if (batch == NULL || batch->state != BATCH_FLYING)
    return FDN_EINVAL;
  flying_remove(b, batch);
  release_batch(b, batch);
  b->stats.flushed++;
  if (failed)
    b->stats.failed++;
  fdn_waitq_wake_all(&b->progress, 0);
  dispatch(b);
  finish_close_if_done(b);
  return 0;
}

int fdn_batcher_close(fdn_batcher_t *b, fdn_batcher_close_cb cb) {
  if (b->closed)
    return FDN_ECLOSED;
  if (b->opts.counting && b->open_len > 0)
    return FDN_ESTATE;
  b->closed = 1;
  b->close_cb = cb;
  if (b->open_len > 0)
    seal(b, b->open, FDN_BATCH_CLOSE);
  fdn_timer_stop(&b->timer);
  fdn_waitq_wake_all(&b->space, FDN_ECLOSED);
  dispatch(b);
  finish_close_if_done(b);
  return 0;
}

void fdn_batcher_discard(fdn_batcher_t *b) {
  fdn_timer_stop(&b->timer);
  free(b->open);
  b->open = NULL;
  b->open_len = 0;
  free_list(b->sealed_head);
  free_list(b->flying_head);
  free_list(b->spare);
  b->spare = NULL;
  b->nspare = 0;
  b->sealed_head = b->sealed_tail = NULL;
  b->flying_head = b->flying_tail = NULL;
  b->sealed_items = 0;
  b->in_flight = 0;
  b->closed = 1;
  b->close_done = 1;
  b->close_cb = NULL;
  fdn_waitq_wake_all(&b->space, FDN_ECLOSED);
  fdn_waitq_wake_all(&b->progress, FDN_ECLOSED);
}

int fdn_batcher_wait_space(fdn_batcher_t *b, fdn_task_t *task) {
  if (b->closed)
    return FDN_ECLOSED;
  if (buffered(b) < b->opts.max_pending)
    return 1;
  return fdn_task_wait(task, &b->space, FDN_FOREVER);
}

int fdn_batcher_wait_progress(fdn_batcher_t *b, fdn_task_t *task) {
  return fdn_task_wait(task, &b->progress, FDN_FOREVER);
}

void fdn_batcher_notify(fdn_batcher_t *b) {
  fdn_waitq_wake_all(&b->progress, 0);
}

int fdn_batcher_flushed(const fdn_batcher_t *b, uint64_t seq) {
  uint64_t lowest;
  if (b->flying_head != NULL)
    lowest = b->flying_head->seq;
  else if (b->sealed_head != NULL)
    lowest = b->sealed_head->seq;
  else
    lowest = b->last_seq + 1;
  return seq < lowest;
}

int fdn_batcher_closed(const fdn_batcher_t *b) {
  return b->close_done;
}

size_t fdn_batcher_buffered(const fdn_batcher_t *b) {
  return buffered(b);
}

uint64_t fdn_batcher_last_seq(const fdn_batcher_t *b) {
  return b->last_seq;
}

int fdn_batcher_timer_armed(const fdn_batcher_t *b) {
  return fdn_timer_active(&b->timer);
}

void fdn_batcher_get_stats(const fdn_batcher_t *b, fdn_batcher_stats_t *out) {
  *out = b->stats;
  out->buffered = buffered(b);
  out->in_flight = b->in_flight;
}

int fdn_batcher_rebind(fdn_batcher_t *b, fdn_engine_t *engine) {
  if (engine == NULL)
    return FDN_EINVAL;
  if (b->sealed_head != NULL || b->flying_head != NULL)
    return FDN_EBUSY;
  /* A closed engine has already unlinked the timer from its heap, so this
   * does not touch the old engine's memory.
   */
  fdn_timer_stop(&b->timer);
  b->engine = engine;
  fdn_timer_init(engine, &b->timer);
  b->due = 0;
  if (b->open_len > 0 && !b->closed)
    return arm_timer(b);
  return 0;
}

/* Counting mode ----------------------------------------------------------*/

/* How far the open batch may grow before the caller must call again: never
 * to batch_size (that add seals), never past max_pending, and not at all
 * from empty (the first item arms the time trigger).
 */
static size_t room(const fdn_batcher_t *b) {
  size_t cap = b->opts.batch_size - 1, avail;
  if (b->open_len == 0 || b->closed)
    return 0;
  avail = b->opts.max_pending - b->sealed_items;
  return cap < avail ? cap : avail;
}

/* Records the caller's open batch size: it only grows between calls, and
 * only within the room the previous call granted.
 */
static int sync_open(fdn_batcher_t *b, size_t open_len) {
  if (open_len < b->open_len || open_len >= b->opts.batch_size ||
      open_len + b->sealed_items > b->opts.max_pending)
    return FDN_EINVAL;
  b->stats.added += open_len - b->open_len;
  b->open_len = open_len;
  return 0;
}

int fdn_batcher_count_sync(fdn_batcher_t *b, size_t open_len) {
  if (!b->opts.counting)
    return FDN_EINVAL;
  if (b->closed)
    return open_len == 0 ? 0 : FDN_ECLOSED;
  return sync_open(b, open_len);
}

int fdn_batcher_count_add(fdn_batcher_t *b, size_t open_len,
                          fdn_batcher_grant_t *grant) {
  fdn_batch_t *record = NULL;
  int rc;
  memset(grant, 0, sizeof(*grant));
  if (!b->opts.counting)
    return FDN_EINVAL;
  if (b->closed)
    return FDN_ECLOSED;
  if ((rc = sync_open(b, open_len)) != 0)
    return rc;
  if (buffered(b) >= b->opts.max_pending &&
      b->opts.overflow != FDN_OVERFLOW_DROP_OLDEST)
    return FDN_EFULL;
  if (open_len + 1 >= b->opts.batch_size && (record = new_batch(b)) == NULL)
    return FDN_ENOMEM;
  if (open_len == 0 && record == NULL && (rc = arm_timer(b)) != 0) {
    release_batch(b, record);
    return rc;
  }
  if (buffered(b) >= b->opts.max_pending)
    drop_oldest(b, grant);
  b->open_len++;
  b->stats.added++;
  if (record != NULL) {
    seal(b, record, FDN_BATCH_SIZE);
    grant->sealed = record->seq;
    grant->room = 0;
    dispatch(b);
    finish_close_if_done(b);
    return 0;
  }
  grant->room = room(b);
  return 0;
}

int fdn_batcher_count_seal(fdn_batcher_t *b, size_t open_len,
                           fdn_batch_reason_t reason, uint64_t *seq) {
  fdn_batch_t *record;
  int rc;
  if (seq != NULL)
    *seq = 0;
  if (!b->opts.counting || (unsigned)reason >= FDN_BATCH_REASONS)
    return FDN_EINVAL;
  if (b->closed)
    return open_len == 0 ? 0 : FDN_ECLOSED;
  if ((rc = sync_open(b, open_len)) != 0)
    return rc;
  if (open_len == 0) {
    b->due = 0;
    return 0;
  }
  if ((record = new_batch(b)) == NULL)
    return FDN_ENOMEM;
  seal(b, record, reason);
  if (seq != NULL)
    *seq = record->seq;
  dispatch(b);
  finish_close_if_done(b);
  return 0;
}
