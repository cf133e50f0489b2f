/* Internal declarations shared by the fdn.core binding files.
 *
 * One lfdn_state_t lives per Lua state. It owns a scratch thread `S` whose
 * stack holds, at fixed indices, the tables every binding file needs, so
 * they are reached without registry lookups on hot paths.
 *
 * The rule that keeps those indices valid: nothing that can run a GC step
 * ever happens on S (no allocation of strings, tables, userdata or threads,
 * no calls). A GC step runs finalizers on the thread that triggered it, and
 * a finalizer running on S would shift every index. S only sees raw
 * gets/sets, pushes of non-collectable values and xmoves; anything that
 * allocates or calls Lua is done on the worker thread W, with relative
 * indices.
 */
#ifndef FDN_LFDN_H
#define FDN_LFDN_H

#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>

#include "fdn/fdn.h"

/* Indices on the scratch thread's stack. */
enum {
  LFDN_S_ANCHORS = 1,      /* slot groups of live and finished tasks */
  LFDN_S_POOL = 2,         /* finished coroutines kept for reuse */
  LFDN_S_HOOKS = 3,        /* Lua hooks: make_error, is_cancelled, report */
  LFDN_S_NAMES = 4,        /* task userdata -> name (weak keys) */
  LFDN_S_TASK_MT = 5,      /* metatable of task userdata */
  LFDN_S_UNOBSERVED = 6,   /* slot+1 -> task id: failures nobody read yet */
  LFDN_S_TASK_MT_DONE = 7, /* metatable of finished tasks needing no __gc */
  LFDN_S_TOP = 7
};

/* Finished coroutines kept for reuse; beyond this they are left to the GC. */
#define LFDN_POOL_MAX 256

/* Each task owns three consecutive anchor entries (a "slot group"). */
enum {
  LFDN_ANCHOR_TASK = 0, /* the task userdata, while it is live */
  LFDN_ANCHOR_CO = 1,   /* its coroutine while live; results after */
  LFDN_ANCHOR_CTX = 2   /* its context while live; traceback after */
};

typedef struct lfdn_engine_s lfdn_engine_t;
typedef struct lfdn_task_s lfdn_task_t;
typedef struct lfdn_resource_s lfdn_resource_t;

/* Slots of the hooks table (set by fdn/init.lua through set_hooks). */
enum {
  LFDN_HOOK_MAKE_ERROR = 1,   /* (class, message, context) -> error */
  LFDN_HOOK_IS_CANCELLED = 2, /* (err) -> boolean */
  LFDN_HOOK_REPORT = 3,       /* (kind, info) */
  LFDN_HOOK_TASK_EVENT = 4,   /* (kind, task, err, traceback); l_events.c */
  LFDN_HOOK_COPY_ARRAY = 5,   /* (from, to, n): to[1..n] = from[1..n] */
  LFDN_HOOK_VM_SYNC = 6,      /* a C function doing nothing; lfdn_vm_sync */
  LFDN_HOOK_REPORT_LATER = 7, /* (kind, info): report at the next pass */
  LFDN_HOOK_FLUSH_LATER = 8   /* (): make the reports kept for later */
};

typedef struct lfdn_state_s {
  lua_State *S;
  lua_State *W;
  int S_ref;
  int W_ref;
  lfdn_engine_t *engine; /* the bound engine, or NULL */
  uint32_t *free_slots;
  uint32_t nfree;
  uint32_t free_cap;
  uint32_t next_slot;  /* slot groups ever handed out */
  uint32_t anchor_cap; /* slot groups the anchors' array part holds */
  int pool_len;
  int closed;
  fdn_rng_t rng;       /* used outside any engine */
  const void *task_mt; /* identity of the task metatables, for type checks */
  const void *task_mt_done;
} lfdn_state_t;

