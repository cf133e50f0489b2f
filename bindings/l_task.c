/* Tasks as Lua sees them: each task is a coroutine run by the core
 * scheduler, with a userdata handle (`fdn.task`) embedding its core record.
 *
 * While a task is live, its slot group anchors the handle, the coroutine
 * and the task-local context, so a task whose handle was dropped still runs
 * to the end. When it finishes, the handle is released to the GC and the
 * slot keeps its results (and traceback) until the handle is collected.
 */
#include <stdio.h>
#include <string.h>

#include "lfdn.h"

static void task_run(fdn_task_t *core, int status);

#define TASK_OF(core) ((lfdn_task_t *)(core))

int lfdn_task_is_lua(const fdn_task_t *task) {
  return task->run == task_run;
}

lfdn_task_t *lfdn_task_test(lua_State *L, int idx) {
  lfdn_task_t *task = lua_touserdata(L, idx);
  lfdn_state_t *st = lfdn_state(L);
  if (task == NULL || !lua_getmetatable(L, idx))
    return NULL;
  lua_pushvalue(st->S, LFDN_S_TASK_MT);
  lua_xmove(st->S, L, 1);
  if (!lua_rawequal(L, -1, -2))
    task = NULL;
  lua_pop(L, 2);
  return task;
}

lfdn_task_t *lfdn_task_check(lua_State *L, int idx, const char *fname) {
  lfdn_task_t *task = lfdn_task_test(L, idx);
  if (task == NULL)
    lfdn_argerror(L, fname, "task", "a task", idx);
  return task;
}

lfdn_task_t *lfdn_task_current(lfdn_engine_t *engine) {
  fdn_task_t *core;
  if (engine == NULL || engine->core == NULL)
    return NULL;
  core = fdn_engine_current(engine->core);
  if (core == NULL || !lfdn_task_is_lua(core))
    return NULL;
  return TASK_OF(core);
}

void lfdn_task_push(lua_State *L, lfdn_task_t *task) {
  lfdn_state_push_anchor(task->st, task->slot, LFDN_ANCHOR_TASK);
  lua_xmove(task->st->S, L, 1);
}

/* Spawns L[first] with L[first+1..top] as arguments; pushes the task. */
int lfdn_task_spawn(lua_State *L, lfdn_engine_t *engine, int first, int flags) {
  lfdn_state_t *st = engine->st;
  int top = lua_gettop(L), n = top - first + 1, i, rc;
  lfdn_task_t *task, *parent;
  lua_State *co;
  uint32_t slot;

  if (engine->core == NULL || engine->closed)
    return lfdn_raise(L, "Closed", "fdn.spawn: the engine is closed");
  lua_checkstack(L, n + 4);
  co = lfdn_state_pool_pop(st, L);
  task = lua_newuserdata(L, sizeof(*task));
  memset(task, 0, sizeof(*task));
  if (lfdn_state_alloc_slot(st, &slot) != 0)
    return lfdn_raise(L, "Error", "fdn.spawn: out of task slots");
  rc = fdn_task_init(engine->core, &task->core, task_run);
  if (rc != 0) {
    lfdn_state_free_slot(st, slot);
    return lfdn_raise_code(L, "fdn.spawn", rc);
  }
  task->st = st;
  task->co = co;
  task->slot = slot;
  task->flags = (uint8_t)flags;
  if (flags & LFDN_TASK_DAEMON)
    engine->daemons++;
  lua_pushvalue(st->S, LFDN_S_TASK_MT);
  lua_xmove(st->S, L, 1);
  lua_setmetatable(L, -2);

  /* Anchor the handle and the coroutine; inherit the spawner's context. */
  lua_pushvalue(L, -1);
  lua_xmove(L, st->S, 1);
  lfdn_state_set_anchor(st, slot, LFDN_ANCHOR_TASK);
  lua_pushvalue(L, -2);
  lua_xmove(L, st->S, 1);
  lfdn_state_set_anchor(st, slot, LFDN_ANCHOR_CO);
  parent = lfdn_task_current(engine);
  if (parent != NULL) {
    lfdn_state_push_anchor(st, parent->slot, LFDN_ANCHOR_CTX);
    lfdn_state_set_anchor(st, slot, LFDN_ANCHOR_CTX);
  }

  for (i = first; i <= top; i++)
    lua_pushvalue(L, i);
  lua_xmove(L, co, n);
  fdn_task_start(&task->core);
  return 1;
}

