/* fdn core: the whole public C API. */
#ifndef FDN_FDN_H
#define FDN_FDN_H

#define FDN_VERSION_MAJOR 0
#define FDN_VERSION_MINOR 1
#define FDN_VERSION_PATCH 0
#define FDN_VERSION_STRING "0.1.0"

#include "fdn/batcher.h"
#include "fdn/breaker.h"
#include "fdn/bulkhead.h"
#include "fdn/channel.h"
#include "fdn/clock.h"
#include "fdn/diag.h"
#include "fdn/engine.h"
#include "fdn/error.h"
#include "fdn/event.h"
#include "fdn/heap.h"
#include "fdn/limiter.h"
#include "fdn/nursery.h"
#include "fdn/ratelimit.h"
#include "fdn/retry.h"
#include "fdn/rng.h"
#include "fdn/task.h"
#include "fdn/timer.h"

#endif