enum {
  LFDN_TASK_STARTED = 1u,
  LFDN_TASK_DAEMON = 4u,
  LFDN_TASK_ROOT = 8u,
  LFDN_TASK_PACKED = 16u,   /* several results, packed in a table */
  LFDN_TASK_PARKED = 32u,   /* parked by core.park, so core.wake may wake it */
  LFDN_TASK_DEFERRED = 64u, /* spawned NEW: its owner (a nursery) starts it */
  LFDN_TASK_INLINE = 128u,  /* its one simple result is held in the handle */
  LFDN_TASK_HAS_CTX = 256u, /* its context anchor was set (needs clearing) */
  LFDN_TASK_IN_ENV = 512u,  /* finished; its outcome is in its environment */
  /* Runs its body even when cancelled before it first ran (it sees the
   * cancellation at once): for tasks whose body is itself cleanup, such as
   * a batcher's flushers, which drain what they hold when cancelled.
   */
  LFDN_TASK_RUNS_CANCELLED = 1024u,
  /* Finished, but its outcome could not be stored (out of memory): join
   * raises a fixed error instead.
   */
  LFDN_TASK_LOST = 2048u
};

struct lfdn_task_s {
  fdn_task_t core;
  lfdn_state_t *st;
  lua_State *co;     /* the coroutine while live */
  const char *where; /* the suspending call it is parked in, if any */
  uint32_t slot;     /* LFDN_NO_SLOT once released */
  uint32_t finish_seq;
  uint16_t nresults;
  uint16_t flags;
  uint8_t inline_type; /* LUA_TNIL, LUA_TBOOLEAN or LUA_TNUMBER */
  lua_Number inline_value;
};

#define LFDN_NO_SLOT UINT32_MAX

/* Something a binding keeps open on an engine's loop (a socket). The
 * engine closes whatever is still on its list when it closes, after its
 * tasks have ended and before its loop is closed, so nothing is leaked and
 * the loop can close. `close` must unlink the resource (with
 * lfdn_resource_remove) and must not call into Lua.
 */
struct lfdn_resource_s {
  lfdn_resource_t *next;
  lfdn_resource_t **pprev;
  void (*close)(lfdn_resource_t *res);
};

struct lfdn_engine_s {
  fdn_engine_t *core;
  lfdn_state_t *st;
  lfdn_task_t *root;
  size_t daemons;
  uint32_t finish_seq;
  int ref; /* registry reference while bound */
  int closed;
  fdn_listener_t until; /* engine:run{detach}: stops the loop at its end */
  uv_timer_t *watchdog; /* engine:run{timeout}: the wall-clock limit */
  uint8_t timed_out;
  uint8_t keep_daemons;       /* a detached run: daemons outlive its task */
  lfdn_resource_t *resources; /* open sockets and such (see above) */
  /* engine:census_start(): how the tasks live at that moment (ids up to
   * census_mark) end: census[0] done, [1] failed, [2] cancelled.
   */
  uint64_t census_mark;
  uint32_t census_in_flight;
  uint32_t census[3];
  /* Slots of collected handles whose failure is still to be reported. */
  uint32_t *deferred;
  uint32_t ndeferred;
  uint32_t deferred_cap;
  uint8_t closing;   /* close has begun: reports are no longer deferred */
  uint8_t later;     /* fdn._report_later kept reports for the next pass */
  uint8_t gc_stress; /* FDN_GC_STRESS: 0 off, 1 per pass, 2 per task */
};

#define LFDN_TASK_MT "fdn.task"
#define LFDN_ENGINE_MT "fdn.engine"
#define LFDN_SCOPE_MT "fdn.scope"
#define LFDN_GROUP_MT "fdn.group"

/* l_state.c */
/* Every fdn.core C function carries the state as its first upvalue. */
static inline lfdn_state_t *lfdn_state(lua_State *L) {
  return (lfdn_state_t *)lua_touserdata(L, lua_upvalueindex(1));
}
void lfdn_state_push_anchor(lfdn_state_t *st, uint32_t slot, int which);
/* Pops the value on top of S into the anchor. Never allocates: every
 * anchor entry of a slot handed out lies in the array part of the anchors
 * table (lfdn_state_reserve_slot), so an error can never be raised on S.
 */
