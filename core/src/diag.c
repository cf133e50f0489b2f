#include "fdn/diag.h"

/* Relaxed atomics: the counters are only compared between tests, but an
 * embedding host may run engines on several threads at once.
 */
static uint64_t counters[FDN_DIAG_COUNT];

uint64_t fdn_diag_get(fdn_diag_counter_t which) {
  if ((unsigned)which >= FDN_DIAG_COUNT)
    return 0;
  return __atomic_load_n(&counters[which], __ATOMIC_RELAXED);
}

void fdn_diag_add(fdn_diag_counter_t which, uint64_t n) {
  if ((unsigned)which >= FDN_DIAG_COUNT)
    return;
  __atomic_fetch_add(&counters[which], n, __ATOMIC_RELAXED);
}
