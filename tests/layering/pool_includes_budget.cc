// Layering probe, compiled as pool/ is: must NOT build (budget/ is above).
#include "pool/pool.h"      // its own layer: found
#include "budget/budget.h"  // a higher layer: must not be found
