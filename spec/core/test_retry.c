/* Retry policy: the delay sequences of each backoff, jitter bounds, the
 * cap, the verdicts (attempts, deadline, enclosing limit, hints), and a C
 * task retrying on the virtual clock with no Lua at all.
 */
#include <string.h>

#include "ctask.h"
#include "test.h"

#define MS 1000000ull
#define S 1000000000ull

static fdn_retry_policy_t policy(fdn_backoff_t backoff, double factor,
                                 uint64_t delay, uint64_t max_delay) {
  fdn_retry_policy_t p;
  fdn_retry_policy_init(&p);
  p.backoff = backoff;
  p.factor = factor;
  p.delay_ns = delay;
  p.max_delay_ns = max_delay;
  p.max_attempts = 100;
  return p;
}

static int check_sequence(const fdn_retry_policy_t *p, const uint64_t *want,
                          int n) {
  int k;
  for (k = 1; k <= n; k++) {
    uint64_t got = fdn_retry_delay(p, (uint32_t)k, 0, NULL);
    if (got != want[k - 1]) {
      fprintf(stderr, "wait %d: got %llu, want %llu\n", k,
              (unsigned long long)got, (unsigned long long)want[k - 1]);
      return 1;
    }
  }
  return 0;
}

TEST_IMPL(retry_defaults_and_check) {
  fdn_retry_policy_t p;
  const char *field = "unset";
  fdn_retry_policy_init(&p);
  ASSERT_EQ(p.max_attempts, 3);
  ASSERT_EQ(p.delay_ns, S);
  ASSERT_EQ(p.backoff, FDN_BACKOFF_EXPONENTIAL);
  ASSERT(p.factor == 2.0);
  ASSERT_EQ(p.jitter, FDN_JITTER_NONE);
  ASSERT(p.max_delay_ns == FDN_FOREVER && p.deadline_ns == FDN_FOREVER);
  ASSERT_EQ(fdn_retry_policy_check(&p, &field), 0);
  ASSERT(field == NULL);
  p.max_attempts = 0;
  ASSERT_EQ(fdn_retry_policy_check(&p, &field), FDN_EINVAL);
  ASSERT(strcmp(field, "max_attempts") == 0);
  p.max_attempts = 1;
  p.factor = 0.5;
  ASSERT_EQ(fdn_retry_policy_check(&p, &field), FDN_EINVAL);
  ASSERT(strcmp(field, "factor") == 0);
  p.factor = 0.0 / 0.0;
  ASSERT_EQ(fdn_retry_policy_check(&p, NULL), FDN_EINVAL);
  p.backoff = FDN_BACKOFF_LINEAR;
  ASSERT_EQ(fdn_retry_policy_check(&p, &field), FDN_EINVAL);
  p.factor = 0.0;
  ASSERT_EQ(fdn_retry_policy_check(&p, NULL), 0);
  p.factor = -1.0;
  ASSERT_EQ(fdn_retry_policy_check(&p, NULL), FDN_EINVAL);
  p.backoff = FDN_BACKOFF_FIXED; /* factor unused */
  ASSERT_EQ(fdn_retry_policy_check(&p, NULL), 0);
  p.backoff = (fdn_backoff_t)9;
  ASSERT_EQ(fdn_retry_policy_check(&p, &field), FDN_EINVAL);
  ASSERT(strcmp(field, "backoff") == 0);
  p.backoff = FDN_BACKOFF_FIXED;
  p.jitter = (fdn_jitter_t)7;
  ASSERT_EQ(fdn_retry_policy_check(&p, &field), FDN_EINVAL);
  ASSERT(strcmp(field, "jitter") == 0);
  return 0;
}

TEST_IMPL(retry_names_parse_both_ways) {
  fdn_backoff_t b;
  fdn_jitter_t j;
  ASSERT_EQ(fdn_backoff_parse("fibonacci", &b), 0);
  ASSERT_EQ(b, FDN_BACKOFF_FIBONACCI);
  ASSERT(strcmp(fdn_backoff_name(b), "fibonacci") == 0);
  ASSERT_EQ(fdn_jitter_parse("decorrelated", &j), 0);
  ASSERT_EQ(j, FDN_JITTER_DECORRELATED);
  ASSERT(strcmp(fdn_jitter_name(FDN_JITTER_EQUAL), "equal") == 0);
  ASSERT_EQ(fdn_backoff_parse("quadratic", &b), FDN_EINVAL);
  ASSERT_EQ(fdn_jitter_parse(NULL, &j), FDN_EINVAL);
  ASSERT(strcmp(fdn_jitter_name((fdn_jitter_t)42), "unknown") == 0);
  return 0;
}

