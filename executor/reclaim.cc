// The reclaim loop (see reclaim.h): the account answers with a verdict, this
// layer trims, spills (the executor, its siblings and ancestors, other
// roots), asks a shared pool's other members (executor/shared.h), and retries.
#include "executor/reclaim.h"

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstring>
#include <utility>

#include "budget/budget.h"
#include "cache/cache.h"
#include "executor/executor.h"
#include "executor/report.h"
#include "executor/runtime.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {
namespace {

using budget::Shortfall;
using budget::Verdict;

constexpr auto kRelaxed = std::memory_order_relaxed;

// At most this many executors are asked to spill per arbitration (or per
// level of the tree); children beyond it are not asked.
constexpr int kMaxVictims = 64;

struct Victim {
  ExecutorImpl* e;
  uint64_t share_excess;  // used above its fair share (fair-sharing parents)
  uint64_t excess;        // footprint above its reservation
};

uint64_t Used(const ExecutorImpl* e) {
  const int64_t u = e->account.used.load(kRelaxed);
  return u > 0 ? static_cast<uint64_t>(u) : 0;
}

uint64_t ReservationExcess(const ExecutorImpl* e) {
  const uint64_t fp = e->account.footprint.load(kRelaxed);
  const uint64_t base = e->account.Reservation();
  return fp > base ? fp - base : 0;
}

// Used above its fair share of the parent's max (Account::ShareCap).
uint64_t ShareExcess(const ExecutorImpl* e) {
  const budget::Account* p = e->account.parent;
  if (p == nullptr || !p->fair_shares.load(kRelaxed)) return 0;
  const uint64_t share = e->account.ShareCap();
  const uint64_t u = Used(e);
  return u > share ? u - share : 0;
}

// Above their fair share first, then above their reservation; largest first.
void SortVictims(Victim* v, int n) {
  std::sort(v, v + n, [](const Victim& a, const Victim& b) {
    if (a.share_excess != b.share_excess) return a.share_excess > b.share_excess;
    return a.excess > b.excess;
  });
}

// Asks `victims` (their subtrees) to spill `need` bytes in all, each at most
// its excess; drops their references. Notes "asked 'x' for N".
uint64_t AskVictims(Victim* victims, int n, uint64_t need, const char* what, ReportBuffer* notes) {
  SortVictims(victims, n);
  uint64_t got = 0;
  for (int i = 0; i < n; ++i) {
    const uint64_t excess = std::max(victims[i].share_excess, victims[i].excess);
    if (got < need && excess > 0) {
      const uint64_t asked = std::min(excess, need - got);
      notes->len = strlen(notes->buf);
      notes->Add("%s%s asked '%s' for %s", notes->len ? "; " : "", what, victims[i].e->name,
                 FormatSize(asked).c_str());
      got += SpillSubtree(victims[i].e, asked, nullptr, 0);
      victims[i].e->account.MaybeReleaseGrant(true);
    }
    victims[i].e->Unref();
  }
  return got;
}

// Collects the children of `parent` (null: the roots) but `self` as victims.
int CollectVictims(const ExecutorImpl* parent, const ExecutorImpl* self, Victim* out) {
  ExecutorImpl* kids[kMaxVictims];
  const int total = CollectChildren(parent, kids, kMaxVictims);
  int n = 0;
  for (int i = 0; i < std::min(total, kMaxVictims); ++i) {
    if (kids[i] == self) {
      kids[i]->Unref();
      continue;
    }
    out[n++] = {kids[i], ShareExcess(kids[i]), ReservationExcess(kids[i])};
  }
  return n;
}

// The pool ran out: other roots above their reservation spill, largest
// excess first, never below their reservation.
void Arbitrate(ExecutorImpl* self, uint64_t need, ReportBuffer* notes) {
  ExecutorImpl* root = self;
  while (root->Parent() != nullptr) root = root->Parent();
  Victim victims[kMaxVictims];
  const int n = CollectVictims(nullptr, root, victims);
  for (int i = 0; i < n; ++i) victims[i].share_excess = 0;
  AskVictims(victims, n, need, "arbitration", notes);
  // Remote frees reach their owners' caches lazily: give them a moment.
  for (int spin = 0; spin < 100 && budget::Unallocated() < need; ++spin) os::Yield();
}

// One level up the tree from `node`: its siblings above their share or
// reservation, then the parent's own hooks.
void AskLevel(ExecutorImpl* node, uint64_t need, ReportBuffer* notes) {
  ExecutorImpl* parent = node->Parent();
  Victim victims[kMaxVictims];
  const int n = CollectVictims(parent, node, victims);
  const uint64_t got = AskVictims(victims, n, need, "sibling", notes);
  if (got < need) {
    notes->len = strlen(notes->buf);
    notes->Add("%sparent '%s': ", notes->len ? "; " : "", parent->name);
    const size_t before = notes->len;
    parent->Spill(need - got, notes->buf, notes->cap);
    notes->len = strlen(notes->buf);
    if (notes->len == before) notes->Add("%s", parent->NumHooksUnlocked() ? "none freed" : "no hooks");
  }
  ThreadHeapsSync();
}

// What to do, in the words of who configured the executor: the shim's
// executor by EXECMEM_* (usually with no spill hook: "spill more" means
// nothing to a program run under the preload), others by their API settings.
const char* Advice(const ExecutorImpl* at, Shortfall reason) {
  const bool shim = at->account.is_default;  // the process's executor, configured by EXECMEM_*
  const bool hooks = at->NumHooksUnlocked() > 0;
  switch (reason) {
    case Shortfall::kUsed:
      if (shim) {
        return hooks ? "Raise EXECMEM_MAX, make the spill hooks free more, or look for a leak."
                     : "Raise EXECMEM_MAX or make the program use less memory (or look for a "
                       "leak).";
      }
      return hooks ? "Raise max, make the spill hooks free more, or look for a leak."
                   : "Raise max, add a spill hook, or look for a leak.";
    case Shortfall::kShare:
      return "Spill more, or give the children more than a fair share (turn fair shares off or "
             "raise the parent's max).";
    case Shortfall::kFootprint:
      return shim ? "Live data fits but cached/fragmented memory does not: raise EXECMEM_OVERHEAD."
                  : "Live data fits but cached/fragmented memory does not: raise overhead.";
    case Shortfall::kPool:
      if (budget::shared::ProcessMember() != nullptr) {
        return "Other members hold the shared pool: give it a larger capacity when it is made "
               "(EXECMEM_SHARED_CAPACITY), lower their budgets, or give their executors spill "
               "hooks callable from any thread.";
      }
      break;
    case Shortfall::kNone:
      break;
  }
  return shim ? "Other executors hold the pool: raise EXECMEM_POOL_CAPACITY or lower their budgets."
              : "Other executors hold the pool: raise the pool capacity or lower their budgets.";
}

// EXECMEM_OOM=report writes the first refusal's report only: a program that
// handles refusals (Python's MemoryError, a retry) may be refused thousands
// of times, and one report says what the budget was.
std::atomic<bool> g_oom_reported{false};

// Writes the out-of-memory report for the verdict that could not be met.
void ReportOutOfMemory(ExecutorImpl* e, const Verdict& v, uint64_t request, const char* notes,
                       ChargeFor what) {
  e->account.oom_count.fetch_add(1, kRelaxed);
  ReportBuffer r{ThreadLastError(), kLastErrorSize};
  const ExecutorImpl* at = v.at != nullptr ? AsExecutor(v.at) : e;
  const uint64_t at_max = at->account.Max();
  r.Add("execmem: out of memory in executor '%s': %s of %s (%" PRIu64 " bytes) refused: ", e->name,
        what == ChargeFor::kReservation ? "reservation" : "request", FormatSize(request).c_str(),
        request);
  const char* level = at == e ? "" : " of ancestor '";
  const char* level_end = at == e ? "" : "'";
  if (v.kind == Verdict::Kind::kRefused) {
    if (v.reason == Shortfall::kPool) {
      r.Add("it is larger than the pool's capacity (%s)", FormatSize(pool::Capacity()).c_str());
    } else if (v.reason == Shortfall::kUsed) {
      r.Add("it is larger than the max%s%s%s (%s)", level, at == e ? "" : at->name, level_end,
            FormatSize(at_max).c_str());
    } else {
      r.Add("it needs %s of footprint, more than max + overhead%s%s%s (%s)",
            FormatSize(v.bytes).c_str(), level, at == e ? "" : at->name, level_end,
            FormatSize(at->account.Limit()).c_str());
    }
    r.Add(": it can never fit, so no spill hook was asked. ");
  } else {
    switch (v.reason) {
      case Shortfall::kUsed:
        r.Add("used%s%s%s (%s) plus this request would pass %s (%s)", level,
              at == e ? "" : at->name, level_end, FormatSize(Used(at)).c_str(),
              at->account.is_default ? "EXECMEM_MAX" : "max", FormatSize(at_max).c_str());
        break;
      case Shortfall::kShare:
        r.Add("used of '%s' would pass its fair share of '%s' (%s = 1/%d of its max)", at->name,
              at->Parent()->name, FormatSize(at->account.ShareCap()).c_str(),
              std::max(1, at->Parent()->account.active_children.load(kRelaxed)));
        break;
      case Shortfall::kFootprint:
        r.Add("footprint%s%s%s would pass max + overhead", level, at == e ? "" : at->name,
              level_end);
        break;
      default:
        if (!AddSharedPoolReport(&r, v.bytes)) r.Add("the pool has no unreserved capacity left");
        break;
    }
    r.Add(". ");
  }
  r.Add("used %s / max %s; footprint %s / max+overhead %s (initial %s, overhead %s)",
        FormatSize(Used(e)).c_str(), FormatSize(e->account.Max()).c_str(),
        FormatSize(e->account.footprint.load(kRelaxed)).c_str(),
        FormatSize(e->account.Limit()).c_str(), FormatSize(e->account.Initial()).c_str(),
        FormatSize(e->account.Overhead()).c_str());
  if (at != e) {
    r.Add("; '%s': used %s / max %s, footprint %s / max+overhead %s", at->name,
          FormatSize(Used(at)).c_str(), FormatSize(at_max).c_str(),
          FormatSize(at->account.footprint.load(kRelaxed)).c_str(),
          FormatSize(at->account.Limit()).c_str());
  }
  r.Add("; pool unreserved %s. spill hooks: %s. %s", FormatSize(budget::Unallocated()).c_str(),
        notes[0] ? notes
                 : (v.kind == Verdict::Kind::kRefused ? "not asked"
                    : e->NumHooksUnlocked()           ? "none freed memory"
                                                      : "none registered"),
        Advice(at, v.reason));
  if (what != ChargeFor::kAllocation) return;
  const internal::OomPolicy policy = internal::GetOomPolicy();
  if (policy == internal::OomPolicy::kAbort ||
      (policy == internal::OomPolicy::kReport && !g_oom_reported.exchange(true, kRelaxed))) {
    os::WriteStderr(r.buf, r.len);
    os::WriteStderr("\n", 1);
  }
  if (policy == internal::OomPolicy::kAbort) os::Abort();
}

bool IsAncestorOrSelf(const budget::Account* a, const ExecutorImpl* of) {
  for (const budget::Account* x = &of->account; x != nullptr; x = x->parent) {
    if (x == a) return true;
  }
  return false;
}

// Every reclaim step failed: the emergency reserve may still serve a small
// allocation; otherwise the refusal is reported and the executor enters the
// emergency state (budget/emergency.h), so that the program's failure path
// can allocate. Reservations are never served from it. True: charged.
bool RefuseOrServeFromReserve(ExecutorImpl* e, const Verdict& v, uint64_t bytes, uint64_t request,
                              const char* notes, ChargeFor what) {
  const bool allocation = what == ChargeFor::kAllocation;
  if (allocation && e->account.ChargeEmergency(bytes, request).granted()) return true;
  ReportOutOfMemory(e, v, request, notes, what);
  if (allocation) e->account.emergency.Enter();
  return false;
}

}  // namespace

