/* Small system facts the Lua library needs: wall-clock time for log
 * records, whether a descriptor is a terminal, the process id.
 */
#include "lfdn.h"

/* wall_time() -> Unix seconds, with microseconds. */
static int l_wall_time(lua_State *L) {
  uv_timeval64_t tv;
  if (uv_gettimeofday(&tv) != 0)
    return luaL_error(L, "wall_time: gettimeofday failed");
  lua_pushnumber(L, (lua_Number)tv.tv_sec + (lua_Number)tv.tv_usec / 1e6);
  return 1;
}

/* isatty(fd) -> whether the descriptor is a terminal. */
static int l_isatty(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  lua_pushboolean(L, fd >= 0 && uv_guess_handle(fd) == UV_TTY);
  return 1;
}

static int l_getpid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)uv_os_getpid());
  return 1;
}

static fdn_rng_t *current_rng(lua_State *L) {
  lfdn_state_t *st = lfdn_state(L);
  if (st->engine != NULL && st->engine->core != NULL)
    return fdn_engine_rng(st->engine->core);
  return &st->rng;
}

/* random() -> [0, 1); random(n) -> integer in [1, n]. Draws from the
 * running engine's seeded RNG (so runs given a seed repeat), else from a
 * per-state one.
 */
static int l_random(lua_State *L) {
  fdn_rng_t *rng = current_rng(L);
  if (lua_isnoneornil(L, 1)) {
    lua_pushnumber(L, fdn_rng_double(rng));
    return 1;
  }
  if (lua_type(L, 1) != LUA_TNUMBER || !(lua_tonumber(L, 1) >= 1) ||
      lua_tonumber(L, 1) > 9007199254740992.0)
    return lfdn_argerror(L, "fdn.random", "n", "a number >= 1", 1);
  lua_pushnumber(
      L, (lua_Number)(fdn_rng_below(rng, (uint64_t)lua_tonumber(L, 1)) + 1));
  return 1;
}

void lfdn_open_sys(lua_State *L) {
  static const luaL_Reg funcs[] = {{"wall_time", l_wall_time},
                                   {"random", l_random},
                                   {"isatty", l_isatty},
                                   {"getpid", l_getpid},
                                   {NULL, NULL}};
  lfdn_register(L, funcs);
}
