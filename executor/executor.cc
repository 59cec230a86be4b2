// Executors: spill hooks, the registry, lifetime. See executor.h; charging
// and arbitration are in reclaim.cc, the account in budget/.
#include "executor/executor.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "budget/budget.h"
#include "cache/cache.h"
#include "executor/reclaim.h"
#include "executor/report.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {

void AbandonHeapOf(Heap* h);

constinit SpinLock g_registry_lock;

namespace {

constinit ExecutorImpl g_default_executor;
ExecutorImpl* g_registry ABSL_GUARDED_BY(g_registry_lock) = nullptr;
std::atomic<bool> g_default_registered{false};

thread_local bool tls_in_spill [[gnu::tls_model("initial-exec")]] = false;

void EnsureDefaultRegistered() {
  if (g_default_registered.load(std::memory_order_acquire)) return;
  bool expected = false;
  if (g_default_registered.compare_exchange_strong(expected, true)) {
    g_default_executor.account.is_default = true;
    RegisterExecutor(&g_default_executor);
  }
}

}  // namespace

ExecutorImpl* DefaultExecutor() {
  EnsureDefaultRegistered();
  return &g_default_executor;
}

bool InSpillHook() { return tls_in_spill; }

int ExecutorImpl::AddHook(std::shared_ptr<SpillHook> hook) {
  SpinLockHolder hold(hooks_lock_);
  const int n = num_hooks_.load(std::memory_order_relaxed);
  if (n == kMaxSpillHooks) return ENOSPC;
  for (int i = 0; i < n; ++i) {
    if (strcmp(hooks_[i]->name, hook->name) == 0) return EEXIST;
  }
  // Keep hooks sorted by priority, highest first; equal priorities in order of registration.
  int pos = n;
  while (pos > 0 && hooks_[pos - 1]->priority < hook->priority) {
    hooks_[pos] = std::move(hooks_[pos - 1]);
    --pos;
  }
  hooks_[pos] = std::move(hook);
  num_hooks_.store(n + 1, std::memory_order_relaxed);
  return 0;
}

int ExecutorImpl::RemoveHook(const char* hook_name) {
  std::shared_ptr<SpillHook> victim;  // released outside the lock
  SpinLockHolder hold(hooks_lock_);
  const int n = num_hooks_.load(std::memory_order_relaxed);
  for (int i = 0; i < n; ++i) {
    if (strcmp(hooks_[i]->name, hook_name) == 0) {
      victim = std::move(hooks_[i]);
      for (int j = i; j + 1 < n; ++j) hooks_[j] = std::move(hooks_[j + 1]);
      num_hooks_.store(n - 1, std::memory_order_relaxed);
      return 0;
    }
  }
  return ENOENT;
}

void ExecutorImpl::UnlockHooksAfterFork(bool child) {
  if (child) {
    hooks_lock_.ResetAfterFork();
  } else {
    hooks_lock_.Unlock();
  }
}

void ExecutorImpl::DropHooksUnlocked() {
  for (auto& h : hooks_) h.reset();
}

