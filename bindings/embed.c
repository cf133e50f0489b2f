/* The embedding API (fdn_lua.h). */
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "fdn/fdn_lua.h"
#include "lfdn.h"

int luaopen_fdn_core(lua_State *L);

struct fdn_lua_s {
  lua_State *L;
  lfdn_engine_t *engine;
  uv_loop_t *loop;
  char *last_error;
  int closing;
  int outcome_ref; /* push_outcome, made up front (see on_call_done) */
};

typedef struct {
  fdn_listener_t listener;
  fdn_lua_t *h;
  fdn_lua_done_cb cb;
  void *data;
} call_t;

static void set_error(fdn_lua_t *h, const char *msg) {
  free(h->last_error);
  h->last_error = NULL;
  if (msg != NULL) {
    size_t n = strlen(msg) + 1;
    h->last_error = malloc(n);
    if (h->last_error != NULL)
      memcpy(h->last_error, msg, n);
  }
}

static int message_handler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg =
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Runs `fn` (pushed on L with its args) under a traceback handler. */
static int protected_call(fdn_lua_t *h, int nargs, int nresults) {
  lua_State *L = h->L;
  int base = lua_gettop(L) - nargs, rc;
  lua_pushcfunction(L, message_handler);
  lua_insert(L, base);
  rc = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  if (rc != 0) {
    set_error(h, lua_tostring(L, -1));
    lua_pop(L, 1);
    return FDN_EINVAL;
  }
  return 0;
}

/* Pushes a C function that runs with the binding state as its upvalue,
 * as every fdn.core function does.
 */
static void push_binding_function(lua_State *L, lua_CFunction fn) {
  lua_getfield(L, LUA_REGISTRYINDEX, "fdn.state");
  lua_pushcclosure(L, fn, 1);
}

/* push_outcome(task) -> true, results... | false, err */
static int push_outcome(lua_State *L) {
  lfdn_task_t *task = lua_touserdata(L, 1);
  lua_pop(L, 1);
  return lfdn_task_push_outcome(L, task, 0, 0);
}

static int new_engine(lua_State *L) {
  return lfdn_engine_new_lua(L, lua_touserdata(L, 1));
}

int fdn_lua_new(fdn_lua_t **out, const fdn_lua_options_t *opts) {
  fdn_lua_t *h;
  lua_State *L;
  if (out == NULL)
    return FDN_EINVAL;
  *out = NULL;
  h = calloc(1, sizeof(*h));
  if (h == NULL)
    return FDN_ENOMEM;
  L = luaL_newstate();
  if (L == NULL) {
    free(h);
    return FDN_ENOMEM;
  }
  h->L = L;
  luaL_openlibs(L);
  fdn_lua_preload(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "fdn");
  if (protected_call(h, 1, 1) != 0) {
    lua_close(L);
    free(h->last_error);
    free(h);
    return FDN_EINVAL;
  }
  lua_setglobal(L, "fdn");
  {
    fdn_engine_options_t eopts;
    fdn_engine_options_init(&eopts);
    if (opts != NULL) {
      eopts.loop = opts->loop;
      eopts.clock = opts->clock;
    }
    push_binding_function(L, new_engine);
    lua_pushlightuserdata(L, &eopts);
    if (protected_call(h, 1, 1) != 0) {
      lua_close(L);
      free(h->last_error);
      free(h);
      return FDN_EINVAL;
    }
  }
  h->engine = luaL_checkudata(L, -1, LFDN_ENGINE_MT);
  lua_pushcfunction(L, push_outcome);
  h->outcome_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
  h->loop = fdn_engine_loop(h->engine->core);
  fdn_diag_add(FDN_DIAG_STATES_CREATED, 1);
  *out = h;
  return 0;
}

lua_State *fdn_lua_state(fdn_lua_t *h) {
  return h->L;
}
uv_loop_t *fdn_lua_loop(fdn_lua_t *h) {
  return h->loop;
}
fdn_engine_t *fdn_lua_engine(fdn_lua_t *h) {
  return h->engine->closed ? NULL : h->engine->core;
}
const char *fdn_lua_last_error(fdn_lua_t *h) {
  return h->last_error;
}

int fdn_lua_dofile(fdn_lua_t *h, const char *path) {
  if (h->closing)
    return FDN_ECLOSED;
  if (luaL_loadfile(h->L, path) != 0) {
    set_error(h, lua_tostring(h->L, -1));
    lua_pop(h->L, 1);
    return FDN_EINVAL;
  }
  return protected_call(h, 0, 0);
}

