#include "fdn/retry.h"

#include <string.h>

#include "fdn/clock.h"
#include "fdn/error.h"

static const char *const backoff_names[] = {"fixed", "linear", "exponential",
                                            "fibonacci"};
static const char *const jitter_names[] = {"none", "full", "equal",
                                           "decorrelated"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

void fdn_retry_policy_init(fdn_retry_policy_t *policy) {
  policy->max_attempts = 3;
  policy->backoff = FDN_BACKOFF_EXPONENTIAL;
  policy->jitter = FDN_JITTER_NONE;
  policy->factor = 2.0;
  policy->delay_ns = 1000000000ull;
  policy->max_delay_ns = FDN_FOREVER;
  policy->deadline_ns = FDN_FOREVER;
}

int fdn_retry_policy_check(const fdn_retry_policy_t *policy,
                           const char **field) {
  const char *bad = NULL;
  double f = policy->factor;
  if (policy->max_attempts < 1)
    bad = "max_attempts";
  else if ((unsigned)policy->backoff >= COUNT(backoff_names))
    bad = "backoff";
  else if ((unsigned)policy->jitter >= COUNT(jitter_names))
    bad = "jitter";
  else if (policy->backoff == FDN_BACKOFF_LINEAR && !(f >= 0 && f < 1e308))
    bad = "factor";
  else if (policy->backoff == FDN_BACKOFF_EXPONENTIAL && !(f >= 1 && f < 1e308))
    bad = "factor";
  if (field != NULL)
    *field = bad;
  return bad == NULL ? 0 : FDN_EINVAL;
}

/* Nanoseconds from a double, rounded, clamped to [0, cap]. */
static uint64_t to_ns(double x, uint64_t cap) {
  double r;
  if (!(x > 0))
    return 0;
  if (x >= (double)cap)
    return cap;
  r = x + 0.5;
  if (r >= (double)cap)
    return cap;
  return (uint64_t)r;
}

/* base^e by squaring: O(log e), and inf (never UB) on overflow. */
static double powi(double base, uint32_t e) {
  double result = 1.0;
  while (e != 0) {
    if (e & 1u)
      result *= base;
    e >>= 1;
    if (e != 0)
      base *= base;
  }
  return result;
}

/* F(k) with F(1) = F(2) = 1, stopping once past `enough`. */
static double fibonacci(uint32_t k, double enough) {
  double a = 1.0, b = 1.0, t;
  uint32_t i;
  for (i = 2; i < k && a <= enough; i++) {
    t = a + b;
    a = b;
    b = t;
  }
  return k <= 2 ? 1.0 : b;
}

/* The k-th wait before jitter, in nanoseconds, not yet capped. */
static double backoff_ns(const fdn_retry_policy_t *p, uint32_t k) {
  double delay = (double)p->delay_ns, n = (double)(k - 1);
  if (p->delay_ns == 0)
    return 0.0;
  switch (p->backoff) {
  case FDN_BACKOFF_LINEAR:
    return delay * (1.0 + p->factor * n);
  case FDN_BACKOFF_EXPONENTIAL:
    return delay * powi(p->factor, k - 1);
  case FDN_BACKOFF_FIBONACCI:
    return delay * fibonacci(k, (double)p->max_delay_ns / delay + 1.0);
  default:
    return delay;
  }
}

uint64_t fdn_retry_delay(const fdn_retry_policy_t *policy, uint32_t k,
                         uint64_t prev_wait_ns, fdn_rng_t *rng) {
  uint64_t cap = policy->max_delay_ns;
  double d, u;
  if (k < 1)
    k = 1;
  if (policy->jitter == FDN_JITTER_DECORRELATED) {
    double lo = (double)policy->delay_ns, hi = 3.0 * (double)prev_wait_ns;
    if (hi < lo)
      hi = lo;
    u = rng != NULL ? fdn_rng_double(rng) : 0.0;
    return to_ns(lo + (hi - lo) * u, cap);
  }
  d = backoff_ns(policy, k);
  if (d > (double)cap)
    d = (double)cap;
  if (policy->jitter == FDN_JITTER_NONE || rng == NULL)
    return to_ns(d, cap);
  u = fdn_rng_double(rng);
  if (policy->jitter == FDN_JITTER_FULL)
    return to_ns(d * u, cap);
  return to_ns(d / 2.0 + (d / 2.0) * u, cap); /* equal */
}

void fdn_retry_start(fdn_retry_t *retry, const fdn_retry_policy_t *policy,
                     uint64_t now_ns) {
  retry->policy = policy;
  retry->attempts = 1;
  retry->started_ns = now_ns;
  retry->prev_wait_ns = policy->delay_ns;
}

static uint64_t add_sat(uint64_t a, uint64_t b) {
  return b > FDN_FOREVER - a ? FDN_FOREVER : a + b;
}

fdn_retry_verdict_t fdn_retry_next(fdn_retry_t *retry, fdn_rng_t *rng,
                                   uint64_t now_ns, uint64_t limit_ns,
                                   uint64_t hint_ns, uint64_t *wait_ns) {
  const fdn_retry_policy_t *p = retry->policy;
  uint64_t wait, end;
  if (p->max_attempts != FDN_RETRY_UNLIMITED &&
      retry->attempts >= p->max_attempts)
    return FDN_RETRY_EXHAUSTED;
  if (hint_ns != FDN_RETRY_NO_HINT)
    wait = hint_ns < p->max_delay_ns ? hint_ns : p->max_delay_ns;
  else
    wait = fdn_retry_delay(p, retry->attempts, retry->prev_wait_ns, rng);
  end = add_sat(now_ns, wait);
  *wait_ns = wait;
  if (p->deadline_ns != FDN_FOREVER &&
      end > add_sat(retry->started_ns, p->deadline_ns))
    return FDN_RETRY_DEADLINE;
  if (limit_ns != FDN_FOREVER && end >= limit_ns)
    return FDN_RETRY_LIMIT;
  retry->prev_wait_ns = wait;
  if (retry->attempts < UINT32_MAX)
    retry->attempts++;
  return FDN_RETRY_WAIT;
}

const char *fdn_backoff_name(fdn_backoff_t backoff) {
  return (unsigned)backoff < COUNT(backoff_names) ? backoff_names[backoff]
                                                  : "unknown";
}

const char *fdn_jitter_name(fdn_jitter_t jitter) {
  return (unsigned)jitter < COUNT(jitter_names) ? jitter_names[jitter]
                                                : "unknown";
}

int fdn_backoff_parse(const char *name, fdn_backoff_t *out) {
  unsigned i;
  for (i = 0; name != NULL && i < COUNT(backoff_names); i++) {
    if (strcmp(name, backoff_names[i]) == 0) {
      *out = (fdn_backoff_t)i;
      return 0;
    }
  }
  return FDN_EINVAL;
}

int fdn_jitter_parse(const char *name, fdn_jitter_t *out) {
  unsigned i;
  for (i = 0; name != NULL && i < COUNT(jitter_names); i++) {
    if (strcmp(name, jitter_names[i]) == 0) {
      *out = (fdn_jitter_t)i;
      return 0;
    }
  }
  return FDN_EINVAL;
}
