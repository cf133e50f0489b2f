/* Engine internals shared by the core's own files. */
#ifndef FDN_INTERNAL_H
#define FDN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "fdn/engine.h"
#include "fdn/heap.h"
#include "fdn/task.h"

#define fdn__container_of(ptr, type, member)                                  \
  ((type *)((char *)(ptr)-offsetof(type, member)))

/* Heap node tags: which record a timer heap node is embedded in. */
enum { FDN__TAG_TIMER = 1, FDN__TAG_TASK = 2, FDN__TAG_SCOPE = 3 };

/* Task flags. */
enum {
  FDN__TASK_CANCELLED = 1u,  /* fdn_task_cancel() called; see task.h */
  FDN__TASK_ABANDONED = 2u,
  FDN__TASK_TIMED_WAIT = 4u, /* its timer means FDN_ETIMEDOUT, not 0 */
  FDN__TASK_YIELDED = 8u     /* shuffle mode: re-queued by a yield */
};

#define FDN__TICK_BUDGET 256u

struct fdn_engine_s {
  uv_loop_t *loop;
  uv_loop_t own_loop;
  uv_idle_t idle;
  uv_timer_t timer;
  fdn_clock_t clock;
  fdn_heap_t timers;
  fdn_task_t *ready_head;
  fdn_task_t *ready_tail;
  size_t ready_len;
  fdn_task_t *current;
  uint64_t next_id;
  size_t live;
  uint64_t armed_key;
  unsigned tick_budget;
  int open_handles;
  uint8_t owns_loop;
  uint8_t autojump;
  uint8_t idle_active;
  uint8_t timer_armed;
  uint8_t closing;
  uint8_t in_tick;
  fdn_engine_close_cb close_cb;
  void *close_arg;
  void *data;
  fdn_rng_t rng;
  uint64_t seed;
  fdn_waitq_t advancers;   /* the task parked in fdn_engine_advance_task */
  uint64_t advance_target; /* where that advance ends */
  uint8_t stop_requested;  /* fdn_engine_stop: end the current run */
  /* Test modes (tick hook, shuffle): tick() checks this one flag only. */
  uint8_t test_modes;
  fdn_engine_tick_cb tick_hook;
  void *tick_hook_arg;
  uint8_t tick_hook_every_task;
  uint64_t sched_seed;
  fdn_rng_t sched_rng;
  fdn_task_t **shuffle_buf; /* scratch for shuffling the ready queue */
  size_t shuffle_cap;
};

/* Puts a node on the engine's timer heap, keeping the uv timer in step. */
int fdn__engine_arm(fdn_engine_t *engine, fdn_heap_node_t *node,
                    uint64_t deadline);
void fdn__engine_disarm(fdn_engine_t *engine, fdn_heap_node_t *node);

/* Appends a task to the ready queue. */
void fdn__engine_ready_push(fdn_engine_t *engine, fdn_task_t *task);
void fdn__engine_ready_remove(fdn_engine_t *engine, fdn_task_t *task);

/* Fires every timer due at or before `now`, in deadline order. */
void fdn__engine_fire_due(fdn_engine_t *engine, uint64_t now);

/* Called by the timer heap for nodes embedded in tasks and scopes. */
void fdn__task_timer_fired(fdn_task_t *task);
void fdn__scope_deadline_fired(fdn_scope_t *scope);

#endif
