// Executors: budgets, accounting and spill hooks.
//
// Two figures per executor:
//   used      — live bytes (size-class rounded); rule: used <= max
//   footprint — bytes of spans and large blocks it holds, cached free blocks
//               included; rule: footprint <= max + overhead
// The pool reserves initial + overhead at creation; growth beyond that is
// granted by the pool in quanta (1 MiB below 16 MiB of grant, 4 MiB below
// 64 MiB, 8 MiB above) and given back when footprint falls.
//
// Batching: thread caches report `used` when they take or give back a span
// and on binding changes (Heap::Sync), never per allocation. A thread can hand
// out the free blocks of spans it already holds without a check, so between
// checks used can pass max by at most the free bytes cached in the executor's
// spans — which are inside its footprint, itself capped at max + overhead. The
// worst-case error is thus bounded by the overhead reservation.
#ifndef EXECMEM_ALLOCATOR_EXECUTOR_H_
#define EXECMEM_ALLOCATOR_EXECUTOR_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "execmem.h"
#include "pool/spin_lock.h"

namespace execmem {

class Heap;

struct SpillHook {
  char name[48];
  int priority;
  std::function<size_t(size_t)> fn;
};

inline constexpr int kMaxSpillHooks = 32;

class ExecutorImpl {
 public:
  // Budgets in bytes. The default executor is constant-initialised.
  constexpr ExecutorImpl() = default;

  // ---- settings (written before the executor is shared, or under lock) ----
  char name[64] = "default";
  uint64_t initial = 0;
  uint64_t max = 0;       // 0: the pool's capacity
  uint64_t overhead = 0;
  bool is_default = false;

  uint64_t Max() const;
  uint64_t Limit() const { return Max() + overhead; }  // footprint cap

  // ---- accounting ----
  // Charges a span (or large block) of `bytes` for a request of `request`
  // bytes. May trim `heap`, call spill hooks and arbitrate; false means out of
  // memory, with the report stored for the thread.
  bool Charge(uint64_t bytes, uint64_t request, Heap* heap);
  // Gives back a charge made by a successful Charge (drops its reference).
  void Uncharge(uint64_t bytes);
  // Lowers a charge without ending it (a large block whose estimate was high).
  void ReduceCharge(uint64_t bytes);
  // Live-byte / block deltas reported by thread caches.
  void AddUsed(int64_t bytes, int64_t blocks, uint64_t allocs);

  std::atomic<int64_t> used{0};
  std::atomic<int64_t> live_blocks{0};
  std::atomic<uint64_t> footprint{0};
  std::atomic<uint64_t> grant{0};  // pool grant beyond initial + overhead
  std::atomic<uint64_t> peak_used{0};
  std::atomic<uint64_t> peak_footprint{0};
  std::atomic<uint64_t> allocations{0};
  std::atomic<uint64_t> spill_calls{0};
  std::atomic<uint64_t> spill_failures{0};
  std::atomic<uint64_t> bytes_spilled{0};
  std::atomic<uint64_t> oom_count{0};
  std::atomic<uint64_t> above_since_ns{0};
  std::atomic<uint64_t> ns_above_initial{0};

  // ---- spill hooks ----
  int AddHook(std::shared_ptr<SpillHook> hook);  // 0 or errno
  int RemoveHook(const char* name);
  // Asks this executor's hooks to free `need` bytes; returns bytes freed by
  // execmem's own accounting. Appends "name freed N" notes to report.
  uint64_t Spill(uint64_t need, char* report, size_t report_cap);

  // ---- lifetime ----
  void Ref() { refs.fetch_add(1, std::memory_order_relaxed); }
  void Unref();
  std::atomic<int> refs{1};
  std::atomic<bool> closing{false};
  std::atomic<int> hooks_in_flight{0};

  SpinLock hooks_lock;
  std::shared_ptr<SpillHook> hooks[kMaxSpillHooks];
  int num_hooks = 0;

  SpinLock heaps_lock;
  Heap* heaps = nullptr;  // every heap that allocates for this executor

  ExecutorImpl* reg_next = nullptr;  // registry list (under the registry lock)
  ExecutorImpl* reg_prev = nullptr;

  void Snapshot(execmem_executor_stats_t* out) const;
  void NotePeaks();
  // Gives grant not covering the footprint back to the pool (all of it when
  // `all`, else beyond two quanta of slack).
  void MaybeReleaseGrant(bool all);

 private:
  bool TryGrow(uint64_t bytes);
};

ExecutorImpl* DefaultExecutor();

// Registry of live executors, for stats and arbitration.
void RegisterExecutor(ExecutorImpl* e);
void UnregisterExecutor(ExecutorImpl* e);
// Calls fn(e) for each live executor with a reference held.
void ForEachExecutor(const std::function<void(ExecutorImpl*)>& fn);
void LockRegistryForFork();
void UnlockRegistryAfterFork(bool child);

// Validates and creates an executor with byte budgets; reserves
// initial + overhead from the pool.
int CreateExecutor(const char* name, uint64_t initial, uint64_t max, uint64_t overhead,
                   bool prefault, ExecutorImpl** out);
int DestroyExecutor(ExecutorImpl* e);

// The thread's out-of-memory report buffer.
char* OomReportBuffer();
inline constexpr size_t kOomReportSize = 2048;

}  // namespace execmem

#endif  // EXECMEM_ALLOCATOR_EXECUTOR_H_
