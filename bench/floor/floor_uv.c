/* The timer floor: plain libuv with one uv_timer_t per sleeping task, no
 * Lua and no scheduler. Each "task" is a malloc'd record with its timer.
 *
 *   fdn-bench-floor-uv W3 [n]
 *
 * W3: n timers of 1-10 ms (the same Park-Miller sequence as every peer);
 * memory is read once all are armed; each callback checks how long it
 * really slept, closes its handle and frees the record.
 * Prints one JSON line for the harness.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct sleeper_s {
  uv_timer_t timer;
  uint64_t start;
  long ms;
} sleeper_t;

static long done, early;
static double sum;

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

static void on_close(uv_handle_t *handle) {
  free(handle->data);
}

static void on_timer(uv_timer_t *timer) {
  sleeper_t *s = timer->data;
  if (uv_hrtime() - s->start < (uint64_t)(s->ms - 1) * 1000000u)
    early++;
  done++;
  sum += (double)s->ms;
  uv_close((uv_handle_t *)timer, on_close);
}

int main(int argc, char **argv) {
  long n = argc > 2 ? atol(argv[2]) : 100000, i, x = 42, rss0, rss_growth;
  uv_loop_t *loop = uv_default_loop();
  uint64_t t0;
  double elapsed;
  if (argc < 2 || strcmp(argv[1], "W3") != 0 || n < 1) {
    fprintf(stderr, "usage: %s W3 [n]\n", argv[0]);
    return 2;
  }
  rss0 = rss();
  t0 = uv_hrtime();
  for (i = 0; i < n; i++) {
    sleeper_t *s = malloc(sizeof(*s));
    if (s == NULL)
      return 1;
    x = (x * 16807) % 2147483647;
    s->ms = 1 + x % 10;
    /* Timers count from the loop's cached time: refresh it, or timers
     * armed late would fire early. */
    uv_update_time(loop);
    s->start = uv_hrtime();
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_timer, (uint64_t)s->ms, 0);
  }
  rss_growth = rss() - rss0;
  uv_run(loop, UV_RUN_DEFAULT);
  elapsed = (double)(uv_hrtime() - t0) / 1e9;
  printf("{\"workload\":\"W3\",\"n\":%ld,\"elapsed\":%.9f,\"count\":%ld,"
         "\"sum\":%.0f,\"early\":%ld,\"rss_growth\":%ld}\n",
         n, elapsed, done, sum, early, rss_growth);
  return uv_loop_close(loop) == 0 ? 0 : 1;
}
