/* The bulkhead for Lua (fdn.Bulkhead is the facade), on the core's
 * fdn_bulkhead_t and its wait queue.
 *
 * bulkhead_enter returns nothing when it took a free slot at once, and
 * `false` when a leaving caller handed it one after it waited: then the
 * Lua side must check for a cancellation that arrived in between and give
 * the slot back (see core/include/fdn/bulkhead.h).
 */
#include "lfdn.h"
#include "lfdn_clock.h"

#define LFDN_BULKHEAD_MT "fdn.bulkhead"

static fdn_bulkhead_t *check_bulkhead(lua_State *L) {
  return luaL_checkudata(L, 1, LFDN_BULKHEAD_MT);
}

static uint32_t check_limit(lua_State *L, int idx, const char *param,
                            uint32_t min, uint32_t unlimited) {
  lua_Number n = lua_tonumber(L, idx);
  if (lua_type(L, idx) != LUA_TNUMBER || !(n >= min) ||
      (n < 4294967295.0 && n != (uint32_t)n))
    lfdn_argerror(L, "fdn.Bulkhead.new", param,
                  min ? "a positive integer" : "a non-negative integer", idx);
  return n >= 4294967295.0 ? unlimited : (uint32_t)n;
}

/* bulkhead_new(max_concurrent, max_queue) -> bulkhead; math.huge for no
 * limit on the queue.
 */
static int l_bulkhead_new(lua_State *L) {
  uint32_t max_concurrent =
      check_limit(L, 1, "max_concurrent", 1, UINT32_MAX - 1);
  uint32_t max_queue =
      check_limit(L, 2, "max_queue", 0, FDN_BULKHEAD_UNLIMITED);
  fdn_bulkhead_t *bh = lua_newuserdata(L, sizeof(*bh));
  fdn_bulkhead_init(bh, max_concurrent, max_queue);
  luaL_getmetatable(L, LFDN_BULKHEAD_MT);
  lua_setmetatable(L, -2);
  return 1;
}

/* bulkhead_enter(bh, timeout|nil) -> nothing (slot taken at once), false
 * (slot handed over after a wait), "full", "timeout" (no slot and a zero
 * timeout), or the "st, cause" pair after a wait that ended without a slot
 * (ETIMEDOUT, ECANCELED).
 */
static int l_bulkhead_enter(lua_State *L) {
  fdn_bulkhead_t *bh = check_bulkhead(L);
  uint64_t timeout = FDN_FOREVER;
  lfdn_task_t *task;
  int rc;
  if (!lua_isnoneornil(L, 2))
    timeout = lfdn_clock_check_seconds(L, 2, "Bulkhead:acquire", "timeout");
  if (fdn_bulkhead_try_enter(bh) == 0)
    return 0; /* the fast path needs no task */
  task = lfdn_suspendable(L, "Bulkhead:acquire");
  rc = fdn_bulkhead_enter(bh, &task->core, timeout);
  switch (rc) {
  case 0:
    return 0;
  case 1:
    lua_settop(L, 0);
    return lfdn_yield(L, task, "Bulkhead:acquire");
  case FDN_EFULL:
    lua_pushliteral(L, "full");
    return 1;
  case FDN_ETIMEDOUT: /* a zero timeout, counted by the core */
    lua_pushliteral(L, "timeout");
    return 1;
  default:
    return lfdn_push_park_failure(L, task, rc, "Bulkhead:acquire");
  }
}

/* bulkhead_leave(bh): hands the slot to the first waiter (which then sees
 * `false` from its bulkhead_enter) or frees it.
 */
static int l_bulkhead_leave(lua_State *L) {
  fdn_bulkhead_t *bh = check_bulkhead(L);
  fdn_task_t *first = fdn_waitq_first(&bh->waiters);
  if (first != NULL && lfdn_task_is_lua(first)) {
    lua_State *co = ((lfdn_task_t *)first)->co;
    lua_checkstack(co, 1);
    lua_pushboolean(co, 0);
  }
  fdn_bulkhead_leave(bh);
  return 0;
}

/* bulkhead_timed_out(bh): counts a waiter's timeout. */
static int l_bulkhead_timed_out(lua_State *L) {
  fdn_bulkhead_timed_out(check_bulkhead(L));
  return 0;
}

static void set_number(lua_State *L, const char *key, lua_Number value) {
  lua_pushnumber(L, value);
  lua_setfield(L, -2, key);
}

/* bulkhead_stats(bh) -> {active, waiting, admitted, rejected, timed_out,
 * max_concurrent, max_queue}
 */
static int l_bulkhead_stats(lua_State *L) {
  fdn_bulkhead_t *bh = check_bulkhead(L);
  lua_createtable(L, 0, 7);
  set_number(L, "active", fdn_bulkhead_active(bh));
  set_number(L, "waiting", fdn_bulkhead_waiting(bh));
  set_number(L, "admitted", (lua_Number)bh->admitted);
  set_number(L, "rejected", (lua_Number)bh->rejected);
  set_number(L, "timed_out", (lua_Number)bh->timed_out);
  set_number(L, "max_concurrent", bh->max_concurrent);
  set_number(L, "max_queue",
             bh->max_queue == FDN_BULKHEAD_UNLIMITED
                 ? (lua_Number)HUGE_VAL
                 : (lua_Number)bh->max_queue);
  return 1;
}

void lfdn_open_bulkhead(lua_State *L) {
  static const luaL_Reg funcs[] = {{"bulkhead_new", l_bulkhead_new},
                                   {"bulkhead_enter", l_bulkhead_enter},
                                   {"bulkhead_leave", l_bulkhead_leave},
                                   {"bulkhead_timed_out", l_bulkhead_timed_out},
                                   {"bulkhead_stats", l_bulkhead_stats},
                                   {NULL, NULL}};
  luaL_newmetatable(L, LFDN_BULKHEAD_MT);
  lua_pop(L, 1);
  lfdn_register(L, funcs);
}