/* Moves the finished coroutine's results into the slot. */
static void store_results(lfdn_task_t *task, lua_State *co) {
  lfdn_state_t *st = task->st;
  lua_State *S = st->S, *W = st->W;
  int n = lua_gettop(co), i, table;
  if (n <= 1) {
    if (n == 0)
      lua_pushnil(S);
    else
      lua_xmove(co, S, 1);
  } else {
    lua_createtable(W, n, 0);
    table = lua_gettop(W);
    lua_xmove(co, W, n);
    for (i = n; i >= 1; i--)
      lua_rawseti(W, table, i);
    lua_xmove(W, S, 1);
    task->flags |= LFDN_TASK_PACKED;
  }
  task->nresults = (uint16_t)(n > 0xffff ? 0xffff : n);
  lfdn_state_set_anchor(task->st, task->slot, LFDN_ANCHOR_CO);
}

static int is_cancelled_error(lfdn_state_t *st, lua_State *from) {
  lua_State *W = st->W;
  int cancelled = 0;
  if (!lfdn_state_get_hook(st, W, LFDN_HOOK_IS_CANCELLED))
    return 0;
  lua_pushvalue(from, -1);
  lua_xmove(from, W, 1);
  if (lua_pcall(W, 1, 1, 0) == 0)
    cancelled = lua_toboolean(W, -1);
  lua_pop(W, 1);
  return cancelled;
}

/* The last step of every task: record the outcome, release the coroutine
 * and the handle, then tell the engine. The handle may be collected as soon
 * as this returns, so nothing touches `task` afterwards.
 */
static void finish(lfdn_task_t *task, fdn_task_state_t state) {
  lfdn_state_t *st = task->st;
  lfdn_engine_t *engine = fdn_engine_get_data(task->core.engine);
  uint32_t slot = task->slot;
  task->co = NULL;
  task->where = NULL;
  task->finish_seq = ++engine->finish_seq;
  if (task->flags & LFDN_TASK_DAEMON)
    engine->daemons--;
  if (state == FDN_TASK_FAILED) {
    lua_pushnumber(st->S, (lua_Number)task->core.id);
    lua_rawseti(st->S, LFDN_S_UNOBSERVED, (int)slot + 1);
  }
  fdn_task_finish(&task->core, state);
  lfdn_engine_task_finished(engine, task);
  lua_pushnil(st->S);
  lfdn_state_set_anchor(st, slot, LFDN_ANCHOR_TASK);
}

static void finish_ok(lfdn_task_t *task, lua_State *co) {
  lfdn_state_t *st = task->st;
  store_results(task, co);
  lua_pushnil(st->S);
  lfdn_state_set_anchor(st, task->slot, LFDN_ANCHOR_CTX);
  lfdn_state_pool_push(st, co);
  finish(task, FDN_TASK_DONE);
}

/* The error value is on top of `co`; its stack is still intact, so the
 * traceback shows where the error was raised.
 */
static void finish_error(lfdn_task_t *task, lua_State *co) {
  lfdn_state_t *st = task->st;
  lua_State *S = st->S;
  int cancelled = is_cancelled_error(st, co);
  luaL_traceback(st->W, co, NULL, 0);
  lua_xmove(st->W, S, 1);
  lfdn_state_set_anchor(st, task->slot, LFDN_ANCHOR_CTX);
  lua_xmove(co, S, 1);
  lfdn_state_set_anchor(st, task->slot, LFDN_ANCHOR_CO);
  task->nresults = 1;
  finish(task, cancelled ? FDN_TASK_CANCELLED : FDN_TASK_FAILED);
}

/* A task cancelled before it first ran finishes without running its body;
 * its outcome is a Cancelled error made by fdn.errors.
 */
