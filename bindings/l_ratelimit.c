/* The token bucket for Lua (fdn.RateLimiter is the facade). Waiting is the
 * caller's own sleep: ratelimit_reserve says how long.
 */
#include "lfdn.h"
#include "lfdn_clock.h"

#define LFDN_RATELIMIT_MT "fdn.ratelimit"

static fdn_ratelimit_t *check_limiter(lua_State *L) {
  return luaL_checkudata(L, 1, LFDN_RATELIMIT_MT);
}

/* Token count at idx (default 1), within (0, burst]. */
static double check_tokens(lua_State *L, fdn_ratelimit_t *rl, int idx,
                           const char *fname) {
  double n;
  if (lua_isnoneornil(L, idx))
    return 1.0;
  n = lua_tonumber(L, idx);
  if (lua_type(L, idx) != LUA_TNUMBER || !(n > 0.0) ||
      n > fdn_ratelimit_burst(rl))
    lfdn_argerror(L, fname, "tokens", "a number in (0, burst]", idx);
  return n;
}

/* ratelimit_new(rate, burst) -> limiter */
static int l_ratelimit_new(lua_State *L) {
  fdn_ratelimit_t *rl;
  double rate = lua_tonumber(L, 1), burst = lua_tonumber(L, 2);
  if (lua_type(L, 1) != LUA_TNUMBER || !(rate > 0.0 && rate < 1e300))
    return lfdn_argerror(L, "fdn.RateLimiter.new", "rate",
                         "a positive number of tokens per second", 1);
  if (lua_type(L, 2) != LUA_TNUMBER || !(burst >= 1.0 && burst < 1e300))
    return lfdn_argerror(L, "fdn.RateLimiter.new", "burst", "a number >= 1", 2);
  rl = lua_newuserdata(L, sizeof(*rl));
  fdn_ratelimit_init(rl, rate, burst, lfdn_clock_now(L));
  luaL_getmetatable(L, LFDN_RATELIMIT_MT);
  lua_setmetatable(L, -2);
  return 1;
}

/* ratelimit_try(rl, n) -> boolean */
static int l_ratelimit_try(lua_State *L) {
  fdn_ratelimit_t *rl = check_limiter(L);
  double n = check_tokens(L, rl, 2, "RateLimiter:try_acquire");
  lua_pushboolean(L, fdn_ratelimit_try_acquire(rl, lfdn_clock_now(L), n) == 0);
  return 1;
}

/* ratelimit_reserve(rl, n, max_wait|nil) -> wait (reserved), or nil, wait
 * (over max_wait: nothing reserved).
 */
static int l_ratelimit_reserve(lua_State *L) {
  fdn_ratelimit_t *rl = check_limiter(L);
  double n = check_tokens(L, rl, 2, "RateLimiter:acquire");
  uint64_t max_wait = FDN_FOREVER, wait = 0;
  if (!lua_isnoneornil(L, 3))
    max_wait = lfdn_clock_check_seconds(L, 3, "RateLimiter:acquire", "timeout");
  if (fdn_ratelimit_reserve(rl, lfdn_clock_now(L), n, max_wait, &wait) != 0) {
    lua_pushnil(L);
    lua_pushnumber(L, lfdn_clock_seconds(wait));
    return 2;
  }
  lua_pushnumber(L, lfdn_clock_seconds(wait));
  return 1;
}

/* ratelimit_cancel(rl, n): gives back a reservation that will not be used. */
static int l_ratelimit_cancel(lua_State *L) {
  fdn_ratelimit_t *rl = check_limiter(L);
  fdn_ratelimit_cancel(rl, lfdn_clock_now(L), luaL_checknumber(L, 2));
  return 0;
}

/* ratelimit_info(rl) -> tokens now, rate, burst */
static int l_ratelimit_info(lua_State *L) {
  fdn_ratelimit_t *rl = check_limiter(L);
  lua_pushnumber(L, fdn_ratelimit_tokens(rl, lfdn_clock_now(L)));
  lua_pushnumber(L, fdn_ratelimit_rate(rl));
  lua_pushnumber(L, fdn_ratelimit_burst(rl));
  return 3;
}

void lfdn_open_ratelimit(lua_State *L) {
  static const luaL_Reg funcs[] = {{"ratelimit_new", l_ratelimit_new},
                                   {"ratelimit_try", l_ratelimit_try},
                                   {"ratelimit_reserve", l_ratelimit_reserve},
                                   {"ratelimit_cancel", l_ratelimit_cancel},
                                   {"ratelimit_info", l_ratelimit_info},
                                   {NULL, NULL}};
  luaL_newmetatable(L, LFDN_RATELIMIT_MT);
  lua_pop(L, 1);
  lfdn_register(L, funcs);
}
