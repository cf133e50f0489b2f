/* Channels as Lua sees them: the userdata behind fdn.Queue.
 *
 * The core channel carries integers; the Lua values live in the queue's
 * own table (the userdata's environment), at slots the binding hands out
 * and takes back. A slot is taken back when its value is got, when a put
 * fails, and with the queue itself when it is collected, so no reference
 * outlives the item. The suspending methods end in fdn/queue.lua.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lfdn_wait.h"

typedef struct {
  fdn_channel_t ch;
  uint32_t *free_slots; /* slots to reuse, so the value table stays dense */
  uint32_t nfree;
  uint32_t free_cap;
  uint32_t next_slot; /* slots ever handed out */
} lfdn_queue_t;

static lfdn_queue_t *check_queue(lua_State *L, const char *fname) {
  return lfdn_check_self(L, 1, fname, "a Queue");
}

static uint32_t alloc_slot(lua_State *L, lfdn_queue_t *q, const char *fname) {
  if (q->nfree > 0)
    return q->free_slots[--q->nfree];
  if (q->next_slot == UINT32_MAX - 1)
    lfdn_raise(L, "Error", "%s: too many items in flight", fname);
  return ++q->next_slot;
}

/* Clears the slot's value and makes the slot reusable. The value table
 * must be on top of L.
 */
static void free_slot(lua_State *L, lfdn_queue_t *q, uint32_t slot) {
  lua_pushnil(L);
  lua_rawseti(L, -2, (int)slot);
  if (q->nfree == q->free_cap) {
    uint32_t cap = q->free_cap ? q->free_cap * 2 : 16;
    uint32_t *grown = realloc(q->free_slots, cap * sizeof(*grown));
    if (grown == NULL)
      return; /* the slot is simply never reused */
    q->free_slots = grown;
    q->free_cap = cap;
  }
  q->free_slots[q->nfree++] = slot;
}

/* Stores L[value] at a new slot; leaves the value table on top of L. */
static uint32_t store(lua_State *L, lfdn_queue_t *q, int value,
                      const char *fname) {
  uint32_t slot = alloc_slot(L, q, fname);
  lua_getfenv(L, 1);
  lua_pushvalue(L, value);
  lua_rawseti(L, -2, (int)slot);
  return slot;
}

/* Replaces the value table on top of L with the slot's value, freeing the
 * slot.
 */
static void take(lua_State *L, lfdn_queue_t *q, uint32_t slot) {
  lua_rawgeti(L, -1, (int)slot);
  lua_insert(L, -2);
  free_slot(L, q, slot);
  lua_pop(L, 1);
}

static size_t check_maxsize(lua_State *L, int idx) {
  lua_Number n = lua_tonumber(L, idx);
  if (lua_type(L, idx) == LUA_TNUMBER && n == (lua_Number)HUGE_VAL)
    return FDN_CHANNEL_UNBOUNDED;
  if (lua_type(L, idx) != LUA_TNUMBER || n != n || n < 1 ||
      n > 9007199254740992.0 || n != (lua_Number)(uint64_t)n)
    lfdn_argerror(L, "Queue.new", "maxsize",
                  "an integer >= 1 (or math.huge for no limit)", idx);
  return (size_t)n;
}

/* queue_new(maxsize) -> an empty queue. */
static int l_queue_new(lua_State *L) {
  size_t maxsize = check_maxsize(L, 1);
  lfdn_queue_t *q = lua_newuserdata(L, sizeof(*q));
  memset(q, 0, sizeof(*q));
  fdn_channel_init(&q->ch, maxsize);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setmetatable(L, -2);
  lua_newtable(L);
  lua_setfenv(L, -2);
  return 1;
}

/* queue_put(q, v, timeout): nothing once the value is queued or handed to a
 * getter; "st, cause, true" when it failed at once (the value was never
 * kept); after a failed wait the task resumes with "st, cause" and the
 * wrapper gives the slot back with queue_put_abort().
 */
static int l_queue_put(lua_State *L) {
  lfdn_queue_t *q = check_queue(L, "Queue:put");
  uint64_t timeout = lfdn_check_timeout(L, 3, "Queue:put");
  lfdn_task_t *task = lfdn_parkable_task(L);
  uint32_t slot;
  int rc;
  lua_settop(L, 3);
  slot = store(L, q, 2, "Queue:put");
  rc = fdn_channel_put(&q->ch, task ? &task->core : NULL, (intptr_t)slot,
                       timeout);
  if (rc == 1)
    return 0;
  if (rc == 0) {
    lua_settop(L, 0);
    return lfdn_yield(L, task, "Queue:put");
  }
  free_slot(L, q, slot);
  rc = lfdn_wait_failed(L, task, rc, "Queue:put");
  lua_pushboolean(L, 1);
  return rc + 1;
}

/* queue_put_abort(q): gives back the slot of the running task's failed put. */
static int l_queue_put_abort(lua_State *L) {
  lfdn_queue_t *q = check_queue(L, "Queue:put");
  lfdn_task_t *task = lfdn_task_current(lfdn_state(L)->engine);
  if (task != NULL) {
    lua_getfenv(L, 1);
    free_slot(L, q, (uint32_t)fdn_channel_item(&task->core));
  }
  return 0;
}

/* queue_get(q, timeout): "false, value" when an item was there; nothing
 * after a wait that was handed an item (queue_take() gets it); "st, cause"
 * when closed and drained, cancelled or timed out.
 */
