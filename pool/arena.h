// The pool's state of one arena: which pages are free, which free pages still
// hold committed memory ("dirty"), and when each was freed. Internal to pool/.
//
// It lives in the arena's metadata page after the descriptors, so it is mapped with
// the arena and never freed; only its touched OS pages (about 17 KiB) become
// resident.
//
// Why bitmaps (mimalloc v3's arenas) rather than address-ordered free runs
// with boundary tags (jemalloc's extents, tcmalloc's page heap): an arena has
// only 4096 pages, so its whole free map is 64 words. Freed pages coalesce by
// construction (a run is just set bits, whoever freed its parts), any run
// serves any request up to its length, a split strands nothing (the unclaimed
// bits stay set), and claiming and releasing are compare-and-swaps on those
// words: no lock, no list to keep consistent, no ABA.
//
// Protocol (lock-free):
//  * free[w] bit i set: page 64w+i is in the pool. A thread owns pages once it
//    has cleared their free bits: ClaimRun clears a run word by word in
//    ascending order, each with a CAS that succeeds only if every bit of the
//    run in that word is still set; on a conflict it sets back what it had
//    cleared and fails. A compare of the whole word means success proves
//    every cleared bit was free at that instant, whatever happened before:
//    there is no ABA. ReleaseRun sets the bits (release order), publishing
//    the descriptor, dirty and freed_at writes made before it.
//  * dirty[w] bit i set: free page i holds committed memory. Only the owner of
//    a page changes its dirty bit: right after claiming (TakeDirty clears and
//    counts them) and before releasing (MarkDirty). Searches read the dirty
//    bits of unowned pages only as a hint. Quiescent invariant: dirty ⊆ free.
//  * freed_at[i]: the pool clock (ms, wrapping at 2^32: ages above 49 days
//    read as young, which only delays a purge) when page i was last released.
//  * free_pages / dirty_pages: popcounts of free and of dirty, updated after
//    the bits change; hints for skipping an arena, exact when quiescent.
//  * dirty_scan: (version << 32) | the lowest word that may hold a free dirty
//    page, where searches for committed pages start. Whoever may make a free
//    dirty page appear below it (a release, a claim rolled back) lowers it
//    after setting the bits and bumps the version; a search raises it, with a
//    CAS on the exact value it started from, only past words it saw empty.
//    A release during the search changes the version, so the raise fails:
//    no free dirty page is ever below the mark.
#ifndef EXECMEM_POOL_ARENA_H_
#define EXECMEM_POOL_ARENA_H_

#include <atomic>
#include <cstdint>

#include "pool/page.h"

