#include "fdn/timer.h"

#include "fdn/error.h"
#include "internal.h"

void fdn_timer_init(fdn_engine_t *engine, fdn_timer_t *timer) {
  fdn_heap_node_init(&timer->node, FDN__TAG_TIMER);
  timer->engine = engine;
  timer->cb = NULL;
  timer->data = NULL;
}

int fdn_timer_start_at(fdn_timer_t *timer, fdn_timer_cb cb,
                       uint64_t deadline_ns) {
  if (cb == NULL || timer->engine == NULL)
    return FDN_EINVAL;
  if (timer->engine->closing)
    return FDN_ECLOSED;
  fdn__engine_disarm(timer->engine, &timer->node);
  timer->cb = cb;
  return fdn__engine_arm(timer->engine, &timer->node, deadline_ns);
}

int fdn_timer_start(fdn_timer_t *timer, fdn_timer_cb cb, uint64_t delay_ns) {
  uint64_t now, deadline;
  if (timer->engine == NULL)
    return FDN_EINVAL;
  now = fdn_engine_now(timer->engine);
  deadline = delay_ns > FDN_FOREVER - now ? FDN_FOREVER : now + delay_ns;
  return fdn_timer_start_at(timer, cb, deadline);
}

void fdn_timer_stop(fdn_timer_t *timer) {
  if (timer->engine != NULL)
    fdn__engine_disarm(timer->engine, &timer->node);
}
