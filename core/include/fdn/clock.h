/* The engine's clock: real monotonic time or a virtual time that only moves
 * when the engine (or a test) moves it. Times are nanoseconds.
 */
#ifndef FDN_CLOCK_H
#define FDN_CLOCK_H

#include <stdint.h>

typedef enum { FDN_CLOCK_REAL = 0, FDN_CLOCK_VIRTUAL = 1 } fdn_clock_kind_t;

typedef struct fdn_clock_s {
  fdn_clock_kind_t kind;
  uint64_t virtual_now;
} fdn_clock_t;

/* A virtual clock starts at 0; a real clock reads the monotonic clock. */
void fdn_clock_init(fdn_clock_t *clock, fdn_clock_kind_t kind);

uint64_t fdn_clock_now(const fdn_clock_t *clock);

/* Moves a virtual clock forward to `t`. Returns FDN_ESTATE for a real clock
 * and FDN_EINVAL when `t` is in the past: time never runs backwards.
 */
int fdn_clock_set(fdn_clock_t *clock, uint64_t t);

/* Converts seconds to nanoseconds, saturating at FDN_FOREVER. Returns
 * FDN_EINVAL for negative or NaN input.
 */
int fdn_seconds_to_ns(double seconds, uint64_t *out);

#define FDN_FOREVER UINT64_MAX

#endif
