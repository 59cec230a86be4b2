// The emergency reserve (budget/emergency.h); Account::ChargeEmergency, which
// takes from it, is in account.cc next to Charge.
#include "budget/emergency.h"

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

}  // namespace execmem::budget
