#include "fdn/engine.h"

#include <stdlib.h>
#include <string.h>

#include "fdn/diag.h"
#include "fdn/error.h"
#include "fdn/timer.h"
#include "internal.h"

static void on_idle(uv_idle_t *handle);
static void on_timer(uv_timer_t *handle);

void fdn_engine_options_init(fdn_engine_options_t *opts) {
  memset(opts, 0, sizeof(*opts));
  opts->clock = FDN_CLOCK_REAL;
  opts->autojump = 1;
  opts->tick_budget = FDN__TICK_BUDGET;
}

int fdn_engine_new(fdn_engine_t **out, const fdn_engine_options_t *opts) {
  fdn_engine_options_t defaults;
  fdn_engine_t *engine;
  if (out == NULL)
    return FDN_EINVAL;
  *out = NULL;
  if (opts == NULL) {
    fdn_engine_options_init(&defaults);
    opts = &defaults;
  }
  if (opts->clock != FDN_CLOCK_REAL && opts->clock != FDN_CLOCK_VIRTUAL)
    return FDN_EINVAL;
  engine = calloc(1, sizeof(*engine));
  if (engine == NULL)
    return FDN_ENOMEM;
  if (opts->loop != NULL) {
    engine->loop = opts->loop;
  } else {
    if (uv_loop_init(&engine->own_loop) != 0) {
      free(engine);
      return FDN_EUV;
    }
    engine->loop = &engine->own_loop;
    engine->owns_loop = 1;
  }
  uv_idle_init(engine->loop, &engine->idle);
  uv_timer_init(engine->loop, &engine->timer);
  engine->idle.data = engine;
  engine->timer.data = engine;
  engine->open_handles = 2;
  fdn_clock_init(&engine->clock, opts->clock);
  fdn_heap_init(&engine->timers);
  engine->next_id = 1;
  engine->autojump = opts->autojump != 0;
  engine->tick_budget = opts->tick_budget;
  /* Seeds drawn here fit in 53 bits, so a seed printed from Lua (a double)
   * replays the run exactly.
   */
  engine->seed = opts->seed != 0
                     ? opts->seed
                     : (fdn_rng_entropy() & ((1ull << 53) - 1)) | 1u;
  fdn_rng_seed(&engine->rng, engine->seed);
  fdn_waitq_init(&engine->advancers);
  engine->sched_seed = opts->sched_seed;
  fdn_rng_seed(&engine->sched_rng, opts->sched_seed);
  engine->test_modes = opts->sched_seed != 0;
  fdn_diag_add(FDN_DIAG_ENGINES_CREATED, 1);
  *out = engine;
  return 0;
}

static int jumps_virtually(const fdn_engine_t *engine) {
  return engine->clock.kind == FDN_CLOCK_VIRTUAL && engine->autojump &&
         fdn_heap_len(&engine->timers) > 0;
}

static int advance_pending(const fdn_engine_t *engine) {
  return fdn_waitq_len(&engine->advancers) > 0;
}

/* The idle handle keeps the loop polling without blocking; it is active
 * exactly while a task is ready, virtual time has somewhere to jump, or an
 * advance waits to be settled.
 */
static void update_idle(fdn_engine_t *engine) {
  int wanted = engine->ready_len > 0 || jumps_virtually(engine) ||
               advance_pending(engine);
  if (engine->closing)
    wanted = 0;
  if (wanted && !engine->idle_active) {
    uv_idle_start(&engine->idle, on_idle);
    engine->idle_active = 1;
  } else if (!wanted && engine->idle_active) {
    uv_idle_stop(&engine->idle);
    engine->idle_active = 0;
  }
}

/* Keeps the single uv timer armed for the earliest deadline. An early wake
 * is harmless (nothing is due, it re-arms), so the timer is only moved when
 * the new deadline comes sooner than the armed one.
 */
