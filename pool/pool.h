// pool/ — the process-wide page pool. Contract of this layer:
//
//  Files, lowest first; each .cc calls only those before it (the layering
//  test checks it):
//    page.h           the arena layout and the pool's words of a page
//                     descriptor (PoolPage: kind, span_pages); the rest of a
//                     descriptor is the cache's (cache/span.h)
//    arena.h          one arena's bitmaps (free, dirty, huge-advised) and the
//                     lock-free claim protocol
//    pool_internal.h  what the three .cc files share, internal to pool/
//    arena.cc         the arena table, the byte counters (held, cached,
//                     returned), the pool clock, decommitting pages and the
//                     huge-page advice of large blocks (AdviseHugeChunks)
//    purge.cc         the cache of committed free pages: its bound (the
//                     recent peak, the budget limit), decay, purging and the
//                     background purger thread
//    pool.cc          arena growth, spans (Alloc/Free/Grow/ShrinkSpan), huge
//                     blocks, the capacity and the counters; a free that
//                     passes the cache bound asks purge.cc to purge
//  Invariants and who keeps them: committed <= Capacity() (pool.cc, at every
//  arena or span commit); cached <= CacheBound() after each free (pool.cc
//  asks, purge.cc purges);
//  a page's bits change only by the CAS protocol of arena.h.
//
//  * Memory comes from the OS in 256 MiB arenas (platform/os.h, MapAligned) and
//    is handed out as spans: runs of contiguous 64 KiB pages. Backend choice:
//    plain mmap, not a jemalloc arena via mallocx. Debian's libjemalloc
//    exports unprefixed malloc/free, so linking it into libexecmem_preload.so
//    would put two definitions of malloc in one process; and arenas must be
//    aligned to their size so that any pointer finds its page descriptor with
//    a shift, which mmap gives us directly.
//  * Pages by runs (pool/arena.h says why bitmaps and how the protocol works):
//    freed pages coalesce with their free neighbours whoever freed them, and
//    any free run serves any request up to its length. AllocSpan, FreeSpan,
//    GrowSpan and ShrinkSpan are lock-free. A request is served first from a
//    run whose pages are all still committed (dirty: reuse costs no page
//    fault), lowest address first (large requests: see Placement below),
//    else from any free run, else from a new
//    arena; only creating an arena takes a lock.
//  * The cache: committed free pages ("cached") are charged to no executor, so
//    they are bounded — by size: cached <= CacheBound() = max(32 MiB,
//    min(max(96 MiB - in_use / 4, in_use / 8, peak * 7/6 - in_use),
//    limit - in_use)) (the flat 96 MiB of a small heap shrinks to in_use / 8
//    at 256 MiB in use, where a large heap's cache would otherwise be most of
//    its overshoot over the peak), where in_use is the committed bytes handed
//    out, `peak` its recent peak
//    (the highest in_use frees saw in the current window and the one before,
//    a window ending when frees of 4 times the recent peak went by, so that
//    a forgotten peak falls to the last window's highest, not to a trough:
//    what the program just showed it needs, so what it frees
//    below that serves its next large requests instead of faulting fresh
//    pages) and `limit` what the budgets allow executors to hold
//    (SetBudgetLimit: Σ max + overhead), the oldest purged first when a free
//    passes it (down to 3/4 of the size term, all of the peak term kept);
//    and by age: a page freed a ms ago may stay with weight
//    1 - smoothstep(a / decay), so the cache decays along a smooth curve, not
//    a cliff at the decay time. Purging (madvise) runs in the freeing thread
//    when the size bound is passed, and otherwise in a background thread the
//    allocator starts lazily at a safe point (MaybeStartPurger), so that an
//    idle process gives its cache back too; the fast path never sees it.
//    And by need: a request of up to 2 MiB that takes fresh pages while the
//    committed heap is at its high-water mark gives back as many of the
//    oldest cached pages (freed runs that could not serve it), so that runs
//    of the wrong length do not make the heap grow (longer requests keep
//    them: their freed runs serve the next long blocks, see Placement); so
//    does a huge block, allocated or grown, which no cached page can serve.
//    What this buys: the process's committed heap is at most
//    max(in_use + 32 MiB, limit) + metadata (9 pages per arena) under budgets,
//    and at most max(in_use + 96 MiB - in_use / 4, in_use * 9/8, peak * 7/6)
//    without;
//    in_use is what the executors hold (footprints, each capped at max + overhead).
//  * Huge pages (off by default, SetHugePages): a large block asks for
//    transparent huge pages behind the 2 MiB chunks it covers whole
//    (AdviseHugeChunks), a huge block for its whole mapping; a purge that
//    decommits a page of a chunk takes the advice back. Off, the system's THP setting decides, as for glibc,
//    jemalloc, tcmalloc and mimalloc.
//  * Placement: a request of 16 pages (1 MiB) or more that no committed run of
//    its length serves takes the window with the most committed pages over
//    every arena, so that a freed block of another length serves it with the
//    fewest fresh pages; when committed segments (maximal runs of free
//    committed pages) hold it whole, the shortest of them (best fit, so that
//    long segments stay whole for long requests), else ties go to the
//    shortest free run. Arenas are 256 MiB
//    (page.h) so that freed large blocks share arenas and their runs join:
//    a free run cannot cross an arena's end.
//  * Page moves: a large request whose window must take fresh pages while
//    the cache bound (or the high-water rule) makes that allocation purge as
//    many cached pages moves those pages into the window instead (mremap:
//    the page tables move, no copy, no fault; the old place reads as zero).
//    The pool ends as after the purge, less the faults: held, cached and
//    the free pages the same (pool_internal.h, MoveOldestInto). Each move
//    splits the arena's mappings; their edges are bounded and joined again
//    (docs/large-blocks.md, eleventh step). Off under secure mode.
//  * The pool holds at most `capacity` committed bytes (default: the cgroup
//    limit, else physical memory). Budgets (executors' reservations and
//    grants, bounded by the same capacity) are budget/'s, one layer up.
//  * The pool knows no allocator type: of each page descriptor it claims the
//    first words, PoolPage (kind, span_pages: page.h); the rest is the cache's
//    span descriptor (cache/span.h), owner words included, never read here.
//  * Huge blocks (more than an arena's pages) get a dedicated aligned mapping
//    registered in the same page map; they grow and shrink with mremap. A
//    freed one's mapping is kept whole (up to kHugeKept of them, within the
//    cache bound) for the next huge block that fits, or for a block growing
//    in place over it; it goes back as allocations take fresh pages past the
//    committed heap's high-water mark, by decay, Purge(true) and before fork
//    (pool_internal.h; docs/large-blocks.md, ninth step).
#ifndef EXECMEM_POOL_POOL_H_
#define EXECMEM_POOL_POOL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "pool/page.h"

