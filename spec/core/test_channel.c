/* The channel: FIFO hand-off between getters and putters, cancellation,
 * timeouts and close while tasks wait, and the ring's growth and shrinking.
 */
#include <string.h>

#include "ctask.h"
#include "test.h"

static fdn_channel_t ch;

/* What a getter or putter task is asked to do and what happened; its
 * ctask's `user` points here.
 */
typedef struct {
  int timeout_ms; /* of each wait; 0: forever */
  int count;      /* items to get or put; 0 means 1 */
  int done;       /* items got or put so far */
  int failed;     /* the status that stopped it, if any */
  intptr_t kept;  /* a putter's item after a failed wait */
} role_t;

/* Items a getter received go to the trace as TRACE(task id, item). */
#define TRACE(id, item) ((long)(id)*100000 + (long)(item))

static role_t roles[64];
static int nroles;

static role_t *role_of(ctask_t *ct) {
  if (ct->user == NULL) {
    ct->user = &roles[nroles++];
    memset(ct->user, 0, sizeof(role_t));
  }
  return ct->user;
}

static void reset_roles(void) {
  nroles = 0;
  ctask_trace_reset();
}

static uint64_t timeout_of(ctask_t *ct) {
  int ms = role_of(ct)->timeout_ms;
  return ms ? (uint64_t)ms * 1000000ull : FDN_FOREVER;
}

static int wanted(ctask_t *ct) {
  return role_of(ct)->count ? role_of(ct)->count : 1;
}

static void record(ctask_t *ct, intptr_t item) {
  ctask_trace[ctask_trace_len++] = TRACE(ct->task.id, item);
  role_of(ct)->done++;
}

static void fail(ctask_t *ct, int status) {
  role_of(ct)->failed = status;
  fdn_task_finish(&ct->task, FDN_TASK_FAILED);
}

