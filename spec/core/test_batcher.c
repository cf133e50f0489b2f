/* The batcher: triggers, order, concurrency, backpressure, overflow,
 * close, counting mode.
 */
#include <string.h>

#include "ctask.h"
#include "test.h"

#define MAX_SEEN 4096

/* What the flush callback saw, across batches. */
typedef struct {
  int sync;               /* call fdn_batcher_done() from the callback */
  int batches;            /* batches handed over */
  uint64_t seqs[256];     /* per batch */
  int reasons[256];       /* per batch */
  size_t lens[256];       /* per batch */
  uint64_t times[256];    /* engine time when handed over */
  fdn_batch_t *held[256]; /* async: batches not done yet, by order */
  long items[MAX_SEEN];   /* every item, in delivery order */
  int nitems;
  long dropped[64];
  int ndropped;
  int due_calls;
  int closed_calls;
  int in_flight_peak;
} seen_t;

static seen_t seen;

static void on_flush(fdn_batcher_t *b, fdn_batch_t *batch) {
  int i = seen.batches++;
  size_t k;
  fdn_batcher_stats_t stats;
  seen.seqs[i] = batch->seq;
  seen.reasons[i] = (int)batch->reason;
  seen.lens[i] = batch->len;
  seen.times[i] = fdn_engine_now(b->engine);
  seen.held[i] = batch;
  for (k = 0; batch->items != NULL && k < batch->len; k++)
    seen.items[seen.nitems++] = (long)(intptr_t)batch->items[k];
  fdn_batcher_get_stats(b, &stats);
  if ((int)stats.in_flight > seen.in_flight_peak)
    seen.in_flight_peak = (int)stats.in_flight;
  if (seen.sync) {
    seen.held[i] = NULL;
    fdn_batcher_done(b, batch, 0);
  }
}

static void on_drop(fdn_batcher_t *b, fdn_batch_t *batch, void *item) {
  (void)b;
  (void)batch;
  seen.dropped[seen.ndropped++] = (long)(intptr_t)item;
}

static void on_due(fdn_batcher_t *b) {
  (void)b;
  seen.due_calls++;
}

static void on_closed(fdn_batcher_t *b) {
  (void)b;
  seen.closed_calls++;
}

static void reset_seen(int sync) {
  memset(&seen, 0, sizeof(seen));
  seen.sync = sync;
}

static void options(fdn_batcher_options_t *o, size_t size, uint64_t interval) {
  fdn_batcher_options_init(o);
  o->batch_size = size;
  o->flush_interval = interval;
  o->flush = on_flush;
  o->drop = on_drop;
  o->due = on_due;
}

#define ITEM(n) ((void *)(intptr_t)(n))
#define SECOND 1000000000ull

