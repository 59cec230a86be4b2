// Layering probe, compiled as budget/ is: must NOT build (allocator/ is above).
#include "budget/budget.h"        // its own layer: found
#include "pool/pool.h"            // a lower layer: found
#include "allocator/executor.h"   // a higher layer: must not be found
