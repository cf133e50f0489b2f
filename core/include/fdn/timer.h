/* One-shot timers on the engine's shared timer heap.
 *
 * Timers are caller-allocated and cost no libuv handle each: the engine
 * keeps them in one heap behind a single uv_timer_t, and under a virtual
 * clock they fire when virtual time reaches them.
 */
#ifndef FDN_TIMER_H
#define FDN_TIMER_H

#include <stdint.h>

#include "fdn/heap.h"

/* Declared in several headers; C99 allows one typedef per name. */
#ifndef FDN_ENGINE_T_DECLARED
#define FDN_ENGINE_T_DECLARED
typedef struct fdn_engine_s fdn_engine_t;
#endif
typedef struct fdn_timer_s fdn_timer_t;
typedef void (*fdn_timer_cb)(fdn_timer_t *timer);

struct fdn_timer_s {
  fdn_heap_node_t node;
  fdn_engine_t *engine;
  fdn_timer_cb cb;
  void *data;
};

void fdn_timer_init(fdn_engine_t *engine, fdn_timer_t *timer);

/* Arms the timer to call `cb` once `delay_ns` from now (or at the absolute
 * engine time `deadline_ns`). Re-arming an active timer moves it. The engine
 * borrows the timer until it fires or is stopped.
 */
int fdn_timer_start(fdn_timer_t *timer, fdn_timer_cb cb, uint64_t delay_ns);
int fdn_timer_start_at(fdn_timer_t *timer, fdn_timer_cb cb,
                       uint64_t deadline_ns);

/* Disarms the timer; stopping an inactive timer is a no-op. */
void fdn_timer_stop(fdn_timer_t *timer);

static inline int fdn_timer_active(const fdn_timer_t *timer) {
  return fdn_heap_node_active(&timer->node);
}

#endif
