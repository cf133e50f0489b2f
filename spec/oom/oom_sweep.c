/* The allocation-failure sweep (make oom-sweep): runs a Lua script the way
 * fdn-lua does (fdn.cli's main in a fresh Lua state), once per k, with the
 * k-th allocation failing, for k = 0, 1, ... until a run makes fewer than
 * k allocations (so the failure never came and the script succeeded).
 *
 * Every allocation of the run is counted: the Lua state's (it is made with
 * lua_newstate and this allocator), libuv's (uv_replace_allocator), and
 * those fdn's own C code makes with malloc/calloc/realloc (this program is
 * linked with -Wl,--wrap for them, so the calls in libfdn's objects come
 * here). Only the k-th fails; the run must then end cleanly: success, or an
 * error reported the normal way, never a panic, a crash, a hang or a leak.
 * After each run every block must be freed again (counted here; ASan's leak
 * checker runs too in the sanitizer build).
 *
 * Usage: fdn-oom-sweep SCRIPT [FROM [TO [STRIDE]]]  (TO 0: until success)
 * Prints one line per failing k and a summary; exits 1 on any failure.
 * FDN_OOM_VERBOSE=1 keeps the script's stderr (hidden otherwise);
 * FDN_OOM_JIT=off turns LuaJIT's JIT off.
 */
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>
#include <uv.h>

#include "fdn/fdn_lua.h"

/* Allocation accounting ------------------------------------------------ */

static uint64_t nallocs; /* allocations made by the current run */
static uint64_t fail_at; /* the one that fails (1-based); 0: none */
static int failed_once;  /* the failure happened in this run */
static int64_t lua_live; /* Lua blocks allocated and not freed */
static int64_t c_live;   /* C blocks (libuv and fdn's C) not freed */

static int counting; /* off while LuaJIT builds the state (see main) */

static int in_trace; /* the JIT compiler is recording (see prelude) */

static int should_fail(void) {
  if (!counting || in_trace)
    return 0;
  nallocs++;
  if (fail_at != 0 && nallocs == fail_at) {
    failed_once = 1;
    return 1;
  }
  return 0;
}

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);

/* The Lua state's allocator. Its blocks bypass the wrappers below (this
 * file's own calls are wrapped too) and are counted apart.
 */
static void *lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  void *p;
  (void)ud;
  if (nsize == 0) {
    if (ptr != NULL) {
      lua_live--;
      __real_free(ptr);
    }
    return NULL;
  }
  /* Only growth can fail; LuaJIT relies on shrinking never failing. */
  if ((ptr == NULL || nsize > osize) && should_fail())
    return NULL;
  p = __real_realloc(ptr, nsize);
  if (p != NULL && ptr == NULL)
    lua_live++;
  return p;
}

/* Live C blocks, by address: an open-addressing set, so frees of blocks
 * this file did not count (made before a run, or by libc itself) are told
 * apart and passed through.
 */
#define LIVE_CAP (1u << 20)
static void *live_set[LIVE_CAP];
static void *const TOMB = (void *)1;

static size_t slot_for(const void *p) {
  uintptr_t h = (uintptr_t)p;
  h ^= h >> 17;
  h *= 0xed5ad4bbu;
  h ^= h >> 11;
  return (size_t)(h & (LIVE_CAP - 1));
}

static void live_add(void *p) {
  size_t i = slot_for(p);
  while (live_set[i] != NULL && live_set[i] != TOMB)
    i = (i + 1) & (LIVE_CAP - 1);
  live_set[i] = p;
  c_live++;
}

static int live_remove(void *p) {
  size_t i = slot_for(p);
  while (live_set[i] != NULL) {
    if (live_set[i] == p) {
      live_set[i] = TOMB;
      c_live--;
      return 1;
    }
    i = (i + 1) & (LIVE_CAP - 1);
  }
  return 0;
}

void *__wrap_malloc(size_t size) {
  void *p;
  if (should_fail())
    return NULL;
  p = __real_malloc(size);
  if (p != NULL)
    live_add(p);
  return p;
}

void *__wrap_calloc(size_t n, size_t size) {
  void *p;
  if (should_fail())
    return NULL;
  p = __real_calloc(n, size);
  if (p != NULL)
    live_add(p);
  return p;
}

void *__wrap_realloc(void *old, size_t size) {
  void *p;
  if (size == 0) {
    if (old != NULL)
      live_remove(old);
    return __real_realloc(old, size);
  }
  if (should_fail())
    return NULL;
  p = __real_realloc(old, size);
  if (p != NULL) {
    int counted = old == NULL || live_remove(old);
    if (counted)
      live_add(p);
  }
  return p;
}

void __wrap_free(void *p) {
  if (p != NULL)
    live_remove(p);
  __real_free(p);
}

/* libuv's allocator: the same counting. */
static void *uv_malloc_cb(size_t size) {
  return __wrap_malloc(size);
}
static void *uv_malloc_nofail(size_t size) {
  void *p = __real_malloc(size);
  if (p != NULL)
    live_add(p);
  return p;
}
/* libuv's reallocs are never failed: its only one on these paths, the
 * growth of the loop's watcher array (uv__io_start, unix/core.c), calls
 * abort() when it fails, by design. Its mallocs and callocs do fail.
 */
