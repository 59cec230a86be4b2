// execmem_version(): the version this library was built as (execmem_version.h),
// and the warning when a process holds two execmem runtimes.
#include "execmem.h"
#include "platform/os.h"

extern "C" const char* execmem_version(void) { return EXECMEM_VERSION_STRING; }

namespace execmem {
namespace {

// A program linked with libexecmem.so (or libexecmem.a) and run under
// libexecmem_preload.so holds two runtimes: two pools, two sets of
// executors and budgets, two sets of stats, none of them the process's.
// Whichever runtime finds that the process resolves execmem_version to the
// other one says so, once, when it is loaded.
__attribute__((constructor)) void WarnOfASecondRuntime() {
  const char* other =
      os::OtherDefinition("execmem_version", reinterpret_cast<const void*>(&WarnOfASecondRuntime));
  if (other == nullptr) return;
  constexpr char kPrefix[] = "execmem: warning: two execmem runtimes in one process (";
  constexpr char kSuffix[] =
      " defines the C API first): a library linked with libexecmem and the preload "
      "libexecmem_preload.so keep separate budgets and stats, so neither sees all the memory. "
      "Under the preload link no libexecmem (the preload exports the C API: find it with "
      "dlsym), or do not preload a program linked with it.\n";
  os::WriteStderr(kPrefix, sizeof kPrefix - 1);
  os::WriteStderr(other, __builtin_strlen(other));
  os::WriteStderr(kSuffix, sizeof kSuffix - 1);
}

}  // namespace
}  // namespace execmem
