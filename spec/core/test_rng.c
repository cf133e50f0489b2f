#include "fdn/fdn.h"
#include "test.h"

TEST_IMPL(rng_same_seed_same_stream) {
  fdn_rng_t a, b, c;
  int i, differs = 0;
  fdn_rng_seed(&a, 42);
  fdn_rng_seed(&b, 42);
  fdn_rng_seed(&c, 43);
  for (i = 0; i < 1000; i++) {
    uint64_t x = fdn_rng_next(&a);
    ASSERT(x == fdn_rng_next(&b));
    differs += x != fdn_rng_next(&c);
  }
  ASSERT(differs > 990);
  fdn_rng_seed(&a, 0);
  ASSERT(fdn_rng_next(&a) != 0 || fdn_rng_next(&a) != 0);
  return 0;
}

TEST_IMPL(rng_double_and_below_stay_in_range_and_spread) {
  fdn_rng_t rng;
  int i, buckets[10] = {0};
  fdn_rng_seed(&rng, 7);
  for (i = 0; i < 100000; i++) {
    double d = fdn_rng_double(&rng);
    uint64_t k = fdn_rng_below(&rng, 10);
    ASSERT(d >= 0.0 && d < 1.0);
    ASSERT(k < 10);
    buckets[k]++;
  }
  for (i = 0; i < 10; i++)
    ASSERT(buckets[i] > 9000 && buckets[i] < 11000);
  ASSERT_EQ(fdn_rng_below(&rng, 0), 0);
  ASSERT_EQ(fdn_rng_below(&rng, 1), 0);
  return 0;
}

TEST_IMPL(engine_rng_repeats_with_a_seed) {
  fdn_engine_options_t opts;
  fdn_engine_t *a, *b;
  fdn_engine_options_init(&opts);
  opts.seed = 99;
  ASSERT_EQ(fdn_engine_new(&a, &opts), 0);
  ASSERT_EQ(fdn_engine_new(&b, &opts), 0);
  ASSERT_EQ(fdn_engine_seed(a), 99);
  ASSERT(fdn_rng_next(fdn_engine_rng(a)) == fdn_rng_next(fdn_engine_rng(b)));
  ASSERT_EQ(fdn_engine_close(a, NULL, NULL), 0);
  ASSERT_EQ(fdn_engine_close(b, NULL, NULL), 0);
  opts.seed = 0;
  ASSERT_EQ(fdn_engine_new(&a, &opts), 0);
  ASSERT(fdn_engine_seed(a) != 0);
  ASSERT(fdn_engine_seed(a) < (1ull << 53));
  ASSERT_EQ(fdn_engine_close(a, NULL, NULL), 0);
  return 0;
}