static void *uv_realloc_cb(void *p, size_t size) {
  void *q;
  if (size == 0 || p == NULL)
    return size == 0 ? __wrap_realloc(p, size) : uv_malloc_nofail(size);
  q = __real_realloc(p, size);
  if (q != NULL && live_remove(p))
    live_add(q);
  return q;
}
static void *uv_calloc_cb(size_t n, size_t size) {
  return __wrap_calloc(n, size);
}
static void uv_free_cb(void *p) {
  __wrap_free(p);
}

/* One run --------------------------------------------------------------- */

static const char *script_path;

static int no_op(lua_State *L) {
  (void)L;
  return 0;
}

static int at_panic(lua_State *L) {
  fprintf(stdout, "k=%llu: PANIC (unprotected error): %s\n",
          (unsigned long long)fail_at,
          lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object)");
  fflush(stdout);
  abort();
}

/* What runs before failures are injected: LuaJIT's own libraries (LuaJIT
 * leaks its FFI state, one or two blocks, when an allocation inside
 * luaopen_ffi fails, which fdn, whose batcher loads the FFI, cannot
 * prevent), and lua-cjson, which is worse (below).
 */
/* jit.attach handler for "trace" events: notes when LuaJIT's trace
 * compiler is at work (see prelude).
 */
static int on_trace_event(lua_State *L) {
  const char *what = lua_tostring(L, 1);
  in_trace = what != NULL && strcmp(what, "start") == 0;
  return 0;
}

/* Calls its upvalue with no failures injected (see prelude). */
static int call_without_failures(lua_State *L) {
  int was = counting, n = lua_gettop(L);
  counting = 0;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  counting = was;
  return lua_gettop(L);
}

static int prelude(lua_State *L) {
  luaL_openlibs(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "ffi");
  lua_call(L, 1, 0);
  /* lua-cjson (2.1.0) is not safe against allocation failures when it
   * makes an instance (require, cjson.new(), which fdn.log calls): its
   * buffer's malloc failing aborts the process, and a failure between
   * setting the instance's __gc and initialising its buffer makes that
   * __gc free an uninitialised pointer (heap corruption, seen as crashes
   * further on). The module is loaded here, and cjson.new runs without
   * injected failures.
   */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson.safe");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "new");
  lua_pushcclosure(L, call_without_failures, 1);
  lua_setfield(L, -2, "new");
  /* Nor in LuaJIT's trace compiler (its own business, like the above). */
  lua_getglobal(L, "jit");
  lua_getfield(L, -1, "attach");
  lua_pushcfunction(L, on_trace_event);
  lua_pushliteral(L, "trace");
  lua_call(L, 2, 0);
  /* FDN_OOM_JIT=off runs the script interpreted (the sanitizer form: see
   * docs/reliability-load.md for why).
   */
  if (getenv("FDN_OOM_JIT") != NULL &&
      strcmp(getenv("FDN_OOM_JIT"), "off") == 0) {
    lua_getfield(L, -1, "off");
    lua_call(L, 0, 0);
  }
  return 0;
}

/* As fdn-lua's pmain: the library, then fdn.cli's main with this argv;
 * stores main's exit status in the int its light userdata argument points to.
 */
static int pmain(lua_State *L) {
  static const luaL_Reg native[] = {
      {"watch_signals", no_op}, {"unwatch_signals", no_op}, {NULL, NULL}};
  lua_atpanic(L, at_panic);
  fdn_lua_preload(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "fdn.cli");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_createtable(L, 2, 0);
  lua_pushliteral(L, "fdn-lua");
  lua_rawseti(L, -2, 0);
  lua_pushstring(L, script_path);
  lua_rawseti(L, -2, 1);
  lua_newtable(L);
  luaL_setfuncs(L, native, 0);
  lua_call(L, 2, 1);
  *(int *)lua_touserdata(L, 1) = (int)lua_tointeger(L, -1);
  return 0;
}

enum { RUN_OK, RUN_ERROR, RUN_NO_STATE };

/* Runs the script once; returns RUN_OK when it exited 0, RUN_ERROR for a
 * clean failure (an error caught and reported, exit status 1).
 */
static int run_once(void) {
  lua_State *L;
  int status, code = 1;
  /* Failures inside lua_newstate itself are not injected: LuaJIT 2.1
   * (Debian's 2.1.0~beta3 snapshot) crashes freeing the partial state when
   * an allocation there fails, before any fdn code has run. Nor in the
   * prelude (see there). Their blocks are counted all the same.
   */
  counting = 0;
  in_trace = 0;
  L = lua_newstate(lua_alloc, NULL);
  if (L == NULL)
    return RUN_NO_STATE;
  if (lua_cpcall(L, prelude, NULL) != 0) {
    lua_close(L);
    return RUN_NO_STATE;
  }
  counting = 1;
  /* lua_cpcall makes pmain's closure inside the protected call, so even
   * that allocation may fail cleanly.
   */
  status = lua_cpcall(L, pmain, &code);
  if (status != 0) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL && lua_istable(L, -1)) {
      lua_getfield(L, -1, "message");
      msg = lua_tostring(L, -1);
    }
    fprintf(stderr, "fdn-oom-sweep: %s error: %s\n", luaL_typename(L, -1),
            msg ? msg : "(no message)");
  }
  lua_close(L);
  return code == 0 ? RUN_OK : RUN_ERROR;
}

