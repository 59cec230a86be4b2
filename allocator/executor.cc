// Executors: charging, spilling, arbitration, lifetime. See executor.h.
#include "allocator/executor.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "allocator/heap.h"
#include "allocator/meta.h"
#include "allocator/runtime.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {

void AbandonHeapOf(Heap* h);

namespace {

constinit ExecutorImpl g_default_executor;
SpinLock g_registry_lock;
ExecutorImpl* g_registry ABSL_GUARDED_BY(g_registry_lock) = nullptr;
std::atomic<bool> g_default_registered{false};

thread_local bool tls_in_spill [[gnu::tls_model("initial-exec")]] = false;

// Grant quanta (velox quantizedSize): few touches of the shared ledger.
uint64_t Quantum(uint64_t current_grant) {
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  if (current_grant < 16 * kMiB) return kMiB;
  if (current_grant < 64 * kMiB) return 4 * kMiB;
  return 8 * kMiB;
}

uint64_t RoundUp(uint64_t v, uint64_t q) { return (v + q - 1) / q * q; }

void UpdateMax(std::atomic<uint64_t>& peak, uint64_t v) {
  uint64_t p = peak.load(std::memory_order_relaxed);
  while (v > p && !peak.compare_exchange_weak(p, v, std::memory_order_relaxed)) {
  }
}

// Appends to a fixed buffer without allocating.
struct Report {
  char* buf;
  size_t cap;
  size_t len = 0;
  template <typename... Args>
  void Add(const char* fmt, Args... args) {
    if (len + 1 >= cap) return;
    int n = snprintf(buf + len, cap - len, fmt, args...);
    if (n > 0) len = std::min(cap - 1, len + static_cast<size_t>(n));
  }
};

void EnsureDefaultRegistered() {
  if (g_default_registered.load(std::memory_order_acquire)) return;
  bool expected = false;
  if (g_default_registered.compare_exchange_strong(expected, true)) {
    g_default_executor.is_default = true;
    RegisterExecutor(&g_default_executor);
  }
}

}  // namespace

ExecutorImpl* DefaultExecutor() {
  EnsureDefaultRegistered();
  return &g_default_executor;
}

char* OomReportBuffer() { return ThreadOomReport(); }

uint64_t ExecutorImpl::Max() const { return max == 0 ? pool::Capacity() : max; }

void ExecutorImpl::NotePeaks() {
  const int64_t u = used.load(std::memory_order_relaxed);
  if (u > 0) UpdateMax(peak_used, static_cast<uint64_t>(u));
  UpdateMax(peak_footprint, footprint.load(std::memory_order_relaxed));
}

void ExecutorImpl::AddUsed(int64_t bytes, int64_t blocks, uint64_t allocs) {
  const int64_t u = used.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  if (blocks != 0) live_blocks.fetch_add(blocks, std::memory_order_relaxed);
  if (allocs != 0) allocations.fetch_add(allocs, std::memory_order_relaxed);
  if (bytes > 0) UpdateMax(peak_used, static_cast<uint64_t>(u));
  // Time above initial, measured at the points where used is reported.
  if (initial != 0 || !is_default) {
    const bool above = u > static_cast<int64_t>(initial);
    uint64_t since = above_since_ns.load(std::memory_order_relaxed);
    if (above && since == 0) {
      above_since_ns.compare_exchange_strong(since, os::NowNs(), std::memory_order_relaxed);
    } else if (!above && since != 0 &&
               above_since_ns.compare_exchange_strong(since, 0, std::memory_order_relaxed)) {
      ns_above_initial.fetch_add(os::NowNs() - since, std::memory_order_relaxed);
    }
  }
}

bool ExecutorImpl::TryGrow(uint64_t bytes) {
  const uint64_t q = Quantum(grant.load(std::memory_order_relaxed));
  const uint64_t amount = RoundUp(bytes, q);
  if (!pool::Grant(amount)) {
    // A whole quantum may not fit while the exact amount does.
    if (amount == bytes || !pool::Grant(bytes)) return false;
    grant.fetch_add(bytes, std::memory_order_relaxed);
    return true;
  }
  grant.fetch_add(amount, std::memory_order_relaxed);
  return true;
}

void ExecutorImpl::MaybeReleaseGrant(bool all) {
  // Keep up to two quanta of slack (none when asked to by arbitration); give
  // the rest back to the pool.
  for (;;) {
    uint64_t g = grant.load(std::memory_order_relaxed);
    if (g == 0) return;
    const uint64_t fp = footprint.load(std::memory_order_relaxed);
    const uint64_t base = initial + overhead;
    const uint64_t needed = fp > base ? fp - base : 0;
    const uint64_t q = all ? 1 : Quantum(g);
    if (g <= needed + (all ? 0 : 2 * q)) return;
    const uint64_t keep = RoundUp(needed, q);
    const uint64_t release = g - keep;
    if (grant.compare_exchange_weak(g, keep, std::memory_order_relaxed)) {
      pool::Ungrant(release);
      return;
    }
  }
}

