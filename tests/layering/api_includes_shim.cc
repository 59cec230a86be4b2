// Layering probe, compiled as api/ is: must NOT build (shim/ is above).
#include "api/api.h"            // its own layer: found
#include "executor/executor.h"  // a lower layer: found
#include "shim/request.h"       // a higher layer: must not be found
