/* The virtual clock: long sleeps cost no real time, order is by deadline,
 * and manual advance runs what falls due, in order.
 */
#include "ctask.h"
#include "test.h"

static void sleep_value_ns(ctask_t *ct, int status) {
  (void)status;
  if (ct->runs == 1) {
    ct->rc = fdn_task_sleep(&ct->task, (uint64_t)ct->value);
    return;
  }
  ctask_trace[ctask_trace_len++] = ct->value;
  ct->statuses[30] = (int)(fdn_engine_now(ct->task.engine) / 1000000000ull);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(virtual_hour_sleep_takes_no_real_time) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t a;
  uint64_t start = uv_hrtime();
  ctask_trace_reset();
  ASSERT_EQ(ctask_spawn(engine, &a, sleep_value_ns), 0);
  a.value = 3600ll * 1000000000ll;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(a.rc, 0);
  ASSERT_EQ(a.statuses[30], 3600);
  ASSERT(uv_hrtime() - start < 100000000ull);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(virtual_sleepers_wake_in_deadline_order) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t tasks[6];
  long delays[6] = {30, 10, 50, 10, 20, 40};
  int i;
  ctask_trace_reset();
  for (i = 0; i < 6; i++) {
    ASSERT_EQ(ctask_spawn(engine, &tasks[i], sleep_value_ns), 0);
    tasks[i].value = delays[i] * 1000000000l + i;
  }
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(ctask_trace_len, 6);
  for (i = 1; i < 6; i++)
    ASSERT(ctask_trace[i - 1] < ctask_trace[i]);
  ASSERT_EQ(fdn_engine_now(engine), 50000000002ull);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static void sleep_three_times(ctask_t *ct, int status) {
  (void)status;
  if (ct->runs > 1)
    ctask_trace[ctask_trace_len++] =
        (long)(fdn_engine_now(ct->task.engine) / 1000000000ull);
  if (ct->runs <= 3)
    fdn_task_sleep(&ct->task, 1000000000ull);
  else
    fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(virtual_advance_runs_what_falls_due) {
  fdn_engine_options_t opts;
  fdn_engine_t *engine;
  ctask_t a;
  uint64_t next;
  fdn_engine_options_init(&opts);
  opts.clock = FDN_CLOCK_VIRTUAL;
  opts.autojump = 0;
  ASSERT_EQ(fdn_engine_new(&engine, &opts), 0);
  ctask_trace_reset();
  ASSERT_EQ(ctask_spawn(engine, &a, sleep_three_times), 0);
  /* Without autojump the loop has nothing to do once the task sleeps. */
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(fdn_engine_now(engine), 0);
  ASSERT_EQ(fdn_engine_next_deadline(engine, &next), 0);
  ASSERT_EQ(next, 1000000000ull);
  ASSERT_EQ(fdn_engine_advance(engine, 2500000000ull), 0);
  ASSERT_EQ(ctask_trace_len, 2);
  ASSERT_EQ(ctask_trace[0], 1);
  ASSERT_EQ(ctask_trace[1], 2);
  ASSERT_EQ(fdn_engine_now(engine), 2500000000ull);
  ASSERT_EQ(fdn_engine_set_autojump(engine, 1), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(ctask_trace_len, 3);
  ASSERT_EQ(ctask_trace[2], 3);
  ASSERT_EQ(fdn_engine_next_deadline(engine, &next), FDN_EAGAIN);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(real_clock_refuses_virtual_controls) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ASSERT_EQ(fdn_engine_advance(engine, 1), FDN_ESTATE);
  ASSERT_EQ(fdn_engine_set_autojump(engine, 0), FDN_ESTATE);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}
