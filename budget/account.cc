// An executor's account: charges, grants, used / peak figures. See budget.h.
#include "budget/budget.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem::budget {
namespace {

uint64_t RoundUp(uint64_t v, uint64_t q) { return (v + q - 1) / q * q; }

void UpdateMax(std::atomic<uint64_t>& peak, uint64_t v) {
  uint64_t p = peak.load(std::memory_order_relaxed);
  while (v > p && !peak.compare_exchange_weak(p, v, std::memory_order_relaxed)) {
  }
}

}  // namespace

uint64_t Account::Max() const { return max == 0 ? pool::Capacity() : max; }

void Account::NotePeaks() {
  const int64_t u = used.load(std::memory_order_relaxed);
  if (u > 0) UpdateMax(peak_used, static_cast<uint64_t>(u));
  UpdateMax(peak_footprint, footprint.load(std::memory_order_relaxed));
}

void Account::AddUsed(int64_t bytes, int64_t blocks, uint64_t allocs) {
  const int64_t u = used.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  if (blocks != 0) live_blocks.fetch_add(blocks, std::memory_order_relaxed);
  if (allocs != 0) allocations.fetch_add(allocs, std::memory_order_relaxed);
  if (bytes > 0) UpdateMax(peak_used, static_cast<uint64_t>(u));
  if (bytes < 0 && emergency.active.load(std::memory_order_relaxed)) {
    emergency.MaybeRefill(u, Max());
  }
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

bool Account::TryGrow(uint64_t bytes) {
  const uint64_t q = Quantum(grant.load(std::memory_order_relaxed));
  const uint64_t amount = RoundUp(bytes, q);
  if (!Grant(amount)) {
    // A whole quantum may not fit while the exact amount does.
    if (amount == bytes || !Grant(bytes)) return false;
    grant.fetch_add(bytes, std::memory_order_relaxed);
    return true;
  }
  grant.fetch_add(amount, std::memory_order_relaxed);
  return true;
}

void Account::MaybeReleaseGrant(bool all) {
  // Keep up to two quanta of slack (none when asked to by arbitration); give
  // the rest back to the ledger.
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
      Ungrant(release);
      return;
    }
  }
}

void Account::ReduceCharge(uint64_t bytes) {
  footprint.fetch_sub(bytes, std::memory_order_relaxed);
  MaybeReleaseGrant(false);
}

Verdict Account::Charge(uint64_t bytes, uint64_t request) {
  if (request > kMaxCharge || bytes > kMaxCharge) {
    return {Verdict::Kind::kRefused,
            request > kMaxCharge ? Shortfall::kUsed : Shortfall::kFootprint,
            request > kMaxCharge ? request : bytes};
  }
  for (;;) {
    const int64_t u = used.load(std::memory_order_relaxed);
    const uint64_t fp = footprint.load(std::memory_order_relaxed);
    const uint64_t maxb = Max();
    if (u + static_cast<int64_t>(request) > static_cast<int64_t>(maxb)) {
      return {Verdict::Kind::kSpill, Shortfall::kUsed, static_cast<uint64_t>(u) + request - maxb};
    }
    if (fp + bytes > maxb + overhead) {
      return {Verdict::Kind::kTrimFirst, Shortfall::kFootprint, fp + bytes - (maxb + overhead)};
    }
    const uint64_t budget = initial + overhead + grant.load(std::memory_order_relaxed);
    if (fp + bytes > budget && !TryGrow(fp + bytes - budget)) {
      return {Verdict::Kind::kTrimFirst, Shortfall::kPool, fp + bytes - budget};
    }
    uint64_t expected = fp;
    if (footprint.compare_exchange_weak(expected, fp + bytes, std::memory_order_relaxed)) {
      UpdateMax(peak_footprint, fp + bytes);
      return {Verdict::Kind::kGranted, Shortfall::kNone, 0};
    }
  }
}

}  // namespace execmem::budget
