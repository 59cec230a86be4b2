// The thread_safety test's probe: a guarded member written without its lock.
// clang must refuse it with the test's flags, or they check nothing.
#include "platform/spin_lock.h"

namespace {

struct Guarded {
  execmem::SpinLock lock;
  int value ABSL_GUARDED_BY(lock) = 0;
};

}  // namespace

void WriteWithoutTheLock(Guarded& g) { g.value = 1; }
