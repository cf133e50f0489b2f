/* The limiter: FIFO hand-off, cancellation and timeouts while waiting,
 * resizing with debt, closing, and the limit holding under load.
 */
#include "ctask.h"
#include "test.h"

static fdn_limiter_t lim;
static int in_flight, max_in_flight, completed;

/* A worker's phases, kept in ct->value. */
enum { W_START = 0, W_PARKED = 1, W_HOLDING = 2 };

/* How many turns a worker holds its permit (ct->statuses[40]) and the
 * timeout of its acquire (ct->statuses[41], ms; 0 means forever).
 */
static uint64_t timeout_of(const ctask_t *ct) {
  return ct->statuses[41] ? (uint64_t)ct->statuses[41] * 1000000ull
                          : FDN_FOREVER;
}

static void got_permit(ctask_t *ct) {
  ctask_trace[ctask_trace_len++] = (long)ct->task.id;
  in_flight++;
  if (in_flight > max_in_flight)
    max_in_flight = in_flight;
  ct->value = W_HOLDING;
  ct->statuses[42] = 0;
}

/* Acquires, holds for a few yields, releases, finishes. A failed wait
 * records its status in statuses[50] and finishes without releasing.
 */
static void worker(ctask_t *ct, int status) {
  switch (ct->value) {
  case W_START:
    ct->rc = fdn_limiter_acquire(&lim, &ct->task, timeout_of(ct));
    if (ct->rc == 0) {
      ct->value = W_PARKED;
      return;
    }
    if (ct->rc != 1) {
      ct->statuses[50] = ct->rc;
      fdn_task_finish(&ct->task, FDN_TASK_FAILED);
      return;
    }
    got_permit(ct);
    break;
  case W_PARKED:
    if (status != 0) {
      ct->statuses[50] = status;
      fdn_task_finish(&ct->task, FDN_TASK_FAILED);
      return;
    }
    got_permit(ct);
    break;
  default:
    break;
  }
  if (ct->statuses[42]++ < ct->statuses[40]) {
    /* A cancelled holder cannot yield: it releases and stops. */
    if (fdn_task_yield(&ct->task) == 0)
      return;
    ct->statuses[51] = FDN_ECANCELED;
  }
  in_flight--;
  ct->statuses[52] = fdn_limiter_release(&lim);
  completed++;
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

static void reset_world(uint64_t limit) {
  in_flight = 0;
  max_in_flight = 0;
  completed = 0;
  ctask_trace_reset();
  fdn_limiter_init(&lim, limit);
}

TEST_IMPL(limiter_counts_permits_without_tasks) {
  reset_world(2);
  ASSERT_EQ(fdn_limiter_init(NULL, 1), FDN_EINVAL);
  ASSERT_EQ(fdn_limiter_init(&lim, FDN_LIMITER_MAX + 1), FDN_EINVAL);
  ASSERT_EQ(fdn_limiter_init(&lim, 2), 0);
  ASSERT_EQ(fdn_limiter_acquire(&lim, NULL, FDN_FOREVER), 1);
  ASSERT_EQ(fdn_limiter_try_acquire(&lim), 0);
  ASSERT_EQ(fdn_limiter_try_acquire(&lim), FDN_EAGAIN);
  ASSERT_EQ(fdn_limiter_acquire(&lim, NULL, FDN_FOREVER), FDN_EAGAIN);
  ASSERT_EQ(fdn_limiter_held(&lim), 2);
  ASSERT_EQ(fdn_limiter_available(&lim), 0);
  ASSERT_EQ(fdn_limiter_release(&lim), 0);
  ASSERT_EQ(fdn_limiter_release(&lim), 0);
  /* More releases than acquires: refused, nothing changes. */
  ASSERT_EQ(fdn_limiter_release(&lim), FDN_ESTATE);
  ASSERT_EQ(fdn_limiter_held(&lim), 0);
  ASSERT_EQ(fdn_limiter_available(&lim), 2);
  ASSERT_EQ(fdn_limiter_resize(&lim, FDN_LIMITER_MAX + 1), FDN_EINVAL);
  ASSERT_EQ(fdn_limiter_limit(&lim), 2);
  return 0;
}

TEST_IMPL(limiter_hands_permits_to_waiters_in_fifo_order) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t workers[6];
  int i;
  reset_world(1);
  for (i = 0; i < 6; i++) {
    ASSERT_EQ(ctask_spawn(engine, &workers[i], worker), 0);
    workers[i].statuses[40] = 3;
  }
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(completed, 6);
  ASSERT_EQ(max_in_flight, 1);
  ASSERT_EQ(ctask_trace_len, 6);
  for (i = 0; i < 6; i++) {
    ASSERT_EQ(ctask_trace[i], (long)workers[i].task.id);
    ASSERT_EQ(workers[i].statuses[52], 0);
  }
  ASSERT_EQ(workers[0].rc, 1); /* took the free permit */
  ASSERT_EQ(workers[1].rc, 0); /* parked */
  ASSERT_EQ(fdn_limiter_held(&lim), 0);
  ASSERT_EQ(fdn_limiter_waiting(&lim), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

/* A release hands the permit to the waiter, so a task that asks right
 * after the release (before the waiter runs) finds none free.
 */
static void release_then_barge(ctask_t *ct, int status) {
  (void)status;
  if (ct->runs == 1) {
    ct->rc = fdn_limiter_acquire(&lim, &ct->task, FDN_FOREVER);
    fdn_task_yield(&ct->task);
    return;
  }
  fdn_limiter_release(&lim);
  ct->statuses[10] = fdn_limiter_try_acquire(&lim);
  ct->statuses[11] = fdn_limiter_acquire(&lim, &ct->task, 0);
  ct->statuses[12] = (int)fdn_limiter_held(&lim);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(limiter_release_never_lets_a_newcomer_barge) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t holder, waiter;
  reset_world(1);
  ASSERT_EQ(ctask_spawn(engine, &holder, release_then_barge), 0);
  ASSERT_EQ(ctask_spawn(engine, &waiter, worker), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(holder.rc, 1);
  ASSERT_EQ(holder.statuses[10], FDN_EAGAIN);
  ASSERT_EQ(holder.statuses[11], FDN_ETIMEDOUT);
  ASSERT_EQ(holder.statuses[12], 1); /* the waiter's */
  ASSERT_EQ(waiter.rc, 0);
  ASSERT_EQ(completed, 1);
  ASSERT_EQ(fdn_limiter_held(&lim), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

/* Holds the permit until told, then cancels waiters[1] and releases. */
static void hold_then_cancel_middle(ctask_t *ct, int status) {
  ctask_t *waiters = ct->user;
  (void)status;
  if (ct->runs == 1) {
    ct->rc = fdn_limiter_acquire(&lim, &ct->task, FDN_FOREVER);
    fdn_task_yield(&ct->task);
    return;
  }
  ct->statuses[10] = (int)fdn_limiter_waiting(&lim);
  fdn_task_cancel(&waiters[1].task);
  ct->statuses[11] = (int)fdn_limiter_waiting(&lim);
  ct->statuses[12] = (int)fdn_limiter_held(&lim);
  fdn_limiter_release(&lim);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(limiter_cancelled_waiter_leaves_without_a_permit) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t holder, waiters[3];
  int i;
  reset_world(1);
  ASSERT_EQ(ctask_spawn(engine, &holder, hold_then_cancel_middle), 0);
  holder.user = waiters;
  for (i = 0; i < 3; i++)
    ASSERT_EQ(ctask_spawn(engine, &waiters[i], worker), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(holder.statuses[10], 3);
  ASSERT_EQ(holder.statuses[11], 2);
  ASSERT_EQ(holder.statuses[12], 1);
  ASSERT_EQ(waiters[1].statuses[50], FDN_ECANCELED);
  ASSERT_EQ(fdn_task_state(&waiters[1].task), FDN_TASK_FAILED);
  ASSERT_EQ(completed, 2);
  ASSERT_EQ(ctask_trace_len, 2);
  ASSERT_EQ(ctask_trace[0], (long)waiters[0].task.id);
  ASSERT_EQ(ctask_trace[1], (long)waiters[2].task.id);
  ASSERT_EQ(fdn_limiter_held(&lim), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

/* Releases (handing the permit to the waiter, now READY) and cancels the
 * waiter in the same turn, before it runs.
 */
static void release_then_cancel_waiter(ctask_t *ct, int status) {
  ctask_t *waiter = ct->user;
  (void)status;
  if (ct->runs == 1) {
    ct->rc = fdn_limiter_acquire(&lim, &ct->task, FDN_FOREVER);
    fdn_task_yield(&ct->task);
    return;
  }
  fdn_limiter_release(&lim);
  ct->statuses[10] = fdn_task_state(&waiter->task);
  ct->statuses[11] = fdn_task_cancel(&waiter->task);
  ct->statuses[12] = (int)fdn_limiter_held(&lim);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(limiter_permit_handed_before_a_cancel_is_kept_then_released) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t holder, waiter, late;
  reset_world(1);
  ASSERT_EQ(ctask_spawn(engine, &holder, release_then_cancel_waiter), 0);
  ASSERT_EQ(ctask_spawn(engine, &waiter, worker), 0);
  ASSERT_EQ(ctask_spawn(engine, &late, worker), 0);
  holder.user = &waiter;
  waiter.statuses[40] = 2; /* would hold across yields */
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(holder.statuses[10], FDN_TASK_READY);
  ASSERT_EQ(holder.statuses[11], 0);
  ASSERT_EQ(holder.statuses[12], 1); /* counted once, for the waiter */
  /* The waiter's acquire succeeded; its next suspension saw the cancel,
   * and it released the permit it owned.
   */
  ASSERT_EQ(waiter.statuses[1], 0);
  ASSERT_EQ(waiter.statuses[51], FDN_ECANCELED);
  ASSERT_EQ(waiter.statuses[52], 0);
  ASSERT_EQ(late.statuses[52], 0);
  ASSERT_EQ(completed, 2);
  ASSERT_EQ(fdn_limiter_held(&lim), 0);
  ASSERT_EQ(fdn_limiter_available(&lim), 1);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

/* Holds its permit until the virtual clock passes 1 s. */
static void hold_one_second(ctask_t *ct, int status) {
  (void)status;
  if (ct->runs == 1) {
    ct->rc = fdn_limiter_acquire(&lim, &ct->task, FDN_FOREVER);
    fdn_task_sleep(&ct->task, 1000000000ull);
    return;
  }
  ct->statuses[10] = fdn_limiter_release(&lim);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(limiter_timeout_fires_while_the_holder_keeps_it) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t holder, impatient, patient;
  reset_world(1);
  ASSERT_EQ(ctask_spawn(engine, &holder, hold_one_second), 0);
  ASSERT_EQ(ctask_spawn(engine, &impatient, worker), 0);
  ASSERT_EQ(ctask_spawn(engine, &patient, worker), 0);
  impatient.statuses[41] = 250;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(impatient.rc, 0);
  ASSERT_EQ(impatient.statuses[50], FDN_ETIMEDOUT);
  ASSERT_EQ(patient.statuses[50], 0);
  ASSERT_EQ(patient.statuses[52], 0);
  ASSERT_EQ(completed, 1);
  ASSERT_EQ(ctask_trace_len, 1);
  ASSERT_EQ(ctask_trace[0], (long)patient.task.id);
  ASSERT_EQ(fdn_limiter_held(&lim), 0);
  ASSERT_EQ(fdn_engine_now(engine), 1000000000ull);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

/* Holds one permit; grows the limit to 3 (two waiters get in), shrinks it
 * to 1 (a debt of 2), then releases its own permit.
 */
static void resize_around(ctask_t *ct, int status) {
  (void)status;
  if (ct->runs == 1) {
    ct->rc = fdn_limiter_acquire(&lim, &ct->task, FDN_FOREVER);
    fdn_task_yield(&ct->task);
    return;
  }
  if (ct->runs == 2) {
    ct->statuses[10] = (int)fdn_limiter_waiting(&lim);
    fdn_limiter_resize(&lim, 3);
    ct->statuses[11] = (int)fdn_limiter_waiting(&lim);
    ct->statuses[12] = (int)fdn_limiter_held(&lim);
    fdn_limiter_resize(&lim, 1);
    ct->statuses[13] = (int)fdn_limiter_available(&lim);
    fdn_limiter_release(&lim);
    ct->statuses[14] = (int)fdn_limiter_waiting(&lim); /* debt: none woken */
    fdn_task_finish(&ct->task, FDN_TASK_DONE);
  }
}

TEST_IMPL(limiter_resize_wakes_on_growth_and_pays_debt_on_shrink) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t resizer, workers[4];
  int i;
  reset_world(1);
  ASSERT_EQ(ctask_spawn(engine, &resizer, resize_around), 0);
  for (i = 0; i < 4; i++) {
    ASSERT_EQ(ctask_spawn(engine, &workers[i], worker), 0);
    workers[i].statuses[40] = 2;
  }
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(resizer.statuses[10], 4);
  ASSERT_EQ(resizer.statuses[11], 2);
  ASSERT_EQ(resizer.statuses[12], 3);
  ASSERT_EQ(resizer.statuses[13], 0);
  ASSERT_EQ(resizer.statuses[14], 2);
  /* Two ran together before the shrink; after it, one at a time. */
  ASSERT_EQ(max_in_flight, 2);
  ASSERT_EQ(completed, 4);
  for (i = 0; i < 4; i++)
    ASSERT_EQ(ctask_trace[i], (long)workers[i].task.id);
  ASSERT_EQ(fdn_limiter_held(&lim), 0);
  ASSERT_EQ(fdn_limiter_limit(&lim), 1);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static void hold_then_close(ctask_t *ct, int status) {
  (void)status;
  if (ct->runs == 1) {
    ct->rc = fdn_limiter_acquire(&lim, &ct->task, FDN_FOREVER);
    fdn_task_yield(&ct->task);
    return;
  }
  fdn_limiter_close(&lim);
  fdn_limiter_close(&lim);
  ct->statuses[10] = fdn_limiter_acquire(&lim, &ct->task, FDN_FOREVER);
  ct->statuses[11] = fdn_limiter_try_acquire(&lim);
  ct->statuses[12] = fdn_limiter_release(&lim);
  ct->statuses[13] = (int)fdn_limiter_held(&lim);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(limiter_close_wakes_every_waiter) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t holder, waiters[3];
  int i;
  reset_world(1);
  ASSERT_EQ(ctask_spawn(engine, &holder, hold_then_close), 0);
  for (i = 0; i < 3; i++)
    ASSERT_EQ(ctask_spawn(engine, &waiters[i], worker), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  for (i = 0; i < 3; i++)
    ASSERT_EQ(waiters[i].statuses[50], FDN_ECLOSED);
  ASSERT_EQ(holder.statuses[10], FDN_ECLOSED);
  ASSERT_EQ(holder.statuses[11], FDN_ECLOSED);
  ASSERT_EQ(holder.statuses[12], 0);
  ASSERT_EQ(holder.statuses[13], 0);
  ASSERT(fdn_limiter_closed(&lim));
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static void cancel_self_then_acquire(ctask_t *ct, int status) {
  (void)status;
  fdn_task_cancel(&ct->task);
  ct->rc = fdn_limiter_acquire(&lim, &ct->task, FDN_FOREVER);
  ct->statuses[10] = (int)fdn_limiter_held(&lim);
  fdn_task_finish(&ct->task, FDN_TASK_CANCELLED);
}

TEST_IMPL(limiter_refuses_a_cancelled_task_even_with_permits_free) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t a;
  reset_world(4);
  ASSERT_EQ(ctask_spawn(engine, &a, cancel_self_then_acquire), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(a.rc, FDN_ECANCELED);
  ASSERT_EQ(a.statuses[10], 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

TEST_IMPL(limiter_limit_holds_for_hundreds_of_tasks) {
  enum { N = 300 };
  static ctask_t workers[N];
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  int i;
  reset_world(7);
  for (i = 0; i < N; i++) {
    ASSERT_EQ(ctask_spawn(engine, &workers[i], worker), 0);
    workers[i].statuses[40] = 1 + i % 5;
  }
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(completed, N);
  ASSERT_EQ(max_in_flight, 7);
  for (i = 0; i < N; i++)
    ASSERT_EQ(workers[i].statuses[52], 0);
  ASSERT_EQ(fdn_limiter_held(&lim), 0);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}