uint64_t ExecutorImpl::Spill(uint64_t need, char* report, size_t report_cap, bool any_thread_only) {
  std::shared_ptr<SpillHook> snapshot[kMaxSpillHooks];
  int n = 0;
  {
    SpinLockHolder hold(hooks_lock_);
    const int count = num_hooks_.load(std::memory_order_relaxed);
    for (int i = 0; i < count; ++i) {
      if (!any_thread_only || hooks_[i]->any_thread) snapshot[n++] = hooks_[i];
    }
  }
  ReportBuffer r{report, report_cap};
  uint64_t total = 0;
  const bool was_in_spill = tls_in_spill;
  tls_in_spill = true;  // a hook's own allocations never re-enter the hooks
  for (int i = 0; i < n && total < need; ++i) {
    // A hook never runs once Destroy has returned: Destroy marks the executor
    // closing, then waits for calls already admitted here to finish.
    hooks_in_flight.fetch_add(1, std::memory_order_seq_cst);
    if (closing.load(std::memory_order_seq_cst)) {
      hooks_in_flight.fetch_sub(1, std::memory_order_release);
      break;
    }
    ThreadHeapsSync();
    const int64_t before = account.used.load(std::memory_order_relaxed);
    account.spill_calls.fetch_add(1, std::memory_order_relaxed);
    size_t claimed = 0;
    bool failed = false;
    try {
      claimed = snapshot[i]->fn(static_cast<size_t>(need - total));
      failed = claimed == EXECMEM_SPILL_FAILED;
    } catch (...) {
      failed = true;
    }
    hooks_in_flight.fetch_sub(1, std::memory_order_release);
    ThreadHeapsSync();
    const int64_t after = account.used.load(std::memory_order_relaxed);
    // Only execmem's own accounting counts: the drop in used while the hook
    // ran. Frees made meanwhile by other threads (or by the same executor's
    // hooks running concurrently on other threads) show in it too, so with
    // concurrent pressure bytes_spilled is an upper bound.
    const uint64_t freed = before > after ? static_cast<uint64_t>(before - after) : 0;
    total += freed;
    account.bytes_spilled.fetch_add(freed, std::memory_order_relaxed);
    if (failed) account.spill_failures.fetch_add(1, std::memory_order_relaxed);
    if (report != nullptr) {
      if (r.len == 0) r.len = strlen(report);
      r.Add("%s'%s' freed %s%s", r.len ? ", " : "", snapshot[i]->name, FormatSize(freed).c_str(),
            failed ? " (failed)" : "");
      if (!failed && claimed != freed && claimed != 0) {
        r.Add(" (claimed %s)", FormatSize(claimed).c_str());
      }
    }
  }
  tls_in_spill = was_in_spill;
  return total;
}

void ExecutorImpl::Release() {
  if (ExecutorImpl* p = Parent()) {
    // Nothing is charged here any more: give the parent back what it lent
    // (the reservation and the grant), then the reference.
    const uint64_t g = account.grant.exchange(0, std::memory_order_relaxed);
    budget::ReturnReservation(&account, account.Reservation() + g);
    p->Unref();
  }
  DropHooksUnlocked();
  this->~ExecutorImpl();
  MetaFree(MetaKind::kExecutor, this);
}

void ExecutorImpl::Snapshot(execmem_executor_stats_t* out) const {
  *out = execmem_executor_stats_t{};
  out->version = EXECMEM_STATS_VERSION;
  snprintf(out->name, sizeof out->name, "%s", name);
  out->initial = account.Initial();
  out->max = account.Max();
  out->overhead = account.Overhead();
  const int64_t u = account.used.load(std::memory_order_relaxed);
  out->used = u > 0 ? static_cast<uint64_t>(u) : 0;
  out->peak_used = account.peak_used.load(std::memory_order_relaxed);
  out->footprint = account.footprint.load(std::memory_order_relaxed);
  out->peak_footprint = account.peak_footprint.load(std::memory_order_relaxed);
  out->overhead_in_use = out->footprint > out->used ? out->footprint - out->used : 0;
  out->allocations = account.allocations.load(std::memory_order_relaxed);
  const int64_t live = account.live_blocks.load(std::memory_order_relaxed);
  out->frees = out->allocations > static_cast<uint64_t>(live > 0 ? live : 0)
                   ? out->allocations - static_cast<uint64_t>(live > 0 ? live : 0)
                   : 0;
  out->spill_calls = account.spill_calls.load(std::memory_order_relaxed);
  out->spill_failures = account.spill_failures.load(std::memory_order_relaxed);
  out->bytes_spilled = account.bytes_spilled.load(std::memory_order_relaxed);
  out->oom_count = account.oom_count.load(std::memory_order_relaxed);
  uint64_t ns = account.ns_above_initial.load(std::memory_order_relaxed);
  const uint64_t since = account.above_since_ns.load(std::memory_order_relaxed);
  if (since != 0) ns += os::NowNs() - since;
  out->ns_above_initial = ns;
  out->emergency_uses = account.emergency.uses.load(std::memory_order_relaxed);
  out->emergency_bytes = account.emergency.bytes.load(std::memory_order_relaxed);
  out->emergency_active = account.emergency.active.load(std::memory_order_relaxed) ? 1 : 0;
}

