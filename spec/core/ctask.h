/* Scripted C tasks for the core tests: each run of the task calls `step`
 * with the wake status, which decides what the task does next.
 */
#ifndef FDN_SPEC_CTASK_H
#define FDN_SPEC_CTASK_H

#include "fdn/fdn.h"

typedef struct ctask_s ctask_t;
typedef void (*ctask_step_cb)(ctask_t *ct, int status);

struct ctask_s {
  fdn_task_t task;
  ctask_step_cb step;
  int runs;
  int statuses[64];
  int rc; /* return code of the last park call made by `step` */
  void *user;
  long value;
};

/* Records the order in which tasks ran, across tasks. */
extern long ctask_trace[4096];
extern int ctask_trace_len;

void ctask_trace_reset(void);
int ctask_init(fdn_engine_t *engine, ctask_t *ct, ctask_step_cb step);
int ctask_spawn(fdn_engine_t *engine, ctask_t *ct, ctask_step_cb step);

/* Creates an engine or fails the test. */
fdn_engine_t *ctest_engine(fdn_clock_kind_t clock);

#endif
