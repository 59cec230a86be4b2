// An executor's account: charges, grants, used / peak figures, the tree of
// accounts and fair shares. See budget.h.
#include "budget/budget.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem::budget {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

uint64_t RoundUp(uint64_t v, uint64_t q) { return (v + q - 1) / q * q; }

void UpdateMax(std::atomic<uint64_t>& peak, uint64_t v) {
  uint64_t p = peak.load(kRelaxed);
  while (v > p && !peak.compare_exchange_weak(p, v, kRelaxed)) {
  }
}

Verdict Granted() { return {Verdict::Kind::kGranted, Shortfall::kNone, 0, nullptr}; }

}  // namespace

uint64_t Account::Max() const {
  const uint64_t m = max.load(kRelaxed);
  return m == 0 ? pool::Capacity() : m;
}

uint64_t Account::ShareCap() const {
  if (parent == nullptr || !parent->fair_shares.load(kRelaxed)) return Max();
  // N counts this account even before its first byte: it is asking.
  int n = parent->active_children.load(kRelaxed);
  if (used.load(kRelaxed) <= 0) ++n;
  return parent->Max() / static_cast<uint64_t>(n < 1 ? 1 : n);
}

void Account::NotePeaks() {
  const int64_t u = used.load(kRelaxed);
  if (u > 0) UpdateMax(peak_used, static_cast<uint64_t>(u));
  UpdateMax(peak_footprint, footprint.load(kRelaxed));
}

void Account::NoteUsed(int64_t before, int64_t now) {
  if (now > before && now > 0) UpdateMax(peak_used, static_cast<uint64_t>(now));
  // Time above initial, measured at the points where used is reported.
  const uint64_t init = Initial();
  if (init == 0 && is_default) return;
  const bool above = now > static_cast<int64_t>(init);
  uint64_t since = above_since_ns.load(kRelaxed);
  if (above && since == 0) {
    above_since_ns.compare_exchange_strong(since, os::NowNs(), kRelaxed);
  } else if (!above && since != 0 && above_since_ns.compare_exchange_strong(since, 0, kRelaxed)) {
    ns_above_initial.fetch_add(os::NowNs() - since, kRelaxed);
  }
}

void Account::AddUsed(int64_t bytes, int64_t blocks, uint64_t allocs) {
  if (blocks != 0) live_blocks.fetch_add(blocks, kRelaxed);
  if (allocs != 0) allocations.fetch_add(allocs, kRelaxed);
  if (bytes == 0) return;
  // Every level's used moves by the same bytes; a level whose used crosses 0
  // changes its parent's count of active children. Each fetch_add returns
  // the exact previous value, so the count stays exact under concurrency.
  for (Account* a = this; a != nullptr; a = a->parent) {
    const int64_t before = a->used.fetch_add(bytes, kRelaxed);
    const int64_t now = before + bytes;
    a->NoteUsed(before, now);
    if (bytes < 0 && a->emergency.active.load(kRelaxed)) a->emergency.MaybeRefill(now, a->Max());
    if (a->parent != nullptr && (before > 0) != (now > 0)) {
      a->parent->active_children.fetch_add(now > 0 ? 1 : -1, kRelaxed);
    }
  }
}

Verdict Account::Borrow(uint64_t bytes, bool reservation) {
  if (parent != nullptr) return parent->Charge(bytes, 0);
  if (reservation ? Reserve(bytes) : Grant(bytes)) return Granted();
  return {Verdict::Kind::kTrimFirst, Shortfall::kPool, bytes, this};
}

void Account::GiveBack(uint64_t bytes, bool reservation) {
  if (parent != nullptr) {
    parent->ReduceCharge(bytes);
  } else if (reservation) {
    Unreserve(bytes);
  } else {
    Ungrant(bytes);
  }
}

Verdict Account::Grow(uint64_t bytes) {
  const uint64_t q = Quantum(grant.load(kRelaxed));
  uint64_t amount = RoundUp(bytes, q);
  Verdict v = Borrow(amount);
  // A whole quantum may not fit while the exact amount does.
  if (!v.granted() && amount != bytes) {
    amount = bytes;
    v = Borrow(amount);
  }
  if (v.granted()) grant.fetch_add(amount, kRelaxed);
  return v;
}

void Account::ReservationToGrant(uint64_t bytes) {
  // A root's ledger moves the bytes from reserved to granted; a child's
  // parent holds both in its footprint, so it sees no change.
  if (parent == nullptr) ReservedToGranted(bytes);
  grant.fetch_add(bytes, kRelaxed);
}

