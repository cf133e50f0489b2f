/* A minimal test harness: each test is its own ctest entry (the runner
 * takes the test's name), so a crash or hang is isolated and timed.
 */
#ifndef FDN_SPEC_TEST_H
#define FDN_SPEC_TEST_H

#include <stdio.h>
#include <stdlib.h>

#define TEST_IMPL(name) int fdn_test_##name(void)

#define ASSERT(expr)                                                           \
  do {                                                                         \
    if (!(expr)) {                                                             \
      fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__,     \
              #expr);                                                          \
      return 1;                                                                \
    }                                                                          \
  } while (0)

#define ASSERT_EQ(a, b)                                                        \
  do {                                                                         \
    long long fdn_a_ = (long long)(a), fdn_b_ = (long long)(b);                \
    if (fdn_a_ != fdn_b_) {                                                    \
      fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,      \
              __LINE__, #a, #b, fdn_a_, fdn_b_);                               \
      return 1;                                                                \
    }                                                                          \
  } while (0)

#endif
