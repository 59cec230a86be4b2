// budget/ — executors' budgets. Contract of this layer:
//
//  * Layer order: platform -> pool -> budget -> allocator -> shim. budget/
//    includes only platform/ and pool/; it knows no heap, hook or executor
//    registry, and nothing here calls up into the allocator.
//  * The ledger: executors' reservations (initial + overhead, taken at
//    creation) and growth grants, drawn from the pool's capacity.
//    Invariant: reserved + granted <= pool::Capacity(); SetCapacity refuses a
//    capacity below what the ledger holds. (The pool itself bounds committed
//    bytes by the same capacity.)
//  * Account: one executor's budget and counters (see the struct). Its Charge
//    answers with a Verdict — granted, trim first, spill N bytes, or refused —
//    and the thread-cache layer acts on it (allocator/reclaim.cc: trim ->
//    spill hooks -> arbitration -> retry -> out-of-memory report).
//  * Growth beyond the reservation is granted in quanta (velox quantizedSize:
//    1 MiB below 16 MiB of grant, 4 MiB below 64 MiB, 8 MiB above), so the
//    shared ledger is rarely touched, and given back as footprint falls.
//  * Thread safety: every function and Account member may be called from any
//    thread; counters are relaxed atomics (figures, not synchronisation).
#ifndef EXECMEM_BUDGET_BUDGET_H_
#define EXECMEM_BUDGET_BUDGET_H_

#include <atomic>
#include <cstdint>

#include "budget/emergency.h"

namespace execmem::budget {

// ---- the ledger ------------------------------------------------------------
// Each succeeds only if reserved + granted stays within the pool's capacity.
bool Reserve(uint64_t bytes);
void Unreserve(uint64_t bytes);
bool Grant(uint64_t bytes);
void Ungrant(uint64_t bytes);
uint64_t Unallocated();  // capacity - reserved - granted

struct LedgerCounters {
  uint64_t reserved, granted;
};
LedgerCounters Counters();

// Sets the pool's capacity (0: the pool's default); false, and nothing
// changed, if it is below what is reserved + granted.
bool SetCapacity(uint64_t bytes);

// The grant step for an account that holds `current_grant` bytes of grant.
uint64_t Quantum(uint64_t current_grant);

// ---- verdicts ----------------------------------------------------------------
// What limit a charge would pass.
enum class Shortfall : uint8_t {
  kNone,
  kUsed,       // used would pass max
  kFootprint,  // footprint would pass max + overhead
  kPool,       // the grant cannot grow: the pool has no unreserved capacity
};

struct Verdict {
  enum class Kind : uint8_t {
    kGranted,  // the footprint is charged; give it back with Uncharge
    // Footprint is what does not fit (its cap, or the grant the pool can
    // give) while used is under max: the caller's thread caches should give
    // back empty spans, then retry; if still short, spill `bytes`.
    kTrimFirst,
    kSpill,    // used would pass max: free `bytes` of live data, then retry
    kRefused,  // no reclaim can make it fit (sizes beyond kMaxCharge)
  };
  Kind kind;
  Shortfall reason;
  uint64_t bytes;  // kTrimFirst / kSpill / kRefused: the shortfall in bytes

  bool granted() const { return kind == Kind::kGranted; }
};

// Charges above this are refused outright: the budget sums would overflow.
inline constexpr uint64_t kMaxCharge = uint64_t{1} << 62;

// ---- an executor's account -----------------------------------------------------
// Two figures:
//   used      — live bytes (size-class rounded)
//   footprint — bytes of spans and large blocks held, cached free blocks included
// Invariants (between charges):
//   used <= max                      (checked when a span or large block is charged)
//   footprint <= max + overhead      (every charge checks it)
//   footprint <= initial + overhead + grant   (the grant covers growth)
//   ledger (reserved + granted) <= pool capacity
//
// Batching: thread caches report `used` (AddUsed) when they take or give back
// a span and on binding changes, never per allocation. A thread can hand out
// the free blocks of spans it already holds without a check, so between
// checks used can pass max by at most the free bytes cached in the
// executor's spans — which are inside its footprint, itself capped at
// max + overhead. The worst-case error is thus bounded by the overhead
// reservation.
struct Account {
  constexpr Account() = default;

  // ---- settings (written before the account is shared, or by configuration) ----
  uint64_t initial = 0;
  uint64_t max = 0;  // 0: the pool's capacity
  uint64_t overhead = 0;
  // The process's default account: time above initial counts only once it
  // has been given an initial.
  bool is_default = false;

  uint64_t Max() const;
  uint64_t Limit() const { return Max() + overhead; }  // footprint cap

  // Charges `bytes` of footprint (a span or large block) for a request of
  // `request` live bytes. Touches only this account and the ledger (growing
  // the grant when the reservation is passed); never calls into heaps,
  // hooks or other accounts.
  Verdict Charge(uint64_t bytes, uint64_t request);
  // After a refusal: the emergency reserve (budget/emergency.h). Granted, or
  // kRefused with the limit that stopped it. Only ChargeOrReclaim calls it,
  // after every reclaim step failed.
  Verdict ChargeEmergency(uint64_t bytes, uint64_t request);
  // Gives back a granted charge.
  void Uncharge(uint64_t bytes) { ReduceCharge(bytes); }
  // Lowers a charge without ending it (a large block whose estimate was high).
  void ReduceCharge(uint64_t bytes);
  // Live-byte / block deltas reported by thread caches.
  void AddUsed(int64_t bytes, int64_t blocks, uint64_t allocs);
  void NotePeaks();
  // Gives grant not covering the footprint back to the ledger (all of it
  // when `all`, else beyond two quanta of slack).
  void MaybeReleaseGrant(bool all);
  // Grows the grant by at least `bytes`, in quanta when the ledger has room.
  bool TryGrow(uint64_t bytes);

  std::atomic<int64_t> used{0};
  std::atomic<int64_t> live_blocks{0};
  std::atomic<uint64_t> footprint{0};
  std::atomic<uint64_t> grant{0};  // ledger grant beyond initial + overhead
  std::atomic<uint64_t> peak_used{0};
  std::atomic<uint64_t> peak_footprint{0};
  std::atomic<uint64_t> allocations{0};
  std::atomic<uint64_t> spill_calls{0};
  std::atomic<uint64_t> spill_failures{0};
  std::atomic<uint64_t> bytes_spilled{0};
  std::atomic<uint64_t> oom_count{0};
  std::atomic<uint64_t> above_since_ns{0};
  std::atomic<uint64_t> ns_above_initial{0};
  EmergencyState emergency;
};

}  // namespace execmem::budget

#endif  // EXECMEM_BUDGET_BUDGET_H_
