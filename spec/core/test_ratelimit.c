/* Token bucket: burst, refill, reservations in order, giving tokens back. */
#include "fdn/fdn.h"
#include "test.h"

#define MS 1000000ull
#define S 1000000000ull

TEST_IMPL(ratelimit_rejects_bad_settings) {
  fdn_ratelimit_t rl;
  uint64_t wait;
  ASSERT_EQ(fdn_ratelimit_init(&rl, 0.0, 1.0, 0), FDN_EINVAL);
  ASSERT_EQ(fdn_ratelimit_init(&rl, -1.0, 1.0, 0), FDN_EINVAL);
  ASSERT_EQ(fdn_ratelimit_init(&rl, 0.0 / 0.0, 1.0, 0), FDN_EINVAL);
  ASSERT_EQ(fdn_ratelimit_init(&rl, 1.0, 0.5, 0), FDN_EINVAL);
  ASSERT_EQ(fdn_ratelimit_init(&rl, 1.0 / 0.0, 1.0, 0), FDN_EINVAL);
  ASSERT_EQ(fdn_ratelimit_init(&rl, 10.0, 2.0, 0), 0);
  ASSERT_EQ(fdn_ratelimit_try_acquire(&rl, 0, 3.0), FDN_EINVAL);
  ASSERT_EQ(fdn_ratelimit_try_acquire(&rl, 0, 0.0), FDN_EINVAL);
  ASSERT_EQ(fdn_ratelimit_reserve(&rl, 0, -1.0, FDN_FOREVER, &wait),
            FDN_EINVAL);
  return 0;
}

TEST_IMPL(ratelimit_allows_a_burst_then_paces) {
  fdn_ratelimit_t rl;
  uint64_t wait = 1;
  ASSERT_EQ(fdn_ratelimit_init(&rl, 10.0, 3.0, 0), 0);
  ASSERT_EQ(fdn_ratelimit_try_acquire(&rl, 0, 1.0), 0);
  ASSERT_EQ(fdn_ratelimit_try_acquire(&rl, 0, 1.0), 0);
  ASSERT_EQ(fdn_ratelimit_reserve(&rl, 0, 1.0, FDN_FOREVER, &wait), 0);
  ASSERT_EQ(wait, 0);
  ASSERT_EQ(fdn_ratelimit_try_acquire(&rl, 0, 1.0), FDN_EAGAIN);
  ASSERT_EQ(fdn_ratelimit_try_acquire(&rl, 99 * MS, 1.0), FDN_EAGAIN);
  ASSERT_EQ(fdn_ratelimit_try_acquire(&rl, 100 * MS, 1.0), 0);
  /* The bucket never holds more than the burst. */
  ASSERT(fdn_ratelimit_tokens(&rl, 3600 * S) == 3.0);
  return 0;
}

TEST_IMPL(ratelimit_reservations_queue_in_order) {
  fdn_ratelimit_t rl;
  uint64_t wait = 0;
  int i;
  ASSERT_EQ(fdn_ratelimit_init(&rl, 4.0, 1.0, 0), 0);
  for (i = 0; i < 5; i++) {
    ASSERT_EQ(fdn_ratelimit_reserve(&rl, 0, 1.0, FDN_FOREVER, &wait), 0);
    ASSERT_EQ(wait, (uint64_t)i * 250 * MS);
  }
  /* Later reservers line up behind: try_acquire does not jump the queue. */
  ASSERT_EQ(fdn_ratelimit_try_acquire(&rl, 500 * MS, 1.0), FDN_EAGAIN);
  ASSERT_EQ(fdn_ratelimit_reserve(&rl, 500 * MS, 1.0, FDN_FOREVER, &wait), 0);
  ASSERT_EQ(wait, 750 * MS);
  /* Too long a wait: refused, nothing reserved. */
  ASSERT_EQ(fdn_ratelimit_reserve(&rl, 500 * MS, 1.0, 999 * MS, &wait),
            FDN_ETIMEDOUT);
  ASSERT_EQ(wait, 1000 * MS);
  ASSERT_EQ(fdn_ratelimit_reserve(&rl, 500 * MS, 1.0, 999 * MS, &wait),
            FDN_ETIMEDOUT);
  /* A reservation given back shortens the next caller's wait. */
  fdn_ratelimit_cancel(&rl, 500 * MS, 1.0);
  ASSERT_EQ(fdn_ratelimit_reserve(&rl, 500 * MS, 1.0, FDN_FOREVER, &wait), 0);
  ASSERT_EQ(wait, 750 * MS);
  ASSERT(fdn_ratelimit_rate(&rl) == 4.0 && fdn_ratelimit_burst(&rl) == 1.0);
  return 0;
}

TEST_IMPL(ratelimit_long_runs_keep_the_rate_without_drift) {
  fdn_ratelimit_t rl;
  uint64_t now = 0, wait;
  int i;
  ASSERT_EQ(fdn_ratelimit_init(&rl, 3.0, 1.0, 0), 0);
  /* A caller that always sleeps its wait: one call per 1/3 s, forever. */
  for (i = 0; i < 30000; i++) {
    ASSERT_EQ(fdn_ratelimit_reserve(&rl, now, 1.0, FDN_FOREVER, &wait), 0);
    now += wait;
  }
  /* 30000 calls at 3/s, the first free: 9999.67 s, to the microsecond. */
  ASSERT(now > 9999666666000ull - 1000000ull);
  ASSERT(now < 9999666667000ull + 1000000ull);
  /* Time seen going backwards adds nothing. */
  ASSERT(fdn_ratelimit_tokens(&rl, 0) < 0.5);
  return 0;
}
