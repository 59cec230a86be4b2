// The reclaim loop (see reclaim.h): the account answers with a verdict, this
// layer trims, spills, arbitrates and retries.
#include "allocator/reclaim.h"

#include <sched.h>

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <utility>

#include "allocator/executor.h"
#include "allocator/heap.h"
#include "allocator/report.h"
#include "allocator/runtime.h"
#include "budget/budget.h"
#include "platform/os.h"

namespace execmem {
namespace {

using budget::Shortfall;
using budget::Verdict;

// At most this many other executors are asked to spill per arbitration.
constexpr int kMaxVictims = 64;

// Asks executors above their reservation to spill `need` bytes for `self`,
// largest excess first, never below their reservation. Notes what was asked.
void Arbitrate(ExecutorImpl* self, uint64_t need, ReportBuffer* notes) {
  ExecutorImpl* victims[kMaxVictims];
  uint64_t excess[kMaxVictims];
  int n = 0;
  ForEachExecutor([&](ExecutorImpl* v) {
    if (v == self || n == kMaxVictims) return;
    const uint64_t vfp = v->footprint.load(std::memory_order_relaxed);
    const uint64_t vbase = v->initial + v->overhead;
    if (vfp <= vbase) return;
    v->Ref();
    victims[n] = v;
    excess[n] = vfp - vbase;
    ++n;
  });
  for (int i = 0; i < n; ++i) {
    int best = i;
    for (int j = i + 1; j < n; ++j) {
      if (excess[j] > excess[best]) best = j;
    }
    std::swap(victims[i], victims[best]);
    std::swap(excess[i], excess[best]);
  }
  uint64_t got = 0;
  for (int i = 0; i < n; ++i) {
    if (got < need) {
      const uint64_t asked = std::min(excess[i], need - got);
      notes->len = strlen(notes->buf);
      notes->Add("%sarbitration asked '%s' for %" PRIu64, notes->len ? "; " : "", victims[i]->name,
                 asked);
      got += victims[i]->Spill(asked, nullptr, 0);
      victims[i]->MaybeReleaseGrant(true);
    }
    victims[i]->Unref();
  }
  // Remote frees reach their owners' caches lazily: give them a moment.
  for (int spin = 0; spin < 100 && budget::Unallocated() < need; ++spin) sched_yield();
}

// Writes the out-of-memory report for the verdict that could not be met.
void ReportOutOfMemory(ExecutorImpl* e, const Verdict& v, uint64_t request, const char* notes) {
  e->oom_count.fetch_add(1, std::memory_order_relaxed);
  ReportBuffer r{OomReportBuffer(), kOomReportSize};
  const uint64_t maxb = e->Max();
  const char* why = v.reason == Shortfall::kUsed ? "used would pass max"
                    : v.reason == Shortfall::kFootprint
                        ? "footprint would pass max + overhead"
                        : "the pool has no unreserved capacity left";
  r.Add("execmem: out of memory in executor '%s': request of %" PRIu64
        " bytes refused (%s). used %" PRId64 " / max %" PRIu64 "; footprint %" PRIu64
        " / max+overhead %" PRIu64 " (initial %" PRIu64 ", overhead %" PRIu64
        "); pool unreserved %" PRIu64 ". spill hooks: %s. ",
        e->name, request, why, e->used.load(std::memory_order_relaxed), maxb,
        e->footprint.load(std::memory_order_relaxed), maxb + e->overhead, e->initial, e->overhead,
        budget::Unallocated(),
        notes[0] ? notes : (e->num_hooks ? "none freed memory" : "none registered"));
  if (v.reason == Shortfall::kUsed) {
    r.Add("Live data exceeds max: raise max, spill more, or look for a leak.");
  } else if (v.reason == Shortfall::kFootprint) {
    r.Add("Live data fits but cached/fragmented memory does not: raise overhead.");
  } else {
    r.Add("Other executors hold the pool: raise the pool capacity or lower their budgets.");
  }
  if (internal::GetOomPolicy() == internal::OomPolicy::kAbort) {
    os::WriteStderr(r.buf, r.len);
    os::WriteStderr("\n", 1);
    os::Abort();
  }
}

// Every reclaim step failed: the emergency reserve may still serve a small
// request; otherwise the refusal is reported and the executor enters the
// emergency state (budget/emergency.h), so that the program's failure path
// can allocate. True: charged.
bool RefuseOrServeFromReserve(ExecutorImpl* e, const Verdict& v, uint64_t bytes, uint64_t request,
                              const char* notes) {
  if (e->ChargeEmergency(bytes, request).granted()) return true;
  ReportOutOfMemory(e, v, request, notes);
  e->emergency.Enter();
  return false;
}

}  // namespace

bool ChargeOrReclaim(ExecutorImpl* e, uint64_t bytes, uint64_t request, Heap* heap) {
  bool trimmed = false, spilled = false, arbitrated = false;
  char notes[768];
  ReportBuffer spill_notes{notes, sizeof notes};
  notes[0] = '\0';
  for (;;) {
    const Verdict v = e->Charge(bytes, request);
    switch (v.kind) {
      case Verdict::Kind::kGranted:
        e->Ref();
        return true;
      case Verdict::Kind::kRefused:
        if (!RefuseOrServeFromReserve(e, v, bytes, request, notes)) return false;
        e->Ref();
        return true;
      case Verdict::Kind::kTrimFirst:
        // The executor's own empty spans on this thread (and cached large ones).
        if (!trimmed && heap != nullptr) {
          trimmed = true;
          heap->TrimEmpty();
          continue;
        }
        [[fallthrough]];
      case Verdict::Kind::kSpill:
        break;
    }
    if (!spilled && !InSpillHook()) {
      spilled = true;
      e->Spill(v.bytes, notes, sizeof notes);
      ThreadHeapsSync();
      if (heap != nullptr) heap->TrimEmpty();
      continue;
    }
    if (v.reason == Shortfall::kPool && !arbitrated && !InSpillHook()) {
      arbitrated = true;
      Arbitrate(e, v.bytes, &spill_notes);
      continue;
    }
    if (!RefuseOrServeFromReserve(e, v, bytes, request, notes)) return false;
    e->Ref();
    return true;
  }
}

}  // namespace execmem
