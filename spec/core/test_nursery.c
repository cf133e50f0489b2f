/* The nursery: deferred starts under a limit, FIFO, fail-fast aborts that
 * reach the body's scope, waiting for the last child, detaching.
 */
#include "ctask.h"
#include "test.h"

static fdn_nursery_t nursery;
static fdn_nursery_member_t members[32];
static int running, max_running, done_calls, failed_seen;
static ctask_t *to_fail; /* fails after one yield */

static void on_done(fdn_nursery_t *n, fdn_nursery_member_t *m) {
  (void)n;
  done_calls++;
  if (fdn_task_state(m->task) == FDN_TASK_FAILED)
    failed_seen++;
  m->task = NULL; /* the member is free again */
}

static void reset(uint64_t limit, int fail_fast) {
  running = max_running = done_calls = failed_seen = 0;
  to_fail = NULL;
  ctask_trace_reset();
  fdn_nursery_init(&nursery, limit, fail_fast, on_done);
}

/* A child: records its start, then yields ct->value times and finishes
 * DONE (FAILED when ct->rc is 1); with a negative ct->value it parks until
 * woken or cancelled. A cancelled child finishes CANCELLED.
 */
static void child(ctask_t *ct, int status) {
  int rc;
  if (ct->runs == 1) {
    ctask_trace[ctask_trace_len++] = (long)ct->task.id;
    running++;
    if (running > max_running)
      max_running = running;
  }
  if (ct == to_fail && ct->runs == 2) {
    running--;
    fdn_task_finish(&ct->task, FDN_TASK_FAILED);
    return;
  }
  if (ct == to_fail || (ct->value >= 0 && ct->runs <= ct->value)) {
    rc = fdn_task_yield(&ct->task);
  } else if (ct->value < 0 && ct->runs == 1) {
    rc = fdn_task_park(&ct->task, FDN_FOREVER);
  } else {
    running--;
    fdn_task_finish(&ct->task, status != 0   ? FDN_TASK_CANCELLED
                               : ct->rc == 1 ? FDN_TASK_FAILED
                                             : FDN_TASK_DONE);
    return;
  }
  if (rc != 0) {
    running--;
    fdn_task_finish(&ct->task, FDN_TASK_CANCELLED);
  }
}

static int add_children(fdn_engine_t *engine, ctask_t *kids, int n,
                        int yields) {
  int i;
  for (i = 0; i < n; i++) {
    if (ctask_init(engine, &kids[i], child) != 0)
      return -1;
    kids[i].value = yields;
    if (fdn_nursery_add(&nursery, &members[i], &kids[i].task) != 0)
      return -1;
  }
  return 0;
}

/* The body: adds the children (ct->user), then waits for them. */
static ctask_t *body_kids;
static int body_nkids, body_yields;

