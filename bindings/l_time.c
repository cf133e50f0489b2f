/* fdn.sleep and fdn.now. */
#include "lfdn.h"

/* The name an error raised at once should give: the string at `idx`
 * (the Lua primitive that called in here), else `fallback`.
 */
static const char *caller_name(lua_State *L, int idx, const char *fallback) {
  return lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : fallback;
}

/* sleep(seconds[, fname]): nothing on a normal wake; "st, cause" when
 * cancelled. `fname` names the caller in the error raised where it cannot
 * suspend (RateLimiter:acquire sleeping, say).
 */
static int l_sleep(lua_State *L) {
  lfdn_task_t *task;
  uint64_t ns;
  int rc;
  if (lua_type(L, 1) != LUA_TNUMBER ||
      fdn_seconds_to_ns(lua_tonumber(L, 1), &ns) != 0)
    return lfdn_argerror(L, "fdn.sleep", "seconds", "a non-negative number", 1);
  task = lfdn_suspendable_fast(L);
  if (task == NULL)
    task = lfdn_suspendable(L, caller_name(L, 2, "fdn.sleep"));
  rc = ns == 0 ? fdn_task_yield(&task->core) : fdn_task_sleep(&task->core, ns);
  if (rc != 0)
    return lfdn_push_park_failure(L, task, rc, "fdn.sleep");
  task->where = "fdn.sleep";
  return lua_yield(L, 0);
}

static int l_now(lua_State *L) {
  lfdn_state_t *st = lfdn_state(L);
  uint64_t ns = st->engine != NULL && st->engine->core != NULL
                    ? fdn_engine_now(st->engine->core)
                    : uv_hrtime();
  lua_pushnumber(L, (lua_Number)ns / 1e9);
  return 1;
}

/* park([fname]): parks the running task until wake() (or a cancellation)
 * wakes it: the park/wake pair for primitives written in Lua. Returns
 * "false, value" when woken by wake(), "st, cause" when cancelled.
 * `fname` names the caller where it cannot suspend.
 */
static int l_park(lua_State *L) {
  lfdn_task_t *task = lfdn_suspendable(L, caller_name(L, 1, "fdn.park"));
  int rc = fdn_task_park(&task->core, FDN_FOREVER);
  if (rc != 0)
    return lfdn_push_park_failure(L, task, rc, "fdn.park");
  task->flags |= LFDN_TASK_PARKED;
  return lfdn_yield(L, task, "fdn.park");
}

/* wake(task[, value]): wakes a task parked by park(); its park() returns
 * false, value. Returns true when the task was parked there, false
 * otherwise: a task waiting in anything else is left alone.
 */
static int l_wake(lua_State *L) {
  lfdn_task_t *task = lfdn_task_check(L, 1, "fdn.wake");
  if (fdn_task_state(&task->core) != FDN_TASK_WAITING ||
      !(task->flags & LFDN_TASK_PARKED)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  task->flags &= (uint16_t)~LFDN_TASK_PARKED;
  lua_settop(L, 2);
  lua_pushboolean(task->co, 0);
  lua_xmove(L, task->co, 1);
  fdn_task_wake(&task->core, 0);
  lua_pushboolean(L, 1);
  return 1;
}

void lfdn_open_time(lua_State *L) {
  static const luaL_Reg funcs[] = {{"sleep", l_sleep},
                                   {"now", l_now},
                                   {"park", l_park},
                                   {"wake", l_wake},
                                   {NULL, NULL}};
  lfdn_register(L, funcs);
}
