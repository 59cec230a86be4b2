// The races and leaks of issue 12 ("What was found", items 2, 3 and 5), each
// forced into its bad interleaving with a test hook (platform/test_hook.h):
// one thread is paused at the named point until the other has acted, so the
// outcome never depends on scheduling. Each test failed before its fix. And
// one wait of the pool (issue 20): a thread's purge waiting for another's.
#include <cerrno>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "budget/budget.h"
#include "cache/heap_internal.h"
#include "cache/meta.h"
#include "execmem.h"
#include "executor/executor.h"
#include "executor/runtime.h"
#include "gtest/gtest.h"
#include "platform/test_hook.h"
#include "pool/pool.h"
#include "pool/pool_internal.h"
#include "tests/testing.h"

namespace execmem {
namespace {

using test_hook::Point;

// The one hook of the process: pauses (or fails) the thread that reaches
// `point` while armed, once.
struct Pause {
  std::atomic<bool> armed{false};
  Point point{};
  bool fail = false;
  absl::Notification* reached = nullptr;  // told when the thread arrives
  absl::Notification* resume = nullptr;   // waited for before it goes on
};
Pause g_pause;

// The other fields are written before `armed` is set (release) and read
// after it is seen (acquire).
bool Hook(Point p) {
  if (!g_pause.armed.load(std::memory_order_acquire) || p != g_pause.point) return false;
  bool expected = true;
  if (!g_pause.armed.compare_exchange_strong(expected, false, std::memory_order_acq_rel)) {
    return false;
  }
  if (g_pause.reached != nullptr) g_pause.reached->Notify();
  if (g_pause.resume != nullptr) g_pause.resume->WaitForNotification();
  return g_pause.fail;
}

class RaceTest : public ::testing::Test {
 protected:
  void SetUp() override { test_hook::Install(&Hook); }
  void TearDown() override {
    g_pause.armed.store(false);
    test_hook::Install(nullptr);
  }
  // Arms the hook at `p` for one hit.
  void PauseAt(Point p, absl::Notification* reached, absl::Notification* resume,
               bool fail = false) {
    g_pause.point = p;
    g_pause.reached = reached;
    g_pause.resume = resume;
    g_pause.fail = fail;
    g_pause.armed.store(true, std::memory_order_release);
  }
};

execmem_executor_t* NewExecutor(const char* name, const char* max) {
  execmem_executor_options_t o{};
  o.name = name;
  o.initial = "0";
  o.max = max;
  o.overhead = "1m";
  execmem_executor_t* e = nullptr;
  EXPECT_EQ(execmem_executor_create(&o, &e), 0) << execmem_last_error();
  return e;
}

// Item 2: a thread meeting its heap of an executor being destroyed must not
// free that heap while the destroyer has claimed but not yet abandoned it.
// Before the fix the thread freed it, reused the memory for its new heap,
// and the destroyer then abandoned that new heap: unlinked from its
// executor, which could then be destroyed while the thread was bound to it.
TEST_F(RaceTest, ADeadHeapIsNotFreedBeforeItsDestroyerAbandonedIt) {
  execmem_executor_t* e = NewExecutor("doomed", "64m");
  execmem_executor_t* f = NewExecutor("next", "64m");
  absl::Notification has_heap, claimed, resume, bound_to_f, unbind;
  std::thread t([&] {
    execmem_executor_t* prev = execmem_bind(e);  // makes this thread's heap for e
    execmem_free(execmem_malloc(100));
    execmem_bind(prev);  // the heap for e is now idle
    has_heap.Notify();
    claimed.WaitForNotification();
    execmem_bind(f);  // walks the thread's heaps: meets the dead one
    execmem_free(execmem_malloc(100));
    bound_to_f.Notify();
    unbind.WaitForNotification();
    execmem_bind(prev);
  });
  has_heap.WaitForNotification();
  PauseAt(Point::kDestroyAfterClaim, &claimed, &resume);
  std::thread destroyer([&] { EXPECT_EQ(execmem_executor_destroy(e), 0); });
  bound_to_f.WaitForNotification();
  resume.Notify();
  destroyer.join();
  // The thread is bound to f: f's heaps must still include its heap.
  EXPECT_EQ(execmem_executor_destroy(f), EBUSY) << "f was destroyed while a thread is bound to it";
  unbind.Notify();
  t.join();
  EXPECT_EQ(execmem_executor_destroy(f), 0) << execmem_last_error();
}

// Item 3: a bind that has passed the `closing` check when the executor is
// destroyed must fail, not bind the thread to an unregistered executor.
TEST_F(RaceTest, ABindRacingADestroyNeverBindsTheDestroyedExecutor) {
  execmem_executor_t* e = NewExecutor("racing", "64m");
  ExecutorImpl* impl = reinterpret_cast<ExecutorImpl*>(e);
  impl->Ref();  // keeps the memory valid for the paused bind
  absl::Notification checked, destroyed;
  PauseAt(Point::kBindAfterClosingCheck, &checked, &destroyed);
  execmem_executor_t* bound_to = nullptr;
  int bind_errno = 0;
  std::thread t([&] {
    errno = 0;
    execmem_executor_t* prev = execmem_bind(e);
    bind_errno = errno;
    bound_to = execmem_current_executor();
    execmem_bind(prev);
  });
  checked.WaitForNotification();
  EXPECT_EQ(execmem_executor_destroy(e), 0) << execmem_last_error();
  destroyed.Notify();
  t.join();
  EXPECT_NE(bound_to, e) << "the thread was bound to a destroyed executor";
  EXPECT_EQ(bind_errno, EINVAL);
  impl->Unref();
}

// Item 5: destroy claims any number of heaps (it gave up with "still bound"
// above 1024).
TEST_F(RaceTest, DestroyClaimsMoreThan1024Heaps) {
  constexpr int kThreads = 1100;
  execmem_executor_t* e = NewExecutor("wide", "64m");
  std::atomic<int> ready{0};
  absl::Notification done;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      execmem_executor_t* prev = execmem_bind(e);  // this thread's heap for e
      execmem_bind(prev);
      ready.fetch_add(1);
      done.WaitForNotification();
    });
  }
  while (ready.load() != kThreads) std::this_thread::yield();
  EXPECT_EQ(execmem_executor_destroy(e), 0) << execmem_last_error();
  done.Notify();
  for (auto& t : threads) t.join();
}