namespace {

// Tells the budget layer (which tells the pool) what all executors may hold
// together (Σ max + overhead), the ceiling the pool's cache bound keeps the
// process under (pool.h).
void UpdateBudgetLimitLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_registry_lock) {
  uint64_t sum = 0;
  for (ExecutorImpl* e = g_registry; e != nullptr; e = e->reg_next) {
    if (e->account.parent != nullptr) continue;  // within its root's limit
    const uint64_t l = e->account.Limit();
    sum = sum + l < sum ? UINT64_MAX : sum + l;
  }
  budget::SetBudgetLimit(sum);
}

}  // namespace

void RefreshBudgetLimit() {
  EnsureDefaultRegistered();
  SpinLockHolder hold(g_registry_lock);
  UpdateBudgetLimitLocked();
}

namespace {

ExecutorImpl* FindLocked(const char* name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_registry_lock) {
  for (ExecutorImpl* e = g_registry; e != nullptr; e = e->reg_next) {
    if (strcmp(e->name, name) == 0) return e;
  }
  return nullptr;
}

// Registers a new executor: a unique name ("executor-N" when it has none),
// linked under its parent. EEXIST: the name is taken; ESRCH: the parent is
// being destroyed.
int RegisterNew(ExecutorImpl* e, const char* name) {
  static uint64_t g_unnamed ABSL_GUARDED_BY(g_registry_lock) = 0;
  SpinLockHolder hold(g_registry_lock);
  if (name != nullptr && name[0] != '\0') {
    if (FindLocked(name) != nullptr) return EEXIST;
    snprintf(e->name, sizeof e->name, "%s", name);
  } else {
    do {
      snprintf(e->name, sizeof e->name, "executor-%" PRIu64, ++g_unnamed);
    } while (FindLocked(e->name) != nullptr);
  }
  if (ExecutorImpl* p = e->Parent()) {
    // Destroy sets `closing` before it looks at the children under this lock.
    if (p->closing.load(std::memory_order_seq_cst)) return ESRCH;
    // Checked where the parent's max is stored (CheckTreeRule).
    if (e->account.Max() > p->account.Max()) return EINVAL;
    e->prev_sibling = nullptr;
    e->next_sibling = p->first_child;
    if (p->first_child != nullptr) p->first_child->prev_sibling = e;
    p->first_child = e;
  }
  e->reg_prev = nullptr;
  e->reg_next = g_registry;
  if (g_registry != nullptr) g_registry->reg_prev = e;
  g_registry = e;
  UpdateBudgetLimitLocked();
  return 0;
}

}  // namespace

ExecutorImpl* FindExecutor(const char* name) {
  EnsureDefaultRegistered();
  SpinLockHolder hold(g_registry_lock);
  return FindLocked(name);
}

int CollectChildren(const ExecutorImpl* parent, ExecutorImpl** out, int cap) {
  EnsureDefaultRegistered();
  int n = 0;
  SpinLockHolder hold(g_registry_lock);
  auto take = [&](ExecutorImpl* e) {
    if (n < cap) {
      e->Ref();
      out[n] = e;
    }
    ++n;
  };
  if (parent == nullptr) {
    for (ExecutorImpl* e = g_registry; e != nullptr; e = e->reg_next) {
      if (e->account.parent == nullptr) take(e);
    }
  } else {
    for (ExecutorImpl* c = parent->first_child; c != nullptr; c = c->next_sibling) take(c);
  }
  return n;
}

TreeRule CheckTreeRule(ExecutorImpl* e, uint64_t initial, uint64_t max, uint64_t overhead,
                       bool store, uint64_t* bound) {
  SpinLockHolder hold(g_registry_lock);
  if (const ExecutorImpl* p = e->Parent(); p != nullptr && max > p->account.Max()) {
    *bound = p->account.Max();
    return TreeRule::kAboveParent;
  }
  uint64_t largest = 0;
  for (ExecutorImpl* c = e->first_child; c != nullptr; c = c->next_sibling) {
    largest = std::max(largest, c->account.Max());
  }
  if (largest > max) {
    *bound = largest;
    return TreeRule::kBelowChild;
  }
  if (store) {
    e->account.max.store(max, std::memory_order_relaxed);
    e->account.initial.store(initial, std::memory_order_relaxed);
    e->account.overhead.store(overhead, std::memory_order_relaxed);
  }
  return TreeRule::kHolds;
}

