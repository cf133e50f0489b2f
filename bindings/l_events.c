/* Task lifecycle events: the bridge from the scheduler to fdn.events.
 *
 * fdn/events.lua installs a hook only while someone subscribes to a task
 * event, so a task that fails or is cancelled with nobody listening pays a
 * single raw table read.
 */
#include <stdio.h>

#include "lfdn.h"

/* set_task_event_hook(fn|nil): fn(kind, task, err, traceback) is called
 * when a task fails ("failed") or ends cancelled ("cancelled").
 */
static int l_set_task_event_hook(lua_State *L) {
  lfdn_state_t *st = lfdn_state(L);
  if (!lua_isnoneornil(L, 1) && !lua_isfunction(L, 1))
    return lfdn_argerror(L, "set_task_event_hook", "fn", "a function or nil",
                         1);
  lua_settop(L, 1);
  lua_xmove(L, st->S, 1);
  lua_rawseti(st->S, LFDN_S_HOOKS, LFDN_HOOK_TASK_EVENT);
  return 0;
}

void lfdn_task_event(lfdn_task_t *task, const char *kind, lua_State *from,
                     int traceback) {
  lfdn_state_t *st = task->st;
  lua_State *W = st->W;
  int top = lua_gettop(W), err = lua_gettop(from);
  lua_rawgeti(st->S, LFDN_S_HOOKS, LFDN_HOOK_TASK_EVENT);
  if (lua_isnil(st->S, -1)) {
    lua_pop(st->S, 1);
    return;
  }
  /* Everything below allocates or calls, so it happens on W (see lfdn.h). */
  lua_checkstack(W, 6);
  lua_xmove(st->S, W, 1);
  lua_pushstring(W, kind);
  lfdn_task_push(W, task);
  lua_pushvalue(from, err);
  if (from != W)
    lua_xmove(from, W, 1);
  if (traceback)
    lua_pushvalue(W, top);
  else
    lua_pushnil(W);
  if (lua_pcall(W, 4, 0, 0) != 0)
    fprintf(stderr, "fdn: the task event hook failed: %s\n",
            lua_tostring(W, -1) ? lua_tostring(W, -1) : "(error object)");
  lua_settop(W, top);
}

void lfdn_open_events(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"set_task_event_hook", l_set_task_event_hook}, {NULL, NULL}};
  lfdn_register(L, funcs);
}
