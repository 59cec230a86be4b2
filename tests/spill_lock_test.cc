// execmem::SpillLock (include/execmem_lock.hpp): the one lock of execmem,
// public for spill hooks and, annotated, the library's SpinLock
// (platform/spin_lock.h). What it promises: TryLock by the holder fails,
// Lock waits (in the kernel) until Unlock, and no wake-up is lost.
//
// No sleeps: a thread is known to wait in Lock when the kernel reports it
// sleeping (/proc/self/task/TID/stat state 'S'); before Lock it never sleeps.
// A lost wake-up shows as a waiter that never returns (the test's timeout).
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "execmem.hpp"
#include "gtest/gtest.h"
#include "platform/spin_lock.h"

namespace {

using execmem::SpillLock;
using execmem::SpillLockGuard;

// The scheduler state of thread `tid` of this process ('R', 'S', 'D'...).
char ThreadState(pid_t tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  std::getline(stat, line);
  // "tid (comm) S ...": comm may hold spaces and parentheses; the state
  // follows the last ')'.
  const size_t close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() ? '?' : line[close + 2];
}

// A thread that takes `lock` and notes when it has it.
struct Waiter {
  std::atomic<pid_t> tid{0};
  std::atomic<bool> acquired{false};
  bool saw_released = false;
  std::thread thread;

  void Start(SpillLock& lock, const std::atomic<bool>& released) {
    thread = std::thread([this, &lock, &released] {
      tid.store(gettid(), std::memory_order_release);
      lock.Lock();
      saw_released = released.load(std::memory_order_acquire);
      acquired.store(true, std::memory_order_release);
      lock.Unlock();
    });
  }
  // Waits until the thread sleeps in Lock; false if it took the lock instead.
  bool WaitUntilAsleep() const {
    pid_t t;
    while ((t = tid.load(std::memory_order_acquire)) == 0) std::this_thread::yield();
    for (;;) {
      if (acquired.load(std::memory_order_acquire)) return false;
      if (ThreadState(t) == 'S') return true;
      std::this_thread::yield();
    }
  }
};

TEST(SpillLock, TryLockByTheHolderFails) {
  SpillLock lock;
  lock.Lock();
  EXPECT_FALSE(lock.TryLock()) << "a try by the thread holding the lock must fail";
  lock.Unlock();
  ASSERT_TRUE(lock.TryLock());
  EXPECT_FALSE(lock.TryLock());
  lock.Unlock();
  {
    SpillLockGuard guard(lock);
    EXPECT_FALSE(lock.TryLock());
  }
  EXPECT_TRUE(lock.TryLock());
  lock.Unlock();
}

TEST(SpillLock, TryLockByAnotherThreadFailsWhileHeld) {
  SpillLock lock;
  lock.Lock();
  bool got = true;
  std::thread([&] { got = lock.TryLock(); }).join();
  EXPECT_FALSE(got);
  lock.Unlock();
  std::thread([&] {
    got = lock.TryLock();
    if (got) lock.Unlock();
  }).join();
  EXPECT_TRUE(got);
}

TEST(SpillLock, LockWaitsInTheKernelUntilUnlock) {
  SpillLock lock;
  std::atomic<bool> released{false};
  lock.Lock();
  Waiter w;
  w.Start(lock, released);
  const bool asleep = w.WaitUntilAsleep();
  EXPECT_TRUE(asleep) << "Lock returned while another thread held the lock";
  released.store(true, std::memory_order_release);
  lock.Unlock();
  w.thread.join();
  EXPECT_TRUE(w.saw_released);
  EXPECT_TRUE(w.acquired.load());
}

// Two threads asleep in Lock; one Unlock. The first woken takes the lock and
// must wake the second when it unlocks (a lock that forgot there is a
// second waiter would leave it asleep: the join below would never return).
TEST(SpillLock, NoWakeUpIsLost) {
  SpillLock lock;
  std::atomic<bool> released{false};
  lock.Lock();
  Waiter a, b;
  a.Start(lock, released);
  b.Start(lock, released);
  EXPECT_TRUE(a.WaitUntilAsleep());
  EXPECT_TRUE(b.WaitUntilAsleep());
  released.store(true, std::memory_order_release);
  lock.Unlock();
  a.thread.join();
  b.thread.join();
  EXPECT_TRUE(a.saw_released && b.saw_released);
  EXPECT_TRUE(lock.TryLock()) << "the lock stayed held";
  lock.Unlock();
}

// Mutual exclusion under contention, Lock and TryLock mixed: a counter
// incremented under the lock without atomics loses no increment.
TEST(SpillLock, ExcludesUnderContention) {
  constexpr int kThreads = 4, kRounds = 20000;
  SpillLock lock;
  uint64_t counter = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        if ((i + t) % 3 == 0) {
          while (!lock.TryLock()) std::this_thread::yield();
        } else {
          lock.Lock();
        }
        counter = counter + 1;
        lock.Unlock();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, uint64_t{kThreads} * kRounds);
}

// The library's SpinLock is the same lock: the holder's try fails; after
// fork the child frees it.
TEST(SpillLock, TheLibrarysLockIsTheSame) {
  static_assert(sizeof(execmem::SpinLock) == sizeof(SpillLock));
  execmem::SpinLock lock;
  lock.Lock();
  EXPECT_FALSE(lock.TryLock());
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    lock.ResetAfterFork();
    const bool took = lock.TryLock();
    _exit(took ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child could not take the lock";
  lock.Unlock();
  EXPECT_TRUE(lock.TryLock());
  lock.Unlock();
}

}  // namespace
