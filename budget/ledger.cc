// The ledger of reservations and grants: see budget.h.
#include <algorithm>

#include "budget/budget.h"
#include "budget/shared_ledger.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem::budget {
namespace {

// Invariant: g_ledger == g_reserved + g_granted <= pool::Capacity(). g_ledger
// is the one word every check CASes; the other two are for reports.
std::atomic<uint64_t> g_ledger{0};
std::atomic<uint64_t> g_reserved{0};
std::atomic<uint64_t> g_granted{0};

void MaybePublishToPool(shared::Member* m, uint64_t ledger);
bool TakeAfterReclaim(shared::Member* m, uint64_t bytes, bool reserve);

// The pool's side of Take: a reservation, or a grant (first from what the
// others gave back when asked).
inline bool TakeFromPool(shared::Member* m, uint64_t bytes, bool reserve) {
  return reserve ? m->Reserve(bytes) : shared::GrantFromAskedOrPool(m, bytes);
}

// Takes `bytes` from the process's capacity and, when the process is a
// member of a shared pool, from the pool too (its slot's reservations or
// grants): both or neither.
bool Take(uint64_t bytes, bool reserve) {
  const uint64_t cap = pool::Capacity();
  uint64_t cur = g_ledger.load(std::memory_order_relaxed);
  do {
    if (cur + bytes > cap || cur + bytes < cur) return false;
  } while (!g_ledger.compare_exchange_weak(cur, cur + bytes, std::memory_order_relaxed));
  shared::Member* m = shared::ProcessMember();
  if (m != nullptr) {
    if (!TakeFromPool(m, bytes, reserve) && !TakeAfterReclaim(m, bytes, reserve)) {
      g_ledger.fetch_sub(bytes, std::memory_order_relaxed);
      return false;
    }
    MaybePublishToPool(m, cur + bytes);
  }
  return true;
}

// Refused by the pool: a dead member's holdings may be what is missing.
__attribute__((noinline)) bool TakeAfterReclaim(shared::Member* m, uint64_t bytes, bool reserve) {
  return shared::ReclaimDeadThrottled(m) != 0 && TakeFromPool(m, bytes, reserve);
}

// ---- publishing to the shared pool (budget.h PublishShared) ----------------
// The ledger's total when the process's figures were last published.
std::atomic<uint64_t> g_published_at{0};

// What this process holds, for the pool's other members and execmem-top.
void PublishToPool(shared::Member* m) {
  g_published_at.store(g_ledger.load(std::memory_order_relaxed), std::memory_order_relaxed);
  shared::PublishProcess(m);
}

// At a grant or give-back that left the ledger at `ledger`: only once it
// moved by kPublishStep either way (|ledger - at| >= step, in one compare).
inline void MaybePublishToPool(shared::Member* m, uint64_t ledger) {
  if (ledger - g_published_at.load(std::memory_order_relaxed) + kPublishStep >= 2 * kPublishStep) {
    PublishToPool(m);
  }
}

}  // namespace

void PublishShared() {
  if (shared::Member* m = shared::ProcessMember()) PublishToPool(m);
}

bool ReadSharedPool(SharedPoolFigures* out) {
  shared::Member* m = shared::ProcessMember();
  if (m == nullptr) return false;
  PublishShared();
  return m->Read(out);
}

bool Reserve(uint64_t bytes) {
  if (!Take(bytes, true)) return false;
  g_reserved.fetch_add(bytes, std::memory_order_relaxed);
  return true;
}

void Unreserve(uint64_t bytes) {
  g_reserved.fetch_sub(bytes, std::memory_order_relaxed);
  g_ledger.fetch_sub(bytes, std::memory_order_relaxed);
  if (shared::Member* m = shared::ProcessMember()) m->Unreserve(bytes);
}

void ReservedToGranted(uint64_t bytes) {
  g_reserved.fetch_sub(bytes, std::memory_order_relaxed);
  g_granted.fetch_add(bytes, std::memory_order_relaxed);
  if (shared::Member* m = shared::ProcessMember()) m->ReservedToGranted(bytes);
}

void GrantedToReserved(uint64_t bytes) {
  g_granted.fetch_sub(bytes, std::memory_order_relaxed);
  g_reserved.fetch_add(bytes, std::memory_order_relaxed);
  if (shared::Member* m = shared::ProcessMember()) m->GrantedToReserved(bytes);
}

bool Grant(uint64_t bytes) {
  if (!Take(bytes, false)) return false;
  g_granted.fetch_add(bytes, std::memory_order_relaxed);
  return true;
}

void Ungrant(uint64_t bytes) {
  g_granted.fetch_sub(bytes, std::memory_order_relaxed);
  const uint64_t ledger = g_ledger.fetch_sub(bytes, std::memory_order_relaxed) - bytes;
  if (shared::Member* m = shared::ProcessMember()) {
    m->Ungrant(bytes);
    MaybePublishToPool(m, ledger);
  }
}

uint64_t Unallocated() {
  const uint64_t cap = pool::Capacity();
  const uint64_t l = g_ledger.load(std::memory_order_relaxed);
  return l >= cap ? 0 : cap - l;
}

LedgerCounters Counters() {
  return {g_reserved.load(std::memory_order_relaxed), g_granted.load(std::memory_order_relaxed)};
}

// Lowering the capacity must not race a Grant that checked the old one: the
// difference is first taken in the ledger itself (one CAS, which fails when
// the ledger holds more than the new capacity), so no grant can use it while
// the capacity changes; it is given back once the new capacity is stored.
// Setters are serialised so that two cannot interleave their steps.
bool SetCapacity(uint64_t bytes) {
  static SpinLock setter;
  SpinLockHolder hold(setter);
  if (bytes == 0) bytes = pool::DefaultCapacity();
  const uint64_t old_cap = pool::Capacity();
  if (bytes >= old_cap) {
    test_hook::At(test_hook::Point::kSetCapacityAfterCheck);
    return pool::SetCapacity(bytes);
  }
  const uint64_t cut = old_cap - bytes;
  uint64_t cur = g_ledger.load(std::memory_order_relaxed);
  do {
    if (cur > bytes) return false;  // cur + cut > old_cap
  } while (!g_ledger.compare_exchange_weak(cur, cur + cut, std::memory_order_relaxed));
  test_hook::At(test_hook::Point::kSetCapacityAfterCheck);
  const bool ok = pool::SetCapacity(bytes);
  g_ledger.fetch_sub(cut, std::memory_order_relaxed);
  return ok;
}

void SetBudgetLimit(uint64_t bytes) { pool::SetBudgetLimit(bytes); }

uint64_t Quantum(uint64_t current_grant) {
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  if (current_grant < 16 * kMiB) return kMiB;
  if (current_grant < 64 * kMiB) return 4 * kMiB;
  return 8 * kMiB;
}

}  // namespace execmem::budget