// Item 5: a thread whose first heap cannot be made gives its thread state
// back (it leaked one per failed first allocation).
TEST_F(RaceTest, AFailedFirstHeapLeaksNoThreadState) {
  auto one_thread = [&] {
    std::thread t([&] {
      PauseAt(Point::kNewHeapFail, nullptr, nullptr, /*fail=*/true);
      EXPECT_EQ(execmem_malloc(32), nullptr);  // the thread's first heap: refused
      void* p = execmem_malloc(32);            // made this time
      EXPECT_NE(p, nullptr);
      execmem_free(p);
    });
    t.join();
  };
  one_thread();  // carves what a thread needs once; later threads recycle it
  const uint64_t before = MetaBytes();
  for (int i = 0; i < 20; ++i) one_thread();
  EXPECT_EQ(MetaBytes(), before) << "metadata grew by " << MetaBytes() - before << " bytes";
}

// Item 5: lowering the pool's capacity checked the ledger, then stored the
// capacity: a reservation taken in between (which checked the old capacity)
// left the ledger above the new one.
TEST_F(RaceTest, LoweringTheCapacityRacingAReservationKeepsTheLedgerWithinIt) {
  test_support::CapacityGuard restore;
  const uint64_t ledger = budget::Counters().reserved + budget::Counters().granted;
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  ASSERT_TRUE(budget::SetCapacity(ledger + 1024 * kMiB));
  absl::Notification checked, reserved;
  PauseAt(Point::kSetCapacityAfterCheck, &checked, &reserved);
  bool lowered = false;
  std::thread t([&] { lowered = budget::SetCapacity(ledger + 64 * kMiB); });
  checked.WaitForNotification();
  // Fits the old capacity, not the new one.
  const bool got = budget::Reserve(512 * kMiB);
  reserved.Notify();
  t.join();
  const budget::LedgerCounters c = budget::Counters();
  EXPECT_LE(c.reserved + c.granted, pool::Capacity())
      << "lowered " << lowered << ", reserved " << got;
  EXPECT_FALSE(lowered && got) << "both the new capacity and the reservation were granted";
  if (got) budget::Unreserve(512 * kMiB);
}