uint64_t SpillSubtree(ExecutorImpl* e, uint64_t need, char* notes, size_t notes_cap) {
  uint64_t got = e->Spill(need, notes, notes_cap);
  if (got >= need) return got;
  ExecutorImpl* kids[kMaxVictims];
  const int n = std::min(CollectChildren(e, kids, kMaxVictims), kMaxVictims);
  std::sort(kids, kids + n,
            [](const ExecutorImpl* a, const ExecutorImpl* b) { return Used(a) > Used(b); });
  for (int i = 0; i < n; ++i) {
    if (got < need) got += SpillSubtree(kids[i], need - got, notes, notes_cap);
    kids[i]->Unref();
  }
  return got;
}

namespace {

// The cache's Reclaimer (cache/tenant.h): every Tenant is an ExecutorImpl.
class ReclaimLoop final : public Reclaimer {
 public:
  constexpr ReclaimLoop() = default;
  bool Charge(Tenant* t, uint64_t bytes, uint64_t request, Heap* heap, ChargeFor what) override;
  Tenant* DefaultTenant() override { return DefaultExecutor(); }
  void Release(Tenant* t) override { AsExecutor(t)->Release(); }
};

constinit ReclaimLoop g_reclaim_loop;

}  // namespace

constinit Reclaimer* g_reclaimer = &g_reclaim_loop;

