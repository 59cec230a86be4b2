// The cache of committed free pages: its size bound, its decay curve, the
// purge and the background purger. See pool.h for the policy and arena.h for
// the protocol; pages are decommitted through arena.cc, whose table and
// counters this file reads, and nothing here calls into pool.cc.
//
// A purge builds a histogram of the cached pages by age (log2 buckets of
// milliseconds), decides how many pages may stay — at most the size bound
// and, when decaying, Σ pages × keep(age) with keep(a) = 1 - smoothstep(a /
// decay) — and takes the rest oldest bucket first. It claims the chosen pages
// in the free bitmap like an allocation would (so no thread can be handed a
// page while it is being madvised), decommits them, clears their dirty bits
// and releases them. One purge runs at a time (g_purge_lock, taken with a
// try-lock: a thread that finds a purge running goes on, and that purge does
// its work too; see g_keep_asked).
#include <algorithm>

#include "platform/os.h"
#include "pool/arena.h"
#include "pool/pool.h"
#include "pool/pool_internal.h"

namespace execmem::pool {

// ---- the cache bound (pool.h) ----

std::atomic<uint64_t> g_decay_ms{kDefaultDecayMs};

namespace {

// The recent peak of the bytes in use (pool.h, the cache bound): the highest
// value frees have seen in the current window and in the one before, a window
// ending when frees of kPeakMemory times the recent peak went by. Counted in
// bytes freed, not in time, so that it does not depend on how fast the
// program runs (the decay curve gives back, by age, what an idle program
// keeps). A peak is forgotten one to two windows after it was last reached,
// and the bound then falls to the highest value of the last whole window.
// (With one window, a forgotten peak fell to the in-use of that moment, often
// a trough of a churn: the bound fell with it, and the next requests refaulted
// what the purge took; docs/large-blocks.md, 2026-12-07.) A hint: racing
// frees may lose an update, which only moves the bound by a span.
std::atomic<uint64_t> g_peak_now{0};
std::atomic<uint64_t> g_peak_before{0};
std::atomic<uint64_t> g_freed_in_window{0};

uint64_t RecentPeak() {
  return std::max(g_peak_now.load(std::memory_order_relaxed),
                  g_peak_before.load(std::memory_order_relaxed));
}

std::atomic<uint64_t> g_budget_limit{UINT64_MAX};
std::atomic<uint64_t> g_last_purge_ms{0};  // the last decay of MaybePurge

}  // namespace

std::atomic<uint64_t> g_huge_cached{0};

namespace {

uint64_t InUse() {
  const uint64_t held = g_held.load(std::memory_order_relaxed);
  const uint64_t cached =
      g_cached.load(std::memory_order_relaxed) + g_huge_cached.load(std::memory_order_relaxed);
  return held > cached ? held - cached : 0;
}

}  // namespace

void NoteInUse(uint64_t bytes) {
  const uint64_t in_use = InUse();
  if (in_use > g_peak_now.load(std::memory_order_relaxed))
    g_peak_now.store(in_use, std::memory_order_relaxed);
  if (g_freed_in_window.fetch_add(bytes, std::memory_order_relaxed) + bytes <=
      kPeakMemory * RecentPeak()) {
    return;
  }
  g_freed_in_window.store(0, std::memory_order_relaxed);
  g_peak_before.store(g_peak_now.load(std::memory_order_relaxed), std::memory_order_relaxed);
  g_peak_now.store(in_use, std::memory_order_relaxed);
}

Bounds CacheBounds() {
  const uint64_t in_use = InUse();
  const uint64_t limit = g_budget_limit.load(std::memory_order_relaxed);
  const uint64_t headroom = limit > in_use ? limit - in_use : 0;
  const uint64_t floor = kCacheTarget > in_use / 4 ? kCacheTarget - in_use / 4 : 0;
  const uint64_t sized = std::max(floor, in_use / kCacheShare);
  // Up to the recent peak and a little over it (what fragmentation costs: a
  // freed run of another length serves a request only with fresh pages
  // beside it): the program has just shown that it needs that much committed,
  // and what it frees below the peak serves its next requests.
  const uint64_t peak = RecentPeak();
  const uint64_t top = peak + peak / kPeakSlack;
  const uint64_t refill = top > in_use ? top - in_use : 0;
  const uint64_t by_size = std::max(kCacheMin, std::min(sized, headroom));
  const uint64_t by_peak = std::min(refill, headroom);
  return {std::max(by_size, by_peak),
          std::max(by_size - std::min(by_size / 4, kCacheTarget / 4), by_peak)};
}

// The highest committed heap (g_held) an allocation of fresh pages has left:
// past it, AllocSpan (pool.cc) gives back as many of the oldest cached pages
// as it took fresh ones for a request of at most kHighWaterMaxPages (2 MiB).
// A hint: racing allocations may lose an update.
std::atomic<uint64_t> g_held_high{0};

namespace {
// How far the committed heap is past its high-water mark.
uint64_t HeldOverHigh() {
  const uint64_t held = g_held.load(std::memory_order_relaxed);
  const uint64_t high = g_held_high.load(std::memory_order_relaxed);
  return held > high ? held - high : 0;
}
}  // namespace

uint64_t KeepPastHighWater(uint64_t cached) {
  const uint64_t over = HeldOverHigh();
  return cached > over ? cached - over : 0;
}

void NoteHeldHigh() {
  const uint64_t held = g_held.load(std::memory_order_relaxed);
  if (held > g_held_high.load(std::memory_order_relaxed))
    g_held_high.store(held, std::memory_order_relaxed);
}

// ---- freed huge mappings (pool_internal.h) ----

namespace {

struct HugeKept {
  uintptr_t base;  // 0: an empty slot
  uint64_t bytes;
  uint64_t freed_ms;
  // 0: a whole freed mapping. Else the rest of a kept mapping whose front a
  // huge block took: the base of that block, the only one that may grow over
  // it (TakeHugeMappingAt), for only it is sure to share its mapping (mremap
  // cannot grow or move a range that spans two mappings). A rest whose block
  // moved, shrank or went away is given back (DropRestsLocked), so that no
  // other block placed at the same base finds it.
  uintptr_t rest_of;
};
SpinLock g_huge_lock;  // after g_purge_lock when both are held
HugeKept g_huge_kept[kHugeKept] ABSL_GUARDED_BY(g_huge_lock);

void GiveBackTailLocked(HugeKept& k, uint64_t bytes);

// Gives back the rests of block `block`'s mapping that start at or after
// `from` (a gap or another mapping is now before them).
void DropRestsLocked(uintptr_t block, uintptr_t from) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_huge_lock) {
  for (HugeKept& k : g_huge_kept) {
    if (k.base != 0 && k.rest_of == block && k.base >= from) GiveBackTailLocked(k, k.bytes);
  }
}

// Unmaps the last `bytes` of slot k (all of it when they are its bytes), and
// the rests that followed it.
void GiveBackTailLocked(HugeKept& k, uint64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_huge_lock) {
  bytes = std::min(bytes, k.bytes);
  if (bytes == 0) return;
  os::Unmap(reinterpret_cast<void*>(k.base + k.bytes - bytes), bytes);
  const uintptr_t end = k.base + k.bytes;
  const uintptr_t block = k.rest_of != 0 ? k.rest_of : k.base;
  k.bytes -= bytes;
  if (k.bytes == 0) k.base = 0;
  g_huge_cached.fetch_sub(bytes, std::memory_order_relaxed);
  g_held.fetch_sub(bytes, std::memory_order_relaxed);
  g_mapped.fetch_sub(bytes, std::memory_order_relaxed);
  g_returned.fetch_add(bytes, std::memory_order_relaxed);
  DropRestsLocked(block, end);
}

// Gives back up to `bytes`, the oldest slot first.
void GiveBackHugeLocked(uint64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_huge_lock) {
  while (bytes != 0) {
    HugeKept* oldest = nullptr;
    for (HugeKept& k : g_huge_kept) {
      if (k.base != 0 && (oldest == nullptr || k.freed_ms < oldest->freed_ms)) oldest = &k;
    }
    if (oldest == nullptr) return;
    const uint64_t n = std::min(bytes, oldest->bytes);
    GiveBackTailLocked(*oldest, n);
    bytes -= n;
  }
}

void GiveBackAllHuge() {
  if (g_huge_cached.load(std::memory_order_relaxed) == 0) return;
  SpinLockHolder hold(g_huge_lock);
  GiveBackHugeLocked(UINT64_MAX);
}

// The decay of the huge cache: a slot freed a decay time ago goes back whole.
void DecayHuge() {
  if (g_huge_cached.load(std::memory_order_relaxed) == 0) return;
  const uint64_t now = os::NowMs();
  const uint64_t decay = g_decay_ms.load(std::memory_order_relaxed);
  SpinLockHolder hold(g_huge_lock);
  for (HugeKept& k : g_huge_kept) {
    if (k.base != 0 && now - k.freed_ms >= decay) GiveBackTailLocked(k, k.bytes);
  }
}

}  // namespace

