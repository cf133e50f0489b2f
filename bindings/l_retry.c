/* The retry policy as Lua sees it: an immutable userdata built once per
 * decorator, and one call per retry that asks the core for the next wait.
 * The per-call state (attempt number, previous wait, start time) stays in
 * the Lua caller's locals, so a call that needs no retry costs nothing.
 */
#include "lfdn.h"
#include "lfdn_clock.h"

#define LFDN_RETRY_POLICY_MT "fdn.retry_policy"
#define FNAME "fdn.retry"

static fdn_retry_policy_t *check_policy(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, LFDN_RETRY_POLICY_MT);
}

/* retry_policy(max_attempts, delay, backoff, factor, max_delay, jitter,
 * deadline) -> policy. Times in seconds, math.huge for none; backoff and
 * jitter by name; max_attempts math.huge for unlimited.
 */
static int l_retry_policy(lua_State *L) {
  fdn_retry_policy_t p, *ud;
  const char *bad = NULL;
  lua_Number attempts = luaL_checknumber(L, 1);
  fdn_retry_policy_init(&p);
  if (!(attempts >= 1) ||
      (attempts < 4294967295.0 && attempts != (uint32_t)attempts))
    return lfdn_argerror(L, FNAME, "max_attempts",
                         "an integer >= 1 (or math.huge)", 1);
  p.max_attempts =
      attempts >= 4294967295.0 ? FDN_RETRY_UNLIMITED : (uint32_t)attempts;
  p.delay_ns = lfdn_clock_check_seconds(L, 2, FNAME, "delay");
  if (fdn_backoff_parse(luaL_checkstring(L, 3), &p.backoff) != 0)
    return lfdn_argerror(L, FNAME, "backoff",
                         "fixed, linear, exponential or fibonacci", 3);
  p.factor = luaL_checknumber(L, 4);
  p.max_delay_ns = lfdn_clock_check_seconds(L, 5, FNAME, "max_delay");
  if (fdn_jitter_parse(luaL_checkstring(L, 6), &p.jitter) != 0)
    return lfdn_argerror(L, FNAME, "jitter",
                         "none, full, equal or decorrelated", 6);
  p.deadline_ns = lfdn_clock_check_seconds(L, 7, FNAME, "deadline");
  if (fdn_retry_policy_check(&p, &bad) != 0)
    return lfdn_argerror(L, FNAME, bad,
                         p.backoff == FDN_BACKOFF_LINEAR
                             ? "a number >= 0 for linear backoff"
                             : "a number >= 1 for exponential backoff",
                         4);
  ud = lua_newuserdata(L, sizeof(*ud));
  *ud = p;
  luaL_getmetatable(L, LFDN_RETRY_POLICY_MT);
  lua_setmetatable(L, -2);
  return 1;
}

/* retry_next(policy, attempts, prev_wait, started, hint) -> wait, or nil,
 * verdict ("exhausted" | "deadline" | "limit"), wait, limit.
 *
 * `attempts` made so far; `prev_wait` the wait used before the latest
 * attempt (nil before the first retry); `started` the engine time of the
 * first attempt (nil when the policy has no deadline); `hint` a wait the
 * failure asked for (nil for none). The limit is the running task's
 * effective deadline (fdn.timeout); `limit` is returned relative to now.
 */
