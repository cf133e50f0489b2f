#include "fdn/rng.h"

#include <uv.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

void fdn_rng_seed(fdn_rng_t *rng, uint64_t seed) {
  int i;
  for (i = 0; i < 4; i++)
    rng->s[i] = splitmix64(&seed);
}

uint64_t fdn_rng_next(fdn_rng_t *rng) {
  uint64_t *s = rng->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double fdn_rng_double(fdn_rng_t *rng) {
  return (double)(fdn_rng_next(rng) >> 11) * 0x1.0p-53;
}

uint64_t fdn_rng_below(fdn_rng_t *rng, uint64_t n) {
  uint64_t limit, x;
  if (n == 0)
    return 0;
  /* Reject the top sliver that would make some results likelier. */
  limit = UINT64_MAX - UINT64_MAX % n;
  do {
    x = fdn_rng_next(rng);
  } while (x >= limit);
  return x % n;
}

uint64_t fdn_rng_entropy(void) {
  static uint64_t counter;
  uint64_t x = uv_hrtime() ^ ((uint64_t)uv_os_getpid() << 32) ^
               (++counter * 0x9e3779b97f4a7c15ull);
  return splitmix64(&x);
}
