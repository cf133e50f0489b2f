/* What fdn.testing's leak check sees of a loop: the libuv handles other
 * code opened on the engine's loop, never the engine's own.
 */
#include <string.h>

#include <fdn/fdn_lua.h>

#include "test.h"

static const char *count_handles =
    "local core = require 'fdn.core'\n"
    "local hs = core.engine_handles(core.engine_running())\n"
    "handles = #hs\n"
    "first = hs[1] and (hs[1].type .. ' ' .. tostring(hs[1].active) .. ' ' "
    ".. tostring(hs[1].ref)) or 'none'\n";

static void on_timer(uv_timer_t *timer) {
  (void)timer;
}

static int read_globals(fdn_lua_t *h, char *first, size_t size) {
  lua_State *L = fdn_lua_state(h);
  int n;
  lua_getglobal(L, "handles");
  n = (int)lua_tointeger(L, -1);
  lua_getglobal(L, "first");
  strncpy(first, lua_tostring(L, -1), size - 1);
  first[size - 1] = '\0';
  lua_pop(L, 2);
  return n;
}

TEST_IMPL(embed_engine_handles_lists_only_foreign_open_handles) {
  fdn_lua_t *h;
  uv_timer_t foreign;
  char first[64];
  ASSERT_EQ(fdn_lua_new(&h, NULL), 0);
  ASSERT_EQ(fdn_lua_dostring(h, count_handles, "=count"), 0);
  ASSERT_EQ(read_globals(h, first, sizeof(first)), 0);
  ASSERT(strcmp(first, "none") == 0);

  ASSERT_EQ(uv_timer_init(fdn_lua_loop(h), &foreign), 0);
  ASSERT_EQ(uv_timer_start(&foreign, on_timer, 60000, 0), 0);
  ASSERT_EQ(fdn_lua_dostring(h, count_handles, "=count"), 0);
  ASSERT_EQ(read_globals(h, first, sizeof(first)), 1);
  ASSERT(strcmp(first, "timer true true") == 0);

  uv_timer_stop(&foreign);
  uv_unref((uv_handle_t *)&foreign);
  ASSERT_EQ(fdn_lua_dostring(h, count_handles, "=count"), 0);
  ASSERT_EQ(read_globals(h, first, sizeof(first)), 1);
  ASSERT(strcmp(first, "timer false false") == 0);

  /* A handle being closed is gone as far as leaks go. */
  uv_close((uv_handle_t *)&foreign, NULL);
  ASSERT_EQ(fdn_lua_dostring(h, count_handles, "=count"), 0);
  ASSERT_EQ(read_globals(h, first, sizeof(first)), 0);
  uv_run(fdn_lua_loop(h), UV_RUN_NOWAIT);
  fdn_lua_close(h);
  return 0;
}