TEST_IMPL(batcher_seals_at_batch_size_in_add_order) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  fdn_batcher_t b;
  fdn_batcher_options_t o;
  fdn_batcher_stats_t st;
  uint64_t seq = 99;
  long i;
  reset_seen(1);
  options(&o, 3, FDN_FOREVER);
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), 0);
  for (i = 1; i <= 7; i++)
    ASSERT_EQ(fdn_batcher_add(&b, ITEM(i)), 0);
  ASSERT_EQ(seen.batches, 2);
  ASSERT_EQ(seen.reasons[0], FDN_BATCH_SIZE);
  ASSERT_EQ(seen.lens[1], 3);
  ASSERT_EQ(fdn_batcher_buffered(&b), 1);
  ASSERT_EQ(fdn_batcher_flush(&b, &seq), 0);
  ASSERT_EQ(seq, 3);
  ASSERT_EQ(seen.batches, 3);
  ASSERT_EQ(seen.reasons[2], FDN_BATCH_MANUAL);
  ASSERT_EQ(seen.lens[2], 1);
  for (i = 0; i < 7; i++)
    ASSERT_EQ(seen.items[i], i + 1);
  ASSERT_EQ(seen.seqs[0], 1);
  ASSERT_EQ(seen.seqs[2], 3);
  /* An empty open batch is never flushed. */
  ASSERT_EQ(fdn_batcher_flush(&b, &seq), 0);
  ASSERT_EQ(seen.batches, 3);
  ASSERT_EQ(fdn_batcher_flushed(&b, 3), 1);
  fdn_batcher_get_stats(&b, &st);
  ASSERT_EQ(st.added, 7);
  ASSERT_EQ(st.batches, 3);
  ASSERT_EQ(st.by_reason[FDN_BATCH_SIZE], 2);
  ASSERT_EQ(st.by_reason[FDN_BATCH_MANUAL], 1);
  ASSERT_EQ(st.flushed, 3);
  ASSERT_EQ(st.failed, 0);
  ASSERT_EQ(fdn_batcher_close(&b, on_closed), 0);
  ASSERT_EQ(seen.closed_calls, 1);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(batcher_time_trigger_counts_from_first_item) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  fdn_batcher_t b;
  fdn_batcher_options_t o;
  reset_seen(1);
  options(&o, 10, SECOND);
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), 0);
  ASSERT_EQ(fdn_batcher_timer_armed(&b), 0);
  ASSERT_EQ(fdn_batcher_add(&b, ITEM(1)), 0);
  ASSERT_EQ(fdn_batcher_timer_armed(&b), 1);
  fdn_engine_advance(engine, SECOND / 2);
  ASSERT_EQ(fdn_batcher_add(&b, ITEM(2)), 0);
  fdn_engine_advance(engine, SECOND / 2 - 1);
  ASSERT_EQ(seen.batches, 0);
  fdn_engine_advance(engine, 1);
  ASSERT_EQ(seen.batches, 1);
  ASSERT_EQ(seen.reasons[0], FDN_BATCH_TIME);
  ASSERT_EQ(seen.lens[0], 2);
  ASSERT_EQ(seen.times[0], SECOND);
  ASSERT_EQ(fdn_batcher_timer_armed(&b), 0);
  /* No item, no timer; the next batch's clock starts at its first item. */
  fdn_engine_advance(engine, 5 * SECOND);
  ASSERT_EQ(fdn_batcher_add(&b, ITEM(3)), 0);
  fdn_engine_advance(engine, SECOND);
  ASSERT_EQ(seen.batches, 2);
  ASSERT_EQ(seen.times[1], 7 * SECOND);
  /* A batch sealed by size disarms its timer. */
  {
    long i;
    for (i = 0; i < 10; i++)
      ASSERT_EQ(fdn_batcher_add(&b, ITEM(100 + i)), 0);
    ASSERT_EQ(seen.reasons[2], FDN_BATCH_SIZE);
    ASSERT_EQ(fdn_batcher_timer_armed(&b), 0);
  }
  ASSERT_EQ(fdn_batcher_close(&b, NULL), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(batcher_runs_the_engine_until_the_time_trigger) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  fdn_batcher_t b;
  fdn_batcher_options_t o;
  reset_seen(1);
  options(&o, 10, 3 * SECOND);
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), 0);
  ASSERT_EQ(fdn_batcher_add(&b, ITEM(1)), 0);
  /* The armed timer keeps the loop alive; virtual time jumps to it. */
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(seen.batches, 1);
  ASSERT_EQ(seen.times[0], 3 * SECOND);
  ASSERT_EQ(fdn_batcher_close(&b, NULL), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(batcher_hands_over_one_flush_at_a_time_in_order) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  fdn_batcher_t b;
  fdn_batcher_options_t o;
  long i;
  reset_seen(0);
  options(&o, 2, FDN_FOREVER);
  o.max_pending = 100;
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), 0);
  for (i = 1; i <= 6; i++)
    ASSERT_EQ(fdn_batcher_add(&b, ITEM(i)), 0);
  ASSERT_EQ(seen.batches, 1);
  ASSERT_EQ(fdn_batcher_flushed(&b, 1), 0);
  ASSERT_EQ(fdn_batcher_done(&b, seen.held[0], 0), 0);
  ASSERT_EQ(fdn_batcher_flushed(&b, 1), 1);
  ASSERT_EQ(fdn_batcher_flushed(&b, 2), 0);
  ASSERT_EQ(seen.batches, 2);
  ASSERT_EQ(fdn_batcher_done(&b, seen.held[1], 1), 0);
  ASSERT_EQ(fdn_batcher_done(&b, seen.held[2], 0), 0);
  ASSERT_EQ(seen.batches, 3);
  ASSERT_EQ(seen.in_flight_peak, 1);
  for (i = 0; i < 6; i++)
    ASSERT_EQ(seen.items[i], i + 1);
  /* Done twice, or for a batch never handed over: refused. */
  ASSERT_EQ(fdn_batcher_done(&b, NULL, 0), FDN_EINVAL);
  {
    fdn_batcher_stats_t st;
    fdn_batcher_get_stats(&b, &st);
    ASSERT_EQ(st.flushed, 3);
    ASSERT_EQ(st.failed, 1);
    ASSERT_EQ(st.in_flight, 0);
  }
  ASSERT_EQ(fdn_batcher_close(&b, on_closed), 0);
  ASSERT_EQ(seen.closed_calls, 1);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(batcher_max_concurrent_flushes_finish_in_any_order) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  fdn_batcher_t b;
  fdn_batcher_options_t o;
  long i;
  reset_seen(0);
  options(&o, 1, FDN_FOREVER);
  o.max_concurrent = 2;
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), 0);
  for (i = 1; i <= 4; i++)
    ASSERT_EQ(fdn_batcher_add(&b, ITEM(i)), 0);
  ASSERT_EQ(seen.batches, 2);
  ASSERT_EQ(seen.in_flight_peak, 2);
  /* The second finishes first: "flushed up to 2" still waits for 1. */
  ASSERT_EQ(fdn_batcher_done(&b, seen.held[1], 0), 0);
  ASSERT_EQ(seen.batches, 3);
  ASSERT_EQ(fdn_batcher_flushed(&b, 1), 0);
  ASSERT_EQ(fdn_batcher_flushed(&b, 2), 0);
  ASSERT_EQ(fdn_batcher_done(&b, seen.held[0], 0), 0);
  ASSERT_EQ(fdn_batcher_flushed(&b, 2), 1);
  ASSERT_EQ(fdn_batcher_flushed(&b, 3), 0);
  ASSERT_EQ(seen.batches, 4);
  ASSERT_EQ(seen.seqs[2], 3);
  ASSERT_EQ(seen.seqs[3], 4);
  ASSERT_EQ(fdn_batcher_done(&b, seen.held[3], 0), 0);
  ASSERT_EQ(fdn_batcher_done(&b, seen.held[2], 0), 0);
  ASSERT_EQ(fdn_batcher_flushed(&b, 4), 1);
  ASSERT_EQ(seen.in_flight_peak, 2);
  ASSERT_EQ(fdn_batcher_close(&b, NULL), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(batcher_done_inside_the_callback_keeps_order_without_recursion) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  fdn_batcher_t b;
  fdn_batcher_options_t o;
  long i;
  reset_seen(1);
  options(&o, 1, FDN_FOREVER);
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), 0);
  for (i = 1; i <= 200; i++)
    ASSERT_EQ(fdn_batcher_add(&b, ITEM(i)), 0);
  ASSERT_EQ(seen.batches, 200);
  for (i = 0; i < 200; i++) {
    ASSERT_EQ(seen.items[i], i + 1);
    ASSERT_EQ(seen.seqs[i % 256], (uint64_t)(i % 256) + 1);
  }
  ASSERT_EQ(fdn_batcher_close(&b, NULL), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

/* A task that waits for space in `user` and records how it was woken. */
static void wait_for_space(ctask_t *ct, int status) {
  fdn_batcher_t *b = ct->user;
  if (ct->runs == 1) {
    ct->rc = fdn_batcher_wait_space(b, &ct->task);
    if (ct->rc == 0)
      return;
  }
  ct->value = status;
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(batcher_full_reports_efull_and_wakes_space_waiters) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  fdn_batcher_t b;
  fdn_batcher_options_t o;
  ctask_t waiter;
  long i;
  reset_seen(0);
  options(&o, 2, FDN_FOREVER);
  o.max_pending = 4;
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), 0);
  /* [1,2] is handed over (not buffered any more); [3,4] [5,6] wait. */
  for (i = 1; i <= 6; i++)
    ASSERT_EQ(fdn_batcher_add(&b, ITEM(i)), 0);
  ASSERT_EQ(fdn_batcher_buffered(&b), 4);
  ASSERT_EQ(fdn_batcher_add(&b, ITEM(7)), FDN_EFULL);
  ASSERT_EQ(ctask_spawn(engine, &waiter, wait_for_space), 0);
  waiter.user = &b;
  fdn_engine_run_ready(engine);
  ASSERT_EQ(waiter.rc, 0);
  ASSERT_EQ(fdn_task_state(&waiter.task), FDN_TASK_WAITING);
  ASSERT_EQ(fdn_batcher_done(&b, seen.held[0], 0), 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(fdn_task_state(&waiter.task), FDN_TASK_DONE);
  ASSERT_EQ(waiter.value, 0);
  ASSERT_EQ(fdn_batcher_buffered(&b), 2);
  ASSERT_EQ(fdn_batcher_add(&b, ITEM(7)), 0);
  ASSERT_EQ(fdn_batcher_wait_space(&b, &waiter.task), 1);
  {
    fdn_batcher_stats_t st;
    fdn_batcher_get_stats(&b, &st);
    ASSERT_EQ(st.added, 7);
    ASSERT_EQ(st.dropped, 0);
  }
  /* A closing batcher wakes its space waiters with FDN_ECLOSED. */
  ASSERT_EQ(fdn_batcher_add(&b, ITEM(8)), 0);
  ASSERT_EQ(fdn_batcher_add(&b, ITEM(9)), FDN_EFULL);
  ASSERT_EQ(ctask_spawn(engine, &waiter, wait_for_space), 0);
  waiter.user = &b;
  fdn_engine_run_ready(engine);
  ASSERT_EQ(fdn_task_state(&waiter.task), FDN_TASK_WAITING);
  ASSERT_EQ(fdn_batcher_close(&b, on_closed), 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(waiter.value, FDN_ECLOSED);
  ASSERT_EQ(fdn_batcher_add(&b, ITEM(10)), FDN_ECLOSED);
  ASSERT_EQ(fdn_batcher_wait_space(&b, &waiter.task), FDN_ECLOSED);
  /* Close completes only once every flush is done. */
  for (i = 1; seen.closed_calls == 0; i++) {
    ASSERT(i < seen.batches);
    ASSERT_EQ(fdn_batcher_done(&b, seen.held[i], 0), 0);
  }
  ASSERT_EQ(seen.batches, 4);
  ASSERT_EQ(seen.reasons[3], FDN_BATCH_SIZE);
  ASSERT_EQ(fdn_batcher_closed(&b), 1);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(batcher_drop_oldest_removes_from_the_oldest_waiting_batch) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  fdn_batcher_t b;
  fdn_batcher_options_t o;
  fdn_batcher_stats_t st;
  long i;
  reset_seen(0);
  options(&o, 2, FDN_FOREVER);
  o.max_pending = 4;
  o.overflow = FDN_OVERFLOW_DROP_OLDEST;
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), 0);
  for (i = 1; i <= 9; i++)
    ASSERT_EQ(fdn_batcher_add(&b, ITEM(i)), 0);
  /* [1,2] in flight; 3 and 4 dropped ([3,4] is gone), then 5. */
  ASSERT_EQ(seen.ndropped, 3);
  ASSERT_EQ(seen.dropped[0], 3);
  ASSERT_EQ(seen.dropped[1], 4);
  ASSERT_EQ(seen.dropped[2], 5);
  ASSERT_EQ(fdn_batcher_buffered(&b), 4);
  for (i = 0; seen.closed_calls == 0 || i == 0; i++) {
    if (i == 0)
      ASSERT_EQ(fdn_batcher_close(&b, on_closed), 0);
    ASSERT(i < seen.batches);
    ASSERT_EQ(fdn_batcher_done(&b, seen.held[i], 0), 0);
  }
  /* Delivered: 1 2 | 6 | 7 8 | 9 (the batch that lost 5 keeps 6). */
  ASSERT_EQ(seen.nitems, 6);
  ASSERT_EQ(seen.items[2], 6);
  ASSERT_EQ(seen.lens[1], 1);
  ASSERT_EQ(seen.items[5], 9);
  ASSERT_EQ(seen.reasons[3], FDN_BATCH_CLOSE);
  fdn_batcher_get_stats(&b, &st);
  ASSERT_EQ(st.added, 9);
  ASSERT_EQ(st.dropped, 3);
  ASSERT_EQ(st.flushed, 4);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

