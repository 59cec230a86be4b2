// The lock that guards a task's spillable buffer.
//
// A spill hook runs on whatever thread is allocating — possibly the owner of
// the buffer, in the middle of its own allocation — so it may only try the
// lock: TryLock by the thread that already holds it must simply fail, which
// std::mutex does not promise. Lock blocks in the kernel (C++20 atomic wait)
// rather than spinning, since the holder may be writing a run to disk.
#ifndef EXECMEM_DEMO_SPILL_LOCK_H_
#define EXECMEM_DEMO_SPILL_LOCK_H_

#include <atomic>

#include "absl/base/thread_annotations.h"

namespace execmem_demo {

class ABSL_LOCKABLE SpillLock {
 public:
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    return !held_.exchange(true, std::memory_order_acquire);
  }
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    while (held_.exchange(true, std::memory_order_acquire))
      held_.wait(true, std::memory_order_relaxed);
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    held_.store(false, std::memory_order_release);
    held_.notify_one();
  }

 private:
  std::atomic<bool> held_{false};
};

class ABSL_SCOPED_LOCKABLE SpillLockGuard {
 public:
  explicit SpillLockGuard(SpillLock& lock) ABSL_EXCLUSIVE_LOCK_FUNCTION(lock) : lock_(lock) {
    lock_.Lock();
  }
  ~SpillLockGuard() ABSL_UNLOCK_FUNCTION() { lock_.Unlock(); }
  SpillLockGuard(const SpillLockGuard&) = delete;
  SpillLockGuard& operator=(const SpillLockGuard&) = delete;

 private:
  SpillLock& lock_;
};

}  // namespace execmem_demo

#endif  // EXECMEM_DEMO_SPILL_LOCK_H_