static void rearm(fdn_engine_t *engine) {
  const fdn_heap_entry_t *top;
  uint64_t due_ms, now_ms;
  if (engine->clock.kind == FDN_CLOCK_VIRTUAL || engine->closing) {
    update_idle(engine);
    return;
  }
  top = fdn_heap_top(&engine->timers);
  if (top == NULL) {
    if (engine->timer_armed) {
      uv_timer_stop(&engine->timer);
      engine->timer_armed = 0;
    }
    return;
  }
  if (engine->timer_armed && engine->armed_key <= top->key)
    return;
  /* uv timers count whole milliseconds of the loop's clock; round up so a
   * timer never fires before its deadline.
   */
  due_ms = top->key / 1000000u + (top->key % 1000000u != 0);
  now_ms = uv_now(engine->loop);
  uv_timer_start(&engine->timer, on_timer,
                 due_ms > now_ms ? due_ms - now_ms : 0, 0);
  engine->timer_armed = 1;
  engine->armed_key = top->key;
}

int fdn__engine_arm(fdn_engine_t *engine, fdn_heap_node_t *node,
                    uint64_t deadline) {
  int rc = fdn_heap_push(&engine->timers, node, deadline);
  if (rc != 0)
    return rc;
  if (engine->clock.kind == FDN_CLOCK_VIRTUAL)
    update_idle(engine);
  else if (fdn_heap_peek(&engine->timers) == node)
    rearm(engine);
  return 0;
}

void fdn__engine_disarm(fdn_engine_t *engine, fdn_heap_node_t *node) {
  if (!fdn_heap_node_active(node))
    return;
  fdn_heap_remove(&engine->timers, node);
  if (fdn_heap_len(&engine->timers) == 0)
    rearm(engine);
}

void fdn__engine_ready_push(fdn_engine_t *engine, fdn_task_t *task) {
  task->next = NULL;
  task->prev = engine->ready_tail;
  if (engine->ready_tail != NULL)
    engine->ready_tail->next = task;
  else
    engine->ready_head = task;
  engine->ready_tail = task;
  engine->ready_len++;
  if (!engine->idle_active)
    update_idle(engine);
}

void fdn__engine_ready_remove(fdn_engine_t *engine, fdn_task_t *task) {
  if (task->prev != NULL)
    task->prev->next = task->next;
  else
    engine->ready_head = task->next;
  if (task->next != NULL)
    task->next->prev = task->prev;
  else
    engine->ready_tail = task->prev;
  task->next = NULL;
  task->prev = NULL;
  engine->ready_len--;
}

void fdn__engine_fire_due(fdn_engine_t *engine, uint64_t now) {
  /* Timers armed by the callbacks below wait for the next pass, so a timer
   * that re-arms itself with no delay cannot spin here forever.
   */
  uint64_t seq_limit = engine->timers.next_seq;
  const fdn_heap_entry_t *top;
  while ((top = fdn_heap_top(&engine->timers)) != NULL && top->key <= now &&
         top->seq < seq_limit) {
    fdn_heap_node_t *node = top->node;
    fdn_heap_remove(&engine->timers, node);
    switch (node->tag) {
    case FDN__TAG_TIMER: {
      fdn_timer_t *timer = fdn__container_of(node, fdn_timer_t, node);
      timer->cb(timer);
      break;
    }
    case FDN__TAG_TASK:
      fdn__task_timer_fired(fdn__container_of(node, fdn_task_t, timer));
      break;
    case FDN__TAG_SCOPE:
      fdn__scope_deadline_fired(fdn__container_of(node, fdn_scope_t, deadline));
      break;
    default:
      break;
    }
  }
}

/* Runs one ready task: the body of every scheduling pass. */
static inline void run_one(fdn_engine_t *engine, fdn_task_t *task) {
  int status = task->wake_status;
  fdn__engine_ready_remove(engine, task);
  task->wake_status = 0;
  task->state = FDN_TASK_RUNNING;
  engine->current = task;
  task->run(task, status);
  /* A finished task clears `current`, and may already be freed. */
  if (engine->current == task && task->state == FDN_TASK_RUNNING) {
    task->state = FDN_TASK_READY;
    fdn__engine_ready_push(engine, task);
  }
}

/* Shuffles buf[0..n) in place (Fisher-Yates with the shuffle generator). */
static void shuffle_tasks(fdn_engine_t *engine, fdn_task_t **buf, size_t n) {
  size_t i;
  for (i = n; i > 1; i--) {
    size_t j = (size_t)fdn_rng_below(&engine->sched_rng, i);
    fdn_task_t *task = buf[i - 1];
    buf[i - 1] = buf[j];
    buf[j] = task;
  }
}

