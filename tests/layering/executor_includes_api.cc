// Layering probe, compiled as executor/ is: must NOT build (api/ is above).
#include "api/api.h"            // a higher layer: must not be found
#include "cache/cache.h"        // a lower layer: found
#include "executor/executor.h"  // its own layer: found
