/* The ready queue: FIFO order, yields, and the tick budget. */
#include "ctask.h"
#include "test.h"

static void record_and_finish(ctask_t *ct, int status) {
  (void)status;
  ctask_trace[ctask_trace_len++] = ct->value;
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(ready_tasks_run_in_fifo_order) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t tasks[10];
  int i;
  ctask_trace_reset();
  for (i = 0; i < 10; i++) {
    ASSERT_EQ(ctask_init(engine, &tasks[i], record_and_finish), 0);
    tasks[i].value = i;
    ASSERT_EQ(tasks[i].task.id, (uint64_t)i + 1);
  }
  /* Started in reverse: the order of start, not of creation, counts. */
  for (i = 9; i >= 0; i--)
    ASSERT_EQ(fdn_task_start(&tasks[i].task), 0);
  ASSERT_EQ(fdn_task_start(&tasks[0].task), FDN_ESTATE);
  ASSERT_EQ(fdn_engine_live_tasks(engine), 10);
  ASSERT_EQ(fdn_engine_ready_tasks(engine), 10);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(ctask_trace_len, 10);
  for (i = 0; i < 10; i++)
    ASSERT_EQ(ctask_trace[i], 9 - i);
  ASSERT_EQ(fdn_engine_live_tasks(engine), 0);
  ASSERT_EQ(fdn_task_state(&tasks[0].task), FDN_TASK_DONE);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static void yield_three_times(ctask_t *ct, int status) {
  (void)status;
  ctask_trace[ctask_trace_len++] = ct->value * 10 + ct->runs;
  if (ct->runs < 3)
    ct->rc = fdn_task_yield(&ct->task);
  else
    fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(yield_requeues_at_the_tail) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t a, b;
  ctask_trace_reset();
  ASSERT_EQ(ctask_spawn(engine, &a, yield_three_times), 0);
  ASSERT_EQ(ctask_spawn(engine, &b, yield_three_times), 0);
  a.value = 1;
  b.value = 2;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(ctask_trace_len, 6);
  ASSERT_EQ(ctask_trace[0], 11);
  ASSERT_EQ(ctask_trace[1], 21);
  ASSERT_EQ(ctask_trace[2], 12);
  ASSERT_EQ(ctask_trace[3], 22);
  ASSERT_EQ(ctask_trace[4], 13);
  ASSERT_EQ(ctask_trace[5], 23);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static void return_without_parking(ctask_t *ct, int status) {
  (void)status;
  if (ct->runs == 5)
    fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(task_that_returns_without_parking_is_requeued) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t a;
  ASSERT_EQ(ctask_spawn(engine, &a, return_without_parking), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(a.runs, 5);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static int host_timer_fired;
static void on_host_timer(uv_timer_t *timer) {
  (void)timer;
  host_timer_fired = 1;
}

static void spin_until_host_timer(ctask_t *ct, int status) {
  (void)status;
  if (host_timer_fired)
    fdn_task_finish(&ct->task, FDN_TASK_DONE);
  else
    fdn_task_yield(&ct->task);
}

/* A task that yields forever must not starve the loop: a libuv timer of
 * the host's still fires between ticks.
 */
TEST_IMPL(tick_budget_lets_the_loop_breathe) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  uv_timer_t host;
  ctask_t spinner;
  host_timer_fired = 0;
  uv_timer_init(fdn_engine_loop(engine), &host);
  uv_timer_start(&host, on_host_timer, 5, 0);
  ASSERT_EQ(ctask_spawn(engine, &spinner, spin_until_host_timer), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT(host_timer_fired);
  ASSERT(spinner.runs > 1);
  ASSERT_EQ(fdn_task_state(&spinner.task), FDN_TASK_DONE);
  uv_close((uv_handle_t *)&host, NULL);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(task_init_rejects_bad_arguments) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  fdn_task_t task;
  ASSERT_EQ(fdn_task_init(engine, &task, NULL), FDN_EINVAL);
  ASSERT_EQ(fdn_task_init(NULL, &task, (fdn_task_run_cb)1), FDN_EINVAL);
  ASSERT_EQ(fdn_engine_live_tasks(engine), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(park_outside_the_running_task_is_refused) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t a;
  ASSERT_EQ(ctask_init(engine, &a, record_and_finish), 0);
  ASSERT_EQ(fdn_task_sleep(&a.task, 1000), FDN_ESTATE);
  ASSERT_EQ(fdn_task_yield(&a.task), FDN_ESTATE);
  ASSERT_EQ(fdn_task_finish(&a.task, FDN_TASK_DONE), FDN_ESTATE);
  ASSERT_EQ(fdn_task_start(&a.task), 0);
  ASSERT_EQ(fdn_task_finish(&a.task, FDN_TASK_READY), FDN_EINVAL);
  ctask_trace_reset();
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}