void ExecutorImpl::ReduceCharge(uint64_t bytes) {
  footprint.fetch_sub(bytes, std::memory_order_relaxed);
  MaybeReleaseGrant(false);
}

void ExecutorImpl::Uncharge(uint64_t bytes) {
  ReduceCharge(bytes);
  Unref();
}

bool ExecutorImpl::Charge(uint64_t bytes, uint64_t request, Heap* heap) {
  enum class Reason { kNone, kUsed, kFootprint, kPool };
  bool trimmed = false, spilled = false, arbitrated = false;
  char notes[768];
  Report spill_notes{notes, sizeof notes};
  notes[0] = '\0';
  for (int round = 0;; ++round) {
    const int64_t u = used.load(std::memory_order_relaxed);
    const uint64_t fp = footprint.load(std::memory_order_relaxed);
    const uint64_t maxb = Max();
    Reason reason = Reason::kNone;
    uint64_t need = 0;
    if (u + static_cast<int64_t>(request) > static_cast<int64_t>(maxb)) {
      reason = Reason::kUsed;
      need = static_cast<uint64_t>(u) + request - maxb;
    } else if (fp + bytes > maxb + overhead) {
      reason = Reason::kFootprint;
      need = fp + bytes - (maxb + overhead);
    } else {
      const uint64_t budget = initial + overhead + grant.load(std::memory_order_relaxed);
      if (fp + bytes > budget && !TryGrow(fp + bytes - budget)) {
        reason = Reason::kPool;
        need = fp + bytes - budget;
      }
    }
    if (reason == Reason::kNone) {
      uint64_t expected = fp;
      if (footprint.compare_exchange_weak(expected, fp + bytes, std::memory_order_relaxed)) {
        Ref();
        UpdateMax(peak_footprint, fp + bytes);
        return true;
      }
      continue;
    }
    // Pressure. First the executor's own caches on this thread (and the
    // pool's cache), then its spill hooks, then (pool) other executors.
    if (!trimmed && heap != nullptr && reason != Reason::kUsed) {
      trimmed = true;
      heap->TrimEmpty();
      continue;
    }
    if (!spilled && !tls_in_spill) {
      spilled = true;
      Spill(need, notes, sizeof notes);
      ThreadHeapsSync();
      if (heap != nullptr) heap->TrimEmpty();
      continue;
    }
    if (reason == Reason::kPool && !arbitrated && !tls_in_spill) {
      arbitrated = true;
      // Ask executors above their reservation to spill, largest excess first,
      // never below their reservation.
      ExecutorImpl* victims[64];
      uint64_t excess[64];
      int n = 0;
      ForEachExecutor([&](ExecutorImpl* v) {
        if (v == this || n == 64) return;
        const uint64_t vfp = v->footprint.load(std::memory_order_relaxed);
        const uint64_t vbase = v->initial + v->overhead;
        if (vfp <= vbase) return;
        v->Ref();
        victims[n] = v;
        excess[n] = vfp - vbase;
        ++n;
      });
      for (int i = 0; i < n; ++i) {
        int best = i;
        for (int j = i + 1; j < n; ++j) {
          if (excess[j] > excess[best]) best = j;
        }
        std::swap(victims[i], victims[best]);
        std::swap(excess[i], excess[best]);
      }
      uint64_t got = 0;
      for (int i = 0; i < n; ++i) {
        if (got < need) {
          const uint64_t asked = std::min(excess[i], need - got);
          spill_notes.len = strlen(notes);
          spill_notes.Add("%sarbitration asked '%s' for %" PRIu64, spill_notes.len ? "; " : "",
                          victims[i]->name, asked);
          got += victims[i]->Spill(asked, nullptr, 0);
          victims[i]->MaybeReleaseGrant(true);
        }
        victims[i]->Unref();
      }
      // Remote frees reach their owners' caches lazily: give them a moment.
      for (int spin = 0; spin < 100 && pool::Unallocated() < need; ++spin) sched_yield();
      continue;
    }
    // Out of memory.
    oom_count.fetch_add(1, std::memory_order_relaxed);
    Report r{OomReportBuffer(), kOomReportSize};
    const char* why = reason == Reason::kUsed        ? "used would pass max"
                      : reason == Reason::kFootprint ? "footprint would pass max + overhead"
                                                     : "the pool has no unreserved capacity left";
    r.Add("execmem: out of memory in executor '%s': request of %" PRIu64
          " bytes refused (%s). used %" PRId64 " / max %" PRIu64 "; footprint %" PRIu64
          " / max+overhead %" PRIu64 " (initial %" PRIu64 ", overhead %" PRIu64
          "); pool unreserved %" PRIu64 ". spill hooks: %s. ",
          name, request, why, used.load(std::memory_order_relaxed), maxb,
          footprint.load(std::memory_order_relaxed), maxb + overhead, initial, overhead,
          pool::Unallocated(), notes[0] ? notes : (num_hooks ? "none freed memory" : "none registered"));
    if (reason == Reason::kUsed) {
      r.Add("Live data exceeds max: raise max, spill more, or look for a leak.");
    } else if (reason == Reason::kFootprint) {
      r.Add("Live data fits but cached/fragmented memory does not: raise overhead.");
    } else {
      r.Add("Other executors hold the pool: raise the pool capacity or lower their budgets.");
    }
    if (internal::GetOomPolicy() == internal::OomPolicy::kAbort) {
      os::WriteStderr(r.buf, r.len);
      os::WriteStderr("\n", 1);
      os::Abort();
    }
    return false;
  }
}