// Item 5: reconfiguring the default executor gave its reservation back and
// took the new one; when that failed it took the old one back without
// checking — and another executor could have taken it meanwhile.
TEST_F(RaceTest, AFailedReconfigurationKeepsTheOldReservation) {
  test_support::CapacityGuard restore;
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  ExecutorImpl* d = DefaultExecutor();
  const uint64_t initial0 = d->account.initial, max0 = d->account.max,
                 overhead0 = d->account.overhead;
  // A reservation to lose.
  const uint64_t initial = 64 * kMiB, max = 128 * kMiB, overhead = 8 * kMiB;
  ASSERT_TRUE(internal::ConfigureDefaultExecutor(initial, max, overhead).ok());
  ASSERT_TRUE(
      budget::SetCapacity(budget::Counters().reserved + budget::Counters().granted + 1024 * kMiB));
  const uint64_t reserved_before = budget::Counters().reserved;
  absl::Notification ready, grabbed;
  PauseAt(Point::kConfigureBeforeReserve, &ready, &grabbed);
  execmem::Status st;
  std::thread t([&] {
    // Valid budgets (they pass the checks before the pause point) whose
    // reservation the other "executor" leaves no room for.
    st = internal::ConfigureDefaultExecutor(initial + 512 * kMiB, initial + 512 * kMiB, overhead);
  });
  ready.WaitForNotification();
  const uint64_t left = budget::Unallocated();
  ASSERT_TRUE(budget::Reserve(left));  // another executor takes what is left
  grabbed.Notify();
  t.join();
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(budget::Counters().reserved, reserved_before + left)
      << "the default executor's reservation was lost";
  EXPECT_EQ(d->account.initial, initial);
  EXPECT_EQ(d->account.max, max);
  budget::Unreserve(left);
  EXPECT_TRUE(internal::ConfigureDefaultExecutor(initial0, max0, overhead0).ok());
}

// The orphanage's queue: a block freed into a span of an exited thread, by a
// thread that does not take the span over, is pushed onto the orphanage's
// remote list and drained by whoever gets g_orphan_lock; if the lock is
// taken, the holder must drain after unlocking. A free that takes an orphan
// over (AdoptSpan) holds the lock: before the fix it did not drain after,
// so a block pushed meanwhile stayed queued, and the span it was the last
// live block of stayed in the orphanage (its executor's `used` counting the
// block) until some later drain.
TEST_F(RaceTest, ABlockFreedIntoAnOrphanWhileAnotherFreeAdoptsOneIsNotLeftQueued) {
  execmem_executor_t* e = NewExecutor("orphans", "64m");
  // Classes below 512 B: the thread's own spans (those of 512 B to 64 KiB are
  // shared by the executor's threads, and never orphaned).
  void* a = nullptr;  // 320 B class
  void* b = nullptr;  // 480 B class: another span
  const uint32_t orphans0 = g_orphan_spans.load();
  std::thread([&] {
    execmem_bind(e);
    a = execmem_malloc(300);
    b = execmem_malloc(480);
  }).join();
  ASSERT_EQ(g_orphan_spans.load(), orphans0 + 2) << "the exited thread left both spans";
  absl::Notification reached, resume, freed, checked;
  PauseAt(Point::kAdoptSpanLocked, &reached, &resume);
  std::thread adopter([&] {
    execmem_executor_t* prev = execmem_bind(e);
    execmem_free(a);  // of its executor: takes the span over, pausing under the lock
    execmem_bind(prev);
    freed.Notify();
    checked.WaitForNotification();  // alive: its exit would drain the orphanage
  });
  reached.WaitForNotification();
  // This thread is bound to the default executor: it does not take b's span
  // over, and finds the orphanage's lock taken.
  execmem_free(b);
  resume.Notify();
  freed.WaitForNotification();
  EXPECT_EQ(g_orphan_spans.load(), orphans0)
      << "b's span, empty, is still in the orphanage: b was left on its queue";
  execmem_executor_stats_t s;
  ASSERT_EQ(execmem_executor_stats(e, &s), 0);
  EXPECT_EQ(s.used, 0u) << "b is still counted";
  checked.Notify();
  adopter.join();
  EXPECT_EQ(execmem_executor_destroy(e), 0) << execmem_last_error();
}

