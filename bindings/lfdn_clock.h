/* Helpers shared by the bindings of clock-driven core objects (retry
 * policy, breaker, rate limiter): the time and RNG of whichever engine is
 * running, so one object serves every engine (see docs/internals.md,
 * "Objects that outlive an engine").
 */
#ifndef FDN_LFDN_CLOCK_H
#define FDN_LFDN_CLOCK_H

#include <math.h>

#include "lfdn.h"

/* The running engine's core, or NULL outside fdn.run / fdn-lua. */
static inline fdn_engine_t *lfdn_clock_engine(lua_State *L) {
  lfdn_state_t *st = lfdn_state(L);
  return st->engine != NULL && !st->engine->closed ? st->engine->core : NULL;
}

/* Engine time in ns; the monotonic clock outside any engine. */
static inline uint64_t lfdn_clock_now(lua_State *L) {
  fdn_engine_t *engine = lfdn_clock_engine(L);
  return engine != NULL ? fdn_engine_now(engine) : uv_hrtime();
}

static inline fdn_rng_t *lfdn_clock_rng(lua_State *L) {
  fdn_engine_t *engine = lfdn_clock_engine(L);
  return engine != NULL ? fdn_engine_rng(engine) : &lfdn_state(L)->rng;
}

static inline lua_Number lfdn_clock_seconds(uint64_t ns) {
  return ns == FDN_FOREVER ? (lua_Number)HUGE_VAL : (lua_Number)ns / 1e9;
}

/* Reads a non-negative number of seconds at `idx` (math.huge: forever).
 * Returns 0, or raises InvalidArgument naming `fname` and `param`.
 */
static inline uint64_t lfdn_clock_check_seconds(lua_State *L, int idx,
                                                const char *fname,
                                                const char *param) {
  uint64_t ns = 0;
  if (lua_type(L, idx) != LUA_TNUMBER ||
      fdn_seconds_to_ns(lua_tonumber(L, idx), &ns) != 0)
    lfdn_argerror(L, fname, param, "a non-negative number of seconds", idx);
  return ns;
}

#endif