int fdn_lua_dostring(fdn_lua_t *h, const char *code, const char *chunkname) {
  if (h->closing)
    return FDN_ECLOSED;
  if (luaL_loadbuffer(h->L, code, strlen(code),
                      chunkname ? chunkname : "=(embedded)") != 0) {
    set_error(h, lua_tostring(h->L, -1));
    lua_pop(h->L, 1);
    return FDN_EINVAL;
  }
  return protected_call(h, 0, 0);
}

/* Runs as a task finishes, inside the core: pushing the outcome may fail
 * (out of memory), so it runs protected, through a function made when the
 * handle was, and a failure reaches the host as the call's error.
 */
static void on_call_done(fdn_listener_t *listener, fdn_task_t *core) {
  call_t *call = (call_t *)listener;
  fdn_lua_t *h = call->h;
  lua_State *L = h->L;
  int top = lua_gettop(L), n;
  lfdn_task_t *task = (lfdn_task_t *)core;
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->outcome_ref);
  lua_pushlightuserdata(L, task);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) == 0) {
    n = lua_gettop(L) - top;
    call->cb(h, call->data, lua_toboolean(L, top + 1), L, n - 1);
  } else {
    call->cb(h, call->data, 0, L, 1);
  }
  lua_settop(L, top);
  free(call);
}

static int spawn_global(lua_State *L) {
  lfdn_engine_t *engine = lua_touserdata(L, 1);
  lua_remove(L, 1);
  return lfdn_task_spawn(L, engine, 1, 0);
}

int fdn_lua_call(fdn_lua_t *h, const char *name, int nargs, fdn_lua_done_cb cb,
                 void *data) {
  lua_State *L = h->L;
  int base = lua_gettop(L) - nargs;
  lfdn_task_t *task;
  call_t *call = NULL;
  if (nargs < 0 || base < 0)
    return FDN_EINVAL;
  if (h->closing || h->engine->closed) {
    lua_settop(L, base);
    return FDN_ECLOSED;
  }
  lua_getglobal(L, name);
  if (lua_type(L, -1) != LUA_TFUNCTION) {
    lua_settop(L, base);
    set_error(h, "fdn_lua_call: no global function by that name");
    return FDN_EINVAL;
  }
  if (cb != NULL) {
    call = calloc(1, sizeof(*call));
    if (call == NULL) {
      lua_settop(L, base);
      return FDN_ENOMEM;
    }
  }
  lua_insert(L, base + 1);
  push_binding_function(L, spawn_global);
  lua_insert(L, base + 1);
  lua_pushlightuserdata(L, h->engine);
  lua_insert(L, base + 2);
  if (protected_call(h, nargs + 2, 1) != 0) {
    free(call);
    lua_settop(L, base);
    return FDN_EINVAL;
  }
  task = lua_touserdata(L, -1);
  if (call != NULL) {
    call->h = h;
    call->cb = cb;
    call->data = data;
    fdn_task_listen(&task->core, &call->listener, on_call_done);
  }
  lua_settop(L, base);
  return 0;
}

static int run_engine(lua_State *L) {
  lfdn_engine_run_root(L, lua_touserdata(L, 1));
  return 0;
}

int fdn_lua_run(fdn_lua_t *h) {
  if (h->closing || h->engine->closed)
    return FDN_ECLOSED;
  push_binding_function(h->L, run_engine);
  lua_pushlightuserdata(h->L, h->engine);
  return protected_call(h, 1, 0);
}

static int close_engine(lua_State *L) {
  lfdn_engine_close_lua(L, lua_touserdata(L, 1));
  return 0;
}

void fdn_lua_close(fdn_lua_t *h) {
  lua_State *L;
  if (h == NULL || h->closing)
    return;
  h->closing = 1;
  L = h->L;
  push_binding_function(L, close_engine);
  lua_pushlightuserdata(L, h->engine);
  protected_call(h, 1, 0);
  /* Every binding call leaves the private threads at their fixed tops. */
  if (lua_gettop(h->engine->st->S) != LFDN_S_TOP ||
      lua_gettop(h->engine->st->W) != 0)
    fdn_diag_add(FDN_DIAG_STACK_IMBALANCES, 1);
  lua_close(L);
  fdn_diag_add(FDN_DIAG_STATES_CLOSED, 1);
  free(h->last_error);
  free(h);
}
