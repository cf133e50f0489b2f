#include "fdn/breaker.h"

#include <string.h>

#include "fdn/error.h"

void fdn_breaker_options_init(fdn_breaker_options_t *opts) {
  opts->failure_threshold = 5;
  opts->failure_rate = 0.0;
  opts->minimum_calls = 10;
  opts->window_ns = 60ull * 1000000000ull;
  opts->recovery_timeout_ns = 30ull * 1000000000ull;
  opts->half_open_max = 1;
  opts->success_threshold = 1;
}

int fdn_breaker_options_check(const fdn_breaker_options_t *opts,
                              const char **field) {
  const char *bad = NULL;
  if (!(opts->failure_rate >= 0.0 && opts->failure_rate <= 1.0))
    bad = "failure_rate";
  else if (opts->window_ns == 0)
    bad = "window";
  else if (opts->half_open_max < 1)
    bad = "half_open_max";
  else if (opts->success_threshold < 1)
    bad = "success_threshold";
  if (field != NULL)
    *field = bad;
  return bad == NULL ? 0 : FDN_EINVAL;
}

static void clear_window(fdn_breaker_t *b, uint64_t now) {
  memset(b->bucket_calls, 0, sizeof(b->bucket_calls));
  memset(b->bucket_failures, 0, sizeof(b->bucket_failures));
  b->head = 0;
  b->bucket_start = now;
}

int fdn_breaker_init(fdn_breaker_t *breaker, const fdn_breaker_options_t *opts,
                     uint64_t now_ns) {
  void *data = breaker->data;
  fdn_breaker_change_cb on_change = breaker->on_change;
  if (fdn_breaker_options_check(opts, NULL) != 0)
    return FDN_EINVAL;
  memset(breaker, 0, sizeof(*breaker));
  breaker->data = data;
  breaker->on_change = on_change;
  breaker->opts = *opts;
  breaker->state = FDN_BREAKER_CLOSED;
  clear_window(breaker, now_ns);
  return 0;
}

static void transition(fdn_breaker_t *b, fdn_breaker_state_t to, uint64_t now) {
  fdn_breaker_state_t from = (fdn_breaker_state_t)b->state;
  b->state = (uint8_t)to;
  b->epoch++;
  b->counts.probes = 0;
  b->probe_successes = 0;
  if (to == FDN_BREAKER_OPEN) {
    b->opened_at = now;
    b->counts.opened++;
  } else if (to == FDN_BREAKER_CLOSED) {
    b->counts.consecutive_failures = 0;
    clear_window(b, now);
  }
  if (from != to && b->on_change != NULL)
    b->on_change(b, from, to);
}

fdn_breaker_state_t fdn_breaker_state(fdn_breaker_t *breaker, uint64_t now_ns) {
  if (breaker->state == FDN_BREAKER_OPEN) {
    if (now_ns < breaker->opened_at)
      breaker->opened_at = now_ns; /* another engine's clock */
    if (now_ns - breaker->opened_at >= breaker->opts.recovery_timeout_ns)
      transition(breaker, FDN_BREAKER_HALF_OPEN, now_ns);
  }
  return (fdn_breaker_state_t)breaker->state;
}

int fdn_breaker_acquire(fdn_breaker_t *breaker, uint64_t now_ns,
                        uint32_t *ticket) {
  switch (fdn_breaker_state(breaker, now_ns)) {
  case FDN_BREAKER_CLOSED:
    break;
  case FDN_BREAKER_HALF_OPEN:
    if (breaker->counts.probes < breaker->opts.half_open_max) {
      breaker->counts.probes++;
      break;
    }
    /* fall through */
  default:
    breaker->counts.rejected++;
    return FDN_EBUSY;
  }
  breaker->counts.calls++;
  *ticket = breaker->epoch;
  return 0;
}

