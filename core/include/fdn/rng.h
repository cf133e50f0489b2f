/* A small, fast, seedable pseudo-random generator (xoshiro256**, seeded
 * through splitmix64). Every engine has one, so retry jitter and ids are
 * repeatable when the engine is given a seed. Not for cryptography.
 */
#ifndef FDN_RNG_H
#define FDN_RNG_H

#include <stdint.h>

typedef struct fdn_rng_s {
  uint64_t s[4];
} fdn_rng_t;

/* Any seed, 0 included, gives a valid, distinct stream. */
void fdn_rng_seed(fdn_rng_t *rng, uint64_t seed);

uint64_t fdn_rng_next(fdn_rng_t *rng);

/* Uniform in [0, 1), with 53 random bits. */
double fdn_rng_double(fdn_rng_t *rng);

/* Uniform in [0, n) without modulo bias; 0 when n is 0. */
uint64_t fdn_rng_below(fdn_rng_t *rng, uint64_t n);

/* A seed that differs between processes and calls (time and pid). */
uint64_t fdn_rng_entropy(void);

#endif
