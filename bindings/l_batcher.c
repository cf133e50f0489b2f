/* Batchers as Lua sees them: the core batcher in counting mode.
 *
 * fdn/batcher.lua keeps the items in plain Lua tables and calls in here only
 * at batch boundaries (the first item of a batch, the item that fills it, a
 * flush, a close), so adding an item costs a table store, not a C call.
 * The core decides when batches are sealed and handed over; this file runs
 * the handing over: it queues handed-over batches for flusher tasks, spawns
 * those (at most max_concurrent), and tracks them with completion
 * listeners. A flusher is a Lua task running the wrapper's flusher function;
 * it takes batches here, runs the handler, and reports each one done. While
 * the open batch has items and a time trigger, one flusher stays parked to
 * seal it when the trigger fires; with nothing to do, one flusher lingers
 * briefly (LINGER_NS) for the next batch, then they end, so an idle
 * batcher holds no task.
 *
 * Functions that change what the batcher needs return a last value `need`:
 * true when a flusher should be spawned, which the wrapper does with
 * batcher_ensure() once its own bookkeeping is done (so a failing spawn
 * never leaves the wrapper and the core out of step).
 */
#include <stdint.h>
#include <string.h>

#include "lfdn.h"

#define LFDN_BATCHER_MT "fdn.batcher"
#define MAX_CONCURRENT 4096
#define LINGER_NS 20000000u /* an idle flusher waits this long for work */

/* What add returns instead of a room when it did not add. */
enum { ADD_FULL = -1, ADD_CLOSED = -2 };

typedef struct lfdn_batcher_s lfdn_batcher_t;

typedef struct {
  fdn_listener_t listener; /* first: the callback gets this pointer */
  lfdn_batcher_t *owner;
  lfdn_task_t *task;  /* NULL when the slot is free */
  fdn_batch_t *batch; /* the batch its flusher is running, if any */
} flusher_slot_t;

struct lfdn_batcher_s {
  fdn_batcher_t core;
  fdn_batcher_options_t opts;
  lfdn_state_t *st;
  lfdn_engine_t *engine; /* the engine it runs on; NULL until first use;
                            kept alive by the environment's [4] */
  int initialized;
  int discarded;
  fdn_waitq_t idle; /* a flusher watching the open batch's time trigger */
  unsigned flushers;
  unsigned busy;
  unsigned ready_head;
  unsigned ready_len;
  fdn_batch_t **ready;   /* ring of max_concurrent: handed over, not taken */
  flusher_slot_t *slots; /* max_concurrent */
};

/* Each batcher's functions are closures over it (upvalue 2; upvalue 1 is
 * the binding state, as everywhere): a boundary call needs no type check.
 */
static lfdn_batcher_t *self_of(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(2));
}

/* The core's callbacks. They only queue and wake: no Lua runs here. */

static void on_flush(fdn_batcher_t *core, fdn_batch_t *batch) {
  lfdn_batcher_t *lb = core->data;
  unsigned cap = lb->opts.max_concurrent;
  lb->ready[(lb->ready_head + lb->ready_len) % cap] = batch;
  lb->ready_len++;
  if (fdn_waitq_len(&lb->idle) > 0)
    fdn_waitq_wake_one(&lb->idle, 0);
}

static void on_due(fdn_batcher_t *core) {
  lfdn_batcher_t *lb = core->data;
  if (fdn_waitq_len(&lb->idle) > 0)
    fdn_waitq_wake_one(&lb->idle, 0);
}

static fdn_batch_t *ready_pop(lfdn_batcher_t *lb) {
  fdn_batch_t *batch = lb->ready[lb->ready_head];
  lb->ready_head = (lb->ready_head + 1) % lb->opts.max_concurrent;
  lb->ready_len--;
  return batch;
}

/* A flusher task ended, however it ended (even cancelled before it ever
 * ran, or abandoned with its engine). A batch it still held never
 * finished: the core counts it as failed, so nothing waits for it forever.
 */
