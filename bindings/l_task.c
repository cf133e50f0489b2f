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
  const void *mt;
  if (task == NULL || !lua_getmetatable(L, idx))
    return NULL;
  mt = lua_topointer(L, -1);
  lua_pop(L, 1);
  if (mt == lfdn_state(L)->task_mt || mt == lfdn_state(L)->task_mt_done)
    return task;
  return NULL;
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
  int n = lua_gettop(L) - first + 1, rc;
  lfdn_task_t *task, *parent;
  lua_State *co;
  uint32_t slot;
  int base;

  if (engine->core == NULL || engine->closed)
    return lfdn_raise(L, "Closed", "fdn.spawn: the engine is closed");
  /* Whatever may raise (every allocation may: "not enough memory") comes
   * before the task is registered with the engine: an error after that
   * would leave a task the engine counts as live that nothing can run or
   * finish, and the engine could never close.
   */
  /* The function and its arguments go straight onto the coroutine. */
  co = lfdn_state_pool_pop(st, L);
  lua_insert(L, first);
  lua_xmove(L, co, n);
  task = lua_newuserdata(L, sizeof(*task));
  task->core.data = NULL;
  /* The slot's anchor entries, in the table's array part: the stores
   * below then only overwrite.
   */
  if (lfdn_state_reserve_slot(st, L) != 0 ||
      lfdn_state_alloc_slot(st, &slot) != 0)
    return lfdn_raise(L, "Error", "fdn.spawn: out of task slots");
  rc = fdn_task_init(engine->core, &task->core, task_run);
  if (rc != 0) {
    lfdn_state_free_slot(st, slot, 0);
    return lfdn_raise_code(L, "fdn.spawn", rc);
  }
  task->st = st;
  task->co = co;
  task->where = NULL;
  task->slot = slot;
  task->finish_seq = 0;
  task->nresults = 0;
  task->flags = (uint16_t)flags;
  task->inline_type = LUA_TNIL;
  task->inline_value = 0;
  if (flags & LFDN_TASK_DAEMON)
    engine->daemons++;
  /* Stack: ..., co, task. Bring the metatable and the anchors over once;
   * anchor the handle and the coroutine while the task lives.
   */
  lua_pushvalue(st->S, LFDN_S_TASK_MT);
  lua_pushvalue(st->S, LFDN_S_ANCHORS);
  lua_xmove(st->S, L, 2);
  base = (int)(slot * 3u + 1u);
  lua_pushvalue(L, -3);
  lua_rawseti(L, -2, base + LFDN_ANCHOR_TASK);
  lua_pushvalue(L, -4);
  lua_rawseti(L, -2, base + LFDN_ANCHOR_CO);
  /* Inherit the spawner's context (a fresh slot's context is nil). */
  parent = lfdn_task_current(engine);
  if (parent != NULL && (parent->flags & LFDN_TASK_HAS_CTX)) {
    lua_rawgeti(L, -1, (int)(parent->slot * 3u + 1u + LFDN_ANCHOR_CTX));
    lua_rawseti(L, -2, base + LFDN_ANCHOR_CTX);
    task->flags |= LFDN_TASK_HAS_CTX;
  }
  lua_pop(L, 1);
  lua_setmetatable(L, -2);
  if (!(flags & LFDN_TASK_DEFERRED))
    fdn_task_start(&task->core);
  return 1;
}

/* Where a finished task keeps its outcome:
 * - one number, boolean or nil (or nothing): inline in the handle;
 * - other results, and a cancellation's error: the handle's environment
 *   table (LFDN_ENV_*), so the task needs no slot once finished;
 * - a failure: its slot (error and traceback), kept together with the
 *   __gc metatable until the handle is collected, so an error nobody read
 *   is reported then.
 * Only live and failed tasks hold a slot; only failed ones have a __gc.
 */
enum { LFDN_ENV_VALUE = 1, LFDN_ENV_TRACEBACK = 2 };

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

/* Moves the top `n` values of `from` (W itself, or a coroutine) into a new
 * environment table of the handle: [VALUE] = the value (or a packed table
 * when n > 1), [TRACEBACK] = the value below them when `with_traceback`.
 * Runs on W, never on S (see lfdn.h), and only ever moves values onto W,
 * never onto a finished coroutine (whose stack may be full). Either all of
 * it happens or, when an allocation fails, nothing does.
 */