namespace execmem {

struct PoolCounters {
  uint64_t capacity, held, cached, returned_to_os, arenas, mapped;
};

namespace pool {

// Hands out a span of `pages` contiguous pages (1..kMaxSpanPages); its head
// descriptor has span_pages set, kind kFree, and *zeroed says whether the
// memory is known to be zero. `room`: prefer a place with that many free
// pages after the span (for a block that may grow in place). Returns nullptr
// when the capacity would be passed (after purging the cache) or the OS refuses.
PoolPage* AllocSpan(uint32_t pages, bool* zeroed, uint32_t room = 0);
// Maps the first arena now if there is none yet (the shim asks at start, so
// that an address-space limit too low for it is said in one line rather than
// met inside the set-up's allocations). False when the OS refused.
bool EnsureFirstArena();
// Takes a span back. The head's span_pages must be what AllocSpan gave (or
// Grow/ShrinkSpan set), and every page of it must have kind kFree.
void FreeSpan(PoolPage* head);
// Extends a span in place to new_pages (at most kMaxSpanPages) by claiming
// the pages after it, if they are free; sets span_pages. The caller sets the new tails' kinds.
bool GrowSpan(PoolPage* head, uint32_t new_pages);
// Gives the pages of a span after its first new_pages back (marks them kFree).
void ShrinkSpan(PoolPage* head, uint32_t new_pages);
// Gives the OS back the memory of the span at head from byte `keep` on
// (rounded up to a whole OS page), for a user that will not touch it soon:
// it stays in the span and held (charged), and reads as zero when touched
// again, a fault an OS page then. For a span just handed out with committed
// (dirty) pages whose user writes only its first bytes.
void DecommitSpanTail(PoolPage* head, size_t keep);
// A large block is about to be written whole over the first `bytes` of the
// span at head: asks the kernel for transparent huge pages behind the 2 MiB
// chunks those bytes cover whole (a first touch faults in 2 MiB, not 4 KiB),
// unless asked already. A purge that decommits a page of a chunk takes the
// advice back. A no-op below 2 MiB, and while huge pages are off.
void AdviseHugeChunks(PoolPage* head, size_t bytes);
// Whether AdviseHugeChunks asks for huge pages (default off: a huge page's
// first touch can cost more than 512 faults of 4 KiB, docs/large-blocks.md).
void SetHugePages(bool on);

// Whether a large request that must take fresh pages while the cache bound
// purges cached ones may move those cached pages into its window instead
// (mremap, no fault; pool_internal.h, MoveOldestInto). On by default; secure
// mode turns it off (its guard pages split the arenas' mappings).
void SetPageMoves(bool on);

// A dedicated mapping for one huge block: returns the user pointer (aligned to
// `alignment`) with `usable` bytes, or nullptr. *mapped receives the bytes held.
// `owner` is stored, opaque, in the header's huge_owner. The mapping may be a
// freed huge block's, kept (pool_internal.h: the huge cache); *zeroed (when
// given) says whether the block is known to be zero.
void* AllocHuge(size_t size, size_t alignment, uintptr_t owner, size_t* mapped,
                bool* zeroed = nullptr);
// `keep`: the mapping may be kept for the next huge block (the huge cache);
// else, and when the cache bound refuses it, it is unmapped.
void FreeHuge(ArenaHeader* arena, bool keep = true);
// Resizes a huge block's mapping so that it has at least `usable` bytes, in
// place when the address space after it is free, else by moving its pages
// (mremap: no copy). Returns the block's (maybe new) header, or nullptr if
// refused (the block is then unchanged). *delta receives the change in bytes
// mapped.
ArenaHeader* ResizeHuge(ArenaHeader* arena, size_t usable, int64_t* delta);

// Returns cached pages to the OS: all of them when `all`, else those the
// decay curve and the size bound no longer keep.
void Purge(bool all);
void SetDecayMs(uint64_t ms);
uint64_t CacheBound();
// What the budgets allow executors to hold together (Σ max + overhead), told
// by the budget layer whenever it changes; UINT64_MAX: no limit.
void SetBudgetLimit(uint64_t bytes);
// Starts the background purger the first time pages are cached. Called by the
// allocator where it holds no lock and no thread cache is half-updated (the
// thread creation may allocate). One relaxed load when nothing is to be done.
void StartPurger();
extern std::atomic<bool> g_purger_wanted;
inline void MaybeStartPurger() {
  if (g_purger_wanted.load(std::memory_order_relaxed)) [[unlikely]]
    StartPurger();
}
// Whether the background purger runs (tests).
bool PurgerRunning();

// ---- capacity ----
uint64_t Capacity();
// The capacity once Capacity() or SetCapacity set it, 0 before: for checks
// inline on the cache's hot paths, which call Capacity() when it is 0.
extern std::atomic<uint64_t> g_capacity;
inline uint64_t KnownCapacity() { return g_capacity.load(std::memory_order_relaxed); }
// The default capacity: cgroup v2 memory.max, v1 memory.limit_in_bytes, else
// physical memory.
uint64_t DefaultCapacity();
// Stores the capacity (0: the default). Call budget::SetCapacity, which
// first checks the budget ledger.
bool SetCapacity(uint64_t bytes);

PoolCounters Counters();

// Forgets the recent peak of the bytes in use (the cache bound's peak term),
// and puts the committed heap's high-water mark (AllocSpan) at what is held
// now, as if the program started a new phase (tests).
void ForgetPeak();

// Test seam: a consistency walk of every arena's bitmaps (quiescent only):
// dirty within free, counters equal to popcounts, metadata pages never free,
// the cached total equal to the dirty pages.
bool IsValid();

// fork(): take the arena-growth lock before, release it after (parent) or
// reset it (child).
void LockForFork();
void UnlockAfterFork(bool child);

}  // namespace pool
}  // namespace execmem

#endif  // EXECMEM_POOL_POOL_H_
