// The races and leaks of issue 12 ("What was found", items 2, 3 and 5), each
// forced into its bad interleaving with a test hook (platform/test_hook.h):
// one thread is paused at the named point until the other has acted, so the
// outcome never depends on scheduling. Each test failed before its fix.
#include <cerrno>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "allocator/executor.h"
#include "allocator/meta.h"
#include "budget/budget.h"
#include "execmem.h"
#include "gtest/gtest.h"
#include "platform/test_hook.h"
#include "pool/pool.h"
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

bool Hook(Point p) {
  if (p != g_pause.point) return false;
  bool expected = true;
  if (!g_pause.armed.compare_exchange_strong(expected, false)) return false;
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
    g_pause.armed.store(true);
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

}  // namespace
}  // namespace execmem
