#include "ctask.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long ctask_trace[4096];
int ctask_trace_len;

void ctask_trace_reset(void) {
  ctask_trace_len = 0;
}

static void ctask_run(fdn_task_t *task, int status) {
  ctask_t *ct = (ctask_t *)task;
  if (ct->runs < 64)
    ct->statuses[ct->runs] = status;
  ct->runs++;
  ct->step(ct, status);
}

int ctask_init(fdn_engine_t *engine, ctask_t *ct, ctask_step_cb step) {
  memset(ct, 0, sizeof(*ct));
  ct->step = step;
  return fdn_task_init(engine, &ct->task, ctask_run);
}

int ctask_spawn(fdn_engine_t *engine, ctask_t *ct, ctask_step_cb step) {
  int rc = ctask_init(engine, ct, step);
  if (rc == 0)
    rc = fdn_task_start(&ct->task);
  return rc;
}

fdn_engine_t *ctest_engine(fdn_clock_kind_t clock) {
  fdn_engine_options_t opts;
  fdn_engine_t *engine = NULL;
  fdn_engine_options_init(&opts);
  opts.clock = clock;
  if (fdn_engine_new(&engine, &opts) != 0) {
    fprintf(stderr, "cannot create engine\n");
    exit(1);
  }
  return engine;
}
