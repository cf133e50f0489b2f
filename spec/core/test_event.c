/* The event: waiters park while it is clear, all wake when it is set. */
#include "ctask.h"
#include "test.h"

static fdn_event_t ev;

/* Waits (ct->value ms of timeout, 0: forever) and records the wake in the
 * trace as id * 1000 - status; ct->rc is the wait's return code.
 */
static void waiter(ctask_t *ct, int status) {
  if (ct->runs == 1) {
    ct->rc = fdn_event_wait(&ev, &ct->task,
                            ct->value ? (uint64_t)ct->value * 1000000ull
                                      : FDN_FOREVER);
    if (ct->rc == 0)
      return;
    status = ct->rc == 1 ? 0 : ct->rc;
  }
  ctask_trace[ctask_trace_len++] = (long)ct->task.id * 1000 - status;
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

static void set_event(ctask_t *ct, int status) {
  (void)status;
  ct->statuses[10] = (int)fdn_event_waiting(&ev);
  ct->statuses[11] = (int)fdn_event_set(&ev);
  ct->statuses[12] = (int)fdn_event_waiting(&ev);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(event_set_wakes_every_waiter_in_fifo_order) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t waiters[5], setter, late;
  int i;
  fdn_event_init(&ev);
  ctask_trace_reset();
  ASSERT(!fdn_event_is_set(&ev));
  for (i = 0; i < 5; i++)
    ASSERT_EQ(ctask_spawn(engine, &waiters[i], waiter), 0);
  ASSERT_EQ(ctask_spawn(engine, &setter, set_event), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(setter.statuses[10], 5);
  ASSERT_EQ(setter.statuses[11], 5);
  ASSERT_EQ(setter.statuses[12], 0);
  ASSERT_EQ(ctask_trace_len, 5);
  for (i = 0; i < 5; i++) {
    ASSERT_EQ(waiters[i].rc, 0);
    ASSERT_EQ(ctask_trace[i], (long)waiters[i].task.id * 1000);
  }
  /* Set: a wait returns at once. */
  ASSERT(fdn_event_is_set(&ev));
  ASSERT_EQ(ctask_spawn(engine, &late, waiter), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(late.rc, 1);
  ASSERT_EQ(late.runs, 1);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(event_clear_makes_waiters_park_again) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t a, b;
  fdn_event_init(&ev);
  ctask_trace_reset();
  fdn_event_set(&ev);
  fdn_event_clear(&ev);
  ASSERT(!fdn_event_is_set(&ev));
  ASSERT_EQ(ctask_spawn(engine, &a, waiter), 0);
  a.value = 100;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(a.rc, 0);
  ASSERT_EQ(ctask_trace[0], (long)a.task.id * 1000 - FDN_ETIMEDOUT);
  ASSERT_EQ(fdn_engine_now(engine), 100000000ull);
  ASSERT_EQ(fdn_event_waiting(&ev), 0);
  /* Still clear: a new waiter parks until the next set. */
  ASSERT_EQ(ctask_spawn(engine, &b, waiter), 0);
  b.value = 0;
  fdn_engine_run_ready(engine);
  ASSERT_EQ(fdn_event_waiting(&ev), 1);
  ASSERT_EQ(fdn_event_set(&ev), 1);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(ctask_trace[1], (long)b.task.id * 1000);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static void cancel_victim(ctask_t *ct, int status) {
  (void)status;
  fdn_task_cancel(&((ctask_t *)ct->user)->task);
  ct->statuses[10] = (int)fdn_event_waiting(&ev);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

static void zero_timeout_then_cancelled(ctask_t *ct, int status) {
  (void)status;
  ct->statuses[10] = fdn_event_wait(&ev, &ct->task, 0);
  fdn_event_set(&ev);
  fdn_task_cancel(&ct->task);
  ct->statuses[11] = fdn_event_wait(&ev, &ct->task, FDN_FOREVER);
  fdn_task_finish(&ct->task, FDN_TASK_CANCELLED);
}

TEST_IMPL(event_cancelled_waiter_leaves_and_others_stay) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t a, b, canceller, c;
  fdn_event_init(&ev);
  ctask_trace_reset();
  ASSERT_EQ(ctask_spawn(engine, &a, waiter), 0);
  ASSERT_EQ(ctask_spawn(engine, &b, waiter), 0);
  ASSERT_EQ(ctask_spawn(engine, &canceller, cancel_victim), 0);
  canceller.user = &a;
  fdn_engine_run_ready(engine);
  ASSERT_EQ(canceller.statuses[10], 1);
  ASSERT_EQ(ctask_trace_len, 1);
  ASSERT_EQ(ctask_trace[0], (long)a.task.id * 1000 - FDN_ECANCELED);
  ASSERT_EQ(fdn_event_set(&ev), 1);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(ctask_trace[1], (long)b.task.id * 1000);
  /* A cancelled task is refused even when the event is set. */
  fdn_event_clear(&ev);
  ASSERT_EQ(ctask_spawn(engine, &c, zero_timeout_then_cancelled), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(c.statuses[10], FDN_ETIMEDOUT);
  ASSERT_EQ(c.statuses[11], FDN_ECANCELED);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}
