// Process-level controls of the allocator, for the LD_PRELOAD shim and tests.
// Not part of the public API (include/execmem.h is).
#ifndef EXECMEM_EXECUTOR_RUNTIME_H_
#define EXECMEM_EXECUTOR_RUNTIME_H_

#include <cstdint>

#include "execmem.hpp"  // Status

namespace execmem::internal {

enum class OomPolicy : uint8_t {
  kReturnNull,  // malloc returns NULL with ENOMEM, C++ allocate throws OutOfMemory
  kAbort,       // print the out-of-memory report to stderr and abort()
  kReport,      // as kReturnNull, and the first refusal's report goes to stderr
};
void SetOomPolicy(OomPolicy policy);
OomPolicy GetOomPolicy();

// Gives the default executor (the one unbound threads allocate for) budgets,
// in bytes. overhead is absolute bytes. Checked as for any executor; nothing
// is applied on error.
Status ConfigureDefaultExecutor(uint64_t initial, uint64_t max, uint64_t overhead);

// Sets the pool's capacity in bytes (0: back to the cgroup / machine default).
Status SetPoolCapacity(uint64_t bytes);
uint64_t PoolCapacity();
// The default capacity: cgroup v2 memory.max, v1 memory.limit_in_bytes, else physical memory.
uint64_t DefaultPoolCapacity();

// Decay time after which cached empty pages are returned to the OS.
void SetDecayMilliseconds(uint64_t ms);
// Whether large blocks ask for transparent huge pages (pool.h, SetHugePages).
void SetHugePages(bool on);
void SetEmergencyReserve(uint64_t bytes);  // budget/emergency.h

// pthread_atfork handlers: take every internal lock before fork, release in
// the parent, reinitialise in the child (which may then allocate freely).
void ForkPrepare();
void ForkParent();
void ForkChild();

// The out-of-memory report of the last failed allocation on this thread.
const char* LastOomReport();

}  // namespace execmem::internal

#endif  // EXECMEM_EXECUTOR_RUNTIME_H_
