// The library's lock for rare slow paths (arena growth, registries, the
// orphanage): execmem::SpillLock (include/execmem_lock.hpp), the one lock
// implementation, which execmem also offers to spill hooks. Spins a little,
// then waits in the kernel; TryLock by the holder fails. Not absl::Mutex: the
// allocator runs before main and inside fork handlers, where it must not
// depend on a runtime that may allocate.
//
// This is SpillLock with the thread-safety annotations (the public header
// has none: it needs the standard library only) and a reset for the child
// after fork, nothing else.
#ifndef EXECMEM_PLATFORM_SPIN_LOCK_H_
#define EXECMEM_PLATFORM_SPIN_LOCK_H_

#include <memory>

#include "absl/base/thread_annotations.h"
#include "execmem_lock.hpp"

namespace execmem {

class ABSL_LOCKABLE SpinLock {
 public:
  constexpr SpinLock() = default;
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { lock_.Lock(); }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return lock_.TryLock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { lock_.Unlock(); }
  // After fork() in the child only one thread exists: make the lock free
  // (whoever held it, or waited for it, is gone).
  void ResetAfterFork() { std::construct_at(&lock_); }

 private:
  SpillLock lock_;
};

class ABSL_SCOPED_LOCKABLE SpinLockHolder {
 public:
  explicit SpinLockHolder(SpinLock& l) ABSL_EXCLUSIVE_LOCK_FUNCTION(l) : l_(l) { l_.Lock(); }
  ~SpinLockHolder() ABSL_UNLOCK_FUNCTION() { l_.Unlock(); }
  SpinLockHolder(const SpinLockHolder&) = delete;
  SpinLockHolder& operator=(const SpinLockHolder&) = delete;

 private:
  SpinLock& l_;
};

}  // namespace execmem

#endif  // EXECMEM_PLATFORM_SPIN_LOCK_H_
