/* Wait queues, joins and completion listeners. */
#include "ctask.h"
#include "test.h"

static fdn_waitq_t q;

static void wait_with_timeout(ctask_t *ct, int status) {
  if (ct->runs == 1) {
    ct->rc = fdn_task_wait(&ct->task, &q, (uint64_t)ct->value);
    return;
  }
  ctask_trace[ctask_trace_len++] = (long)ct->task.id * 1000 - status;
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

static void wake_one_each_run(ctask_t *ct, int status) {
  (void)status;
  if (fdn_waitq_wake_one(&q, 7) == NULL) {
    fdn_task_finish(&ct->task, FDN_TASK_DONE);
    return;
  }
  fdn_task_yield(&ct->task);
}

TEST_IMPL(waitq_wakes_in_fifo_order) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t waiters[4], waker;
  int i;
  fdn_waitq_init(&q);
  ctask_trace_reset();
  for (i = 0; i < 4; i++) {
    ASSERT_EQ(ctask_spawn(engine, &waiters[i], wait_with_timeout), 0);
    waiters[i].value = (long)FDN_FOREVER;
  }
  ASSERT_EQ(ctask_spawn(engine, &waker, wake_one_each_run), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(ctask_trace_len, 4);
  for (i = 0; i < 4; i++)
    ASSERT_EQ(ctask_trace[i], (i + 1) * 1000 - 7);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(waitq_timeout_wakes_with_etimedout) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t a, b;
  fdn_waitq_init(&q);
  ctask_trace_reset();
  ASSERT_EQ(ctask_spawn(engine, &a, wait_with_timeout), 0);
  ASSERT_EQ(ctask_spawn(engine, &b, wait_with_timeout), 0);
  a.value = 2000000000;
  b.value = 1000000000;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(a.rc, 0);
  ASSERT_EQ(ctask_trace_len, 2);
  ASSERT_EQ(ctask_trace[0], 2000 - FDN_ETIMEDOUT); /* b: shorter timeout */
  ASSERT_EQ(ctask_trace[1], 1000 - FDN_ETIMEDOUT);
  ASSERT_EQ(fdn_waitq_len(&q), 0);
  ASSERT_EQ(fdn_engine_now(engine), 2000000000ull);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static void sleep_then_finish(ctask_t *ct, int status) {
  (void)status;
  if (ct->runs == 1) {
    fdn_task_sleep(&ct->task, (uint64_t)ct->value);
    return;
  }
  fdn_task_finish(&ct->task, FDN_TASK_FAILED);
}

static void join_target(ctask_t *ct, int status) {
  ctask_t *target = ct->user;
  if (ct->runs == 1) {
    ct->rc = fdn_task_join(&ct->task, &target->task);
    if (ct->rc == 0)
      return;
  }
  ct->value = status;
  ct->statuses[20] = fdn_task_state(&target->task);
  ct->statuses[21] = fdn_task_join(&ct->task, &target->task);
  ct->statuses[22] = fdn_task_join(&ct->task, &ct->task);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

static int listener_calls;
static fdn_task_t *listener_saw;
static void on_finished(fdn_listener_t *listener, fdn_task_t *task) {
  (void)listener;
  listener_calls++;
  listener_saw = task;
}

TEST_IMPL(join_parks_until_the_target_finishes) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t target, joiners[2];
  fdn_listener_t listener, removed;
  int i;
  ASSERT_EQ(ctask_spawn(engine, &target, sleep_then_finish), 0);
  target.value = 5000000000;
  for (i = 0; i < 2; i++) {
    ASSERT_EQ(ctask_spawn(engine, &joiners[i], join_target), 0);
    joiners[i].user = &target;
  }
  listener_calls = 0;
  ASSERT_EQ(fdn_task_listen(&target.task, &listener, on_finished), 0);
  ASSERT_EQ(fdn_task_listen(&target.task, &removed, on_finished), 0);
  fdn_listener_remove(&removed);
  fdn_listener_remove(&removed);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  for (i = 0; i < 2; i++) {
    ASSERT_EQ(joiners[i].rc, 0);
    ASSERT_EQ(joiners[i].value, 0);
    ASSERT_EQ(joiners[i].statuses[20], FDN_TASK_FAILED);
    ASSERT_EQ(joiners[i].statuses[21], 1);
    ASSERT_EQ(joiners[i].statuses[22], FDN_ESTATE);
  }
  ASSERT_EQ(listener_calls, 1);
  ASSERT(listener_saw == &target.task);
  ASSERT_EQ(fdn_task_listen(&target.task, &listener, on_finished), 1);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}
