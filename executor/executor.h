// executor/ — executors at run time. Contract of this layer (the only header
// of executor/ that another layer includes; it includes the layer's others).
//
// Layer order: platform -> pool -> budget -> cache -> executor -> api -> shim.
// executor/ includes platform/os.h, pool/pool.h, budget/budget.h and
// cache/cache.h; it implements the cache's Reclaimer (cache/tenant.h), so the
// cache reaches the reclaim loop without including anything from here.
//
// Map — which file holds what:
//   executor.h   this contract; ExecutorImpl: a cache Tenant (which holds
//                the budget::Account, and the heaps) with spill hooks, the
//                registry, the tree
//   executor.cc  spill hooks, the registry, creation and destruction, the
//                budget limit (Σ max + overhead) told to the pool through budget/
//   reclaim.h/.cc  the reclaim loop: trim -> spill hooks -> the tree's levels
//                -> arbitration -> asking a shared pool's other members
//                -> emergency reserve -> out-of-memory report;
//                the Reclaimer the cache calls; the out-of-memory policy
//   limits.h/.cc   SetLimits, Reserve, Unreserve at run time
//   runtime.h/.cc  process-level controls: default executor's budgets, pool
//                capacity, decay, fork handlers
//   config.h/.cc   settings as users write them (sizes, fractions, budgets)
//   shared.h/.cc   a shared pool's member: joining, the answering thread
//                (answers other members' asks, reclaims the dead, publishes),
//                asking from the reclaim loop, giving back at exit
//   report.h     messages built without allocating (out-of-memory reports)
//
// Inner order — a .cc file calls functions of the files before it only
// (the layering test checks it from the object files):
//   config.cc -> executor.cc -> runtime.cc -> shared.cc -> reclaim.cc -> limits.cc
// g_reclaimer (the cache's Reclaimer, defined in reclaim.cc) is the cache's
// interface: charging or dropping a reference names it from any file.
//
// Invariants, and who keeps them:
//   * A child's max <= its parent's (CheckTreeRule, under the registry lock).
//   * Names are unique among live executors (the registry).
//   * A child holds a reference on its parent until it is freed; a charge
//     holds one on its executor (Tenant::refs).
//   * No executor is freed while a heap of it is active: DestroyExecutor sets
//     `closing`, then claims the heaps under Tenant::heaps_lock.
//   * Spill hooks never re-enter hooks or arbitration (InSpillHook).
//
// Executors: an executor has an account (Tenant::account, budget/budget.h:
// budgets, used / footprint, grants, the tree and the batching error bound),
// and what the cache keeps for it (the Tenant: a name, its heaps, a
// refcount), plus spill hooks and the registry of live executors and of each
// one's children. The budget tree links accounts; Parent() and
// AsExecutor(const budget::Account*) turn one back into its executor.
//
// The tree: a child holds a reference on its parent from creation until it
// is freed (its last reference dropped), and gives its reservation and grant
// back to the parent then — so a destroyed child's blocks still count in its
// parent until they are freed. Destroying a node with live (not destroyed)
// children, or with bytes reserved through execmem_reserve, returns EBUSY.
// Names are unique among live executors (EEXIST).
//
// Charging goes through executor/reclaim.h: budget::Account::Charge gives a
// verdict and ChargeOrReclaim acts on it (trim, spill hooks, arbitration).
#ifndef EXECMEM_EXECUTOR_EXECUTOR_H_
#define EXECMEM_EXECUTOR_EXECUTOR_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "budget/budget.h"
#include "cache/cache.h"
#include "execmem.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {

struct SpillHook {
  char name[48];
  int priority;
  std::function<size_t(size_t)> fn;
  // Callable from any thread: a shared pool's answering thread
  // (executor/shared.h) may call it when another member asks. Otherwise it
  // runs only on the allocating thread.
  bool any_thread = false;
};

inline constexpr int kMaxSpillHooks = 32;

// The registry's lock (executor.cc): the list of live executors and each
// one's children links below; taken by the registry functions only.
extern SpinLock g_registry_lock;

// The cache's Tenant (its account, name, heaps and refcount) plus what only
// executors have. Budgets and counters are the account's: e->account.used.
class ExecutorImpl : public Tenant {
 public:
  // The default executor is constant-initialised.
  constexpr ExecutorImpl() = default;

