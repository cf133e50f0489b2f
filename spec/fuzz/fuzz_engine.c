/* libFuzzer target: random sequences of core operations on a virtual
 * clock. The input drives both the harness (spawn, cancel, wake, advance,
 * abandon, resize or close a limiter, close a channel, flush or finish a
 * batch, check a retry policy) and each task's own actions when it runs
 * (sleep, wait, join, scopes, yield, acquire and release permits, put and
 * get items, add to the batcher, finish). Invariants are checked after
 * every step; memory errors are the sanitizers' to find.
 *
 * What is checked beyond "no crash":
 * - the engine's live count and every wait queue's length match the tasks;
 * - permits: the limiter's `held` equals the permits the tasks hold;
 * - items: every item put in a channel is taken at most once, never both
 *   taken and handed back to its putter, and channels never exceed their
 *   size; taken items leave in the order they were queued;
 * - batches: never empty, never above batch_size, items delivered in add
 *   order, each at most once, dropped ones never delivered;
 * - retry policies: no wait above max_delay; verdicts as documented;
 * - time never runs backwards; at the end everything closes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fdn/fdn.h"

#define MAX_TASKS 16
#define MAX_QUEUES 3
#define MAX_SCOPES 4
#define MAX_LIMITERS 2
#define MAX_CHANNELS 2
#define MAX_ITEMS 4096
#define MAX_FLYING 8

typedef struct {
  const uint8_t *data;
  size_t len, pos;
} input_t;

/* What a parked task waits for, resolved when it runs again. */
enum { PEND_NONE, PEND_ACQUIRE, PEND_GET, PEND_PUT };

typedef struct {
  fdn_task_t task;
  int used;
  int nscopes;
  fdn_scope_t scopes[MAX_SCOPES];
  uint32_t holds[MAX_LIMITERS]; /* permits held */
  int pending, pend_index;
  intptr_t pend_item; /* a putter's item; the item a getter was handed */
} ftask_t;

/* Item states (one id space for channels and the batcher). */
enum {
  ITEM_FREE,
  ITEM_QUEUED,   /* accepted by a channel (queued or handed over) */
  ITEM_OFFERED,  /* a parked putter's, not accepted yet */
  ITEM_TAKEN,    /* a getter got it */
  ITEM_RETURNED, /* its put failed: the putter has it back */
  ITEM_BATCHED,  /* in the batcher, not delivered */
  ITEM_DELIVERED,
  ITEM_DROPPED
};

static input_t in;
static ftask_t tasks[MAX_TASKS];
static fdn_waitq_t queues[MAX_QUEUES];
static fdn_limiter_t limiters[MAX_LIMITERS];
static fdn_channel_t channels[MAX_CHANNELS];
static uint8_t item_state[MAX_ITEMS];
static intptr_t item_seq[MAX_ITEMS]; /* queue order within its channel */
static intptr_t next_item;
static intptr_t chan_queued_seq[MAX_CHANNELS], chan_taken_seq[MAX_CHANNELS];
static fdn_batcher_t batcher;
static int batcher_ready;
static fdn_batch_t *flying[MAX_FLYING];
static int nflying;
static intptr_t last_delivered;
static fdn_engine_t *engine;

static uint8_t next_byte(void) {
  return in.pos < in.len ? in.data[in.pos++] : 0;
}

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "invariant violated: %s\n", what);
    abort();
  }
}

static intptr_t new_item(void) {
  if (next_item + 1 >= MAX_ITEMS)
    return 0;
  return ++next_item;
}

/* Channels ---------------------------------------------------------------- */

/* An item leaves channel c: it must be in it, and leave in queue order. */
static void item_taken(int c, intptr_t item) {
  check(item > 0 && item <= next_item, "a taken item exists");
  check(item_state[item] == ITEM_QUEUED || item_state[item] == ITEM_OFFERED,
        "an item is taken once, and only after it was put");
  if (item_state[item] == ITEM_OFFERED) /* moved in by this get */
    item_seq[item] = ++chan_queued_seq[c];
  check(item_seq[item] == chan_taken_seq[c] + 1,
        "items leave a channel in the order they were queued");
  chan_taken_seq[c] = item_seq[item];
  item_state[item] = ITEM_TAKEN;
}

