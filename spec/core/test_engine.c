/* Engines on their own loop or a host's, timers, and many tasks. */
#include <stdlib.h>

#include "ctask.h"
#include "test.h"

static fdn_timer_t *fired[8];
static int nfired;
static void record_timer(fdn_timer_t *timer) {
  fired[nfired++] = timer;
}

TEST_IMPL(timers_fire_in_deadline_order) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  fdn_timer_t a, b, c, stopped;
  uint64_t start = uv_hrtime();
  nfired = 0;
  fdn_timer_init(engine, &a);
  fdn_timer_init(engine, &b);
  fdn_timer_init(engine, &c);
  fdn_timer_init(engine, &stopped);
  ASSERT_EQ(fdn_timer_start(&a, record_timer, 30000000), 0);
  ASSERT_EQ(fdn_timer_start(&b, record_timer, 10000000), 0);
  ASSERT_EQ(fdn_timer_start(&c, record_timer, 20000000), 0);
  ASSERT_EQ(fdn_timer_start(&stopped, record_timer, 1000000), 0);
  ASSERT_EQ(fdn_timer_start(&stopped, NULL, 1000000), FDN_EINVAL);
  ASSERT(fdn_timer_active(&stopped));
  fdn_timer_stop(&stopped);
  ASSERT(!fdn_timer_active(&stopped));
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(nfired, 3);
  ASSERT(fired[0] == &b && fired[1] == &c && fired[2] == &a);
  ASSERT(uv_hrtime() - start >= 30000000ull);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static int host_ticks;
static void on_host_tick(uv_timer_t *timer) {
  if (++host_ticks == 3)
    uv_timer_stop(timer);
}

static void sleep_15ms_twice(ctask_t *ct, int status) {
  (void)status;
  if (ct->runs <= 2)
    fdn_task_sleep(&ct->task, 15000000ull);
  else
    fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

static int closed_cb_calls;
static void on_engine_closed(void *arg) {
  (void)arg;
  closed_cb_calls++;
}

TEST_IMPL(engine_shares_a_host_loop) {
  uv_loop_t loop;
  uv_timer_t host;
  fdn_engine_options_t opts;
  fdn_engine_t *engine;
  ctask_t a;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  uv_timer_init(&loop, &host);
  uv_timer_start(&host, on_host_tick, 5, 5);
  fdn_engine_options_init(&opts);
  opts.loop = &loop;
  ASSERT_EQ(fdn_engine_new(&engine, &opts), 0);
  ASSERT(fdn_engine_loop(engine) == &loop);
  ASSERT_EQ(ctask_spawn(engine, &a, sleep_15ms_twice), 0);
  host_ticks = 0;
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(host_ticks, 3);
  ASSERT_EQ(fdn_task_state(&a.task), FDN_TASK_DONE);
  closed_cb_calls = 0;
  ASSERT_EQ(fdn_engine_close(engine, on_engine_closed, NULL), 0);
  ASSERT_EQ(closed_cb_calls, 0); /* freed on the host's next turn */
  uv_close((uv_handle_t *)&host, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(closed_cb_calls, 1);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  return 0;
}

TEST_IMPL(engine_refuses_to_close_with_live_tasks) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t a;
  ASSERT_EQ(ctask_spawn(engine, &a, sleep_15ms_twice), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), FDN_EBUSY);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(engine_rejects_bad_options) {
  fdn_engine_options_t opts;
  fdn_engine_t *engine = (fdn_engine_t *)1;
  fdn_engine_options_init(&opts);
  opts.clock = (fdn_clock_kind_t)7;
  ASSERT_EQ(fdn_engine_new(&engine, &opts), FDN_EINVAL);
  ASSERT(engine == NULL);
  ASSERT_EQ(fdn_engine_new(NULL, NULL), FDN_EINVAL);
  ASSERT_EQ(fdn_engine_close(NULL, NULL, NULL), FDN_EINVAL);
  return 0;
}

static void sleep_random_ms(ctask_t *ct, int status) {
  (void)status;
  if (ct->runs == 1)
    ct->rc = fdn_task_sleep(&ct->task, (uint64_t)ct->value);
  else
    fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(hundred_thousand_sleeping_tasks_all_finish) {
  enum { N = 100000 };
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t *tasks = calloc(N, sizeof(*tasks));
  unsigned seed = 7;
  int i, done = 0;
  ASSERT(tasks != NULL);
  for (i = 0; i < N; i++) {
    seed = seed * 1103515245u + 12345u;
    ASSERT_EQ(ctask_spawn(engine, &tasks[i], sleep_random_ms), 0);
    tasks[i].value = (long)(1 + (seed >> 16) % 10) * 1000000l;
  }
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  for (i = 0; i < N; i++)
    done += fdn_task_state(&tasks[i].task) == FDN_TASK_DONE &&
            tasks[i].runs == 2 && tasks[i].rc == 0;
  ASSERT_EQ(done, N);
  ASSERT_EQ(fdn_engine_live_tasks(engine), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  free(tasks);
  return 0;
}
