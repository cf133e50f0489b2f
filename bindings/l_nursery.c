/* Nurseries as Lua sees them: the machinery of fdn.TaskManager.
 *
 * nursery_spawn() makes a task that does not start (LFDN_TASK_DEFERRED)
 * and hands it to the core nursery, which starts it when a slot is free.
 * So a child runs its function directly, with no Lua wrapper: its errors
 * keep their own traceback, and a child waiting for a slot costs nothing
 * but its record.
 *
 * Children need no anchor of their own: a live task is anchored by its
 * engine. When one fails, the core's completion callback (run inside that
 * child's finish, on the worker thread W, see lfdn.h) appends its handle
 * to the failures list, the userdata's environment, for the scope to
 * raise. Member records come from a per-nursery free list, so adding a
 * child allocates nothing in the steady state.
 */
#include <stdlib.h>
#include <string.h>

#include "lfdn_wait.h"

#define MEMBERS_PER_BLOCK 64

typedef struct member_block_s {
  struct member_block_s *next;
  fdn_nursery_member_t members[MEMBERS_PER_BLOCK];
} member_block_t;

typedef struct {
  fdn_nursery_t core;
  lfdn_state_t *st;
  int failures_ref; /* the failures list, for the completion callback */
  uint32_t nfailed;
  int collected;
  fdn_nursery_member_t *free_members; /* linked through `next` */
  member_block_t *blocks;
} lfdn_nursery_t;

/* failures[SCOPE_KEY]: the scope cancelled on abort, kept alive while set. */
#define SCOPE_KEY (-1)

static lfdn_nursery_t *check_nursery(lua_State *L, const char *fname) {
  return lfdn_check_self(L, 1, fname, "a nursery");
}

static fdn_nursery_member_t *alloc_member(lfdn_nursery_t *n) {
  fdn_nursery_member_t *m = n->free_members;
  if (m == NULL) {
    member_block_t *block = malloc(sizeof(*block));
    int i;
    if (block == NULL)
      return NULL;
    block->next = n->blocks;
    n->blocks = block;
    for (i = 0; i < MEMBERS_PER_BLOCK; i++) {
      block->members[i].next = n->free_members;
      n->free_members = &block->members[i];
    }
    m = n->free_members;
  }
  n->free_members = m->next;
  return m;
}

/* Called by the core once a child has finished (inside that child's
 * finish, on the scheduler) or when the nursery lets it go.
 */
static void on_done(fdn_nursery_t *core, fdn_nursery_member_t *m) {
  lfdn_nursery_t *n = (lfdn_nursery_t *)core;
  lfdn_state_t *st = n->st;
  lfdn_task_t *task = (lfdn_task_t *)m->task;
  int record = fdn_task_state(m->task) == FDN_TASK_FAILED && !n->collected &&
               !st->closed && n->failures_ref != LUA_NOREF;
  int ref = n->failures_ref, index = (int)(n->nfailed + (record ? 1 : 0));
  /* The last child gone, the registry need not hold the list any more
   * (the nursery's environment still does).
   */
  int release = ref != LUA_NOREF && !n->collected && !st->closed &&
                fdn_nursery_running(core) + fdn_nursery_pending(core) == 0;
  /* Done with the nursery's memory first: the Lua calls below may run a
   * GC step, and with it the nursery's own finalizer.
   */
  n->nfailed = (uint32_t)index;
  m->task = NULL;
  m->next = n->free_members;
  n->free_members = m;
  if (release)
    n->failures_ref = LUA_NOREF;
  if (record) {
    /* Still anchored by its engine: its finish is not over yet. */
    lua_State *W = st->W;
    lua_rawgeti(W, LUA_REGISTRYINDEX, ref);
    lfdn_task_push(W, task);
    lua_rawseti(W, -2, index);
    lua_pop(W, 1);
  }
  if (release)
    luaL_unref(st->W, LUA_REGISTRYINDEX, ref);
}

static uint64_t check_limit(lua_State *L, int idx) {
  lua_Number v = lua_tonumber(L, idx);
  if (lua_isnoneornil(L, idx))
    return 0;
  if (lua_type(L, idx) != LUA_TNUMBER || !(v >= 1 && v <= 9007199254740992.0) ||
      v != (lua_Number)(uint64_t)v)
    lfdn_argerror(L, "TaskManager.new", "opts.max_concurrent",
                  "an integer >= 1", idx);
  return (uint64_t)v;
}

/* nursery_new(limit|nil, fail_fast) -> a nursery. */
static int l_nursery_new(lua_State *L) {
  uint64_t limit = check_limit(L, 1);
  int fail_fast = lua_toboolean(L, 2);
  lfdn_nursery_t *n = lua_newuserdata(L, sizeof(*n));
  memset(n, 0, sizeof(*n));
  n->failures_ref = LUA_NOREF;
  n->st = lfdn_state(L);
  fdn_nursery_init(&n->core, limit, fail_fast, on_done);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setmetatable(L, -2);
  lua_newtable(L);
  lua_setfenv(L, -2);
  return 1;
}

