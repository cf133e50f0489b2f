/* Per-Lua-state binding state: the scratch thread, task anchors, the
 * coroutine pool, Lua hooks, and the error-raising helpers.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfdn.h"

static int anchor_index(uint32_t slot, int which) {
  return (int)(slot * 3u + 1u + (uint32_t)which);
}

void lfdn_state_push_anchor(lfdn_state_t *st, uint32_t slot, int which) {
  lua_rawgeti(st->S, LFDN_S_ANCHORS, anchor_index(slot, which));
}

/* Pops the value on top of the scratch thread into the anchor. */
void lfdn_state_set_anchor(lfdn_state_t *st, uint32_t slot, int which) {
  lua_rawseti(st->S, LFDN_S_ANCHORS, anchor_index(slot, which));
}

int lfdn_state_reserve_slot(lfdn_state_t *st, lua_State *L) {
  uint32_t need, cap;
  if (st->nfree > 0)
    return 0; /* a free slot's entries are there already */
  if (st->next_slot >= (UINT32_MAX - 4u) / 3u)
    return FDN_ENOMEM;
  need = st->next_slot + 1;
  if (need <= st->anchor_cap)
    return 0;
  cap = st->anchor_cap ? st->anchor_cap : 64;
  while (cap < need)
    cap *= 2;
  if (cap > (uint32_t)(INT_MAX / 3))
    return FDN_ENOMEM;
  /* A bigger table, its array part sized for `cap` slot groups, built on
   * L (it may raise; nothing has changed then) and swapped in.
   */
  lua_createtable(L, (int)(cap * 3u), 0);
  lfdn_state_get_hook(st, L, LFDN_HOOK_COPY_ARRAY);
  lua_pushvalue(st->S, LFDN_S_ANCHORS);
  lua_xmove(st->S, L, 1);
  lua_pushvalue(L, -3);
  lua_pushinteger(L, (lua_Integer)(st->next_slot * 3u));
  lua_call(L, 3, 0);
  lua_xmove(L, st->S, 1);
  lua_replace(st->S, LFDN_S_ANCHORS);
  st->anchor_cap = cap;
  return 0;
}

int lfdn_state_alloc_slot(lfdn_state_t *st, uint32_t *slot) {
  if (st->nfree > 0) {
    *slot = st->free_slots[--st->nfree];
    return 0;
  }
  if (st->next_slot >= (UINT32_MAX - 4u) / 3u)
    return FDN_ENOMEM;
  *slot = st->next_slot++;
  return 0;
}

void lfdn_state_free_slot(lfdn_state_t *st, uint32_t slot, int has_ctx) {
  int i;
  /* A context anchor never set is nil already: skip the store. */
  for (i = 0; i < (has_ctx ? 3 : 2); i++) {
    lua_pushnil(st->S);
    lfdn_state_set_anchor(st, slot, i);
  }
  if (st->nfree == st->free_cap) {
    uint32_t cap = st->free_cap ? st->free_cap * 2 : 256;
    uint32_t *grown = realloc(st->free_slots, cap * sizeof(*grown));
    if (grown == NULL)
      return; /* the slot is simply never reused */
    st->free_slots = grown;
    st->free_cap = cap;
  }
  st->free_slots[st->nfree++] = slot;
}

/* Pushes a coroutine onto L: a pooled one, or a new one. */
lua_State *lfdn_state_pool_pop(lfdn_state_t *st, lua_State *L) {
  lua_State *co;
  if (st->pool_len == 0)
    return lua_newthread(L);
  lua_rawgeti(st->S, LFDN_S_POOL, st->pool_len);
  lua_pushnil(st->S);
  lua_rawseti(st->S, LFDN_S_POOL, st->pool_len--);
  co = lua_tothread(st->S, -1);
  lua_xmove(st->S, L, 1);
  return co;
}

/* Keeps a coroutine that returned normally (its stack emptied) for reuse. */
void lfdn_state_pool_push(lfdn_state_t *st, lua_State *co) {
  if (st->pool_len >= LFDN_POOL_MAX || lua_status(co) != 0)
    return;
  lua_settop(co, 0);
  lua_pushthread(co);
  lua_xmove(co, st->S, 1);
  lua_rawseti(st->S, LFDN_S_POOL, ++st->pool_len);
}

/* Pushes a hook onto L; returns 0 (and pushes nothing) if unset. */
int lfdn_state_get_hook(lfdn_state_t *st, lua_State *L, int hook) {
  lua_rawgeti(st->S, LFDN_S_HOOKS, hook);
  if (lua_isnil(st->S, -1)) {
    lua_pop(st->S, 1);
    return 0;
  }
  lua_xmove(st->S, L, 1);
  return 1;
}

static int raise_with_context(lua_State *L, const char *cls, int has_context) {
  /* Stack: [context] message */
  lfdn_state_t *st = lfdn_state(L);
  if (st == NULL || st->closed ||
      !lfdn_state_get_hook(st, L, LFDN_HOOK_MAKE_ERROR)) {
    if (has_context)
      lua_remove(L, -2);
    return lua_error(L);
  }
  lua_pushstring(L, cls);
  lua_pushvalue(L, -3); /* message */
  if (has_context)
    lua_pushvalue(L, -5);
  else
    lua_pushnil(L);
  lua_call(L, 3, 1);
  return lua_error(L);
}