int ExecutorImpl::AddHook(std::shared_ptr<SpillHook> hook) {
  SpinLockHolder hold(hooks_lock);
  if (num_hooks == kMaxSpillHooks) return ENOSPC;
  for (int i = 0; i < num_hooks; ++i) {
    if (strcmp(hooks[i]->name, hook->name) == 0) return EEXIST;
  }
  // Keep hooks sorted by priority, highest first; equal priorities in order of registration.
  int pos = num_hooks;
  while (pos > 0 && hooks[pos - 1]->priority < hook->priority) {
    hooks[pos] = std::move(hooks[pos - 1]);
    --pos;
  }
  hooks[pos] = std::move(hook);
  ++num_hooks;
  return 0;
}

int ExecutorImpl::RemoveHook(const char* hook_name) {
  std::shared_ptr<SpillHook> victim;  // released outside the lock
  SpinLockHolder hold(hooks_lock);
  for (int i = 0; i < num_hooks; ++i) {
    if (strcmp(hooks[i]->name, hook_name) == 0) {
      victim = std::move(hooks[i]);
      for (int j = i; j + 1 < num_hooks; ++j) hooks[j] = std::move(hooks[j + 1]);
      --num_hooks;
      return 0;
    }
  }
  return ENOENT;
}

uint64_t ExecutorImpl::Spill(uint64_t need, char* report, size_t report_cap) {
  std::shared_ptr<SpillHook> snapshot[kMaxSpillHooks];
  int n;
  {
    SpinLockHolder hold(hooks_lock);
    n = num_hooks;
    for (int i = 0; i < n; ++i) snapshot[i] = hooks[i];
  }
  Report r{report, report_cap};
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
    const int64_t before = used.load(std::memory_order_relaxed);
    spill_calls.fetch_add(1, std::memory_order_relaxed);
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
    const int64_t after = used.load(std::memory_order_relaxed);
    // Only execmem's own accounting counts: the drop in used while the hook
    // ran. Frees made meanwhile by other threads (or by the same executor's
    // hooks running concurrently on other threads) show in it too, so with
    // concurrent pressure bytes_spilled is an upper bound.
    const uint64_t freed = before > after ? static_cast<uint64_t>(before - after) : 0;
    total += freed;
    bytes_spilled.fetch_add(freed, std::memory_order_relaxed);
    if (failed) spill_failures.fetch_add(1, std::memory_order_relaxed);
    if (report != nullptr) {
      if (r.len == 0) r.len = strlen(report);
      r.Add("%s'%s' freed %" PRIu64 "%s", r.len ? ", " : "", snapshot[i]->name, freed,
            failed ? " (failed)" : "");
      if (!failed && claimed != freed && claimed != 0) r.Add(" (claimed %zu)", claimed);
    }
  }
  tls_in_spill = was_in_spill;
  return total;
}

void ExecutorImpl::Unref() {
  if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1 && !is_default) {
    for (auto& h : hooks) h.reset();
    this->~ExecutorImpl();
    MetaFree(MetaKind::kExecutor, this);
  }
}

