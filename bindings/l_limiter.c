/* Limiters as Lua sees them: the userdata behind fdn.Semaphore.
 *
 * The userdata embeds the core limiter; its metatable's __index is
 * `core.limiter_methods`, which fdn/semaphore.lua completes with the
 * methods that suspend (their C halves are limiter_acquire here). A
 * limiter belongs to no engine, so one made at module level serves every
 * fdn.run in turn.
 */
#include <string.h>

#include "lfdn_wait.h"

/* Functions here carry [state, metatable] as upvalues. */
static fdn_limiter_t *check_limiter(lua_State *L, const char *fname) {
  return lfdn_check_self(L, 1, fname, "a Semaphore");
}

static uint64_t check_count(lua_State *L, int idx, const char *fname,
                            const char *param) {
  lua_Number n = lua_tonumber(L, idx);
  if (lua_type(L, idx) != LUA_TNUMBER || n != n || n < 0 ||
      n > 9007199254740992.0 || n != (lua_Number)(uint64_t)n)
    lfdn_argerror(L, fname, param, "a non-negative integer", idx);
  return (uint64_t)n;
}

/* limiter_new(n) -> a limiter with n permits. */
static int l_limiter_new(lua_State *L) {
  uint64_t n = check_count(L, 1, "Semaphore.new", "n");
  fdn_limiter_t *lim = lua_newuserdata(L, sizeof(*lim));
  memset(lim, 0, sizeof(*lim));
  fdn_limiter_init(lim, n);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setmetatable(L, -2);
  return 1;
}

/* limiter_acquire(lim, timeout[, fname]): nothing once a permit is held;
 * "st, cause" when the task was cancelled, timed out or the limiter closed
 * (see docs/internals.md for the protocol). A task woken with status 0 was
 * handed its permit. `fname` (default "Semaphore:acquire") names the
 * caller in the errors raised at once (Semaphore:with, TaskPool:submit).
 */
static const char *acquire_name(lua_State *L) {
  return lua_type(L, 3) == LUA_TSTRING ? lua_tostring(L, 3)
                                       : "Semaphore:acquire";
}

static int l_limiter_acquire(lua_State *L) {
  fdn_limiter_t *lim = lua_touserdata(L, 1);
  uint64_t timeout = FDN_FOREVER;
  lfdn_task_t *task;
  int rc;
  /* The name is looked up only on the way to an error: acquire is hot. */
  if (lim == NULL || !lua_getmetatable(L, 1) ||
      !lua_rawequal(L, -1, lua_upvalueindex(2)))
    return lfdn_argerror(L, acquire_name(L), "self", "a Semaphore", 1);
  lua_pop(L, 1);
  if (!lua_isnoneornil(L, 2))
    timeout = lfdn_check_timeout(L, 2, acquire_name(L));
  task = lfdn_parkable_task(L);
  rc = fdn_limiter_acquire(lim, task ? &task->core : NULL, timeout);
  if (rc == 1)
    return 0;
  if (rc == 0)
    return lfdn_yield(L, task, "Semaphore:acquire");
  return lfdn_wait_failed(L, task, rc, acquire_name(L));
}

static int l_try_acquire(lua_State *L) {
  fdn_limiter_t *lim = check_limiter(L, "Semaphore:try_acquire");
  int rc = fdn_limiter_try_acquire(lim);
  if (rc == FDN_ECLOSED)
    return lfdn_raise(L, "Closed", "Semaphore:try_acquire: closed");
  lua_pushboolean(L, rc == 0);
  return 1;
}

static int l_release(lua_State *L) {
  fdn_limiter_t *lim = check_limiter(L, "Semaphore:release");
  if (fdn_limiter_release(lim) != 0)
    return lfdn_raise(L, "InvalidState",
                      "Semaphore:release: released more times than acquired "
                      "(no permit is held)");
  return 0;
}

static int l_resize(lua_State *L) {
  fdn_limiter_t *lim = check_limiter(L, "Semaphore:resize");
  fdn_limiter_resize(lim, check_count(L, 2, "Semaphore:resize", "n"));
  return 0;
}

static int l_close(lua_State *L) {
  fdn_limiter_close(check_limiter(L, "Semaphore:close"));
  return 0;
}

static int l_available(lua_State *L) {
  fdn_limiter_t *lim = check_limiter(L, "Semaphore:available");
  lua_pushnumber(L, (lua_Number)fdn_limiter_available(lim));
  return 1;
}

static int l_limit(lua_State *L) {
  fdn_limiter_t *lim = check_limiter(L, "Semaphore:limit");
  lua_pushnumber(L, (lua_Number)fdn_limiter_limit(lim));
  return 1;
}

static int l_held(lua_State *L) {
  fdn_limiter_t *lim = check_limiter(L, "Semaphore:held");
  lua_pushnumber(L, (lua_Number)fdn_limiter_held(lim));
  return 1;
}

static int l_waiting(lua_State *L) {
  fdn_limiter_t *lim = check_limiter(L, "Semaphore:waiting");
  lua_pushnumber(L, (lua_Number)fdn_limiter_waiting(lim));
  return 1;
}

static int l_is_closed(lua_State *L) {
  fdn_limiter_t *lim = check_limiter(L, "Semaphore:is_closed");
  lua_pushboolean(L, fdn_limiter_closed(lim));
  return 1;
}

static int l_tostring(lua_State *L) {
  fdn_limiter_t *lim = lua_touserdata(L, 1);
  lua_pushfstring(L, "fdn.Semaphore(%d of %d held, %d waiting)",
                  (int)fdn_limiter_held(lim), (int)fdn_limiter_limit(lim),
                  (int)fdn_limiter_waiting(lim));
  return 1;
}

void lfdn_open_limiter(lua_State *L) {
  static const luaL_Reg methods[] = {{"try_acquire", l_try_acquire},
                                     {"release", l_release},
                                     {"resize", l_resize},
                                     {"close", l_close},
                                     {"available", l_available},
                                     {"limit", l_limit},
                                     {"held", l_held},
                                     {"waiting", l_waiting},
                                     {"is_closed", l_is_closed},
                                     {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"limiter_new", l_limiter_new},
                                   {"limiter_acquire", l_limiter_acquire},
                                   {NULL, NULL}};
  lfdn_open_class(L, "fdn.Semaphore", "limiter_methods", methods, NULL,
                  l_tostring, funcs);
}