/* nursery_spawn(n, fn, ...) -> a Task that starts when a slot is free. */
static int l_nursery_spawn(lua_State *L) {
  lfdn_nursery_t *n = check_nursery(L, "TaskManager:create_task");
  lfdn_engine_t *engine = lfdn_engine_bound(L, "TaskManager:create_task");
  int t = lua_type(L, 2), rc;
  fdn_nursery_member_t *member;
  lfdn_task_t *task;
  if (t != LUA_TFUNCTION && t != LUA_TTABLE && t != LUA_TUSERDATA)
    return lfdn_argerror(L, "TaskManager:create_task", "fn", "a function", 2);
  if (fdn_nursery_aborted(&n->core))
    return lfdn_raise(L, "Closed",
                      "TaskManager:create_task: the manager is stopping (a "
                      "task failed or the scope was cancelled)");
  lfdn_task_spawn(L, engine, 2, LFDN_TASK_DEFERRED);
  task = lua_touserdata(L, -1);
  /* What task:describe() and deadlock reports show until it starts. */
  task->where = "TaskManager (waiting for a slot)";
  member = alloc_member(n);
  if (member == NULL) {
    lfdn_task_abandon(task); /* never to be started: end it now */
    lfdn_vm_sync(engine->st, L);
    return lfdn_raise(L, "Error", "TaskManager:create_task: out of memory");
  }
  rc = fdn_nursery_add(&n->core, member, &task->core);
  if (rc != 0)
    return lfdn_raise_code(L, "TaskManager:create_task", rc);
  /* The completion callback reaches the failures list through the
   * registry, held only while children are live (see on_done).
   */
  if (n->failures_ref == LUA_NOREF) {
    lua_getfenv(L, 1);
    n->failures_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 1;
}

/* nursery_wait(n, timeout): nothing once no child is left; "st, cause"
 * when the waiting task is cancelled or the wait timed out.
 */
static int l_nursery_wait(lua_State *L) {
  lfdn_nursery_t *n = check_nursery(L, "TaskManager:__exit");
  uint64_t timeout = lfdn_check_timeout(L, 2, "TaskManager:__exit");
  lfdn_task_t *task = lfdn_parkable_task(L);
  int rc;
  if (task == NULL) {
    if (fdn_nursery_running(&n->core) + fdn_nursery_pending(&n->core) == 0)
      return 0;
    lfdn_suspendable(L, "TaskManager:__exit");
  }
  rc = fdn_nursery_wait(&n->core, &task->core, timeout);
  if (rc == 1)
    return 0;
  if (rc == 0)
    return lfdn_yield(L, task, "TaskManager:__exit");
  return lfdn_wait_failed(L, task, rc, "TaskManager:__exit");
}

static int l_nursery_abort(lua_State *L) {
  fdn_nursery_abort(&check_nursery(L, "TaskManager:abort")->core);
  return 0;
}

/* nursery_set_scope(n, scope|nil) */
static int l_nursery_set_scope(lua_State *L) {
  lfdn_nursery_t *n = check_nursery(L, "TaskManager:__enter");
  fdn_scope_t *scope = NULL;
  if (!lua_isnoneornil(L, 2))
    scope = luaL_checkudata(L, 2, LFDN_SCOPE_MT); /* its core comes first */
  lua_settop(L, 2);
  lua_getfenv(L, 1);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, SCOPE_KEY);
  fdn_nursery_set_scope(&n->core, scope);
  return 0;
}

/* nursery_failures(n) -> the failed children's handles, in order. */
static int l_nursery_failures(lua_State *L) {
  check_nursery(L, "TaskManager:errors");
  lua_getfenv(L, 1);
  return 1;
}

/* nursery_counts(n) -> running, waiting for a slot, finished, failed,
 * aborted
 */
static int l_nursery_counts(lua_State *L) {
  lfdn_nursery_t *n = check_nursery(L, "TaskManager:active");
  lua_pushnumber(L, (lua_Number)fdn_nursery_running(&n->core));
  lua_pushnumber(L, (lua_Number)fdn_nursery_pending(&n->core));
  lua_pushnumber(L, (lua_Number)fdn_nursery_finished(&n->core));
  lua_pushnumber(L, (lua_Number)fdn_nursery_failed(&n->core));
  lua_pushboolean(L, fdn_nursery_aborted(&n->core));
  return 5;
}

/* A nursery collected while children live lets them go on, unwatched. */
static int l_nursery_gc(lua_State *L) {
  lfdn_nursery_t *n = lua_touserdata(L, 1);
  member_block_t *block;
  n->collected = 1;
  fdn_nursery_detach(&n->core);
  if (!n->st->closed && n->failures_ref != LUA_NOREF)
    luaL_unref(L, LUA_REGISTRYINDEX, n->failures_ref);
  n->failures_ref = LUA_NOREF;
  while ((block = n->blocks) != NULL) {
    n->blocks = block->next;
    free(block);
  }
  n->free_members = NULL;
  return 0;
}

void lfdn_open_nursery(lua_State *L) {
  static const luaL_Reg funcs[] = {{"nursery_new", l_nursery_new},
                                   {"nursery_spawn", l_nursery_spawn},
                                   {"nursery_wait", l_nursery_wait},
                                   {"nursery_abort", l_nursery_abort},
                                   {"nursery_set_scope", l_nursery_set_scope},
                                   {"nursery_failures", l_nursery_failures},
                                   {"nursery_counts", l_nursery_counts},
                                   {NULL, NULL}};
  int state = lua_gettop(L), module = state - 1, mt;
  lua_newtable(L);
  mt = lua_gettop(L);
  lua_pushcfunction(L, l_nursery_gc);
  lua_setfield(L, mt, "__gc");
  lua_pushliteral(L, "fdn.nursery");
  lua_setfield(L, mt, "__name");
  lua_pushvalue(L, module);
  lfdn_register_with_mt(L, funcs, state, mt);
  lua_settop(L, state);
}