static void store_in_env(lfdn_task_t *task, lua_State *from, int n,
                         int with_traceback) {
  lfdn_state_t *st = task->st;
  lua_State *W = st->W;
  int i, env, base;
  if (from != W)
    lua_xmove(from, W, n + with_traceback);
  base = lua_gettop(W) - n - with_traceback + 1;
  lfdn_state_push_anchor(st, task->slot, LFDN_ANCHOR_TASK);
  lua_xmove(st->S, W, 1);
  lua_createtable(W, 2, 0);
  env = lua_gettop(W);
  if (n == 1) {
    lua_pushvalue(W, base + with_traceback);
  } else {
    lua_createtable(W, n, 0);
    for (i = 0; i < n; i++) {
      lua_pushvalue(W, base + with_traceback + i);
      lua_rawseti(W, -2, i + 1);
    }
  }
  lua_rawseti(W, env, LFDN_ENV_VALUE);
  if (with_traceback) {
    lua_pushvalue(W, base);
    lua_rawseti(W, env, LFDN_ENV_TRACEBACK);
  }
  lua_setfenv(W, env - 1);
  lua_settop(W, base - 1);
  if (n != 1)
    task->flags |= LFDN_TASK_PACKED;
  task->flags |= LFDN_TASK_IN_ENV;
  task->nresults = (uint16_t)(n > 0xffff ? 0xffff : n);
}

/* The last step of every task, once its outcome is stored: tell the engine
 * and the listeners, then let go of the handle. The handle may be
 * collected as soon as this returns, so nothing touches `task` afterwards.
 * Allocates nothing, so it cannot fail: a failed task's unobserved entry
 * was made when its outcome was stored.
 */
static void complete(lfdn_task_t *task, fdn_task_state_t state) {
  lfdn_state_t *st = task->st;
  lfdn_engine_t *engine = fdn_engine_get_data(task->core.engine);
  lua_State *S = st->S;
  uint32_t slot = task->slot;
  int keeps_slot = state == FDN_TASK_FAILED && !(task->flags & LFDN_TASK_LOST);
  task->co = NULL;
  task->where = NULL;
  task->finish_seq = ++engine->finish_seq;
  if (task->flags & LFDN_TASK_DAEMON)
    engine->daemons--;
  if (!keeps_slot) {
    /* Nothing left to report at collection: no finalizer needed. */
    lfdn_state_push_anchor(st, slot, LFDN_ANCHOR_TASK);
    lua_pushvalue(S, LFDN_S_TASK_MT_DONE);
    lua_setmetatable(S, -2);
    lua_pop(S, 1);
  }
  fdn_task_finish(&task->core, state);
  lfdn_engine_task_finished(engine, task);
  if (keeps_slot) {
    lua_pushnil(S);
    lfdn_state_set_anchor(st, slot, LFDN_ANCHOR_TASK);
  } else {
    task->slot = LFDN_NO_SLOT;
    lfdn_state_free_slot(st, slot, task->flags & LFDN_TASK_HAS_CTX);
  }
}

/* Storing a task's outcome allocates (tables, a traceback, the event
 * hook's arguments), and it happens in a libuv callback, where a raised
 * error ("not enough memory") would unwind through libuv's and the core's
 * frames and leave both broken. So it runs protected; when it fails, the
 * task still finishes, with its outcome lost (see lose_outcome).
 */
enum { STORE_RESULTS, STORE_ERROR, STORE_UNSTARTED, STORE_ABANDONED };

typedef struct {
  lfdn_task_t *task;
  int kind;
  fdn_task_state_t state; /* the state the stored outcome belongs to */
} store_t;

/* The error value is on top of the task's coroutine; its stack is still
 * intact, so the traceback shows where the error was raised.
 */
