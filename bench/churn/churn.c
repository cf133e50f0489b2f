/* Embedding churn: a host creates and destroys an engine many times with
 * work pending, and checks that nothing piles up and nothing calls back
 * late.
 *
 * Each cycle makes an engine (fdn_lua_new, on a loop of the host's every
 * other time), loads a script, starts tasks that park in long sleeps, on
 * semaphores, queues and joins (some with a completion callback, one
 * without, one that fails, one that finishes at once), runs one loop turn
 * so they start, then destroys the engine with fdn_lua_close while they
 * are pending. Checked every cycle: each callback ran exactly once, before
 * fdn_lua_close returned; none ran after (the host loop keeps turning after
 * the close); a host loop closes with uv_loop_close() == 0. At the end: the
 * resident set size drifted by at most the limit between the end of the
 * warm-up (a tenth of the cycles) and the last cycle, and every engine and
 * Lua state made was freed.
 *
 *   fdn-churn [cycles (10000)] [limit in MB (2)]
 *
 * Prints one line with the figures; exits 1 when a check fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fdn/fdn_lua.h>

static const char *script =
    "local sem, q, ev = fdn.Semaphore.new(0), fdn.Queue.new(1), "
    "fdn.Event.new()\n"
    "function sleeper() fdn.sleep(3600) end\n"
    "function waiter() sem:acquire() end\n"
    "function getter() return q:get() end\n"
    "function fanout(n)\n"
    "  local tasks = {}\n"
    "  for i = 1, n do tasks[i] = fdn.spawn(function() ev:wait() end) end\n"
    "  return fdn.gather(tasks)\n"
    "end\n"
    "function quick(x) return x + 1 end\n"
    "function fails() fdn.sleep(0) error('boom', 0) end\n";

typedef struct {
  int calls[8];
  int expected;
  int closed;
  long late;
} cycle_t;

static cycle_t *current;
static long stray;

static void on_done(fdn_lua_t *h, void *data, int ok, lua_State *L,
                    int nresults) {
  int *slot = data;
  (void)h;
  (void)ok;
  (void)L;
  (void)nresults;
  if (current == NULL || slot < current->calls || slot >= current->calls + 8) {
    stray++;
    return;
  }
  if (current->closed)
    current->late++;
  (*slot)++;
}

static double rss_mb(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL)
    return -1;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
    resident = -1;
  fclose(f);
  return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static int call(fdn_lua_t *h, cycle_t *c, const char *name, int nargs,
                int slot) {
  if (fdn_lua_call(h, name, nargs, slot >= 0 ? on_done : NULL,
                   slot >= 0 ? &c->calls[slot] : NULL) != 0) {
    fprintf(stderr, "churn: fdn_lua_call(%s): %s\n", name,
            fdn_lua_last_error(h) ? fdn_lua_last_error(h) : "?");
    return 1;
  }
  if (slot >= 0)
    c->expected++;
  return 0;
}

/* One cycle; returns 0 when every check held. */
static int cycle(long i) {
  uv_loop_t host;
  fdn_lua_options_t opts;
  fdn_lua_t *h;
  cycle_t c;
  int borrowed = i % 2 == 1, k, bad = 0;
  memset(&c, 0, sizeof(c));
  memset(&opts, 0, sizeof(opts));
  if (borrowed) {
    if (uv_loop_init(&host) != 0)
      return 1;
    opts.loop = &host;
  }
  current = &c;
  if (fdn_lua_new(&h, &opts) != 0) {
    fprintf(stderr, "churn: fdn_lua_new failed\n");
    return 1;
  }
  if (fdn_lua_dostring(h, script, "=churn") != 0) {
    fprintf(stderr, "churn: %s\n", fdn_lua_last_error(h));
    return 1;
  }
  lua_pushinteger(fdn_lua_state(h), 5);
  lua_pushinteger(fdn_lua_state(h), 41);
  bad |= call(h, &c, "quick", 1, 0);
  bad |= call(h, &c, "fanout", 1, 1);
  bad |= call(h, &c, "sleeper", 0, 2);
  bad |= call(h, &c, "waiter", 0, 3);
  bad |= call(h, &c, "getter", 0, 4);
  bad |= call(h, &c, "fails", 0, 5);
  bad |= call(h, &c, "sleeper", 0, -1);
  if (bad || lua_gettop(fdn_lua_state(h)) != 0)
    return 1;
  /* One turn: every task starts and parks (quick finishes). */
  uv_run(fdn_lua_loop(h), UV_RUN_NOWAIT);
  fdn_lua_close(h);
  c.closed = 1;
  if (borrowed) {
    /* The engine's handles finish closing here; nothing may call back. */
    uv_run(&host, UV_RUN_DEFAULT);
    if (uv_loop_close(&host) != 0) {
      fprintf(stderr, "churn: cycle %ld: the host loop did not close\n", i);
      return 1;
    }
  }
  current = NULL;
  for (k = 0; k < 6; k++) {
    if (c.calls[k] != 1) {
      fprintf(stderr, "churn: cycle %ld: callback %d ran %d times\n", i, k,
              c.calls[k]);
      return 1;
    }
  }
  if (c.late != 0) {
    fprintf(stderr, "churn: cycle %ld: %ld callbacks after destroy\n", i,
            c.late);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  long cycles = argc > 1 ? atol(argv[1]) : 10000, i, warm;
  double limit = argc > 2 ? atof(argv[2]) : 2.0, rss_warm = 0, rss_end, drift;
  uint64_t start = uv_hrtime(), engines, states;
  int ok;
  if (cycles < 10) {
    fprintf(stderr, "usage: fdn-churn [cycles >= 10] [limit in MB]\n");
    return 2;
  }
  warm = cycles / 10;
  for (i = 0; i < cycles; i++) {
    if (cycle(i) != 0) {
      printf("churn: FAILED at cycle %ld\n", i);
      return 1;
    }
    if (i + 1 == warm)
      rss_warm = rss_mb();
  }
  rss_end = rss_mb();
  drift = rss_end - rss_warm;
  engines = fdn_diag_get(FDN_DIAG_ENGINES_CREATED) -
            fdn_diag_get(FDN_DIAG_ENGINES_FREED);
  states = fdn_diag_get(FDN_DIAG_STATES_CREATED) -
           fdn_diag_get(FDN_DIAG_STATES_CLOSED);
  ok = drift <= limit && stray == 0 && engines == 0 && states == 0 &&
       fdn_diag_get(FDN_DIAG_LOOPS_FORCED) == 0 &&
       fdn_diag_get(FDN_DIAG_STACK_IMBALANCES) == 0;
  printf("churn: %ld engines created and destroyed with 7 tasks pending "
         "each (half on a host loop); 6 callbacks each, all before destroy, "
         "0 after, %ld stray; RSS %.2f MB after %ld cycles, %.2f MB after "
         "%ld: drift %+.2f MB (limit %.1f MB); %llu engines and %llu states "
         "left; %.0f us per cycle: %s\n",
         cycles, stray, rss_warm, warm, rss_end, cycles, drift, limit,
         (unsigned long long)engines, (unsigned long long)states,
         (double)(uv_hrtime() - start) / 1e3 / (double)cycles,
         ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