TEST_IMPL(retry_fixed_linear_exponential_fibonacci_sequences) {
  fdn_retry_policy_t p;
  static const uint64_t fixed[] = {100 * MS, 100 * MS, 100 * MS, 100 * MS};
  static const uint64_t linear[] = {100 * MS, 150 * MS, 200 * MS, 250 * MS,
                                    300 * MS};
  static const uint64_t expo[] = {100 * MS, 200 * MS,  400 * MS,
                                  800 * MS, 1600 * MS, 3200 * MS};
  static const uint64_t expo3_capped[] = {100 * MS, 300 * MS, 900 * MS,
                                          1000 * MS, 1000 * MS};
  static const uint64_t fib[] = {100 * MS, 100 * MS, 200 * MS,  300 * MS,
                                 500 * MS, 800 * MS, 1300 * MS, 2100 * MS};
  p = policy(FDN_BACKOFF_FIXED, 2.0, 100 * MS, FDN_FOREVER);
  ASSERT_EQ(check_sequence(&p, fixed, 4), 0);
  p = policy(FDN_BACKOFF_LINEAR, 0.5, 100 * MS, FDN_FOREVER);
  ASSERT_EQ(check_sequence(&p, linear, 5), 0);
  p = policy(FDN_BACKOFF_EXPONENTIAL, 2.0, 100 * MS, FDN_FOREVER);
  ASSERT_EQ(check_sequence(&p, expo, 6), 0);
  p = policy(FDN_BACKOFF_EXPONENTIAL, 3.0, 100 * MS, S);
  ASSERT_EQ(check_sequence(&p, expo3_capped, 5), 0);
  p = policy(FDN_BACKOFF_FIBONACCI, 0.0, 100 * MS, FDN_FOREVER);
  ASSERT_EQ(check_sequence(&p, fib, 8), 0);
  return 0;
}

TEST_IMPL(retry_huge_attempt_numbers_saturate_at_the_cap) {
  fdn_retry_policy_t p = policy(FDN_BACKOFF_EXPONENTIAL, 2.0, S, 60 * S);
  ASSERT_EQ(fdn_retry_delay(&p, 1000000, 0, NULL), 60 * S);
  ASSERT_EQ(fdn_retry_delay(&p, UINT32_MAX, 0, NULL), 60 * S);
  p.max_delay_ns = FDN_FOREVER;
  ASSERT(fdn_retry_delay(&p, 4000, 0, NULL) == FDN_FOREVER);
  p = policy(FDN_BACKOFF_FIBONACCI, 0.0, S, 3600 * S);
  ASSERT_EQ(fdn_retry_delay(&p, UINT32_MAX, 0, NULL), 3600 * S);
  p = policy(FDN_BACKOFF_EXPONENTIAL, 1.0, 5 * MS, FDN_FOREVER);
  ASSERT_EQ(fdn_retry_delay(&p, UINT32_MAX, 0, NULL), 5 * MS);
  p = policy(FDN_BACKOFF_LINEAR, 1.0, 0, FDN_FOREVER);
  ASSERT_EQ(fdn_retry_delay(&p, 77, 0, NULL), 0);
  return 0;
}

TEST_IMPL(retry_full_and_equal_jitter_stay_in_bounds_and_spread) {
  fdn_retry_policy_t p = policy(FDN_BACKOFF_EXPONENTIAL, 2.0, 100 * MS, S);
  fdn_rng_t rng;
  int k, i;
  fdn_rng_seed(&rng, 1234);
  for (k = 1; k <= 8; k++) {
    uint64_t d = fdn_retry_delay(&p, (uint32_t)k, 0, NULL);
    uint64_t lo_full = UINT64_MAX, hi_full = 0, lo_eq = UINT64_MAX, hi_eq = 0;
    for (i = 0; i < 2000; i++) {
      uint64_t w;
      p.jitter = FDN_JITTER_FULL;
      w = fdn_retry_delay(&p, (uint32_t)k, 0, &rng);
      ASSERT(w <= d);
      lo_full = w < lo_full ? w : lo_full;
      hi_full = w > hi_full ? w : hi_full;
      p.jitter = FDN_JITTER_EQUAL;
      w = fdn_retry_delay(&p, (uint32_t)k, 0, &rng);
      ASSERT(w >= d / 2 && w <= d);
      lo_eq = w < lo_eq ? w : lo_eq;
      hi_eq = w > hi_eq ? w : hi_eq;
      p.jitter = FDN_JITTER_NONE;
    }
    /* Spread over (nearly) the whole range, not stuck at one end. */
    ASSERT(lo_full < d / 50 && hi_full > d - d / 50);
    ASSERT(lo_eq < d / 2 + d / 50 && hi_eq > d - d / 50);
  }
  return 0;
}

