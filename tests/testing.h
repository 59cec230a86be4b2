// Fixtures shared by the unit tests: whether this is a sanitizer build, and
// guards that put process-wide settings (decay, capacity) back.
#ifndef EXECMEM_TESTS_TESTING_H_
#define EXECMEM_TESTS_TESTING_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "budget/budget.h"
#include "execmem.h"
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

// Blocks of 1 MiB allocated for one executor; Hook (a spill hook whose
// context is the Blocks) frees what it holds, newest first.
struct Blocks {
  static constexpr size_t kBlock = size_t{1} << 20;
  std::vector<void*> held;
  int calls = 0;
  bool Fill(execmem_executor_t* e, int n) {
    execmem_executor_t* prev = execmem_bind(e);
    bool ok = true;
    for (int i = 0; i < n && ok; ++i) {
      void* p = execmem_malloc(kBlock);
      ok = p != nullptr;
      if (ok) held.push_back(p);
    }
    execmem_bind(prev);
    return ok;
  }
  size_t Free(size_t bytes) {
    size_t freed = 0;
    while (freed < bytes && !held.empty()) {
      execmem_free(held.back());
      held.pop_back();
      freed += kBlock;
    }
    return freed;
  }
  ~Blocks() { Free(SIZE_MAX); }
  static size_t Hook(void* self, size_t bytes) {
    auto* b = static_cast<Blocks*>(self);
    ++b->calls;
    return b->Free(bytes);
  }
};

}  // namespace execmem::test_support

#endif  // EXECMEM_TESTS_TESTING_H_