static void finish_unstarted(lfdn_task_t *task) {
  lfdn_state_t *st = task->st;
  lua_State *S = st->S;
  char message[64];
  lua_settop(task->co, 0);
  snprintf(message, sizeof(message),
           "task %llu was cancelled before it started",
           (unsigned long long)task->core.id);
  lfdn_push_cancelled(st, st->W, message);
  lua_xmove(st->W, S, 1);
  lfdn_state_set_anchor(st, task->slot, LFDN_ANCHOR_CO);
  task->nresults = 1;
  lua_pushnil(S);
  lfdn_state_set_anchor(st, task->slot, LFDN_ANCHOR_CTX);
  lfdn_state_pool_push(st, task->co);
  finish(task, FDN_TASK_CANCELLED);
}

static void task_run(fdn_task_t *core, int status) {
  lfdn_task_t *task = TASK_OF(core);
  lua_State *co = task->co;
  int nargs, rc;
  if (!(task->flags & LFDN_TASK_STARTED)) {
    task->flags |= LFDN_TASK_STARTED;
    if (fdn_task_cancel_requested(core) &&
        !(task->flags & LFDN_TASK_RUNS_CANCELLED)) {
      finish_unstarted(task);
      return;
    }
    nargs = lua_gettop(co) - 1;
  } else if (status != 0) {
    lua_settop(co, 0);
    lua_pushinteger(co, status);
    lua_pushinteger(co, fdn_task_cancel_pending(core));
    nargs = 2;
  } else {
    nargs = lua_gettop(co);
  }
  task->where = NULL;
  task->flags &= (uint8_t)~LFDN_TASK_PARKED;
  rc = lua_resume(co, nargs);
  if (rc == LUA_YIELD) {
    /* A yield not made by an fdn call (a bare coroutine.yield) leaves the
     * task running: the engine re-queues it, like fdn.sleep(0).
     */
    if (core->state == FDN_TASK_RUNNING)
      lua_settop(co, 0);
    return;
  }
  if (rc == 0)
    finish_ok(task, co);
  else
    finish_error(task, co);
}

void lfdn_task_abandon(lfdn_task_t *task) {
  lfdn_state_t *st = task->st;
  lua_State *S = st->S;
  char message[64];
  if (fdn_task_finished(&task->core) ||
      fdn_task_state(&task->core) == FDN_TASK_RUNNING)
    return;
  snprintf(message, sizeof(message),
           "task %llu was abandoned when its engine closed",
           (unsigned long long)task->core.id);
  lfdn_push_cancelled(st, st->W, message);
  lua_xmove(st->W, S, 1);
  lfdn_state_set_anchor(st, task->slot, LFDN_ANCHOR_CO);
  lua_pushnil(S);
  lfdn_state_set_anchor(st, task->slot, LFDN_ANCHOR_CTX);
  task->nresults = 1;
  task->co = NULL;
  task->where = NULL;
  if (task->flags & LFDN_TASK_DAEMON) {
    lfdn_engine_t *engine = fdn_engine_get_data(task->core.engine);
    engine->daemons--;
  }
  fdn_task_abandon(&task->core);
  lua_pushnil(S);
  lfdn_state_set_anchor(st, task->slot, LFDN_ANCHOR_TASK);
}

int lfdn_task_push_outcome(lua_State *L, lfdn_task_t *task, int raise) {
  lfdn_state_t *st = task->st;
  int ok = fdn_task_state(&task->core) == FDN_TASK_DONE, n = 0, i;
  if (!fdn_task_finished(&task->core))
    return lfdn_raise(L, "InvalidState", "task %d has not finished",
                      (int)task->core.id);
  if (fdn_task_state(&task->core) == FDN_TASK_FAILED) {
    lua_pushnil(st->S);
    lua_rawseti(st->S, LFDN_S_UNOBSERVED, (int)task->slot + 1);
  }
  if (!raise)
    lua_pushboolean(L, ok);
  lfdn_state_push_anchor(st, task->slot, LFDN_ANCHOR_CO);
  lua_xmove(st->S, L, 1);
  if (!ok) {
    if (raise)
      return lua_error(L);
    return 2;
  }
  if (task->flags & LFDN_TASK_PACKED) {
    int table = lua_gettop(L);
    n = task->nresults;
    luaL_checkstack(L, n, "too many results");
    for (i = 1; i <= n; i++)
      lua_rawgeti(L, table, i);
    lua_remove(L, table);
  } else {
    n = task->nresults;
    if (n == 0)
      lua_pop(L, 1);
  }
  return n + (raise ? 0 : 1);
}