TEST_IMPL(retry_decorrelated_jitter_follows_the_previous_wait) {
  fdn_retry_policy_t p = policy(FDN_BACKOFF_EXPONENTIAL, 2.0, 100 * MS, S);
  fdn_rng_t rng;
  uint64_t prev = p.delay_ns;
  int k, reached_cap = 0;
  p.jitter = FDN_JITTER_DECORRELATED;
  fdn_rng_seed(&rng, 99);
  for (k = 1; k <= 200; k++) {
    uint64_t w = fdn_retry_delay(&p, (uint32_t)k, prev, &rng);
    uint64_t hi = 3 * prev < S ? 3 * prev : S;
    ASSERT(w >= 100 * MS);
    ASSERT(w <= hi);
    reached_cap += w == S;
    prev = w;
  }
  ASSERT(reached_cap > 0);
  /* A base delay above the cap still never exceeds the cap. */
  p.delay_ns = 5 * S;
  ASSERT_EQ(fdn_retry_delay(&p, 1, 5 * S, &rng), S);
  return 0;
}

TEST_IMPL(retry_same_seed_gives_the_same_jittered_sequence) {
  fdn_retry_policy_t p = policy(FDN_BACKOFF_EXPONENTIAL, 2.0, 10 * MS, S);
  fdn_rng_t a, b;
  uint64_t wa, wb;
  int k;
  p.jitter = FDN_JITTER_FULL;
  fdn_rng_seed(&a, 7);
  fdn_rng_seed(&b, 7);
  for (k = 1; k <= 20; k++) {
    wa = fdn_retry_delay(&p, (uint32_t)k, 0, &a);
    wb = fdn_retry_delay(&p, (uint32_t)k, 0, &b);
    ASSERT(wa == wb);
  }
  return 0;
}

TEST_IMPL(retry_next_counts_attempts_and_stops) {
  fdn_retry_policy_t p =
      policy(FDN_BACKOFF_EXPONENTIAL, 2.0, 100 * MS, FDN_FOREVER);
  fdn_retry_t r;
  uint64_t wait = 0;
  p.max_attempts = 3;
  fdn_retry_start(&r, &p, 0);
  ASSERT_EQ(r.attempts, 1);
  ASSERT_EQ(fdn_retry_next(&r, NULL, 0, FDN_FOREVER, FDN_RETRY_NO_HINT, &wait),
            FDN_RETRY_WAIT);
  ASSERT_EQ(wait, 100 * MS);
  ASSERT_EQ(r.attempts, 2);
  ASSERT_EQ(fdn_retry_next(&r, NULL, 0, FDN_FOREVER, FDN_RETRY_NO_HINT, &wait),
            FDN_RETRY_WAIT);
  ASSERT_EQ(wait, 200 * MS);
  ASSERT_EQ(fdn_retry_next(&r, NULL, 0, FDN_FOREVER, FDN_RETRY_NO_HINT, &wait),
            FDN_RETRY_EXHAUSTED);
  ASSERT_EQ(r.attempts, 3);
  /* One attempt in all: never a retry. */
  p.max_attempts = 1;
  fdn_retry_start(&r, &p, 0);
  ASSERT_EQ(fdn_retry_next(&r, NULL, 0, FDN_FOREVER, FDN_RETRY_NO_HINT, &wait),
            FDN_RETRY_EXHAUSTED);
  /* Unlimited attempts go on. */
  p.max_attempts = FDN_RETRY_UNLIMITED;
  p.max_delay_ns = S;
  fdn_retry_start(&r, &p, 0);
  r.attempts = UINT32_MAX - 1;
  ASSERT_EQ(fdn_retry_next(&r, NULL, 0, FDN_FOREVER, FDN_RETRY_NO_HINT, &wait),
            FDN_RETRY_WAIT);
  ASSERT_EQ(fdn_retry_next(&r, NULL, 0, FDN_FOREVER, FDN_RETRY_NO_HINT, &wait),
            FDN_RETRY_WAIT);
  ASSERT_EQ(wait, S);
  return 0;
}