bool KeepHugeMapping(uintptr_t base, uint64_t bytes) {
  if (g_decay_ms.load(std::memory_order_relaxed) == 0) return false;
  NoteInUse(bytes);  // the block was in use until now: the bound's recent peak
  // Within the cache bound, the page cache and the kept mappings together
  // (the budget limit caps the bound: a kept mapping is memory the budgets
  // allow, as a cached page is). The mapping, freed last, is kept before the
  // oldest cached pages: they go back to make room for it (execmem-wl-largebuf:
  // 121 MiB of its churn's spans cached when the chain's 257 MiB are freed,
  // under a bound of 314). Counted first, so that the bound sees the block
  // out of use; taken back if refused.
  const uint64_t kept = g_huge_cached.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  const auto refuse = [bytes] {
    g_huge_cached.fetch_sub(bytes, std::memory_order_relaxed);
    return false;
  };
  const uint64_t bound = CacheBounds().bound;
  if (kept > bound) return refuse();
  if (g_cached.load(std::memory_order_relaxed) + kept > bound) PurgeOldest(bound - kept, /*decay=*/false);
  if (g_cached.load(std::memory_order_relaxed) + kept > bound) return refuse();
  SpinLockHolder hold(g_huge_lock);
  HugeKept* slot = nullptr;
  for (HugeKept& k : g_huge_kept) {
    if (k.base == 0) {
      slot = &k;
      break;
    }
  }
  if (slot == nullptr) return refuse();
  *slot = {base, bytes, os::NowMs(), 0};
  if (!g_purger_wanted.load(std::memory_order_relaxed) && !PurgerTried()) {
    g_purger_wanted.store(true, std::memory_order_relaxed);
  }
  return true;
}

