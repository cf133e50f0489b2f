/* The engine as Lua sees it. One engine at a time is bound to a Lua state;
 * fdn.spawn, fdn.sleep and friends act on the bound engine.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lfdn.h"

/* How many times close() re-runs cancelled tasks before abandoning them. */
#define LFDN_CLOSE_PASSES 8

lfdn_engine_t *lfdn_engine_bound(lua_State *L, const char *fname) {
  lfdn_state_t *st = lfdn_state(L);
  if (st->engine == NULL || st->engine->closed)
    lfdn_raise(L, "InvalidState",
               "%s: no engine is running; call it inside fdn.run(fn) or a "
               "fdn-lua script",
               fname);
  return st->engine;
}

static lfdn_engine_t *check_engine(lua_State *L, int idx) {
  lfdn_engine_t *engine = luaL_checkudata(L, idx, LFDN_ENGINE_MT);
  if (engine->closed)
    lfdn_raise(L, "Closed", "the engine is closed");
  return engine;
}

/* Calls fn(task) for every live task of the engine. */
static int each_live_task(lfdn_engine_t *engine,
                          void (*fn)(lfdn_task_t *task, void *arg), void *arg) {
  lfdn_state_t *st = engine->st;
  uint32_t slot;
  int n = 0;
  for (slot = 0; slot < st->next_slot; slot++) {
    lfdn_task_t *task;
    lfdn_state_push_anchor(st, slot, LFDN_ANCHOR_TASK);
    task = lua_touserdata(st->S, -1);
    lua_pop(st->S, 1);
    if (task != NULL && task->core.engine == engine->core &&
        !fdn_task_finished(&task->core)) {
      fn(task, arg);
      n++;
    }
  }
  return n;
}

static void cancel_one(lfdn_task_t *task, void *arg) {
  int daemons_only = *(int *)arg;
  if (!daemons_only || (task->flags & LFDN_TASK_DAEMON))
    fdn_task_cancel(&task->core);
}

int lfdn_engine_cancel_all(lfdn_engine_t *engine, int daemons_only) {
  return each_live_task(engine, cancel_one, &daemons_only);
}

static void abandon_one(lfdn_task_t *task, void *arg) {
  (void)arg;
  lfdn_task_abandon(task);
}

void lfdn_engine_census_count(lfdn_engine_t *engine, const lfdn_task_t *task,
                              fdn_task_state_t state) {
  if (task->core.id <= engine->census_mark && state >= FDN_TASK_DONE)
    engine->census[state - FDN_TASK_DONE]++;
}

void lfdn_engine_task_finished(lfdn_engine_t *engine, lfdn_task_t *task) {
  size_t live;
  lfdn_engine_census_count(engine, task, fdn_task_state(&task->core));
  if (task->flags & LFDN_TASK_ROOT) {
    engine->root = NULL;
    /* A failed or cancelled main task takes the tasks it left with it. */
    if (fdn_task_state(&task->core) != FDN_TASK_DONE)
      lfdn_engine_cancel_all(engine, 0);
  }
  live = fdn_engine_live_tasks(engine->core);
  /* Daemons only live as long as some non-daemon task does. */
  if (engine->root == NULL && !engine->keep_daemons && engine->daemons > 0 &&
      live == engine->daemons)
    lfdn_engine_cancel_all(engine, 1);
}

static void describe_into(lfdn_task_t *task, void *arg) {
  lua_State *L = arg;
  lfdn_task_describe(L, task);
  lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
}

enum { RUN_DONE = 0, RUN_STUCK = 1, RUN_TIMED_OUT = 2 };

/* Whether reports made in finalizers can wait for the engine's next pass:
 * it is open and its close has not begun.
 */
static int keeps_reports(const lfdn_engine_t *engine) {
  return engine != NULL && !engine->closed && !engine->closing;
}

/* Failures of collected task handles, waiting to be reported (see
 * l_task_gc): a finalizer only appends to a C array, which cannot raise.
 */