  // ---- spill hooks ----
  int AddHook(std::shared_ptr<SpillHook> hook);  // 0 or errno
  int RemoveHook(const char* name);
  // Asks this executor's hooks to free `need` bytes; returns bytes freed by
  // execmem's own accounting. Appends "name freed N" notes to report.
  // any_thread_only: only the hooks flagged callable from any thread.
  uint64_t Spill(uint64_t need, char* report, size_t report_cap, bool any_thread_only = false);
  // How many hooks there are, read without the lock: for report texts and for
  // passing over executors without hooks; a hook added or removed meanwhile
  // may make it stale (Spill itself reads the hooks under the lock).
  int NumHooksUnlocked() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return num_hooks_.load(std::memory_order_relaxed);
  }
  // fork(): the registry's fork handlers hold every executor's hooks lock
  // across fork (LockRegistryForFork); the child resets it.
  void LockHooksForFork() ABSL_EXCLUSIVE_LOCK_FUNCTION(hooks_lock_) { hooks_lock_.Lock(); }
  void UnlockHooksAfterFork(bool child) ABSL_UNLOCK_FUNCTION(hooks_lock_)
      ABSL_NO_THREAD_SAFETY_ANALYSIS;

  // ---- lifetime (Ref / Unref are the Tenant's) ----
  // The last reference was dropped (Reclaimer::Release): gives the parent
  // back what it lent and frees the executor.
  void Release();
  std::atomic<int> hooks_in_flight{0};

  ExecutorImpl* reg_next ABSL_GUARDED_BY(g_registry_lock) = nullptr;  // registry list
  ExecutorImpl* reg_prev ABSL_GUARDED_BY(g_registry_lock) = nullptr;
  // Live children.
  ExecutorImpl* first_child ABSL_GUARDED_BY(g_registry_lock) = nullptr;
  ExecutorImpl* next_sibling ABSL_GUARDED_BY(g_registry_lock) = nullptr;
  ExecutorImpl* prev_sibling ABSL_GUARDED_BY(g_registry_lock) = nullptr;
  // Set while SetLimits changes this executor's budgets (executor/limits.cc).
  std::atomic<bool> adjusting{false};

  ExecutorImpl* Parent() const { return static_cast<ExecutorImpl*>(Tenant::Of(account.parent)); }

  void Snapshot(execmem_executor_stats_t* out) const;

 private:
  // Drops the hooks once the last reference is gone: no other thread can
  // reach them then, and a hook's destructor may free memory, so not under
  // the lock.
  void DropHooksUnlocked() ABSL_NO_THREAD_SAFETY_ANALYSIS;

  SpinLock hooks_lock_;
  // Sorted by priority, highest first; equal priorities in order of
  // registration. num_hooks_ is written under the lock only, and is atomic
  // for NumHooksUnlocked.
  std::shared_ptr<SpillHook> hooks_[kMaxSpillHooks] ABSL_GUARDED_BY(hooks_lock_);
  std::atomic<int> num_hooks_ ABSL_GUARDED_BY(hooks_lock_){0};
};

ExecutorImpl* DefaultExecutor();

// Registry of live executors, for stats and arbitration.
void RegisterExecutor(ExecutorImpl* e);
void UnregisterExecutor(ExecutorImpl* e);
// Tells the pool Σ (max + overhead) of the live executors again, after a
// budget changed (registration and unregistration do it themselves).
void RefreshBudgetLimit();
// Calls fn(e) for each live executor with a reference held.
void ForEachExecutor(const std::function<void(ExecutorImpl*)>& fn);
// Stores up to `cap` live children of parent (null: the roots) in out, each
// with a reference the caller drops (Unref); returns how many there are (may
// be more than cap: nothing is silently left out, the caller can retry).
int CollectChildren(const ExecutorImpl* parent, ExecutorImpl** out, int cap);
// The live executor of that name, or null. No reference is taken.
ExecutorImpl* FindExecutor(const char* name);
// The tree's rule: a child's max is at most its parent's. Checks it for a new
// max of e under the registry lock (where children are linked) and, when
// `store` and it holds, stores the new budgets there; *bound is the max it
// would pass (the parent's, or the largest child's).
enum class TreeRule : uint8_t { kHolds, kAboveParent, kBelowChild };
TreeRule CheckTreeRule(ExecutorImpl* e, uint64_t initial, uint64_t max, uint64_t overhead,
                       bool store, uint64_t* bound);
void LockRegistryForFork();
void UnlockRegistryAfterFork(bool child);

// Validates and creates an executor with byte budgets; reserves
// initial + overhead from the pool (parent null) or from the parent's budget.
// EINVAL: initial > max, max 0, or max above the parent's; EEXIST: the name
// is taken; ENOMEM: the reservation does not fit (the parent's spill hooks
// were asked first); ESRCH: the parent is being destroyed.
int CreateExecutor(const char* name, uint64_t initial, uint64_t max, uint64_t overhead,
                   bool prefault, ExecutorImpl* parent, ExecutorImpl** out);
// 0; EBUSY while a thread is bound to it, while it has live children or
// reserved bytes (the reason in *why); EINVAL for the default executor or an
// executor already destroyed.
enum class BusyReason : uint8_t { kNone, kBound, kChildren, kReserved };
int DestroyExecutor(ExecutorImpl* e, BusyReason* why = nullptr);

// True while the calling thread runs a spill hook: its allocations never
// re-enter the hooks (nor arbitration).
bool InSpillHook();

// The executor of a tenant the cache hands back (every tenant is an executor),
// and of an account from the budget tree (a verdict's `at`, a parent).
inline ExecutorImpl* AsExecutor(Tenant* t) { return static_cast<ExecutorImpl*>(t); }
inline const ExecutorImpl* AsExecutor(const budget::Account* a) {
  return static_cast<const ExecutorImpl*>(Tenant::Of(a));
}
inline ExecutorImpl* CurrentExecutor() { return AsExecutor(CurrentTenant()); }

}  // namespace execmem

// The rest of the layer's contract.
#include "executor/config.h"
#include "executor/limits.h"
#include "executor/reclaim.h"
#include "executor/report.h"
#include "executor/runtime.h"
#include "executor/shared.h"

#endif  // EXECMEM_EXECUTOR_EXECUTOR_H_
