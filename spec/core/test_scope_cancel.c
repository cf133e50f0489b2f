/* fdn_scope_cancel: how a structured scope stops the body it runs. */
#include "ctask.h"
#include "test.h"

static fdn_scope_t scope, shield;

static void park_in_scope(ctask_t *ct, int status) {
  if (ct->runs == 1) {
    fdn_scope_enter(&ct->task, &scope, FDN_FOREVER, 0);
    ct->rc = fdn_task_park(&ct->task, FDN_FOREVER);
    return;
  }
  ct->value = status;
  ct->statuses[10] = fdn_task_cancel_pending(&ct->task);
  ct->statuses[11] = fdn_task_yield(&ct->task);
  ct->statuses[12] = fdn_scope_exit(&scope);
  ct->statuses[13] = fdn_task_cancel_pending(&ct->task);
  ct->statuses[14] = fdn_scope_cancel(&scope);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

static void cancel_scope(ctask_t *ct, int status) {
  (void)status;
  ct->rc = fdn_scope_cancel(&scope);
  ct->statuses[10] = fdn_task_state(&((ctask_t *)ct->user)->task);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(scope_cancel_wakes_the_task_inside_and_ends_with_the_scope) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ctask_t body, canceller;
  ASSERT_EQ(ctask_spawn(engine, &body, park_in_scope), 0);
  ASSERT_EQ(ctask_spawn(engine, &canceller, cancel_scope), 0);
  canceller.user = &body;
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(body.rc, 0);
  ASSERT_EQ(canceller.rc, 0);
  ASSERT_EQ(canceller.statuses[10], FDN_TASK_READY);
  ASSERT_EQ(body.value, FDN_ECANCELED);
  ASSERT_EQ(body.statuses[10], FDN_CANCEL_SCOPE);
  ASSERT_EQ(body.statuses[11], FDN_ECANCELED);
  ASSERT_EQ(body.statuses[12], 1); /* reported expired */
  ASSERT_EQ(body.statuses[13], FDN_CANCEL_NONE);
  ASSERT_EQ(body.statuses[14], FDN_ESTATE); /* no longer entered */
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static void shielded_inside_scope(ctask_t *ct, int status) {
  if (ct->runs == 1) {
    fdn_scope_enter(&ct->task, &scope, FDN_FOREVER, 0);
    fdn_scope_enter(&ct->task, &shield, FDN_FOREVER, 1);
    fdn_scope_cancel(&scope);
    ct->statuses[10] = fdn_task_cancel_pending(&ct->task);
    ct->rc = fdn_task_sleep(&ct->task, 1000000ull);
    return;
  }
  ct->value = status;
  fdn_scope_exit(&shield);
  ct->statuses[11] = fdn_task_cancel_pending(&ct->task);
  ct->statuses[12] = fdn_scope_exit(&scope);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(scope_cancel_is_hidden_by_an_inner_shield) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t a;
  ASSERT_EQ(ctask_spawn(engine, &a, shielded_inside_scope), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(a.statuses[10], FDN_CANCEL_NONE);
  ASSERT_EQ(a.rc, 0);
  ASSERT_EQ(a.value, 0); /* the sleep ended normally */
  ASSERT_EQ(a.statuses[11], FDN_CANCEL_SCOPE);
  ASSERT_EQ(a.statuses[12], 1);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}