uintptr_t TakeHugeMapping(uint64_t bytes, uint64_t align) {
  if (g_huge_cached.load(std::memory_order_relaxed) < bytes) return 0;
  SpinLockHolder hold(g_huge_lock);
  HugeKept* best = nullptr;
  for (HugeKept& k : g_huge_kept) {
    // Whole freed mappings only: their first bytes are a huge block's header
    // region (no user bytes where the page map's descriptors are read: a
    // rest's front held the last block's data).
    if (k.base == 0 || k.rest_of != 0 || k.bytes < bytes || k.base % align != 0) continue;
    if (best == nullptr || k.bytes < best->bytes) best = &k;
  }
  if (best == nullptr) return 0;
  const uintptr_t base = best->base;
  best->base += bytes;
  best->bytes -= bytes;
  best->rest_of = base;
  if (best->bytes == 0) best->base = 0;
  g_huge_cached.fetch_sub(bytes, std::memory_order_relaxed);
  return base;
}

bool TakeHugeMappingAt(uintptr_t block, uintptr_t at, uint64_t bytes) {
  if (g_huge_cached.load(std::memory_order_relaxed) == 0) return false;
  SpinLockHolder hold(g_huge_lock);
  for (HugeKept& k : g_huge_kept) {
    if (k.base != at || k.rest_of != block) continue;
    if (k.bytes < bytes) {
      GiveBackTailLocked(k, k.bytes);
      return false;
    }
    k.base += bytes;
    k.bytes -= bytes;
    if (k.bytes == 0) k.base = 0;
    g_huge_cached.fetch_sub(bytes, std::memory_order_relaxed);
    return true;
  }
  return false;
}

void DropHugeRests(uintptr_t block) {
  if (g_huge_cached.load(std::memory_order_relaxed) == 0) return;
  SpinLockHolder hold(g_huge_lock);
  DropRestsLocked(block, 0);
}

void GiveBackHugePastHighWater() {
  if (g_huge_cached.load(std::memory_order_relaxed) == 0) return;
  SpinLockHolder hold(g_huge_lock);
  GiveBackHugeLocked(HeldOverHigh());
}

void SetDecayMs(uint64_t ms) { g_decay_ms.store(ms, std::memory_order_relaxed); }

void SetBudgetLimit(uint64_t bytes) { g_budget_limit.store(bytes, std::memory_order_relaxed); }