static void on_flusher_finished(fdn_listener_t *listener, fdn_task_t *task) {
  flusher_slot_t *slot = (flusher_slot_t *)listener;
  lfdn_batcher_t *lb = slot->owner;
  fdn_batch_t *batch = slot->batch;
  (void)task;
  slot->task = NULL;
  slot->batch = NULL;
  lb->flushers--;
  if (batch != NULL) {
    lb->busy--;
    fdn_batcher_done(&lb->core, batch, 1);
  }
  fdn_batcher_notify(&lb->core);
}

/* Whether one more flusher is wanted and may be spawned: one idle flusher
 * for each handed-over batch nobody took yet, plus one to watch the open
 * batch's time trigger.
 */
static int needs_flusher(const lfdn_batcher_t *lb) {
  const fdn_batcher_t *core = &lb->core;
  unsigned want = lb->ready_len;
  if (lb->engine == NULL || lb->engine->closed || !lb->initialized ||
      lb->discarded)
    return 0;
  if (fdn_batcher_open_len(core) > 0 &&
      (fdn_batcher_timer_armed(core) || fdn_batcher_due(core)))
    want++;
  return lb->flushers - lb->busy < want &&
         lb->flushers < lb->opts.max_concurrent;
}

/* Binds the batcher to the running engine on first use, or moves an idle
 * one from an engine that has closed (fdn.run makes a fresh engine each
 * time; a batcher made at module level outlives them).
 */
static void bind_slow(lua_State *L, lfdn_batcher_t *lb, const char *fname) {
  lfdn_engine_t *engine = lfdn_engine_bound(L, fname);
  int rc;
  if (lb->engine == engine)
    return;
  if (lb->discarded)
    lfdn_raise(L, "Closed", "%s: the batcher was discarded", fname);
  if (!lb->initialized) {
    rc = fdn_batcher_init(engine->core, &lb->core, &lb->opts);
    if (rc != 0)
      lfdn_raise_code(L, fname, rc);
    lb->core.data = lb;
    lb->initialized = 1;
  } else {
    if (lb->engine != NULL && !lb->engine->closed)
      lfdn_raise(L, "InvalidState",
                 "%s: the batcher is in use by another running engine", fname);
    rc = fdn_batcher_rebind(&lb->core, engine->core);
    if (rc != 0)
      lfdn_raise(L, "InvalidState",
                 "%s: the batcher still had batches to flush when its engine "
                 "closed; they went with it, and it cannot be used again",
                 fname);
    lb->ready_len = 0;
    lb->ready_head = 0;
    fdn_waitq_init(&lb->idle);
  }
  /* The batcher's environment, not the registry, keeps its engine's
   * handle alive: the reference goes with the batcher.
   */
  lua_getfenv(L, lua_upvalueindex(2));
  lua_rawgeti(L, LUA_REGISTRYINDEX, engine->ref);
  lua_rawseti(L, -2, 4);
  lua_pop(L, 1);
  lb->engine = engine;
}

static void bind_engine(lua_State *L, lfdn_batcher_t *lb, const char *fname) {
  lfdn_engine_t *engine = lb->engine;
  if (engine == NULL || engine != lb->st->engine || engine->closed)
    bind_slow(L, lb, fname);
}

/* An item count from the wrapper. Anything but a count becomes SIZE_MAX,
 * which the core refuses as inconsistent.
 */
static size_t count_arg(lua_State *L, int idx) {
  lua_Number n = lua_tonumber(L, idx);
  return n >= 0 && n < 9007199254740992.0 ? (size_t)n : SIZE_MAX;
}

static void push_seq(lua_State *L, uint64_t seq) {
  if (seq == 0)
    lua_pushnil(L);
  else
    lua_pushnumber(L, (lua_Number)seq);
}

static flusher_slot_t *slot_of(lfdn_batcher_t *lb, lfdn_task_t *task) {
  unsigned i;
  for (i = 0; i < lb->opts.max_concurrent; i++)
    if (lb->slots[i].task == task)
      return &lb->slots[i];
  return NULL;
}

