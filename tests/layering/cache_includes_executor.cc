// Layering probe, compiled as cache/ is: must NOT build (executor/ is above:
// the cache reaches the reclaim loop only through its Reclaimer interface).
#include "budget/budget.h"      // a lower layer: found
#include "cache/cache.h"        // its own layer: found
#include "executor/executor.h"  // a higher layer: must not be found