/* Puts the ready queue in a random order, but keeps the one promise a
 * yield makes (fdn.sleep(0) "yields to other ready tasks"): tasks that
 * yielded go after all the others. Without scratch memory the pass stays
 * FIFO.
 */
static void shuffle_ready(fdn_engine_t *engine) {
  size_t n = engine->ready_len, i, front = 0, back = n;
  fdn_task_t **buf, *task;
  if (n > engine->shuffle_cap) {
    size_t cap = engine->shuffle_cap ? engine->shuffle_cap : 64;
    while (cap < n)
      cap *= 2;
    buf = realloc(engine->shuffle_buf, cap * sizeof(*buf));
    if (buf == NULL)
      return;
    engine->shuffle_buf = buf;
    engine->shuffle_cap = cap;
  }
  if (n == 0)
    return;
  buf = engine->shuffle_buf;
  /* Tasks that did not yield fill the front in queue order, those that
   * did fill the back in reverse; each part is then shuffled.
   */
  for (task = engine->ready_head; task != NULL; task = task->next) {
    if (task->flags & FDN__TASK_YIELDED) {
      task->flags &= (uint8_t)~FDN__TASK_YIELDED;
      buf[--back] = task;
    } else {
      buf[front++] = task;
    }
  }
  shuffle_tasks(engine, buf, front);
  shuffle_tasks(engine, buf + back, n - back);
  for (i = 0; i < n; i++) {
    buf[i]->prev = i > 0 ? buf[i - 1] : NULL;
    buf[i]->next = i + 1 < n ? buf[i + 1] : NULL;
  }
  engine->ready_head = buf[0];
  engine->ready_tail = buf[n - 1];
}

/* The scheduling pass under a test mode: the tick hook first, then, when
 * shuffling, each generation of ready tasks (those ready at the start, then
 * those they made ready, and so on) runs in a shuffled order.
 */
static size_t tick_test_modes(fdn_engine_t *engine, int stoppable,
                              size_t budget) {
  size_t runs = 0, generation = 0;
  fdn_task_t *task;
  if (engine->tick_hook != NULL && engine->ready_head != NULL &&
      !engine->tick_hook_every_task)
    engine->tick_hook(engine, engine->tick_hook_arg);
  while (runs < budget && !(stoppable && engine->stop_requested) &&
         engine->ready_head != NULL) {
    if (generation == 0 && engine->sched_seed != 0) {
      shuffle_ready(engine);
      generation = engine->ready_len;
    }
    if (engine->tick_hook != NULL && engine->tick_hook_every_task) {
      engine->tick_hook(engine, engine->tick_hook_arg);
      /* The hook may have run code that changed the queue. */
      if (engine->ready_head == NULL)
        break;
    }
    task = engine->ready_head;
    run_one(engine, task);
    /* Still current (not finished, so not freed) and ready again: it
     * yielded.
     */
    if (engine->current == task && task->state == FDN_TASK_READY)
      task->flags |= FDN__TASK_YIELDED;
    runs++;
    if (generation > 0)
      generation--;
  }
  return runs;
}

/* One scheduling pass: resumes the tasks ready when it starts plus up to a
 * budget of tasks that became ready during it, then returns to the loop so
 * I/O and timers are not starved by tasks that keep yielding. A pass run by
 * the loop ends early when fdn_engine_stop() is called.
 */
static size_t tick(fdn_engine_t *engine, int stoppable) {
  size_t budget = engine->ready_len + engine->tick_budget;
  size_t runs = 0;
  fdn_task_t *outer = engine->current;
  fdn_task_t *task;
  engine->in_tick++;
  if (engine->test_modes != 0) {
    runs = tick_test_modes(engine, stoppable, budget);
  } else {
    while (runs < budget && !(stoppable && engine->stop_requested) &&
           (task = engine->ready_head) != NULL) {
      run_one(engine, task);
      runs++;
    }
  }
  engine->current = outer;
  engine->in_tick--;
  return runs;
}

static void jump_to_next_deadline(fdn_engine_t *engine) {
  const fdn_heap_entry_t *top = fdn_heap_top(&engine->timers);
  if (top == NULL)
    return;
  if (top->key > engine->clock.virtual_now)
    fdn_clock_set(&engine->clock, top->key);
  fdn__engine_fire_due(engine, engine->clock.virtual_now);
}

