/* Process-wide counters for hygiene checks.
 *
 * Test runners read them before and after each test to prove that the test
 * closed every engine it created and that every loop an engine owned closed
 * cleanly (uv_loop_close returned 0 without fdn having to close handles
 * left open on it). They cost one relaxed atomic add per engine or state
 * created and closed, never anything on a scheduling path.
 */
#ifndef FDN_DIAG_H
#define FDN_DIAG_H

#include <stdint.h>

typedef enum {
  FDN_DIAG_ENGINES_CREATED = 0,
  FDN_DIAG_ENGINES_FREED,
  /* Owned loops whose first uv_loop_close failed with UV_EBUSY: something
   * left a handle open, and the engine had to close it to free the loop.
   */
  FDN_DIAG_LOOPS_FORCED,
  /* Lua states set up and torn down by the embedding API (fdn_lua_new). */
  FDN_DIAG_STATES_CREATED,
  FDN_DIAG_STATES_CLOSED,
  /* The binding's private thread stacks found off their fixed tops when a
   * state closed: some binding call pushed without popping.
   */
  FDN_DIAG_STACK_IMBALANCES,
  FDN_DIAG_COUNT
} fdn_diag_counter_t;

/* The counter's value since the process started; 0 for an unknown one. */
uint64_t fdn_diag_get(fdn_diag_counter_t which);

/* Adds `n` to a counter. For fdn's own layers (the bindings count states
 * and imbalances); hosts only read.
 */
void fdn_diag_add(fdn_diag_counter_t which, uint64_t n);

#endif
