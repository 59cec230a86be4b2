// Layering probe, compiled as platform/ is: must NOT build (pool/ is above).
#include "platform/os.h"  // its own layer: found
#include "pool/pool.h"    // a higher layer: must not be found
