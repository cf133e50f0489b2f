/* Test modes of the scheduler: the seeded shuffle of ready tasks
 * (FDN_SCHED_SEED) and the tick hook (FDN_GC_STRESS).
 */
#include <string.h>

#include "ctask.h"
#include "test.h"

#define N 32

static fdn_engine_t *shuffled_engine(uint64_t sched_seed) {
  fdn_engine_options_t opts;
  fdn_engine_t *engine = NULL;
  fdn_engine_options_init(&opts);
  opts.sched_seed = sched_seed;
  if (fdn_engine_new(&engine, &opts) != 0)
    return NULL;
  return engine;
}

static void record_and_finish(ctask_t *ct, int status) {
  (void)status;
  ctask_trace[ctask_trace_len++] = ct->value;
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

/* Runs N tasks started in order 0..N-1 and copies the order they ran in. */
static int run_order(uint64_t sched_seed, long order[N]) {
  fdn_engine_t *engine = shuffled_engine(sched_seed);
  ctask_t tasks[N];
  int i;
  ASSERT(engine != NULL);
  ASSERT_EQ(fdn_engine_sched_seed(engine), sched_seed);
  ctask_trace_reset();
  for (i = 0; i < N; i++) {
    ASSERT_EQ(ctask_spawn(engine, &tasks[i], record_and_finish), 0);
    tasks[i].value = i;
  }
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(ctask_trace_len, N);
  for (i = 0; i < N; i++)
    ASSERT_EQ(tasks[i].runs, 1);
  memcpy(order, ctask_trace, sizeof(long) * N);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static int is_fifo(const long order[N]) {
  int i;
  for (i = 0; i < N; i++)
    if (order[i] != i)
      return 0;
  return 1;
}

TEST_IMPL(shuffle_runs_every_ready_task_once_in_a_seeded_order) {
  long fifo[N], a[N], again[N], b[N];
  ASSERT_EQ(run_order(0, fifo), 0);
  ASSERT(is_fifo(fifo));
  ASSERT_EQ(run_order(7, a), 0);
  ASSERT_EQ(run_order(7, again), 0);
  ASSERT_EQ(run_order(8, b), 0);
  /* 32! orders: a seed that gave FIFO, or two seeds that agree, would
   * mean no shuffle at all.
   */
  ASSERT(!is_fifo(a));
  ASSERT(memcmp(a, again, sizeof(a)) == 0);
  ASSERT(memcmp(a, b, sizeof(a)) != 0);
  return 0;
}

/* Spawns the others from its first run, then yields. */
static ctask_t children[N];
static void spawn_then_yield(ctask_t *ct, int status) {
  int i;
  (void)status;
  ctask_trace[ctask_trace_len++] = -ct->runs;
  if (ct->runs == 1) {
    for (i = 0; i < N; i++) {
      ctask_spawn(ct->task.engine, &children[i], record_and_finish);
      children[i].value = i;
    }
    ct->rc = fdn_task_yield(&ct->task);
  } else {
    fdn_task_finish(&ct->task, FDN_TASK_DONE);
  }
}

TEST_IMPL(shuffle_keeps_a_yield_behind_the_tasks_ready_when_it_yielded) {
  uint64_t seed;
  for (seed = 1; seed <= 20; seed++) {
    fdn_engine_t *engine = shuffled_engine(seed);
    ctask_t parent;
    int i;
    ASSERT(engine != NULL);
    ctask_trace_reset();
    ASSERT_EQ(ctask_spawn(engine, &parent, spawn_then_yield), 0);
    fdn_engine_run(engine, UV_RUN_DEFAULT);
    ASSERT_EQ(parent.rc, 0);
    ASSERT_EQ(ctask_trace_len, N + 2);
    ASSERT_EQ(ctask_trace[0], -1);
    /* Every child ran before the parent's second run. */
    ASSERT_EQ(ctask_trace[N + 1], -2);
    for (i = 0; i < N; i++)
      ASSERT_EQ(children[i].runs, 1);
    ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  }
  return 0;
}

static int hook_calls;
static size_t ready_at_hook;
static void count_pass(fdn_engine_t *engine, void *arg) {
  hook_calls++;
  ready_at_hook = fdn_engine_ready_tasks(engine);
  *(int *)arg += 1;
}

static void sleep_once(ctask_t *ct, int status) {
  (void)status;
  if (ct->runs == 1)
    ct->rc = fdn_task_sleep(&ct->task, 1000000000ull);
  else
    fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(tick_hook_runs_before_every_pass_that_runs_tasks) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t a, b;
  int arg = 0;
  hook_calls = 0;
  fdn_engine_set_tick_hook(engine, count_pass, &arg, 0);
  ASSERT_EQ(ctask_spawn(engine, &a, sleep_once), 0);
  ASSERT_EQ(ctask_spawn(engine, &b, sleep_once), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(fdn_task_state(&a.task), FDN_TASK_DONE);
  ASSERT_EQ(fdn_task_state(&b.task), FDN_TASK_DONE);
  /* One pass starts both; the jump to t = 1 s wakes both for a second. */
  ASSERT_EQ(hook_calls, 2);
  ASSERT_EQ(arg, 2);
  ASSERT_EQ(ready_at_hook, 2);
  /* Removed: the next passes run without it. */
  fdn_engine_set_tick_hook(engine, NULL, NULL, 0);
  ASSERT_EQ(ctask_spawn(engine, &a, sleep_once), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(hook_calls, 2);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(tick_hook_can_run_before_every_task) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t a, b, c;
  int arg = 0;
  hook_calls = 0;
  fdn_engine_set_tick_hook(engine, count_pass, &arg, 1);
  ASSERT_EQ(ctask_spawn(engine, &a, sleep_once), 0);
  ASSERT_EQ(ctask_spawn(engine, &b, sleep_once), 0);
  ASSERT_EQ(ctask_spawn(engine, &c, sleep_once), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(fdn_task_state(&c.task), FDN_TASK_DONE);
  /* Three tasks, two runs each. */
  ASSERT_EQ(hook_calls, 6);
  ASSERT_EQ(ready_at_hook, 1); /* before the last run, only it was ready */
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}
