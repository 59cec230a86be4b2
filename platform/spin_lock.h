// A tiny test-and-test-and-set lock for rare slow paths (arena growth,
// registries). Not absl::Mutex: the allocator runs before main and inside
// fork handlers, where it must not depend on a runtime that may allocate.
#ifndef EXECMEM_PLATFORM_SPIN_LOCK_H_
#define EXECMEM_PLATFORM_SPIN_LOCK_H_

#include <sched.h>

#include <atomic>

#include "absl/base/thread_annotations.h"

namespace execmem {

class ABSL_LOCKABLE SpinLock {
 public:
  constexpr SpinLock() = default;
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      while (locked_.load(std::memory_order_relaxed)) sched_yield();
    }
  }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() { locked_.store(false, std::memory_order_release); }
  // After fork() in the child only one thread exists: make the lock free.
  void ResetAfterFork() { locked_.store(false, std::memory_order_relaxed); }

 private:
  std::atomic<bool> locked_{false};
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
