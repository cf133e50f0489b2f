/* The engine: a scheduler for tasks on a libuv loop.
 *
 * The engine either owns its uv_loop_t or borrows the host's. Ready tasks
 * run from a uv_idle_t, so the loop only blocks in I/O when nothing is
 * ready; every timer lives in one heap behind a single uv_timer_t.
 */
#ifndef FDN_ENGINE_H
#define FDN_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "fdn/clock.h"
#include "fdn/rng.h"
#include "fdn/task.h"

/* Declared in several headers; C99 allows one typedef per name. */
#ifndef FDN_ENGINE_T_DECLARED
#define FDN_ENGINE_T_DECLARED
typedef struct fdn_engine_s fdn_engine_t;
#endif
typedef void (*fdn_engine_close_cb)(void *arg);

typedef struct fdn_engine_options_s {
  uv_loop_t *loop;        /* borrowed; NULL: the engine creates and owns one */
  fdn_clock_kind_t clock; /* FDN_CLOCK_REAL by default */
  int autojump;           /* virtual clock: jump to the next deadline when
                             nothing is ready (default 1) */
  unsigned tick_budget;   /* tasks resumed per loop turn beyond those ready at
                             its start, before I/O is polled again */
  uint64_t seed;          /* seed of the engine's RNG; 0: from entropy */
  /* Test mode. 0 (the default): ready tasks run in FIFO order, which is
   * fdn's contract. Non-zero: each scheduling pass runs its ready tasks in
   * an order shuffled by a generator seeded with this value, so a test
   * suite can show it does not depend on an order fdn does not promise
   * beyond FIFO; the same seed repeats the same orders.
   */
  uint64_t sched_seed;
} fdn_engine_options_t;

void fdn_engine_options_init(fdn_engine_options_t *opts);

/* Creates an engine. `opts` may be NULL for the defaults. The caller frees
 * it with fdn_engine_close().
 */
int fdn_engine_new(fdn_engine_t **out, const fdn_engine_options_t *opts);

/* Closes the engine. Fails with FDN_EBUSY while tasks are live (cancel and
 * run them, or abandon them, first) and FDN_ESTATE when called from inside
 * the engine's own loop turn on a loop it owns. An engine that owns its
 * loop is freed before this returns; on a borrowed loop the memory is
 * released from the host's next loop turn, then `cb` (may be NULL) runs.
 */
int fdn_engine_close(fdn_engine_t *engine, fdn_engine_close_cb cb, void *arg);

uv_loop_t *fdn_engine_loop(const fdn_engine_t *engine);
fdn_clock_kind_t fdn_engine_clock(const fdn_engine_t *engine);

/* Engine time in nanoseconds: monotonic, or virtual (starting at 0). */
uint64_t fdn_engine_now(const fdn_engine_t *engine);

/* Runs the loop (uv_run) with the given mode. */
int fdn_engine_run(fdn_engine_t *engine, uv_run_mode mode);

/* Runs ready tasks now, outside the loop, until none is ready (at most one
 * tick budget's worth per pass). Returns how many runs happened.
 */
size_t fdn_engine_run_ready(fdn_engine_t *engine);

/* Virtual clock: moves time forward by `delta_ns`, firing timers in
 * deadline order and running the tasks they wake before moving on, so a
 * task that sleeps again inside the window fires too.
 */
int fdn_engine_advance(fdn_engine_t *engine, uint64_t delta_ns);

/* Virtual clock, from a task: parks the running `task` while time moves
 * forward by `delta_ns`. The loop fires the timers due inside that window in
 * deadline order and runs the tasks they wake before moving on, so a task
 * woken inside the window that sleeps again inside it fires too; once
 * nothing is ready and nothing else falls due inside the window, time is set
 * to its end and `task` is woken with 0. Works with autojump on or off (with
 * it on, nothing past the window fires before `task` wakes). Unlike
 * fdn_engine_advance it returns to the loop between steps, so I/O and other
 * handles keep running. Returns FDN_ESTATE on a real clock or when `task` is
 * not the running task, FDN_EBUSY while another advance is pending,
 * FDN_ECANCELED when a cancellation is pending (nothing parks).
 */
int fdn_engine_advance_task(fdn_engine_t *engine, fdn_task_t *task,
                            uint64_t delta_ns);

/* Makes the fdn_engine_run in progress (or the next one) return once the
 * task running now, if any, yields: no further task runs and virtual time
 * does not move until the engine runs again. Tasks keep their state; the
 * next run carries on where this one stopped. Call it from a task, a task
 * listener or a libuv callback on the engine's loop.
 */
void fdn_engine_stop(fdn_engine_t *engine);

/* Whether `handle` is one of the engine's own libuv handles, so a walk of
 * the loop (uv_walk) can tell them from the handles other code opened.
 */
/* Whether the engine created its loop (and frees it when it closes), as
 * opposed to borrowing the host's.
 */
int fdn_engine_owns_loop(const fdn_engine_t *engine);

int fdn_engine_owns_handle(const fdn_engine_t *engine,
                           const uv_handle_t *handle);

/* Virtual clock: whether time jumps to the next deadline when nothing is
 * ready. With it off, only fdn_engine_advance() moves time.
 */
int fdn_engine_set_autojump(fdn_engine_t *engine, int on);

/* The earliest armed deadline; returns 0 and sets *out, or FDN_EAGAIN when
 * no timer is armed.
 */
int fdn_engine_next_deadline(const fdn_engine_t *engine, uint64_t *out);

fdn_task_t *fdn_engine_current(const fdn_engine_t *engine);
size_t fdn_engine_live_tasks(const fdn_engine_t *engine);
size_t fdn_engine_ready_tasks(const fdn_engine_t *engine);
size_t fdn_engine_armed_timers(const fdn_engine_t *engine);

/* The engine's RNG: seeded from the options, so runs given a seed repeat. */
fdn_rng_t *fdn_engine_rng(fdn_engine_t *engine);
uint64_t fdn_engine_seed(const fdn_engine_t *engine);

/* Test hook: `cb(engine, arg)` runs at the start of every scheduling pass
 * that has tasks to run, before the first of them resumes, or, with
 * `every_task`, before each task the pass resumes. The bindings use it to
 * force a full Lua collection under FDN_GC_STRESS. NULL removes it. With no
 * hook and no shuffle a pass pays one branch.
 */
typedef void (*fdn_engine_tick_cb)(fdn_engine_t *engine, void *arg);
void fdn_engine_set_tick_hook(fdn_engine_t *engine, fdn_engine_tick_cb cb,
                              void *arg, int every_task);

/* The shuffle seed the engine was created with (0: FIFO). */
uint64_t fdn_engine_sched_seed(const fdn_engine_t *engine);

void fdn_engine_set_data(fdn_engine_t *engine, void *data);
void *fdn_engine_get_data(const fdn_engine_t *engine);

#endif