static void push_methods(lua_State *L, int ud);

/* batcher_new(opts, flusher_fn, self, name) -> a table of the batcher's
 * functions below (add, ensure, wait_space, seal, wait, next, stats,
 * bound), closures over its userdata.
 * opts: batch_size, flush_interval (s, math.huge: none), max_pending,
 * max_concurrent, overflow (0 block, 1 error, 2 drop_oldest); validated
 * by the wrapper, checked again here.
 */
static int l_batcher_new(lua_State *L) {
  static const char *fname = "fdn.Batcher.new";
  fdn_batcher_options_t opts;
  lfdn_batcher_t *lb;
  lua_Number v;
  size_t size;
  unsigned i;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  fdn_batcher_options_init(&opts);
  opts.counting = 1;
  opts.flush = on_flush;
  opts.due = on_due;
  lua_getfield(L, 1, "batch_size");
  v = lua_tonumber(L, -1);
  if (!(v >= 1 && v <= 9007199254740992.0))
    return lfdn_argerror(L, fname, "opts.batch_size", "a positive integer",
                         lua_gettop(L));
  opts.batch_size = (size_t)v;
  lua_getfield(L, 1, "flush_interval");
  if (lua_type(L, -1) != LUA_TNUMBER ||
      fdn_seconds_to_ns(lua_tonumber(L, -1), &opts.flush_interval) != 0)
    return lfdn_argerror(L, fname, "opts.flush_interval",
                         "a non-negative number", lua_gettop(L));
  lua_getfield(L, 1, "max_pending");
  v = lua_tonumber(L, -1);
  if (!(v >= (lua_Number)opts.batch_size))
    return lfdn_argerror(L, fname, "opts.max_pending",
                         "an integer >= batch_size", lua_gettop(L));
  opts.max_pending =
      v > 9007199254740992.0 ? (size_t)9007199254740992.0 : (size_t)v;
  lua_getfield(L, 1, "max_concurrent");
  v = lua_tonumber(L, -1);
  if (!(v >= 1 && v <= MAX_CONCURRENT))
    return lfdn_argerror(L, fname, "opts.max_concurrent_flushes",
                         "an integer from 1 to 4096", lua_gettop(L));
  opts.max_concurrent = (unsigned)v;
  lua_getfield(L, 1, "overflow");
  v = lua_tonumber(L, -1);
  if (!(v >= 0 && v <= 2))
    return lfdn_argerror(L, fname, "opts.overflow", "an overflow policy",
                         lua_gettop(L));
  opts.overflow = (fdn_overflow_t)(int)v;
  lua_settop(L, 4);

  size = sizeof(*lb) + opts.max_concurrent * sizeof(flusher_slot_t) +
         opts.max_concurrent * sizeof(fdn_batch_t *);
  lb = lua_newuserdata(L, size);
  memset(lb, 0, size);
  lb->discarded = 1; /* until fully set up: __gc does nothing */
  lb->st = lfdn_state(L);
  lb->opts = opts;
  lb->slots = (flusher_slot_t *)(lb + 1);
  lb->ready = (fdn_batch_t **)(lb->slots + opts.max_concurrent);
  for (i = 0; i < opts.max_concurrent; i++)
    lb->slots[i].owner = lb;
  fdn_waitq_init(&lb->idle);
  luaL_getmetatable(L, LFDN_BATCHER_MT);
  lua_setmetatable(L, -2);
  /* The flusher function, the wrapper and the name, for spawning. */
  lua_createtable(L, 4, 0);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, 3);
  lua_rawseti(L, -2, 2);
  lua_pushvalue(L, 4);
  lua_rawseti(L, -2, 3);
  lua_setfenv(L, -2);
  lb->discarded = 0;
  push_methods(L, lua_gettop(L));
  return 1;
}

/* Raises when the running task is one of the batcher's flushers: waiting
 * for the batcher from inside its own handler would wait for itself.
 */
