/* The embedding API: loading, calling, results, errors, and closing with
 * work still pending. Built against libfdn like a host would be.
 */
#include <string.h>

#include <fdn/fdn_lua.h>

#include "test.h"

typedef struct {
  int calls;
  int ok;
  char value[128];
  int closed;
} outcome_t;

static void record(fdn_lua_t *h, void *data, int ok, lua_State *L,
                   int nresults) {
  outcome_t *out = data;
  (void)h;
  out->calls++;
  out->ok = ok;
  out->value[0] = '\0';
  if (nresults > 0 && lua_tostring(L, -nresults) != NULL)
    strncpy(out->value, lua_tostring(L, -nresults), sizeof(out->value) - 1);
  /* A callback after fdn_lua_close() returned would see `closed` set. */
  if (out->closed)
    out->calls += 1000;
}

static const char *script =
    "function double(x) fdn.sleep(0.001) return x * 2 end\n"
    "function forever() fdn.sleep(3600) end\n"
    "function fails() error('nope', 0) end\n";

TEST_IMPL(embed_runs_calls_on_its_own_loop) {
  fdn_lua_t *h;
  outcome_t a, b;
  memset(&a, 0, sizeof(a));
  memset(&b, 0, sizeof(b));
  ASSERT_EQ(fdn_lua_new(&h, NULL), 0);
  ASSERT_EQ(fdn_lua_dostring(h, script, "=script"), 0);
  lua_pushinteger(fdn_lua_state(h), 21);
  ASSERT_EQ(fdn_lua_call(h, "double", 1, record, &a), 0);
  ASSERT_EQ(fdn_lua_call(h, "fails", 0, record, &b), 0);
  ASSERT_EQ(lua_gettop(fdn_lua_state(h)), 0);
  ASSERT_EQ(fdn_lua_run(h), 0);
  ASSERT_EQ(a.calls, 1);
  ASSERT_EQ(a.ok, 1);
  ASSERT(strcmp(a.value, "42") == 0);
  ASSERT_EQ(b.calls, 1);
  ASSERT_EQ(b.ok, 0);
  ASSERT(strcmp(b.value, "nope") == 0);
  fdn_lua_close(h);
  return 0;
}

TEST_IMPL(embed_close_cancels_pending_work_and_calls_back_before_returning) {
  fdn_lua_t *h;
  outcome_t out;
  memset(&out, 0, sizeof(out));
  ASSERT_EQ(fdn_lua_new(&h, NULL), 0);
  ASSERT_EQ(fdn_lua_dostring(h, script, "=script"), 0);
  ASSERT_EQ(fdn_lua_call(h, "forever", 0, record, &out), 0);
  /* One turn so the task starts and parks in its hour-long sleep. */
  uv_run(fdn_lua_loop(h), UV_RUN_NOWAIT);
  ASSERT_EQ(out.calls, 0);
  fdn_lua_close(h);
  ASSERT_EQ(out.calls, 1);
  ASSERT_EQ(out.ok, 0);
  out.closed = 1;
  return 0;
}

TEST_IMPL(embed_reports_bad_scripts_and_missing_functions) {
  fdn_lua_t *h;
  outcome_t out;
  memset(&out, 0, sizeof(out));
  ASSERT_EQ(fdn_lua_new(&h, NULL), 0);
  ASSERT_EQ(fdn_lua_dostring(h, "this is not lua", "=bad"), FDN_EINVAL);
  ASSERT(fdn_lua_last_error(h) != NULL);
  ASSERT(strstr(fdn_lua_last_error(h), "bad") != NULL);
  ASSERT_EQ(fdn_lua_dofile(h, "/nonexistent/script.lua"), FDN_EINVAL);
  ASSERT_EQ(fdn_lua_dostring(h, "fdn.sleep(1)", "=suspends"), FDN_EINVAL);
  ASSERT(strstr(fdn_lua_last_error(h), "outside a task") != NULL);
  lua_pushinteger(fdn_lua_state(h), 1);
  ASSERT_EQ(fdn_lua_call(h, "missing", 1, record, &out), FDN_EINVAL);
  ASSERT_EQ(lua_gettop(fdn_lua_state(h)), 0);
  ASSERT_EQ(fdn_lua_call(h, "missing", 5, record, &out), FDN_EINVAL);
  ASSERT_EQ(out.calls, 0);
  fdn_lua_close(h);
  return 0;
}

TEST_IMPL(embed_engine_created_and_destroyed_repeatedly_with_work_pending) {
  int i;
  for (i = 0; i < 200; i++) {
    uv_loop_t loop;
    fdn_lua_options_t opts;
    fdn_lua_t *h;
    outcome_t out;
    memset(&out, 0, sizeof(out));
    memset(&opts, 0, sizeof(opts));
    ASSERT_EQ(uv_loop_init(&loop), 0);
    opts.loop = &loop;
    ASSERT_EQ(fdn_lua_new(&h, &opts), 0);
    ASSERT_EQ(fdn_lua_dostring(h, script, "=script"), 0);
    ASSERT_EQ(fdn_lua_call(h, "forever", 0, record, &out), 0);
    ASSERT_EQ(fdn_lua_call(h, "forever", 0, NULL, NULL), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    fdn_lua_close(h);
    ASSERT_EQ(out.calls, 1);
    /* The engine's handles finish closing on the host's next turn. */
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(uv_loop_close(&loop), 0);
  }
  return 0;
}

TEST_IMPL(embed_virtual_clock) {
  fdn_lua_options_t opts;
  fdn_lua_t *h;
  outcome_t out;
  uint64_t start = uv_hrtime();
  memset(&out, 0, sizeof(out));
  memset(&opts, 0, sizeof(opts));
  opts.clock = FDN_CLOCK_VIRTUAL;
  ASSERT_EQ(fdn_lua_new(&h, &opts), 0);
  ASSERT_EQ(fdn_lua_dostring(h,
                             "function hour() fdn.sleep(3600) "
                             "return tostring(fdn.now()) end",
                             "=v"),
            0);
  ASSERT_EQ(fdn_lua_call(h, "hour", 0, record, &out), 0);
  ASSERT_EQ(fdn_lua_run(h), 0);
  ASSERT_EQ(out.ok, 1);
  ASSERT(strcmp(out.value, "3600") == 0);
  ASSERT(uv_hrtime() - start < 1000000000ull);
  fdn_lua_close(h);
  return 0;
}
