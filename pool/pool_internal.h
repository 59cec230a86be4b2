// What the files of pool/ share, internal to pool/. Each calls only the files
// above it in this list (the layering test checks it):
//   arena.cc  the arena table, the byte counters, the pool clock, decommitting
//   purge.cc  the cache bound, decay, purging and the background purger
//   pool.cc   arena growth, spans, huge blocks, the capacity
#ifndef EXECMEM_POOL_POOL_INTERNAL_H_
#define EXECMEM_POOL_POOL_INTERNAL_H_

#include <atomic>
#include <cstdint>

#include "platform/os.h"
#include "pool/arena.h"
#include "pool/page.h"

namespace execmem::pool {

inline constexpr uint32_t kMaxArenas = 1u << 16;  // 16 TiB of 256 MiB arenas
inline constexpr uint64_t kDefaultDecayMs = 5000;
// CacheBound() (pool.h): at least kCacheMin; else kCacheTarget - in-use / 4
// or in-use / kCacheShare, whichever is more, as long as that fits under the
// budgets. The flat kCacheTarget of a small heap shrinks as in-use grows:
// measured on execmem-wl-largechurn (docs/large-blocks.md), a flat 96 MiB
// over 334 MiB in use put the peak RSS at 1.02 x glibc's, the shrinking floor
// at 0.95 x (0.98 x with the peak slack below).
inline constexpr uint64_t kCacheMin = uint64_t{32} << 20;
inline constexpr uint64_t kCacheTarget = uint64_t{96} << 20;
inline constexpr uint64_t kCacheShare = 8;
// ... or, if more, what fills the committed bytes up to the recent peak of
// the bytes in use and 1/kPeakSlack over it; the peak is the highest in-use
// of the current window of frees and of the one before, a window ending when
// frees of kPeakMemory times the recent peak went by (purge.cc). Measured on
// execmem-wl-malloclarge (docs/large-blocks.md): slack 1/4 cut the page faults
// to tcmalloc's but passed glibc's peak RSS; 1/8 and 4 peaks kept both. With
// huge pages and the shrinking floor above (2026-12-07), 1/8 left malloclarge
// at 1.1 x tcmalloc's CPU time (fresh pages to zero), 1/5 passed glibc's peak
// RSS on largechurn (1.01 x); 1/6: 0.85 x tcmalloc's CPU, 0.98 x glibc's RSS.
// Keeping the window before (2026-12-07, sixth step): largechurn 120.9 k ->
// 111.9 k faults, malloclarge 173.4 k -> 150.4 k, peak RSS the same.
inline constexpr uint64_t kPeakSlack = 6;
inline constexpr uint64_t kPeakMemory = 4;

// ---- arena.cc ----

extern std::atomic<uintptr_t> g_arenas[kMaxArenas];  // base by id; 0 past the count
extern std::atomic<uint32_t> g_arena_count;

// Byte counters. held: committed bytes (pages handed out, cached pages, huge
// mappings); cached: of held, free dirty pages.
extern std::atomic<uint64_t> g_held;
extern std::atomic<uint64_t> g_cached;
extern std::atomic<uint64_t> g_returned;  // bytes decommitted, all time
extern std::atomic<uint64_t> g_mapped;    // bytes of arenas and huge mappings

// The pool clock: milliseconds since the first call, in 32 bits (arena.h).
uint32_t Clock32();

// Whether blocks ask for transparent huge pages (SetHugePages; off by default).
bool HugePagesOn();

// Decommits [start, start + n) of an arena the caller has claimed and whose
// dirty bits it has taken (the pages stay mapped and read as zero). False when
// the OS refused: the pages are still committed and hold their old contents,
// so the caller must keep them dirty (cached) and nothing was counted.
bool DecommitPages(uintptr_t base, uint32_t start, uint32_t n);

// ---- pool.cc ----

// The best place for `pages` pages among the free runs of one arena's bitmap
// snapshot (`dirty` within `free`, kWords words each): pool.cc states the
// rule. Here for the test that checks it against every window.
struct Placement {
  uint32_t start = 0, dirty = 0;
  uint32_t rank = 0;  // committed throughout: the segment's length; else the free run's
};
bool BestWindow(const uint64_t* free, const uint64_t* dirty, uint32_t pages, Placement* out);

// ---- purge.cc ----

extern std::atomic<uint64_t> g_decay_ms;

// The cache bound (pool.h) and, when a free passes it, what the purge keeps:
// 3/4 of the bound by size and share (at most 24 MiB below it), so that a
// steady churn does not purge on every free, but all of the refill up to the
// recent peak, which a purge below would only make fault again.
struct Bounds {
  uint64_t bound, keep;
};
Bounds CacheBounds();
// At the free of `bytes`, before they join the cache: the recent peak of the
// bytes in use (the bound's peak term) is now.
void NoteInUse(uint64_t bytes);
// The committed heap's high-water mark left by allocations of fresh pages
// (AllocSpan, AllocHuge, ResizeHuge): KeepPastHighWater is what of `cached`
// bytes may stay cached when g_held is past it (cached minus how far past,
// or all of it when not past: the heap does not grow while it holds free
// pages that could not serve the request), NoteHeldHigh raises it to g_held.
// Spans only for requests of up to kHighWaterMaxPages (2 MiB): longer blocks'
// freed runs, kept, serve the next long blocks of other lengths with fewer
// fresh pages.
constexpr uint32_t kHighWaterMaxPages = static_cast<uint32_t>((size_t{2} << 20) >> kPageShift);
uint64_t KeepPastHighWater(uint64_t cached);
void NoteHeldHigh();
// Decay from the allocation path, for a process whose purger thread could
// not be started (or has not been yet).
void MaybePurge();

// Purges the oldest cached pages until at most `keep` bytes stay cached (and,
// when `decay`, what the decay curve keeps). A decay returns at once when
// another thread is purging; a size-bound purge leaves its request to another
// allocating thread that is purging (run before that one lets go of the lock)
// and returns, and waits only for the purger thread's decay. Never takes a
// page that is not free.
void PurgeOldest(uint64_t keep, bool decay);

// Moving cached pages instead of faulting fresh ones (docs/large-blocks.md,
// eleventh step). A large request whose window must take fresh pages while
// the cache bound makes the allocation purge as many cached pages elsewhere
// takes those pages instead: MoveOldestInto picks the pages the purge would
// have taken (the oldest first) and moves them into the window's uncommitted
// pages (os::MovePages: mremap moves the page tables, no copy, no fault); their
// old place reads as zero, free and no longer cached. Everything else is as
// after the purge: the same pages free, committed and cached, g_held the same
// (the moved pages were held as cached, the window's fresh pages are not
// charged), only the faults and the zeroing of fresh pages are saved.
// Each move splits the arena's mappings (ArenaMeta::edges): at most
// kMaxMoveEdges edges in all, joined again (os::MapFresh over free
// uncommitted runs with edges inside) when a move would pass it.
// Off under secure mode (its guard pages split mappings the pool does not
// track), while huge pages are on, without a cache (decay 0), and for good
// after the OS refuses a move (a kernel before 5.7, the mapping limit).
inline constexpr uint32_t kMaxMoveEdges = 2048;
extern std::atomic<uint32_t> g_max_move_edges;  // kMaxMoveEdges; tests lower it
bool PageMovesOn();
// The edges in all arenas now (tests).
uint32_t PageMoveEdges();
struct MoveOutcome {
  uint32_t moved = 0;
  // Pages of the window the OS left unmapped (os::MoveVerdict::kLost): the
  // caller keeps them claimed for good and gives the rest of the window back.
  uint32_t lost_start = 0, lost_pages = 0;
};
// Moves up to `want` of the oldest cached pages into the pages of the claimed
// window [start, start + n) of the arena at base whose bits are clear in
// committed[] (kWords words: TakeDirty's masks), setting them there. Counts
// g_cached and g_held down by the pages moved. Moves nothing when a purge is
// running (it does not wait) or moves are off.
MoveOutcome MoveOldestInto(uintptr_t base, uint32_t start, uint32_t n, uint64_t* committed,
                           uint32_t want);

// Freed huge mappings kept whole (the huge cache): a huge block's mapping,
// freed, stays mapped (its pages resident: no fault, no zeroing for the next
// huge block) in one of kHugeKept slots, counted in g_held and g_huge_cached
// and charged to no executor. Bounded like the page cache: the page cache and
// it together within CacheBound() at the free, the oldest given back first as
// allocations take fresh pages past the committed heap's high-water mark
// (GiveBackHugePastHighWater), each slot whole once older than the decay
// time, and everything by Purge(true) and before fork().
inline constexpr int kHugeKept = 4;
extern std::atomic<uint64_t> g_huge_cached;
// At FreeHuge, its slots already cleared: keeps [base, base + bytes) if the
// bound allows (true), else the caller unmaps it.
bool KeepHugeMapping(uintptr_t base, uint64_t bytes);
// The start of `bytes` taken from the front of the smallest whole kept
// mapping (not a rest) that holds them and starts at a multiple of `align`,
// or 0; the rest stays kept for the new block to grow over. Its bytes leave
// g_huge_cached (they stay in g_held and g_mapped: the caller's block).
uintptr_t TakeHugeMapping(uint64_t bytes, uint64_t align);
// Takes `bytes` from the front of the kept rest of block `block`'s mapping
// that starts at `at` (the block, growing in place over it). When that rest is
// shorter, gives it back (so that the block may grow in place by mremap) and
// returns false. Only a rest of the block's own mapping serves: mremap cannot
// grow or move a range that spans two mappings.
bool TakeHugeMappingAt(uintptr_t block, uintptr_t at, uint64_t bytes);
// Block `block` moved, shrank or was unmapped: the kept rests of its mapping
// go back (nothing they could continue is there any more).
void DropHugeRests(uintptr_t block);
// Gives back kept bytes, oldest mapping first (its end first), as far as
// g_held is past the high-water mark, before an allocation of fresh pages.
void GiveBackHugePastHighWater();

// Whether a start of the background purger was attempted (it may have failed).
bool PurgerTried();

void LockPurgeForFork();
void UnlockPurgeAfterFork(bool child);

}  // namespace execmem::pool

#endif  // EXECMEM_POOL_POOL_INTERNAL_H_
