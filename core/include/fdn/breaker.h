/* Circuit breaker: a state machine that stops calls to a failing
 * dependency for a while, then lets a few probes through to test it.
 *
 *   closed     calls go through; it opens after `failure_threshold`
 *              failures in a row, or when failures reach `failure_rate` of
 *              the calls in the last `window_ns` (once there were at least
 *              `minimum_calls` of them)
 *   open       calls are rejected; after `recovery_timeout_ns` it is
 *              half-open (read lazily: any call or state read after that
 *              time sees half-open)
 *   half_open  up to `half_open_max` probe calls at once go through, the
 *              rest are rejected; `success_threshold` probe successes in a
 *              row close it, one probe failure opens it again
 *
 * The breaker reads no clock: every call takes `now_ns`, so it runs on an
 * engine's clock, virtual ones included, and one breaker can serve tasks
 * of several engines. Time seen going backwards (a new engine's clock)
 * restarts the open period and the rate window at the new time.
 *
 * Each admitted call gets a ticket from fdn_breaker_acquire and must
 * report exactly one outcome with it. Outcomes of calls admitted before the
 * latest state change count in the totals but do not move the state: a
 * slow success from before the breaker opened does not close it.
 */
#ifndef FDN_BREAKER_H
#define FDN_BREAKER_H

#include <stdint.h>

#define FDN_BREAKER_BUCKETS 10

typedef enum {
  FDN_BREAKER_CLOSED = 0,
  FDN_BREAKER_OPEN = 1,
  FDN_BREAKER_HALF_OPEN = 2
} fdn_breaker_state_t;

typedef enum {
  FDN_BREAKER_SUCCESS = 0,
  FDN_BREAKER_FAILURE = 1,
  FDN_BREAKER_IGNORED = 2 /* neither (a cancelled call, say): only frees a
                             probe's place */
} fdn_breaker_outcome_t;

typedef struct fdn_breaker_s fdn_breaker_t;
typedef void (*fdn_breaker_change_cb)(fdn_breaker_t *breaker,
                                      fdn_breaker_state_t from,
                                      fdn_breaker_state_t to);

typedef struct fdn_breaker_options_s {
  uint32_t failure_threshold; /* failures in a row that open it; 0: off */
  double failure_rate;        /* in (0, 1]; 0: off */
  uint32_t minimum_calls;     /* window calls before the rate applies */
  uint64_t window_ns;         /* the rate's sliding window, > 0 */
  uint64_t recovery_timeout_ns;
  uint32_t half_open_max;     /* probes at once while half-open, >= 1 */
  uint32_t success_threshold; /* probe successes in a row that close it */
} fdn_breaker_options_t;

typedef struct fdn_breaker_counts_s {
  uint64_t calls; /* admitted calls */
  uint64_t successes;
  uint64_t failures;
  uint64_t ignored;
  uint64_t rejected; /* refused while open or half-open and full */
  uint64_t opened;   /* times it opened */
  uint32_t consecutive_failures;
  uint32_t probes; /* probes in flight while half-open */
} fdn_breaker_counts_t;

struct fdn_breaker_s {
  void *data;                      /* free for the owner */
  fdn_breaker_change_cb on_change; /* may be NULL; called on every change */
  fdn_breaker_options_t opts;
  /* private */
  fdn_breaker_counts_t counts;
  uint64_t opened_at;
  uint64_t bucket_start; /* start of the newest bucket */
  uint32_t epoch;        /* bumped at each state change */
  uint32_t probe_successes;
  uint32_t head;
  uint32_t bucket_calls[FDN_BREAKER_BUCKETS];
  uint32_t bucket_failures[FDN_BREAKER_BUCKETS];
  uint8_t state;
};

/* Defaults: 5 failures in a row, no rate, 10 minimum calls over a 60 s
 * window, 30 s recovery, 1 probe, 1 success to close.
 */
void fdn_breaker_options_init(fdn_breaker_options_t *opts);

/* Returns 0, or FDN_EINVAL and sets *field (when not NULL) to the name of
 * the first bad option.
 */
int fdn_breaker_options_check(const fdn_breaker_options_t *opts,
                              const char **field);

/* Initialises a closed breaker (caller-allocated; nothing to free). Keeps
 * `data` and `on_change`. Returns FDN_EINVAL for bad options.
 */
int fdn_breaker_init(fdn_breaker_t *breaker, const fdn_breaker_options_t *opts,
                     uint64_t now_ns);

/* The state at `now_ns`, moving open to half-open when the recovery
 * timeout has passed.
 */
fdn_breaker_state_t fdn_breaker_state(fdn_breaker_t *breaker, uint64_t now_ns);

/* Asks to make a call. Returns 0 and sets *ticket (report the outcome with
 * it), or FDN_EBUSY when the call is rejected.
 */
int fdn_breaker_acquire(fdn_breaker_t *breaker, uint64_t now_ns,
                        uint32_t *ticket);

/* Reports how an admitted call ended. */
void fdn_breaker_record(fdn_breaker_t *breaker, uint64_t now_ns,
                        uint32_t ticket, fdn_breaker_outcome_t outcome);

/* While open: how long until it turns half-open (0 once due). Returns 0 and
 * sets *out, or FDN_ESTATE when not open.
 */
int fdn_breaker_remaining(fdn_breaker_t *breaker, uint64_t now_ns,
                          uint64_t *out);

/* Forces a state: closed (clearing failure counts and the window) or open
 * (starting a recovery period at `now_ns`). FDN_EINVAL for another state.
 */
int fdn_breaker_force(fdn_breaker_t *breaker, uint64_t now_ns,
                      fdn_breaker_state_t state);

const fdn_breaker_counts_t *fdn_breaker_counts(const fdn_breaker_t *breaker);

const char *fdn_breaker_state_name(fdn_breaker_state_t state);

#endif