int lfdn_engine_defer_report(lfdn_engine_t *engine, uint32_t slot) {
  if (!keeps_reports(engine))
    return 0;
  if (engine->ndeferred == engine->deferred_cap) {
    uint32_t cap = engine->deferred_cap ? engine->deferred_cap * 2 : 16;
    uint32_t *grown = realloc(engine->deferred, cap * sizeof(*grown));
    if (grown == NULL)
      return 0; /* reported at once instead */
    engine->deferred = grown;
    engine->deferred_cap = cap;
  }
  engine->deferred[engine->ndeferred++] = slot;
  lfdn_engine_update_pass_hook(engine);
  return 1;
}

/* Reports the deferred failures on L and frees their slots. A report may
 * collect more handles, whose failures join the list while it is read.
 */
static void report_deferred(lfdn_engine_t *engine, lua_State *L) {
  lfdn_state_t *st = engine->st;
  uint32_t i;
  for (i = 0; i < engine->ndeferred; i++) {
    uint32_t slot = engine->deferred[i];
    lfdn_task_report_unobserved(st, L, slot);
    lfdn_state_free_slot(st, slot, 1);
  }
  engine->ndeferred = 0;
}

/* core.report_later(): whether an open engine will make the reports that
 * fdn._report_later keeps, at its next pass (it then installs the hook).
 */
static int l_report_later(lua_State *L) {
  lfdn_engine_t *engine = lfdn_state(L)->engine;
  int kept = keeps_reports(engine);
  if (kept) {
    engine->later = 1;
    lfdn_engine_update_pass_hook(engine);
  }
  lua_pushboolean(L, kept);
  return 1;
}

static void flush_later(lfdn_engine_t *engine, lua_State *L) {
  engine->later = 0;
  if (lua_checkstack(L, 2) &&
      lfdn_state_get_hook(engine->st, L, LFDN_HOOK_FLUSH_LATER) &&
      lua_pcall(L, 0, 0, 0) != 0) {
    fprintf(stderr, "fdn: reporting failed: %s\n",
            lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object)");
    lua_pop(L, 1);
  }
}

/* Makes on L every report that waits: collected handles' failures and
 * those fdn._report_later kept.
 */
static void report_pending(lfdn_engine_t *engine, lua_State *L) {
  if (engine->ndeferred > 0)
    report_deferred(engine, L);
  if (engine->later)
    flush_later(engine, L);
}

/* Runs at the start of a scheduling pass while it has work: deferred
 * reports and, under FDN_GC_STRESS, a full collection. Installed only
 * while there is such work, so a normal pass pays nothing for it.
 */
static void pass_hook(fdn_engine_t *core, void *arg) {
  lfdn_engine_t *engine = arg;
  (void)core;
  if (engine->gc_stress)
    lfdn_gc_stress_collect(engine);
  report_pending(engine, engine->st->W);
  lfdn_engine_update_pass_hook(engine);
}

void lfdn_engine_update_pass_hook(lfdn_engine_t *engine) {
  int wanted = engine->gc_stress != 0 || engine->ndeferred > 0 || engine->later;
  if (engine->core != NULL)
    fdn_engine_set_tick_hook(engine->core, wanted ? pass_hook : NULL, engine,
                             engine->gc_stress == 2);
}

/* Runs the loop until no task is left, or until `until` has finished when
 * given. Returns RUN_DONE; RUN_STUCK with a list pushed describing the tasks
 * that were stuck (parked with nothing left to wake them) and had to be
 * cancelled; or RUN_TIMED_OUT when the watchdog stopped the loop, leaving
 * every task as it was.
 */
static int run_loop(lua_State *L, lfdn_engine_t *engine, lfdn_task_t *until) {
  int stuck = 0;
  for (;;) {
    fdn_engine_run(engine->core, UV_RUN_DEFAULT);
    /* The loop ran Lua code in tasks and on W: before anything returns or
     * raises to the caller on L, L is made the running thread again.
     */
    lfdn_vm_sync(engine->st, L);
    report_pending(engine, L);
    if (engine->timed_out) {
      if (stuck)
        lua_pop(L, 1);
      return RUN_TIMED_OUT;
    }
    if (until != NULL ? fdn_task_finished(&until->core)
                      : fdn_engine_live_tasks(engine->core) == 0)
      break;
    if (!stuck) {
      stuck = 1;
      lua_newtable(L);
      each_live_task(engine, describe_into, L);
      lfdn_engine_cancel_all(engine, 0);
      continue;
    }
    /* Still stuck after cancelling: the cleanups themselves wait forever. */
    each_live_task(engine, abandon_one, NULL);
    break;
  }
  return stuck ? RUN_STUCK : RUN_DONE;
}

