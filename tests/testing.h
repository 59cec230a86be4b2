// Fixtures shared by the unit tests: whether this is a sanitizer build, and
// guards that put process-wide settings (decay, capacity) back.
#ifndef EXECMEM_TESTS_TESTING_H_
#define EXECMEM_TESTS_TESTING_H_

#include <cstdint>

#include "budget/budget.h"
#include "pool/pool.h"

namespace execmem::test_support {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

// EXECMEM_DECAY_MS's default (allocator/options.cc); tests put it back.
inline constexpr uint64_t kDefaultDecayMs = 5000;
inline constexpr uint64_t kHour = 3'600'000;

class DecayGuard {
 public:
  explicit DecayGuard(uint64_t ms) { pool::SetDecayMs(ms); }
  ~DecayGuard() { pool::SetDecayMs(kDefaultDecayMs); }
  DecayGuard(const DecayGuard&) = delete;
  DecayGuard& operator=(const DecayGuard&) = delete;
};

class CapacityGuard {
 public:
  CapacityGuard() : old_(pool::Capacity()) {}
  ~CapacityGuard() { budget::SetCapacity(old_); }
  CapacityGuard(const CapacityGuard&) = delete;
  CapacityGuard& operator=(const CapacityGuard&) = delete;

 private:
  uint64_t old_;
};

// Sets the emergency reserve (budget/emergency.h) and puts its default back.
class EmergencyReserveGuard {
 public:
  explicit EmergencyReserveGuard(uint64_t bytes) { budget::SetEmergencyReserve(bytes); }
  ~EmergencyReserveGuard() { budget::SetEmergencyReserve(budget::kDefaultEmergencyReserve); }
  EmergencyReserveGuard(const EmergencyReserveGuard&) = delete;
  EmergencyReserveGuard& operator=(const EmergencyReserveGuard&) = delete;
};

}  // namespace execmem::test_support

#endif  // EXECMEM_TESTS_TESTING_H_