static void getter(ctask_t *ct, int status) {
  intptr_t item;
  if (ct->runs > 1) {
    /* Woken from a parked get. */
    if (status != 0) {
      fail(ct, status);
      return;
    }
    record(ct, fdn_channel_item(&ct->task));
  }
  while (role_of(ct)->done < wanted(ct)) {
    ct->rc = fdn_channel_get(&ch, &ct->task, &item, timeout_of(ct));
    if (ct->rc == 0)
      return;
    if (ct->rc != 1) {
      fail(ct, ct->rc);
      return;
    }
    record(ct, item);
  }
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

/* Puts value, value+1, ... */
static void putter(ctask_t *ct, int status) {
  role_t *r = role_of(ct);
  if (ct->runs > 1) {
    if (status != 0) {
      r->kept = fdn_channel_item(&ct->task);
      fail(ct, status);
      return;
    }
    r->done++;
  }
  while (r->done < wanted(ct)) {
    ct->rc =
        fdn_channel_put(&ch, &ct->task, ct->value + r->done, timeout_of(ct));
    if (ct->rc == 0)
      return;
    if (ct->rc != 1) {
      fail(ct, ct->rc);
      return;
    }
    r->done++;
  }
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

/* Spawns a getter or putter with its role set. */
static int spawn_role(fdn_engine_t *engine, ctask_t *ct, ctask_step_cb step,
                      long value, int count, int timeout_ms) {
  int rc = ctask_spawn(engine, ct, step);
  role_t *r = role_of(ct);
  ct->value = value;
  r->count = count;
  r->timeout_ms = timeout_ms;
  return rc;
}

TEST_IMPL(channel_queues_items_in_order_without_tasks) {
  intptr_t item;
  int i;
  ASSERT_EQ(fdn_channel_init(NULL, 1), FDN_EINVAL);
  ASSERT_EQ(fdn_channel_init(&ch, 0), FDN_EINVAL);
  ASSERT_EQ(fdn_channel_init(&ch, 100), 0);
  ASSERT_EQ(fdn_channel_try_get(&ch, &item), FDN_EAGAIN);
  ASSERT_EQ(fdn_channel_get(&ch, NULL, &item, FDN_FOREVER), FDN_EAGAIN);
  for (i = 0; i < 100; i++)
    ASSERT_EQ(fdn_channel_try_put(&ch, i), 0);
  ASSERT_EQ(fdn_channel_try_put(&ch, 100), FDN_EAGAIN);
  ASSERT_EQ(fdn_channel_put(&ch, NULL, 100, FDN_FOREVER), FDN_EAGAIN);
  ASSERT_EQ(fdn_channel_len(&ch), 100);
  /* Interleaved gets and puts wrap around the ring. */
  for (i = 0; i < 250; i++) {
    ASSERT_EQ(fdn_channel_get(&ch, NULL, &item, FDN_FOREVER), 1);
    ASSERT_EQ(item, i);
    ASSERT_EQ(fdn_channel_put(&ch, NULL, i + 100, FDN_FOREVER), 1);
  }
  for (i = 250; i < 350; i++) {
    ASSERT_EQ(fdn_channel_try_get(&ch, &item), 0);
    ASSERT_EQ(item, i);
  }
  ASSERT_EQ(fdn_channel_len(&ch), 0);
  fdn_channel_destroy(&ch);
  return 0;
}

TEST_IMPL(channel_unbounded_grows_and_shrinks_back) {
  intptr_t item;
  int i;
  ASSERT_EQ(fdn_channel_init(&ch, FDN_CHANNEL_UNBOUNDED), 0);
  for (i = 0; i < 100000; i++)
    ASSERT_EQ(fdn_channel_try_put(&ch, i), 0);
  ASSERT(ch.cap >= 100000);
  for (i = 0; i < 99990; i++) {
    ASSERT_EQ(fdn_channel_try_get(&ch, &item), 0);
    ASSERT_EQ(item, i);
  }
  ASSERT(ch.cap <= 64);
  for (; i < 100000; i++) {
    ASSERT_EQ(fdn_channel_try_get(&ch, &item), 0);
    ASSERT_EQ(item, i);
  }
  fdn_channel_destroy(&ch);
  return 0;
}

TEST_IMPL(channel_close_refuses_puts_and_drains_gets) {
  intptr_t item;
  ASSERT_EQ(fdn_channel_init(&ch, 4), 0);
  ASSERT_EQ(fdn_channel_try_put(&ch, 7), 0);
  ASSERT_EQ(fdn_channel_try_put(&ch, 8), 0);
  fdn_channel_close(&ch);
  fdn_channel_close(&ch);
  ASSERT(fdn_channel_closed(&ch));
  ASSERT_EQ(fdn_channel_try_put(&ch, 9), FDN_ECLOSED);
  ASSERT_EQ(fdn_channel_put(&ch, NULL, 9, FDN_FOREVER), FDN_ECLOSED);
  ASSERT_EQ(fdn_channel_try_get(&ch, &item), 0);
  ASSERT_EQ(item, 7);
  ASSERT_EQ(fdn_channel_get(&ch, NULL, &item, FDN_FOREVER), 1);
  ASSERT_EQ(item, 8);
  ASSERT_EQ(fdn_channel_try_get(&ch, &item), FDN_ECLOSED);
  ASSERT_EQ(fdn_channel_get(&ch, NULL, &item, FDN_FOREVER), FDN_ECLOSED);
  fdn_channel_destroy(&ch);
  return 0;
}

TEST_IMPL(channel_hands_items_to_getters_in_fifo_order) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t getters[3], producer;
  int i;
  reset_roles();
  ASSERT_EQ(fdn_channel_init(&ch, 1), 0);
  for (i = 0; i < 3; i++)
    ASSERT_EQ(spawn_role(engine, &getters[i], getter, 0, 1, 0), 0);
  ASSERT_EQ(spawn_role(engine, &producer, putter, 1, 3, 0), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  /* Three puts in one run, none parked: each went straight to a getter,
   * though the ring holds only one.
   */
  ASSERT_EQ(producer.rc, 1);
  ASSERT_EQ(producer.runs, 1);
  ASSERT_EQ(ctask_trace_len, 3);
  for (i = 0; i < 3; i++) {
    ASSERT_EQ(getters[i].rc, 0);
    ASSERT_EQ(ctask_trace[i], TRACE(getters[i].task.id, 1 + i));
  }
  ASSERT_EQ(fdn_channel_len(&ch), 0);
  fdn_channel_destroy(&ch);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(channel_full_parks_putters_in_fifo_order) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t putters[4], consumer;
  int i;
  reset_roles();
  ASSERT_EQ(fdn_channel_init(&ch, 2), 0);
  for (i = 0; i < 4; i++)
    ASSERT_EQ(spawn_role(engine, &putters[i], putter, 10 + i, 1, 0), 0);
  ASSERT_EQ(spawn_role(engine, &consumer, getter, 0, 4, 0), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(putters[0].rc, 1);
  ASSERT_EQ(putters[1].rc, 1);
  ASSERT_EQ(putters[2].rc, 0); /* parked, then taken */
  ASSERT_EQ(putters[3].rc, 0);
  for (i = 0; i < 4; i++) {
    ASSERT_EQ(fdn_task_state(&putters[i].task), FDN_TASK_DONE);
    ASSERT_EQ(ctask_trace[i], TRACE(consumer.task.id, 10 + i));
  }
  ASSERT_EQ(fdn_channel_putters(&ch), 0);
  fdn_channel_destroy(&ch);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static ctask_t *victim;

/* Cancels the victim and then puts `value` once. */
static void cancel_then_put(ctask_t *ct, int status) {
  (void)status;
  ct->statuses[10] = (int)fdn_channel_getters(&ch);
  fdn_task_cancel(&victim->task);
  ct->statuses[11] = (int)fdn_channel_getters(&ch);
  ct->rc = fdn_channel_put(&ch, &ct->task, ct->value, FDN_FOREVER);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(channel_cancelled_getter_leaves_without_an_item) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t first, second, producer;
  reset_roles();
  ASSERT_EQ(fdn_channel_init(&ch, 4), 0);
  ASSERT_EQ(spawn_role(engine, &first, getter, 0, 1, 0), 0);
  ASSERT_EQ(spawn_role(engine, &second, getter, 0, 1, 0), 0);
  ASSERT_EQ(ctask_spawn(engine, &producer, cancel_then_put), 0);
  victim = &first;
  producer.value = 5;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(producer.statuses[10], 2);
  ASSERT_EQ(producer.statuses[11], 1);
  ASSERT_EQ(producer.rc, 1);
  ASSERT_EQ(role_of(&first)->failed, FDN_ECANCELED);
  ASSERT_EQ(role_of(&first)->done, 0);
  ASSERT_EQ(ctask_trace_len, 1);
  ASSERT_EQ(ctask_trace[0], TRACE(second.task.id, 5));
  fdn_channel_destroy(&ch);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

/* Cancels the victim (a parked putter), then gets everything queued. */
static void cancel_putter_then_drain(ctask_t *ct, int status) {
  intptr_t item;
  (void)status;
  ct->statuses[10] = (int)fdn_channel_putters(&ch);
  fdn_task_cancel(&victim->task);
  ct->statuses[11] = (int)fdn_channel_putters(&ch);
  while (fdn_channel_try_get(&ch, &item) == 0)
    ctask_trace[ctask_trace_len++] = TRACE(ct->task.id, item);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(channel_cancelled_putter_keeps_its_item) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t filler, blocked, drainer;
  reset_roles();
  ASSERT_EQ(fdn_channel_init(&ch, 1), 0);
  ASSERT_EQ(spawn_role(engine, &filler, putter, 1, 1, 0), 0);
  ASSERT_EQ(spawn_role(engine, &blocked, putter, 2, 1, 0), 0);
  ASSERT_EQ(ctask_spawn(engine, &drainer, cancel_putter_then_drain), 0);
  victim = &blocked;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(drainer.statuses[10], 1);
  ASSERT_EQ(drainer.statuses[11], 0);
  ASSERT_EQ(role_of(&blocked)->failed, FDN_ECANCELED);
  ASSERT_EQ(role_of(&blocked)->kept, 2); /* still its own */
  ASSERT_EQ(ctask_trace_len, 1);
  ASSERT_EQ(ctask_trace[0], TRACE(drainer.task.id, 1));
  fdn_channel_destroy(&ch);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

/* Puts (handing the item to the parked victim, now READY) and cancels the
 * victim in the same turn, before it runs.
 */
static void put_then_cancel_getter(ctask_t *ct, int status) {
  (void)status;
  ct->rc = fdn_channel_put(&ch, &ct->task, ct->value, FDN_FOREVER);
  ct->statuses[10] = fdn_task_state(&victim->task);
  ct->statuses[11] = fdn_task_cancel(&victim->task);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(channel_item_handed_before_a_cancel_is_not_lost) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t target, producer;
  reset_roles();
  ASSERT_EQ(fdn_channel_init(&ch, 1), 0);
  /* Asks for two: the cancel shows at the second get. */
  ASSERT_EQ(spawn_role(engine, &target, getter, 0, 2, 0), 0);
  ASSERT_EQ(ctask_spawn(engine, &producer, put_then_cancel_getter), 0);
  victim = &target;
  producer.value = 77;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(producer.rc, 1);
  ASSERT_EQ(producer.statuses[10], FDN_TASK_READY);
  ASSERT_EQ(producer.statuses[11], 0);
  ASSERT_EQ(ctask_trace_len, 1);
  ASSERT_EQ(ctask_trace[0], TRACE(target.task.id, 77));
  ASSERT_EQ(role_of(&target)->failed, FDN_ECANCELED);
  ASSERT_EQ(fdn_channel_len(&ch), 0);
  fdn_channel_destroy(&ch);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static void close_channel(ctask_t *ct, int status) {
  (void)status;
  ct->statuses[10] = (int)fdn_channel_getters(&ch);
  ct->statuses[11] = (int)fdn_channel_putters(&ch);
  fdn_channel_close(&ch);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(channel_close_wakes_parked_getters) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t getters[2], closer;
  int i;
  reset_roles();
  ASSERT_EQ(fdn_channel_init(&ch, 2), 0);
  for (i = 0; i < 2; i++)
    ASSERT_EQ(spawn_role(engine, &getters[i], getter, 0, 1, 0), 0);
  ASSERT_EQ(ctask_spawn(engine, &closer, close_channel), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(closer.statuses[10], 2);
  for (i = 0; i < 2; i++)
    ASSERT_EQ(role_of(&getters[i])->failed, FDN_ECLOSED);
  ASSERT_EQ(fdn_channel_getters(&ch), 0);
  fdn_channel_destroy(&ch);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(channel_close_wakes_parked_putters_and_keeps_items_to_drain) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t putters[3], closer, drainer;
  int i;
  reset_roles();
  ASSERT_EQ(fdn_channel_init(&ch, 1), 0);
  for (i = 0; i < 3; i++)
    ASSERT_EQ(spawn_role(engine, &putters[i], putter, 1 + i, 1, 0), 0);
  ASSERT_EQ(ctask_spawn(engine, &closer, close_channel), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(closer.statuses[11], 2);
  ASSERT_EQ(putters[0].rc, 1);
  for (i = 1; i < 3; i++) {
    ASSERT_EQ(role_of(&putters[i])->failed, FDN_ECLOSED);
    ASSERT_EQ(role_of(&putters[i])->kept, 1 + i);
  }
  /* What was queued before the close is still there for a getter. */
  ASSERT_EQ(spawn_role(engine, &drainer, getter, 0, 2, 0), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(ctask_trace_len, 1);
  ASSERT_EQ(ctask_trace[0], TRACE(drainer.task.id, 1));
  ASSERT_EQ(role_of(&drainer)->failed, FDN_ECLOSED);
  fdn_channel_destroy(&ch);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(channel_waits_time_out) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t get_wait, put_wait;
  reset_roles();
  ASSERT_EQ(fdn_channel_init(&ch, 1), 0);
  ASSERT_EQ(spawn_role(engine, &get_wait, getter, 0, 1, 300), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(get_wait.rc, 0);
  ASSERT_EQ(role_of(&get_wait)->failed, FDN_ETIMEDOUT);
  ASSERT_EQ(fdn_engine_now(engine), 300000000ull);
  ASSERT_EQ(fdn_channel_getters(&ch), 0);

  ASSERT_EQ(fdn_channel_try_put(&ch, 1), 0);
  ASSERT_EQ(spawn_role(engine, &put_wait, putter, 9, 1, 500), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(put_wait.rc, 0);
  ASSERT_EQ(role_of(&put_wait)->failed, FDN_ETIMEDOUT);
  ASSERT_EQ(role_of(&put_wait)->kept, 9);
  ASSERT_EQ(fdn_engine_now(engine), 800000000ull);
  ASSERT_EQ(fdn_channel_len(&ch), 1);
  ASSERT_EQ(fdn_channel_putters(&ch), 0);
  fdn_channel_destroy(&ch);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static void timeout_zero(ctask_t *ct, int status) {
  intptr_t item = 0;
  (void)status;
  ct->statuses[10] = fdn_channel_get(&ch, &ct->task, &item, 0);
  ct->statuses[11] = fdn_channel_put(&ch, &ct->task, 1, 0);
  ct->statuses[12] = fdn_channel_put(&ch, &ct->task, 2, 0);
  fdn_task_cancel(&ct->task);
  ct->statuses[13] = fdn_channel_get(&ch, &ct->task, &item, FDN_FOREVER);
  ct->statuses[14] = fdn_channel_put(&ch, &ct->task, 3, FDN_FOREVER);
  ct->statuses[15] = (int)fdn_channel_len(&ch);
  fdn_task_finish(&ct->task, FDN_TASK_CANCELLED);
}

TEST_IMPL(channel_zero_timeout_and_pending_cancel_never_park) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t a;
  ASSERT_EQ(fdn_channel_init(&ch, 1), 0);
  ASSERT_EQ(ctask_spawn(engine, &a, timeout_zero), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(a.statuses[10], FDN_ETIMEDOUT);
  ASSERT_EQ(a.statuses[11], 1);
  ASSERT_EQ(a.statuses[12], FDN_ETIMEDOUT);
  ASSERT_EQ(a.statuses[13], FDN_ECANCELED); /* though an item is there */
  ASSERT_EQ(a.statuses[14], FDN_ECANCELED);
  ASSERT_EQ(a.statuses[15], 1);
  fdn_channel_destroy(&ch);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(channel_delivers_every_item_once_under_load) {
  enum { P = 20, G = 30, EACH = 60 };
  static ctask_t producers[P], getters[G];
  static int seen[P][EACH];
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  int i, j;
  reset_roles();
  ASSERT_EQ(fdn_channel_init(&ch, 3), 0);
  for (i = 0; i < G; i++)
    ASSERT_EQ(spawn_role(engine, &getters[i], getter, 0, P * EACH / G, 0), 0);
  for (i = 0; i < P; i++)
    ASSERT_EQ(spawn_role(engine, &producers[i], putter, i * 100, EACH, 0), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(ctask_trace_len, P * EACH);
  for (i = 0; i < ctask_trace_len; i++) {
    long item = ctask_trace[i] % 100000;
    ASSERT(item / 100 < P && item % 100 < EACH);
    seen[item / 100][item % 100]++;
  }
  for (i = 0; i < P; i++)
    for (j = 0; j < EACH; j++)
      ASSERT_EQ(seen[i][j], 1);
  for (i = 0; i < G; i++)
    ASSERT_EQ(fdn_task_state(&getters[i].task), FDN_TASK_DONE);
  for (i = 0; i < P; i++)
    ASSERT_EQ(fdn_task_state(&producers[i].task), FDN_TASK_DONE);
  ASSERT_EQ(fdn_channel_len(&ch), 0);
  fdn_channel_destroy(&ch);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}
