// budget/ — executors' budgets. Contract of this layer:
//
//  Files (inner order, each calling only those before it, checked by the
//  layering test: shared_ledger, shared_process, ledger, emergency, account):
//    budget.h          this contract: Account, Verdict, the ledger's calls
//    account.cc        Account: Charge / Uncharge / grants, used and peak,
//                      the tree of accounts, fair shares, ChargeEmergency
//    emergency.{h,cc}  the emergency reserve a refused account may still draw on
//    ledger.cc         reservations and grants against the pool's capacity,
//                      in quanta; TakeFromPool / MaybePublishToPool
//    shared_ledger.{h,cc}  one ledger for several processes in /dev/shm:
//                      the segment, its lock word (pid + start time), members
//    shared_process.cc this process's membership: join, grants from what the
//                      others gave back, dead members reclaimed
//  Invariants are listed below with the function that keeps each.
//
//  * Layer order: platform -> pool -> budget -> cache -> executor -> api ->
//    shim. budget/ includes only platform/os.h and pool/pool.h; it knows no
//    heap, tenant, hook or executor registry, and nothing here calls up. The
//    cache holds an Account in each of its tenants (cache/tenant.h) and
//    charges it; Account::parent and Verdict::at point at accounts only.
//  * The ledger: executors' reservations (initial + overhead, taken at
//    creation) and growth grants, drawn from the pool's capacity.
//    Invariant: reserved + granted <= pool::Capacity(); SetCapacity refuses a
//    capacity below what the ledger holds. (The pool itself bounds committed
//    bytes by the same capacity.)
//  * Account: one executor's budget and counters (see the struct). Its Charge
//    answers with a Verdict — granted, trim first, spill N bytes, or refused —
//    and the layers above act on it (executor/reclaim.cc, through the
//    cache's Reclaimer: trim -> spill hooks -> arbitration -> retry ->
//    out-of-memory report).
//  * Growth beyond the reservation is granted in quanta (velox quantizedSize:
//    1 MiB below 16 MiB of grant, 4 MiB below 64 MiB, 8 MiB above), so the
//    shared ledger is rarely touched, and given back as footprint falls.
//  * The tree: an account may have a parent. A child's reservation (its
//    initial) and its growth grants are charged to its parent's
//    footprint rather than to the ledger — the parent is the child's ledger —
//    and its used is added to every ancestor's. So a parent's footprint counts
//    what it has lent its children (>= their footprints) and its used their
//    live bytes, and Charge checks used <= max at every level. The charge path
//    stays cheap: a child's charge within its reservation touches only its
//    ancestors' used words (loads); it charges its parent only for a new
//    grant quantum.
//  * Fair shares: a parent with fair_shares caps each child's used at 1/N of
//    the parent's max, N the number of active children (used > 0, the asking
//    one included), as Spark shares execution memory among N tasks; the 1/(2N)
//    guarantee is kept by the reclaim loop, which asks siblings above their
//    share to spill first (executor/reclaim.cc).
//  * Thread safety: every function and Account member may be called from any
//    thread; counters are relaxed atomics (figures, not synchronisation).
//    Settings (initial, max, overhead) are atomics too, so that they can
//    change at run time (executor/limits.cc serialises the changes).
#ifndef EXECMEM_BUDGET_BUDGET_H_
#define EXECMEM_BUDGET_BUDGET_H_

#include <atomic>
#include <cstdint>
#include <optional>

#include "budget/emergency.h"

namespace execmem::budget {

// ---- the ledger ------------------------------------------------------------
// Each succeeds only if reserved + granted stays within the pool's capacity.
bool Reserve(uint64_t bytes);
void Unreserve(uint64_t bytes);
bool Grant(uint64_t bytes);
void Ungrant(uint64_t bytes);
// Turns reserved bytes into granted ones, or back (the ledger's total is
// unchanged).
void ReservedToGranted(uint64_t bytes);
void GrantedToReserved(uint64_t bytes);
uint64_t Unallocated();  // capacity - reserved - granted

struct LedgerCounters {
  uint64_t reserved, granted;
};
LedgerCounters Counters();

// When the process is a member of a shared pool (budget/shared_ledger.h):
// writes its used and footprint (the pool's held - cached, and held) into
// its slot, for the other members and execmem-top. The ledger does so itself
// only when its holdings moved by kPublishStep since the last time (reading
// the pool's counters at every grant would cost a grant through the shared
// ledger about a third more), so a report or a periodic thread calls this
// before reading the slot. Nothing when the process has a pool of its own.
inline constexpr uint64_t kPublishStep = uint64_t{4} << 20;
void PublishShared();

// The shared pool's figures for the reports (EXECMEM_STATS, the timeline,
// Prometheus): the pool's, summed over its slots without the lock, and this
// process's slot (published first). False when the process is not a member.
struct SharedPoolFigures {
  uint64_t capacity, reserved, granted, peak, members, refusals, reclaimed_members, reclaimed_bytes;
  uint64_t own_reserved, own_granted, own_used, own_asked, own_answered;
  char name[192];  // the pool's NAME, NUL-terminated
};
bool ReadSharedPool(SharedPoolFigures* out);

// Sets the pool's capacity (0: the pool's default); false, and nothing
// changed, if it is below what is reserved + granted.
bool SetCapacity(uint64_t bytes);

// What the root accounts may hold together (Σ max + overhead), set by the
// executor layer whenever a budget changes: the pool's cache bound keeps
// the process under it (pool::SetBudgetLimit). UINT64_MAX: no limit.
void SetBudgetLimit(uint64_t bytes);

// The grant step for an account that holds `current_grant` bytes of grant.
uint64_t Quantum(uint64_t current_grant);

// ---- verdicts ----------------------------------------------------------------
// What limit a charge would pass.
enum class Shortfall : uint8_t {
  kNone,
  kUsed,       // used would pass max
  kFootprint,  // footprint would pass max + overhead
  kPool,       // the grant cannot grow: the pool has no unreserved capacity
  kShare,      // used would pass the account's fair share of its parent
};

struct Account;

struct Verdict {
  enum class Kind : uint8_t {
    kGranted,  // the footprint is charged; give it back with Uncharge
    // Footprint is what does not fit (its cap, or the grant the pool can
    // give) while used is under max: the caller's thread caches should give
    // back empty spans, then retry; if still short, spill `bytes`.
    kTrimFirst,
    kSpill,  // used would pass max: free `bytes` of live data, then retry
    // No reclaim can make it fit: the request alone passes a max (or a
    // limit, or the pool's capacity) at some level, or sizes beyond
    // kMaxCharge. Spill hooks are not asked.
    kRefused,
  };
  Kind kind;
  Shortfall reason;
  uint64_t bytes;  // kTrimFirst / kSpill / kRefused: the shortfall in bytes
  // The account whose limit would be passed: the charged one or an ancestor
  // (null when granted).
  const Account* at = nullptr;

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