static fdn_task_state_t store_error(lfdn_task_t *task) {
  lfdn_state_t *st = task->st;
  lua_State *S = st->S, *W = st->W, *co = task->co;
  int cancelled = is_cancelled_error(st, co);
  /* After a memory error the innermost frame may have no valid pc, and
   * LuaJIT's luaL_traceback crashes looking up function names there (a
   * segfault in lua_getinfo "n"): no traceback for those.
   */
  if (lua_status(co) == LUA_ERRMEM)
    lua_pushliteral(W, "stack traceback:\n\t(not available after a memory "
                       "error)");
  else
    luaL_traceback(W, co, NULL, 0);
  lfdn_task_event(task, cancelled ? "cancelled" : "failed", co, 1);
  lua_xmove(co, W, 1); /* W: traceback, error (never onto co: it may be full) */
  if (cancelled) {
    store_in_env(task, W, 1, 1);
    return FDN_TASK_CANCELLED;
  }
  /* The unobserved table may grow: that store goes through W, where an
   * error is caught (on S it could not be), and comes first, so that a
   * failure leaves nothing half done. The anchor stores cannot fail.
   */
  lua_pushvalue(S, LFDN_S_UNOBSERVED);
  lua_xmove(S, W, 1);
  lua_pushnumber(W, (lua_Number)task->core.id);
  lua_rawseti(W, -2, (int)task->slot + 1);
  lua_pop(W, 1);
  lua_xmove(W, S, 1);
  lfdn_state_set_anchor(st, task->slot, LFDN_ANCHOR_CO);
  lua_xmove(W, S, 1);
  lfdn_state_set_anchor(st, task->slot, LFDN_ANCHOR_CTX);
  task->flags |= LFDN_TASK_HAS_CTX;
  task->nresults = 1;
  return FDN_TASK_FAILED;
}

/* A Cancelled error made by fdn.errors, as the task's outcome. */
static void store_cancelled(lfdn_task_t *task, const char *what, int event) {
  lfdn_state_t *st = task->st;
  char message[80];
  snprintf(message, sizeof(message), "task %llu %s",
           (unsigned long long)task->core.id, what);
  lfdn_push_cancelled(st, st->W, message);
  if (event)
    lfdn_task_event(task, "cancelled", st->W, 0);
  store_in_env(task, st->W, 1, 0);
}

static int store_protected(lua_State *W) {
  store_t *req = lua_touserdata(W, 1);
  lfdn_task_t *task = req->task;
  lua_pop(W, 1);
  switch (req->kind) {
  case STORE_RESULTS:
    store_in_env(task, task->co, lua_gettop(task->co), 0);
    break;
  case STORE_ERROR:
    req->state = store_error(task);
    break;
  case STORE_UNSTARTED:
    store_cancelled(task, "was cancelled before it started", 1);
    break;
  default:
    store_cancelled(task, "was abandoned when its engine closed", 0);
    break;
  }
  return 0;
}

/* When the outcome could not be stored: the task ends all the same (its
 * engine must be able to finish and close), with a fixed error for an
 * outcome (task:join raises it) and a line on stderr, since recording an
 * unobserved failure would allocate too.
 */
static void lose_outcome(lfdn_task_t *task, int kind) {
  lfdn_state_t *st = task->st;
  lua_State *S = st->S;
  lua_rawgeti(S, LFDN_S_UNOBSERVED, (int)task->slot + 1);
  if (!lua_isnil(S, -1)) {
    lua_pushnil(S);
    lua_rawseti(S, LFDN_S_UNOBSERVED, (int)task->slot + 1);
  }
  lua_pop(S, 1);
  if (task->flags & LFDN_TASK_HAS_CTX) {
    lua_pushnil(S);
    lfdn_state_set_anchor(st, task->slot, LFDN_ANCHOR_CTX);
  }
  task->flags &= (uint16_t) ~(LFDN_TASK_IN_ENV | LFDN_TASK_PACKED |
                              LFDN_TASK_INLINE | LFDN_TASK_HAS_CTX);
  task->flags |= LFDN_TASK_LOST;
  task->nresults = 1;
  if (kind == STORE_ERROR || kind == STORE_RESULTS)
    fprintf(stderr,
            "fdn: task %llu ended but its %s could not be kept (out of "
            "memory)\n",
            (unsigned long long)task->core.id,
            kind == STORE_ERROR ? "error" : "results");
}