// Item 5: the budgets Charge reads are written by configuration while other
// threads allocate (a data race under TSan before they were atomics).
TEST_F(RaceTest, ReconfiguringWhileAnotherThreadChargesIsRaceFree) {
  ExecutorImpl* d = DefaultExecutor();
  const uint64_t initial = d->account.initial, max = d->account.max, overhead = d->account.overhead;
  absl::Notification started;
  std::atomic<bool> stop{false};
  std::thread t([&] {
    for (int i = 0; !stop.load() || i < 200; ++i) {
      execmem_free(execmem_malloc(512 * 1024));  // a large block: reads the budgets
      if (i == 0) started.Notify();
    }
  });
  started.WaitForNotification();
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(internal::ConfigureDefaultExecutor(initial, max, overhead).ok());
  }
  stop.store(true);
  t.join();
}

// Issue 20: two threads that pass the cache's size bound at once purged one
// after the other, the second waiting (yields, then a futex) for the first's
// madvise calls: larson's two threads waited 200-300 times a run. The second
// now leaves its request to the first, which runs it before it lets go.
TEST_F(RaceTest, ASizeBoundPurgeDoesNotWaitForAnotherThreadsPurge) {
  test_support::DecayGuard decay(test_support::kHour);  // only the size bounds asked act
  pool::Purge(true);
  PoolPage* fence = test_support::CacheRunBeforeFence(8);
  ASSERT_NE(fence, nullptr);
  ASSERT_EQ(pool::Counters().cached, 8 * kPageSize);

  absl::Notification reached, resume;
  PauseAt(Point::kPurgeBoundLocked, &reached, &resume);
  std::thread first([] { pool::PurgeOldest(6 * kPageSize, /*decay=*/false); });
  reached.WaitForNotification();  // `first` holds the purge lock, nothing purged yet
  absl::Notification second_done;
  std::thread second([&] {
    pool::PurgeOldest(2 * kPageSize, /*decay=*/false);
    second_done.Notify();
  });
  // Before the change `second` waits for `first`, which waits for `resume`:
  // the bound only keeps the test from hanging (never reached when it passes).
  const bool returned_at_once = second_done.WaitForNotificationWithTimeout(absl::Seconds(60));
  EXPECT_TRUE(returned_at_once) << "the second purge waited for the first";
  EXPECT_EQ(pool::Counters().cached, 8 * kPageSize) << "the first has not purged yet";
  resume.Notify();
  first.join();
  second.join();
  // The first ran the second's request before it let go of the lock.
  EXPECT_EQ(pool::Counters().cached, 2 * kPageSize);
  pool::FreeSpan(fence);
  EXPECT_TRUE(pool::IsValid());
  pool::Purge(true);
}

}  // namespace
}  // namespace execmem