static void refuse_own_flusher(lua_State *L, lfdn_batcher_t *lb,
                               const char *fname) {
  lfdn_task_t *self = lfdn_task_current(lb->engine);
  if (self != NULL && slot_of(lb, self) != NULL)
    lfdn_raise(L, "InvalidState",
               "%s: called from the batcher's own handler, it would wait for "
               "itself",
               fname);
}

/* ensure(): spawns the flushers the batcher needs now. */
static int l_batcher_ensure(lua_State *L) {
  lfdn_batcher_t *lb = self_of(L);
  lfdn_state_t *st = lfdn_state(L);
  while (needs_flusher(lb)) {
    flusher_slot_t *slot = slot_of(lb, NULL);
    lfdn_task_t *task;
    int top = lua_gettop(L);
    lua_getfenv(L, lua_upvalueindex(2));
    lua_rawgeti(L, top + 1, 1);
    lua_rawgeti(L, top + 1, 2);
    lfdn_task_spawn(L, lb->engine, top + 2, LFDN_TASK_RUNS_CANCELLED);
    task = lua_touserdata(L, -1);
    /* Named, so deadlock reports and task lists say what it is. */
    lua_pushvalue(st->S, LFDN_S_NAMES);
    lua_xmove(st->S, L, 1);
    lua_pushvalue(L, -2);
    lua_rawgeti(L, top + 1, 3);
    lua_rawset(L, -3);
    slot->task = task;
    slot->batch = NULL;
    fdn_task_listen(&task->core, &slot->listener, on_flusher_finished);
    lb->flushers++;
    lua_settop(L, top);
  }
  return 0;
}

/* add(open_len) -> room, sealed, need[, dropped, dropped_all]. The
 * wrapper calls it when the open batch has no room left for one more item
 * (per the last grant). room < 0: not added (ADD_FULL, ADD_CLOSED).
 */
static int l_batcher_add(lua_State *L) {
  lfdn_batcher_t *lb = self_of(L);
  size_t n = count_arg(L, 1);
  fdn_batcher_grant_t g;
  int rc;
  bind_engine(L, lb, "Batcher:add");
  rc = fdn_batcher_count_add(&lb->core, n, &g);
  if (rc == FDN_EFULL || rc == FDN_ECLOSED) {
    lua_pushinteger(L, rc == FDN_EFULL ? ADD_FULL : ADD_CLOSED);
    return 1;
  }
  if (rc != 0)
    return lfdn_raise_code(L, "Batcher:add", rc);
  lua_pushnumber(L, (lua_Number)g.room);
  push_seq(L, g.sealed);
  lua_pushboolean(L, needs_flusher(lb));
  if (g.dropped == 0)
    return 3;
  lua_pushnumber(L, (lua_Number)g.dropped);
  lua_pushboolean(L, g.dropped_all);
  return 5;
}

/* wait_space(): parks until there is room or the batcher closes.
 * Nothing on a normal wake or when there is room already; "st, cause"
 * when cancelled or closed.
 */
static int l_batcher_wait_space(lua_State *L) {
  lfdn_batcher_t *lb = self_of(L);
  lfdn_task_t *self;
  int rc;
  bind_engine(L, lb, "Batcher:add");
  refuse_own_flusher(L, lb, "Batcher:add");
  self = lfdn_suspendable(L, "Batcher:add");
  rc = fdn_batcher_wait_space(&lb->core, &self->core);
  if (rc == 1)
    return 0;
  if (rc == FDN_ECLOSED) {
    lua_pushinteger(L, FDN_ECLOSED);
    lua_pushinteger(L, 0);
    return 2;
  }
  if (rc != 0)
    return lfdn_push_park_failure(L, self, rc, "Batcher:add");
  return lfdn_yield(L, self, "Batcher:add");
}