TEST_IMPL(retry_next_honours_hints_within_the_cap) {
  fdn_retry_policy_t p = policy(FDN_BACKOFF_EXPONENTIAL, 2.0, 100 * MS, 5 * S);
  fdn_retry_t r;
  uint64_t wait = 0;
  fdn_retry_start(&r, &p, 0);
  ASSERT_EQ(fdn_retry_next(&r, NULL, 0, FDN_FOREVER, 2 * S, &wait),
            FDN_RETRY_WAIT);
  ASSERT_EQ(wait, 2 * S);
  ASSERT_EQ(fdn_retry_next(&r, NULL, 0, FDN_FOREVER, 60 * S, &wait),
            FDN_RETRY_WAIT);
  ASSERT_EQ(wait, 5 * S);
  ASSERT_EQ(fdn_retry_next(&r, NULL, 0, FDN_FOREVER, 0, &wait), FDN_RETRY_WAIT);
  ASSERT_EQ(wait, 0);
  /* The sequence goes on from the attempt number, not the hints. */
  ASSERT_EQ(fdn_retry_next(&r, NULL, 0, FDN_FOREVER, FDN_RETRY_NO_HINT, &wait),
            FDN_RETRY_WAIT);
  ASSERT_EQ(wait, 800 * MS);
  return 0;
}

TEST_IMPL(retry_next_never_sleeps_past_a_deadline) {
  fdn_retry_policy_t p = policy(FDN_BACKOFF_FIXED, 0.0, S, FDN_FOREVER);
  fdn_retry_t r;
  uint64_t wait = 0;
  /* The policy's own budget: 2.5 s from the first attempt at t = 10 s. */
  p.deadline_ns = 2500 * MS;
  fdn_retry_start(&r, &p, 10 * S);
  ASSERT_EQ(
      fdn_retry_next(&r, NULL, 10 * S, FDN_FOREVER, FDN_RETRY_NO_HINT, &wait),
      FDN_RETRY_WAIT);
  ASSERT_EQ(
      fdn_retry_next(&r, NULL, 11 * S, FDN_FOREVER, FDN_RETRY_NO_HINT, &wait),
      FDN_RETRY_WAIT); /* ends at 12 s, within 12.5 s */
  ASSERT_EQ(
      fdn_retry_next(&r, NULL, 12 * S, FDN_FOREVER, FDN_RETRY_NO_HINT, &wait),
      FDN_RETRY_DEADLINE);
  ASSERT_EQ(r.attempts, 3);
  /* An enclosing deadline (a limit) at 13 s: a wait ending there is not
   * started, since the call would be cancelled at that very moment.
   */
  p.deadline_ns = FDN_FOREVER;
  fdn_retry_start(&r, &p, 10 * S);
  ASSERT_EQ(fdn_retry_next(&r, NULL, 11 * S, 13 * S, FDN_RETRY_NO_HINT, &wait),
            FDN_RETRY_WAIT);
  ASSERT_EQ(fdn_retry_next(&r, NULL, 12 * S, 13 * S, FDN_RETRY_NO_HINT, &wait),
            FDN_RETRY_LIMIT);
  ASSERT_EQ(wait, S); /* the wait it refused */
  /* Hints obey the limits too. */
  p.delay_ns = 0;
  fdn_retry_start(&r, &p, 0);
  ASSERT_EQ(fdn_retry_next(&r, NULL, 0, 10 * S, 10 * S, &wait),
            FDN_RETRY_LIMIT);
  ASSERT_EQ(fdn_retry_next(&r, NULL, 0, 10 * S, FDN_RETRY_NO_HINT, &wait),
            FDN_RETRY_WAIT);
  ASSERT_EQ(wait, 0);
  return 0;
}

/* A C host retrying a flaky operation on the engine's virtual clock. */
typedef struct {
  fdn_retry_policy_t policy;
  fdn_retry_t retry;
  int failures_left;
  int attempts;
  uint64_t attempt_times[16];
  int verdict;
} host_op_t;

static void host_retry_step(ctask_t *ct, int status) {
  host_op_t *op = ct->user;
  fdn_engine_t *engine = ct->task.engine;
  uint64_t now = fdn_engine_now(engine), wait, limit;
  (void)status;
  if (op->attempts == 0)
    fdn_retry_start(&op->retry, &op->policy, now);
  op->attempt_times[op->attempts++] = now;
  if (op->failures_left-- <= 0) {
    op->verdict = -1; /* succeeded */
    fdn_task_finish(&ct->task, FDN_TASK_DONE);
    return;
  }
  if (fdn_task_deadline(&ct->task, &limit) != 0)
    limit = FDN_FOREVER;
  op->verdict = fdn_retry_next(&op->retry, fdn_engine_rng(engine), now, limit,
                               FDN_RETRY_NO_HINT, &wait);
  if (op->verdict != FDN_RETRY_WAIT || fdn_task_sleep(&ct->task, wait) != 0)
    fdn_task_finish(&ct->task, FDN_TASK_FAILED);
}