/* Stores the outcome (protected); returns the state to finish in. */
static fdn_task_state_t store_outcome(lfdn_task_t *task, int kind,
                                      fdn_task_state_t state) {
  lua_State *W = task->st->W;
  int top = lua_gettop(W);
  store_t req;
  req.task = task;
  req.kind = kind;
  req.state = state;
  if (lua_cpcall(W, store_protected, &req) == 0)
    return req.state;
  lua_settop(W, top);
  lose_outcome(task, kind);
  return kind == STORE_RESULTS || kind == STORE_ERROR ? FDN_TASK_FAILED
                                                      : FDN_TASK_CANCELLED;
}

static void finish_ok(lfdn_task_t *task, lua_State *co) {
  int n = lua_gettop(co), t = n == 0 ? LUA_TNIL : lua_type(co, 1);
  fdn_task_state_t state = FDN_TASK_DONE;
  if (n <= 1 && (t == LUA_TNIL || t == LUA_TBOOLEAN || t == LUA_TNUMBER)) {
    task->inline_type = (uint8_t)t;
    task->inline_value = t == LUA_TBOOLEAN ? (lua_Number)lua_toboolean(co, 1)
                                           : lua_tonumber(co, 1);
    task->nresults = (uint16_t)n;
    task->flags |= LFDN_TASK_INLINE;
  } else {
    state = store_outcome(task, STORE_RESULTS, FDN_TASK_DONE);
  }
  lfdn_state_pool_push(task->st, co);
  complete(task, state);
}

static void finish_error(lfdn_task_t *task) {
  complete(task, store_outcome(task, STORE_ERROR, FDN_TASK_FAILED));
}

/* A task cancelled before it first ran finishes without running its body;
 * its outcome is a Cancelled error made by fdn.errors.
 */
static void finish_unstarted(lfdn_task_t *task) {
  fdn_task_state_t state;
  lua_settop(task->co, 0);
  state = store_outcome(task, STORE_UNSTARTED, FDN_TASK_CANCELLED);
  lfdn_state_pool_push(task->st, task->co);
  complete(task, state);
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
  task->flags &= (uint16_t)~LFDN_TASK_PARKED;
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
    finish_error(task);
}

void lfdn_task_abandon(lfdn_task_t *task) {
  lfdn_state_t *st = task->st;
  lfdn_engine_t *engine;
  uint32_t slot = task->slot;
  if (fdn_task_finished(&task->core) ||
      fdn_task_state(&task->core) == FDN_TASK_RUNNING)
    return;
  /* Called from close and from finalizers: it must not fail either. */
  store_outcome(task, STORE_ABANDONED, FDN_TASK_CANCELLED);
  task->co = NULL;
  task->where = NULL;
  engine = fdn_engine_get_data(task->core.engine);
  if (task->flags & LFDN_TASK_DAEMON)
    engine->daemons--;
  lfdn_engine_census_count(engine, task, FDN_TASK_CANCELLED);
  lfdn_state_push_anchor(st, slot, LFDN_ANCHOR_TASK);
  lua_pushvalue(st->S, LFDN_S_TASK_MT_DONE);
  lua_setmetatable(st->S, -2);
  lua_pop(st->S, 1);
  fdn_task_abandon(&task->core);
  task->slot = LFDN_NO_SLOT;
  lfdn_state_free_slot(st, slot, 1);
}