  // ---- settings (written before the account is shared, or by SetLimits and
  // configuration while Charge reads them on other threads: atomics) ----
  std::atomic<uint64_t> initial{0};
  std::atomic<uint64_t> max{0};  // 0: the pool's capacity
  std::atomic<uint64_t> overhead{0};
  // The process's default account: time above initial counts only once it
  // has been given an initial.
  bool is_default = false;
  // The tree (written before the account is shared; never changes): null for
  // a root, whose reservation and grant are the ledger's.
  Account* parent = nullptr;
  // Children share this account's max fairly (see the header comment).
  std::atomic<bool> fair_shares{false};

  uint64_t Max() const;
  uint64_t Limit() const { return Max() + Overhead(); }  // footprint cap
  uint64_t Initial() const { return initial.load(std::memory_order_relaxed); }
  uint64_t Overhead() const { return overhead.load(std::memory_order_relaxed); }
  // What the account borrowed at creation: initial + overhead from the ledger
  // for a root; initial alone from the parent for a child (a child's
  // overhead is a cap on its footprint, not a reservation: the parent's
  // overhead already pays for the allocator's cost).
  uint64_t Reservation() const { return Initial() + (parent == nullptr ? Overhead() : 0); }
  // This account's cap on its used as a child of a fair-sharing parent
  // (Max() when the parent does not share fairly, or for a root).
  uint64_t ShareCap() const;

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
  // Grows the grant by at least `bytes`, in quanta when the ledger (or the
  // parent) has room; otherwise the verdict of the ledger or the parent.
  Verdict Grow(uint64_t bytes);
  bool TryGrow(uint64_t bytes) { return Grow(bytes).granted(); }
  // Moves `bytes` of this account's reservation into its grant (the
  // reservation shrinks, nothing is given back yet): initial or overhead is
  // about to be lowered by `bytes` in all. MaybeReleaseGrant returns the rest.
  void ReservationToGrant(uint64_t bytes);
  // The reverse, for a reservation about to grow: moves up to `bytes` of the
  // grant into the reservation (initial or overhead is about to be raised by
  // at least that), so that what was granted before the reservation existed
  // is not asked of the ledger twice. Returns the bytes moved.
  uint64_t GrantToReservation(uint64_t bytes);

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
  // Children whose used is above 0 (kept by AddUsed at every level).
  std::atomic<int> active_children{0};
  // Bytes accounted through execmem_reserve (in used and footprint).
  std::atomic<uint64_t> reserved{0};

 private:
  // The charge's used checks at every level, the fair shares included.
  Verdict CheckUsed(uint64_t request) const;
  // Borrows `bytes` from the parent (charged to its footprint), or for a
  // root from the ledger: as a grant, or as a reservation (`reservation`).
  Verdict Borrow(uint64_t bytes, bool reservation = false);
  // Gives borrowed bytes back to the parent, or the ledger.
  void GiveBack(uint64_t bytes, bool reservation = false);
  // One attempt to add `bytes` to the footprint within its cap and the
  // budget (growing the grant past the reservation); nullopt when another
  // thread moved the footprint first (retry). Charge and ChargeEmergency.
  std::optional<Verdict> ChargeFootprintOnce(uint64_t bytes);
  friend Verdict BorrowReservation(Account* a, uint64_t bytes);
  friend void ReturnReservation(Account* a, uint64_t bytes);
  // Time above initial and the peak, after used moved from `before` to `now`.
  void NoteUsed(int64_t before, int64_t now);
};

// Adds `bytes` of reservation to the ledger (root) or to the parent's
// footprint (child) for a new account or a larger reservation; returns the
// verdict (a root's is kGranted or kTrimFirst / kPool).
Verdict BorrowReservation(Account* a, uint64_t bytes);
// Gives a reservation back (the account's, or a part of it).
void ReturnReservation(Account* a, uint64_t bytes);

}  // namespace execmem::budget

// Part of this contract: the shared pool's ledger (a process's membership).
#include "budget/shared_ledger.h"  // IWYU pragma: export

#endif  // EXECMEM_BUDGET_BUDGET_H_
