/* Cancel scopes: the mechanism under fdn.timeout and shielded cleanups. */
#include <string.h>

#include "lfdn.h"

typedef struct {
  fdn_scope_t core;
} lfdn_scope_t;

/* scope_enter(seconds|nil, shield): enters a scope on the running task and
 * returns it; returns nothing outside a task (nothing to scope).
 */
static int l_scope_enter(lua_State *L) {
  lfdn_state_t *st = lfdn_state(L);
  lfdn_task_t *task = lfdn_task_current(st->engine);
  uint64_t deadline = FDN_FOREVER, ns;
  lfdn_scope_t *scope;
  int rc;
  if (!lua_isnil(L, 1)) {
    if (lua_type(L, 1) != LUA_TNUMBER ||
        fdn_seconds_to_ns(lua_tonumber(L, 1), &ns) != 0)
      return lfdn_argerror(L, "fdn.timeout", "seconds", "a non-negative number",
                           1);
  }
  if (task == NULL || task->co != L)
    return 0;
  if (!lua_isnil(L, 1) && ns != FDN_FOREVER) {
    uint64_t now = fdn_engine_now(task->core.engine);
    deadline = ns > FDN_FOREVER - now ? FDN_FOREVER : now + ns;
  }
  scope = lua_newuserdata(L, sizeof(*scope));
  memset(scope, 0, sizeof(*scope));
  luaL_getmetatable(L, LFDN_SCOPE_MT);
  lua_setmetatable(L, -2);
  rc =
      fdn_scope_enter(&task->core, &scope->core, deadline, lua_toboolean(L, 2));
  if (rc != 0)
    return lfdn_raise_code(L, "fdn.timeout", rc);
  return 1;
}

/* scope_exit(scope) -> expired, still_cancelled: whether this scope's
 * deadline passed, and whether a cancellation from outside it is pending.
 */
static int l_scope_exit(lua_State *L) {
  lfdn_scope_t *scope = luaL_checkudata(L, 1, LFDN_SCOPE_MT);
  fdn_task_t *task = scope->core.task;
  int rc = fdn_scope_exit(&scope->core);
  if (rc < 0)
    return lfdn_raise(L, "InvalidState",
                      "scope exited out of order (scopes must nest)");
  lua_pushboolean(L, rc == 1);
  lua_pushboolean(L, task != NULL &&
                         fdn_task_cancel_pending(task) != FDN_CANCEL_NONE);
  return 2;
}

/* scope_cancel(scope): cancels what runs inside the scope (a structured
 * scope stopping its body); returns false once the scope was exited.
 */
static int l_scope_cancel(lua_State *L) {
  lfdn_scope_t *scope = luaL_checkudata(L, 1, LFDN_SCOPE_MT);
  lua_pushboolean(L, fdn_scope_cancel(&scope->core) == 0);
  return 1;
}

/* cancel_pending() -> cause: 0 none, 1 the task's own, 2 a deadline, 3 a
 * cancelled scope.
 */
static int l_cancel_pending(lua_State *L) {
  lfdn_state_t *st = lfdn_state(L);
  lfdn_task_t *task = lfdn_task_current(st->engine);
  lua_pushinteger(L, task ? (int)fdn_task_cancel_pending(&task->core) : 0);
  return 1;
}

void lfdn_open_scope(lua_State *L) {
  static const luaL_Reg funcs[] = {{"scope_enter", l_scope_enter},
                                   {"scope_exit", l_scope_exit},
                                   {"cancel_pending", l_cancel_pending},
                                   {"scope_cancel", l_scope_cancel},
                                   {NULL, NULL}};
  luaL_newmetatable(L, LFDN_SCOPE_MT);
  lua_pop(L, 1);
  lua_pushinteger(L, FDN_CANCEL_SCOPE);
  lua_setfield(L, -3, "CANCEL_SCOPE");
  lfdn_register(L, funcs);
}
