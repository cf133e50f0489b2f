/* How many references the binding holds: what the reliability matrices
 * compare with a baseline to prove that nothing leaked (a task slot, a
 * registry reference) once everything that used them is gone.
 */
#include "lfdn.h"

/* References in use in the registry: its positive integer keys
 * (luaL_ref's) that are not on the free list, which luaL_unref chains from
 * key 0 and leaves in place.
 */
static lua_Number registry_refs(lua_State *L) {
  lua_Number refs = 0;
  int free_ref, freed;
  lua_newtable(L);
  freed = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, 0);
  free_ref = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  while (free_ref > 0) {
    lua_pushboolean(L, 1);
    lua_rawseti(L, freed, free_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, free_ref);
    free_ref = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, LUA_REGISTRYINDEX) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) > 0) {
      lua_rawgeti(L, freed, (int)lua_tointeger(L, -1));
      if (lua_isnil(L, -1))
        refs++;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return refs;
}

/* anchor_stats() -> {slots = task slot groups in use, ever = slot groups
 * ever handed out, pooled = coroutines kept for reuse, registry = luaL_ref
 * references in use in the Lua registry, worker_stack and scratch_stack =
 * values left on the binding's two threads (0 when balanced)}.
 */
static int l_anchor_stats(lua_State *L) {
  lfdn_state_t *st = lfdn_state(L);
  lua_Number registry = registry_refs(L);
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, (lua_Number)(st->next_slot - st->nfree));
  lua_setfield(L, -2, "slots");
  lua_pushnumber(L, (lua_Number)st->next_slot);
  lua_setfield(L, -2, "ever");
  lua_pushnumber(L, (lua_Number)st->pool_len);
  lua_setfield(L, -2, "pooled");
  lua_pushnumber(L, registry);
  lua_setfield(L, -2, "registry");
  /* Values left on the binding's own threads would be held forever. */
  lua_pushnumber(L, (lua_Number)lua_gettop(st->W));
  lua_setfield(L, -2, "worker_stack");
  lua_pushnumber(L, (lua_Number)(lua_gettop(st->S) - LFDN_S_TOP));
  lua_setfield(L, -2, "scratch_stack");
  return 1;
}

void lfdn_open_anchors(lua_State *L) {
  static const luaL_Reg funcs[] = {{"anchor_stats", l_anchor_stats},
                                   {NULL, NULL}};
  lfdn_register(L, funcs);
}
