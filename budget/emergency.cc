// The emergency reserve (budget/emergency.h).
#include "budget/emergency.h"

#include "budget/budget.h"

namespace execmem::budget {
namespace {

std::atomic<uint64_t> g_reserve{kDefaultEmergencyReserve};

}  // namespace

void SetEmergencyReserve(uint64_t bytes) {
  g_reserve.store(bytes < kMaxEmergencyReserve ? bytes : kMaxEmergencyReserve,
                  std::memory_order_relaxed);
}

uint64_t EmergencyReserve() { return g_reserve.load(std::memory_order_relaxed); }

bool EmergencyState::Take(uint64_t request) {
  if (!active.load(std::memory_order_relaxed)) return false;
  const uint64_t reserve = EmergencyReserve();
  uint64_t s = served.load(std::memory_order_relaxed);
  do {
    if (s > reserve || request > reserve - s) return false;  // (the reserve may have shrunk)
  } while (!served.compare_exchange_weak(s, s + request, std::memory_order_relaxed));
  uses.fetch_add(1, std::memory_order_relaxed);
  bytes.fetch_add(request, std::memory_order_relaxed);
  return true;
}

Verdict Account::ChargeEmergency(uint64_t bytes, uint64_t request) {
  const uint64_t maxb = Max();
  emergency.MaybeRefill(used.load(std::memory_order_relaxed), maxb);
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

}  // namespace execmem::budget
