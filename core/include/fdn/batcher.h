/* Batcher: groups items into batches and hands each batch to a flush
 * callback, in order.
 *
 * A batch is sealed when `batch_size` items wait in it, when
 * `flush_interval` has passed since its first item (on the engine clock, one
 * fdn_timer_t per batcher), on fdn_batcher_flush(), or on close. Sealed
 * batches are handed to the flush callback in seal order, at most
 * `max_concurrent` at a time; the callback (or whoever it delegates to)
 * reports the end of each flush with fdn_batcher_done(). At most
 * `max_pending` items are buffered (open batch plus sealed batches not yet
 * handed over); beyond that, the overflow policy says whether adding fails
 * with FDN_EFULL (BLOCK: wait with fdn_batcher_wait_space() and try again;
 * ERROR: report it) or drops the oldest buffered item (DROP_OLDEST).
 *
 * Two ways to hold items:
 * - storing mode (the default): fdn_batcher_add() keeps `void *` items and
 *   each batch carries them in `items`. This is what a C host uses.
 * - counting mode (`counting = 1`): the caller keeps the items itself and
 *   tells the batcher how many the open batch holds only at batch
 *   boundaries (fdn_batcher_count_add() returns how far the open batch may
 *   grow before the next call). That is how the Lua binding adds items with
 *   a plain table store instead of a C call per item. The time trigger then
 *   calls `due`, and the caller seals with fdn_batcher_count_seal().
 *
 * The batcher is caller-allocated. The engine borrows its timer until the
 * batcher is closed (or discarded): close the batcher, and wait for its
 * close callback, before closing the engine.
 */
#ifndef FDN_BATCHER_H
#define FDN_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "fdn/task.h"
#include "fdn/timer.h"

typedef struct fdn_batcher_s fdn_batcher_t;
typedef struct fdn_batch_s fdn_batch_t;

/* Why a batch was sealed. */
typedef enum {
  FDN_BATCH_SIZE = 0,   /* batch_size items were waiting */
  FDN_BATCH_TIME = 1,   /* flush_interval passed since its first item */
  FDN_BATCH_MANUAL = 2, /* fdn_batcher_flush() or fdn_batcher_count_seal() */
  FDN_BATCH_CLOSE = 3   /* fdn_batcher_close() */
} fdn_batch_reason_t;

#define FDN_BATCH_REASONS 4

typedef enum {
  FDN_OVERFLOW_BLOCK = 0, /* add fails with FDN_EFULL; wait for space */
  FDN_OVERFLOW_ERROR = 1, /* add fails with FDN_EFULL; the caller reports it */
  FDN_OVERFLOW_DROP_OLDEST = 2 /* the oldest buffered item is dropped */
} fdn_overflow_t;

/* Hands a sealed batch over. The batch is borrowed until the matching
 * fdn_batcher_done(), which may be called from inside the callback.
 */
typedef void (*fdn_batcher_flush_cb)(fdn_batcher_t *batcher,
                                     fdn_batch_t *batch);
/* Storing mode: DROP_OLDEST removed `item` from the head of `batch`; the
 * caller owns the item again. Must not call back into the batcher.
 */
typedef void (*fdn_batcher_drop_cb)(fdn_batcher_t *batcher, fdn_batch_t *batch,
                                    void *item);
/* Counting mode: the open batch's flush_interval has passed; seal it with
 * fdn_batcher_count_seal(..., FDN_BATCH_TIME, ...). Must not call back into
 * the batcher from inside the callback (it runs from the timer).
 */
typedef void (*fdn_batcher_due_cb)(fdn_batcher_t *batcher);
/* The batcher is closed and every flush has finished. Last call the batcher
 * makes: the callback may free it.
 */
typedef void (*fdn_batcher_close_cb)(fdn_batcher_t *batcher);

typedef struct fdn_batcher_options_s {
  size_t batch_size;          /* items that seal a batch; >= 1 (default 100) */
  uint64_t flush_interval;    /* ns from a batch's first item to its sealing;
                                 FDN_FOREVER: no time trigger (default 1 s) */
  size_t max_pending;         /* buffered items; >= batch_size, 0: 10 x
                                 batch_size (the default) */
  unsigned max_concurrent;    /* flushes in flight at once; >= 1 (default 1) */
  fdn_overflow_t overflow;    /* default FDN_OVERFLOW_BLOCK */
  int counting;               /* see "counting mode" above */
  fdn_batcher_flush_cb flush; /* required */
  fdn_batcher_drop_cb drop;   /* optional */
  fdn_batcher_due_cb due;     /* counting mode with a flush_interval */
} fdn_batcher_options_t;

