/* The coroutine floor: raw LuaJIT coroutines created and resumed from C
 * (lua_newthread + lua_resume), with no scheduler at all. Nothing a Lua
 * scheduler does can cost less than this.
 *
 *   fdn-bench-floor-coro <W0|W1|W6> [n]
 *
 * W0: one coroutine yields n times, resumed from a C loop.
 * W1: n coroutines, each yields once and returns its index; the results are
 *     collected in order.
 * W6: n coroutines parked (each yielded once, none resumed); memory is read
 *     while all are parked; then every one is resumed to finish.
 * Prints one JSON line for the harness.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss(void) {
  long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL)
    return 0;
  if (fscanf(f, "%ld %ld", &size, &resident) != 2)
    resident = 0;
  fclose(f);
  return resident * 4096;
}

static void load(lua_State *L, const char *code) {
  if (luaL_loadstring(L, code) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
    fprintf(stderr, "floor: %s\n", lua_tostring(L, -1));
    exit(1);
  }
}

static void fail(lua_State *co) {
  fprintf(stderr, "floor: coroutine failed: %s\n", lua_tostring(co, -1));
  exit(1);
}

static int w0(lua_State *L, long n) {
  lua_State *co;
  long count = 0;
  double t0, elapsed;
  int rc;
  load(L, "return function(n) local y = coroutine.yield "
          "for _ = 1, n do y() end return n end");
  co = lua_newthread(L);
  lua_pushvalue(L, -2);
  lua_xmove(L, co, 1);
  lua_pushnumber(co, (lua_Number)n);
  t0 = now();
  rc = lua_resume(co, 1);
  while (rc == LUA_YIELD) {
    count++;
    rc = lua_resume(co, 0);
  }
  elapsed = now() - t0;
  if (rc != 0)
    fail(co);
  printf("{\"workload\":\"W0\",\"n\":%ld,\"elapsed\":%.9f,\"count\":%ld}\n", n,
         elapsed, count);
  return 0;
}

/* W1 and W6: the same life cycle; W6 reads memory while all are parked. */
static int spawn_all(lua_State *L, const char *workload, long n, int measure) {
  lua_State **cos = malloc(sizeof(*cos) * (size_t)n);
  long count = 0, i;
  double sum = 0, t0, elapsed;
  int ordered = 1, anchors;
  long rss0, rss_growth = 0;
  if (cos == NULL)
    return 1;
  load(L, "return function(i) coroutine.yield() return i end");
  lua_createtable(L, (int)n, 0); /* anchors the threads against the GC */
  anchors = lua_gettop(L);
  lua_gc(L, LUA_GCCOLLECT, 0);
  rss0 = rss();
  t0 = now();
  for (i = 0; i < n; i++) {
    lua_State *co = lua_newthread(L);
    lua_rawseti(L, anchors, (int)i + 1);
    lua_pushvalue(L, anchors - 1);
    lua_pushnumber(L, (lua_Number)(i + 1));
    lua_xmove(L, co, 2);
    cos[i] = co;
  }
  for (i = 0; i < n; i++)
    if (lua_resume(cos[i], 1) != LUA_YIELD)
      fail(cos[i]);
  if (measure)
    rss_growth = rss() - rss0;
  for (i = 0; i < n; i++) {
    lua_State *co = cos[i];
    long v;
    if (lua_resume(co, 0) != 0)
      fail(co);
    v = (long)lua_tonumber(co, -1);
    count++;
    sum += (double)v;
    if (v != i + 1)
      ordered = 0;
    lua_settop(co, 0);
  }
  elapsed = now() - t0;
  printf("{\"workload\":\"%s\",\"n\":%ld,\"elapsed\":%.9f,\"count\":%ld,"
         "\"sum\":%.0f,\"ordered\":%s",
         workload, n, elapsed, count, sum, ordered ? "true" : "false");
  if (measure)
    printf(",\"parked_at_set\":%ld,\"woke_unset\":0,\"rss_growth\":%ld", n,
           rss_growth);
  printf("}\n");
  free(cos);
  return 0;
}

int main(int argc, char **argv) {
  const char *workload = argc > 1 ? argv[1] : "";
  long n = argc > 2 ? atol(argv[2]) : 0;
  lua_State *L = luaL_newstate();
  int rc;
  if (L == NULL)
    return 1;
  luaL_openlibs(L);
  if (strcmp(workload, "W0") == 0) {
    rc = w0(L, n > 0 ? n : 1000000);
  } else if (strcmp(workload, "W1") == 0) {
    rc = spawn_all(L, "W1", n > 0 ? n : 200000, 0);
  } else if (strcmp(workload, "W6") == 0) {
    rc = spawn_all(L, "W6", n > 0 ? n : 100000, 1);
  } else {
    fprintf(stderr, "usage: %s <W0|W1|W6> [n]\n", argv[0]);
    rc = 2;
  }
  lua_close(L);
  return rc;
}
