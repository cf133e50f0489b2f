/* libFuzzer harness for the Lua-level targets: one Lua state with fdn
 * (the library compiled into libfdn, as fdn-lua has it), a driver script
 * (FDN_FUZZ_DRIVER, a path compiled in; FDN_FUZZ_DRIVER in the environment
 * overrides it) that returns a function, and that function called with
 * each input as a Lua string. The driver checks its own invariants and
 * raises "invariant violated: ..." when one fails; any error that escapes
 * it is a finding: printed with its traceback, then abort(), so libFuzzer
 * saves the input. Memory errors in fdn's C code are the sanitizers' to
 * find (LuaJIT itself is not instrumented).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

#include "fdn/fdn_lua.h"

#ifndef FDN_FUZZ_DRIVER
#error "FDN_FUZZ_DRIVER must name the driver script"
#endif

static lua_State *L;
static int target_ref = LUA_NOREF;
static unsigned long inputs;

static int traceback(lua_State *T) {
  const char *msg = lua_tostring(T, 1);
  if (msg == NULL) {
    if (luaL_callmeta(T, 1, "__tostring") && lua_type(T, -1) == LUA_TSTRING)
      msg = lua_tostring(T, -1);
    else
      msg = lua_pushfstring(T, "(error object is a %s value)",
                            luaL_typename(T, 1));
  }
  luaL_traceback(T, T, msg, 1);
  return 1;
}

/* At exit (libFuzzer ends with exit()), so the leak checker sees only
 * real leaks, not the state it was still using.
 */
static void close_state(void) {
  if (L != NULL)
    lua_close(L);
  L = NULL;
}

/* The Lua heap on malloc, not LuaJIT's own mmap allocator, so that ASan
 * sees fdn's C code touching freed Lua objects. (LeakSanitizer cannot
 * follow LuaJIT's tagged references, so the per-input leak check is off
 * for these targets, -detect_leaks=0; the state is closed at exit, where
 * every block must have been freed.)
 */
static void *heap_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *driver = getenv("FDN_FUZZ_DRIVER");
  (void)argc;
  (void)argv;
  if (driver == NULL)
    driver = FDN_FUZZ_DRIVER;
  L = lua_newstate(heap_alloc, NULL);
  if (L == NULL)
    abort();
  luaL_openlibs(L);
  fdn_lua_preload(L);
  lua_pushcfunction(L, traceback);
  if (luaL_loadfile(L, driver) != 0 || lua_pcall(L, 0, 1, -2) != 0 ||
      !lua_isfunction(L, -1)) {
    fprintf(stderr, "fuzz: cannot load the driver %s: %s\n", driver,
            lua_tostring(L, -1) ? lua_tostring(L, -1) : "(no function)");
    abort();
  }
  target_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  atexit(close_state);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int top = lua_gettop(L);
  lua_pushcfunction(L, traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, target_ref);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, top + 1) != 0) {
    fprintf(stderr, "fuzz: the driver failed: %s\n",
            lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object)");
    abort();
  }
  lua_settop(L, top);
  /* Keep the heap (and libFuzzer's RSS limit) in check. */
  if (++inputs % 256 == 0)
    lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
