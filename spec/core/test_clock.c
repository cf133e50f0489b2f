#include <math.h>

#include "fdn/fdn.h"
#include "test.h"

TEST_IMPL(clock_real_is_monotonic) {
  fdn_clock_t clock;
  uint64_t a, b;
  int i;
  fdn_clock_init(&clock, FDN_CLOCK_REAL);
  a = fdn_clock_now(&clock);
  ASSERT(a > 0);
  for (i = 0; i < 1000; i++) {
    b = fdn_clock_now(&clock);
    ASSERT(b >= a);
    a = b;
  }
  ASSERT_EQ(fdn_clock_set(&clock, a + 10), FDN_ESTATE);
  return 0;
}

TEST_IMPL(clock_virtual_moves_only_forward) {
  fdn_clock_t clock;
  fdn_clock_init(&clock, FDN_CLOCK_VIRTUAL);
  ASSERT_EQ(fdn_clock_now(&clock), 0);
  ASSERT_EQ(fdn_clock_set(&clock, 3600000000000ull), 0);
  ASSERT_EQ(fdn_clock_now(&clock), 3600000000000ull);
  ASSERT_EQ(fdn_clock_set(&clock, 5), FDN_EINVAL);
  ASSERT_EQ(fdn_clock_now(&clock), 3600000000000ull);
  return 0;
}

TEST_IMPL(clock_seconds_to_ns_validates) {
  uint64_t ns = 1;
  ASSERT_EQ(fdn_seconds_to_ns(1.5, &ns), 0);
  ASSERT_EQ(ns, 1500000000ull);
  ASSERT_EQ(fdn_seconds_to_ns(0.0, &ns), 0);
  ASSERT_EQ(ns, 0);
  ASSERT_EQ(fdn_seconds_to_ns(-0.001, &ns), FDN_EINVAL);
  ASSERT_EQ(fdn_seconds_to_ns(NAN, &ns), FDN_EINVAL);
  ASSERT_EQ(fdn_seconds_to_ns(INFINITY, &ns), 0);
  ASSERT(ns == FDN_FOREVER);
  ASSERT_EQ(fdn_seconds_to_ns(1e300, &ns), 0);
  ASSERT(ns == FDN_FOREVER);
  return 0;
}

TEST_IMPL(error_names_and_messages) {
  ASSERT(fdn_strerror(FDN_ECANCELED) != NULL);
  ASSERT(fdn_strerror(FDN_ECANCELED)[0] != '\0');
  ASSERT(fdn_strerror(-999) != NULL);
  ASSERT(fdn_err_name(FDN_ETIMEDOUT)[0] == 'E');
  return 0;
}