/* seal(open_len, reason[, from_flusher]) -> sealed, last_seq, need.
 * reason: 2 manual, 3 close (which also closes the batcher). Refused from
 * the batcher's own flusher (whoever seals then waits for the flush),
 * except for a flusher draining (`from_flusher`).
 */
static int l_batcher_seal(lua_State *L) {
  lfdn_batcher_t *lb = self_of(L);
  size_t n = count_arg(L, 1);
  int reason = (int)lua_tointeger(L, 2);
  const char *fname =
      reason == FDN_BATCH_CLOSE ? "Batcher:close" : "Batcher:flush";
  uint64_t seq = 0;
  int rc;
  bind_engine(L, lb, fname);
  if (!lua_toboolean(L, 3)) /* a draining flusher seals but never waits */
    refuse_own_flusher(L, lb, fname);
  rc = fdn_batcher_count_seal(
      &lb->core, n,
      reason == FDN_BATCH_CLOSE ? FDN_BATCH_CLOSE : FDN_BATCH_MANUAL, &seq);
  if (rc != 0)
    return lfdn_raise_code(L, fname, rc);
  if (reason == FDN_BATCH_CLOSE && !fdn_batcher_closing(&lb->core)) {
    fdn_batcher_close(&lb->core, NULL);
    /* A flusher watching the timer has nothing more to watch. */
    fdn_waitq_wake_all(&lb->idle, 0);
  }
  push_seq(L, seq);
  lua_pushnumber(L, (lua_Number)fdn_batcher_last_seq(&lb->core));
  lua_pushboolean(L, needs_flusher(lb));
  return 3;
}

/* wait(seq) waits for every batch up to `seq` to be flushed;
 * seq < 0: for the close to complete. Returns "false, done, need" without
 * parking when done, or when a flusher must be spawned first; nothing
 * after a normal wake (check again); "st, cause" when cancelled.
 */
static int l_batcher_wait(lua_State *L) {
  lfdn_batcher_t *lb = self_of(L);
  lua_Number target = lua_tonumber(L, 1);
  const char *fname = target < 0 ? "Batcher:close" : "Batcher:flush";
  lfdn_task_t *self;
  int done, rc;
  bind_engine(L, lb, fname);
  done = target < 0 ? fdn_batcher_closed(&lb->core)
                    : fdn_batcher_flushed(&lb->core, (uint64_t)target);
  if (done || needs_flusher(lb)) {
    lua_pushboolean(L, 0);
    lua_pushboolean(L, done);
    lua_pushboolean(L, !done);
    return 3;
  }
  refuse_own_flusher(L, lb, fname);
  self = lfdn_suspendable(L, fname);
  rc = fdn_batcher_wait_progress(&lb->core, &self->core);
  if (rc != 0)
    return lfdn_push_park_failure(L, self, rc, fname);
  return lfdn_yield(L, self, fname);
}

/* Ends the batch the calling flusher held (seq `done`, failed or not). */
static void finish_held(lua_State *L, lfdn_batcher_t *lb, flusher_slot_t *slot,
                        lua_Number done, int failed) {
  fdn_batch_t *batch = slot->batch;
  if (batch == NULL || (lua_Number)batch->seq != done)
    lfdn_raise(L, "InvalidState",
               "Batcher (flusher): batch %f is not the one it holds", done);
  slot->batch = NULL;
  lb->busy--;
  fdn_batcher_done(&lb->core, batch, failed);
}

/* next(open_len[, done, failed[, lingered[, draining]]]), called by a
 * flusher: first reports batch `done` finished (when given), then ->
 * "false, seq, sealed, need". seq > 0: run that batch; 0: nothing to do,
 * end; nil: call again. sealed: the time trigger sealed the open batch
 * under that seq. Parks while watching the time trigger, or lingering for
 * work (unless `lingered`): nothing on wake, "st, cause" when cancelled or
 * when the linger ran out (ETIMEDOUT: call again with `lingered`). A
 * cancelled flusher gets no work unless `draining` (then it never parks).
 */
