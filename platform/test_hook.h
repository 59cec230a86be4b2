// Test hooks: named points in slow paths where a test can pause the thread
// that reaches them (to force one interleaving of a race, deterministically)
// or make the step fail (to reach an error path). Production code calls
// test_hook::At(point) there; with no hook installed that is one relaxed load
// of a null pointer and a branch, on paths that already take locks or map
// memory — never on an allocation fast path.
//
// A test installs one function for the whole process (Install), which
// decides per point and thread what to do: block until the other thread has
// acted, count, or answer true to make the step fail.
#ifndef EXECMEM_PLATFORM_TEST_HOOK_H_
#define EXECMEM_PLATFORM_TEST_HOOK_H_

#include <atomic>
#include <cstdint>

namespace execmem::test_hook {

enum class Point : uint8_t {
  // executor/executor.cc DestroyExecutor: the heaps are claimed (kDead),
  // not yet abandoned.
  kDestroyAfterClaim,
  // cache/thread.cc BindThread: `closing` was checked, the heap is not
  // yet made or activated.
  kBindAfterClosingCheck,
  // cache/thread.cc NewHeap: answer true to fail the heap's allocation.
  kNewHeapFail,
  // budget/ledger.cc SetCapacity: the new capacity was checked against the
  // ledger, not yet stored.
  kSetCapacityAfterCheck,
  // executor/runtime.cc ConfigureDefaultExecutor: the budgets are checked,
  // the ledger not yet changed.
  kConfigureBeforeReserve,
  // cache/orphanage.cc AdoptSpan: the orphanage's lock is held, the span
  // not yet taken over.
  kAdoptSpanLocked,
  // pool/purge.cc PurgeOldest: a size-bound purge holds the purge lock,
  // nothing purged yet.
  kPurgeBoundLocked,
};

// Returns true to make the step at `point` fail (only where documented).
using Fn = bool (*)(Point point);

namespace internal {
inline constinit std::atomic<Fn> g_hook{nullptr};
}  // namespace internal

inline void Install(Fn fn) { internal::g_hook.store(fn, std::memory_order_release); }

inline bool At(Point point) {
  Fn fn = internal::g_hook.load(std::memory_order_acquire);
  return fn != nullptr && fn(point);
}

}  // namespace execmem::test_hook

#endif  // EXECMEM_PLATFORM_TEST_HOOK_H_