struct fdn_batch_s {
  void *data;                /* free for the flusher */
  uint64_t seq;              /* 1, 2, ... in seal order */
  size_t len;                /* items to deliver */
  size_t dropped;            /* items DROP_OLDEST took from its head */
  fdn_batch_reason_t reason; /* why it was sealed */
  void **items; /* storing mode: items[0 .. len-1]; NULL when counting */
  /* private */
  fdn_batch_t *next;
  fdn_batch_t *prev;
  uint8_t state;
};

typedef struct fdn_batcher_stats_s {
  uint64_t added;                        /* items accepted */
  uint64_t dropped;                      /* items DROP_OLDEST removed */
  uint64_t batches;                      /* batches sealed */
  uint64_t by_reason[FDN_BATCH_REASONS]; /* batches sealed, by reason */
  uint64_t flushed; /* flushes finished (delivered or failed) */
  uint64_t failed;  /* flushes finished as failed */
  size_t buffered;  /* items in the open and sealed batches now */
  size_t in_flight; /* flushes handed over and not done */
} fdn_batcher_stats_t;

struct fdn_batcher_s {
  void *data; /* free for the owner */
  /* private */
  fdn_engine_t *engine;
  fdn_batcher_options_t opts;
  fdn_timer_t timer;
  fdn_batch_t *open; /* storing mode: the open batch, once it has items */
  size_t open_len;
  fdn_batch_t *sealed_head; /* sealed, not handed over yet: FIFO */
  fdn_batch_t *sealed_tail;
  size_t sealed_items;
  fdn_batch_t *flying_head; /* handed over, not done: in seal order */
  fdn_batch_t *flying_tail;
  unsigned in_flight;
  uint64_t last_seq;
  fdn_waitq_t space;    /* tasks waiting for room */
  fdn_waitq_t progress; /* tasks waiting for flushes to finish */
  fdn_batcher_stats_t stats;
  fdn_batcher_close_cb close_cb;
  fdn_batch_t *spare; /* finished batches kept for reuse */
  unsigned nspare;
  uint8_t closed;
  uint8_t close_done;
  uint8_t due;
  uint8_t dispatching;
};

void fdn_batcher_options_init(fdn_batcher_options_t *opts);

/* Initialises a batcher on `engine`. Copies the options. Returns
 * FDN_EINVAL for a NULL argument, a missing callback or an option out of
 * range.
 */
int fdn_batcher_init(fdn_engine_t *engine, fdn_batcher_t *batcher,
                     const fdn_batcher_options_t *opts);

/* Storing mode: adds `item` (borrowed until its batch is handed to the
 * flush callback). May seal a batch and call the flush callback before
 * returning. Returns 0, FDN_EFULL when max_pending items are buffered
 * (BLOCK and ERROR policies), FDN_ECLOSED after close, FDN_ENOMEM, or
 * FDN_EINVAL in counting mode.
 */
int fdn_batcher_add(fdn_batcher_t *batcher, void *item);

/* Seals the open batch (reason MANUAL), if it has items, and hands over
 * what it can. `*seq` (may be NULL) receives the newest sealed batch's seq,
 * 0 when none was ever sealed: wait for fdn_batcher_flushed(b, seq) to know
 * that everything added so far has been flushed. Storing mode only; in
 * counting mode use fdn_batcher_count_seal().
 */
int fdn_batcher_flush(fdn_batcher_t *batcher, uint64_t *seq);

/* Ends the flush of `batch` and frees it; `failed` is nonzero when the
 * batch was not delivered (it counts in stats.failed). Hands over the next
 * sealed batches. Returns FDN_EINVAL for a batch that is not in flight.
 */
int fdn_batcher_done(fdn_batcher_t *batcher, fdn_batch_t *batch, int failed);

/* Refuses further adds (FDN_ECLOSED), seals the open batch (reason CLOSE),
 * wakes the tasks waiting for space with FDN_ECLOSED, and calls `cb` (may be
 * NULL) once every sealed batch has been flushed, possibly before this
 * returns. In counting mode, seal the open batch first with
 * fdn_batcher_count_seal(); FDN_ESTATE otherwise. FDN_ECLOSED when already
 * closed.
 */
int fdn_batcher_close(fdn_batcher_t *batcher, fdn_batcher_close_cb cb);

