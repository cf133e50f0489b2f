/* Retry policy: how many attempts to make, and how long to wait before each
 * retry.
 *
 * A policy is plain data the caller fills in (fdn_retry_policy_init gives
 * the defaults) and checks once with fdn_retry_policy_check. It computes
 * waits and never sleeps: the caller (the Lua decorator, a C host) sleeps
 * the wait it is given on whatever clock it uses. Times are nanoseconds.
 *
 * The k-th wait (after attempt k failed, before attempt k + 1), before
 * jitter, is
 *
 *   fixed:        delay
 *   linear:       delay * (1 + factor * (k - 1))
 *   exponential:  delay * factor^(k - 1)
 *   fibonacci:    delay * F(k), with F = 1, 1, 2, 3, 5, 8, ...
 *
 * capped at max_delay. Jitter then draws from the given RNG (an engine's,
 * so a seeded run repeats):
 *
 *   none:          d
 *   full:          uniform(0, d)
 *   equal:         d / 2 + uniform(0, d / 2)
 *   decorrelated:  min(max_delay, uniform(delay, 3 * previous wait)), where
 *                  the previous wait before the first retry is `delay`
 *
 * No wait ever exceeds max_delay.
 */
#ifndef FDN_RETRY_H
#define FDN_RETRY_H

#include <stdint.h>

#include "fdn/rng.h"

typedef enum {
  FDN_BACKOFF_FIXED = 0,
  FDN_BACKOFF_LINEAR = 1,
  FDN_BACKOFF_EXPONENTIAL = 2,
  FDN_BACKOFF_FIBONACCI = 3
} fdn_backoff_t;

typedef enum {
  FDN_JITTER_NONE = 0,
  FDN_JITTER_FULL = 1,
  FDN_JITTER_EQUAL = 2,
  FDN_JITTER_DECORRELATED = 3
} fdn_jitter_t;

/* max_attempts meaning "no limit". */
#define FDN_RETRY_UNLIMITED UINT32_MAX
/* A hint of this value means "no hint" (see fdn_retry_next). */
#define FDN_RETRY_NO_HINT UINT64_MAX

typedef struct fdn_retry_policy_s {
  uint32_t max_attempts; /* attempts in all, first included; >= 1 */
  fdn_backoff_t backoff;
  fdn_jitter_t jitter;
  double factor;         /* linear: >= 0; exponential: >= 1; else unused */
  uint64_t delay_ns;     /* the base delay */
  uint64_t max_delay_ns; /* cap on every wait; FDN_FOREVER for none */
  uint64_t deadline_ns;  /* budget for the whole call, measured from its
                            first attempt; FDN_FOREVER for none */
} fdn_retry_policy_t;

/* What fdn_retry_next decided. */
typedef enum {
  FDN_RETRY_WAIT = 0,      /* retry after *wait_ns */
  FDN_RETRY_EXHAUSTED = 1, /* max_attempts attempts were made */
  FDN_RETRY_DEADLINE = 2,  /* the wait would end past the policy deadline */
  FDN_RETRY_LIMIT = 3      /* the wait would reach the caller's limit (an
                              enclosing deadline, which cancels the call) */
} fdn_retry_verdict_t;

/* Per-call state. The caller owns it (usually on its stack); it borrows
 * the policy, which must outlive it.
 */
typedef struct fdn_retry_s {
  const fdn_retry_policy_t *policy;
  uint32_t attempts;     /* attempts started so far */
  uint64_t started_ns;   /* when the first attempt started */
  uint64_t prev_wait_ns; /* the last wait used (decorrelated jitter) */
} fdn_retry_t;

/* Defaults: 3 attempts, 1 s delay, exponential backoff with factor 2, no
 * cap, no jitter, no deadline.
 */
void fdn_retry_policy_init(fdn_retry_policy_t *policy);

/* Returns 0, or FDN_EINVAL and sets *field (when not NULL) to the name of
 * the first bad field ("max_attempts", "factor", "backoff", "jitter").
 */
int fdn_retry_policy_check(const fdn_retry_policy_t *policy,
                           const char **field);

/* The k-th wait (k >= 1) with jitter, as described above. `prev_wait_ns` is
 * the wait used before the previous retry (the policy's delay when k is
 * 1); only decorrelated jitter reads it. `rng` may be NULL when the policy
 * has no jitter.
 */
uint64_t fdn_retry_delay(const fdn_retry_policy_t *policy, uint32_t k,
                         uint64_t prev_wait_ns, fdn_rng_t *rng);

/* Starts a call: the first attempt begins at `now_ns`. */
void fdn_retry_start(fdn_retry_t *retry, const fdn_retry_policy_t *policy,
                     uint64_t now_ns);

/* After the latest attempt failed: decides whether to retry. Returns
 * FDN_RETRY_WAIT and sets *wait_ns (the caller sleeps it, then makes the
 * next attempt, which this call has already counted), or another verdict
 * and leaves the state alone (with FDN_RETRY_DEADLINE and FDN_RETRY_LIMIT,
 * *wait_ns is the wait it refused to start).
 *
 * `hint_ns` is a wait the failure asked for (an HTTP Retry-After), used
 * instead of the computed one but still capped at max_delay;
 * FDN_RETRY_NO_HINT for none. `limit_ns` is an absolute time the caller
 * must not sleep up to (the deadline of an enclosing timeout, which would
 * cancel the call there); FDN_FOREVER for none. No wait is started that
 * would end past the policy deadline or at or past the limit.
 */
fdn_retry_verdict_t fdn_retry_next(fdn_retry_t *retry, fdn_rng_t *rng,
                                   uint64_t now_ns, uint64_t limit_ns,
                                   uint64_t hint_ns, uint64_t *wait_ns);

const char *fdn_backoff_name(fdn_backoff_t backoff);
const char *fdn_jitter_name(fdn_jitter_t jitter);

/* Parses a name ("exponential", "full", ...); returns 0 or FDN_EINVAL. */
int fdn_backoff_parse(const char *name, fdn_backoff_t *out);
int fdn_jitter_parse(const char *name, fdn_jitter_t *out);

#endif
