/* luaopen_fdn_core: the C module under lua/fdn. */
#include <stdlib.h>
#include <string.h>

#include "lfdn.h"
#include "lfdn_opens.h" /* generated: LFDN_OPEN_FUNCTIONS */

#define LFDN_STATE_KEY "fdn.state"

void lfdn_register(lua_State *L, const luaL_Reg *funcs) {
  int state = lua_gettop(L);
  lua_pushvalue(L, state - 1);
  lua_pushvalue(L, state);
  luaL_setfuncs(L, funcs, 1);
  lua_settop(L, state);
}

/* Called by lfdn_vm_sync: entering the VM is all it is for. */
static int vm_sync_noop(lua_State *L) {
  (void)L;
  return 0;
}

static int l_state_gc(lua_State *L) {
  lfdn_state_t *st = lua_touserdata(L, 1);
  if (st->closed)
    return 0;
  if (st->engine != NULL)
    lfdn_engine_close_lua(L, st->engine);
  st->closed = 1;
  free(st->free_slots);
  st->free_slots = NULL;
  return 0;
}

/* set_hooks{make_error = f, is_cancelled = f, report = f, report_later = f,
 * flush_later = f} */
static int l_set_hooks(lua_State *L) {
  static const struct {
    const char *name;
    int slot;
  } hooks[] = {{"make_error", LFDN_HOOK_MAKE_ERROR},
               {"is_cancelled", LFDN_HOOK_IS_CANCELLED},
               {"report", LFDN_HOOK_REPORT},
               {"report_later", LFDN_HOOK_REPORT_LATER},
               {"flush_later", LFDN_HOOK_FLUSH_LATER}};
  lfdn_state_t *st = lfdn_state(L);
  size_t i;
  luaL_checktype(L, 1, LUA_TTABLE);
  for (i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
    lua_getfield(L, 1, hooks[i].name);
    if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
      return luaL_error(L, "set_hooks: %s must be a function", hooks[i].name);
    lua_xmove(L, st->S, 1);
    lua_rawseti(st->S, LFDN_S_HOOKS, hooks[i].slot);
  }
  return 0;
}

static lfdn_state_t *new_state(lua_State *L) {
  lfdn_state_t *st = lua_newuserdata(L, sizeof(*st));
  lua_State *S;
  int i;
  memset(st, 0, sizeof(*st));
  st->closed = 1;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, l_state_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  S = lua_newthread(L);
  st->S_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  st->S = S;
  st->W = lua_newthread(L);
  st->W_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* Built on L and moved over: S itself never allocates (see lfdn.h). */
  for (i = 1; i <= LFDN_S_TOP; i++) {
    /* The pool's and the hooks' arrays are made full size at once: they
     * are written on S (the pool from a libuv callback), where growing a
     * table, which may fail, is not allowed.
     */
    lua_createtable(L,
                    i == LFDN_S_POOL    ? LFDN_POOL_MAX
                    : i == LFDN_S_HOOKS ? 8
                                        : 0,
                    0);
    if (i == LFDN_S_NAMES) {
      /* Names follow the handle's life, not the other way round. */
      lua_createtable(L, 0, 1);
      lua_pushliteral(L, "k");
      lua_setfield(L, -2, "__mode");
      lua_setmetatable(L, -2);
    }
    lua_xmove(L, S, 1);
  }
  /* Growing the anchors copies them in Lua: JIT-compiled, a few
   * instructions an entry, where the C API costs some eighty.
   */
  if (luaL_loadstring(L, "local from, to, n = ...\n"
                         "for i = 1, n do to[i] = from[i] end") != 0)
    lua_error(L);
  lua_xmove(L, S, 1);
  lua_rawseti(S, LFDN_S_HOOKS, LFDN_HOOK_COPY_ARRAY);
  lua_pushcfunction(L, vm_sync_noop);
  lua_xmove(L, S, 1);
  lua_rawseti(S, LFDN_S_HOOKS, LFDN_HOOK_VM_SYNC);
  fdn_rng_seed(&st->rng, fdn_rng_entropy());
  st->closed = 0;
  return st;
}

int luaopen_fdn_core(lua_State *L) {
  static const luaL_Reg funcs[] = {{"set_hooks", l_set_hooks}, {NULL, NULL}};
  lfdn_state_t *st;
  lua_newtable(L);
  lua_getfield(L, LUA_REGISTRYINDEX, LFDN_STATE_KEY);
  st = lua_touserdata(L, -1);
  if (st == NULL) {
    lua_pop(L, 1);
    new_state(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, LFDN_STATE_KEY);
  }
  lfdn_register(L, funcs);
#define LFDN_OPEN(fn) fn(L);
  LFDN_OPEN_FUNCTIONS(LFDN_OPEN)
#undef LFDN_OPEN
  lua_pop(L, 1);
  lua_pushinteger(L, FDN_ECANCELED);
  lua_setfield(L, -2, "ECANCELED");
  lua_pushinteger(L, FDN_ETIMEDOUT);
  lua_setfield(L, -2, "ETIMEDOUT");
  lua_pushinteger(L, FDN_ECLOSED);
  lua_setfield(L, -2, "ECLOSED");
  lua_pushinteger(L, FDN_CANCEL_TASK);
  lua_setfield(L, -2, "CANCEL_TASK");
  lua_pushinteger(L, FDN_CANCEL_DEADLINE);
  lua_setfield(L, -2, "CANCEL_DEADLINE");
  lua_pushliteral(L, FDN_VERSION_STRING);
  lua_setfield(L, -2, "version");
  return 1;
}