/* Whether a chunk belongs to fdn's Lua library ("…/fdn/name.lua", or the
 * copy compiled into fdn-lua), so descriptions can skip its frames.
 */
static int is_library_source(const char *source) {
  const char *slash;
  size_t len;
  if (source == NULL)
    return 0;
  len = strlen(source);
  if (len < 8 || strcmp(source + len - 4, ".lua") != 0)
    return 0;
  slash = strrchr(source, '/');
  if (slash == NULL)
    return 0;
  if (slash - source >= 4 && strncmp(slash - 4, "/fdn", 4) == 0)
    return 1;
  return slash - source == 4 && strncmp(source + 1, "fdn", 3) == 0;
}

/* Pushes a table describing the task: id, name, status, where it waits. */
void lfdn_task_describe(lua_State *L, lfdn_task_t *task) {
  lua_Debug ar;
  lfdn_state_t *st = task->st;
  lua_createtable(L, 0, 6);
  lua_pushnumber(L, (lua_Number)task->core.id);
  lua_setfield(L, -2, "id");
  lua_pushstring(L, fdn_task_state_name(fdn_task_state(&task->core)));
  lua_setfield(L, -2, "status");
  lua_pushvalue(st->S, LFDN_S_NAMES);
  lua_xmove(st->S, L, 1);
  lfdn_task_push(L, task);
  lua_rawget(L, -2);
  lua_setfield(L, -3, "name");
  lua_pop(L, 1);
  if (task->where != NULL) {
    lua_pushstring(L, task->where);
    lua_setfield(L, -2, "waiting_in");
  }
  /* Where it waits: the innermost Lua frame outside fdn's own library. */
  if (task->co != NULL && lua_status(task->co) == LUA_YIELD) {
    int level;
    for (level = 0; lua_getstack(task->co, level, &ar); level++) {
      lua_getinfo(task->co, "Sln", &ar);
      if (ar.currentline > 0 && !is_library_source(ar.source)) {
        lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
        lua_setfield(L, -2, "location");
        break;
      }
    }
  }
}

lfdn_task_t *lfdn_suspendable(lua_State *L, const char *fname) {
  lfdn_engine_t *engine = lfdn_engine_bound(L, fname);
  lfdn_task_t *task = lfdn_task_current(engine);
  if (task == NULL)
    lfdn_raise(L, "InvalidState",
               "%s: cannot suspend outside a task; call it from a function "
               "run by fdn.run, fdn.spawn or fdn-lua",
               fname);
  else if (task->co != L)
    lfdn_raise(L, "InvalidState",
               "%s: cannot suspend from inside a nested coroutine; only the "
               "task's own coroutine can wait (use fdn.spawn for concurrent "
               "work)",
               fname);
  else if (!lua_isyieldable(L))
    lfdn_raise(L, "InvalidState",
               "%s: cannot suspend here: the call is inside a C function "
               "that cannot yield (such as a table.sort comparator or a "
               "string.gsub callback)",
               fname);
  return task;
}

int lfdn_push_park_failure(lua_State *L, lfdn_task_t *task, int rc,
                           const char *fname) {
  if (rc != FDN_ECANCELED)
    return lfdn_raise_code(L, fname, rc);
  lua_pushinteger(L, rc);
  lua_pushinteger(L, fdn_task_cancel_pending(&task->core));
  return 2;
}

int lfdn_yield(lua_State *L, lfdn_task_t *task, const char *where) {
  task->where = where;
  return lua_yield(L, 0);
}

/* Lua API ---------------------------------------------------------------*/