bool ReclaimLoop::Charge(Tenant* t, uint64_t bytes, uint64_t request, Heap* heap, ChargeFor what) {
  ExecutorImpl* e = AsExecutor(t);
  bool trimmed = false, spilled = false, arbitrated = false, asked = false;
  // Levels up to `climbed` were asked (siblings, then the parent's hooks).
  ExecutorImpl* climbed = e;
  char notes[768];
  ReportBuffer spill_notes{notes, sizeof notes};
  notes[0] = '\0';
  for (;;) {
    const Verdict v = e->account.Charge(bytes, request);
    switch (v.kind) {
      case Verdict::Kind::kGranted:
        e->Ref();
        return true;
      case Verdict::Kind::kRefused:
        if (!RefuseOrServeFromReserve(e, v, bytes, request, notes, what)) return false;
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
    if (!InSpillHook()) {
      if (!spilled) {
        spilled = true;
        e->Spill(v.bytes, notes, sizeof notes);
        ThreadHeapsSync();
        if (heap != nullptr) heap->TrimEmpty();
        continue;
      }
      // The shortfall is an ancestor's: climb one level towards it.
      if (v.at != &e->account && v.at != &climbed->account && climbed->Parent() != nullptr &&
          IsAncestorOrSelf(v.at, climbed->Parent())) {
        AskLevel(climbed, v.bytes, &spill_notes);
        climbed = climbed->Parent();
        continue;
      }
      if (v.reason == Shortfall::kPool && !arbitrated) {
        arbitrated = true;
        Arbitrate(e, v.bytes, &spill_notes);
        continue;
      }
      // A shared pool's member: the other members are asked last, and the
      // asker waits for them (executor/shared.h).
      if (v.reason == Shortfall::kPool && !asked) {
        asked = true;
        if (AskSharedPool(v.bytes, &spill_notes)) continue;
      }
    }
    if (!RefuseOrServeFromReserve(e, v, bytes, request, notes, what)) return false;
    e->Ref();
    return true;
  }
}

}  // namespace execmem