/* One step of a pending fdn_engine_advance_task: fire the next timers due
 * inside the window, or, when none is left, end the window and wake the
 * advancing task.
 */
static void settle_advance(fdn_engine_t *engine) {
  const fdn_heap_entry_t *top = fdn_heap_top(&engine->timers);
  uint64_t target = engine->advance_target;
  if (top != NULL && top->key <= target) {
    if (top->key > engine->clock.virtual_now)
      fdn_clock_set(&engine->clock, top->key);
    fdn__engine_fire_due(engine, engine->clock.virtual_now);
    return;
  }
  if (target > engine->clock.virtual_now)
    fdn_clock_set(&engine->clock, target);
  fdn_waitq_wake_one(&engine->advancers, 0);
}

static void on_idle(uv_idle_t *handle) {
  fdn_engine_t *engine = handle->data;
  tick(engine, 1);
  if (engine->ready_len == 0 && !engine->stop_requested) {
    if (advance_pending(engine))
      settle_advance(engine);
    else if (jumps_virtually(engine))
      jump_to_next_deadline(engine);
  }
  update_idle(engine);
}

static void on_timer(uv_timer_t *handle) {
  fdn_engine_t *engine = handle->data;
  engine->timer_armed = 0;
  fdn__engine_fire_due(engine, uv_hrtime());
  rearm(engine);
}

size_t fdn_engine_run_ready(fdn_engine_t *engine) {
  size_t runs = 0;
  while (engine->ready_len > 0)
    runs += tick(engine, 0);
  update_idle(engine);
  return runs;
}

int fdn_engine_advance(fdn_engine_t *engine, uint64_t delta_ns) {
  uint64_t now, target;
  const fdn_heap_entry_t *top;
  if (engine->clock.kind != FDN_CLOCK_VIRTUAL)
    return FDN_ESTATE;
  now = engine->clock.virtual_now;
  target = delta_ns > FDN_FOREVER - now ? FDN_FOREVER : now + delta_ns;
  fdn_engine_run_ready(engine);
  while ((top = fdn_heap_top(&engine->timers)) != NULL && top->key <= target) {
    if (top->key > engine->clock.virtual_now)
      fdn_clock_set(&engine->clock, top->key);
    fdn__engine_fire_due(engine, engine->clock.virtual_now);
    fdn_engine_run_ready(engine);
  }
  fdn_clock_set(&engine->clock, target);
  update_idle(engine);
  return 0;
}

int fdn_engine_advance_task(fdn_engine_t *engine, fdn_task_t *task,
                            uint64_t delta_ns) {
  uint64_t now;
  int rc;
  if (engine == NULL || task == NULL || task->engine != engine)
    return FDN_EINVAL;
  if (engine->clock.kind != FDN_CLOCK_VIRTUAL)
    return FDN_ESTATE;
  if (advance_pending(engine))
    return FDN_EBUSY;
  rc = fdn_task_wait(task, &engine->advancers, FDN_FOREVER);
  if (rc != 0)
    return rc;
  now = engine->clock.virtual_now;
  engine->advance_target =
      delta_ns > FDN_FOREVER - now ? FDN_FOREVER : now + delta_ns;
  update_idle(engine);
  return 0;
}

void fdn_engine_stop(fdn_engine_t *engine) {
  engine->stop_requested = 1;
  uv_stop(engine->loop);
}

int fdn_engine_owns_loop(const fdn_engine_t *engine) {
  return engine->owns_loop;
}

int fdn_engine_owns_handle(const fdn_engine_t *engine,
                           const uv_handle_t *handle) {
  return handle == (const uv_handle_t *)&engine->idle ||
         handle == (const uv_handle_t *)&engine->timer;
}

int fdn_engine_set_autojump(fdn_engine_t *engine, int on) {
  if (engine->clock.kind != FDN_CLOCK_VIRTUAL)
    return FDN_ESTATE;
  engine->autojump = on != 0;
  update_idle(engine);
  return 0;
}