static int l_retry_next(lua_State *L) {
  static const char *const verdicts[] = {"wait", "exhausted", "deadline",
                                         "limit"};
  fdn_retry_policy_t *p = check_policy(L, 1);
  fdn_engine_t *engine = lfdn_clock_engine(L);
  fdn_retry_t r;
  uint64_t now = lfdn_clock_now(L), limit = FDN_FOREVER, hint, wait = 0;
  lua_Number attempts = luaL_checknumber(L, 2);
  fdn_retry_verdict_t verdict;
  r.policy = p;
  r.attempts = attempts >= 4294967295.0 ? UINT32_MAX
               : attempts < 1           ? 1
                                        : (uint32_t)attempts;
  r.prev_wait_ns = lua_isnoneornil(L, 3)
                       ? p->delay_ns
                       : lfdn_clock_check_seconds(L, 3, FNAME, "prev_wait");
  r.started_ns = now;
  if (!lua_isnoneornil(L, 4)) {
    lua_Number s = luaL_checknumber(L, 4);
    r.started_ns = s > 0 ? (uint64_t)(s * 1e9 + 0.5) : 0;
  }
  hint = FDN_RETRY_NO_HINT;
  if (!lua_isnoneornil(L, 5)) {
    hint = lfdn_clock_check_seconds(L, 5, FNAME, "retry_after");
    if (hint == FDN_RETRY_NO_HINT)
      hint--; /* "forever" is a hint too: the cap applies */
  }
  if (engine != NULL) {
    lfdn_task_t *task = lfdn_task_current(lfdn_state(L)->engine);
    if (task != NULL && fdn_task_deadline(&task->core, &limit) != 0)
      limit = FDN_FOREVER;
  }
  verdict = fdn_retry_next(&r, lfdn_clock_rng(L), now, limit, hint, &wait);
  if (verdict == FDN_RETRY_WAIT) {
    lua_pushnumber(L, lfdn_clock_seconds(wait));
    return 1;
  }
  if (verdict == FDN_RETRY_EXHAUSTED)
    wait = 0;
  lua_pushnil(L);
  lua_pushstring(L, verdicts[verdict]);
  lua_pushnumber(L, lfdn_clock_seconds(wait));
  lua_pushnumber(L, limit == FDN_FOREVER ? (lua_Number)HUGE_VAL
                    : limit > now        ? (lua_Number)(limit - now) / 1e9
                                         : 0.0);
  return 4;
}

/* current_deadline() -> seconds left before the running task's effective
 * deadline (0 once passed), or nil when none applies.
 */
static int l_current_deadline(lua_State *L) {
  lfdn_state_t *st = lfdn_state(L);
  lfdn_task_t *task =
      lfdn_clock_engine(L) ? lfdn_task_current(st->engine) : NULL;
  uint64_t deadline, now;
  if (task == NULL || fdn_task_deadline(&task->core, &deadline) != 0)
    return 0;
  now = fdn_engine_now(task->core.engine);
  lua_pushnumber(L, deadline > now ? (lua_Number)(deadline - now) / 1e9 : 0.0);
  return 1;
}

/* retry_delays(policy, n[, seed]) -> the first n waits (seconds), jittered
 * from a private RNG seeded with `seed`: a preview of the policy.
 */
static int l_retry_delays(lua_State *L) {
  fdn_retry_policy_t *p = check_policy(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2), k;
  fdn_rng_t rng;
  uint64_t prev = p->delay_ns;
  if (n < 0 || n > 100000)
    return lfdn_argerror(L, FNAME, "n", "an integer in [0, 100000]", 2);
  fdn_rng_seed(&rng, (uint64_t)luaL_optnumber(L, 3, 1));
  lua_createtable(L, (int)n, 0);
  for (k = 1; k <= n; k++) {
    prev = fdn_retry_delay(p, (uint32_t)k, prev, &rng);
    lua_pushnumber(L, lfdn_clock_seconds(prev));
    lua_rawseti(L, -2, (int)k);
  }
  return 1;
}

void lfdn_open_retry(lua_State *L) {
  static const luaL_Reg funcs[] = {{"retry_policy", l_retry_policy},
                                   {"retry_next", l_retry_next},
                                   {"retry_delays", l_retry_delays},
                                   {"current_deadline", l_current_deadline},
                                   {NULL, NULL}};
  luaL_newmetatable(L, LFDN_RETRY_POLICY_MT);
  lua_pop(L, 1);
  lfdn_register(L, funcs);
}
