/* Cancellation: wakes a parked task at once, is sticky, respects shields,
 * and scopes with deadlines cancel what runs inside them.
 */
#include "ctask.h"
#include "test.h"

static void sleep_an_hour_then_finish(ctask_t *ct, int status) {
  if (ct->runs == 1) {
    ct->rc = fdn_task_sleep(&ct->task, 3600ull * 1000000000ull);
    if (ct->rc == 0)
      return;
  }
  (void)status;
  /* Sticky: once cancelled, parking again fails at once. */
  ct->value = fdn_task_sleep(&ct->task, 1000);
  fdn_task_finish(&ct->task, fdn_task_cancel_pending(&ct->task)
                                 ? FDN_TASK_CANCELLED
                                 : FDN_TASK_DONE);
}

static void cancel_target(ctask_t *ct, int status) {
  (void)status;
  ct->rc = fdn_task_cancel((fdn_task_t *)ct->user);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(cancel_wakes_a_sleeping_task_at_once) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t sleeper, canceller;
  uint64_t start = uv_hrtime();
  ASSERT_EQ(ctask_spawn(engine, &sleeper, sleep_an_hour_then_finish), 0);
  ASSERT_EQ(ctask_spawn(engine, &canceller, cancel_target), 0);
  canceller.user = &sleeper.task;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT(uv_hrtime() - start < 1000000000ull);
  ASSERT_EQ(canceller.rc, 0);
  ASSERT_EQ(sleeper.runs, 2);
  ASSERT_EQ(sleeper.statuses[1], FDN_ECANCELED);
  ASSERT_EQ(sleeper.value, FDN_ECANCELED);
  ASSERT_EQ(fdn_task_state(&sleeper.task), FDN_TASK_CANCELLED);
  ASSERT_EQ(fdn_engine_armed_timers(engine), 0);
  /* Cancelling a finished task is refused and changes nothing. */
  ASSERT_EQ(fdn_task_cancel(&sleeper.task), FDN_ESTATE);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static void finish_cancelled_if_pending(ctask_t *ct, int status) {
  (void)status;
  ct->value = fdn_task_cancel_pending(&ct->task);
  ct->rc = fdn_task_yield(&ct->task);
  fdn_task_finish(&ct->task, FDN_TASK_CANCELLED);
}

TEST_IMPL(cancel_before_start_is_seen_at_first_run) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t a;
  ASSERT_EQ(ctask_init(engine, &a, finish_cancelled_if_pending), 0);
  ASSERT_EQ(fdn_task_cancel(&a.task), 0);
  ASSERT(fdn_task_cancel_requested(&a.task));
  ASSERT_EQ(fdn_task_start(&a.task), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(a.value, FDN_CANCEL_TASK);
  ASSERT_EQ(a.rc, FDN_ECANCELED);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static fdn_waitq_t shared_q;

static void wait_on_shared_q(ctask_t *ct, int status) {
  if (ct->runs == 1) {
    ct->rc = fdn_task_wait(&ct->task, &shared_q, FDN_FOREVER);
    return;
  }
  ct->value = status;
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

static void cancel_middle_then_wake_all(ctask_t *ct, int status) {
  ctask_t *waiters = ct->user;
  (void)status;
  ct->value = fdn_waitq_len(&shared_q);
  fdn_task_cancel(&waiters[1].task);
  ct->rc = (int)fdn_waitq_len(&shared_q);
  fdn_waitq_wake_all(&shared_q, 42);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(cancelled_waiter_leaves_its_queue) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t waiters[3], waker;
  int i;
  fdn_waitq_init(&shared_q);
  for (i = 0; i < 3; i++)
    ASSERT_EQ(ctask_spawn(engine, &waiters[i], wait_on_shared_q), 0);
  ASSERT_EQ(ctask_spawn(engine, &waker, cancel_middle_then_wake_all), 0);
  waker.user = waiters;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(waker.value, 3);
  ASSERT_EQ(waker.rc, 2);
  ASSERT_EQ(waiters[0].value, 42);
  ASSERT_EQ(waiters[1].value, FDN_ECANCELED);
  ASSERT_EQ(waiters[2].value, 42);
  ASSERT_EQ(fdn_waitq_len(&shared_q), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

/* Step 1 enters a shield, sleeps 20 ms; the cancel arrives meanwhile but
 * must not wake it. Step 2 leaves the shield and finds the cancel pending.
 */
static fdn_scope_t shield_scope;

static void shielded_sleep(ctask_t *ct, int status) {
  if (ct->runs == 1) {
    fdn_scope_enter(&ct->task, &shield_scope, FDN_FOREVER, 1);
    ct->rc = fdn_task_sleep(&ct->task, 20000000ull);
    return;
  }
  ct->value = status;
  ct->statuses[10] = fdn_scope_exit(&shield_scope);
  ct->statuses[11] = fdn_task_sleep(&ct->task, 1000);
  fdn_task_finish(&ct->task, FDN_TASK_CANCELLED);
}

TEST_IMPL(shield_hides_cancellation_until_it_ends) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t sleeper, canceller;
  ASSERT_EQ(ctask_spawn(engine, &sleeper, shielded_sleep), 0);
  ASSERT_EQ(ctask_spawn(engine, &canceller, cancel_target), 0);
  canceller.user = &sleeper.task;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(sleeper.rc, 0);
  ASSERT_EQ(sleeper.value, 0); /* woken by its timer, not the cancel */
  ASSERT_EQ(sleeper.statuses[10], 0);
  ASSERT_EQ(sleeper.statuses[11], FDN_ECANCELED);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static fdn_scope_t outer_scope, inner_scope;

static void nested_deadlines(ctask_t *ct, int status) {
  uint64_t now = fdn_engine_now(ct->task.engine);
  if (ct->runs == 1) {
    fdn_scope_enter(&ct->task, &outer_scope, now + 5000000000ull, 0);
    fdn_scope_enter(&ct->task, &inner_scope, now + 1000000000ull, 0);
    ct->rc = fdn_task_sleep(&ct->task, 3600ull * 1000000000ull);
    return;
  }
  ct->value = status;
  ct->statuses[10] = fdn_task_cancel_pending(&ct->task);
  ct->statuses[11] = fdn_scope_exit(&outer_scope); /* not innermost */
  ct->statuses[12] = fdn_scope_exit(&inner_scope);
  ct->statuses[13] = fdn_task_cancel_pending(&ct->task);
  ct->statuses[14] = fdn_scope_exit(&outer_scope);
  ct->statuses[15] = (int)(fdn_engine_now(ct->task.engine) / 1000000000ull);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(scope_deadline_cancels_the_wait_inside_it) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t a;
  ASSERT_EQ(ctask_spawn(engine, &a, nested_deadlines), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(a.rc, 0);
  ASSERT_EQ(a.value, FDN_ECANCELED);
  ASSERT_EQ(a.statuses[10], FDN_CANCEL_DEADLINE);
  ASSERT_EQ(a.statuses[11], FDN_ESTATE);
  ASSERT_EQ(a.statuses[12], 1);
  ASSERT_EQ(a.statuses[13], FDN_CANCEL_NONE);
  ASSERT_EQ(a.statuses[14], 0);
  ASSERT_EQ(a.statuses[15], 1);
  ASSERT_EQ(fdn_engine_armed_timers(engine), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static fdn_scope_t leaked_scope;

static void finish_inside_scope(ctask_t *ct, int status) {
  (void)status;
  fdn_scope_enter(&ct->task, &leaked_scope,
                  fdn_engine_now(ct->task.engine) + 1000000000ull, 0);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(finishing_task_detaches_its_scopes) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t a;
  ASSERT_EQ(ctask_spawn(engine, &a, finish_inside_scope), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(fdn_engine_armed_timers(engine), 0);
  ASSERT_EQ(fdn_scope_exit(&leaked_scope), FDN_ESTATE);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static void wait_forever(ctask_t *ct, int status) {
  (void)status;
  ct->rc = fdn_task_park(&ct->task, FDN_FOREVER);
}

TEST_IMPL(abandoned_tasks_let_the_engine_close) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t parked, sleeping, fresh;
  ASSERT_EQ(ctask_spawn(engine, &parked, wait_forever), 0);
  ASSERT_EQ(ctask_spawn(engine, &sleeping, sleep_an_hour_then_finish), 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(ctask_init(engine, &fresh, wait_forever), 0);
  ASSERT_EQ(fdn_engine_live_tasks(engine), 3);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), FDN_EBUSY);
  ASSERT_EQ(fdn_task_abandon(&parked.task), 0);
  ASSERT_EQ(fdn_task_abandon(&sleeping.task), 0);
  ASSERT_EQ(fdn_task_abandon(&fresh.task), 0);
  ASSERT_EQ(fdn_task_abandon(&fresh.task), FDN_ESTATE);
  ASSERT_EQ(fdn_task_state(&parked.task), FDN_TASK_CANCELLED);
  ASSERT_EQ(fdn_engine_armed_timers(engine), 0);
  ASSERT_EQ(fdn_engine_live_tasks(engine), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}
