/* Groups: wait for many tasks at once (the machinery of fdn.gather). One
 * listener per task reports completions, so the waiter learns of the first
 * failure the moment it happens, whatever the task's position.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfdn.h"

typedef struct lfdn_group_s lfdn_group_t;

typedef struct {
  fdn_listener_t listener;
  lfdn_group_t *group;
  lfdn_task_t *task;
  int index;
} group_member_t;

struct lfdn_group_s {
  group_member_t *members;
  int n;
  int remaining;
  int first_failed; /* 1-based index in time order; 0 while none */
  uint32_t first_seq;
  lfdn_task_t *waiter;
  int fail_fast;
  int detached;
};

static int wait_is_over(const lfdn_group_t *group) {
  return group->remaining == 0 || (group->fail_fast && group->first_failed);
}

static void note_finished(lfdn_group_t *group, lfdn_task_t *task, int index) {
  if (fdn_task_state(&task->core) != FDN_TASK_DONE &&
      (group->first_failed == 0 || task->finish_seq < group->first_seq)) {
    group->first_failed = index;
    group->first_seq = task->finish_seq;
  }
}

static void on_member_finished(fdn_listener_t *listener, fdn_task_t *core) {
  group_member_t *member = (group_member_t *)listener;
  lfdn_group_t *group = member->group;
  group->remaining--;
  note_finished(group, (lfdn_task_t *)core, member->index);
  if (group->waiter != NULL && wait_is_over(group) &&
      fdn_task_state(&group->waiter->core) == FDN_TASK_WAITING)
    fdn_task_wake(&group->waiter->core, 0);
}

/* Stops listening; the members (task pointers) stay for gather_results. */
static void detach(lfdn_group_t *group) {
  int i;
  if (group->members == NULL || group->detached)
    return;
  for (i = 0; i < group->n; i++)
    fdn_listener_remove(&group->members[i].listener);
  group->detached = 1;
}

/* group_new(list, n): listens to the n tasks of the list. */
static int l_group_new(lua_State *L) {
  lua_Integer count = luaL_checkinteger(L, 2);
  int n, i, copy;
  lfdn_group_t *group;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  /* A count past the list's end fails before anything is allocated for
   * it: if entries 1..n are all there, every border of the list is >= n.
   */
  if (count < 0 || count > INT_MAX / (lua_Integer)sizeof(*group->members))
    return lfdn_argerror(L, "fdn.gather", "tasks.n",
                         "a count of the tasks in the list", 2);
  n = (int)count;
  if ((size_t)n > lua_objlen(L, 1)) {
    char param[32];
    snprintf(param, sizeof(param), "tasks[%d]", (int)lua_objlen(L, 1) + 1);
    lua_rawgeti(L, 1, (int)lua_objlen(L, 1) + 1);
    return lfdn_argerror(L, "fdn.gather", param, "a task", lua_gettop(L));
  }
  group = lua_newuserdata(L, sizeof(*group));
  memset(group, 0, sizeof(*group));
  luaL_getmetatable(L, LFDN_GROUP_MT);
  lua_setmetatable(L, -2);
  group->members = calloc(n > 0 ? (size_t)n : 1, sizeof(*group->members));
  if (group->members == NULL)
    return lfdn_raise(L, "Error", "fdn.gather: out of memory");
  /* The group keeps its own copy of the list: its handles stay alive and
   * unchanged whatever happens to the caller's list while it waits.
   */
  lua_createtable(L, n, 0);
  copy = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    if (lfdn_task_test(L, -1) == NULL) {
      char param[32];
      snprintf(param, sizeof(param), "tasks[%d]", i);
      return lfdn_argerror(L, "fdn.gather", param, "a task", lua_gettop(L));
    }
    group->members[i - 1].task = lua_touserdata(L, -1);
    lua_rawseti(L, copy, i);
  }
  lua_setfenv(L, 3);
  group->n = n;
  for (i = 0; i < n; i++) {
    lfdn_task_t *task = group->members[i].task;
    group->members[i].group = group;
    group->members[i].index = i + 1;
    if (fdn_task_listen(&task->core, &group->members[i].listener,
                        on_member_finished) == 0)
      group->remaining++;
    else
      note_finished(group, task, i + 1);
  }
  return 1;
}