void RegisterExecutor(ExecutorImpl* e) {
  SpinLockHolder hold(g_registry_lock);
  e->reg_prev = nullptr;
  e->reg_next = g_registry;
  if (g_registry != nullptr) g_registry->reg_prev = e;
  g_registry = e;
  UpdateBudgetLimitLocked();
}

void UnregisterExecutor(ExecutorImpl* e) {
  SpinLockHolder hold(g_registry_lock);
  if (e->reg_prev != nullptr) {
    e->reg_prev->reg_next = e->reg_next;
  } else {
    g_registry = e->reg_next;
  }
  if (e->reg_next != nullptr) e->reg_next->reg_prev = e->reg_prev;
  e->reg_next = e->reg_prev = nullptr;
  if (ExecutorImpl* p = e->Parent()) {
    if (e->prev_sibling != nullptr) {
      e->prev_sibling->next_sibling = e->next_sibling;
    } else {
      p->first_child = e->next_sibling;
    }
    if (e->next_sibling != nullptr) e->next_sibling->prev_sibling = e->prev_sibling;
    e->next_sibling = e->prev_sibling = nullptr;
  }
  UpdateBudgetLimitLocked();
}

void ForEachExecutor(const std::function<void(ExecutorImpl*)>& fn) {
  EnsureDefaultRegistered();
  // Collect references under the lock; call outside it.
  ExecutorImpl* list[256];
  int n = 0;
  {
    SpinLockHolder hold(g_registry_lock);
    for (ExecutorImpl* e = g_registry; e != nullptr && n < 256; e = e->reg_next) {
      e->Ref();
      list[n++] = e;
    }
  }
  for (int i = n - 1; i >= 0; --i) {
    fn(list[i]);
    list[i]->Unref();
  }
}

// fork(): the registry lock, then every executor's locks, so that the child
// finds none held by a thread that no longer exists.
void LockRegistryForFork() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  EnsureDefaultRegistered();
  g_registry_lock.Lock();
  for (ExecutorImpl* e = g_registry; e != nullptr; e = e->reg_next) {
    e->heaps_lock.Lock();
    e->LockHooksForFork();
  }
}

void UnlockRegistryAfterFork(bool child) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (ExecutorImpl* e = g_registry; e != nullptr; e = e->reg_next) {
    e->UnlockHooksAfterFork(child);
    if (child) {
      e->heaps_lock.ResetAfterFork();
    } else {
      e->heaps_lock.Unlock();
    }
  }
  if (child) {
    g_registry_lock.ResetAfterFork();
  } else {
    g_registry_lock.Unlock();
  }
}

int CreateExecutor(const char* name, uint64_t initial, uint64_t max, uint64_t overhead,
                   bool prefault, ExecutorImpl* parent, ExecutorImpl** out) {
  EnsureDefaultRegistered();
  if (initial > max || max == 0) return EINVAL;
  if (parent != nullptr && max > parent->account.Max()) return EINVAL;
  if (name != nullptr && name[0] != '\0' && FindExecutor(name) != nullptr) return EEXIST;
  ExecutorImpl* e = MetaNew<ExecutorImpl>(MetaKind::kExecutor);
  if (e == nullptr) return ENOMEM;
  e->account.initial = initial;
  e->account.max = max;
  e->account.overhead = overhead;
  e->account.parent = parent != nullptr ? &parent->account : nullptr;
  const uint64_t reservation = e->account.Reservation();
  if (parent == nullptr) {
    if (!budget::Reserve(reservation)) {
      MetaFree(MetaKind::kExecutor, e);
      return ENOMEM;
    }
  } else {
    // The child's reservation is a charge on its parent (whose spill hooks
    // may be asked to make room); the child holds a reference of its own.
    parent->Ref();
    if (!ChargeOrReclaim(parent, reservation, 0, nullptr, ChargeFor::kReservation)) {
      parent->Unref();
      MetaFree(MetaKind::kExecutor, e);
      return ENOMEM;
    }
    parent->Unref();  // the charge's reference: the child's covers it
  }
  if (const int err = RegisterNew(e, name); err != 0) {
    budget::ReturnReservation(&e->account, reservation);
    if (parent != nullptr) parent->Unref();
    e->~ExecutorImpl();
    MetaFree(MetaKind::kExecutor, e);
    return err;
  }
  if (prefault && initial > 0) {
    // Touch the reservation once by allocating and freeing it on this thread.
    int err = 0;
    ExecutorImpl* prev = AsExecutor(BindThread(e, &err));
    if (err == 0) {
      const size_t chunk = size_t{1} << 20;
      void* blocks[4096];
      size_t nb = 0;
      for (uint64_t done = 0; done + chunk <= initial && nb < 4096; done += chunk) {
        void* p = MallocSlow(chunk, false);
        if (p == nullptr) break;
        os::Prefault(p, chunk);
        blocks[nb++] = p;
      }
      for (size_t i = 0; i < nb; ++i) FreeSlow(blocks[i]);
      BindThread(prev, &err);
    }
  }
  *out = e;
  return 0;
}