static void body(ctask_t *ct, int status) {
  if (ct->runs == 1) {
    ct->statuses[40] =
        add_children(ct->task.engine, body_kids, body_nkids, body_yields);
    ct->rc = fdn_nursery_wait(&nursery, &ct->task, FDN_FOREVER);
    if (ct->rc == 0)
      return;
  }
  ct->value = status;
  ct->statuses[41] = fdn_nursery_wait(&nursery, &ct->task, FDN_FOREVER);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(nursery_starts_children_in_order_under_its_limit) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  static ctask_t kids[10];
  ctask_t waiter;
  int i;
  reset(3, 1);
  body_kids = kids;
  body_nkids = 10;
  body_yields = 4;
  ASSERT_EQ(ctask_spawn(engine, &waiter, body), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(waiter.statuses[40], 0);
  ASSERT_EQ(waiter.rc, 0);    /* parked */
  ASSERT_EQ(waiter.value, 0); /* woken once all were done */
  ASSERT_EQ(waiter.statuses[41], 1);
  ASSERT_EQ(max_running, 3);
  ASSERT_EQ(ctask_trace_len, 10);
  for (i = 0; i < 10; i++) {
    ASSERT_EQ(ctask_trace[i], (long)kids[i].task.id);
    ASSERT_EQ(fdn_task_state(&kids[i].task), FDN_TASK_DONE);
  }
  ASSERT_EQ(done_calls, 10);
  ASSERT_EQ(fdn_nursery_finished(&nursery), 10);
  ASSERT_EQ(fdn_nursery_running(&nursery), 0);
  ASSERT_EQ(fdn_nursery_pending(&nursery), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(nursery_without_limit_starts_every_child_at_once) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  static ctask_t kids[8];
  reset(0, 1);
  ASSERT_EQ(add_children(engine, kids, 8, 2), 0);
  ASSERT_EQ(fdn_nursery_running(&nursery), 8);
  ASSERT_EQ(fdn_nursery_pending(&nursery), 0);
  ASSERT_EQ(fdn_task_state(&kids[7].task), FDN_TASK_READY);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(max_running, 8);
  ASSERT_EQ(done_calls, 8);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static fdn_scope_t body_scope;

/* A body inside a scope the nursery cancels on abort: it adds the
 * children, then sleeps for an hour inside the scope.
 */
static void scoped_body(ctask_t *ct, int status) {
  if (ct->runs == 1) {
    fdn_scope_enter(&ct->task, &body_scope, FDN_FOREVER, 0);
    fdn_nursery_set_scope(&nursery, &body_scope);
    ct->statuses[40] =
        add_children(ct->task.engine, body_kids, body_nkids, body_yields);
    ct->rc = fdn_task_sleep(&ct->task, 3600ull * 1000000000ull);
    return;
  }
  if (ct->runs == 2) {
    ct->value = status;
    ct->statuses[41] = fdn_task_cancel_pending(&ct->task);
    fdn_nursery_set_scope(&nursery, NULL);
    ct->statuses[42] = fdn_scope_exit(&body_scope);
    ct->statuses[43] = fdn_nursery_wait(&nursery, &ct->task, FDN_FOREVER);
    if (ct->statuses[43] == 0)
      return;
  }
  ct->statuses[44] = status;
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(nursery_failure_cancels_siblings_waiting_children_and_the_body) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  static ctask_t kids[6];
  ctask_t owner;
  int i;
  reset(2, 1);
  body_kids = kids;
  body_nkids = 6;
  body_yields = -1; /* park until cancelled */
  to_fail = &kids[0];
  ASSERT_EQ(ctask_spawn(engine, &owner, scoped_body), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(owner.statuses[40], 0);
  ASSERT_EQ(owner.value, FDN_ECANCELED); /* woken from its hour of sleep */
  ASSERT_EQ(owner.statuses[41], FDN_CANCEL_SCOPE);
  ASSERT_EQ(owner.statuses[42], 1);
  /* The cancelled children ran (and ended) before the woken body. */
  ASSERT_EQ(owner.statuses[43], 1);
  ASSERT(fdn_nursery_aborted(&nursery));
  ASSERT_EQ(max_running, 2);
  ASSERT_EQ(fdn_task_state(&kids[0].task), FDN_TASK_FAILED);
  for (i = 1; i < 6; i++)
    ASSERT_EQ(fdn_task_state(&kids[i].task), FDN_TASK_CANCELLED);
  ASSERT_EQ(fdn_nursery_failed(&nursery), 1);
  ASSERT_EQ(failed_seen, 1);
  ASSERT_EQ(done_calls, 6);
  ASSERT(fdn_engine_now(engine) < 1000000000ull);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(nursery_without_fail_fast_only_counts_failures) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  static ctask_t kids[5];
  int i;
  reset(2, 0);
  ASSERT_EQ(add_children(engine, kids, 5, 2), 0);
  kids[1].rc = 1;
  kids[3].rc = 1;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT(!fdn_nursery_aborted(&nursery));
  ASSERT_EQ(fdn_nursery_failed(&nursery), 2);
  for (i = 0; i < 5; i++)
    ASSERT_EQ(fdn_task_state(&kids[i].task),
              i % 2 ? FDN_TASK_FAILED : FDN_TASK_DONE);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(nursery_abort_cancels_children_and_later_additions) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  static ctask_t kids[4];
  ctask_t late, not_new;
  int i;
  reset(1, 0);
  ASSERT_EQ(add_children(engine, kids, 4, -1), 0);
  ASSERT_EQ(fdn_nursery_pending(&nursery), 3);
  fdn_nursery_abort(&nursery);
  fdn_nursery_abort(&nursery);
  ASSERT_EQ(fdn_nursery_pending(&nursery), 0);
  ASSERT_EQ(fdn_nursery_running(&nursery), 4);
  ASSERT_EQ(ctask_init(engine, &late, child), 0);
  late.value = -1;
  ASSERT_EQ(fdn_nursery_add(&nursery, &members[10], &late.task), 0);
  ASSERT(fdn_task_cancel_requested(&late.task));
  ASSERT_EQ(ctask_spawn(engine, &not_new, child), 0);
  ASSERT_EQ(fdn_nursery_add(&nursery, &members[11], &not_new.task), FDN_ESTATE);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  for (i = 0; i < 4; i++)
    ASSERT_EQ(fdn_task_state(&kids[i].task), FDN_TASK_CANCELLED);
  ASSERT_EQ(fdn_task_state(&late.task), FDN_TASK_CANCELLED);
  ASSERT_EQ(done_calls, 5);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static void wait_then_record(ctask_t *ct, int status) {
  if (ct->runs == 1) {
    ct->rc = fdn_nursery_wait(&nursery, &ct->task, FDN_FOREVER);
    if (ct->rc == 0)
      return;
  }
  ct->value = status;
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(nursery_detach_lets_children_go_and_wakes_waiters) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  static ctask_t kids[3];
  ctask_t waiter;
  int i;
  reset(1, 1);
  ASSERT_EQ(add_children(engine, kids, 3, -1), 0);
  ASSERT_EQ(ctask_spawn(engine, &waiter, wait_then_record), 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(waiter.rc, 0);
  ASSERT_EQ(fdn_nursery_pending(&nursery), 2);
  fdn_nursery_detach(&nursery);
  ASSERT_EQ(done_calls, 3);
  ASSERT_EQ(fdn_nursery_running(&nursery), 0);
  ASSERT_EQ(fdn_nursery_pending(&nursery), 0);
  fdn_engine_run_ready(engine);
  ASSERT_EQ(waiter.value, FDN_ECLOSED);
  /* The waiting children were started; all go on, unwatched. */
  ASSERT_EQ(max_running, 3);
  for (i = 0; i < 3; i++) {
    ASSERT_EQ(fdn_task_state(&kids[i].task), FDN_TASK_WAITING);
    fdn_task_cancel(&kids[i].task);
  }
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(done_calls, 3);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(nursery_wait_on_an_empty_nursery_returns_at_once) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t waiter;
  reset(0, 1);
  ASSERT_EQ(fdn_nursery_init(NULL, 0, 0, NULL), FDN_EINVAL);
  ASSERT_EQ(ctask_spawn(engine, &waiter, wait_then_record), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(waiter.rc, 1);
  ASSERT_EQ(waiter.runs, 1);
  ASSERT_EQ(fdn_nursery_wait(&nursery, &waiter.task, 0), FDN_ESTATE);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(nursery_abandoned_waiting_child_is_released) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  static ctask_t kids[2];
  reset(1, 1);
  ASSERT_EQ(add_children(engine, kids, 2, 1), 0);
  ASSERT_EQ(fdn_nursery_pending(&nursery), 1);
  ASSERT_EQ(fdn_task_abandon(&kids[1].task), 0);
  ASSERT_EQ(fdn_nursery_pending(&nursery), 0);
  ASSERT_EQ(done_calls, 1);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(done_calls, 2);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}
