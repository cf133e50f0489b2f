/* Registers the Lua library compiled into libfdn (and fdn.core itself) in
 * package.preload, so `require "fdn"` needs no LUA_PATH.
 */
#include <lauxlib.h>
#include <lua.h>

#include "fdn/fdn_lua.h"

int luaopen_fdn_core(lua_State *L);

typedef struct {
  const char *name;
  const unsigned char *bytecode;
  size_t size;
} embedded_module_t;

#include "fdn_modules.h" /* generated: FDN_EMBEDDED_MODULES */

static const embedded_module_t modules[] = {FDN_EMBEDDED_MODULES};

static int load_embedded(lua_State *L) {
  const embedded_module_t *m = lua_touserdata(L, lua_upvalueindex(1));
  if (luaL_loadbuffer(L, (const char *)m->bytecode, m->size, m->name) != 0)
    return lua_error(L);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

void fdn_lua_preload(lua_State *L) {
  size_t i;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_fdn_core);
  lua_setfield(L, -2, "fdn.core");
  for (i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
    lua_pushlightuserdata(L, (void *)&modules[i]);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, modules[i].name);
  }
  lua_pop(L, 2);
}