int lfdn_raise(lua_State *L, const char *cls, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return raise_with_context(L, cls, 0);
}

/* Describes a value the way errors.argerror does ("number -1", "string
 * \"x\"", "boolean true", "nil"), so messages read the same from C and Lua.
 * Pushes the description and returns it.
 */
static const char *describe_value(lua_State *L, int arg) {
  switch (lua_type(L, arg)) {
  case LUA_TNUMBER:
    lua_pushvalue(L, arg);
    return lua_pushfstring(L, "number %s", lua_tostring(L, -1));
  case LUA_TSTRING:
    return lua_pushfstring(L, "string \"%s\"", lua_tostring(L, arg));
  case LUA_TBOOLEAN:
    lua_pushstring(L, lua_toboolean(L, arg) ? "boolean true" : "boolean false");
    break;
  case LUA_TNONE:
    lua_pushliteral(L, "nothing");
    break;
  default:
    lua_pushstring(L, luaL_typename(L, arg));
    break;
  }
  return lua_tostring(L, -1);
}

int lfdn_argerror(lua_State *L, const char *fname, const char *param,
                  const char *expected, int arg) {
  const char *got = describe_value(L, arg);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, fname);
  lua_setfield(L, -2, "function");
  lua_pushstring(L, param);
  lua_setfield(L, -2, "parameter");
  lua_pushstring(L, got);
  lua_setfield(L, -2, "got");
  lua_pushfstring(L, "%s: bad argument '%s' (expected %s, got %s)", fname,
                  param, expected, got);
  return raise_with_context(L, "InvalidArgument", 1);
}

int lfdn_raise_code(lua_State *L, const char *fname, int rc) {
  const char *cls = "Error";
  switch (rc) {
  case FDN_EINVAL:
    cls = "InvalidArgument";
    break;
  case FDN_ECANCELED:
    cls = "Cancelled";
    break;
  case FDN_ETIMEDOUT:
    cls = "Timeout";
    break;
  case FDN_ECLOSED:
    cls = "Closed";
    break;
  case FDN_EFULL:
    cls = "QueueFull";
    break;
  case FDN_ESTATE:
    cls = "InvalidState";
    break;
  default:
    break;
  }
  return lfdn_raise(L, cls, "%s: %s", fname, fdn_strerror(rc));
}

/* Calls hook(kind, info), info being the value on top of L. Returns 1 when
 * the hook ran (info popped); 0 when it is unset or failed (info left, and
 * a failure written to stderr when `complain`).
 */
static int call_report_hook(lfdn_state_t *st, lua_State *L, int hook,
                            const char *kind, int complain) {
  int info = lua_gettop(L);
  if (st->closed || !lfdn_state_get_hook(st, L, hook))
    return 0;
  lua_pushstring(L, kind);
  lua_pushvalue(L, info);
  if (lua_pcall(L, 2, 0, 0) == 0) {
    lua_settop(L, info - 1);
    return 1;
  }
  if (complain)
    fprintf(stderr, "fdn: the report hook failed: %s\n",
            lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object)");
  lua_settop(L, info);
  return 0;
}

void lfdn_report(lfdn_state_t *st, lua_State *L, const char *kind) {
  int info = lua_gettop(L);
  if (call_report_hook(st, L, LFDN_HOOK_REPORT, kind, 1))
    return;
  lua_getfield(L, info, "message");
  fprintf(stderr, "fdn: %s: %s\n", kind,
          lua_tostring(L, -1) ? lua_tostring(L, -1) : "(no message)");
  lua_settop(L, info - 1);
}

void lfdn_report_later(lfdn_state_t *st, lua_State *L, const char *kind) {
  if (!call_report_hook(st, L, LFDN_HOOK_REPORT_LATER, kind, 0))
    lfdn_report(st, L, kind);
}

/* LuaJIT records the thread it runs (for its compiled code) when it enters
 * the VM, and the version Debian 12 ships does not record it again when a
 * C function returns to the VM (LuaJIT fixed that in 2023, issue #1066). A
 * C function that ran Lua code on another thread, a task's coroutine or W,
 * and then returns or raises on L leaves the VM believing that other thread
 * runs: the next exit from compiled code on L restores its state onto the
 * wrong stack, seen as a loop that never ends. A call into the VM on L,
 * of a C function that does nothing, records L again.
 */
void lfdn_vm_sync(lfdn_state_t *st, lua_State *L) {
  if (st == NULL || st->closed || !lua_checkstack(L, 1 + LUA_MINSTACK))
    return;
  if (lfdn_state_get_hook(st, L, LFDN_HOOK_VM_SYNC))
    lua_call(L, 0, 0);
}

void lfdn_push_cancelled(lfdn_state_t *st, lua_State *L, const char *message) {
  if (lfdn_state_get_hook(st, L, LFDN_HOOK_MAKE_ERROR)) {
    lua_pushliteral(L, "Cancelled");
    lua_pushstring(L, message);
    lua_pushnil(L);
    if (lua_pcall(L, 3, 1, 0) == 0)
      return;
    lua_pop(L, 1);
  }
  lua_pushstring(L, message);
}
