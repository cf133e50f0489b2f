/* Task-local context: each task has a context table, inherited (shared, not
 * copied) by the tasks it spawns. fdn/context.lua never mutates an installed
 * table, so sharing is copy-on-write.
 */
#include "lfdn.h"

/* context_get() -> the running task's context table, or nil. */
static int l_context_get(lua_State *L) {
  lfdn_state_t *st = lfdn_state(L);
  lfdn_task_t *task = lfdn_task_current(st->engine);
  if (task == NULL)
    return 0;
  lfdn_state_push_anchor(st, task->slot, LFDN_ANCHOR_CTX);
  lua_xmove(st->S, L, 1);
  return 1;
}

/* context_set(table|nil) -> true when there is a running task to set it on. */
static int l_context_set(lua_State *L) {
  lfdn_state_t *st = lfdn_state(L);
  lfdn_task_t *task = lfdn_task_current(st->engine);
  if (!lua_isnoneornil(L, 1) && !lua_istable(L, 1))
    return lfdn_argerror(L, "fdn.context.set", "context", "a table", 1);
  if (task == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_settop(L, 1);
  lua_xmove(L, st->S, 1);
  lfdn_state_set_anchor(st, task->slot, LFDN_ANCHOR_CTX);
  task->flags |= LFDN_TASK_HAS_CTX;
  lua_pushboolean(L, 1);
  return 1;
}

void lfdn_open_context(lua_State *L) {
  static const luaL_Reg funcs[] = {{"context_get", l_context_get},
                                   {"context_set", l_context_set},
                                   {NULL, NULL}};
  lfdn_register(L, funcs);
}