namespace execmem::pool {

inline constexpr uint32_t kWords = kPagesPerArena / 64;
// Words of ArenaMeta::huge_chunks: a bit for each 2 MiB chunk of the arena.
inline constexpr uint32_t kChunkWords = static_cast<uint32_t>(kArenaSize / (size_t{2} << 20) / 32);

struct ArenaMeta {
  std::atomic<uint64_t> free[kWords];
  std::atomic<uint64_t> dirty[kWords];
  std::atomic<uint32_t> free_pages;
  std::atomic<uint32_t> dirty_pages;
  std::atomic<uint64_t> dirty_scan;
  // 2 MiB chunks (bit c: pages [c * kChunkPages, (c + 1) * kChunkPages)) the
  // kernel was asked to back with huge pages (pool.cc, AdviseHugeChunks).
  std::atomic<uint32_t> huge_chunks[kChunkWords];
  // Pages where a boundary between the OS's mappings of the arena may lie
  // (bit i: at page i's start), left by moving cached pages (purge.cc,
  // MoveOldestInto); a superset, written under the purge lock only. A move's
  // source must have none inside it (mremap moves within one mapping).
  std::atomic<uint64_t> edges[kWords];
  std::atomic<uint32_t> freed_at[kPagesPerArena];
};
static_assert(sizeof(ArenaMeta) <= kPoolMetaPages * kPageSize,
              "fits the arena's metadata pages after the descriptors");

inline ArenaMeta* MetaOfArena(uintptr_t base) {
  return reinterpret_cast<ArenaMeta*>(base + uintptr_t{kDescriptorPages} * kPageSize);
}

// The bits of [start, start + n) when the run lies in one word (the usual
// case: most spans are a few pages).
inline uint64_t WordMask(uint32_t start, uint32_t n) {
  const uint64_t ones = n >= 64 ? ~uint64_t{0} : ((uint64_t{1} << n) - 1);
  return ones << (start % 64);
}
inline bool InOneWord(uint32_t start, uint32_t n) { return start / 64 == (start + n - 1) / 64; }

// The bits of [start, start + n) that fall in word w.
inline uint64_t RunMask(uint32_t start, uint32_t n, uint32_t w) {
  const uint32_t lo = w * 64, hi = lo + 64;
  const uint32_t a = start > lo ? start : lo;
  const uint32_t b = start + n < hi ? start + n : hi;
  if (a >= b) return 0;
  const uint32_t len = b - a;
  const uint64_t ones = len == 64 ? ~uint64_t{0} : ((uint64_t{1} << len) - 1);
  return ones << (a - lo);
}

// The first run of at least n set bits among the kWords words that word(w)
// returns, starting at or after bit `from`; -1 if none. Words are read as the
// search reaches them (a small request reads only up to its first candidate),
// so what it sees is a hint: the claim decides.
// *first_set (when given) receives the first word it saw with a set bit
// (kWords if none): the words before it were empty.
template <typename WordFn>
inline int FindRunIn(WordFn word, uint32_t n, uint32_t from = 0, uint32_t* first_set = nullptr) {
  uint32_t run = 0, start = 0;
  if (first_set != nullptr) *first_set = kWords;
  for (uint32_t w = from / 64; w < kWords; ++w) {
    uint64_t x = word(w);
    if (w == from / 64 && from % 64 != 0) x &= ~uint64_t{0} << (from % 64);
    if (x != 0 && first_set != nullptr && *first_set == kWords) *first_set = w;
    if (x == ~uint64_t{0}) {
      if (run == 0) start = w * 64;
      run += 64;
      if (run >= n) return static_cast<int>(start);
      continue;
    }
    uint32_t b = 0;
    while (b < 64) {
      const uint64_t rest = x >> b;
      if (rest & 1) {
        const uint32_t len = ~rest == 0 ? 64 - b : static_cast<uint32_t>(__builtin_ctzll(~rest));
        if (run == 0) start = w * 64 + b;
        run += len;
        if (run >= n) return static_cast<int>(start);
        b += len;
      } else {
        run = 0;
        b += rest == 0 ? 64 - b : static_cast<uint32_t>(__builtin_ctzll(rest));
      }
    }
  }
  return -1;
}

// The same over a snapshot.
inline int FindRun(const uint64_t* bits, uint32_t n, uint32_t from = 0) {
  return FindRunIn([bits](uint32_t w) { return bits[w]; }, n, from);
}

// Word-at-a-time walks of a bitmap: the first set bit in [from, limit) of the
// words word(w) returns, or limit; over a snapshot, the first set (clear) bit,
// and the set bits in [a, b).
template <typename WordFn>
inline uint32_t NextSetIn(WordFn word, uint32_t from, uint32_t limit) {
  while (from < limit) {
    const uint32_t w = from / 64;
    const uint64_t x = word(w) & (~uint64_t{0} << (from % 64));
    if (x != 0) {
      const uint32_t at = w * 64 + static_cast<uint32_t>(__builtin_ctzll(x));
      return at < limit ? at : limit;
    }
    from = (w + 1) * 64;
  }
  return limit;
}
inline uint32_t NextSet(const uint64_t* bits, uint32_t from, uint32_t limit) {
  return NextSetIn([bits](uint32_t w) { return bits[w]; }, from, limit);
}
inline uint32_t NextClear(const uint64_t* bits, uint32_t from, uint32_t limit) {
  return NextSetIn([bits](uint32_t w) { return ~bits[w]; }, from, limit);
}
inline uint32_t CountSet(const uint64_t* bits, uint32_t a, uint32_t b) {
  uint32_t n = 0;
  for (uint32_t w = a / 64; w <= (b - 1) / 64; ++w) {
    n += static_cast<uint32_t>(__builtin_popcountll(bits[w] & RunMask(a, b - a, w)));
  }
  return n;
}

// Calls fn(lo, len) for each maximal run of set bits of one word, lowest
// first, while fn returns true.
template <typename Fn>
inline void ForEachRunOfWord(uint64_t bits, Fn fn) {
  while (bits != 0) {
    const uint32_t lo = static_cast<uint32_t>(__builtin_ctzll(bits));
    const uint64_t from_lo = bits >> lo;
    const uint32_t len = ~from_lo == 0 ? 64 - lo : static_cast<uint32_t>(__builtin_ctzll(~from_lo));
    bits &= ~RunMask(lo, len, 0);
    if (!fn(lo, len)) return;
  }
}

inline void LowerDirtyScan(ArenaMeta* m, uint32_t word) {
  uint64_t cur = m->dirty_scan.load(std::memory_order_relaxed);
  uint64_t next;
  do {
    const uint32_t w = static_cast<uint32_t>(cur);
    next = (((cur >> 32) + 1) << 32) | (word < w ? word : w);
  } while (!m->dirty_scan.compare_exchange_weak(cur, next, std::memory_order_release,
                                                std::memory_order_relaxed));
}

// Raises the mark from the value `seen` (loaded before the search) to `word`.
inline void RaiseDirtyScan(ArenaMeta* m, uint64_t seen, uint32_t word) {
  if (word <= static_cast<uint32_t>(seen)) return;
  m->dirty_scan.compare_exchange_strong(seen, (seen & ~uint64_t{0xffffffff}) | word,
                                        std::memory_order_relaxed);
}

inline void ReleaseBits(std::atomic<uint64_t>* words, uint32_t start, uint32_t n) {
  if (InOneWord(start, n)) {
    words[start / 64].fetch_or(WordMask(start, n), std::memory_order_release);
    return;
  }
  for (uint32_t w = start / 64; w <= (start + n - 1) / 64; ++w) {
    words[w].fetch_or(RunMask(start, n, w), std::memory_order_release);
  }
}

// Clears the free bits of [start, start + n) if all are set; see the protocol.
inline bool ClaimRun(ArenaMeta* m, uint32_t start, uint32_t n) {
  const uint32_t first = start / 64, last = (start + n - 1) / 64;
  if (first == last) {
    const uint64_t mask = WordMask(start, n);
    uint64_t cur = m->free[first].load(std::memory_order_relaxed);
    do {
      if ((cur & mask) != mask) return false;
    } while (!m->free[first].compare_exchange_weak(cur, cur & ~mask, std::memory_order_acq_rel,
                                                   std::memory_order_relaxed));
    m->free_pages.fetch_sub(n, std::memory_order_relaxed);
    return true;
  }
  for (uint32_t w = first; w <= last; ++w) {
    const uint64_t mask = RunMask(start, n, w);
    uint64_t cur = m->free[w].load(std::memory_order_relaxed);
    for (;;) {
      if ((cur & mask) != mask) {
        // Lost a race: give back the words already claimed (which may hold
        // dirty pages a search skipped meanwhile).
        if (w > first) {
          ReleaseBits(m->free, start, w * 64 - start);
          LowerDirtyScan(m, first);
        }
        return false;
      }
      if (m->free[w].compare_exchange_weak(cur, cur & ~mask, std::memory_order_acq_rel,
                                           std::memory_order_relaxed)) {
        break;
      }
    }
  }
  m->free_pages.fetch_sub(n, std::memory_order_relaxed);
  return true;
}

// Gives back pages claimed with ClaimRun (their dirty bits already set or cleared).
inline void ReleaseRun(ArenaMeta* m, uint32_t start, uint32_t n) {
  ReleaseBits(m->free, start, n);
  m->free_pages.fetch_add(n, std::memory_order_relaxed);
  if (m->dirty_pages.load(std::memory_order_relaxed) != 0) LowerDirtyScan(m, start / 64);
}

// Owner only: clears the dirty bits of the claimed run, storing them per word
// in masks[kWords] when given; returns how many were set.
inline uint32_t TakeDirty(ArenaMeta* m, uint32_t start, uint32_t n, uint64_t* masks = nullptr) {
  uint32_t count = 0;
  const bool one = InOneWord(start, n);
  for (uint32_t w = start / 64; w <= (start + n - 1) / 64; ++w) {
    const uint64_t mask = one ? WordMask(start, n) : RunMask(start, n, w);
    if ((m->dirty[w].load(std::memory_order_relaxed) & mask) == 0) {
      if (masks != nullptr) masks[w] = 0;
      continue;
    }
    const uint64_t was = m->dirty[w].fetch_and(~mask, std::memory_order_relaxed) & mask;
    if (masks != nullptr) masks[w] = was;
    // A run's bits in a word are contiguous: count them without popcount
    // (a library call on baseline x86-64) when all were dirty, the usual case.
    count += was == mask ? (one ? n
                                : static_cast<uint32_t>(64 - __builtin_clzll(mask) -
                                                        __builtin_ctzll(mask)))
                         : static_cast<uint32_t>(__builtin_popcountll(was));
  }
  if (count != 0) m->dirty_pages.fetch_sub(count, std::memory_order_relaxed);
  return count;
}

// Owner only: marks the claimed run dirty (committed) and stamps its free time.
inline void MarkDirty(ArenaMeta* m, uint32_t start, uint32_t n, uint32_t now) {
  for (uint32_t i = start; i < start + n; ++i) m->freed_at[i].store(now, std::memory_order_relaxed);
  ReleaseBits(m->dirty, start, n);
  m->dirty_pages.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace execmem::pool

#endif  // EXECMEM_POOL_ARENA_H_