static void item_queued(int c, intptr_t item) {
  item_state[item] = ITEM_QUEUED;
  item_seq[item] = ++chan_queued_seq[c];
}

/* A put that found a getter waiting handed the item over at once: it is
 * taken now, by that getter, which sees it when it runs.
 */
static void item_put(int c, intptr_t item, fdn_task_t *getter) {
  item_queued(c, item);
  if (getter != NULL) {
    ftask_t *g = (ftask_t *)getter;
    item_taken(c, item);
    g->pend_item = item;
  }
}

/* A parked putter whose item a getter moved into the queue is woken with
 * 0; the core does that hand-off inside fdn_channel_get, so the queue
 * order of the moved item is only known there: item_taken assigns it when
 * the moved item is the one taken, and this when it is not.
 */
static void sync_offered(int c) {
  size_t i;
  for (i = 0; i < MAX_TASKS; i++) {
    ftask_t *ft = &tasks[i];
    if (ft->used && ft->pending == PEND_PUT && ft->pend_index == c &&
        fdn_task_state(&ft->task) == FDN_TASK_READY &&
        ft->task.wake_status == 0 && item_state[ft->pend_item] == ITEM_OFFERED)
      item_queued(c, ft->pend_item);
  }
}

/* Batcher ------------------------------------------------------------------ */

static void on_flush(fdn_batcher_t *b, fdn_batch_t *batch) {
  size_t i;
  (void)b;
  check(batch->len >= 1, "no empty batch is delivered");
  check(batch->len <= b->opts.batch_size, "no batch above batch_size");
  for (i = 0; i < batch->len; i++) {
    intptr_t item = (intptr_t)batch->items[i];
    check(item > 0 && item <= next_item, "a delivered item exists");
    check(item_state[item] == ITEM_BATCHED,
          "a batched item is delivered once, and never after a drop");
    check(item > last_delivered, "items are delivered in add order");
    last_delivered = item;
    item_state[item] = ITEM_DELIVERED;
  }
  check(nflying < MAX_FLYING, "no more flushes in flight than allowed");
  flying[nflying++] = batch;
}

static void on_drop(fdn_batcher_t *b, fdn_batch_t *batch, void *item) {
  intptr_t id = (intptr_t)item;
  (void)b;
  (void)batch;
  check(item_state[id] == ITEM_BATCHED, "only a buffered item is dropped");
  item_state[id] = ITEM_DROPPED;
}

static void batcher_add(intptr_t item) {
  int rc;
  if (!batcher_ready || item == 0)
    return;
  item_state[item] = ITEM_BATCHED;
  rc = fdn_batcher_add(&batcher, (void *)item);
  if (rc != 0 && item_state[item] == ITEM_BATCHED)
    item_state[item] = ITEM_RETURNED;
}

static void finish_flying(int which, int failed) {
  fdn_batch_t *batch;
  if (nflying == 0)
    return;
  which %= nflying;
  batch = flying[which];
  memmove(&flying[which], &flying[which + 1],
          (size_t)(nflying - which - 1) * sizeof(flying[0]));
  nflying--;
  check(fdn_batcher_done(&batcher, batch, failed) == 0,
        "a batch in flight can be finished");
}

/* Retry policies --------------------------------------------------------- */