void ExecutorImpl::Snapshot(execmem_executor_stats_t* out) const {
  memset(out, 0, sizeof *out);
  out->version = EXECMEM_STATS_VERSION;
  snprintf(out->name, sizeof out->name, "%s", name);
  out->initial = initial;
  out->max = Max();
  out->overhead = overhead;
  const int64_t u = used.load(std::memory_order_relaxed);
  out->used = u > 0 ? static_cast<uint64_t>(u) : 0;
  out->peak_used = peak_used.load(std::memory_order_relaxed);
  out->footprint = footprint.load(std::memory_order_relaxed);
  out->peak_footprint = peak_footprint.load(std::memory_order_relaxed);
  out->overhead_in_use = out->footprint > out->used ? out->footprint - out->used : 0;
  out->allocations = allocations.load(std::memory_order_relaxed);
  const int64_t live = live_blocks.load(std::memory_order_relaxed);
  out->frees = out->allocations > static_cast<uint64_t>(live > 0 ? live : 0)
                   ? out->allocations - static_cast<uint64_t>(live > 0 ? live : 0)
                   : 0;
  out->spill_calls = spill_calls.load(std::memory_order_relaxed);
  out->spill_failures = spill_failures.load(std::memory_order_relaxed);
  out->bytes_spilled = bytes_spilled.load(std::memory_order_relaxed);
  out->oom_count = oom_count.load(std::memory_order_relaxed);
  uint64_t ns = ns_above_initial.load(std::memory_order_relaxed);
  const uint64_t since = above_since_ns.load(std::memory_order_relaxed);
  if (since != 0) ns += os::NowNs() - since;
  out->ns_above_initial = ns;
}

void RegisterExecutor(ExecutorImpl* e) {
  SpinLockHolder hold(g_registry_lock);
  e->reg_prev = nullptr;
  e->reg_next = g_registry;
  if (g_registry != nullptr) g_registry->reg_prev = e;
  g_registry = e;
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
    e->hooks_lock.Lock();
  }
}

void UnlockRegistryAfterFork(bool child) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (ExecutorImpl* e = g_registry; e != nullptr; e = e->reg_next) {
    if (child) {
      e->hooks_lock.ResetAfterFork();
      e->heaps_lock.ResetAfterFork();
    } else {
      e->hooks_lock.Unlock();
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
                   bool prefault, ExecutorImpl** out) {
  EnsureDefaultRegistered();
  if (initial > max || max == 0) return EINVAL;
  const uint64_t reservation = initial + overhead;
  if (!pool::Reserve(reservation)) return ENOMEM;
  ExecutorImpl* e = MetaNew<ExecutorImpl>(MetaKind::kExecutor);
  if (e == nullptr) {
    pool::Unreserve(reservation);
    return ENOMEM;
  }
  snprintf(e->name, sizeof e->name, "%s", name != nullptr && name[0] ? name : "executor");
  e->initial = initial;
  e->max = max;
  e->overhead = overhead;
  RegisterExecutor(e);
  if (prefault && initial > 0) {
    // Touch the reservation once by allocating and freeing it on this thread.
    int err = 0;
    ExecutorImpl* prev = BindThread(e, &err);
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

int DestroyExecutor(ExecutorImpl* e) {
  if (e == nullptr || e->is_default) return EINVAL;
  bool expected = false;
  if (!e->closing.compare_exchange_strong(expected, true)) return EINVAL;
  // Claim every heap; a heap still bound (active) makes destruction fail.
  Heap* claimed[1024];
  int n = 0;
  bool busy = false;
  {
    SpinLockHolder hold(e->heaps_lock);
    for (Heap* h = e->heaps; h != nullptr; h = h->exec_next) {
      HeapState idle = HeapState::kIdle;
      if (n < 1024 && h->state.compare_exchange_strong(idle, HeapState::kDead,
                                                       std::memory_order_acq_rel)) {
        claimed[n++] = h;
      } else if (idle != HeapState::kDead) {
        busy = true;
        break;
      }
    }
    if (busy) {
      for (int i = 0; i < n; ++i) claimed[i]->state.store(HeapState::kIdle, std::memory_order_release);
    }
  }
  if (busy) {
    e->closing.store(false);
    return EBUSY;
  }
  // Hooks admitted before `closing` was set finish before we return (unless
  // this thread is itself inside one of them).
  if (!tls_in_spill) {
    while (e->hooks_in_flight.load(std::memory_order_acquire) != 0) sched_yield();
  }
  for (int i = 0; i < n; ++i) AbandonHeapOf(claimed[i]);
  UnregisterExecutor(e);
  pool::Unreserve(e->initial + e->overhead);
  const uint64_t g = e->grant.exchange(0, std::memory_order_relaxed);
  if (g != 0) pool::Ungrant(g);
  e->Unref();
  return 0;
}

}  // namespace execmem
