// execmem — the lock execmem uses itself, offered to spill hooks (C++20).
//
// A spill hook runs on whatever thread is allocating — possibly the thread
// that holds the lock guarding the buffer the hook would spill, in the middle
// of its own allocation. So a hook may only *try* a lock, and a try by the
// thread that already holds it must simply fail, which std::mutex does not
// promise (try_lock by the owner is undefined behaviour). execmem::SpillLock
// promises it:
//
//   TryLock()  true and held, or false at once (held by anyone, the calling
//              thread included); never waits.
//   Lock()     spins a little (critical sections are short), then waits in
//              the kernel (std::atomic wait: a futex on Linux) until Unlock;
//              never allocates.
//   Unlock()   releases; wakes a waiter only when one is waiting, so an
//              uncontended Lock / Unlock is two atomic instructions.
//
// It is not recursive: Lock by the holder waits forever. It is the lock of
// execmem's own slow paths too (arena growth, registries, the orphanage), so
// it may be used before main and in fork handlers.
//
// Needs the standard library only (and C++20's atomic wait). execmem.hpp
// includes it when the compiler offers atomic wait.
#ifndef EXECMEM_LOCK_HPP_
#define EXECMEM_LOCK_HPP_

#include <atomic>
#include <cstdint>
#include <thread>

namespace execmem {

class SpillLock {
 public:
  constexpr SpillLock() noexcept = default;
  SpillLock(const SpillLock&) = delete;
  SpillLock& operator=(const SpillLock&) = delete;

  bool TryLock() noexcept {
    std::uint32_t expected = kFree;
    return state_.load(std::memory_order_relaxed) == kFree &&
           state_.compare_exchange_strong(expected, kHeld, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }

  void Lock() noexcept {
    std::uint32_t expected = kFree;
    if (state_.compare_exchange_strong(expected, kHeld, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      return;
    }
    LockContended();
  }

  void Unlock() noexcept {
    if (state_.exchange(kFree, std::memory_order_release) == kWaited) state_.notify_one();
  }

 private:
  // kWaited: held, and a thread may be waiting in the kernel (Unlock wakes one).
  static constexpr std::uint32_t kFree = 0, kHeld = 1, kWaited = 2;
  static constexpr int kSpins = 16;

  void LockContended() noexcept {
    for (int i = 0; i < kSpins; ++i) {
      std::this_thread::yield();
      if (TryLock()) return;
    }
    // Marks the lock waited for; whoever takes it this way keeps the mark, so
    // that its Unlock wakes the next waiter (no wake-up is lost).
    while (state_.exchange(kWaited, std::memory_order_acquire) != kFree) {
      state_.wait(kWaited, std::memory_order_relaxed);
    }
  }

  std::atomic<std::uint32_t> state_{kFree};
};

// Holds a SpillLock for a scope.
class SpillLockGuard {
 public:
  explicit SpillLockGuard(SpillLock& lock) noexcept : lock_(lock) { lock_.Lock(); }
  ~SpillLockGuard() { lock_.Unlock(); }
  SpillLockGuard(const SpillLockGuard&) = delete;
  SpillLockGuard& operator=(const SpillLockGuard&) = delete;

 private:
  SpillLock& lock_;
};

}  // namespace execmem

#endif  // EXECMEM_LOCK_HPP_
