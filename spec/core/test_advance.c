/* Test controls of the engine: a task advancing virtual time (settling the
 * window before it wakes), stopping a run between two task runs, and telling
 * the engine's own handles from others on its loop.
 */
#include "ctask.h"
#include "test.h"

#define MS 1000000ull
#define ADVANCER_MARK 100000l

static long now_ms(ctask_t *ct) {
  return (long)(fdn_engine_now(ct->task.engine) / MS);
}

/* Sleeps `value` ms, records the time, `user` (an int count) times. */
static void sleeper(ctask_t *ct, int status) {
  int *times = ct->user;
  (void)status;
  if (ct->runs > 1)
    ctask_trace[ctask_trace_len++] = now_ms(ct);
  if (ct->runs <= *times)
    ct->rc = fdn_task_sleep(&ct->task, (uint64_t)ct->value * MS);
  else
    fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

/* Advances `value` ms, then records the time plus a mark. */
static void advancer(ctask_t *ct, int status) {
  if (ct->runs == 1) {
    ct->rc = fdn_engine_advance_task(ct->task.engine, &ct->task,
                                     (uint64_t)ct->value * MS);
    return;
  }
  ct->statuses[40] = status;
  ctask_trace[ctask_trace_len++] = ADVANCER_MARK + now_ms(ct);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

static fdn_engine_t *virtual_engine(int autojump) {
  fdn_engine_options_t opts;
  fdn_engine_t *engine = NULL;
  fdn_engine_options_init(&opts);
  opts.clock = FDN_CLOCK_VIRTUAL;
  opts.autojump = autojump;
  if (fdn_engine_new(&engine, &opts) != 0)
    exit(1);
  return engine;
}

TEST_IMPL(advance_task_runs_the_window_in_order_without_autojump) {
  fdn_engine_t *engine = virtual_engine(0);
  ctask_t a, b;
  int three = 3;
  ctask_trace_reset();
  ASSERT_EQ(ctask_spawn(engine, &a, sleeper), 0);
  a.value = 1000;
  a.user = &three;
  ASSERT_EQ(ctask_spawn(engine, &b, advancer), 0);
  b.value = 2500;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(b.rc, 0);
  ASSERT_EQ(b.statuses[40], 0);
  /* The sleeper woke at 1 s and slept again into 2 s: both inside. */
  ASSERT_EQ(ctask_trace_len, 3);
  ASSERT_EQ(ctask_trace[0], 1000);
  ASSERT_EQ(ctask_trace[1], 2000);
  ASSERT_EQ(ctask_trace[2], ADVANCER_MARK + 2500);
  ASSERT_EQ(fdn_engine_now(engine), 2500 * MS);
  /* Without autojump nothing moves time any more. */
  ASSERT_EQ(fdn_engine_live_tasks(engine), 1);
  ASSERT_EQ(fdn_engine_set_autojump(engine, 1), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(ctask_trace_len, 4);
  ASSERT_EQ(ctask_trace[3], 3000);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(advance_task_fires_nothing_past_the_window_with_autojump) {
  fdn_engine_t *engine = virtual_engine(1);
  ctask_t a, b;
  int once = 1;
  ctask_trace_reset();
  ASSERT_EQ(ctask_spawn(engine, &a, sleeper), 0);
  a.value = 10000;
  a.user = &once;
  ASSERT_EQ(ctask_spawn(engine, &b, advancer), 0);
  b.value = 4000;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(ctask_trace_len, 2);
  ASSERT_EQ(ctask_trace[0], ADVANCER_MARK + 4000);
  ASSERT_EQ(ctask_trace[1], 10000);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(advance_task_runs_timers_due_at_the_window_end_first) {
  fdn_engine_t *engine = virtual_engine(0);
  ctask_t a, b;
  int twice = 2;
  ctask_trace_reset();
  /* The advancer parks first; the sleeper's second wake lands exactly on
   * the window's end and still runs before the advancer resumes.
   */
  ASSERT_EQ(ctask_spawn(engine, &b, advancer), 0);
  b.value = 2000;
  ASSERT_EQ(ctask_spawn(engine, &a, sleeper), 0);
  a.value = 1000;
  a.user = &twice;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(ctask_trace_len, 3);
  ASSERT_EQ(ctask_trace[0], 1000);
  ASSERT_EQ(ctask_trace[1], 2000);
  ASSERT_EQ(ctask_trace[2], ADVANCER_MARK + 2000);
  ASSERT_EQ(fdn_engine_live_tasks(engine), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

/* Finds the advance busy, cancels the advancer (user), then advances. */
static void rival(ctask_t *ct, int status) {
  ctask_t *other = ct->user;
  (void)status;
  if (ct->runs == 1) {
    ct->statuses[40] =
        fdn_engine_advance_task(ct->task.engine, &ct->task, 5000 * MS);
    fdn_task_cancel(&other->task);
    fdn_task_yield(&ct->task);
  } else if (ct->runs == 2) {
    ct->rc = fdn_engine_advance_task(ct->task.engine, &ct->task, 5000 * MS);
  } else {
    ct->value = now_ms(ct);
    fdn_task_finish(&ct->task, FDN_TASK_DONE);
  }
}

TEST_IMPL(advance_task_is_exclusive_and_a_cancelled_one_moves_nothing) {
  fdn_engine_t *engine = virtual_engine(0);
  ctask_t b, c;
  ctask_trace_reset();
  ASSERT_EQ(ctask_spawn(engine, &b, advancer), 0);
  b.value = 100000;
  ASSERT_EQ(ctask_spawn(engine, &c, rival), 0);
  c.user = &b;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(b.rc, 0);
  ASSERT_EQ(b.statuses[40], FDN_ECANCELED);
  ASSERT_EQ(c.statuses[40], FDN_EBUSY);
  ASSERT_EQ(c.rc, 0);
  ASSERT_EQ(c.value, 5000);
  ASSERT_EQ(fdn_engine_now(engine), 5000 * MS);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static void advance_on_real_clock(ctask_t *ct, int status) {
  (void)status;
  ct->rc = fdn_engine_advance_task(ct->task.engine, &ct->task, MS);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(advance_task_refuses_a_real_clock_and_a_task_not_running) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  fdn_engine_t *other = virtual_engine(1);
  ctask_t a, idle;
  ASSERT_EQ(ctask_spawn(engine, &a, advance_on_real_clock), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(a.rc, FDN_ESTATE);
  ASSERT_EQ(ctask_init(other, &idle, advancer), 0);
  ASSERT_EQ(fdn_engine_advance_task(other, &idle.task, MS), FDN_ESTATE);
  ASSERT_EQ(fdn_engine_advance_task(engine, &idle.task, MS), FDN_EINVAL);
  ASSERT_EQ(fdn_task_abandon(&idle.task), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  ASSERT_EQ(fdn_engine_close(other, NULL, NULL), 0);
  return 0;
}

/* Stops the run on its first step, finishes on its second. */
static void stopper(ctask_t *ct, int status) {
  (void)status;
  if (ct->runs == 1) {
    fdn_engine_stop(ct->task.engine);
    fdn_task_yield(&ct->task);
    return;
  }
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(stop_ends_the_run_after_the_running_task_and_keeps_time) {
  fdn_engine_t *engine = virtual_engine(1);
  ctask_t a, b;
  int once = 1;
  ctask_trace_reset();
  ASSERT_EQ(ctask_spawn(engine, &a, stopper), 0);
  ASSERT_EQ(ctask_spawn(engine, &b, sleeper), 0);
  b.value = 5000;
  b.user = &once;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(a.runs, 1);
  ASSERT_EQ(b.runs, 0);
  ASSERT_EQ(fdn_engine_live_tasks(engine), 2);
  ASSERT_EQ(fdn_engine_now(engine), 0);
  /* The next run carries on where this one stopped. */
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(a.runs, 2);
  ASSERT_EQ(ctask_trace_len, 1);
  ASSERT_EQ(ctask_trace[0], 5000);
  ASSERT_EQ(fdn_engine_live_tasks(engine), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(stop_outside_a_run_returns_the_next_run_at_once) {
  fdn_engine_t *engine = virtual_engine(1);
  ctask_t b;
  int once = 1;
  ctask_trace_reset();
  ASSERT_EQ(ctask_spawn(engine, &b, sleeper), 0);
  b.value = 1000;
  b.user = &once;
  fdn_engine_stop(engine);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(b.runs, 0);
  /* Tasks run outside the loop ignore a stop. */
  ASSERT_EQ(fdn_engine_run_ready(engine), 1);
  ASSERT_EQ(b.runs, 1);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(ctask_trace_len, 1);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

typedef struct {
  const fdn_engine_t *engine;
  int own;
  int other;
} walk_count_t;

static void count_handle(uv_handle_t *handle, void *arg) {
  walk_count_t *count = arg;
  if (fdn_engine_owns_handle(count->engine, handle))
    count->own++;
  else
    count->other++;
}

TEST_IMPL(owns_handle_tells_the_engine_handles_from_others) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  uv_timer_t foreign;
  walk_count_t count = {engine, 0, 0};
  ASSERT_EQ(uv_timer_init(fdn_engine_loop(engine), &foreign), 0);
  uv_walk(fdn_engine_loop(engine), count_handle, &count);
  ASSERT_EQ(count.own, 2);
  ASSERT_EQ(count.other, 1);
  uv_close((uv_handle_t *)&foreign, NULL);
  uv_run(fdn_engine_loop(engine), UV_RUN_NOWAIT);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}
