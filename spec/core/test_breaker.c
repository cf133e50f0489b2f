/* Circuit breaker state machine: thresholds, the rate window, recovery,
 * half-open probe limits, stale outcomes, forced states.
 */
#include <string.h>

#include "fdn/fdn.h"
#include "test.h"

#define S 1000000000ull

static int changes[32][2];
static int nchanges;

static void on_change(fdn_breaker_t *b, fdn_breaker_state_t from,
                      fdn_breaker_state_t to) {
  (void)b;
  if (nchanges < 32) {
    changes[nchanges][0] = from;
    changes[nchanges][1] = to;
  }
  nchanges++;
}

static void new_breaker(fdn_breaker_t *b, uint32_t threshold,
                        uint64_t recovery) {
  fdn_breaker_options_t o;
  fdn_breaker_options_init(&o);
  o.failure_threshold = threshold;
  o.recovery_timeout_ns = recovery;
  memset(b, 0, sizeof(*b));
  b->on_change = on_change;
  nchanges = 0;
  fdn_breaker_init(b, &o, 0);
}

/* Makes one call at `now` with the given outcome; returns acquire's rc. */
static int call(fdn_breaker_t *b, uint64_t now, fdn_breaker_outcome_t out) {
  uint32_t ticket;
  int rc = fdn_breaker_acquire(b, now, &ticket);
  if (rc == 0)
    fdn_breaker_record(b, now, ticket, out);
  return rc;
}

TEST_IMPL(breaker_options_are_checked) {
  fdn_breaker_options_t o;
  fdn_breaker_t b;
  const char *field = NULL;
  fdn_breaker_options_init(&o);
  ASSERT_EQ(o.failure_threshold, 5);
  ASSERT_EQ(o.recovery_timeout_ns, 30 * S);
  ASSERT_EQ(o.half_open_max, 1);
  ASSERT_EQ(fdn_breaker_options_check(&o, &field), 0);
  o.failure_rate = 1.5;
  ASSERT_EQ(fdn_breaker_options_check(&o, &field), FDN_EINVAL);
  ASSERT(strcmp(field, "failure_rate") == 0);
  o.failure_rate = 0.0 / 0.0;
  ASSERT_EQ(fdn_breaker_init(&b, &o, 0), FDN_EINVAL);
  o.failure_rate = 0.5;
  o.half_open_max = 0;
  ASSERT_EQ(fdn_breaker_options_check(&o, &field), FDN_EINVAL);
  ASSERT(strcmp(field, "half_open_max") == 0);
  o.half_open_max = 1;
  o.window_ns = 0;
  ASSERT_EQ(fdn_breaker_options_check(&o, &field), FDN_EINVAL);
  ASSERT(strcmp(field, "window") == 0);
  return 0;
}

TEST_IMPL(breaker_opens_after_consecutive_failures_only) {
  fdn_breaker_t b;
  new_breaker(&b, 3, 10 * S);
  ASSERT_EQ(call(&b, 0, FDN_BREAKER_FAILURE), 0);
  ASSERT_EQ(call(&b, 0, FDN_BREAKER_FAILURE), 0);
  ASSERT_EQ(call(&b, 0, FDN_BREAKER_SUCCESS), 0); /* resets the run */
  ASSERT_EQ(call(&b, 0, FDN_BREAKER_FAILURE), 0);
  ASSERT_EQ(call(&b, 0, FDN_BREAKER_IGNORED), 0); /* neither */
  ASSERT_EQ(call(&b, 0, FDN_BREAKER_FAILURE), 0);
  ASSERT_EQ(fdn_breaker_state(&b, 0), FDN_BREAKER_CLOSED);
  ASSERT_EQ(fdn_breaker_counts(&b)->consecutive_failures, 2);
  ASSERT_EQ(call(&b, 1, FDN_BREAKER_FAILURE), 0);
  ASSERT_EQ(fdn_breaker_state(&b, 1), FDN_BREAKER_OPEN);
  ASSERT_EQ(nchanges, 1);
  ASSERT_EQ(changes[0][0], FDN_BREAKER_CLOSED);
  ASSERT_EQ(changes[0][1], FDN_BREAKER_OPEN);
  ASSERT_EQ(call(&b, 2, FDN_BREAKER_SUCCESS), FDN_EBUSY);
  ASSERT_EQ(fdn_breaker_counts(&b)->rejected, 1);
  ASSERT_EQ(fdn_breaker_counts(&b)->calls, 7);
  ASSERT_EQ(fdn_breaker_counts(&b)->failures, 5);
  ASSERT_EQ(fdn_breaker_counts(&b)->successes, 1);
  ASSERT_EQ(fdn_breaker_counts(&b)->ignored, 1);
  ASSERT_EQ(fdn_breaker_counts(&b)->opened, 1);
  return 0;
}