void lfdn_state_set_anchor(lfdn_state_t *st, uint32_t slot, int which);
/* Makes sure the slot lfdn_state_alloc_slot hands out next has its anchor
 * entries in the array part of the anchors table, growing it (on L,
 * which may raise "not enough memory") when needed. Call it before
 * anything that cannot be undone; returns FDN_ENOMEM when out of slots.
 */
int lfdn_state_reserve_slot(lfdn_state_t *st, lua_State *L);
int lfdn_state_alloc_slot(lfdn_state_t *st, uint32_t *slot);
void lfdn_state_free_slot(lfdn_state_t *st, uint32_t slot, int has_ctx);
lua_State *lfdn_state_pool_pop(lfdn_state_t *st, lua_State *L);
void lfdn_state_pool_push(lfdn_state_t *st, lua_State *co);
int lfdn_state_get_hook(lfdn_state_t *st, lua_State *L, int hook);
/* Pushes an fdn.errors.Cancelled with `message` onto L (a string when
 * fdn.errors is not loaded); never raises.
 */
void lfdn_push_cancelled(lfdn_state_t *st, lua_State *L, const char *message);

/* Raises an fdn.errors value of class `cls` (an InvalidArgument, ...).
 * Falls back to a plain string when fdn.errors is not loaded.
 */
int lfdn_raise(lua_State *L, const char *cls, const char *fmt, ...);
int lfdn_argerror(lua_State *L, const char *fname, const char *param,
                  const char *expected, int arg);
int lfdn_raise_code(lua_State *L, const char *fname, int rc);
/* Calls hooks.report(kind, info) where info is the table on top of L's
 * stack (popped). Errors in the hook are written to stderr, never raised.
 */
void lfdn_report(lfdn_state_t *st, lua_State *L, const char *kind);
/* The same from a finalizer: the report is made at the engine's next
 * scheduling pass (at once when no engine is open).
 */
void lfdn_report_later(lfdn_state_t *st, lua_State *L, const char *kind);
/* Makes L the thread LuaJIT believes is running. Call it before a C
 * function that ran Lua code on another thread (a task's coroutine, W)
 * returns or raises to its caller on L; see l_state.c for why.
 */
void lfdn_vm_sync(lfdn_state_t *st, lua_State *L);

/* l_engine.c */
lfdn_engine_t *lfdn_engine_bound(lua_State *L, const char *fname);
void lfdn_engine_task_finished(lfdn_engine_t *engine, lfdn_task_t *task);
/* Counts a task that ends in `state` for engine:census(); call it once per
 * task, when it finishes or is abandoned.
 */
void lfdn_engine_census_count(lfdn_engine_t *engine, const lfdn_task_t *task,
                              fdn_task_state_t state);
int lfdn_engine_cancel_all(lfdn_engine_t *engine, int daemons_only);
int lfdn_engine_new_lua(lua_State *L, fdn_engine_options_t *opts);
int lfdn_engine_run_root(lua_State *L, lfdn_engine_t *engine);
int lfdn_engine_close_lua(lua_State *L, lfdn_engine_t *engine);
/* Keeps `slot`'s unread failure to report at the next scheduling pass, the
 * end of a run or close; returns 0 (nothing kept) when it cannot.
 */
int lfdn_engine_defer_report(lfdn_engine_t *engine, uint32_t slot);
/* Installs the pass hook while it has work (deferred reports, GC stress). */
void lfdn_engine_update_pass_hook(lfdn_engine_t *engine);
/* Links `res` into the engine's list of open resources. */
void lfdn_resource_add(lfdn_engine_t *engine, lfdn_resource_t *res);
/* Unlinks `res`; a no-op when it is not linked. */
void lfdn_resource_remove(lfdn_resource_t *res);