static void fuzz_retry_policy(void) {
  fdn_retry_policy_t p;
  fdn_retry_t r;
  fdn_rng_t rng;
  uint64_t now = 0, wait, limit;
  uint32_t k;
  uint8_t b0 = next_byte(), b1 = next_byte(), b2 = next_byte();
  uint8_t b3 = next_byte(), b4 = next_byte(), b5 = next_byte();
  fdn_retry_policy_init(&p);
  p.max_attempts = b0 == 255 ? FDN_RETRY_UNLIMITED : b0 % 9;
  p.backoff = (fdn_backoff_t)(b1 % 5);
  p.jitter = (fdn_jitter_t)((b1 >> 3) % 5);
  p.factor = b2 == 255 ? -1.0 : b2 / 16.0;
  p.delay_ns = (uint64_t)b3 * 1000003u;
  p.max_delay_ns = b4 == 255 ? FDN_FOREVER : (uint64_t)b4 * 7000001u;
  p.deadline_ns = b5 == 255 ? FDN_FOREVER : (uint64_t)b5 * 50000017u;
  if (fdn_retry_policy_check(&p, NULL) != 0)
    return;
  fdn_rng_seed(&rng, (uint64_t)b0 * 131 + b5 + 1);
  for (k = 1; k <= 12; k++) {
    wait = fdn_retry_delay(&p, k, p.delay_ns, &rng);
    check(wait <= p.max_delay_ns, "no retry wait above max_delay");
  }
  limit = next_byte() & 1 ? FDN_FOREVER : (uint64_t)next_byte() * 90000001u;
  fdn_retry_start(&r, &p, now);
  r.attempts = 1; /* the first attempt, as the decorator counts it */
  for (k = 0; k < 20; k++) {
    uint64_t hint = next_byte() & 1 ? FDN_RETRY_NO_HINT : (uint64_t)k * 999;
    uint32_t before = r.attempts;
    fdn_retry_verdict_t v = fdn_retry_next(&r, &rng, now, limit, hint, &wait);
    if (v == FDN_RETRY_EXHAUSTED) {
      check(p.max_attempts != FDN_RETRY_UNLIMITED && before >= p.max_attempts,
            "exhausted only after max_attempts attempts");
      break;
    }
    check(wait <= p.max_delay_ns, "no retry wait above max_delay");
    if (v == FDN_RETRY_DEADLINE || v == FDN_RETRY_LIMIT) {
      check(r.attempts == before, "a refused retry changes nothing");
      break;
    }
    check(v == FDN_RETRY_WAIT && r.attempts == before + 1,
          "a retry counts its attempt");
    check(p.deadline_ns == FDN_FOREVER || now + wait <= p.deadline_ns,
          "no wait ends past the deadline");
    check(limit == FDN_FOREVER || now + wait < limit,
          "no wait reaches the caller's limit");
    now += wait;
  }
}

/* Invariants -------------------------------------------------------------- */

static void check_invariants(void) {
  size_t live = 0;
  uint64_t held[MAX_LIMITERS] = {0};
  int i, j;
  for (i = 0; i < MAX_TASKS; i++) {
    if (!tasks[i].used)
      continue;
    if (!fdn_task_finished(&tasks[i].task))
      live++;
    for (j = 0; j < MAX_LIMITERS; j++)
      held[j] += tasks[i].holds[j];
  }
  check(live == fdn_engine_live_tasks(engine), "live count");
  for (j = 0; j < MAX_LIMITERS; j++) {
    /* A waiter handed a permit holds it from the hand-off on. */
    for (i = 0; i < MAX_TASKS; i++)
      if (tasks[i].used && tasks[i].pending == PEND_ACQUIRE &&
          tasks[i].pend_index == j &&
          fdn_task_state(&tasks[i].task) == FDN_TASK_READY &&
          tasks[i].task.wake_status == 0)
        held[j]++;
    check(held[j] == fdn_limiter_held(&limiters[j]),
          "the permits held are the permits the tasks hold");
  }
  for (j = 0; j < MAX_CHANNELS; j++)
    check(fdn_channel_len(&channels[j]) <= fdn_channel_maxsize(&channels[j]),
          "a channel never holds more than its size");
  for (i = 0; i < MAX_QUEUES; i++) {
    uint32_t n = 0;
    fdn_task_t *t = fdn_waitq_first(&queues[i]);
    if (t != NULL) {
      do {
        check(fdn_task_state(t) == FDN_TASK_WAITING, "queued task waits");
        n++;
        t = t->next;
      } while (t != fdn_waitq_first(&queues[i]) && n <= MAX_TASKS);
    }
    check(n == fdn_waitq_len(&queues[i]), "queue length");
  }
  if (batcher_ready) {
    fdn_batcher_stats_t s;
    fdn_batcher_get_stats(&batcher, &s);
    check(s.in_flight == (size_t)nflying, "flushes in flight are ours");
    check(s.in_flight <= batcher.opts.max_concurrent,
          "no more flushes than max_concurrent");
  }
}

/* Tasks ---------------------------------------------------------------------
 */

