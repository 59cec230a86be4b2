// budget/ — the emergency reserve of an account (included by budget.h).
//
// After a refusal a program still needs a little memory to say so: a log
// line, a formatted error, a stdio buffer. The reserve serves those requests
// so that it can report and exit cleanly instead of failing again inside
// its own failure path (Redis under a tight max recursed in its panic
// handler until SIGSEGV).
//
// The rules, exactly:
//  * Entering: an account enters the emergency state when a charge is
//    refused for good (ChargeOrReclaim gives up: after trim, spill hooks and
//    arbitration). That refused request stays refused (NULL / ENOMEM /
//    std::bad_alloc); the reserve serves only later requests.
//  * Serving: while in the state, a charge that would otherwise be refused
//    is granted from the reserve when the request bytes served since the
//    state began, this one included, stay within EmergencyReserve()
//    (EXECMEM_EMERGENCY_RESERVE, 64 KiB by default; 0 disables it). So a
//    request larger than the reserve is never served, and a program that
//    goes on allocating data after the refusal is refused again after at
//    most the reserve. Only the used <= max check is waived: the footprint is
//    still capped at max + overhead and covered by the reservation or a
//    grant, so the reserve is taken from the overhead reservation and
//    `footprint <= max + overhead` holds as always. Each such charge counts
//    in emergency_uses and emergency_bytes (request bytes).
//  * Refilling: the state clears, and the reserve is whole again, when used
//    falls back under max by at least the reserve (max - used >= reserve:
//    whatever the reserve served fits under max again). It is checked where
//    used is reported (Account::AddUsed) and at the next emergency charge.
//  * What is counted is the request that needed a charge; blocks handed out
//    from spans already held need none (the batching error of budget.h,
//    bounded by the overhead as before).
// Thread safety: relaxed atomics; the bytes served are taken with a CAS, so
// concurrent emergency charges never pass the reserve together.
#ifndef EXECMEM_BUDGET_EMERGENCY_H_
#define EXECMEM_BUDGET_EMERGENCY_H_

#include <atomic>
#include <cstdint>

namespace execmem::budget {

inline constexpr uint64_t kDefaultEmergencyReserve = uint64_t{64} << 10;
// Larger reserves are a typo, not a policy: the reserve is for messages.
inline constexpr uint64_t kMaxEmergencyReserve = uint64_t{16} << 20;

// The reserve of every account, in request bytes (process-wide setting).
void SetEmergencyReserve(uint64_t bytes);
uint64_t EmergencyReserve();

struct EmergencyState {
  std::atomic<bool> active{false};
  std::atomic<uint64_t> served{0};  // request bytes served since the state began
  // Counters (never reset).
  std::atomic<uint64_t> uses{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> entries{0};  // times the state was entered

  void Enter() {
    if (!active.exchange(true, std::memory_order_relaxed)) {
      entries.fetch_add(1, std::memory_order_relaxed);
    }
  }
  // Clears the state when used is back at max - reserve or below.
  void MaybeRefill(int64_t used, uint64_t max) {
    if (active.load(std::memory_order_relaxed) &&
        used + static_cast<int64_t>(EmergencyReserve()) <= static_cast<int64_t>(max)) {
      Refill();
    }
  }
  void Refill() {
    if (active.exchange(false, std::memory_order_relaxed)) {
      served.store(0, std::memory_order_relaxed);
    }
  }
  // Takes `request` bytes of the reserve; false if the state is not active
  // or what is left of the reserve is less.
  bool Take(uint64_t request);
  // Gives back bytes taken when the charge they were for failed after all.
  void GiveBack(uint64_t request) {
    served.fetch_sub(request, std::memory_order_relaxed);
    uses.fetch_sub(1, std::memory_order_relaxed);
    bytes.fetch_sub(request, std::memory_order_relaxed);
  }
};

}  // namespace execmem::budget

#endif  // EXECMEM_BUDGET_EMERGENCY_H_