/* Runs the loop until no task is left. Returns nil, or a list describing
 * the tasks that were stuck and had to be cancelled.
 */
int lfdn_engine_run_root(lua_State *L, lfdn_engine_t *engine) {
  return run_loop(L, engine, NULL) == RUN_STUCK;
}

static void on_until_done(fdn_listener_t *listener, fdn_task_t *task) {
  lfdn_engine_t *engine =
      (lfdn_engine_t *)((char *)listener - offsetof(lfdn_engine_t, until));
  (void)task;
  fdn_engine_stop(engine->core);
}

static void on_watchdog(uv_timer_t *timer) {
  lfdn_engine_t *engine = timer->data;
  engine->timed_out = 1;
  fdn_engine_stop(engine->core);
}

static void free_handle(uv_handle_t *handle) {
  free(handle);
}

static void stop_watchdog(lfdn_engine_t *engine) {
  if (engine->watchdog == NULL)
    return;
  uv_close((uv_handle_t *)engine->watchdog, free_handle);
  engine->watchdog = NULL;
}

/* A plain uv timer, so it fires in wall-clock time whatever the engine's
 * clock; unref'd, so it never keeps an otherwise finished loop alive.
 */
static int start_watchdog(lfdn_engine_t *engine, double seconds) {
  uv_loop_t *loop = fdn_engine_loop(engine->core);
  uv_timer_t *timer = malloc(sizeof(*timer));
  double ms = seconds * 1000.0;
  if (timer == NULL)
    return FDN_ENOMEM;
  uv_timer_init(loop, timer);
  timer->data = engine;
  /* The loop's cached time may be stale after a pause between runs. */
  uv_update_time(loop);
  uv_timer_start(timer, on_watchdog,
                 ms >= 9.0e15 ? (uint64_t)9.0e15 : (uint64_t)(ms + 0.999), 0);
  uv_unref((uv_handle_t *)timer);
  engine->watchdog = timer;
  return 0;
}

/* engine:run(task, {timeout =, detach =}) -> stuck, status */
static int run_with_options(lua_State *L, lfdn_engine_t *engine,
                            lfdn_task_t *task, double timeout, int detach) {
  int rc, outcome;
  static const char *const statuses[] = {"done", "deadlock", "timeout"};
  if (detach) {
    if (task == NULL)
      return lfdn_argerror(L, "engine:run", "task",
                           "a task (opts.detach needs one)", 2);
    if (fdn_task_finished(&task->core)) {
      lua_pushnil(L);
      lua_pushstring(L, "done");
      return 2;
    }
    fdn_task_listen(&task->core, &engine->until, on_until_done);
    engine->keep_daemons = 1;
  } else if (task != NULL && !fdn_task_finished(&task->core)) {
    task->flags |= LFDN_TASK_ROOT;
    engine->root = task;
  }
  engine->timed_out = 0;
  if (timeout >= 0 && (rc = start_watchdog(engine, timeout)) != 0) {
    fdn_listener_remove(&engine->until);
    engine->keep_daemons = 0;
    return lfdn_raise_code(L, "engine:run", rc);
  }
  outcome = run_loop(L, engine, detach ? task : NULL);
  stop_watchdog(engine);
  fdn_listener_remove(&engine->until);
  engine->keep_daemons = 0;
  engine->timed_out = 0;
  if (outcome != RUN_STUCK)
    lua_pushnil(L);
  lua_pushstring(L, statuses[outcome]);
  return 2;
}

