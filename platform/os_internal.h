// Shared by the files of platform/ only.
#ifndef EXECMEM_PLATFORM_OS_INTERNAL_H_
#define EXECMEM_PLATFORM_OS_INTERNAL_H_

namespace execmem::os::internal {

// The fault-injection seam (os.h FaultPlan) for a read of a cgroup or /proc
// file: true when the plan fails this call (errno unchanged: the caller
// treats it as a failed open); false, and nothing else, in builds without
// EXECMEM_FAULT_INJECTION.
bool InjectReadFault();

}  // namespace execmem::os::internal

#endif  // EXECMEM_PLATFORM_OS_INTERNAL_H_
