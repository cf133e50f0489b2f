/* fdn-lua: runs a Lua script as the main task of an fdn engine.
 *
 * Argument handling and error reporting live in fdn/cli.lua; this file
 * sets up the Lua state and owns what must be C: signal handling. The
 * first SIGINT/SIGTERM wakes the loop (uv_async_send is async-signal-safe)
 * and the script is cancelled gracefully; a second one exits at once, even
 * when a task is busy and the loop cannot run.
 *
 * The first signal also arms a watchdog for the grace period (--grace): a
 * POSIX timer made up front (timer_settime is async-signal-safe, so the
 * handler itself arms it) whose SIGALRM ends the process if it is still
 * alive then. That is what bounds a shutdown the loop never gets to run:
 * a task spinning in a pure-Lua loop, where no hook can interrupt it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "fdn/fdn_lua.h"
#include "lfdn.h"

static uv_async_t signal_async;
static volatile sig_atomic_t signal_async_ready;
static volatile sig_atomic_t signal_count;
static volatile sig_atomic_t first_signal;
static lua_State *signal_thread;
static int signal_thread_ref = LUA_NOREF;
static int signal_callback_ref = LUA_NOREF;
static timer_t grace_timer;
static int grace_timer_ready;
static double grace_seconds;

static void on_grace_expired(int sig) {
  static const char msg[] =
      "fdn-lua: the shutdown grace period expired, exiting now\n";
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
  (void)ignored;
  (void)sig;
  _exit(128 + (first_signal ? first_signal : SIGINT));
}

/* Called from the signal handler: only async-signal-safe calls. */
static void arm_grace_timer(void) {
  struct itimerspec its;
  double whole;
  if (!grace_timer_ready)
    return;
  memset(&its, 0, sizeof(its));
  whole = (double)(time_t)grace_seconds;
  its.it_value.tv_sec = (time_t)whole;
  its.it_value.tv_nsec = (long)((grace_seconds - whole) * 1e9);
  if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
    its.it_value.tv_nsec = 1; /* zero would disarm it */
  timer_settime(grace_timer, 0, &its, NULL);
}

static void on_signal(int sig) {
  signal_count++;
  if (signal_count == 1 && signal_async_ready) {
    first_signal = sig;
    arm_grace_timer();
    uv_async_send(&signal_async);
    return;
  }
  if (signal_count > 1) {
    static const char msg[] = "fdn-lua: second signal, exiting now\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)ignored;
  }
  _exit(128 + sig);
}

/* Calls the Lua signal callback; run protected, since even pushing its
 * arguments may fail (out of memory) and this runs in a libuv callback.
 */
static int call_signal_callback(lua_State *T) {
  lua_rawgeti(T, LUA_REGISTRYINDEX, signal_callback_ref);
  lua_pushstring(T, first_signal == SIGTERM ? "SIGTERM" : "SIGINT");
  lua_pushinteger(T, first_signal);
  lua_call(T, 2, 0);
  return 0;
}

static void on_signal_async(uv_async_t *handle) {
  lua_State *T = signal_thread;
  (void)handle;
  if (T == NULL || signal_callback_ref == LUA_NOREF)
    return;
  if (lua_cpcall(T, call_signal_callback, NULL) != 0) {
    fprintf(stderr, "fdn-lua: signal handler failed: %s\n",
            lua_tostring(T, -1) ? lua_tostring(T, -1) : "(error object)");
    lua_pop(T, 1);
  }
}

static void set_handlers(void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

/* The watchdog's timer, made before any signal can come. Without one
 * (timer_create failed) the grace period is not enforced from C.
 */
static void make_grace_timer(double seconds) {
  struct sigevent sev;
  struct sigaction sa;
  if (grace_timer_ready || !(seconds >= 0) || seconds > 1e9)
    return; /* math.huge: no watchdog */
  memset(&sev, 0, sizeof(sev));
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = SIGALRM;
  if (timer_create(CLOCK_MONOTONIC, &sev, &grace_timer) != 0)
    return;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_grace_expired;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  grace_seconds = seconds;
  grace_timer_ready = 1;
}

/* watch_signals(engine, callback(signame, signo), grace_seconds) */
static int l_watch_signals(lua_State *L) {
  lfdn_engine_t *engine = luaL_checkudata(L, 1, LFDN_ENGINE_MT);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (signal_async_ready || engine->core == NULL)
    return 0;
  make_grace_timer(luaL_optnumber(L, 3, -1));
  signal_thread = lua_newthread(L);
  signal_thread_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, 2);
  signal_callback_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  uv_async_init(fdn_engine_loop(engine->core), &signal_async, on_signal_async);
  /* Signals must not keep the loop alive once the script is done. */
  uv_unref((uv_handle_t *)&signal_async);
  signal_async_ready = 1;
  set_handlers(on_signal);
  return 0;
}

static int l_unwatch_signals(lua_State *L) {
  if (!signal_async_ready)
    return 0;
  /* Until the process exits, a signal now ends it at once. */
  signal_async_ready = 0;
  uv_close((uv_handle_t *)&signal_async, NULL);
  luaL_unref(L, LUA_REGISTRYINDEX, signal_callback_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, signal_thread_ref);
  signal_callback_ref = LUA_NOREF;
  signal_thread_ref = LUA_NOREF;
  signal_thread = NULL;
  return 0;
}

static int message_handler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL)
    msg =
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1), i;
  char **argv = lua_touserdata(L, 2);
  static const luaL_Reg native[] = {{"watch_signals", l_watch_signals},
                                    {"unwatch_signals", l_unwatch_signals},
                                    {NULL, NULL}};
  /* As lua.c does: no collection while the libraries load (everything
   * they allocate stays alive anyway); it restarts before user code runs.
   */
  lua_gc(L, LUA_GCSTOP, 0);
  luaL_openlibs(L);
  fdn_lua_preload(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "fdn.cli");
  lua_call(L, 1, 1);
  lua_gc(L, LUA_GCRESTART, 0);
  lua_getfield(L, -1, "main");
  lua_createtable(L, argc, 0);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_newtable(L);
  luaL_setfuncs(L, native, 0);
  lua_call(L, 2, 1);
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  int status, code = 1;
  if (L == NULL) {
    fprintf(stderr, "fdn-lua: cannot create a Lua state: out of memory\n");
    return 1;
  }
  lua_pushcfunction(L, message_handler);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 1);
  if (status != 0) {
    fprintf(stderr, "fdn-lua: %s\n",
            lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object)");
  } else {
    code = (int)lua_tointeger(L, -1);
  }
  lua_close(L);
  return code;
}