void ForgetPeak() {
  g_peak_now.store(0, std::memory_order_relaxed);
  g_peak_before.store(0, std::memory_order_relaxed);
  g_freed_in_window.store(0, std::memory_order_relaxed);
  g_held_high.store(g_held.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

uint64_t CacheBound() { return CacheBounds().bound; }

// ---- the purge and the purger thread ----

std::atomic<bool> g_purger_wanted{false};

namespace {

constexpr int kBuckets = 33;  // floor(log2(age_ms + 1)) for 32-bit ages
constexpr uint64_t kPurgerMaxSleepMs = 1000;
constexpr uint64_t kPurgerMinSleepMs = 10;

SpinLock g_purge_lock;
// 0: no purger thread; 1: running; 2: could not be started (decay then runs
// from the allocation slow path only).
std::atomic<int> g_purger_state{0};

int BucketOf(uint32_t age) { return 63 - __builtin_clzll(uint64_t{age} + 1); }

// Share of the pages of bucket k that the decay curve keeps.
double KeepShare(int k, uint64_t decay_ms) {
  if (decay_ms == 0) return 0;
  const double mid = 1.5 * static_cast<double>(uint64_t{1} << k) - 1;
  const double x = std::min(1.0, mid / static_cast<double>(decay_ms));
  return 1 - x * x * (3 - 2 * x);
}

// Candidate pages of word w of an arena: dirty free pages of a bucket above
// `cutoff`, and of bucket `cutoff` while *quota lasts.
uint64_t Candidates(const ArenaMeta* m, uint32_t w, uint32_t now, int cutoff, uint64_t* quota) {
  const uint64_t d =
      m->dirty[w].load(std::memory_order_relaxed) & m->free[w].load(std::memory_order_relaxed);
  uint64_t out = 0;
  for (uint64_t bits = d; bits != 0; bits &= bits - 1) {
    const uint32_t bit = static_cast<uint32_t>(__builtin_ctzll(bits));
    const int b = BucketOf(now - m->freed_at[w * 64 + bit].load(std::memory_order_relaxed));
    if (b > cutoff || (b == cutoff && *quota > 0)) {
      if (b == cutoff) --*quota;
      out |= uint64_t{1} << bit;
    }
  }
  return out;
}

// Claims the pages of word w among `cand` that are still free (clears their
// free bits: no thread is handed them until they are set again); returns them.
uint64_t ClaimFree(ArenaMeta* m, uint32_t w, uint64_t cand) {
  uint64_t cur = m->free[w].load(std::memory_order_relaxed);
  uint64_t claimed;
  do {
    claimed = cur & cand;
    if (claimed == 0) return 0;
  } while (!m->free[w].compare_exchange_weak(cur, cur & ~claimed, std::memory_order_acq_rel,
                                             std::memory_order_relaxed));
  return claimed;
}

// Claims, decommits and releases the candidate pages of word w; returns how
// many were decommitted.
uint32_t PurgeWord(uintptr_t base, ArenaMeta* m, uint32_t w, uint64_t cand) {
  const uint64_t claimed = ClaimFree(m, w, cand);
  if (claimed == 0) return 0;
  // Owner of `claimed` now; of these, the dirty ones hold memory.
  const uint64_t dirty = m->dirty[w].fetch_and(~claimed, std::memory_order_relaxed) & claimed;
  uint32_t n = static_cast<uint32_t>(__builtin_popcountll(dirty));
  if (n != 0) {
    m->dirty_pages.fetch_sub(n, std::memory_order_relaxed);
    g_cached.fetch_sub(uint64_t{n} << kPageShift, std::memory_order_relaxed);
    // One madvise per contiguous run of the word.
    uint64_t kept = 0;  // runs the OS refused to decommit: still committed
    ForEachRunOfWord(dirty, [&](uint32_t lo, uint32_t len) {
      if (!DecommitPages(base, w * 64 + lo, len)) kept |= RunMask(lo, len, 0);
      return true;
    });
    if (kept != 0) {  // back in the cache, with their old free times
      const uint32_t k = static_cast<uint32_t>(__builtin_popcountll(kept));
      m->dirty[w].fetch_or(kept, std::memory_order_relaxed);
      m->dirty_pages.fetch_add(k, std::memory_order_relaxed);
      g_cached.fetch_add(uint64_t{k} << kPageShift, std::memory_order_relaxed);
      n -= k;
    }
  }
  m->free[w].fetch_or(claimed, std::memory_order_release);
  return n;
}

// The cached pages by age bucket; returns how many there are.
uint64_t AgeHistogram(uint32_t now, uint64_t* hist) {
  const uint32_t count = g_arena_count.load(std::memory_order_acquire);
  uint64_t total = 0;
  for (uint32_t id = 0; id < count; ++id) {
    const ArenaMeta* m = MetaOfArena(g_arenas[id].load(std::memory_order_acquire));
    if (m->dirty_pages.load(std::memory_order_relaxed) == 0) continue;
    for (uint32_t w = 0; w < kWords; ++w) {
      const uint64_t d =
          m->dirty[w].load(std::memory_order_relaxed) & m->free[w].load(std::memory_order_relaxed);
      for (uint64_t bits = d; bits != 0; bits &= bits - 1) {
        const uint32_t i = w * 64 + static_cast<uint32_t>(__builtin_ctzll(bits));
        ++hist[BucketOf(now - m->freed_at[i].load(std::memory_order_relaxed))];
        ++total;
      }
    }
  }
  return total;
}

// The oldest `need` pages of the histogram: whole buckets above *cutoff, and
// the returned quota of bucket *cutoff.
uint64_t OldestCutoff(const uint64_t* hist, uint64_t need, int* cutoff) {
  int c = kBuckets - 1;
  uint64_t rest = need;
  while (c > 0 && hist[c] < rest) rest -= hist[c--];
  *cutoff = c;
  return std::min(rest, hist[c]);
}

void JoinMappingsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_purge_lock);
uint32_t g_edges ABSL_GUARDED_BY(g_purge_lock) = 0;  // Σ popcount(ArenaMeta::edges)

void PurgeOldestLocked(uint64_t keep, bool decay) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_purge_lock) {
  const uint32_t now = Clock32();
  const uint32_t count = g_arena_count.load(std::memory_order_acquire);
  uint64_t hist[kBuckets] = {};
  const uint64_t total = AgeHistogram(now, hist);
  uint64_t target = std::min<uint64_t>(total, keep >> kPageShift);
  if (decay) {
    const uint64_t decay_ms = g_decay_ms.load(std::memory_order_relaxed);
    double allowed = 0;
    for (int k = 0; k < kBuckets; ++k)
      allowed += static_cast<double>(hist[k]) * KeepShare(k, decay_ms);
    target = std::min(target, static_cast<uint64_t>(allowed + 0.5));
  }
  uint64_t need = total - target;
  if (need == 0) return;
  // Oldest buckets first: whole buckets above the cutoff, part of the cutoff.
  int cutoff = 0;
  uint64_t quota = OldestCutoff(hist, need, &cutoff);
  for (uint32_t id = 0; id < count && need > 0; ++id) {
    const uintptr_t base = g_arenas[id].load(std::memory_order_acquire);
    ArenaMeta* m = MetaOfArena(base);
    if (m->dirty_pages.load(std::memory_order_relaxed) == 0) continue;
    for (uint32_t w = 0; w < kWords && need > 0; ++w) {
      const uint64_t cand = Candidates(m, w, now, cutoff, &quota);
      if (cand == 0) continue;
      const uint32_t n = PurgeWord(base, m, w, cand);
      need = n >= need ? 0 : need - n;
    }
  }
  // The runs the purge left uncommitted join their mappings again, before
  // moves must wait for it (MoveOldestInto joins at the bound itself).
  if (g_edges > g_max_move_edges.load(std::memory_order_relaxed) / 2) JoinMappingsLocked();
}

// Size-bound purges asked while another thread held g_purge_lock: the lowest
// `keep` asked (kNoneAsked: none). Whoever holds the lock runs them before it
// lets go for good (UnlockAndRunAsked), so a thread that passes the bound while another
// purges goes on instead of waiting (a madvise of a multi-threaded process
// waits for the other CPUs' TLB flushes: 0.02-12 ms each under load; a
// randorder-mt run's threads waited up to 20 yields and a futex wait for each
// other's purges, docs/performance.md). No request is lost: the asker publishes its keep and
// then tries the lock; the holder lets go and then looks for requests; the
// seq_cst fences between make at least one of them see the other.
constexpr uint64_t kNoneAsked = UINT64_MAX;
std::atomic<uint64_t> g_keep_asked{kNoneAsked};
// Set by the purger thread from before it tries g_purge_lock until after it
// let go: a size-bound purge that finds the purger purging waits for it as
// before (the purger is the only other holder of a single-threaded program,
// whose purges stay synchronous: tests read the counters right after).
std::atomic<bool> g_purger_holds{false};

// A release write even when a lower keep is asked already: the holder's
// acquire exchange (RunAskedLocked) then sees this thread's frees — the pages'
// bits and g_cached — whichever asker's value it reads (the asks are one
// release sequence of read-modify-writes). Relaxed, a weakly ordered CPU
// (aarch64) could show the holder the ask before the frees: it would find
// g_cached <= keep, or miss the pages, and drop the request.
void AskKeep(uint64_t keep) {
  uint64_t cur = g_keep_asked.load(std::memory_order_relaxed);
  while (!g_keep_asked.compare_exchange_weak(cur, std::min(cur, keep), std::memory_order_release,
                                             std::memory_order_relaxed)) {
  }
}

// Runs the size-bound purge asked of the holder (if any). Under the lock.
void RunAskedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_purge_lock) {
  const uint64_t keep = g_keep_asked.exchange(kNoneAsked, std::memory_order_acquire);
  if (keep != kNoneAsked && g_cached.load(std::memory_order_relaxed) > keep) {
    PurgeOldestLocked(keep, /*decay=*/false);
  }
}

