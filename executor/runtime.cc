// Process-level controls (executor/runtime.h).
#include "executor/runtime.h"

#include <atomic>

#include "budget/budget.h"
#include "cache/cache.h"
#include "executor/config.h"
#include "executor/executor.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem::internal {
namespace {
std::atomic<OomPolicy> g_oom_policy{OomPolicy::kReturnNull};
}  // namespace

void SetOomPolicy(OomPolicy policy) { g_oom_policy.store(policy, std::memory_order_relaxed); }
OomPolicy GetOomPolicy() { return g_oom_policy.load(std::memory_order_relaxed); }

Status ConfigureDefaultExecutor(uint64_t initial, uint64_t max, uint64_t overhead) {
  ExecutorImpl* e = DefaultExecutor();
  if (initial > max) {
    return config::InvalidArgument("initial " + config::FormatBytes(initial) + " is above max " +
                                   config::FormatBytes(max));
  }
  if (max > pool::Capacity()) {
    return config::InvalidArgument("max " + config::FormatBytes(max) +
                                   " is above the pool capacity " +
                                   config::FormatBytes(pool::Capacity()));
  }
  // Only the difference moves in the ledger: giving the old reservation back
  // first would let another executor take it, and then neither the new nor
  // the old one could be had again.
  const uint64_t old_reservation = e->account.initial + e->account.overhead;
  const uint64_t new_reservation = initial + overhead;
  test_hook::At(test_hook::Point::kConfigureBeforeReserve);
  if (new_reservation > old_reservation) {
    // What was granted for allocations made before this (the program's and
    // the shim's own, at start-up) counts toward the reservation: a default
    // initial capped to the pool's capacity was refused for it until
    // 2026-12-08 (EXECMEM_POOL_CAPACITY=1g alone: "cannot reserve initial +
    // overhead 1 GiB").
    const uint64_t delta = new_reservation - old_reservation;
    const uint64_t covered = e->account.GrantToReservation(delta);
    if (covered < delta && !budget::Reserve(delta - covered)) {
      e->account.ReservationToGrant(covered);
      return Status(ENOMEM, "cannot reserve initial + overhead " +
                                config::FormatBytes(new_reservation) + " from the pool");
    }
  } else {
    budget::Unreserve(old_reservation - new_reservation);
  }
  // Charge may read these on other threads meanwhile (budget.h: atomics).
  e->account.initial = initial;
  e->account.max = max;
  e->account.overhead = overhead;
  // Growth granted before the reservation existed (allocations made before
  // start-up configuration) is now covered by it: hand it back.
  e->account.MaybeReleaseGrant(true);
  RefreshBudgetLimit();
  return Status();
}

Status SetPoolCapacity(uint64_t bytes) {
  if (!budget::SetCapacity(bytes)) {
    return config::InvalidArgument("pool capacity " + config::FormatBytes(bytes) +
                                   " is below what executors have reserved");
  }
  return Status();
}

uint64_t PoolCapacity() { return pool::Capacity(); }

uint64_t DefaultPoolCapacity() { return pool::DefaultCapacity(); }

void SetDecayMilliseconds(uint64_t ms) { pool::SetDecayMs(ms); }

void SetHugePages(bool on) { pool::SetHugePages(on); }

void SetEmergencyReserve(uint64_t bytes) { budget::SetEmergencyReserve(bytes); }

// Lock order: registry, heaps (orphanage), the ring of freed huge blocks
// (large.cc), meta, pool growth.
void ForkPrepare() {
  LockRegistryForFork();
  LockHeapsForFork();
  LockChecksForFork();
  MetaLockForFork();
  pool::LockForFork();
}

void ForkParent() {
  pool::UnlockAfterFork(false);
  MetaUnlockAfterFork(false);
  UnlockChecksAfterFork(false);
  UnlockHeapsAfterFork(false);
  UnlockRegistryAfterFork(false);
}

void ForkChild() {
  pool::UnlockAfterFork(true);
  MetaUnlockAfterFork(true);
  UnlockChecksAfterFork(true);
  UnlockHeapsAfterFork(true);
  UnlockRegistryAfterFork(true);
}

const char* LastOomReport() { return ThreadLastError(); }

}  // namespace execmem::internal