/* A crash: say at which k (async-signal-safe: digits by hand), then die
 * of the same signal.
 */
static void on_crash(int sig) {
  char buf[64], digits[24];
  size_t n = 0, d = 0;
  uint64_t k = fail_at;
  const char *head = "\nfdn-oom-sweep: CRASH (signal ", *mid = ") at k=";
  while (*head)
    buf[n++] = *head++;
  buf[n++] = (char)('0' + sig / 10);
  buf[n++] = (char)('0' + sig % 10);
  while (*mid)
    buf[n++] = *mid++;
  do {
    digits[d++] = (char)('0' + k % 10);
    k /= 10;
  } while (k > 0);
  while (d > 0)
    buf[n++] = digits[--d];
  buf[n++] = '\n';
  if (write(STDOUT_FILENO, buf, n) < 0)
    n = 0;
  {
    void *frames[48];
    int depth = backtrace(frames, 48);
    backtrace_symbols_fd(frames, depth, STDOUT_FILENO);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

static void on_alarm(int sig) {
  static const char msg[] = "fdn-oom-sweep: a run hung (30 s)\n";
  ssize_t ignored = write(STDOUT_FILENO, msg, sizeof(msg) - 1);
  (void)ignored;
  (void)sig;
  _exit(3);
}

int main(int argc, char **argv) {
  uint64_t from, to, stride, k, total;
  uint64_t ok = 0, errors = 0, failures = 0, runs = 0;
  int devnull = -1, saved_err = -1, verbose;
  if (argc < 2) {
    fprintf(stderr, "usage: %s SCRIPT [FROM [TO [STRIDE]]]\n", argv[0]);
    return 2;
  }
  script_path = argv[1];
  from = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
  to = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
  stride = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
  if (from == 0)
    from = 1;
  if (stride == 0)
    stride = 1;
  setvbuf(stdout, NULL, _IOLBF, 0);
  verbose = getenv("FDN_OOM_VERBOSE") != NULL;
  signal(SIGALRM, on_alarm);
  signal(SIGSEGV, on_crash);
  signal(SIGABRT, on_crash);
  signal(SIGBUS, on_crash);
  if (uv_replace_allocator(uv_malloc_cb, uv_realloc_cb, uv_calloc_cb,
                           uv_free_cb) != 0) {
    fprintf(stderr, "fdn-oom-sweep: uv_replace_allocator failed\n");
    return 2;
  }

  /* A run without failures: how many allocations there are to fail. */
  fail_at = 0;
  nallocs = 0;
  if (run_once() != RUN_OK) {
    fprintf(stdout, "fdn-oom-sweep: the script fails even without injected "
                    "failures\n");
    return 1;
  }
  total = nallocs;
  if (lua_live != 0 || c_live != 0) {
    fprintf(stdout,
            "fdn-oom-sweep: a clean run leaks %lld Lua and %lld C "
            "blocks\n",
            (long long)lua_live, (long long)c_live);
    return 1;
  }
  if (to == 0 || to > total)
    to = total;
  fprintf(stdout,
          "oom-sweep: %s makes %llu allocations; failing k = %llu .. "
          "%llu, stride %llu\n",
          script_path, (unsigned long long)total, (unsigned long long)from,
          (unsigned long long)to, (unsigned long long)stride);
  fflush(stdout);

  if (!verbose) {
    devnull = open("/dev/null", O_WRONLY);
    saved_err = dup(STDERR_FILENO);
  }
  for (k = from; k <= to; k += stride) {
    int rc;
    fail_at = k;
    nallocs = 0;
    failed_once = 0;
    lua_live = 0;
    c_live = 0;
    if (devnull >= 0)
      dup2(devnull, STDERR_FILENO);
    alarm(30);
    rc = run_once();
    alarm(0);
    if (saved_err >= 0)
      dup2(saved_err, STDERR_FILENO);
    runs++;
    if (rc == RUN_OK)
      ok++;
    else
      errors++;
    if (lua_live != 0 || c_live != 0) {
      failures++;
      fprintf(stdout, "k=%llu: LEAK: %lld Lua and %lld C blocks not freed\n",
              (unsigned long long)k, (long long)lua_live, (long long)c_live);
    }
    if (!failed_once) {
      fprintf(stdout, "k=%llu: the run made only %llu allocations\n",
              (unsigned long long)k, (unsigned long long)nallocs);
      break;
    }
  }
  fprintf(stdout,
          "oom-sweep: %llu runs (%llu allocations to fail): %llu succeeded, "
          "%llu ended in a clean error, %llu leaked or failed; 0 crashes\n",
          (unsigned long long)runs, (unsigned long long)total,
          (unsigned long long)ok, (unsigned long long)errors,
          (unsigned long long)failures);
  return failures == 0 ? 0 : 1;
}