// Runs what was asked of the holder, lets go of g_purge_lock, then runs what
// was asked meanwhile for as long as the lock can be had (a holder that
// cannot have it runs it itself). Every holder lets go through this.
void UnlockAndRunAsked() ABSL_UNLOCK_FUNCTION(g_purge_lock) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (;;) {
    RunAskedLocked();
    g_purge_lock.Unlock();
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (g_keep_asked.load(std::memory_order_relaxed) == kNoneAsked || !g_purge_lock.TryLock()) {
      return;
    }
  }
}

void* PurgerMain(void*) {
  for (;;) {
    const uint64_t decay = g_decay_ms.load(std::memory_order_relaxed);
    os::SleepMs(std::clamp(decay / 8, kPurgerMinSleepMs, kPurgerMaxSleepMs));
    DecayHuge();
    if (g_cached.load(std::memory_order_relaxed) == 0) continue;
    g_purger_holds.store(true, std::memory_order_seq_cst);
    if (g_purge_lock.TryLock()) {
      PurgeOldestLocked(CacheBound(), /*decay=*/true);
      UnlockAndRunAsked();
    }
    g_purger_holds.store(false, std::memory_order_seq_cst);
  }
}

}  // namespace

void PurgeOldest(uint64_t keep, bool decay) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (!decay && g_cached.load(std::memory_order_relaxed) <= keep) return;
  if (decay) {
    // Decay is never urgent: a purge already running does the work.
    if (!g_purge_lock.TryLock()) return;
    PurgeOldestLocked(keep, decay);
  } else {
    // The size bound is a promise: kept by this thread, or by the allocating
    // thread that purges now, before it lets go. Only the purger's decay is
    // waited for (rare: a purge every decay / 8).
    bool held = g_purge_lock.TryLock();
    while (!held && g_purger_holds.load(std::memory_order_seq_cst)) {
      os::Yield();
      held = g_purge_lock.TryLock();
    }
    if (!held) {
      AskKeep(keep);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (!g_purge_lock.TryLock()) return;
    }
    test_hook::At(test_hook::Point::kPurgeBoundLocked);
    PurgeOldestLocked(keep, decay);
  }
  UnlockAndRunAsked();
}

