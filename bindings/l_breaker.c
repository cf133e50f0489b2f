/* The circuit breaker's state machine for Lua (fdn.CircuitBreaker is the
 * facade). Every operation that changes the state returns the change as
 * two extra values (from, to), so the Lua side logs and emits it.
 */
#include <string.h>

#include "lfdn.h"
#include "lfdn_clock.h"

#define LFDN_BREAKER_MT "fdn.breaker"
#define FNAME "fdn.CircuitBreaker.new"

typedef struct {
  fdn_breaker_t core;
  int changed;
  fdn_breaker_state_t from, to;
} lfdn_breaker_t;

static lfdn_breaker_t *check_breaker(lua_State *L) {
  lfdn_breaker_t *b = luaL_checkudata(L, 1, LFDN_BREAKER_MT);
  b->changed = 0;
  return b;
}

static void on_change(fdn_breaker_t *core, fdn_breaker_state_t from,
                      fdn_breaker_state_t to) {
  lfdn_breaker_t *b = (lfdn_breaker_t *)core;
  if (!b->changed)
    b->from = from;
  b->to = to;
  b->changed = 1;
}

/* Pushes the state change, if any, and returns how many values. */
static int push_change(lua_State *L, lfdn_breaker_t *b) {
  if (!b->changed || b->from == b->to)
    return 0;
  lua_pushstring(L, fdn_breaker_state_name(b->from));
  lua_pushstring(L, fdn_breaker_state_name(b->to));
  return 2;
}

static uint32_t check_count(lua_State *L, int idx, const char *param,
                            uint32_t min) {
  lua_Number n = lua_tonumber(L, idx);
  if (lua_type(L, idx) != LUA_TNUMBER || !(n >= min) || n > 4294967295.0 ||
      n != (uint32_t)n)
    lfdn_argerror(L, FNAME, param,
                  min ? "a positive integer" : "a non-negative integer", idx);
  return (uint32_t)n;
}

/* breaker_new(failure_threshold, failure_rate, minimum_calls, window,
 * recovery_timeout, half_open_max, success_threshold) -> breaker
 */
static int l_breaker_new(lua_State *L) {
  fdn_breaker_options_t o;
  lfdn_breaker_t *b;
  fdn_breaker_options_init(&o);
  o.failure_threshold = check_count(L, 1, "failure_threshold", 0);
  o.failure_rate = luaL_checknumber(L, 2);
  if (!(o.failure_rate >= 0.0 && o.failure_rate <= 1.0))
    return lfdn_argerror(L, FNAME, "failure_rate", "a number in [0, 1]", 2);
  o.minimum_calls = check_count(L, 3, "minimum_calls", 0);
  o.window_ns = lfdn_clock_check_seconds(L, 4, FNAME, "window");
  if (o.window_ns == 0)
    return lfdn_argerror(L, FNAME, "window", "a positive number of seconds", 4);
  o.recovery_timeout_ns =
      lfdn_clock_check_seconds(L, 5, FNAME, "recovery_timeout");
  o.half_open_max = check_count(L, 6, "half_open_max", 1);
  o.success_threshold = check_count(L, 7, "success_threshold", 1);
  b = lua_newuserdata(L, sizeof(*b));
  memset(b, 0, sizeof(*b));
  b->core.on_change = on_change;
  b->core.data = b;
  if (fdn_breaker_init(&b->core, &o, lfdn_clock_now(L)) != 0)
    return lfdn_argerror(L, FNAME, "opts", "valid options", 1);
  luaL_getmetatable(L, LFDN_BREAKER_MT);
  lua_setmetatable(L, -2);
  return 1;
}

/* breaker_acquire(b) -> ticket | false, [from, to] */
static int l_breaker_acquire(lua_State *L) {
  lfdn_breaker_t *b = check_breaker(L);
  uint32_t ticket = 0;
  if (fdn_breaker_acquire(&b->core, lfdn_clock_now(L), &ticket) == 0)
    lua_pushnumber(L, (lua_Number)ticket);
  else
    lua_pushboolean(L, 0);
  return 1 + push_change(L, b);
}

/* breaker_record(b, ticket, outcome) -> [from, to]; outcome 0 success,
 * 1 failure, 2 ignored.
 */
static int l_breaker_record(lua_State *L) {
  lfdn_breaker_t *b = check_breaker(L);
  lua_Number ticket = luaL_checknumber(L, 2);
  int outcome = (int)luaL_checkinteger(L, 3);
  if (outcome < 0 || outcome > 2)
    return luaL_argerror(L, 3, "outcome must be 0, 1 or 2");
  fdn_breaker_record(&b->core, lfdn_clock_now(L), (uint32_t)ticket,
                     (fdn_breaker_outcome_t)outcome);
  return push_change(L, b);
}

/* breaker_state(b) -> name, [from, to] */
static int l_breaker_state(lua_State *L) {
  lfdn_breaker_t *b = check_breaker(L);
  lua_pushstring(L, fdn_breaker_state_name(
                        fdn_breaker_state(&b->core, lfdn_clock_now(L))));
  return 1 + push_change(L, b);
}

/* breaker_remaining(b) -> seconds until half-open, or nil when not open;
 * [from, to]
 */
static int l_breaker_remaining(lua_State *L) {
  lfdn_breaker_t *b = check_breaker(L);
  uint64_t left;
  if (fdn_breaker_remaining(&b->core, lfdn_clock_now(L), &left) == 0)
    lua_pushnumber(L, lfdn_clock_seconds(left));
  else
    lua_pushnil(L);
  return 1 + push_change(L, b);
}

/* breaker_force(b, "closed" | "open") -> [from, to] */
static int l_breaker_force(lua_State *L) {
  lfdn_breaker_t *b = check_breaker(L);
  const char *name = luaL_checkstring(L, 2);
  fdn_breaker_state_t state =
      strcmp(name, "open") == 0 ? FDN_BREAKER_OPEN : FDN_BREAKER_CLOSED;
  fdn_breaker_force(&b->core, lfdn_clock_now(L), state);
  return push_change(L, b);
}

static void set_number(lua_State *L, const char *key, uint64_t value) {
  lua_pushnumber(L, (lua_Number)value);
  lua_setfield(L, -2, key);
}

/* breaker_counts(b) -> {calls, successes, failures, ignored, rejected,
 * opened, consecutive_failures, probes}
 */
static int l_breaker_counts(lua_State *L) {
  lfdn_breaker_t *b = check_breaker(L);
  const fdn_breaker_counts_t *c = fdn_breaker_counts(&b->core);
  lua_createtable(L, 0, 8);
  set_number(L, "calls", c->calls);
  set_number(L, "successes", c->successes);
  set_number(L, "failures", c->failures);
  set_number(L, "ignored", c->ignored);
  set_number(L, "rejected", c->rejected);
  set_number(L, "opened", c->opened);
  set_number(L, "consecutive_failures", c->consecutive_failures);
  set_number(L, "probes", c->probes);
  return 1;
}

void lfdn_open_breaker(lua_State *L) {
  static const luaL_Reg funcs[] = {{"breaker_new", l_breaker_new},
                                   {"breaker_acquire", l_breaker_acquire},
                                   {"breaker_record", l_breaker_record},
                                   {"breaker_state", l_breaker_state},
                                   {"breaker_remaining", l_breaker_remaining},
                                   {"breaker_force", l_breaker_force},
                                   {"breaker_counts", l_breaker_counts},
                                   {NULL, NULL}};
  luaL_newmetatable(L, LFDN_BREAKER_MT);
  lua_pop(L, 1);
  lfdn_register(L, funcs);
}