TEST_IMPL(retry_drives_a_c_task_on_the_virtual_clock) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t ct;
  host_op_t op;
  memset(&op, 0, sizeof(op));
  op.policy = policy(FDN_BACKOFF_EXPONENTIAL, 2.0, S, FDN_FOREVER);
  op.policy.max_attempts = 5;
  op.failures_left = 3;
  ASSERT_EQ(ctask_init(engine, &ct, host_retry_step), 0);
  ct.user = &op;
  ASSERT_EQ(fdn_task_start(&ct.task), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(op.attempts, 4);
  ASSERT_EQ(op.verdict, -1);
  ASSERT_EQ(op.attempt_times[0], 0);
  ASSERT_EQ(op.attempt_times[1], 1 * S);
  ASSERT_EQ(op.attempt_times[2], 3 * S);
  ASSERT_EQ(op.attempt_times[3], 7 * S);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

/* A task that enters a scope with a deadline, optionally a shield inside
 * it, then reports its effective deadline.
 */
static void deadline_step(ctask_t *ct, int status) {
  static fdn_scope_t outer, mid, inner;
  uint64_t d = 0;
  fdn_engine_t *engine = ct->task.engine;
  (void)status;
  ct->rc = fdn_task_deadline(&ct->task, &d); /* no scope yet */
  ct->statuses[10] = ct->rc;
  fdn_scope_enter(&ct->task, &outer, fdn_engine_now(engine) + 5 * S, 0);
  fdn_scope_enter(&ct->task, &mid, fdn_engine_now(engine) + 9 * S, 0);
  fdn_scope_enter(&ct->task, &inner, FDN_FOREVER, 0);
  fdn_task_deadline(&ct->task, &d);
  ct->value = (long)(d / MS); /* the outer 5 s wins over the 9 s */
  fdn_scope_exit(&inner);
  fdn_scope_enter(&ct->task, &inner, fdn_engine_now(engine) + 20 * S, 1);
  fdn_task_deadline(&ct->task, &d);
  ct->statuses[11] = (int)(d / S); /* the shield hides the outer ones */
  fdn_scope_exit(&inner);
  fdn_scope_enter(&ct->task, &inner, fdn_engine_now(engine), 0);
  fdn_task_deadline(&ct->task, &d);
  ct->statuses[12] = (int)d; /* already expired: 0 */
  fdn_scope_exit(&inner);
  fdn_scope_exit(&mid);
  fdn_scope_exit(&outer);
  ct->statuses[13] = fdn_task_deadline(&ct->task, &d);
  fdn_task_finish(&ct->task, FDN_TASK_DONE);
}

TEST_IMPL(task_deadline_is_the_earliest_up_to_a_shield) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t ct;
  ASSERT_EQ(fdn_engine_advance(engine, 100 * S), 0);
  ASSERT_EQ(ctask_spawn(engine, &ct, deadline_step), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  ASSERT_EQ(ct.statuses[10], FDN_EAGAIN);
  ASSERT_EQ(ct.value, 105000);
  ASSERT_EQ(ct.statuses[11], 120);
  ASSERT_EQ(ct.statuses[12], 0);
  ASSERT_EQ(ct.statuses[13], FDN_EAGAIN);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}

static void deadline_bounded_retry(ctask_t *ct, int status) {
  static fdn_scope_t scope;
  if (ct->runs == 1)
    fdn_scope_enter(&ct->task, &scope, fdn_engine_now(ct->task.engine) + 4 * S,
                    0);
  host_retry_step(ct, status);
}

TEST_IMPL(retry_gives_up_before_sleeping_past_the_enclosing_deadline) {
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_VIRTUAL);
  ctask_t ct;
  host_op_t op;
  memset(&op, 0, sizeof(op));
  op.policy = policy(FDN_BACKOFF_EXPONENTIAL, 2.0, S, FDN_FOREVER);
  op.policy.max_attempts = 10;
  op.failures_left = 10;
  ASSERT_EQ(ctask_init(engine, &ct, deadline_bounded_retry), 0);
  ct.user = &op;
  ASSERT_EQ(fdn_task_start(&ct.task), 0);
  fdn_engine_run(engine, UV_RUN_DEFAULT);
  /* Attempts at 0, 1 and 3 s; the next wait (4 s) would end at 7 s. */
  ASSERT_EQ(op.attempts, 3);
  ASSERT_EQ(op.verdict, FDN_RETRY_LIMIT);
  ASSERT_EQ(op.attempt_times[2], 3 * S);
  ASSERT_EQ(fdn_engine_now(engine), 3 * S);
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  return 0;
}