void Purge(bool all) {
  if (!all) {
    DecayHuge();
    PurgeOldest(CacheBound(), /*decay=*/true);
    return;
  }
  // Everything: wait for a running purge rather than skip.
  GiveBackAllHuge();
  g_purge_lock.Lock();
  PurgeOldestLocked(0, /*decay=*/false);
  UnlockAndRunAsked();
}

void MaybePurge() {
  if (PurgerRunning()) return;
  const uint64_t decay = g_decay_ms.load(std::memory_order_relaxed);
  const uint64_t interval = std::max<uint64_t>(decay / 8, 10);
  const uint64_t now = os::NowMs();
  uint64_t last = g_last_purge_ms.load(std::memory_order_relaxed);
  if (now - last < interval) return;
  if (!g_last_purge_ms.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
  DecayHuge();
  PurgeOldest(CacheBound(), /*decay=*/true);
}

void StartPurger() {
  bool wanted = true;
  if (!g_purger_wanted.compare_exchange_strong(wanted, false, std::memory_order_relaxed)) return;
  int state = 0;
  if (!g_purger_state.compare_exchange_strong(state, 1, std::memory_order_relaxed)) return;
  if (!os::StartDetachedThread(&PurgerMain, nullptr)) {
    g_purger_state.store(2, std::memory_order_relaxed);
  }
}

bool PurgerRunning() { return g_purger_state.load(std::memory_order_relaxed) == 1; }
bool PurgerTried() { return g_purger_state.load(std::memory_order_relaxed) != 0; }

// ---- moving cached pages (pool_internal.h) ----

std::atomic<bool> g_moves_on{true};  // SetPageMoves; false for good after a refusal
std::atomic<uint32_t> g_max_move_edges{kMaxMoveEdges};

void SetPageMoves(bool on) { g_moves_on.store(on, std::memory_order_relaxed); }

bool PageMovesOn() {
  return g_moves_on.load(std::memory_order_relaxed) && !HugePagesOn() &&
         g_decay_ms.load(std::memory_order_relaxed) != 0;
}

namespace {

void SetEdge(ArenaMeta* m, uint32_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_purge_lock) {
  if (i >= kPagesPerArena) return;  // the arena's end: a boundary or a join with the next
  const uint64_t bit = uint64_t{1} << (i % 64);
  if ((m->edges[i / 64].fetch_or(bit, std::memory_order_relaxed) & bit) == 0) ++g_edges;
}

// Clears the edges strictly inside [a, b): that range is one mapping now.
void ClearEdgesInside(ArenaMeta* m, uint32_t a, uint32_t b)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_purge_lock) {
  if (b - a < 2) return;
  for (uint32_t w = (a + 1) / 64; w <= (b - 1) / 64; ++w) {
    const uint64_t mask = RunMask(a + 1, b - a - 1, w);
    const uint64_t was = m->edges[w].fetch_and(~mask, std::memory_order_relaxed) & mask;
    g_edges -= static_cast<uint32_t>(__builtin_popcountll(was));
  }
}

// The first edge in (a, b), or b.
uint32_t NextEdge(const ArenaMeta* m, uint32_t a, uint32_t b) {
  return NextSetIn([m](uint32_t w) { return m->edges[w].load(std::memory_order_relaxed); }, a + 1,
                   b);
}

// Makes each free uncommitted run of the arenas with an edge inside it one
// mapping again (os::MapFresh: the run's pages read as zero, as they did).
// A run the OS left unmapped stays claimed for good.
void JoinMappingsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_purge_lock) {
  const uint32_t count = g_arena_count.load(std::memory_order_acquire);
  for (uint32_t id = 0; id < count && g_edges != 0; ++id) {
    const uintptr_t base = g_arenas[id].load(std::memory_order_acquire);
    ArenaMeta* m = MetaOfArena(base);
    uint64_t clean[kWords];  // free and uncommitted
    bool any = false;
    for (uint32_t w = 0; w < kWords; ++w) {
      any = any || m->edges[w].load(std::memory_order_relaxed) != 0;
      clean[w] =
          m->free[w].load(std::memory_order_relaxed) & ~m->dirty[w].load(std::memory_order_relaxed);
    }
    if (!any) continue;
    for (int s = FindRun(clean, 1); s >= 0;) {
      const uint32_t a = static_cast<uint32_t>(s);
      const uint32_t b = NextClear(clean, a, kPagesPerArena);
      if (NextEdge(m, a, b) < b && ClaimRun(m, a, b - a)) {
        bool committed = false;  // freed and marked dirty since the snapshot
        for (uint32_t w = a / 64; w <= (b - 1) / 64; ++w) {
          committed = committed || (m->dirty[w].load(std::memory_order_relaxed) &
                                    RunMask(a, b - a, w)) != 0;
        }
        const size_t bytes = size_t{b - a} << kPageShift;
        if (committed) {
          ReleaseRun(m, a, b - a);
        } else if (os::MapFresh(reinterpret_cast<void*>(base + (uintptr_t{a} << kPageShift)),
                               bytes)) {
          ClearEdgesInside(m, a, b);
          ReleaseRun(m, a, b - a);
        }
        // else: the pages may be unmapped; never handed out again.
      }
      s = b < kPagesPerArena ? FindRun(clean, 1, b) : -1;
    }
  }
}