TEST_IMPL(breaker_turns_half_open_after_recovery_and_closes_on_a_probe) {
  fdn_breaker_t b;
  uint64_t left = 0;
  new_breaker(&b, 1, 10 * S);
  ASSERT_EQ(call(&b, 5 * S, FDN_BREAKER_FAILURE), 0);
  ASSERT_EQ(fdn_breaker_remaining(&b, 8 * S, &left), 0);
  ASSERT_EQ(left, 7 * S);
  ASSERT_EQ(fdn_breaker_state(&b, 15 * S - 1), FDN_BREAKER_OPEN);
  /* Read lazily: the state at the recovery time is half-open. */
  ASSERT_EQ(fdn_breaker_state(&b, 15 * S), FDN_BREAKER_HALF_OPEN);
  ASSERT_EQ(fdn_breaker_remaining(&b, 15 * S, &left), FDN_ESTATE);
  ASSERT_EQ(call(&b, 15 * S, FDN_BREAKER_SUCCESS), 0);
  ASSERT_EQ(fdn_breaker_state(&b, 15 * S), FDN_BREAKER_CLOSED);
  ASSERT_EQ(nchanges, 3);
  ASSERT_EQ(changes[1][1], FDN_BREAKER_HALF_OPEN);
  ASSERT_EQ(changes[2][0], FDN_BREAKER_HALF_OPEN);
  ASSERT_EQ(changes[2][1], FDN_BREAKER_CLOSED);
  return 0;
}

TEST_IMPL(breaker_half_open_limits_probes_and_reopens_on_failure) {
  fdn_breaker_t b;
  fdn_breaker_options_t o;
  uint32_t t1, t2, t3;
  fdn_breaker_options_init(&o);
  o.failure_threshold = 1;
  o.recovery_timeout_ns = S;
  o.half_open_max = 2;
  memset(&b, 0, sizeof(b));
  ASSERT_EQ(fdn_breaker_init(&b, &o, 0), 0);
  ASSERT_EQ(call(&b, 0, FDN_BREAKER_FAILURE), 0);
  ASSERT_EQ(fdn_breaker_acquire(&b, S, &t1), 0);
  ASSERT_EQ(fdn_breaker_acquire(&b, S, &t2), 0);
  ASSERT_EQ(fdn_breaker_acquire(&b, S, &t3), FDN_EBUSY);
  ASSERT_EQ(fdn_breaker_counts(&b)->probes, 2);
  /* An ignored probe frees its place without deciding anything. */
  fdn_breaker_record(&b, S, t1, FDN_BREAKER_IGNORED);
  ASSERT_EQ(fdn_breaker_state(&b, S), FDN_BREAKER_HALF_OPEN);
  ASSERT_EQ(fdn_breaker_acquire(&b, S, &t3), 0);
  fdn_breaker_record(&b, 2 * S, t2, FDN_BREAKER_FAILURE);
  ASSERT_EQ(fdn_breaker_state(&b, 2 * S), FDN_BREAKER_OPEN);
  /* The other probe's late success is history: it stays open. */
  fdn_breaker_record(&b, 2 * S, t3, FDN_BREAKER_SUCCESS);
  ASSERT_EQ(fdn_breaker_state(&b, 2 * S), FDN_BREAKER_OPEN);
  ASSERT_EQ(fdn_breaker_counts(&b)->opened, 2);
  ASSERT_EQ(fdn_breaker_state(&b, 3 * S), FDN_BREAKER_HALF_OPEN);
  return 0;
}

TEST_IMPL(breaker_success_threshold_needs_probe_successes_in_a_row) {
  fdn_breaker_t b;
  fdn_breaker_options_t o;
  fdn_breaker_options_init(&o);
  o.failure_threshold = 1;
  o.recovery_timeout_ns = S;
  o.success_threshold = 3;
  memset(&b, 0, sizeof(b));
  ASSERT_EQ(fdn_breaker_init(&b, &o, 0), 0);
  ASSERT_EQ(call(&b, 0, FDN_BREAKER_FAILURE), 0);
  ASSERT_EQ(call(&b, S, FDN_BREAKER_SUCCESS), 0);
  ASSERT_EQ(call(&b, S, FDN_BREAKER_SUCCESS), 0);
  ASSERT_EQ(fdn_breaker_state(&b, S), FDN_BREAKER_HALF_OPEN);
  ASSERT_EQ(call(&b, S, FDN_BREAKER_SUCCESS), 0);
  ASSERT_EQ(fdn_breaker_state(&b, S), FDN_BREAKER_CLOSED);
  return 0;
}