/* Waits for the batcher to flush through seq `value`. */
static void wait_for_flush(ctask_t *ct, int status) {
  fdn_batcher_t *b = ct->user;
  (void)status;
  if (fdn_batcher_flushed(b, (uint64_t)ct->value)) {
    fdn_task_finish(&ct->task, FDN_TASK_DONE);
    return;
  }
  ct->rc = fdn_batcher_wait_progress(b, &ct->task);
}

TEST_IMPL(batcher_wakes_progress_waiters_as_flushes_finish) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  fdn_batcher_t b;
  fdn_batcher_options_t o;
  ctask_t waiter;
  uint64_t seq;
  reset_seen(0);
  options(&o, 5, FDN_FOREVER);
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), 0);
  ASSERT_EQ(fdn_batcher_add(&b, ITEM(1)), 0);
  ASSERT_EQ(fdn_batcher_flush(&b, &seq), 0);
  ASSERT_EQ(fdn_batcher_add(&b, ITEM(2)), 0);
  ASSERT_EQ(fdn_batcher_flush(&b, &seq), 0);
  ASSERT_EQ(seq, 2);
  ASSERT_EQ(ctask_spawn(engine, &waiter, wait_for_flush), 0);
  waiter.user = &b;
  waiter.value = (long)seq;
  fdn_engine_run_ready(engine);
  ASSERT_EQ(fdn_task_state(&waiter.task), FDN_TASK_WAITING);
  ASSERT_EQ(fdn_batcher_done(&b, seen.held[0], 0), 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(fdn_task_state(&waiter.task), FDN_TASK_WAITING);
  ASSERT_EQ(fdn_batcher_done(&b, seen.held[1], 0), 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(fdn_task_state(&waiter.task), FDN_TASK_DONE);
  ASSERT_EQ(waiter.runs, 3);
  ASSERT_EQ(fdn_batcher_close(&b, NULL), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(batcher_counting_mode_grants_room_between_boundaries) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  fdn_batcher_t b;
  fdn_batcher_options_t o;
  fdn_batcher_grant_t g;
  fdn_batcher_stats_t st;
  uint64_t seq;
  reset_seen(1);
  options(&o, 4, SECOND);
  o.counting = 1;
  o.max_pending = 8;
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), 0);
  /* The first item arms the timer; then up to 3 items without a call. */
  ASSERT_EQ(fdn_batcher_count_add(&b, 0, &g), 0);
  ASSERT_EQ(g.room, 3);
  ASSERT_EQ(g.sealed, 0);
  ASSERT_EQ(fdn_batcher_timer_armed(&b), 1);
  /* The fourth item seals: the caller starts a new open batch. */
  ASSERT_EQ(fdn_batcher_count_add(&b, 3, &g), 0);
  ASSERT_EQ(g.sealed, 1);
  ASSERT_EQ(g.room, 0);
  ASSERT_EQ(seen.batches, 1);
  ASSERT_EQ(seen.lens[0], 4);
  ASSERT_EQ(seen.reasons[0], FDN_BATCH_SIZE);
  ASSERT(seen.items[0] == 0 && seen.nitems == 0); /* no items in C */
  ASSERT_EQ(fdn_batcher_timer_armed(&b), 0);
  /* The time trigger asks the caller to seal. */
  ASSERT_EQ(fdn_batcher_count_add(&b, 0, &g), 0);
  fdn_engine_advance(engine, SECOND);
  ASSERT_EQ(seen.due_calls, 1);
  ASSERT_EQ(fdn_batcher_due(&b), 1);
  ASSERT_EQ(fdn_batcher_count_seal(&b, 2, FDN_BATCH_TIME, &seq), 0);
  ASSERT_EQ(seq, 2);
  ASSERT_EQ(fdn_batcher_due(&b), 0);
  ASSERT_EQ(seen.lens[1], 2);
  ASSERT_EQ(seen.reasons[1], FDN_BATCH_TIME);
  /* Inconsistent counts are refused. */
  ASSERT_EQ(fdn_batcher_count_add(&b, 0, &g), 0);
  ASSERT_EQ(fdn_batcher_count_add(&b, 4, &g), FDN_EINVAL);
  ASSERT_EQ(fdn_batcher_count_add(&b, 2, &g), 0);
  ASSERT_EQ(fdn_batcher_count_add(&b, 1, &g), FDN_EINVAL);
  ASSERT_EQ(fdn_batcher_add(&b, ITEM(1)), FDN_EINVAL);
  ASSERT_EQ(fdn_batcher_flush(&b, &seq), FDN_EINVAL);
  /* Close needs the open batch sealed first. */
  ASSERT_EQ(fdn_batcher_close(&b, on_closed), FDN_ESTATE);
  ASSERT_EQ(fdn_batcher_count_seal(&b, 3, FDN_BATCH_CLOSE, &seq), 0);
  ASSERT_EQ(seq, 3);
  ASSERT_EQ(fdn_batcher_close(&b, on_closed), 0);
  ASSERT_EQ(seen.closed_calls, 1);
  ASSERT_EQ(fdn_batcher_count_add(&b, 0, &g), FDN_ECLOSED);
  fdn_batcher_get_stats(&b, &st);
  ASSERT_EQ(st.added, 9);
  ASSERT_EQ(st.by_reason[FDN_BATCH_SIZE], 1);
  ASSERT_EQ(st.by_reason[FDN_BATCH_TIME], 1);
  ASSERT_EQ(st.by_reason[FDN_BATCH_CLOSE], 1);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(batcher_counting_mode_backpressure_and_drops) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  fdn_batcher_t b;
  fdn_batcher_options_t o;
  fdn_batcher_grant_t g;
  size_t n;
  reset_seen(0);
  options(&o, 2, FDN_FOREVER);
  o.counting = 1;
  o.max_pending = 4;
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), 0);
  /* Fill: batch 1 handed over, batches 2 and 3 wait. */
  for (n = 0; n < 6; n++) {
    ASSERT_EQ(fdn_batcher_count_add(&b, n % 2, &g), 0);
    ASSERT(g.room <= 1);
  }
  ASSERT_EQ(fdn_batcher_buffered(&b), 4);
  ASSERT_EQ(fdn_batcher_count_add(&b, 0, &g), FDN_EFULL);
  ASSERT_EQ(fdn_batcher_done(&b, seen.held[0], 0), 0);
  ASSERT_EQ(fdn_batcher_count_add(&b, 0, &g), 0);
  /* The room never passes max_pending. */
  ASSERT_EQ(g.room, 1);
  ASSERT_EQ(fdn_batcher_count_seal(&b, 1, FDN_BATCH_MANUAL, NULL), 0);
  fdn_batcher_discard(&b);
  ASSERT_EQ(fdn_batcher_closed(&b), 1);

  reset_seen(0);
  o.overflow = FDN_OVERFLOW_DROP_OLDEST;
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), 0);
  for (n = 0; n < 6; n++)
    ASSERT_EQ(fdn_batcher_count_add(&b, n % 2, &g), 0);
  ASSERT_EQ(fdn_batcher_count_add(&b, 0, &g), 0);
  ASSERT_EQ(g.dropped, 2);
  ASSERT_EQ(g.dropped_all, 0);
  ASSERT_EQ(fdn_batcher_count_add(&b, 1, &g), 0);
  ASSERT_EQ(g.dropped, 2);
  ASSERT_EQ(g.dropped_all, 1);
  ASSERT_EQ(g.sealed, 4);
  ASSERT_EQ(fdn_batcher_flushed(&b, 2), 0); /* batch 1 is still in flight */
  ASSERT_EQ(fdn_batcher_done(&b, seen.held[0], 0), 0);
  ASSERT_EQ(fdn_batcher_flushed(&b, 2), 1);
  ASSERT_EQ(seen.batches, 2);
  ASSERT_EQ(seen.seqs[1], 3);
  fdn_batcher_discard(&b);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(batcher_rejects_bad_options) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  fdn_batcher_t b;
  fdn_batcher_options_t o;
  options(&o, 0, SECOND);
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), FDN_EINVAL);
  options(&o, 10, SECOND);
  o.max_pending = 9;
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), FDN_EINVAL);
  options(&o, 10, SECOND);
  o.flush = NULL;
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), FDN_EINVAL);
  options(&o, 10, SECOND);
  o.max_concurrent = 0;
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), FDN_EINVAL);
  options(&o, 10, SECOND);
  o.overflow = (fdn_overflow_t)7;
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), FDN_EINVAL);
  options(&o, 10, SECOND);
  o.counting = 1;
  o.due = NULL;
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), FDN_EINVAL);
  options(&o, SIZE_MAX / 4, SECOND);
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), FDN_EINVAL);
  options(&o, 10, SECOND);
  ASSERT_EQ(fdn_batcher_init(NULL, &b, &o), FDN_EINVAL);
  ASSERT_EQ(fdn_batcher_init(engine, &b, NULL), FDN_EINVAL);
  /* Defaults: 10 x batch_size may be buffered. */
  ASSERT_EQ(fdn_batcher_init(engine, &b, &o), 0);
  ASSERT_EQ(b.opts.max_pending, 100);
  ASSERT_EQ(fdn_batcher_count_seal(&b, 0, FDN_BATCH_MANUAL, NULL), FDN_EINVAL);
  ASSERT_EQ(fdn_batcher_close(&b, NULL), 0);
  ASSERT_EQ(fdn_batcher_close(&b, NULL), FDN_ECLOSED);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(batcher_rebinds_to_a_new_engine_when_idle) {
  fdn_engine_t *first = ctest_engine(FDN_CLOCK_VIRTUAL);
  fdn_engine_t *second;
  fdn_batcher_t b;
  fdn_batcher_options_t o;
  reset_seen(0);
  options(&o, 10, SECOND);
  ASSERT_EQ(fdn_batcher_init(first, &b, &o), 0);
  ASSERT_EQ(fdn_batcher_add(&b, ITEM(1)), 0);
  /* The first engine goes away with the open batch's timer armed. */
  ASSERT_EQ(fdn_engine_close(first, NULL, NULL), 0);
  second = ctest_engine(FDN_CLOCK_VIRTUAL);
  ASSERT_EQ(fdn_batcher_rebind(&b, second), 0);
  ASSERT_EQ(fdn_batcher_timer_armed(&b), 1);
  fdn_engine_advance(second, SECOND);
  ASSERT_EQ(seen.batches, 1);
  ASSERT_EQ(seen.reasons[0], FDN_BATCH_TIME);
  /* With a flush in flight it stays where it is. */
  ASSERT_EQ(fdn_batcher_rebind(&b, second), FDN_EBUSY);
  ASSERT_EQ(fdn_batcher_rebind(&b, NULL), FDN_EINVAL);
  ASSERT_EQ(fdn_batcher_add(&b, ITEM(2)), 0);
  fdn_batcher_discard(&b);
  ASSERT_EQ(fdn_batcher_add(&b, ITEM(3)), FDN_ECLOSED);
  ASSERT_EQ(fdn_engine_armed_timers(second), 0);
  ASSERT_EQ(fdn_engine_close(second, NULL, NULL), 0);
  return 0;
}
