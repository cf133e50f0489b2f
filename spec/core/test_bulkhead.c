/* Bulkhead: slots, the bounded FIFO queue, timeouts, cancellation, and
 * the slot handed to a waiter that is cancelled before it runs.
 */
#include "ctask.h"
#include "test.h"

#define S 1000000000ull

static fdn_bulkhead_t bh;
static uint64_t wait_timeout;

/* Enters the bulkhead; on getting a slot records 1 in `value` and stays
 * inside (parks) until woken; then leaves. A slot handed over while a
 * cancellation is pending is given back at once (value 2).
 */
static void enter_and_hold(ctask_t *ct, int status) {
  if (ct->runs == 1) {
    ct->rc = fdn_bulkhead_enter(&bh, &ct->task, wait_timeout);
    if (ct->rc == 1)
      return; /* parked in the queue */
    if (ct->rc != 0) {
      fdn_task_finish(&ct->task, FDN_TASK_FAILED);
      return;
    }
  } else if (ct->value == 0) {
    if (status != 0) { /* timed out or cancelled in the queue */
      ct->rc = status;
      if (status == FDN_ETIMEDOUT)
        fdn_bulkhead_timed_out(&bh);
      fdn_task_finish(&ct->task, FDN_TASK_FAILED);
      return;
    }
    if (fdn_task_cancel_pending(&ct->task) != FDN_CANCEL_NONE) {
      fdn_bulkhead_leave(&bh);
      ct->value = 2;
      fdn_task_finish(&ct->task, FDN_TASK_CANCELLED);
      return;
    }
  } else {
    fdn_bulkhead_leave(&bh); /* woken while holding: done */
    fdn_task_finish(&ct->task, FDN_TASK_DONE);
    return;
  }
  ct->value = 1;
  fdn_task_park(&ct->task, FDN_FOREVER);
}

TEST_IMPL(bulkhead_limits_queues_and_rejects) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t t[5];
  int i;
  ASSERT_EQ(fdn_bulkhead_init(&bh, 0, 1), FDN_EINVAL);
  ASSERT_EQ(fdn_bulkhead_init(&bh, 2, 2), 0);
  wait_timeout = FDN_FOREVER;
  for (i = 0; i < 5; i++)
    ASSERT_EQ(ctask_spawn(engine, &t[i], enter_and_hold), 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(t[0].value, 1);
  ASSERT_EQ(t[1].value, 1);
  ASSERT_EQ(t[2].rc, 1);
  ASSERT_EQ(t[3].rc, 1);
  ASSERT_EQ(t[4].rc, FDN_EFULL);
  ASSERT_EQ(fdn_bulkhead_active(&bh), 2);
  ASSERT_EQ(fdn_bulkhead_waiting(&bh), 2);
  ASSERT_EQ(bh.rejected, 1);
  ASSERT_EQ(fdn_bulkhead_try_enter(&bh), FDN_EAGAIN);
  /* Leaving hands the slot to the first waiter, in order. */
  fdn_task_wake(&t[1].task, 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(t[2].value, 1);
  ASSERT_EQ(t[3].value, 0);
  ASSERT_EQ(fdn_bulkhead_active(&bh), 2);
  fdn_task_wake(&t[0].task, 0);
  fdn_task_wake(&t[2].task, 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(t[3].value, 1);
  fdn_task_wake(&t[3].task, 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(fdn_bulkhead_active(&bh), 0);
  ASSERT_EQ(bh.admitted, 4);
  /* Free slots and nobody waiting: try_enter works. */
  ASSERT_EQ(fdn_bulkhead_try_enter(&bh), 0);
  fdn_bulkhead_leave(&bh);
  fdn_bulkhead_leave(&bh); /* an extra leave changes nothing */
  ASSERT_EQ(fdn_bulkhead_active(&bh), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(bulkhead_waiters_time_out_or_are_cancelled_without_a_slot) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t holder, late, cancelled, instant;
  ASSERT_EQ(fdn_bulkhead_init(&bh, 1, FDN_BULKHEAD_UNLIMITED), 0);
  wait_timeout = 2 * S;
  ASSERT_EQ(ctask_spawn(engine, &holder, enter_and_hold), 0);
  ASSERT_EQ(ctask_spawn(engine, &late, enter_and_hold), 0);
  ASSERT_EQ(ctask_spawn(engine, &cancelled, enter_and_hold), 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(fdn_bulkhead_waiting(&bh), 2);
  fdn_task_cancel(&cancelled.task);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(cancelled.rc, FDN_ECANCELED);
  ASSERT_EQ(fdn_bulkhead_waiting(&bh), 1);
  ASSERT_EQ(fdn_engine_advance(engine, 2 * S), 0);
  ASSERT_EQ(late.rc, FDN_ETIMEDOUT);
  ASSERT_EQ(bh.timed_out, 1);
  ASSERT_EQ(fdn_bulkhead_waiting(&bh), 0);
  ASSERT_EQ(fdn_bulkhead_active(&bh), 1);
  /* A zero timeout never waits. */
  wait_timeout = 0;
  ASSERT_EQ(ctask_spawn(engine, &instant, enter_and_hold), 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(instant.rc, FDN_ETIMEDOUT);
  fdn_task_wake(&holder.task, 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(fdn_bulkhead_active(&bh), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(bulkhead_slot_handed_to_a_cancelled_waiter_comes_back) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t unlucky, next;
  ASSERT_EQ(fdn_bulkhead_init(&bh, 1, 5), 0);
  wait_timeout = FDN_FOREVER;
  ASSERT_EQ(fdn_bulkhead_try_enter(&bh), 0); /* the test holds the slot */
  ASSERT_EQ(ctask_spawn(engine, &unlucky, enter_and_hold), 0);
  ASSERT_EQ(ctask_spawn(engine, &next, enter_and_hold), 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(fdn_bulkhead_waiting(&bh), 2);
  /* Leaving hands the slot to `unlucky`, which is READY, not running... */
  fdn_bulkhead_leave(&bh);
  ASSERT_EQ(fdn_task_state(&unlucky.task), FDN_TASK_READY);
  ASSERT_EQ(fdn_bulkhead_active(&bh), 1);
  /* ...and is cancelled before it runs: it still wakes with 0, holding the
   * slot, sees the cancellation and gives the slot back to `next`.
   */
  ASSERT_EQ(fdn_task_cancel(&unlucky.task), 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(unlucky.statuses[1], 0);
  ASSERT_EQ(unlucky.value, 2);
  ASSERT_EQ(next.value, 1);
  ASSERT_EQ(fdn_bulkhead_active(&bh), 1);
  fdn_task_wake(&next.task, 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(fdn_bulkhead_active(&bh), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}