/* What the task was parked in, now that it runs again with `status`. */
static void resolve_pending(ftask_t *ft, int status) {
  int i = ft->pend_index;
  switch (ft->pending) {
  case PEND_ACQUIRE:
    if (status == 0)
      ft->holds[i]++;
    break;
  case PEND_GET:
    if (status == 0)
      check(fdn_channel_item(&ft->task) == ft->pend_item &&
                item_state[ft->pend_item] == ITEM_TAKEN,
            "a getter woken with 0 has the item handed to it");
    break;
  case PEND_PUT:
    if (status == 0) {
      check(item_state[ft->pend_item] == ITEM_QUEUED ||
                item_state[ft->pend_item] == ITEM_TAKEN,
            "a putter woken with 0 gave its item away");
    } else {
      check(item_state[ft->pend_item] == ITEM_OFFERED,
            "a failed put's item was never taken");
      check(fdn_channel_item(&ft->task) == ft->pend_item,
            "a failed putter gets its own item back");
      item_state[ft->pend_item] = ITEM_RETURNED;
    }
    break;
  default:
    break;
  }
  ft->pending = PEND_NONE;
}

static void release_all(ftask_t *ft) {
  int j;
  for (j = 0; j < MAX_LIMITERS; j++) {
    while (ft->holds[j] > 0) {
      check(fdn_limiter_release(&limiters[j]) == 0, "a held permit releases");
      ft->holds[j]--;
    }
  }
}

static uint64_t timeout_of(uint8_t arg) {
  switch (arg % 4) {
  case 0:
    return FDN_FOREVER;
  case 1:
    return 0;
  default:
    return (uint64_t)arg * 400000u;
  }
}

/* A task's run callback: the input decides what it does now. */
static void task_step(fdn_task_t *t, int status) {
  ftask_t *ft = (ftask_t *)t;
  uint8_t op = next_byte();
  uint8_t arg = next_byte();
  int rc;
  resolve_pending(ft, status);
  /* Once the input is spent every task finishes, so runs always end. */
  if (in.pos >= in.len)
    op = 15;
  switch (op % 16) {
  case 0:
    fdn_task_sleep(t, (uint64_t)arg * 1000000u);
    break;
  case 1:
    fdn_task_wait(t, &queues[arg % MAX_QUEUES],
                  arg & 1 ? FDN_FOREVER : (uint64_t)arg * 500000u);
    break;
  case 2: {
    ftask_t *target = &tasks[arg % MAX_TASKS];
    if (target->used)
      fdn_task_join(t, &target->task);
    break;
  }
  case 3:
    if (ft->nscopes < MAX_SCOPES &&
        fdn_scope_enter(t, &ft->scopes[ft->nscopes],
                        arg & 1 ? FDN_FOREVER
                                : fdn_engine_now(engine) + arg * 700000u,
                        arg & 2) == 0)
      ft->nscopes++;
    break;
  case 4:
    if (ft->nscopes > 0) {
      rc = fdn_scope_exit(&ft->scopes[ft->nscopes - 1]);
      check(rc == 0 || rc == 1, "scope exit of the innermost scope");
      ft->nscopes--;
    }
    break;
  case 5:
    fdn_task_yield(t);
    break;
  case 6:
    fdn_task_park(t, (uint64_t)arg * 300000u);
    break;
  case 7: {
    int i = arg % MAX_LIMITERS;
    rc = fdn_limiter_acquire(&limiters[i], t, timeout_of(arg >> 2));
    if (rc == 1) {
      ft->holds[i]++;
    } else if (rc == 0) {
      ft->pending = PEND_ACQUIRE;
      ft->pend_index = i;
    }
    break;
  }
  case 8: {
    int i = arg % MAX_LIMITERS;
    if (ft->holds[i] > 0) {
      check(fdn_limiter_release(&limiters[i]) == 0, "a held permit releases");
      ft->holds[i]--;
    } else if (fdn_limiter_held(&limiters[i]) == 0) {
      check(fdn_limiter_release(&limiters[i]) == FDN_ESTATE,
            "a release with no permit held is refused");
    }
    fdn_task_yield(t);
    break;
  }
  case 9: {
    int c = arg % MAX_CHANNELS;
    intptr_t item = new_item();
    if (item == 0)
      break;
    fdn_task_t *getter = fdn_waitq_first(&channels[c].getters);
    item_state[item] = ITEM_OFFERED;
    rc = fdn_channel_put(&channels[c], t, item, timeout_of(arg >> 2));
    if (rc == 1) {
      item_put(c, item, getter); /* queued, or handed to a waiting getter */
    } else if (rc == 0) {
      ft->pending = PEND_PUT;
      ft->pend_index = c;
      ft->pend_item = item;
    } else {
      item_state[item] = ITEM_RETURNED;
    }
    break;
  }
  case 10: {
    int c = arg % MAX_CHANNELS;
    intptr_t item = 0;
    rc = fdn_channel_get(&channels[c], t, &item, timeout_of(arg >> 2));
    if (rc == 1) {
      item_taken(c, item);
      sync_offered(c);
    } else if (rc == 0) {
      ft->pending = PEND_GET;
      ft->pend_index = c;
    }
    break;
  }
  case 11:
    batcher_add(new_item());
    break;
  case 12:
    if (batcher_ready && fdn_batcher_wait_space(&batcher, t) == 1)
      batcher_add(new_item());
    break;
  case 13:
    if (batcher_ready)
      fdn_batcher_wait_progress(&batcher, t);
    break;
  case 14:
    fdn_task_cancel(&tasks[arg % MAX_TASKS].task);
    /* fall through: finish after cancelling someone */
  default:
    release_all(ft);
    ft->nscopes = 0;
    fdn_task_finish(t, (arg & 1) ? FDN_TASK_DONE : FDN_TASK_FAILED);
    break;
  }
}

