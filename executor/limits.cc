// Run-time budgets and reservations (see limits.h).
#include "executor/limits.h"

#include <cerrno>

#include "budget/budget.h"
#include "cache/cache.h"
#include "executor/config.h"
#include "executor/executor.h"
#include "executor/reclaim.h"
#include "pool/pool.h"

namespace execmem {
namespace {

using config::FormatBytes;

uint64_t Used(const ExecutorImpl* e) {
  const int64_t u = e->account.used.load(std::memory_order_relaxed);
  return u > 0 ? static_cast<uint64_t>(u) : 0;
}

// Checks (and, with `store`, applies) the new budgets against the tree's
// rule and the pool; "" when they hold.
std::string Apply(ExecutorImpl* e, uint64_t initial, uint64_t max, uint64_t overhead, bool store) {
  if (e->account.parent == nullptr && max > pool::Capacity()) {
    return "max " + FormatBytes(max) + " is above the pool capacity " +
           FormatBytes(pool::Capacity());
  }
  uint64_t bound = 0;
  switch (CheckTreeRule(e, initial, max, overhead, store, &bound)) {
    case TreeRule::kHolds:
      return "";
    case TreeRule::kAboveParent:
      return "max " + FormatBytes(max) + " is above the max of parent '" + e->Parent()->name +
             "' (" + FormatBytes(bound) + ")";
    case TreeRule::kBelowChild:
      break;
  }
  return "max " + FormatBytes(max) + " is below the max of a child (" + FormatBytes(bound) +
         "): lower the children's first";
}

// Borrows `bytes` more reservation for e (its parent's hooks may spill).
bool BorrowMore(ExecutorImpl* e, uint64_t bytes) {
  ExecutorImpl* p = e->Parent();
  if (p == nullptr) return budget::Reserve(bytes);
  if (!ChargeOrReclaim(p, bytes, 0, nullptr, ChargeFor::kReservation)) return false;
  p->Unref();  // the charge's reference: the child's own covers it
  return true;
}

class AdjustingFlag {
 public:
  explicit AdjustingFlag(ExecutorImpl* e) : e_(e) {
    bool expected = false;
    held_ = e->adjusting.compare_exchange_strong(expected, true, std::memory_order_acquire);
  }
  ~AdjustingFlag() {
    if (held_) e_->adjusting.store(false, std::memory_order_release);
  }
  bool held() const { return held_; }

 private:
  ExecutorImpl* e_;
  bool held_;
};

}  // namespace

int SetLimits(ExecutorImpl* e, const NewLimits& limits, std::string* message) {
  if (e->closing.load(std::memory_order_acquire)) {
    *message = std::string("executor '") + e->name + "' is being destroyed";
    return EINVAL;
  }
  AdjustingFlag flag(e);
  if (!flag.held()) {
    *message =
        std::string("the limits of executor '") + e->name + "' are being changed by another thread";
    return EBUSY;
  }
  const uint64_t old_initial = e->account.Initial();
  const uint64_t old_overhead = e->account.Overhead();
  const uint64_t old_reservation = e->account.Reservation();
  const uint64_t initial = limits.initial.value_or(old_initial);
  const uint64_t max = limits.max.value_or(e->account.Max());
  const uint64_t overhead = limits.overhead.value_or(old_overhead);
  if (max == 0) {
    *message = "max must be above 0";
    return EINVAL;
  }
  if (initial > max) {
    *message = "initial " + FormatBytes(initial) + " is above max " + FormatBytes(max);
    return EINVAL;
  }
  if (std::string broken = Apply(e, initial, max, overhead, false); !broken.empty()) {
    *message = std::move(broken);
    return EINVAL;
  }
  // Lowering max below used: spill first, with max unchanged, so that other
  // threads' allocations never see a max that is then put back.
  if (max < e->account.Max()) {
    ThreadHeapsSync();
    if (Used(e) > max) {
      const uint64_t need = Used(e) - max;
      const uint64_t freed = SpillSubtree(e, need, nullptr, 0);
      ThreadHeapsSync();
      if (Used(e) > max) {
        *message = std::string("cannot lower max of executor '") + e->name + "' to " +
                   FormatBytes(max) + ": used is " + FormatBytes(Used(e)) +
                   " and the spill hooks freed " + FormatBytes(freed) + " of the " +
                   FormatBytes(need) + " asked";
        return EBUSY;
      }
    }
  }
  const uint64_t new_reservation = initial + (e->account.parent == nullptr ? overhead : 0);
  if (new_reservation > old_reservation && !BorrowMore(e, new_reservation - old_reservation)) {
    *message =
        std::string("cannot reserve ") + FormatBytes(new_reservation - old_reservation) +
        " more for executor '" + e->name + "' from " +
        (e->account.parent == nullptr
             ? std::string("the pool (") + FormatBytes(budget::Unallocated()) + " unreserved)"
             : std::string("its parent '") + e->Parent()->name + "'");
    return ENOMEM;
  }
  // Checked again where it is stored: a parent or child may have changed since.
  if (std::string broken = Apply(e, initial, max, overhead, true); !broken.empty()) {
    if (new_reservation > old_reservation) {
      budget::ReturnReservation(&e->account, new_reservation - old_reservation);
    }
    *message = std::move(broken);
    return EINVAL;
  }
  if (new_reservation < old_reservation)
    e->account.ReservationToGrant(old_reservation - new_reservation);
  e->account.MaybeReleaseGrant(false);
  RefreshBudgetLimit();
  return 0;
}

int Reserve(ExecutorImpl* e, uint64_t bytes) {
  if (bytes == 0) return 0;
  Heap* h = tls_heap;
  if (h == &g_bootstrap_heap || h->exec != e) h = nullptr;
  if (h != nullptr) h->Sync();
  if (bytes > budget::kMaxCharge) {
    // Refused at once, with the report.
    ChargeOrReclaim(e, bytes, bytes, h, ChargeFor::kReservation);
    return ENOMEM;
  }
  // Counted before `closing` is read; DestroyExecutor sets `closing` before
  // it reads `reserved` (seq_cst both): one of the two sees the other.
  e->account.reserved.fetch_add(bytes, std::memory_order_seq_cst);
  if (e->closing.load(std::memory_order_seq_cst)) {
    e->account.reserved.fetch_sub(bytes, std::memory_order_relaxed);
    return EINVAL;
  }
  if (!ChargeOrReclaim(e, bytes, bytes, h, ChargeFor::kReservation)) {
    e->account.reserved.fetch_sub(bytes, std::memory_order_relaxed);
    return ENOMEM;
  }
  // Reserved bytes keep e alive (destroy refuses them): the charge's
  // reference is not needed.
  e->Unref();
  e->account.AddUsed(static_cast<int64_t>(bytes), 0, 0);
  return 0;
}

int Unreserve(ExecutorImpl* e, uint64_t bytes) {
  if (bytes == 0) return 0;
  uint64_t cur = e->account.reserved.load(std::memory_order_relaxed);
  do {
    if (bytes > cur) return EINVAL;
  } while (!e->account.reserved.compare_exchange_weak(cur, cur - bytes, std::memory_order_relaxed));
  e->account.AddUsed(-static_cast<int64_t>(bytes), 0, 0);
  e->account.ReduceCharge(bytes);
  return 0;
}

}  // namespace execmem
