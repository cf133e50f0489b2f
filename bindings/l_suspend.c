/* Whether the caller may suspend here, for primitives written in Lua that
 * must know before they change anything (register a waiter, reserve a
 * token, spawn workers): a call that cannot suspend then fails at once,
 * naming the primitive, and leaves no trace.
 */
#include "lfdn.h"

/* suspendable() -> true when the calling coroutine is a task's own and
 * may yield here (not the main thread, not a nested coroutine, not inside
 * a C function such as a table.sort comparator).
 */
static int l_suspendable(lua_State *L) {
  lua_pushboolean(L, lfdn_suspendable_fast(L) != NULL);
  return 1;
}

/* check_suspendable(fname): returns nothing when the caller may suspend;
 * otherwise raises the InvalidState that says why, naming `fname`.
 */
static int l_check_suspendable(lua_State *L) {
  const char *fname;
  if (lfdn_suspendable_fast(L) != NULL)
    return 0;
  fname = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : "fdn";
  lfdn_suspendable(L, fname);
  return 0;
}

void lfdn_open_suspend(lua_State *L) {
  static const luaL_Reg funcs[] = {{"suspendable", l_suspendable},
                                   {"check_suspendable", l_check_suspendable},
                                   {NULL, NULL}};
  lfdn_register(L, funcs);
}