static int l_batcher_next(lua_State *L) {
  static const char *fname = "Batcher (flusher)";
  lfdn_batcher_t *lb = self_of(L);
  size_t n = count_arg(L, 1);
  lfdn_task_t *self;
  flusher_slot_t *slot;
  uint64_t sealed = 0;
  int rc, cancelled, draining = lua_toboolean(L, 5);
  bind_engine(L, lb, fname);
  self = lfdn_task_current(lb->engine);
  slot = self != NULL ? slot_of(lb, self) : NULL;
  if (slot == NULL)
    return lfdn_raise(L, "InvalidState", "%s: not a flusher task", fname);
  if (!lua_isnoneornil(L, 2))
    finish_held(L, lb, slot, lua_tonumber(L, 2), lua_toboolean(L, 3));
  else if (slot->batch != NULL)
    return lfdn_raise(L, "InvalidState", "%s: a batch is still held", fname);
  if (fdn_batcher_due(&lb->core)) {
    rc = fdn_batcher_count_seal(&lb->core, n, FDN_BATCH_TIME, &sealed);
    if (rc != 0)
      return lfdn_raise_code(L, fname, rc);
  } else if ((rc = fdn_batcher_count_sync(&lb->core, n)) != 0) {
    return lfdn_raise_code(L, fname, rc);
  }
  /* A cancelled flusher takes no new work: it ends, and whoever waits for
   * the batcher (a flush, a close) spawns a fresh one.
   */
  cancelled =
      fdn_task_cancel_pending(&self->core) != FDN_CANCEL_NONE && !draining;
  if (!cancelled && lb->ready_len > 0) {
    fdn_batch_t *batch = ready_pop(lb);
    slot->batch = batch;
    lb->busy++;
    lua_pushboolean(L, 0);
    lua_pushnumber(L, (lua_Number)batch->seq);
    push_seq(L, sealed);
    lua_pushboolean(L, needs_flusher(lb));
    return 4;
  }
  if (sealed != 0) {
    lua_pushboolean(L, 0);
    lua_pushnil(L);
    push_seq(L, sealed);
    lua_pushboolean(L, needs_flusher(lb));
    return 4;
  }
  /* One flusher stays parked: it watches the open batch's time trigger,
   * or, with no batch open, lingers a little for the next batch instead of
   * ending (a producer that pauses briefly then finds it there).
   */
  if (!cancelled && !draining && !fdn_batcher_closing(&lb->core) &&
      fdn_waitq_len(&lb->idle) == 0) {
    int watch = fdn_batcher_open_len(&lb->core) > 0 &&
                fdn_batcher_timer_armed(&lb->core);
    if (watch || !lua_toboolean(L, 4)) {
      self = lfdn_suspendable(L, fname);
      rc = fdn_task_wait(&self->core, &lb->idle,
                         watch ? FDN_FOREVER : LINGER_NS);
      if (rc != 0)
        return lfdn_push_park_failure(L, self, rc, fname);
      return lfdn_yield(L, self, fname);
    }
  }
  lua_pushboolean(L, 0);
  lua_pushinteger(L, 0);
  lua_pushnil(L);
  lua_pushboolean(L, needs_flusher(lb));
  return 4;
}

static void set_number(lua_State *L, const char *key, lua_Number value) {
  lua_pushnumber(L, value);
  lua_setfield(L, -2, key);
}