static int l_engine_run(lua_State *L) {
  lfdn_engine_t *engine = check_engine(L, 1);
  if (!lua_isnoneornil(L, 3)) {
    lfdn_task_t *task = NULL;
    double timeout = -1;
    int detach;
    if (!lua_istable(L, 3))
      return lfdn_argerror(L, "engine:run", "opts", "a table", 3);
    if (!lua_isnoneornil(L, 2))
      task = lfdn_task_check(L, 2, "engine:run");
    lua_getfield(L, 3, "timeout");
    if (!lua_isnil(L, -1)) {
      timeout = lua_tonumber(L, -1);
      if (lua_type(L, -1) != LUA_TNUMBER || !(timeout >= 0))
        return lfdn_argerror(L, "engine:run", "opts.timeout",
                             "a non-negative number", lua_gettop(L));
    }
    lua_getfield(L, 3, "detach");
    detach = lua_toboolean(L, -1);
    lua_settop(L, 3);
    if (fdn_engine_current(engine->core) != NULL)
      return lfdn_raise(L, "InvalidState",
                        "engine:run: the engine is already running");
    return run_with_options(L, engine, task, timeout, detach);
  }
  if (!lua_isnoneornil(L, 2)) {
    lfdn_task_t *root = lfdn_task_check(L, 2, "engine:run");
    if (!fdn_task_finished(&root->core)) {
      root->flags |= LFDN_TASK_ROOT;
      engine->root = root;
    }
  }
  if (fdn_engine_current(engine->core) != NULL)
    return lfdn_raise(L, "InvalidState",
                      "engine:run: the engine is already running");
  lua_settop(L, 2);
  return lfdn_engine_run_root(L, engine) ? 1 : 0;
}

static void report_unobserved(lua_State *L, lfdn_state_t *st) {
  lua_State *S = st->S;
  lua_pushnil(S);
  while (lua_next(S, LFDN_S_UNOBSERVED) != 0) {
    uint32_t slot = (uint32_t)lua_tointeger(S, -2) - 1u;
    lua_pop(S, 1);
    lfdn_task_report_unobserved(st, L, slot);
  }
  lua_newtable(L);
  lua_xmove(L, S, 1);
  lua_replace(S, LFDN_S_UNOBSERVED);
}

int lfdn_engine_close_lua(lua_State *L, lfdn_engine_t *engine) {
  lfdn_state_t *st = engine->st;
  int pass;
  if (engine->closed)
    return 0;
  if (fdn_engine_current(engine->core) != NULL)
    return lfdn_raise(L, "InvalidState",
                      "engine:close: cannot close the engine from one of its "
                      "own tasks");
  /* Cancelled tasks get a few passes to run their cleanups; whatever is
   * still live after that is abandoned, never leaked.
   */
  for (pass = 0;
       pass < LFDN_CLOSE_PASSES && fdn_engine_live_tasks(engine->core) > 0;
       pass++) {
    lfdn_engine_cancel_all(engine, 0);
    fdn_engine_run_ready(engine->core);
  }
  if (fdn_engine_live_tasks(engine->core) > 0)
    each_live_task(engine, abandon_one, NULL);
  engine->closing = 1; /* from here on, collected failures report at once */
  report_pending(engine, L);
  free(engine->deferred);
  engine->deferred = NULL;
  engine->deferred_cap = 0;
  report_unobserved(L, st);
  /* Sockets and such still open: close them now that no task can use them,
   * so their memory is freed by the loop run that closes the engine.
   */
  while (engine->resources != NULL)
    engine->resources->close(engine->resources);
  stop_watchdog(engine);
  fdn_listener_remove(&engine->until);
  engine->closed = 1;
  if (st->engine == engine)
    st->engine = NULL;
  fdn_engine_close(engine->core, NULL, NULL);
  engine->core = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, engine->ref);
  engine->ref = LUA_NOREF;
  lfdn_vm_sync(st, L); /* the passes above ran tasks */
  return 0;
}

void lfdn_resource_add(lfdn_engine_t *engine, lfdn_resource_t *res) {
  res->next = engine->resources;
  if (res->next != NULL)
    res->next->pprev = &res->next;
  res->pprev = &engine->resources;
  engine->resources = res;
}

void lfdn_resource_remove(lfdn_resource_t *res) {
  if (res->pprev == NULL)
    return;
  *res->pprev = res->next;
  if (res->next != NULL)
    res->next->pprev = res->pprev;
  res->next = NULL;
  res->pprev = NULL;
}

static int l_engine_close(lua_State *L) {
  lfdn_engine_t *engine = luaL_checkudata(L, 1, LFDN_ENGINE_MT);
  return lfdn_engine_close_lua(L, engine);
}

static int l_engine_gc(lua_State *L) {
  lfdn_engine_t *engine = lua_touserdata(L, 1);
  if (!engine->closed && !engine->st->closed)
    lfdn_engine_close_lua(L, engine);
  return 0;
}