/* Slides the rate window forward to `now`. */
static void advance(fdn_breaker_t *b, uint64_t now) {
  uint64_t width = b->opts.window_ns / FDN_BREAKER_BUCKETS, steps;
  if (width == 0)
    width = 1;
  if (now < b->bucket_start) {
    clear_window(b, now);
    return;
  }
  steps = (now - b->bucket_start) / width;
  if (steps >= FDN_BREAKER_BUCKETS) {
    clear_window(b, now);
    return;
  }
  b->bucket_start += steps * width;
  while (steps-- > 0) {
    b->head = (b->head + 1) % FDN_BREAKER_BUCKETS;
    b->bucket_calls[b->head] = 0;
    b->bucket_failures[b->head] = 0;
  }
}

static int rate_exceeded(const fdn_breaker_t *b) {
  uint64_t calls = 0, failures = 0;
  uint32_t min = b->opts.minimum_calls ? b->opts.minimum_calls : 1;
  int i;
  if (b->opts.failure_rate <= 0.0)
    return 0;
  for (i = 0; i < FDN_BREAKER_BUCKETS; i++) {
    calls += b->bucket_calls[i];
    failures += b->bucket_failures[i];
  }
  return calls >= min &&
         (double)failures >= b->opts.failure_rate * (double)calls;
}

static void record_closed(fdn_breaker_t *b, uint64_t now,
                          fdn_breaker_outcome_t outcome) {
  fdn_breaker_counts_t *c = &b->counts;
  advance(b, now);
  b->bucket_calls[b->head]++;
  if (outcome == FDN_BREAKER_FAILURE) {
    b->bucket_failures[b->head]++;
    c->consecutive_failures++;
  } else {
    c->consecutive_failures = 0;
  }
  if ((b->opts.failure_threshold != 0 &&
       c->consecutive_failures >= b->opts.failure_threshold) ||
      rate_exceeded(b))
    transition(b, FDN_BREAKER_OPEN, now);
}

void fdn_breaker_record(fdn_breaker_t *breaker, uint64_t now_ns,
                        uint32_t ticket, fdn_breaker_outcome_t outcome) {
  fdn_breaker_counts_t *c = &breaker->counts;
  if (outcome == FDN_BREAKER_SUCCESS)
    c->successes++;
  else if (outcome == FDN_BREAKER_FAILURE)
    c->failures++;
  else
    c->ignored++;
  if (ticket != breaker->epoch)
    return; /* admitted before the latest change: history, not evidence */
  if (breaker->state == FDN_BREAKER_CLOSED) {
    if (outcome != FDN_BREAKER_IGNORED)
      record_closed(breaker, now_ns, outcome);
    return;
  }
  if (breaker->state != FDN_BREAKER_HALF_OPEN)
    return;
  if (c->probes > 0)
    c->probes--;
  if (outcome == FDN_BREAKER_FAILURE) {
    c->consecutive_failures++;
    transition(breaker, FDN_BREAKER_OPEN, now_ns);
  } else if (outcome == FDN_BREAKER_SUCCESS &&
             ++breaker->probe_successes >= breaker->opts.success_threshold) {
    transition(breaker, FDN_BREAKER_CLOSED, now_ns);
  }
}

int fdn_breaker_remaining(fdn_breaker_t *breaker, uint64_t now_ns,
                          uint64_t *out) {
  uint64_t elapsed;
  if (fdn_breaker_state(breaker, now_ns) != FDN_BREAKER_OPEN)
    return FDN_ESTATE;
  elapsed = now_ns - breaker->opened_at;
  *out = breaker->opts.recovery_timeout_ns - elapsed;
  return 0;
}

int fdn_breaker_force(fdn_breaker_t *breaker, uint64_t now_ns,
                      fdn_breaker_state_t state) {
  if (state != FDN_BREAKER_CLOSED && state != FDN_BREAKER_OPEN)
    return FDN_EINVAL;
  transition(breaker, state, now_ns);
  return 0;
}

const fdn_breaker_counts_t *fdn_breaker_counts(const fdn_breaker_t *breaker) {
  return &breaker->counts;
}

const char *fdn_breaker_state_name(fdn_breaker_state_t state) {
  switch (state) {
  case FDN_BREAKER_CLOSED:
    return "closed";
  case FDN_BREAKER_OPEN:
    return "open";
  case FDN_BREAKER_HALF_OPEN:
    return "half_open";
  }
  return "unknown";
}