/* stats(open_len) -> table. */
static int l_batcher_stats(lua_State *L) {
  lfdn_batcher_t *lb = self_of(L);
  size_t n = count_arg(L, 1);
  fdn_batcher_stats_t s;
  memset(&s, 0, sizeof(s));
  if (lb->initialized) {
    if (lb->engine != NULL && !lb->engine->closed)
      fdn_batcher_count_sync(&lb->core, n);
    fdn_batcher_get_stats(&lb->core, &s);
  }
  lua_createtable(L, 0, 12);
  set_number(L, "added", (lua_Number)s.added);
  set_number(L, "dropped", (lua_Number)s.dropped);
  set_number(L, "batches", (lua_Number)s.batches);
  set_number(L, "flushed", (lua_Number)s.flushed);
  set_number(L, "failed", (lua_Number)s.failed);
  set_number(L, "buffered", (lua_Number)s.buffered);
  set_number(L, "in_flight", (lua_Number)s.in_flight);
  set_number(L, "flushers", (lua_Number)lb->flushers);
  lua_createtable(L, 0, 4);
  set_number(L, "size", (lua_Number)s.by_reason[FDN_BATCH_SIZE]);
  set_number(L, "time", (lua_Number)s.by_reason[FDN_BATCH_TIME]);
  set_number(L, "manual", (lua_Number)s.by_reason[FDN_BATCH_MANUAL]);
  set_number(L, "close", (lua_Number)s.by_reason[FDN_BATCH_CLOSE]);
  lua_setfield(L, -2, "reasons");
  return 1;
}

/* bound() -> whether it was ever used inside an engine. */
static int l_batcher_bound(lua_State *L) {
  lua_pushboolean(L, self_of(L)->initialized);
  return 1;
}

/* FFI fast paths ----------------------------------------------------------
 *
 * A classic C function called from a JIT trace leaves the trace (~150 ns);
 * an FFI call is compiled into it. The two boundary calls every batch
 * makes (the producer's add past its room, the flusher's "done, next")
 * therefore also exist as plain C functions the wrapper calls through the
 * FFI when LuaJIT has it. They never call Lua, never raise and never park:
 * when something needs any of that (binding to an engine, an error, a
 * flusher to park or end), they return "use the classic call" before
 * changing anything, or after finishing what they did (see each).
 */

#define FFI_CLASSIC (-3.0)

static int bound_fast(const lfdn_batcher_t *lb) {
  return lb->engine != NULL && lb->engine == lb->st->engine &&
         !lb->engine->closed && !lb->discarded;
}

/* add(open_len) through the FFI: the room (>= 0), ADD_FULL, ADD_CLOSED, or
 * FFI_CLASSIC (nothing done). out: sealed seq, need, dropped seq,
 * dropped_all (0 for none).
 */
static double ffi_add(void *p, double open_len, double *out) {
  lfdn_batcher_t *lb = p;
  fdn_batcher_grant_t g;
  int rc;
  if (!bound_fast(lb))
    return FFI_CLASSIC;
  rc = fdn_batcher_count_add(&lb->core,
                             open_len >= 0 && open_len < 9007199254740992.0
                                 ? (size_t)open_len
                                 : SIZE_MAX,
                             &g);
  if (rc == FDN_EFULL)
    return ADD_FULL;
  if (rc == FDN_ECLOSED)
    return ADD_CLOSED;
  if (rc != 0)
    return FFI_CLASSIC; /* unchanged: the classic call raises */
  out[0] = (double)g.sealed;
  out[1] = needs_flusher(lb);
  out[2] = (double)g.dropped;
  out[3] = g.dropped_all;
  return (double)g.room;
}

/* next(open_len, done, failed) through the FFI, for a flusher: -1 when
 * nothing was done (use the classic call, with `done`); otherwise `done`
 * (if nonzero) was reported and the result is the seq of the batch taken
 * to run, or 0 when the classic call (without `done`) must decide. out:
 * sealed seq (the time trigger sealed the open batch: rotate it first),
 * need.
 */