/* Frees every batch the batcher still holds, without flushing or calling
 * any callback, and stops its timer: for owners tearing down abnormally.
 * Tasks waiting on it are woken with FDN_ECLOSED. The batcher is closed.
 */
void fdn_batcher_discard(fdn_batcher_t *batcher);

/* Parks the running `task` until there is room for an item (woken with 0)
 * or the batcher closes (woken with FDN_ECLOSED). Returns 1 without parking
 * when there is room already, FDN_ECLOSED when closed, 0 when parked, or
 * what fdn_task_wait() returns.
 */
int fdn_batcher_wait_space(fdn_batcher_t *batcher, fdn_task_t *task);

/* Parks the running `task` until the next flush finishes, a batch is
 * dropped whole, or the close completes (woken with 0). Callers re-check
 * fdn_batcher_flushed() and wait again.
 */
int fdn_batcher_wait_progress(fdn_batcher_t *batcher, fdn_task_t *task);

/* Wakes the tasks waiting for progress, for owners whose own machinery
 * changed what they wait for (a flusher of theirs went away).
 */
void fdn_batcher_notify(fdn_batcher_t *batcher);

/* 1 when every batch sealed up to `seq` has finished its flush (or was
 * dropped whole), else 0. Batches finish in seal order with one flush at a
 * time; with more, this still waits for all the earlier ones.
 */
int fdn_batcher_flushed(const fdn_batcher_t *batcher, uint64_t seq);

/* 1 once the batcher is closed and every flush has finished. */
int fdn_batcher_closed(const fdn_batcher_t *batcher);

/* Items buffered: the open batch plus sealed batches not handed over. */
size_t fdn_batcher_buffered(const fdn_batcher_t *batcher);

/* The seq of the newest sealed batch, 0 when none was sealed yet. */
uint64_t fdn_batcher_last_seq(const fdn_batcher_t *batcher);

/* 1 while the time trigger of the open batch is armed. */
int fdn_batcher_timer_armed(const fdn_batcher_t *batcher);

void fdn_batcher_get_stats(const fdn_batcher_t *batcher,
                           fdn_batcher_stats_t *out);

/* Moves a batcher with nothing sealed or in flight to another engine (its
 * first engine closed). The open batch's time trigger restarts there.
 * FDN_EBUSY while batches are sealed or in flight.
 */
int fdn_batcher_rebind(fdn_batcher_t *batcher, fdn_engine_t *engine);

/* Counting mode ----------------------------------------------------------*/

/* What fdn_batcher_count_add() tells the caller. */
typedef struct fdn_batcher_grant_s {
  size_t room;      /* the open batch may grow to `room` items without
                       calling again; 0: call for the next item */
  uint64_t sealed;  /* nonzero: the open batch, new item included, was
                       sealed under this seq; start a new one */
  uint64_t dropped; /* nonzero: DROP_OLDEST removed the first remaining
                       item of this sealed batch */
  int dropped_all;  /* ... which left that batch empty: it is gone */
} fdn_batcher_grant_t;

/* The caller holds `open_len` items in the open batch (never fewer than at
 * the previous call) and wants to add one. On 0 the item is accepted; see
 * the grant. Returns FDN_EFULL, FDN_ECLOSED, FDN_EINVAL (not counting mode,
 * or `open_len` inconsistent with earlier calls), FDN_ENOMEM.
 */
int fdn_batcher_count_add(fdn_batcher_t *batcher, size_t open_len,
                          fdn_batcher_grant_t *grant);

/* The caller holds `open_len` items in the open batch: seals it with
 * `reason` when it has items (`*seq` receives its seq, else 0) and hands
 * over what it can. Also just records `open_len` when it is 0.
 */
int fdn_batcher_count_seal(fdn_batcher_t *batcher, size_t open_len,
                           fdn_batch_reason_t reason, uint64_t *seq);

/* Records that the caller holds `open_len` items in the open batch, within
 * the room granted, without sealing (for up-to-date statistics).
 */
int fdn_batcher_count_sync(fdn_batcher_t *batcher, size_t open_len);

/* Items in the open batch (as of the last call, in counting mode). */
static inline size_t fdn_batcher_open_len(const fdn_batcher_t *batcher) {
  return batcher->open_len;
}

/* 1 once fdn_batcher_close() (or discard) was called. */
static inline int fdn_batcher_closing(const fdn_batcher_t *batcher) {
  return batcher->closed;
}

/* 1 when the time trigger fired and the open batch waits to be sealed. */
static inline int fdn_batcher_due(const fdn_batcher_t *batcher) {
  return batcher->due;
}

#endif