uint64_t Account::GrantToReservation(uint64_t bytes) {
  uint64_t g = grant.load(kRelaxed);
  uint64_t moved;
  do {
    moved = g < bytes ? g : bytes;
    if (moved == 0) return 0;
  } while (!grant.compare_exchange_weak(g, g - moved, kRelaxed));
  if (parent == nullptr) GrantedToReserved(moved);
  return moved;
}

void Account::MaybeReleaseGrant(bool all) {
  // Keep up to two quanta of slack (none when asked to by arbitration); give
  // the rest back to the ledger or the parent.
  for (;;) {
    uint64_t g = grant.load(kRelaxed);
    if (g == 0) return;
    const uint64_t fp = footprint.load(kRelaxed);
    const uint64_t base = Reservation();
    const uint64_t needed = fp > base ? fp - base : 0;
    const uint64_t q = all ? 1 : Quantum(g);
    if (g <= needed + (all ? 0 : 2 * q)) return;
    const uint64_t keep = RoundUp(needed, q);
    const uint64_t release = g - keep;
    if (grant.compare_exchange_weak(g, keep, kRelaxed)) {
      GiveBack(release);
      return;
    }
  }
}

void Account::ReduceCharge(uint64_t bytes) {
  footprint.fetch_sub(bytes, kRelaxed);
  MaybeReleaseGrant(false);
}

Verdict Account::CheckUsed(uint64_t request) const {
  for (const Account* a = this; a != nullptr; a = a->parent) {
    const int64_t u = a->used.load(kRelaxed);
    const uint64_t m = a->Max();
    if (request > m) return {Verdict::Kind::kRefused, Shortfall::kUsed, request, a};
    if (u + static_cast<int64_t>(request) > static_cast<int64_t>(m)) {
      return {Verdict::Kind::kSpill, Shortfall::kUsed, static_cast<uint64_t>(u) + request - m, a};
    }
    if (a->parent != nullptr && a->parent->fair_shares.load(kRelaxed)) {
      const uint64_t share = a->ShareCap();
      if (u + static_cast<int64_t>(request) > static_cast<int64_t>(share)) {
        return {Verdict::Kind::kSpill, Shortfall::kShare,
                static_cast<uint64_t>(u > 0 ? u : 0) + request - share, a};
      }
    }
  }
  return Granted();
}

Verdict Account::Charge(uint64_t bytes, uint64_t request) {
  if (request > kMaxCharge || bytes > kMaxCharge) {
    return {Verdict::Kind::kRefused,
            request > kMaxCharge ? Shortfall::kUsed : Shortfall::kFootprint,
            request > kMaxCharge ? request : bytes, this};
  }
  for (;;) {
    if (Verdict v = CheckUsed(request); !v.granted()) return v;
    const uint64_t limit = Limit();
    if (bytes > limit) return {Verdict::Kind::kRefused, Shortfall::kFootprint, bytes, this};
    if (parent == nullptr && bytes > pool::Capacity()) {
      return {Verdict::Kind::kRefused, Shortfall::kPool, bytes, this};
    }
    if (std::optional<Verdict> v = ChargeFootprintOnce(bytes)) return *v;
  }
}

std::optional<Verdict> Account::ChargeFootprintOnce(uint64_t bytes) {
  const uint64_t fp = footprint.load(kRelaxed);
  const uint64_t limit = Limit();
  if (fp + bytes > limit) {
    return Verdict{Verdict::Kind::kTrimFirst, Shortfall::kFootprint, fp + bytes - limit, this};
  }
  const uint64_t budget = Reservation() + grant.load(kRelaxed);
  if (fp + bytes > budget) {
    if (Verdict v = Grow(fp + bytes - budget); !v.granted()) return v;
  }
  uint64_t expected = fp;
  if (!footprint.compare_exchange_weak(expected, fp + bytes, kRelaxed)) return std::nullopt;
  UpdateMax(peak_footprint, fp + bytes);
  return Granted();
}

Verdict Account::ChargeEmergency(uint64_t bytes, uint64_t request) {
  const uint64_t maxb = Max();
  emergency.MaybeRefill(used.load(kRelaxed), maxb);
  if (!emergency.Take(request)) {
    return {Verdict::Kind::kRefused, Shortfall::kUsed, request};
  }
  // As Charge, without the used <= max check; nothing is reclaimed for it.
  for (;;) {
    if (std::optional<Verdict> v = ChargeFootprintOnce(bytes)) {
      if (!v->granted()) {
        emergency.GiveBack(request);
        return {Verdict::Kind::kRefused, v->reason, v->bytes, v->at};
      }
      NotePeaks();
      return *v;
    }
  }
}

Verdict BorrowReservation(Account* a, uint64_t bytes) { return a->Borrow(bytes, true); }

void ReturnReservation(Account* a, uint64_t bytes) { a->GiveBack(bytes, true); }

}  // namespace execmem::budget
