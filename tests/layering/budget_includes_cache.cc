// Layering probe, compiled as budget/ is: must NOT build (cache/ is above).
#include "budget/budget.h"  // its own layer: found
#include "cache/cache.h"    // a higher layer: must not be found
#include "pool/pool.h"      // a lower layer: found