static int l_engine_now(lua_State *L) {
  lfdn_engine_t *engine = check_engine(L, 1);
  lua_pushnumber(L, (lua_Number)fdn_engine_now(engine->core) / 1e9);
  return 1;
}

static int l_engine_advance(lua_State *L) {
  lfdn_engine_t *engine = check_engine(L, 1);
  uint64_t ns;
  if (lua_type(L, 2) != LUA_TNUMBER ||
      fdn_seconds_to_ns(lua_tonumber(L, 2), &ns) != 0)
    return lfdn_argerror(L, "engine:advance", "seconds",
                         "a non-negative number", 2);
  if (fdn_engine_clock(engine->core) != FDN_CLOCK_VIRTUAL)
    return lfdn_raise(L, "InvalidState",
                      "engine:advance: only a virtual clock can be advanced");
  fdn_engine_advance(engine->core, ns);
  lfdn_vm_sync(engine->st, L); /* it ran the tasks that became ready */
  return 0;
}

static int l_engine_set_autojump(lua_State *L) {
  lfdn_engine_t *engine = check_engine(L, 1);
  if (fdn_engine_set_autojump(engine->core, lua_toboolean(L, 2)) != 0)
    return lfdn_raise(L, "InvalidState",
                      "engine:set_autojump: only a virtual clock jumps");
  return 0;
}

static int l_engine_tasks(lua_State *L) {
  lfdn_engine_t *engine = check_engine(L, 1);
  lua_newtable(L);
  each_live_task(engine, describe_into, L);
  return 1;
}

static int l_engine_stats(lua_State *L) {
  lfdn_engine_t *engine = check_engine(L, 1);
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, (lua_Number)fdn_engine_live_tasks(engine->core));
  lua_setfield(L, -2, "live");
  lua_pushnumber(L, (lua_Number)fdn_engine_ready_tasks(engine->core));
  lua_setfield(L, -2, "ready");
  lua_pushnumber(L, (lua_Number)fdn_engine_armed_timers(engine->core));
  lua_setfield(L, -2, "timers");
  lua_pushstring(L, fdn_engine_clock(engine->core) == FDN_CLOCK_VIRTUAL
                        ? "virtual"
                        : "real");
  lua_setfield(L, -2, "clock");
  lua_pushnumber(L, (lua_Number)fdn_engine_seed(engine->core));
  lua_setfield(L, -2, "seed");
  /* Task slot groups in use: live tasks, and failed ones whose handle
   * still holds their error. What a leak of task references shows in.
   */
  lua_pushnumber(L, (lua_Number)(engine->st->next_slot - engine->st->nfree));
  lua_setfield(L, -2, "slots");
  return 1;
}

static void mark_one(lfdn_task_t *task, void *arg) {
  uint64_t *mark = arg;
  if (task->core.id > *mark)
    *mark = task->core.id;
}

/* engine:census_start() -> the number of live tasks. From now on the
 * engine counts how those tasks end (engine:census()): how fdn-lua tells
 * the work a shutdown drained from the work it cancelled. Tasks started
 * later are not counted.
 */
static int l_engine_census_start(lua_State *L) {
  lfdn_engine_t *engine = check_engine(L, 1);
  uint64_t mark = 0;
  int n = each_live_task(engine, mark_one, &mark);
  engine->census_mark = mark;
  engine->census_in_flight = (uint32_t)n;
  memset(engine->census, 0, sizeof(engine->census));
  lua_pushinteger(L, n);
  return 1;
}

/* engine:census() -> {in_flight, done, failed, cancelled}; also once the
 * engine is closed (closing abandons what is left, counted as cancelled).
 */
static int l_engine_census(lua_State *L) {
  lfdn_engine_t *engine = luaL_checkudata(L, 1, LFDN_ENGINE_MT);
  static const char *const names[] = {"done", "failed", "cancelled"};
  int i;
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, (lua_Number)engine->census_in_flight);
  lua_setfield(L, -2, "in_flight");
  for (i = 0; i < 3; i++) {
    lua_pushnumber(L, (lua_Number)engine->census[i]);
    lua_setfield(L, -2, names[i]);
  }
  return 1;
}

