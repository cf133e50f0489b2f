/* Test support: the hygiene counters a test runner compares before and
 * after each test, and the test modes (FDN_GC_STRESS, FDN_SCHED_SEED) that
 * every engine picks up from the environment when it is created.
 */
#include <stdlib.h>
#include <string.h>

#include "lfdn.h"

/* FDN_GC_STRESS: "task" collects before every task resumes; any other
 * value but "" and "0" before every scheduling pass. Returns 0 (off), 1
 * (per pass) or 2 (per task).
 */
static int gc_stress_requested(void) {
  const char *v = getenv("FDN_GC_STRESS");
  if (v == NULL || v[0] == '\0' || strcmp(v, "0") == 0)
    return 0;
  return strcmp(v, "task") == 0 ? 2 : 1;
}

static uint64_t sched_seed_requested(void) {
  const char *v = getenv("FDN_SCHED_SEED");
  return v != NULL ? strtoull(v, NULL, 10) : 0;
}

/* A full collection before every scheduling pass that runs tasks. It runs
 * on the worker thread W, never on S (see lfdn.h): finalizers it triggers
 * run there, as they would after any allocation in a task.
 */
static uint64_t gc_stress_collections;

void lfdn_gc_stress_collect(lfdn_engine_t *engine) {
  gc_stress_collections++;
  lua_gc(engine->st->W, LUA_GCCOLLECT, 0);
}

void lfdn_test_modes_options(fdn_engine_options_t *opts) {
  if (opts->sched_seed == 0)
    opts->sched_seed = sched_seed_requested();
}

void lfdn_test_modes_apply(lfdn_engine_t *engine) {
  engine->gc_stress = (uint8_t)gc_stress_requested();
  lfdn_engine_update_pass_hook(engine);
}

/* Live registry references (luaL_ref): integer keys holding anything but
 * the numbers luaL_ref keeps on its free list.
 */
static int count_registry_refs(lua_State *L) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, LUA_REGISTRYINDEX) != 0) {
    if (lua_type(L, -2) == LUA_TNUMBER && lua_tonumber(L, -2) >= 1 &&
        lua_type(L, -1) != LUA_TNUMBER)
      n++;
    lua_pop(L, 1);
  }
  return n;
}

/* Raw reads and xmoves only on S (see lfdn.h); counting happens on L. */
static void count_state(lfdn_state_t *st, int *live, int *unobserved,
                        int *pool_dirty) {
  lua_State *S = st->S;
  uint32_t slot;
  int i;
  *live = 0;
  for (slot = 0; slot < st->next_slot; slot++) {
    lfdn_state_push_anchor(st, slot, LFDN_ANCHOR_TASK);
    *live += !lua_isnil(S, -1);
    lua_pop(S, 1);
  }
  *unobserved = 0;
  lua_pushnil(S);
  while (lua_next(S, LFDN_S_UNOBSERVED) != 0) {
    (*unobserved)++;
    lua_pop(S, 1);
  }
  *pool_dirty = 0;
  for (i = 1; i <= st->pool_len; i++) {
    lua_State *co;
    lua_rawgeti(S, LFDN_S_POOL, i);
    co = lua_tothread(S, -1);
    *pool_dirty += co == NULL || lua_gettop(co) != 0 || lua_status(co) != 0;
    lua_pop(S, 1);
  }
}

#define SET_NUMBER(L, name, value)                                             \
  do {                                                                         \
    lua_pushnumber(L, (lua_Number)(value));                                    \
    lua_setfield(L, -2, name);                                                 \
  } while (0)

/* hygiene() -> table of counters; see docs/reliability-hygiene.md. */
static int l_hygiene(lua_State *L) {
  static const char *const gc_modes[] = {"off", "pass", "task"};
  lfdn_state_t *st = lfdn_state(L);
  int s_top = lua_gettop(st->S), w_top = lua_gettop(st->W);
  int live, unobserved, pool_dirty;
  count_state(st, &live, &unobserved, &pool_dirty);
  lua_createtable(L, 0, 16);
  SET_NUMBER(L, "engines_created", fdn_diag_get(FDN_DIAG_ENGINES_CREATED));
  SET_NUMBER(L, "engines_freed", fdn_diag_get(FDN_DIAG_ENGINES_FREED));
  SET_NUMBER(L, "loops_forced", fdn_diag_get(FDN_DIAG_LOOPS_FORCED));
  SET_NUMBER(L, "stack_imbalances", fdn_diag_get(FDN_DIAG_STACK_IMBALANCES));
  lua_pushboolean(L, st->engine != NULL);
  lua_setfield(L, -2, "engine_bound");
  SET_NUMBER(L, "live_tasks", live);
  SET_NUMBER(L, "slots_used", st->next_slot - st->nfree);
  SET_NUMBER(L, "unobserved_failures", unobserved);
  SET_NUMBER(L, "pool", st->pool_len);
  SET_NUMBER(L, "pool_dirty", pool_dirty);
  SET_NUMBER(L, "s_top", s_top);
  SET_NUMBER(L, "s_top_expected", LFDN_S_TOP);
  SET_NUMBER(L, "w_top", w_top);
  SET_NUMBER(L, "registry_refs", count_registry_refs(L));
  lua_pushstring(L, gc_modes[gc_stress_requested()]);
  lua_setfield(L, -2, "gc_stress");
  SET_NUMBER(L, "gc_stress_collections", gc_stress_collections);
  SET_NUMBER(L, "sched_seed", sched_seed_requested());
  return 1;
}

void lfdn_open_diag(lua_State *L) {
  static const luaL_Reg funcs[] = {{"hygiene", l_hygiene}, {NULL, NULL}};
  lfdn_register(L, funcs);
}