TEST_IMPL(breaker_opens_on_a_failure_rate_over_the_window) {
  fdn_breaker_t b;
  fdn_breaker_options_t o;
  int i;
  fdn_breaker_options_init(&o);
  o.failure_threshold = 0; /* rate only */
  o.failure_rate = 0.5;
  o.minimum_calls = 10;
  o.window_ns = 10 * S;
  memset(&b, 0, sizeof(b));
  ASSERT_EQ(fdn_breaker_init(&b, &o, 0), 0);
  /* 4 failures among 8 calls: not enough calls yet. */
  for (i = 0; i < 8; i++)
    call(&b, (uint64_t)i * S / 10,
         i % 2 ? FDN_BREAKER_FAILURE : FDN_BREAKER_SUCCESS);
  ASSERT_EQ(fdn_breaker_state(&b, S), FDN_BREAKER_CLOSED);
  /* Much later, the old calls have left the window: 1 of 9 failed. */
  for (i = 0; i < 8; i++)
    call(&b, 30 * S, FDN_BREAKER_SUCCESS);
  call(&b, 30 * S, FDN_BREAKER_FAILURE);
  ASSERT_EQ(fdn_breaker_state(&b, 30 * S), FDN_BREAKER_CLOSED);
  /* Six more failures over 3 s: 7 of 15, under 50%; one more is 8 of
   * 16: open.
   */
  for (i = 0; i < 6; i++)
    call(&b, 30 * S + (uint64_t)i * S / 2, FDN_BREAKER_FAILURE);
  ASSERT_EQ(fdn_breaker_state(&b, 33 * S), FDN_BREAKER_CLOSED);
  call(&b, 33 * S, FDN_BREAKER_FAILURE);
  ASSERT_EQ(fdn_breaker_state(&b, 33 * S), FDN_BREAKER_OPEN);
  return 0;
}

TEST_IMPL(breaker_window_slides_bucket_by_bucket) {
  fdn_breaker_t b;
  fdn_breaker_options_t o;
  int i;
  fdn_breaker_options_init(&o);
  o.failure_threshold = 0;
  o.failure_rate = 0.6;
  o.minimum_calls = 5;
  o.window_ns = 10 * S;
  memset(&b, 0, sizeof(b));
  ASSERT_EQ(fdn_breaker_init(&b, &o, 0), 0);
  for (i = 0; i < 5; i++)
    call(&b, 0, FDN_BREAKER_SUCCESS); /* bucket at t = 0 */
  for (i = 0; i < 5; i++)
    call(&b, 5 * S, FDN_BREAKER_FAILURE); /* 5 of 10 */
  ASSERT_EQ(fdn_breaker_state(&b, 5 * S), FDN_BREAKER_CLOSED);
  /* At 10 s the t = 0 bucket has slid out: 1 more failure is 6 of 6. */
  call(&b, 10 * S, FDN_BREAKER_FAILURE);
  ASSERT_EQ(fdn_breaker_state(&b, 10 * S), FDN_BREAKER_OPEN);
  return 0;
}

TEST_IMPL(breaker_force_and_backwards_clock) {
  fdn_breaker_t b;
  new_breaker(&b, 2, 10 * S);
  ASSERT_EQ(fdn_breaker_force(&b, 100 * S, FDN_BREAKER_OPEN), 0);
  ASSERT_EQ(fdn_breaker_state(&b, 105 * S), FDN_BREAKER_OPEN);
  /* A new engine's clock starts over at 0: the open period restarts. */
  ASSERT_EQ(fdn_breaker_state(&b, 1 * S), FDN_BREAKER_OPEN);
  ASSERT_EQ(fdn_breaker_state(&b, 11 * S), FDN_BREAKER_HALF_OPEN);
  ASSERT_EQ(fdn_breaker_force(&b, 11 * S, FDN_BREAKER_CLOSED), 0);
  ASSERT_EQ(fdn_breaker_state(&b, 11 * S), FDN_BREAKER_CLOSED);
  ASSERT_EQ(fdn_breaker_force(&b, 11 * S, FDN_BREAKER_HALF_OPEN), FDN_EINVAL);
  ASSERT_EQ(call(&b, 12 * S, FDN_BREAKER_FAILURE), 0);
  ASSERT_EQ(call(&b, 2 * S, FDN_BREAKER_FAILURE), 0);
  ASSERT_EQ(fdn_breaker_state(&b, 2 * S), FDN_BREAKER_OPEN);
  ASSERT(strcmp(fdn_breaker_state_name(FDN_BREAKER_HALF_OPEN), "half_open") ==
         0);
  return 0;
}