static int l_engine_cancel_all(lua_State *L) {
  lfdn_engine_t *engine = check_engine(L, 1);
  lua_pushinteger(L, lfdn_engine_cancel_all(engine, 0));
  return 1;
}

/* Creates an engine, binds it to the Lua state and pushes its handle. */
int lfdn_engine_new_lua(lua_State *L, fdn_engine_options_t *opts) {
  lfdn_state_t *st = lfdn_state(L);
  lfdn_engine_t *engine;
  int rc;
  if (st->engine != NULL)
    return lfdn_raise(L, "InvalidState",
                      "an engine is already running in this Lua state");
  engine = lua_newuserdata(L, sizeof(*engine));
  memset(engine, 0, sizeof(*engine));
  engine->closed = 1;
  luaL_getmetatable(L, LFDN_ENGINE_MT);
  lua_setmetatable(L, -2);
  lfdn_test_modes_options(opts);
  rc = fdn_engine_new(&engine->core, opts);
  if (rc != 0)
    return lfdn_raise_code(L, "fdn.run", rc);
  engine->closed = 0;
  engine->st = st;
  lfdn_test_modes_apply(engine);
  fdn_engine_set_data(engine->core, engine);
  st->engine = engine;
  /* Bound engines stay reachable even when only C holds them. */
  lua_pushvalue(L, -1);
  engine->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

static int l_engine_new(lua_State *L) {
  fdn_engine_options_t opts;
  fdn_engine_options_init(&opts);
  if (lua_istable(L, 1)) {
    lua_getfield(L, 1, "clock");
    if (!lua_isnil(L, -1)) {
      const char *clock = lua_tostring(L, -1);
      if (clock != NULL && strcmp(clock, "virtual") == 0)
        opts.clock = FDN_CLOCK_VIRTUAL;
      else if (clock == NULL || strcmp(clock, "real") != 0)
        return lfdn_argerror(L, "fdn.run", "opts.clock",
                             "\"real\" or \"virtual\"", lua_gettop(L));
    }
    lua_getfield(L, 1, "autojump");
    if (lua_isboolean(L, -1))
      opts.autojump = lua_toboolean(L, -1);
    lua_getfield(L, 1, "seed");
    if (!lua_isnil(L, -1)) {
      lua_Number seed = lua_tonumber(L, -1);
      if (lua_type(L, -1) != LUA_TNUMBER || seed < 1 || seed != seed ||
          seed > 9007199254740992.0)
        return lfdn_argerror(L, "fdn.run", "opts.seed", "a positive integer",
                             lua_gettop(L));
      opts.seed = (uint64_t)seed;
    }
    lua_settop(L, 1);
  }
  /* FDN_SEED makes every engine of a run repeatable without code changes. */
  if (opts.seed == 0 && getenv("FDN_SEED") != NULL)
    opts.seed = strtoull(getenv("FDN_SEED"), NULL, 10);
  return lfdn_engine_new_lua(L, &opts);
}

static int l_engine_current(lua_State *L) {
  lfdn_state_t *st = lfdn_state(L);
  if (st->engine == NULL)
    return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->engine->ref);
  return 1;
}

void lfdn_open_engine(lua_State *L) {
  static const luaL_Reg methods[] = {{"run", l_engine_run},
                                     {"close", l_engine_close},
                                     {"now", l_engine_now},
                                     {"advance", l_engine_advance},
                                     {"set_autojump", l_engine_set_autojump},
                                     {"tasks", l_engine_tasks},
                                     {"stats", l_engine_stats},
                                     {"cancel_all", l_engine_cancel_all},
                                     {"census_start", l_engine_census_start},
                                     {"census", l_engine_census},
                                     {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"engine_new", l_engine_new},
                                   {"engine_running", l_engine_current},
                                   {"report_later", l_report_later},
                                   {NULL, NULL}};
  int state = lua_gettop(L);
  luaL_newmetatable(L, LFDN_ENGINE_MT);
  lua_newtable(L);
  lua_pushvalue(L, state);
  luaL_setfuncs(L, methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, state);
  lua_pushcclosure(L, l_engine_gc, 1);
  lua_setfield(L, -2, "__gc");
  lua_settop(L, state);
  lfdn_register(L, funcs);
}