static int l_spawn(lua_State *L) {
  lfdn_engine_t *engine = lfdn_engine_bound(L, "fdn.spawn");
  int t = lua_type(L, 1);
  if (t != LUA_TFUNCTION && !(t == LUA_TTABLE || t == LUA_TUSERDATA))
    return lfdn_argerror(L, "fdn.spawn", "fn", "a function", 1);
  return lfdn_task_spawn(L, engine, 1, 0);
}

/* spawn_with(opts, fn, ...): opts.name, opts.daemon. */
static int l_spawn_with(lua_State *L) {
  lfdn_engine_t *engine = lfdn_engine_bound(L, "fdn.spawn_with");
  lfdn_state_t *st = lfdn_state(L);
  int flags = 0, t;
  if (!lua_istable(L, 1))
    return lfdn_argerror(L, "fdn.spawn_with", "opts", "a table", 1);
  t = lua_type(L, 2);
  if (t != LUA_TFUNCTION && t != LUA_TTABLE && t != LUA_TUSERDATA)
    return lfdn_argerror(L, "fdn.spawn_with", "fn", "a function", 2);
  lua_getfield(L, 1, "daemon");
  if (lua_toboolean(L, -1))
    flags |= LFDN_TASK_DAEMON;
  lua_pop(L, 1);
  lua_getfield(L, 1, "name");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
    return lfdn_argerror(L, "fdn.spawn_with", "opts.name", "a string", -1);
  lua_pop(L, 1);
  lfdn_task_spawn(L, engine, 2, flags);
  lua_getfield(L, 1, "name");
  if (!lua_isnil(L, -1)) {
    lua_pushvalue(st->S, LFDN_S_NAMES);
    lua_xmove(st->S, L, 1);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 1;
}

static int l_current(lua_State *L) {
  lfdn_state_t *st = lfdn_state(L);
  lfdn_task_t *task = lfdn_task_current(st->engine);
  if (task == NULL)
    return 0;
  lfdn_task_push(L, task);
  return 1;
}

/* join_wait(task): parks until the task has finished. Returns nothing when
 * it has; "st, cause" when the waiting task was cancelled.
 */
static int l_join_wait(lua_State *L) {
  lfdn_task_t *target = lfdn_task_check(L, 1, "task:join");
  lfdn_task_t *self;
  int rc;
  if (fdn_task_finished(&target->core))
    return 0;
  self = lfdn_suspendable(L, "task:join");
  if (self == target)
    return lfdn_raise(L, "InvalidState",
                      "task:join: a task cannot wait for itself");
  rc = fdn_task_join(&self->core, &target->core);
  if (rc == 1)
    return 0;
  if (rc != 0)
    return lfdn_push_park_failure(L, self, rc, "task:join");
  return lfdn_yield(L, self, "task:join");
}

static int l_outcome(lua_State *L) {
  lfdn_task_t *task = lfdn_task_check(L, 1, "task:join");
  return lfdn_task_push_outcome(L, task, lua_toboolean(L, 2));
}

static int l_cancel(lua_State *L) {
  lfdn_task_t *task = lfdn_task_check(L, 1, "task:cancel");
  lua_pushboolean(L, fdn_task_cancel(&task->core) == 0);
  return 1;
}

static int l_status(lua_State *L) {
  lfdn_task_t *task = lfdn_task_check(L, 1, "task:status");
  fdn_task_state_t state = fdn_task_state(&task->core);
  lua_pushstring(L,
                 state == FDN_TASK_NEW ? "ready" : fdn_task_state_name(state));
  return 1;
}

static int l_describe(lua_State *L) {
  lfdn_task_describe(L, lfdn_task_check(L, 1, "task:describe"));
  return 1;
}

/* Traceback of a failed task, where its error was raised. */
static int l_traceback(lua_State *L) {
  lfdn_task_t *task = lfdn_task_check(L, 1, "task:traceback");
  if (!fdn_task_finished(&task->core) ||
      fdn_task_state(&task->core) == FDN_TASK_DONE)
    return 0;
  lfdn_state_push_anchor(task->st, task->slot, LFDN_ANCHOR_CTX);
  lua_xmove(task->st->S, L, 1);
  return 1;
}

static int l_task_index(lua_State *L) {
  lfdn_task_t *task = lua_touserdata(L, 1);
  const char *key = lua_tostring(L, 2);
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(2));
  if (!lua_isnil(L, -1) || key == NULL)
    return 1;
  if (strcmp(key, "id") == 0) {
    lua_pushnumber(L, (lua_Number)task->core.id);
    return 1;
  }
  if (strcmp(key, "name") == 0) {
    lfdn_state_t *st = lfdn_state(L);
    lua_pushvalue(st->S, LFDN_S_NAMES);
    lua_xmove(st->S, L, 1);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    if (lua_isnil(L, -1))
      lua_pushfstring(L, "task-%d", (int)task->core.id);
    return 1;
  }
  return 0;
}