static double ffi_next(void *p, double open_len, double done, int failed,
                       double *out) {
  lfdn_batcher_t *lb = p;
  lfdn_task_t *self;
  flusher_slot_t *slot;
  size_t n = open_len >= 0 && open_len < 9007199254740992.0 ? (size_t)open_len
                                                            : SIZE_MAX;
  uint64_t sealed = 0;
  out[0] = 0;
  out[1] = 0;
  if (!bound_fast(lb) || (self = lfdn_task_current(lb->engine)) == NULL ||
      (slot = slot_of(lb, self)) == NULL)
    return -1;
  if (done != 0) {
    fdn_batch_t *batch = slot->batch;
    if (batch == NULL || (double)batch->seq != done)
      return -1;
    slot->batch = NULL;
    lb->busy--;
    fdn_batcher_done(&lb->core, batch, failed);
  } else if (slot->batch != NULL) {
    return -1;
  }
  if (fdn_batcher_due(&lb->core)) {
    if (fdn_batcher_count_seal(&lb->core, n, FDN_BATCH_TIME, &sealed) != 0)
      return 0; /* still due: the classic call retries and raises */
  } else if (fdn_batcher_count_sync(&lb->core, n) != 0) {
    return 0;
  }
  out[0] = (double)sealed;
  out[1] = needs_flusher(lb);
  if (fdn_task_cancel_pending(&self->core) != FDN_CANCEL_NONE ||
      lb->ready_len == 0)
    return 0;
  slot->batch = ready_pop(lb);
  lb->busy++;
  out[1] = needs_flusher(lb);
  return (double)slot->batch->seq;
}

static void push_methods(lua_State *L, int ud) {
  static const luaL_Reg methods[] = {{"ensure", l_batcher_ensure},
                                     {"add", l_batcher_add},
                                     {"wait_space", l_batcher_wait_space},
                                     {"seal", l_batcher_seal},
                                     {"wait", l_batcher_wait},
                                     {"next", l_batcher_next},
                                     {"stats", l_batcher_stats},
                                     {"bound", l_batcher_bound},
                                     {NULL, NULL}};
  lua_createtable(L, 0, 9);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, ud);
  luaL_setfuncs(L, methods, 2);
  /* For the FFI fast paths; the closures above keep the userdata alive. */
  lua_pushlightuserdata(L, lua_touserdata(L, ud));
  lua_setfield(L, -2, "pointer");
}

/* A batcher collected while it still held batches: they are lost, which
 * is reported, never silent. Its flushers hold it alive, so none is left.
 */
static int l_batcher_gc(lua_State *L) {
  lfdn_batcher_t *lb = lua_touserdata(L, 1);
  lfdn_state_t *st = lb->st;
  unsigned i;
  if (lb->discarded)
    return 0;
  lb->discarded = 1;
  for (i = 0; i < lb->opts.max_concurrent; i++)
    if (lb->slots[i].task != NULL)
      fdn_listener_remove(&lb->slots[i].listener);
  if (lb->initialized) {
    fdn_batcher_stats_t stats;
    size_t left;
    fdn_batcher_get_stats(&lb->core, &stats);
    left = stats.buffered + stats.in_flight;
    if (left > 0 && st != NULL && !st->closed) {
      lua_createtable(L, 0, 1);
      lua_pushfstring(L,
                      "a Batcher was garbage-collected without being closed; "
                      "%d buffered or in-flight items were never delivered",
                      (int)left);
      lua_setfield(L, -2, "message");
      lfdn_report_later(st, L, "batcher_collected");
    }
    fdn_batcher_discard(&lb->core);
  }
  return 0;
}

void lfdn_open_batcher(lua_State *L) {
  static const luaL_Reg funcs[] = {{"batcher_new", l_batcher_new},
                                   {NULL, NULL}};
  int state = lua_gettop(L);
  luaL_newmetatable(L, LFDN_BATCHER_MT);
  lua_pushcfunction(L, l_batcher_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushliteral(L, LFDN_BATCHER_MT);
  lua_setfield(L, -2, "__name");
  lua_settop(L, state);
  lfdn_register(L, funcs);
  /* The FFI fast paths, as addresses for ffi.cast (internal). */
  lua_pushlightuserdata(L, (void *)(uintptr_t)ffi_add);
  lua_setfield(L, state - 1, "_batcher_ffi_add");
  lua_pushlightuserdata(L, (void *)(uintptr_t)ffi_next);
  lua_setfield(L, state - 1, "_batcher_ffi_next");
}