int fdn_engine_next_deadline(const fdn_engine_t *engine, uint64_t *out) {
  const fdn_heap_entry_t *top = fdn_heap_top(&engine->timers);
  if (top == NULL)
    return FDN_EAGAIN;
  *out = top->key;
  return 0;
}

int fdn_engine_run(fdn_engine_t *engine, uv_run_mode mode) {
  int rc;
  if (engine->closing)
    return FDN_ECLOSED;
  rc = uv_run(engine->loop, mode);
  engine->stop_requested = 0;
  return rc;
}

static void finish_close(fdn_engine_t *engine) {
  fdn_engine_close_cb cb = engine->close_cb;
  void *arg = engine->close_arg;
  free(engine->shuffle_buf);
  free(engine);
  fdn_diag_add(FDN_DIAG_ENGINES_FREED, 1);
  if (cb != NULL)
    cb(arg);
}

static void on_handle_closed(uv_handle_t *handle) {
  fdn_engine_t *engine = handle->data;
  if (--engine->open_handles == 0 && !engine->owns_loop)
    finish_close(engine);
}

static void close_stray_handle(uv_handle_t *handle, void *arg) {
  (void)arg;
  if (!uv_is_closing(handle))
    uv_close(handle, NULL);
}

int fdn_engine_close(fdn_engine_t *engine, fdn_engine_close_cb cb, void *arg) {
  if (engine == NULL)
    return FDN_EINVAL;
  if (engine->closing || engine->in_tick)
    return FDN_ESTATE;
  if (engine->live > 0)
    return FDN_EBUSY;
  engine->closing = 1;
  engine->close_cb = cb;
  engine->close_arg = arg;
  fdn_heap_free(&engine->timers);
  uv_idle_stop(&engine->idle);
  uv_timer_stop(&engine->timer);
  uv_close((uv_handle_t *)&engine->idle, on_handle_closed);
  uv_close((uv_handle_t *)&engine->timer, on_handle_closed);
  if (engine->owns_loop) {
    while (engine->open_handles > 0)
      uv_run(engine->loop, UV_RUN_NOWAIT);
    /* Handles a host or binding left open on our loop would make
     * uv_loop_close fail and leak the loop; close them rather than leak.
     */
    if (uv_loop_close(engine->loop) == UV_EBUSY) {
      fdn_diag_add(FDN_DIAG_LOOPS_FORCED, 1);
      uv_walk(engine->loop, close_stray_handle, NULL);
      uv_run(engine->loop, UV_RUN_NOWAIT);
      uv_loop_close(engine->loop);
    }
    finish_close(engine);
  }
  return 0;
}

uv_loop_t *fdn_engine_loop(const fdn_engine_t *engine) {
  return engine->loop;
}

fdn_clock_kind_t fdn_engine_clock(const fdn_engine_t *engine) {
  return engine->clock.kind;
}

uint64_t fdn_engine_now(const fdn_engine_t *engine) {
  return fdn_clock_now(&engine->clock);
}

fdn_task_t *fdn_engine_current(const fdn_engine_t *engine) {
  return engine->current;
}

size_t fdn_engine_live_tasks(const fdn_engine_t *engine) {
  return engine->live;
}

size_t fdn_engine_ready_tasks(const fdn_engine_t *engine) {
  return engine->ready_len;
}

size_t fdn_engine_armed_timers(const fdn_engine_t *engine) {
  return fdn_heap_len(&engine->timers);
}

fdn_rng_t *fdn_engine_rng(fdn_engine_t *engine) {
  return &engine->rng;
}

uint64_t fdn_engine_seed(const fdn_engine_t *engine) {
  return engine->seed;
}

void fdn_engine_set_tick_hook(fdn_engine_t *engine, fdn_engine_tick_cb cb,
                              void *arg, int every_task) {
  engine->tick_hook = cb;
  engine->tick_hook_arg = arg;
  engine->tick_hook_every_task = every_task != 0;
  engine->test_modes = cb != NULL || engine->sched_seed != 0;
}

uint64_t fdn_engine_sched_seed(const fdn_engine_t *engine) {
  return engine->sched_seed;
}

void fdn_engine_set_data(fdn_engine_t *engine, void *data) {
  engine->data = data;
}

void *fdn_engine_get_data(const fdn_engine_t *engine) {
  return engine->data;
}
