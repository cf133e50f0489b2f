/* Helpers shared by the bindings of the waiting primitives (limiter,
 * channel, event): they park only when they must, and take the running
 * task from the engine of whoever calls, never from the object.
 */
#ifndef FDN_LFDN_WAIT_H
#define FDN_LFDN_WAIT_H

#include "lfdn.h"

/* The running task when it may park right here, else NULL: outside any
 * task, in a nested coroutine, or where the VM cannot yield. A primitive
 * passes NULL to the core so that it never parks, and only when it would
 * have to wait calls lfdn_suspendable() to raise the precise error.
 */
static inline lfdn_task_t *lfdn_parkable_task(lua_State *L) {
  lfdn_state_t *st = lfdn_state(L);
  lfdn_task_t *task = lfdn_task_current(st->engine);
  if (task == NULL || task->co != L || !lua_isyieldable(L))
    return NULL;
  return task;
}

/* Reads an optional timeout in seconds: nil means forever. */
static inline uint64_t lfdn_check_timeout(lua_State *L, int idx,
                                          const char *fname) {
  uint64_t ns = FDN_FOREVER;
  if (lua_isnoneornil(L, idx))
    return ns;
  if (lua_type(L, idx) != LUA_TNUMBER ||
      fdn_seconds_to_ns(lua_tonumber(L, idx), &ns) != 0)
    lfdn_argerror(L, fname, "timeout", "nil or a non-negative number", idx);
  return ns;
}

/* Checks that L[idx] is a userdata with the metatable in upvalue 2. */
static inline void *lfdn_check_self(lua_State *L, int idx, const char *fname,
                                    const char *expected) {
  void *p = lua_touserdata(L, idx);
  if (p == NULL || !lua_getmetatable(L, idx) ||
      !lua_rawequal(L, -1, lua_upvalueindex(2)))
    lfdn_argerror(L, fname, "self", expected, idx);
  lua_pop(L, 1);
  return p;
}

/* What a primitive returns when a wait fails without raising: the status
 * and the cancel cause (the protocol of docs/internals.md). Raises for any
 * status other than cancelled, timed out or closed; the EAGAIN of a caller
 * that may not park raises the error saying why.
 */
static inline int lfdn_wait_failed(lua_State *L, lfdn_task_t *task, int rc,
                                   const char *fname) {
  switch (rc) {
  case FDN_ECANCELED:
  case FDN_ETIMEDOUT:
  case FDN_ECLOSED:
    lua_pushinteger(L, rc);
    lua_pushinteger(L, task ? (int)fdn_task_cancel_pending(&task->core) : 0);
    return 2;
  default:
    if (rc == FDN_EAGAIN)
      lfdn_suspendable(L, fname); /* raises, saying why it cannot wait */
    return lfdn_raise_code(L, fname, rc);
  }
}

/* Registers `funcs` into the table on top of L with [state, mt] as
 * upvalues; `state` and `mt` are absolute indices.
 */
static inline void lfdn_register_with_mt(lua_State *L, const luaL_Reg *funcs,
                                         int state, int mt) {
  lua_pushvalue(L, state);
  lua_pushvalue(L, mt);
  luaL_setfuncs(L, funcs, 2);
}

/* Builds the class of a waitable userdata and registers its module
 * functions: a metatable whose __index is `methods` (also exported as
 * module[methods_field]), with `meta` metamethods (or NULL), __tostring
 * and __name; then `funcs` go into the module. Methods, metamethods and
 * functions all get [state, metatable] as upvalues. Expects [module, state]
 * on top of L and leaves them.
 */
static inline void lfdn_open_class(lua_State *L, const char *name,
                                   const char *methods_field,
                                   const luaL_Reg *methods,
                                   const luaL_Reg *meta, lua_CFunction tostring,
                                   const luaL_Reg *funcs) {
  int state = lua_gettop(L), module = state - 1, mt;
  lua_newtable(L);
  mt = lua_gettop(L);
  lua_newtable(L);
  lfdn_register_with_mt(L, methods, state, mt);
  lua_pushvalue(L, -1);
  lua_setfield(L, module, methods_field);
  lua_setfield(L, mt, "__index");
  if (meta != NULL) {
    lua_pushvalue(L, mt);
    lfdn_register_with_mt(L, meta, state, mt);
    lua_pop(L, 1);
  }
  lua_pushcfunction(L, tostring);
  lua_setfield(L, mt, "__tostring");
  lua_pushstring(L, name);
  lua_setfield(L, mt, "__name");
  lua_pushvalue(L, module);
  lfdn_register_with_mt(L, funcs, state, mt);
  lua_settop(L, state);
}

#endif
