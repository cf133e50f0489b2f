/* What fdn.testing needs from the engine beyond fdn.run: advancing the
 * virtual clock from a task, the next deadline, and the libuv handles that
 * other code left open on the engine's loop.
 */
#include "lfdn.h"

/* advance(seconds): parks the running task while virtual time moves
 * forward, running everything that falls due in the window. Nothing on a
 * normal wake; "st, cause" when cancelled.
 */
static int l_advance(lua_State *L) {
  lfdn_task_t *task;
  uint64_t ns;
  int rc;
  if (lua_type(L, 1) != LUA_TNUMBER ||
      fdn_seconds_to_ns(lua_tonumber(L, 1), &ns) != 0 || ns == FDN_FOREVER)
    return lfdn_argerror(L, "clock:advance", "seconds",
                         "a finite non-negative number", 1);
  task = lfdn_suspendable(L, "clock:advance");
  rc = fdn_engine_advance_task(task->core.engine, &task->core, ns);
  if (rc == FDN_ESTATE)
    return lfdn_raise(L, "InvalidState",
                      "clock:advance: only a virtual clock can be advanced "
                      "(run with clock = \"virtual\")");
  if (rc == FDN_EBUSY)
    return lfdn_raise(L, "InvalidState",
                      "clock:advance: another task is already advancing the "
                      "clock");
  if (rc != 0)
    return lfdn_push_park_failure(L, task, rc, "clock:advance");
  return lfdn_yield(L, task, "clock:advance");
}

static lfdn_engine_t *check_open_engine(lua_State *L, const char *fname) {
  lfdn_engine_t *engine = luaL_testudata(L, 1, LFDN_ENGINE_MT);
  if (engine == NULL)
    lfdn_argerror(L, fname, "engine", "an engine", 1);
  else if (engine->closed)
    lfdn_raise(L, "Closed", "%s: the engine is closed", fname);
  return engine;
}

/* engine_next_deadline(engine) -> seconds of the earliest armed timer, or
 * nil when none is armed.
 */
static int l_next_deadline(lua_State *L) {
  lfdn_engine_t *engine = check_open_engine(L, "engine_next_deadline");
  uint64_t at;
  if (fdn_engine_next_deadline(engine->core, &at) != 0)
    return 0;
  lua_pushnumber(L, (lua_Number)at / 1e9);
  return 1;
}

typedef struct {
  lua_State *L;
  lfdn_engine_t *engine;
  int n;
} handle_walk_t;

static void describe_handle(uv_handle_t *handle, void *arg) {
  handle_walk_t *walk = arg;
  lua_State *L = walk->L;
  if (uv_is_closing(handle) ||
      fdn_engine_owns_handle(walk->engine->core, handle) ||
      handle == (uv_handle_t *)walk->engine->watchdog)
    return;
  lua_createtable(L, 0, 3);
  lua_pushstring(L, uv_handle_type_name(uv_handle_get_type(handle)));
  lua_setfield(L, -2, "type");
  lua_pushboolean(L, uv_is_active(handle));
  lua_setfield(L, -2, "active");
  lua_pushboolean(L, uv_has_ref(handle));
  lua_setfield(L, -2, "ref");
  lua_rawseti(L, -2, ++walk->n);
}

/* engine_handles(engine) -> list of {type, active, ref}: the handles open
 * on the engine's loop that are not the engine's own.
 */
static int l_handles(lua_State *L) {
  handle_walk_t walk;
  walk.L = L;
  walk.engine = check_open_engine(L, "engine_handles");
  walk.n = 0;
  lua_newtable(L);
  uv_walk(fdn_engine_loop(walk.engine->core), describe_handle, &walk);
  return 1;
}

void lfdn_open_testing(lua_State *L) {
  static const luaL_Reg funcs[] = {{"advance", l_advance},
                                   {"engine_next_deadline", l_next_deadline},
                                   {"engine_handles", l_handles},
                                   {NULL, NULL}};
  lfdn_register(L, funcs);
}
