// Fixtures shared by the unit tests: whether this is a sanitizer build, and
// guards that put process-wide settings (decay, capacity) back.
#ifndef EXECMEM_TESTS_TESTING_H_
#define EXECMEM_TESTS_TESTING_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "budget/budget.h"
#include "execmem.h"
#include "execmem.hpp"
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

// EXECMEM_DECAY_MS's default (api/options.cc); tests put it back.
inline constexpr uint64_t kDefaultDecayMs = 5000;
inline constexpr uint64_t kHour = 3'600'000;

// An executor's configuration with quotas far above what a unit test
// allocates (16 MiB initial, 256 MiB max).
inline ExecutorConfig RoomyConfig(std::string name) {
  ExecutorConfig config;
  config.name = std::move(name);
  config.initial = "16m";
  config.max = "256m";
  return config;
}

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

// An executor's stats through the C API.
inline execmem_pool_stats_t PoolStats() {
  execmem_pool_stats_t s;
  execmem_pool_stats(&s);
  return s;
}

inline execmem_executor_stats_t StatsOf(execmem_executor_t* e) {
  execmem_executor_stats_t s;
  execmem_executor_stats(e, &s);
  return s;
}

// What the pool and the ledger still hold once everything was freed and
// trimmed: "" when the pool holds no byte (none cached), the ledger has no
// reservation or grant, and the pool's bitmaps are consistent.
inline std::string LeftInPoolAndLedger() {
  const PoolCounters c = pool::Counters();
  const budget::LedgerCounters l = budget::Counters();
  std::string left;
  if (c.held != 0 || c.cached != 0) {
    left += "the pool still holds " + std::to_string(c.held) + " bytes (" +
            std::to_string(c.cached) + " cached); ";
  }
  if (l.reserved != 0 || l.granted != 0) {
    left += "the ledger still has " + std::to_string(l.reserved) + " reserved, " +
            std::to_string(l.granted) + " granted; ";
  }
  if (!pool::IsValid()) left += "the pool's bitmaps are inconsistent; ";
  return left;
}

// n spans of `pages` pool pages each taken from the pool and freed at once,
// so that the pool caches them (the cache bound's tests): false if the pool
// refused one (what was taken is freed all the same).
inline bool CacheFreedSpans(int n, uint32_t pages) {
  std::vector<PoolPage*> spans;
  bool ok = true;
  for (int i = 0; i < n && ok; ++i) {
    bool zeroed = false;
    PoolPage* p = pool::AllocSpan(pages, &zeroed);
    ok = p != nullptr;
    if (ok) spans.push_back(p);
  }
  for (PoolPage* p : spans) pool::FreeSpan(p);
  return ok;
}

// A run of `pages` pages taken from the pool and freed, so that the pool
// caches it, while the one-page span taken right after it (the fence,
// returned) stays held: the run cannot join free pages past it, so it serves
// no longer request. nullptr if the pool refused either (what was taken is
// freed). The caller frees the fence.
inline PoolPage* CacheRunBeforeFence(uint32_t pages) {
  bool zeroed = false;
  PoolPage* run = pool::AllocSpan(pages, &zeroed);
  PoolPage* fence = pool::AllocSpan(1, &zeroed);  // the run ends here
  if (run != nullptr) pool::FreeSpan(run);
  if (run == nullptr && fence != nullptr) {
    pool::FreeSpan(fence);
    fence = nullptr;
  }
  return fence;
}

}  // namespace execmem::test_support

#endif  // EXECMEM_TESTS_TESTING_H_