/* l_task.c */
lfdn_task_t *lfdn_task_check(lua_State *L, int idx, const char *fname);
lfdn_task_t *lfdn_task_test(lua_State *L, int idx);
lfdn_task_t *lfdn_task_current(lfdn_engine_t *engine);
void lfdn_task_push(lua_State *L, lfdn_task_t *task);
int lfdn_task_spawn(lua_State *L, lfdn_engine_t *engine, int first, int flags);
void lfdn_task_abandon(lfdn_task_t *task);
/* Reports the failure kept in `slot` if nobody has read it (clearing it);
 * returns whether it reported. The slot itself is left to the caller.
 */
int lfdn_task_report_unobserved(lfdn_state_t *st, lua_State *L, uint32_t slot);
/* Pushes the task's outcome: results (join) or true/false + values (wait);
 * join raises the task's error value. Marks the outcome observed. `idx` is
 * the handle's stack index in L, or 0 while the task is still anchored
 * (from a completion listener).
 */
int lfdn_task_push_outcome(lua_State *L, lfdn_task_t *task, int idx, int raise);
void lfdn_task_describe(lua_State *L, lfdn_task_t *task);
int lfdn_task_is_lua(const fdn_task_t *task);

/* Checks that the calling coroutine is a task that may suspend here and
 * returns it; raises a clear error otherwise.
 */
lfdn_task_t *lfdn_suspendable(lua_State *L, const char *fname);

/* The same check, inline for hot paths: the running task when L is it and
 * may yield, NULL otherwise (then call lfdn_suspendable for the error).
 */
static inline lfdn_task_t *lfdn_suspendable_fast(lua_State *L) {
  lfdn_engine_t *engine = lfdn_state(L)->engine;
  fdn_task_t *core;
  lfdn_task_t *task;
  if (engine == NULL || engine->closed || engine->core == NULL)
    return NULL;
  core = fdn_engine_current(engine->core);
  if (core == NULL || !lfdn_task_is_lua(core))
    return NULL;
  task = (lfdn_task_t *)core;
  return task->co == L && lua_isyieldable(L) ? task : NULL;
}
/* Pushes the "st, cause" pair a suspending call returns when it cannot
 * park (cancelled) and returns 2.
 */
int lfdn_push_park_failure(lua_State *L, lfdn_task_t *task, int rc,
                           const char *fname);
/* Parks bookkeeping then yields: `return lfdn_yield(L, task, "fdn.sleep")`. */
int lfdn_yield(lua_State *L, lfdn_task_t *task, const char *where);

/* l_events.c */
/* Calls the task event hook, if one is installed, with `kind` ("failed",
 * "cancelled"), the task's handle, the error value on top of `from` (left
 * there) and, when `traceback` is set, the traceback on top of W. Runs on
 * W while the task's anchors still hold its handle and context. Never
 * raises.
 */
void lfdn_task_event(lfdn_task_t *task, const char *kind, lua_State *from,
                     int traceback);

/* l_diag.c */
/* Test modes from the environment: FDN_SCHED_SEED fills opts->sched_seed
 * (unless set), FDN_GC_STRESS installs a full collection before every
 * scheduling pass of the new engine.
 */
void lfdn_test_modes_options(fdn_engine_options_t *opts);
void lfdn_test_modes_apply(lfdn_engine_t *engine);
/* A full collection on W (FDN_GC_STRESS; run by the pass hook). */
void lfdn_gc_stress_collect(lfdn_engine_t *engine);

/* Registers `funcs` into the module table with the state as upvalue;
 * expects [module, state] on top of L and leaves them there.
 */
void lfdn_register(lua_State *L, const luaL_Reg *funcs);

/* Each bindings/l_<name>.c defines `void lfdn_open_<name>(lua_State *L)`,
 * called with [module, state] on top of L (see lfdn_register); CMake
 * finds them, so a new binding file needs no registration anywhere.
 */
#define XX(fn) void fn(lua_State *L);
#include "lfdn_opens.h"
LFDN_OPEN_FUNCTIONS(XX)
#undef XX

#endif
