/* Events as Lua sees them: the userdata behind fdn.Event. Setting one
 * wakes every waiter in a single C call, however many there are.
 */
#include <string.h>

#include "lfdn_wait.h"

static fdn_event_t *check_event(lua_State *L, const char *fname) {
  return lfdn_check_self(L, 1, fname, "an Event");
}

static int l_event_new(lua_State *L) {
  fdn_event_t *ev = lua_newuserdata(L, sizeof(*ev));
  memset(ev, 0, sizeof(*ev));
  fdn_event_init(ev);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setmetatable(L, -2);
  return 1;
}

/* event_wait(ev, timeout[, fname]): nothing once the event is set; "st,
 * cause" when cancelled or timed out. `fname` (default "Event:wait") names
 * the caller in the errors raised at once.
 */
static int l_event_wait(lua_State *L) {
  const char *fname =
      lua_type(L, 3) == LUA_TSTRING ? lua_tostring(L, 3) : "Event:wait";
  fdn_event_t *ev = check_event(L, fname);
  uint64_t timeout = lfdn_check_timeout(L, 2, fname);
  lfdn_task_t *task = lfdn_parkable_task(L);
  int rc;
  if (task == NULL) {
    if (fdn_event_is_set(ev))
      return 0;
    lfdn_suspendable(L, fname);
  }
  rc = fdn_event_wait(ev, &task->core, timeout);
  if (rc == 1)
    return 0;
  if (rc == 0)
    return lfdn_yield(L, task, "Event:wait");
  return lfdn_wait_failed(L, task, rc, fname);
}

static int l_set(lua_State *L) {
  fdn_event_set(check_event(L, "Event:set"));
  return 0;
}

static int l_clear(lua_State *L) {
  fdn_event_clear(check_event(L, "Event:clear"));
  return 0;
}

static int l_is_set(lua_State *L) {
  lua_pushboolean(L, fdn_event_is_set(check_event(L, "Event:is_set")));
  return 1;
}

static int l_waiting(lua_State *L) {
  fdn_event_t *ev = check_event(L, "Event:waiting");
  lua_pushnumber(L, (lua_Number)fdn_event_waiting(ev));
  return 1;
}

static int l_tostring(lua_State *L) {
  fdn_event_t *ev = lua_touserdata(L, 1);
  lua_pushfstring(L, "fdn.Event(%s, %d waiting)",
                  fdn_event_is_set(ev) ? "set" : "clear",
                  (int)fdn_event_waiting(ev));
  return 1;
}

void lfdn_open_event(lua_State *L) {
  static const luaL_Reg methods[] = {{"set", l_set},
                                     {"clear", l_clear},
                                     {"is_set", l_is_set},
                                     {"waiting", l_waiting},
                                     {NULL, NULL}};
  static const luaL_Reg funcs[] = {
      {"event_new", l_event_new}, {"event_wait", l_event_wait}, {NULL, NULL}};
  lfdn_open_class(L, "fdn.Event", "event_methods", methods, NULL, l_tostring,
                  funcs);
}
