#include "fdn/clock.h"

#include <uv.h>

#include "fdn/error.h"

void fdn_clock_init(fdn_clock_t *clock, fdn_clock_kind_t kind) {
  clock->kind = kind;
  clock->virtual_now = 0;
}

uint64_t fdn_clock_now(const fdn_clock_t *clock) {
  if (clock->kind == FDN_CLOCK_VIRTUAL)
    return clock->virtual_now;
  return uv_hrtime();
}

int fdn_clock_set(fdn_clock_t *clock, uint64_t t) {
  if (clock->kind != FDN_CLOCK_VIRTUAL)
    return FDN_ESTATE;
  if (t < clock->virtual_now)
    return FDN_EINVAL;
  clock->virtual_now = t;
  return 0;
}

int fdn_seconds_to_ns(double seconds, uint64_t *out) {
  /* NaN fails every comparison, so it lands in the error branch. */
  if (!(seconds >= 0.0))
    return FDN_EINVAL;
  if (seconds >= 1.8e10) /* ~570 years: beyond that, treat as forever */
    *out = FDN_FOREVER;
  else
    *out = (uint64_t)(seconds * 1e9 + 0.5);
  return 0;
}