int lfdn_task_push_outcome(lua_State *L, lfdn_task_t *task, int idx,
                           int raise) {
  lfdn_state_t *st = task->st;
  int ok = fdn_task_state(&task->core) == FDN_TASK_DONE, n, i;
  if (!fdn_task_finished(&task->core))
    return lfdn_raise(L, "InvalidState", "task %d has not finished",
                      (int)task->core.id);
  if (!raise)
    lua_pushboolean(L, ok);
  if (task->flags & LFDN_TASK_LOST) {
    lua_pushliteral(L, "not enough memory (the task's outcome could not be "
                       "kept)");
    return raise ? lua_error(L) : 2;
  }
  if (task->flags & LFDN_TASK_INLINE) {
    if (task->nresults == 0)
      return raise ? 0 : 1;
    if (task->inline_type == LUA_TNUMBER)
      lua_pushnumber(L, task->inline_value);
    else if (task->inline_type == LUA_TBOOLEAN)
      lua_pushboolean(L, task->inline_value != 0);
    else
      lua_pushnil(L);
    return raise ? 1 : 2;
  }
  if (task->flags & LFDN_TASK_IN_ENV) {
    /* The handle is at idx, or (idx == 0, while it finishes) anchored. */
    if (idx != 0) {
      lua_getfenv(L, idx);
    } else {
      lfdn_state_push_anchor(st, task->slot, LFDN_ANCHOR_TASK);
      lua_xmove(st->S, L, 1);
      lua_getfenv(L, -1);
      lua_remove(L, -2);
    }
    lua_rawgeti(L, -1, LFDN_ENV_VALUE);
    lua_remove(L, -2);
  } else {
    if (fdn_task_state(&task->core) == FDN_TASK_FAILED) {
      /* Observed now; cleared only if set (a missing key would be made). */
      lua_rawgeti(st->S, LFDN_S_UNOBSERVED, (int)task->slot + 1);
      if (!lua_isnil(st->S, -1)) {
        lua_pushnil(st->S);
        lua_rawseti(st->S, LFDN_S_UNOBSERVED, (int)task->slot + 1);
      }
      lua_pop(st->S, 1);
    }
    lfdn_state_push_anchor(st, task->slot, LFDN_ANCHOR_CO);
    lua_xmove(st->S, L, 1);
  }
  if (!ok) {
    if (raise)
      return lua_error(L);
    return 2;
  }
  n = task->nresults;
  if (task->flags & LFDN_TASK_PACKED) {
    int table = lua_gettop(L);
    luaL_checkstack(L, n, "too many results");
    for (i = 1; i <= n; i++)
      lua_rawgeti(L, table, i);
    lua_remove(L, table);
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

/* Sets `defined_at` in the table on top of L: where the task's function is
 * defined, which tells tasks apart even before they first run.
 */
static void describe_function(lua_State *L, lfdn_task_t *task) {
  lua_State *co = task->co;
  lua_Debug ar, outer;
  int level, found = 0;
  if (co == NULL)
    return;
  if (lua_status(co) == LUA_YIELD) {
    for (level = 0; lua_getstack(co, level, &ar); level++) {
      outer = ar;
      found = 1;
    }
    found = found && lua_getinfo(co, "S", &outer);
  } else if (!(task->flags & LFDN_TASK_STARTED) && lua_gettop(co) >= 1 &&
             lua_isfunction(co, 1) && lua_checkstack(co, 1)) {
    lua_pushvalue(co, 1);
    found = lua_getinfo(co, ">S", &outer);
  }
  if (found && outer.linedefined > 0) {
    lua_pushfstring(L, "%s:%d", outer.short_src, outer.linedefined);
    lua_setfield(L, -2, "defined_at");
  }
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
  if (task->flags & LFDN_TASK_DAEMON) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "daemon");
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
  describe_function(L, task);
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

/* Whether L[idx] can be called: a function, or a table or userdata whose
 * metatable has __call (anything else would only fail once the task runs,
 * far from the spawn that was wrong).
 */
static int is_callable(lua_State *L, int idx) {
  int t = lua_type(L, idx), callable;
  if (t == LUA_TFUNCTION)
    return 1;
  if ((t != LUA_TTABLE && t != LUA_TUSERDATA) ||
      !luaL_getmetafield(L, idx, "__call"))
    return 0;
  callable = lua_type(L, -1) == LUA_TFUNCTION;
  lua_pop(L, 1);
  return callable;
}

static int l_spawn(lua_State *L) {
  lfdn_engine_t *engine = lfdn_engine_bound(L, "fdn.spawn");
  if (!is_callable(L, 1))
    return lfdn_argerror(L, "fdn.spawn", "fn", "a function", 1);
  return lfdn_task_spawn(L, engine, 1, 0);
}

/* spawn_with(opts, fn, ...): opts.name, opts.daemon. */
static int l_spawn_with(lua_State *L) {
  lfdn_engine_t *engine = lfdn_engine_bound(L, "fdn.spawn_with");
  lfdn_state_t *st = lfdn_state(L);
  int flags = 0;
  if (!lua_istable(L, 1))
    return lfdn_argerror(L, "fdn.spawn_with", "opts", "a table", 1);
  if (!is_callable(L, 2))
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

/* join_wait(task[, fname]): parks until the task has finished. Returns
 * nothing when it has; "st, cause" when the waiting task was cancelled.
 * `fname` ("task:wait") names the caller in the errors raised at once.
 */
static int l_join_wait(lua_State *L) {
  const char *fname =
      lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "task:join";
  lfdn_task_t *target = lfdn_task_check(L, 1, fname);
  lfdn_task_t *self;
  int rc;
  if (fdn_task_finished(&target->core))
    return 0;
  self = lfdn_suspendable(L, fname);
  if (self == target)
    return lfdn_raise(L, "InvalidState", "%s: a task cannot wait for itself",
                      fname);
  rc = fdn_task_join(&self->core, &target->core);
  if (rc == 1)
    return 0;
  if (rc != 0)
    return lfdn_push_park_failure(L, self, rc, "task:join");
  return lfdn_yield(L, self, "task:join");
}

static int l_outcome(lua_State *L) {
  lfdn_task_t *task = lfdn_task_check(L, 1, "task:join");
  return lfdn_task_push_outcome(L, task, 1, lua_toboolean(L, 2));
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
      fdn_task_state(&task->core) == FDN_TASK_DONE ||
      (task->flags & LFDN_TASK_LOST))
    return 0;
  if (task->flags & LFDN_TASK_IN_ENV) {
    lua_getfenv(L, 1);
    lua_rawgeti(L, -1, 2 /* LFDN_ENV_TRACEBACK */);
    return 1;
  }
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

int lfdn_task_report_unobserved(lfdn_state_t *st, lua_State *L, uint32_t slot) {
  lua_State *S = st->S;
  lua_rawgeti(S, LFDN_S_UNOBSERVED, (int)slot + 1);
  if (lua_isnil(S, -1)) {
    lua_pop(S, 1);
    return 0;
  }
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, lua_tonumber(S, -1));
  lua_setfield(L, -2, "task_id");
  lua_pop(S, 1);
  lfdn_state_push_anchor(st, slot, LFDN_ANCHOR_CO);
  lua_xmove(S, L, 1);
  lua_setfield(L, -2, "error");
  lfdn_state_push_anchor(st, slot, LFDN_ANCHOR_CTX);
  lua_xmove(S, L, 1);
  lua_setfield(L, -2, "traceback");
  /* Cleared before the report runs Lua: a GC step in there may collect
   * the handle, whose __gc would otherwise report the failure again.
   */
  lua_pushnil(S);
  lua_rawseti(S, LFDN_S_UNOBSERVED, (int)slot + 1);
  lfdn_report(st, L, "unjoined_task_failed");
  return 1;
}

static int l_task_gc(lua_State *L) {
  lfdn_task_t *task = lua_touserdata(L, 1);
  lfdn_state_t *st = task->st;
  int unobserved;
  if (st == NULL || st->closed)
    return 0;
  if (!fdn_task_finished(&task->core)) {
    /* Only reachable while the Lua state closes under a live engine. */
    lfdn_task_abandon(task);
    lfdn_vm_sync(st, L);
  }
  task->st = NULL;
  lua_rawgeti(st->S, LFDN_S_UNOBSERVED, (int)task->slot + 1);
  unobserved = !lua_isnil(st->S, -1);
  lua_pop(st->S, 1);
  /* A failure nobody read is reported outside this finalizer when an
   * engine is open (lfdn_engine_defer_report): a report runs Lua code,
   * the logger's and the user's sink, which a finalizer runs in a state
   * where LuaJIT's compiled code has been seen to loop forever. The slot
   * keeps the error until then.
   */
  if (unobserved && lfdn_engine_defer_report(st->engine, task->slot))
    return 0;
  if (unobserved)
    lfdn_task_report_unobserved(st, L, task->slot);
  lfdn_state_free_slot(st, task->slot, 1);
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
  st->task_mt = lua_topointer(L, mt);
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
  /* Finished tasks with nothing to clean up: the same, without __gc. */
  lua_pushvalue(st->S, LFDN_S_TASK_MT_DONE);
  lua_xmove(st->S, L, 1);
  lua_getfield(L, mt, "__index");
  lua_setfield(L, -2, "__index");
  lua_getfield(L, mt, "__tostring");
  lua_setfield(L, -2, "__tostring");
  lua_getfield(L, mt, "__name");
  lua_setfield(L, -2, "__name");
  st->task_mt_done = lua_topointer(L, -1);
  lua_settop(L, state);
  lfdn_register(L, funcs);
}
