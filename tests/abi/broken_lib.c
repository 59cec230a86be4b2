/* A libexecmem.so that breaks the ABI (every function but one removed), for
 * abi_check_selftest.sh: the check must fail under the same SONAME and pass
 * under a bumped one. */
#include "execmem.h"

const char* execmem_version(void) { return "broken"; }