static int l_queue_get(lua_State *L) {
  lfdn_queue_t *q = check_queue(L, "Queue:get");
  uint64_t timeout = lfdn_check_timeout(L, 2, "Queue:get");
  lfdn_task_t *task = lfdn_parkable_task(L);
  intptr_t item;
  int rc = fdn_channel_get(&q->ch, task ? &task->core : NULL, &item, timeout);
  if (rc == 1) {
    lua_pushboolean(L, 0);
    lua_getfenv(L, 1);
    take(L, q, (uint32_t)item);
    return 2;
  }
  if (rc == 0) {
    lua_settop(L, 0);
    return lfdn_yield(L, task, "Queue:get");
  }
  return lfdn_wait_failed(L, task, rc, "Queue:get");
}

/* queue_take(q): the value the running task was handed while it waited. */
static int l_queue_take(lua_State *L) {
  lfdn_queue_t *q = check_queue(L, "Queue:get");
  lfdn_task_t *task = lfdn_task_current(lfdn_state(L)->engine);
  if (task == NULL)
    return 0;
  lua_getfenv(L, 1);
  take(L, q, (uint32_t)fdn_channel_item(&task->core));
  return 1;
}

static int l_try_put(lua_State *L) {
  lfdn_queue_t *q = check_queue(L, "Queue:try_put");
  uint32_t slot;
  int rc;
  if (fdn_channel_closed(&q->ch))
    return lfdn_raise(L, "Closed", "Queue:try_put: the queue is closed");
  lua_settop(L, 2);
  slot = store(L, q, 2, "Queue:try_put");
  rc = fdn_channel_try_put(&q->ch, (intptr_t)slot);
  if (rc != 0) {
    free_slot(L, q, slot);
    if (rc != FDN_EAGAIN)
      return lfdn_raise_code(L, "Queue:try_put", rc);
  }
  lua_pushboolean(L, rc == 0);
  return 1;
}

static int l_try_get(lua_State *L) {
  lfdn_queue_t *q = check_queue(L, "Queue:try_get");
  intptr_t item;
  int rc = fdn_channel_try_get(&q->ch, &item);
  if (rc == FDN_ECLOSED)
    return lfdn_raise(L, "Closed",
                      "Queue:try_get: the queue is closed and drained");
  if (rc != 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushboolean(L, 1);
  lua_getfenv(L, 1);
  take(L, q, (uint32_t)item);
  return 2;
}

static int l_close(lua_State *L) {
  fdn_channel_close(&check_queue(L, "Queue:close")->ch);
  return 0;
}

static int l_len(lua_State *L) {
  lfdn_queue_t *q = check_queue(L, "Queue:len");
  lua_pushnumber(L, (lua_Number)fdn_channel_len(&q->ch));
  return 1;
}

static int l_maxsize(lua_State *L) {
  lfdn_queue_t *q = check_queue(L, "Queue:maxsize");
  size_t n = fdn_channel_maxsize(&q->ch);
  lua_pushnumber(L, n == FDN_CHANNEL_UNBOUNDED ? (lua_Number)HUGE_VAL
                                               : (lua_Number)n);
  return 1;
}

static int l_is_closed(lua_State *L) {
  lfdn_queue_t *q = check_queue(L, "Queue:is_closed");
  lua_pushboolean(L, fdn_channel_closed(&q->ch));
  return 1;
}

static int l_is_empty(lua_State *L) {
  lfdn_queue_t *q = check_queue(L, "Queue:is_empty");
  lua_pushboolean(L, fdn_channel_len(&q->ch) == 0);
  return 1;
}

static int l_is_full(lua_State *L) {
  lfdn_queue_t *q = check_queue(L, "Queue:is_full");
  lua_pushboolean(L, fdn_channel_len(&q->ch) >= fdn_channel_maxsize(&q->ch));
  return 1;
}

static int l_waiting(lua_State *L) {
  lfdn_queue_t *q = check_queue(L, "Queue:waiting");
  lua_pushnumber(L, (lua_Number)fdn_channel_getters(&q->ch));
  lua_pushnumber(L, (lua_Number)fdn_channel_putters(&q->ch));
  return 2;
}

static int l_tostring(lua_State *L) {
  lfdn_queue_t *q = lua_touserdata(L, 1);
  lua_pushfstring(L, "fdn.Queue(%d items%s)", (int)fdn_channel_len(&q->ch),
                  fdn_channel_closed(&q->ch) ? ", closed" : "");
  return 1;
}

static int l_gc(lua_State *L) {
  lfdn_queue_t *q = lua_touserdata(L, 1);
  fdn_channel_destroy(&q->ch);
  free(q->free_slots);
  q->free_slots = NULL;
  q->nfree = q->free_cap = 0;
  return 0;
}

void lfdn_open_channel(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"try_put", l_try_put},   {"try_get", l_try_get},
      {"close", l_close},       {"len", l_len},
      {"maxsize", l_maxsize},   {"is_closed", l_is_closed},
      {"is_empty", l_is_empty}, {"is_full", l_is_full},
      {"waiting", l_waiting},   {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"queue_new", l_queue_new},
                                   {"queue_put", l_queue_put},
                                   {"queue_put_abort", l_queue_put_abort},
                                   {"queue_get", l_queue_get},
                                   {"queue_take", l_queue_take},
                                   {NULL, NULL}};
  static const luaL_Reg meta[] = {
      {"__len", l_len}, {"__gc", l_gc}, {NULL, NULL}};
  lfdn_open_class(L, "fdn.Queue", "queue_methods", methods, meta, l_tostring,
                  funcs);
}
