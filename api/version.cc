// execmem_version(): the version this library was built as (execmem_version.h).
#include "execmem.h"

extern "C" const char* execmem_version(void) { return EXECMEM_VERSION_STRING; }
