/* park_for(seconds): like park(), with a deadline. */
#include "lfdn.h"

/* park_for(seconds[, fname]): parks the running task until core.wake()
 * wakes it ("false, value") or `seconds` pass ("ETIMEDOUT, cause"); "st,
 * cause" when cancelled. For schedulers that sleep until a deadline but
 * must be woken early (paused, stopped) without being cancelled. `fname`
 * names the caller where it cannot suspend.
 */
static int l_park_for(lua_State *L) {
  lfdn_task_t *task;
  uint64_t ns;
  int rc;
  if (lua_type(L, 1) != LUA_TNUMBER ||
      fdn_seconds_to_ns(lua_tonumber(L, 1), &ns) != 0)
    return lfdn_argerror(L, "fdn.park_for", "seconds", "a non-negative number",
                         1);
  task = lfdn_suspendable(L, lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2)
                                                           : "fdn.park_for");
  rc = fdn_task_park(&task->core, ns);
  if (rc != 0)
    return lfdn_push_park_failure(L, task, rc, "fdn.park_for");
  task->flags |= LFDN_TASK_PARKED;
  return lfdn_yield(L, task, "fdn.park_for");
}

void lfdn_open_park(lua_State *L) {
  static const luaL_Reg funcs[] = {{"park_for", l_park_for}, {NULL, NULL}};
  lfdn_register(L, funcs);
}