/* Ends a task that is not running, as an owner tearing down does: what it
 * was handed while parked is settled first (a permit it was handed is
 * released, an item it was handed counts as taken, a putter's item that
 * nobody took is back with its owner).
 */
static void abandon_task(ftask_t *ft) {
  int handed =
      fdn_task_state(&ft->task) == FDN_TASK_READY && ft->task.wake_status == 0;
  int i = ft->pend_index;
  switch (ft->pending) {
  case PEND_ACQUIRE:
    if (handed)
      ft->holds[i]++;
    break;
  case PEND_PUT:
    if (item_state[ft->pend_item] == ITEM_OFFERED)
      item_state[ft->pend_item] = ITEM_RETURNED;
    break;
  default:
    break;
  }
  ft->pending = PEND_NONE;
  /* Out of every queue first: a release could hand a permit to the very
   * task being abandoned.
   */
  check(fdn_task_abandon(&ft->task) == 0, "abandon a task not running");
  release_all(ft);
  ft->nscopes = 0;
}

/* The harness ------------------------------------------------------------- */

static void harness_step(uint8_t op, uint8_t arg) {
  ftask_t *ft = &tasks[arg % MAX_TASKS];
  switch (op % 16) {
  case 0:
    if (!ft->used || fdn_task_finished(&ft->task)) {
      memset(ft, 0, sizeof(*ft));
      if (fdn_task_init(engine, &ft->task, task_step) == 0) {
        ft->used = 1;
        fdn_task_start(&ft->task);
      }
    }
    break;
  case 1:
    if (ft->used)
      fdn_task_cancel(&ft->task);
    break;
  case 2:
    fdn_waitq_wake_one(&queues[arg % MAX_QUEUES], arg & 4 ? FDN_ECLOSED : 0);
    break;
  case 3:
    fdn_waitq_wake_all(&queues[arg % MAX_QUEUES], 0);
    break;
  case 4:
    fdn_engine_advance(engine, (uint64_t)arg * 250000u);
    break;
  case 5:
    fdn_engine_run_ready(engine);
    break;
  case 6:
    if (ft->used && !fdn_task_finished(&ft->task) &&
        fdn_task_state(&ft->task) != FDN_TASK_RUNNING)
      abandon_task(ft);
    break;
  case 7:
    fdn_limiter_resize(&limiters[arg % MAX_LIMITERS], arg >> 5);
    break;
  case 8:
    if ((arg & 7) == 0)
      fdn_limiter_close(&limiters[arg % MAX_LIMITERS]);
    break;
  case 9:
    if ((arg & 7) == 0)
      fdn_channel_close(&channels[arg % MAX_CHANNELS]);
    break;
  case 10: {
    int c = arg % MAX_CHANNELS;
    intptr_t item = 0;
    if (arg & 2) {
      intptr_t fresh = new_item();
      fdn_task_t *getter = fdn_waitq_first(&channels[c].getters);
      if (fresh != 0) {
        item_state[fresh] = ITEM_OFFERED;
        if (fdn_channel_try_put(&channels[c], fresh) == 0)
          item_put(c, fresh, getter);
        else
          item_state[fresh] = ITEM_RETURNED;
      }
    } else if (fdn_channel_try_get(&channels[c], &item) == 0) {
      item_taken(c, item);
      sync_offered(c);
    }
    break;
  }
  case 11:
    batcher_add(new_item());
    break;
  case 12:
    if (batcher_ready)
      fdn_batcher_flush(&batcher, NULL);
    break;
  case 13:
    if (batcher_ready)
      finish_flying(arg >> 1, arg & 1);
    break;
  case 14:
    fuzz_retry_policy();
    break;
  default:
    fdn_engine_run(engine, UV_RUN_NOWAIT);
    break;
  }
}