int DestroyExecutor(ExecutorImpl* e, BusyReason* why) {
  if (why != nullptr) *why = BusyReason::kNone;
  if (e == nullptr || e->account.is_default) return EINVAL;
  bool expected = false;
  if (!e->closing.compare_exchange_strong(expected, true, std::memory_order_seq_cst)) {
    return EINVAL;
  }
  // Live children and reservations keep a node alive. `closing` is set
  // first: CreateExecutor links a child under the registry lock only while
  // the parent is not closing, and Reserve counts its bytes before it looks
  // at `closing` (seq_cst both sides), so none slips past these checks.
  BusyReason reason = BusyReason::kNone;
  {
    SpinLockHolder hold(g_registry_lock);
    if (e->first_child != nullptr) reason = BusyReason::kChildren;
  }
  if (reason == BusyReason::kNone && e->account.reserved.load(std::memory_order_seq_cst) != 0) {
    reason = BusyReason::kReserved;
  }
  if (reason != BusyReason::kNone) {
    if (why != nullptr) *why = reason;
    e->closing.store(false);
    return EBUSY;
  }
  // Claim every heap (chained through claim_next: no limit on their number);
  // a heap still bound (active) makes destruction fail. Heaps already kDead
  // belong to exiting threads, which abandon them themselves. A heap made
  // after this walk never becomes active: BindThread re-checks `closing`
  // under heaps_lock.
  Heap* claimed = nullptr;
  bool busy = false;
  {
    SpinLockHolder hold(e->heaps_lock);
    for (Heap* h = e->heaps; h != nullptr; h = h->exec_next) {
      HeapState idle = HeapState::kIdle;
      if (h->state.compare_exchange_strong(idle, HeapState::kDead, std::memory_order_acq_rel)) {
        h->claim_next = claimed;
        claimed = h;
      } else if (idle != HeapState::kDead) {
        busy = true;
        break;
      }
    }
    if (busy) {
      for (Heap* h = claimed; h != nullptr; h = h->claim_next) {
        h->state.store(HeapState::kIdle, std::memory_order_release);
      }
    }
  }
  if (busy) {
    if (why != nullptr) *why = BusyReason::kBound;
    e->closing.store(false);
    return EBUSY;
  }
  test_hook::At(test_hook::Point::kDestroyAfterClaim);
  // Hooks admitted before `closing` was set finish before we return (unless
  // this thread is itself inside one of them).
  if (!tls_in_spill) {
    while (e->hooks_in_flight.load(std::memory_order_acquire) != 0) os::Yield();
  }
  for (Heap* h = claimed; h != nullptr;) {
    Heap* next = h->claim_next;  // read first: once abandoned, its thread may free h
    AbandonHeapOf(h);
    h = next;
  }
  UnregisterExecutor(e);
  if (e->account.parent == nullptr) {
    // A root gives its reservation and grant back at once: blocks it still
    // owns are accounted to nobody once freed. (A child gives them back to
    // its parent when it is freed: see Unref.)
    budget::Unreserve(e->account.Reservation());
    const uint64_t g = e->account.grant.exchange(0, std::memory_order_relaxed);
    if (g != 0) budget::Ungrant(g);
  }
  e->Unref();
  return 0;
}

}  // namespace execmem