// Where the window's next uncommitted pages are.
struct Holes {
  uintptr_t base;
  uint32_t end;  // the window's end
  uint64_t* committed;
  uint32_t at;  // the next page to look at
  // The next run of uncommitted pages from `at` (at most `max`): its start and
  // length, 0 when none is left.
  uint32_t Next(uint32_t max, uint32_t* start) {
    at = NextClear(committed, at, end);
    *start = at;
    return NextSet(committed, at, end - at < max ? end : at + max) - at;
  }
};

}  // namespace

uint32_t PageMoveEdges() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SpinLockHolder hold(g_purge_lock);
  return g_edges;
}

MoveOutcome MoveOldestInto(uintptr_t base, uint32_t start, uint32_t n, uint64_t* committed,
                           uint32_t want) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  MoveOutcome out;
  if (want == 0 || !PageMovesOn()) return out;
  // As a size-bound purge: the purger's decay is waited for (rare), another
  // allocating thread's purge is not (this request then takes fresh pages).
  bool held = g_purge_lock.TryLock();
  while (!held && g_purger_holds.load(std::memory_order_seq_cst)) {
    os::Yield();
    held = g_purge_lock.TryLock();
  }
  if (!held) return out;
  const uint32_t limit = g_max_move_edges.load(std::memory_order_relaxed);
  if (g_edges + 4 > limit) JoinMappingsLocked();
  const uint32_t now = Clock32();
  uint64_t hist[kBuckets] = {};
  const uint64_t total = AgeHistogram(now, hist);
  int cutoff = 0;
  uint64_t quota = OldestCutoff(hist, std::min<uint64_t>(want, total), &cutoff);
  Holes holes{base, start + n, committed, start};
  ArenaMeta* dm = MetaOfArena(base);
  const uint32_t count = g_arena_count.load(std::memory_order_acquire);
  bool stop = total == 0;
  for (uint32_t id = 0; id < count && !stop; ++id) {
    const uintptr_t src_base = g_arenas[id].load(std::memory_order_acquire);
    ArenaMeta* m = MetaOfArena(src_base);
    if (m->dirty_pages.load(std::memory_order_relaxed) == 0) continue;
    for (uint32_t w = 0; w < kWords && !stop; ++w) {
      const uint64_t cand = Candidates(m, w, now, cutoff, &quota);
      if (cand == 0) continue;
      // Claimed like a purge's pages (PurgeWord): no thread is handed them meanwhile.
      const uint64_t claimed = ClaimFree(m, w, cand);
      if (claimed == 0) continue;
      const uint64_t taken = m->dirty[w].fetch_and(~claimed, std::memory_order_relaxed) & claimed;
      uint64_t moved = 0;
      // (The lambda runs under g_purge_lock, held above: the analysis, off for
      // this function's TryLock loop, is off for it too.)
      ForEachRunOfWord(taken, [&](uint32_t lo, uint32_t len) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        // The run, cut where a mapping may end, in pieces that fit the holes.
        for (uint32_t s = w * 64 + lo, e = s + len; s < e && !stop;) {
          uint32_t to = 0;
          const uint32_t piece = holes.Next(NextEdge(m, s, e) - s, &to);
          if (piece == 0 || g_edges + 4 > limit) {
            stop = true;
            break;
          }
          const os::MoveVerdict v =
              os::MovePages(reinterpret_cast<void*>(src_base + (uintptr_t{s} << kPageShift)),
                            reinterpret_cast<void*>(base + (uintptr_t{to} << kPageShift)),
                            size_t{piece} << kPageShift);
          if (v != os::MoveVerdict::kMoved) {
            g_moves_on.store(false, std::memory_order_relaxed);
            if (v == os::MoveVerdict::kLost) out.lost_start = to, out.lost_pages = piece;
            stop = true;
            break;
          }
          SetEdge(m, s), SetEdge(m, s + piece);
          ClearEdgesInside(dm, to, to + piece);
          SetEdge(dm, to), SetEdge(dm, to + piece);
          for (uint32_t i = to; i < to + piece; ++i) committed[i / 64] |= uint64_t{1} << (i % 64);
          moved |= RunMask(s, piece, w);
          holes.at = to + piece;
          out.moved += piece;
          s += piece;
        }
        return !stop;
      });
      // What was not moved stays cached (with its free times); what was is free and uncommitted.
      if (taken & ~moved) m->dirty[w].fetch_or(taken & ~moved, std::memory_order_relaxed);
      const uint32_t k = static_cast<uint32_t>(__builtin_popcountll(moved));
      if (k != 0) m->dirty_pages.fetch_sub(k, std::memory_order_relaxed);
      m->free[w].fetch_or(claimed, std::memory_order_release);
      if (out.moved >= want) stop = true;
    }
  }
  g_cached.fetch_sub(uint64_t{out.moved} << kPageShift, std::memory_order_relaxed);
  g_held.fetch_sub(uint64_t{out.moved} << kPageShift, std::memory_order_relaxed);
  UnlockAndRunAsked();
  return out;
}

// The kept huge mappings go back before fork(): a child does not inherit
// them (nor does the fork copy their page tables).
void LockPurgeForFork() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  g_purge_lock.Lock();
  g_huge_lock.Lock();
  GiveBackHugeLocked(UINT64_MAX);
}

void UnlockPurgeAfterFork(bool child) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (!child) {
    g_huge_lock.Unlock();
    UnlockAndRunAsked();  // what other threads asked during the fork
    return;
  }
  g_huge_lock.ResetAfterFork();
  g_purge_lock.ResetAfterFork();
  g_purger_holds.store(false, std::memory_order_relaxed);
  // The purger thread does not exist in the child: start one there lazily.
  if (g_purger_state.load(std::memory_order_relaxed) == 1) {
    g_purger_state.store(0, std::memory_order_relaxed);
    g_purger_wanted.store(g_cached.load(std::memory_order_relaxed) != 0, std::memory_order_relaxed);
  }
}

}  // namespace execmem::pool
