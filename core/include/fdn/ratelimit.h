/* Token-bucket rate limiter: `rate` tokens per second flow into a bucket
 * that holds at most `burst`; each call takes tokens.
 *
 * Waiting is by reservation: fdn_ratelimit_reserve takes the tokens at
 * once, letting the balance go negative, and says how long the caller must
 * wait before using them. Reservations are therefore served in the order
 * they were made, and the limiter never needs to wake anyone: each caller
 * sleeps its own wait. A caller that gives up before its time (cancelled)
 * hands its tokens back with fdn_ratelimit_cancel.
 *
 * Like the breaker, the limiter reads no clock: every call takes `now_ns`
 * (an engine's clock, virtual ones included). Time seen going backwards
 * (a new engine's clock) adds nothing and restarts the refill there.
 */
#ifndef FDN_RATELIMIT_H
#define FDN_RATELIMIT_H

#include <stdint.h>

typedef struct fdn_ratelimit_s {
  void *data; /* free for the owner */
  /* private */
  double rate;   /* tokens per second, > 0 */
  double burst;  /* bucket size, >= 1 */
  double tokens; /* may be negative: reserved ahead */
  uint64_t last_ns;
} fdn_ratelimit_t;

/* Initialises a full bucket. Returns FDN_EINVAL unless rate > 0 and
 * burst >= 1 (both finite).
 */
int fdn_ratelimit_init(fdn_ratelimit_t *rl, double rate, double burst,
                       uint64_t now_ns);

/* Takes `n` tokens if they are there now: 0, or FDN_EAGAIN (nothing taken;
 * also while earlier reservations are still waiting), FDN_EINVAL when n is
 * not in (0, burst].
 */
int fdn_ratelimit_try_acquire(fdn_ratelimit_t *rl, uint64_t now_ns, double n);

/* Reserves `n` tokens and sets *wait_ns to how long until they are due (0
 * when available now). When that wait would exceed `max_wait_ns`
 * (FDN_FOREVER for no limit) nothing is reserved and FDN_ETIMEDOUT is
 * returned with *wait_ns set. FDN_EINVAL when n is not in (0, burst].
 */
int fdn_ratelimit_reserve(fdn_ratelimit_t *rl, uint64_t now_ns, double n,
                          uint64_t max_wait_ns, uint64_t *wait_ns);

/* Gives back `n` reserved tokens that will not be used. */
void fdn_ratelimit_cancel(fdn_ratelimit_t *rl, uint64_t now_ns, double n);

/* Tokens available at `now_ns` (negative while reservations wait). */
double fdn_ratelimit_tokens(fdn_ratelimit_t *rl, uint64_t now_ns);

double fdn_ratelimit_rate(const fdn_ratelimit_t *rl);
double fdn_ratelimit_burst(const fdn_ratelimit_t *rl);

#endif