static int l_task_tostring(lua_State *L) {
  lfdn_task_t *task = lua_touserdata(L, 1);
  lua_pushfstring(L, "fdn.task(%d, %s)", (int)task->core.id,
                  fdn_task_state_name(fdn_task_state(&task->core)));
  return 1;
}

static int l_task_gc(lua_State *L) {
  lfdn_task_t *task = lua_touserdata(L, 1);
  lfdn_state_t *st = task->st;
  if (st == NULL || st->closed)
    return 0;
  if (!fdn_task_finished(&task->core)) {
    /* Only reachable while the Lua state closes under a live engine. */
    lfdn_task_abandon(task);
  }
  lua_rawgeti(st->S, LFDN_S_UNOBSERVED, (int)task->slot + 1);
  if (!lua_isnil(st->S, -1)) {
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, (lua_Number)task->core.id);
    lua_setfield(L, -2, "task_id");
    lfdn_state_push_anchor(st, task->slot, LFDN_ANCHOR_CO);
    lua_xmove(st->S, L, 1);
    lua_setfield(L, -2, "error");
    lfdn_state_push_anchor(st, task->slot, LFDN_ANCHOR_CTX);
    lua_xmove(st->S, L, 1);
    lua_setfield(L, -2, "traceback");
    lua_pushnil(st->S);
    lua_rawseti(st->S, LFDN_S_UNOBSERVED, (int)task->slot + 1);
    lfdn_report(st, L, "unjoined_task_failed");
  }
  lua_pop(st->S, 1);
  lfdn_state_free_slot(st, task->slot);
  task->st = NULL;
  return 0;
}

/* Called with the module table and the state userdata on top of L. */
void lfdn_open_task(lua_State *L) {
  static const luaL_Reg methods[] = {{"cancel", l_cancel},
                                     {"status", l_status},
                                     {"describe", l_describe},
                                     {"traceback", l_traceback},
                                     {NULL, NULL}};
  static const luaL_Reg funcs[] = {
      {"spawn", l_spawn},          {"spawn_with", l_spawn_with},
      {"current", l_current},      {"join_wait", l_join_wait},
      {"task_outcome", l_outcome}, {NULL, NULL}};
  int state = lua_gettop(L), module = state - 1, mt, table;
  lfdn_state_t *st = lua_touserdata(L, state);
  lua_pushvalue(st->S, LFDN_S_TASK_MT);
  lua_xmove(st->S, L, 1);
  mt = lua_gettop(L);
  lua_newtable(L);
  table = lua_gettop(L);
  lua_pushvalue(L, state);
  luaL_setfuncs(L, methods, 1);
  lua_pushvalue(L, table);
  lua_setfield(L, module, "task_methods");
  lua_pushvalue(L, state);
  lua_pushvalue(L, table);
  lua_pushcclosure(L, l_task_index, 2);
  lua_setfield(L, mt, "__index");
  lua_pushvalue(L, state);
  lua_pushcclosure(L, l_task_gc, 1);
  lua_setfield(L, mt, "__gc");
  lua_pushcfunction(L, l_task_tostring);
  lua_setfield(L, mt, "__tostring");
  lua_pushliteral(L, "fdn.task");
  lua_setfield(L, mt, "__name");
  lua_settop(L, state);
  lfdn_register(L, funcs);
}