static void setup_batcher(uint8_t a, uint8_t b) {
  fdn_batcher_options_t o;
  fdn_batcher_options_init(&o);
  o.batch_size = 1 + a % 4;
  o.flush_interval = a & 0x10 ? FDN_FOREVER : (uint64_t)(b % 8) * 1000000u;
  o.max_pending = (a & 0x20) ? o.batch_size * (1 + b % 3) : 0;
  o.max_concurrent = 1 + (b >> 6) % 2;
  o.overflow = (fdn_overflow_t)((a >> 6) % 3);
  o.flush = on_flush;
  o.drop = on_drop;
  batcher_ready = fdn_batcher_init(engine, &batcher, &o) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fdn_engine_options_t opts;
  uint64_t last_now = 0;
  int i;
  in.data = data;
  in.len = size;
  in.pos = 0;
  memset(tasks, 0, sizeof(tasks));
  memset(item_state, 0, sizeof(item_state));
  memset(chan_queued_seq, 0, sizeof(chan_queued_seq));
  memset(chan_taken_seq, 0, sizeof(chan_taken_seq));
  next_item = 0;
  nflying = 0;
  last_delivered = 0;
  for (i = 0; i < MAX_QUEUES; i++)
    fdn_waitq_init(&queues[i]);
  fdn_engine_options_init(&opts);
  opts.clock = FDN_CLOCK_VIRTUAL;
  opts.autojump = 0;
  opts.seed = 1;
  if (fdn_engine_new(&engine, &opts) != 0)
    return 0;
  {
    uint8_t a = next_byte(), b = next_byte(), c = next_byte();
    for (i = 0; i < MAX_LIMITERS; i++)
      fdn_limiter_init(&limiters[i], (a >> (2 * i)) % 4);
    for (i = 0; i < MAX_CHANNELS; i++)
      fdn_channel_init(&channels[i], 1 + (b >> (2 * i)) % 3);
    setup_batcher(c, next_byte());
  }
  while (in.pos < in.len) {
    uint8_t op = next_byte(), arg = next_byte();
    harness_step(op, arg);
    check_invariants();
    check(fdn_engine_now(engine) >= last_now, "time never runs backwards");
    last_now = fdn_engine_now(engine);
  }
  /* Tear down: everything still live is abandoned; the engine must close. */
  for (i = 0; i < MAX_TASKS; i++)
    if (tasks[i].used && !fdn_task_finished(&tasks[i].task))
      abandon_task(&tasks[i]);
  for (i = 0; i < MAX_QUEUES; i++)
    check(fdn_waitq_len(&queues[i]) == 0, "queues empty after abandon");
  for (i = 0; i < MAX_LIMITERS; i++) {
    check(fdn_limiter_waiting(&limiters[i]) == 0, "no permit waiter left");
    fdn_limiter_close(&limiters[i]);
  }
  for (i = 0; i < MAX_CHANNELS; i++) {
    check(fdn_channel_getters(&channels[i]) == 0 &&
              fdn_channel_putters(&channels[i]) == 0,
          "no channel waiter left");
    fdn_channel_close(&channels[i]);
    fdn_channel_destroy(&channels[i]);
  }
  if (batcher_ready) {
    check(batcher.space.len == 0 && batcher.progress.len == 0,
          "no batcher waiter left");
    fdn_batcher_discard(&batcher);
  }
  check(fdn_engine_armed_timers(engine) == 0, "no timer left armed");
  check(fdn_engine_close(engine, NULL, NULL) == 0, "engine closes");
  return 0;
}
