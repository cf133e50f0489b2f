/* A host program with its own libuv loop and its own timer, running Lua
 * tasks on the same loop through the embedding API.
 *
 *   embed_host [script.lua]
 *
 * The host's timer keeps ticking while the Lua tasks sleep; each task's
 * result (or error) comes back to a C callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/fdn_lua.h>

static const char *default_script =
    "function fetch(name, steps)\n"
    "  for i = 1, steps do fdn.sleep(0.01) end\n"
    "  return 'fetched ' .. name, steps\n"
    "end\n"
    "function broken()\n"
    "  fdn.sleep(0.005)\n"
    "  error('broken on purpose', 0)\n"
    "end\n";

typedef struct {
  uv_timer_t timer;
  int ticks;
  int pending;
} host_t;

static void on_tick(uv_timer_t *timer) {
  host_t *host = timer->data;
  host->ticks++;
  printf("host: tick %d\n", host->ticks);
  if (host->pending == 0)
    uv_timer_stop(timer);
}

static void on_done(fdn_lua_t *h, void *data, int ok, lua_State *L,
                    int nresults) {
  host_t *host = data;
  (void)h;
  host->pending--;
  if (ok) {
    printf("host: result %s (%d results, second %s)\n",
           lua_tostring(L, -nresults), nresults,
           nresults > 1 ? lua_tostring(L, -nresults + 1) : "none");
  } else {
    printf("host: error %s\n", lua_tostring(L, -1));
  }
}

int main(int argc, char **argv) {
  uv_loop_t loop;
  host_t host;
  fdn_lua_options_t opts;
  fdn_lua_t *fdn;
  lua_State *L;
  int rc;

  memset(&host, 0, sizeof(host));
  uv_loop_init(&loop);
  uv_timer_init(&loop, &host.timer);
  host.timer.data = &host;
  uv_timer_start(&host.timer, on_tick, 15, 15);

  memset(&opts, 0, sizeof(opts));
  opts.loop = &loop;
  rc = fdn_lua_new(&fdn, &opts);
  if (rc != 0) {
    fprintf(stderr, "host: fdn_lua_new failed: %s\n", fdn_strerror(rc));
    return 1;
  }
  rc = argc > 1 ? fdn_lua_dofile(fdn, argv[1])
                : fdn_lua_dostring(fdn, default_script, "=host script");
  if (rc != 0) {
    fprintf(stderr, "host: loading failed: %s\n", fdn_lua_last_error(fdn));
    fdn_lua_close(fdn);
    return 1;
  }

  L = fdn_lua_state(fdn);
  lua_pushstring(L, "users");
  lua_pushinteger(L, 5);
  if (fdn_lua_call(fdn, "fetch", 2, on_done, &host) == 0)
    host.pending++;
  if (fdn_lua_call(fdn, "broken", 0, on_done, &host) == 0)
    host.pending++;
  rc = fdn_lua_call(fdn, "no_such_function", 0, on_done, &host);
  printf("host: calling a missing function: %s\n", fdn_strerror(rc));

  uv_run(&loop, UV_RUN_DEFAULT);
  printf("host: loop done after %d ticks, %d calls pending\n", host.ticks,
         host.pending);

  fdn_lua_close(fdn);
  uv_close((uv_handle_t *)&host.timer, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&loop);
  printf("host: loop closed: %s\n", rc == 0 ? "ok" : uv_strerror(rc));
  return rc == 0 && host.pending == 0 ? 0 : 1;
}