/* group_wait(group, fail_fast): parks until every task has finished (or,
 * failing fast, one failed). Returns nothing then; "st, cause" when the
 * waiting task is cancelled.
 */
static int l_group_wait(lua_State *L) {
  lfdn_group_t *group = luaL_checkudata(L, 1, LFDN_GROUP_MT);
  lfdn_task_t *self;
  int rc;
  group->fail_fast = lua_toboolean(L, 2);
  if (wait_is_over(group))
    return 0;
  self = lfdn_suspendable(L, "fdn.gather");
  rc = fdn_task_park(&self->core, FDN_FOREVER);
  if (rc != 0)
    return lfdn_push_park_failure(L, self, rc, "fdn.gather");
  group->waiter = self;
  return lfdn_yield(L, self, "fdn.gather");
}

static int l_group_first_failed(lua_State *L) {
  lfdn_group_t *group = luaL_checkudata(L, 1, LFDN_GROUP_MT);
  group->waiter = NULL;
  if (group->first_failed == 0)
    return 0;
  lua_pushinteger(L, group->first_failed);
  return 1;
}

static int l_group_close(lua_State *L) {
  lfdn_group_t *group = luaL_checkudata(L, 1, LFDN_GROUP_MT);
  group->waiter = NULL;
  detach(group);
  return 0;
}

/* gather_results(group, return_errors) -> list of the first results of
 * the group's tasks, or their errors with return_errors.
 */
static int l_gather_results(lua_State *L) {
  lfdn_group_t *group = luaL_checkudata(L, 1, LFDN_GROUP_MT);
  int return_errors = lua_toboolean(L, 2), n = group->n, i, out;
  lua_settop(L, 2);
  lua_getfenv(L, 1); /* 3: the group's copy of the tasks */
  lua_createtable(L, n, 0);
  out = lua_gettop(L);
  for (i = 0; i < n; i++) {
    lfdn_task_t *task = group->members[i].task;
    int ok = fdn_task_state(&task->core) == FDN_TASK_DONE;
    if (!ok && !return_errors)
      continue;
    if (ok && (task->flags & LFDN_TASK_INLINE)) {
      /* The common case, without a detour through the handle. */
      if (task->nresults == 0 || task->inline_type == LUA_TNIL)
        continue;
      if (task->inline_type == LUA_TNUMBER)
        lua_pushnumber(L, task->inline_value);
      else
        lua_pushboolean(L, task->inline_value != 0);
    } else {
      lua_rawgeti(L, 3, i + 1);
      lfdn_task_push_outcome(L, task, out + 1, 0);
      lua_settop(L, out + 3); /* handle, ok, first value */
      lua_replace(L, out + 1);
      lua_settop(L, out + 1);
    }
    lua_rawseti(L, out, i + 1);
  }
  return 1;
}

static int l_group_gc(lua_State *L) {
  lfdn_group_t *group = lua_touserdata(L, 1);
  detach(group);
  free(group->members);
  group->members = NULL;
  return 0;
}

void lfdn_open_group(lua_State *L) {
  static const luaL_Reg funcs[] = {{"group_new", l_group_new},
                                   {"group_wait", l_group_wait},
                                   {"group_first_failed", l_group_first_failed},
                                   {"group_close", l_group_close},
                                   {"gather_results", l_gather_results},
                                   {NULL, NULL}};
  int state = lua_gettop(L);
  luaL_newmetatable(L, LFDN_GROUP_MT);
  lua_pushcfunction(L, l_group_gc);
  lua_setfield(L, -2, "__gc");
  lua_settop(L, state);
  lfdn_register(L, funcs);
}
