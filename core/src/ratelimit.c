#include "fdn/ratelimit.h"

#include "fdn/clock.h"
#include "fdn/error.h"

/* Tokens are counted in doubles; a balance this close to a whole number
 * is that number, so float drift never costs a caller a spurious wait.
 */
#define EPSILON 1e-9

int fdn_ratelimit_init(fdn_ratelimit_t *rl, double rate, double burst,
                       uint64_t now_ns) {
  if (!(rate > 0.0 && rate < 1e300) || !(burst >= 1.0 && burst < 1e300))
    return FDN_EINVAL;
  rl->rate = rate;
  rl->burst = burst;
  rl->tokens = burst;
  rl->last_ns = now_ns;
  return 0;
}

static void refill(fdn_ratelimit_t *rl, uint64_t now) {
  double added;
  if (now <= rl->last_ns) {
    rl->last_ns = now;
    return;
  }
  added = (double)(now - rl->last_ns) / 1e9 * rl->rate;
  rl->tokens += added;
  if (rl->tokens > rl->burst)
    rl->tokens = rl->burst;
  rl->last_ns = now;
}

static int bad_count(const fdn_ratelimit_t *rl, double n) {
  return !(n > 0.0 && n <= rl->burst);
}

int fdn_ratelimit_try_acquire(fdn_ratelimit_t *rl, uint64_t now_ns, double n) {
  if (bad_count(rl, n))
    return FDN_EINVAL;
  refill(rl, now_ns);
  if (rl->tokens + EPSILON < n)
    return FDN_EAGAIN;
  rl->tokens -= n;
  return 0;
}

int fdn_ratelimit_reserve(fdn_ratelimit_t *rl, uint64_t now_ns, double n,
                          uint64_t max_wait_ns, uint64_t *wait_ns) {
  double deficit, ns;
  uint64_t wait = 0;
  if (bad_count(rl, n))
    return FDN_EINVAL;
  refill(rl, now_ns);
  deficit = n - rl->tokens;
  if (deficit > EPSILON) {
    ns = deficit / rl->rate * 1e9;
    /* Nearest, not up: the tokens are already ours, so half a nanosecond
     * early costs nothing, and rounding up would let drift add up. */
    wait = ns >= 1.8e19 ? FDN_FOREVER : (uint64_t)(ns + 0.5);
  }
  *wait_ns = wait;
  if (max_wait_ns != FDN_FOREVER && wait > max_wait_ns)
    return FDN_ETIMEDOUT;
  rl->tokens -= n;
  return 0;
}

void fdn_ratelimit_cancel(fdn_ratelimit_t *rl, uint64_t now_ns, double n) {
  refill(rl, now_ns);
  if (n > 0.0)
    rl->tokens += n;
  if (rl->tokens > rl->burst)
    rl->tokens = rl->burst;
}

double fdn_ratelimit_tokens(fdn_ratelimit_t *rl, uint64_t now_ns) {
  refill(rl, now_ns);
  return rl->tokens;
}

double fdn_ratelimit_rate(const fdn_ratelimit_t *rl) {
  return rl->rate;
}

double fdn_ratelimit_burst(const fdn_ratelimit_t *rl) {
  return rl->burst;
}
