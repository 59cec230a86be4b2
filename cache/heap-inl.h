// The allocation fast paths. See heap.h for the call graph.
#ifndef EXECMEM_CACHE_HEAP_INL_H_
#define EXECMEM_CACHE_HEAP_INL_H_

#include "cache/check.h"
#include "cache/heap.h"
#include "cache/large.h"
#include "cache/secure.h"

namespace execmem {

inline void* MallocSlowDefault(size_t size) { return MallocSlow(size, false); }

// A block of class `cls` (the class of `size`, kZeroClass for 0) from the
// thread's current span of the class, or Slow(size).
template <void* (*Slow)(size_t) = MallocSlowDefault>
[[gnu::always_inline]] inline void* MallocOfClass(Heap* h, size_t cls, size_t size) {
  Page* pg = h->current[cls];
  Block* b = pg->free;
  // A free block without the free key was written after it was freed:
  // MallocSlow reports it (check.h).
  if (b != nullptr && HasFreeKey(b, pg)) [[likely]] {
    Block* next = b->next;
    pg->free = next;
    // The next block of the class, into the cache before the next malloc of
    // the class (tcmalloc's TryPop does the same): a block freed by another
    // thread, or long ago, is a miss that malloc then waits for. One
    // instruction; a prefetch of null does nothing. (larson: -5 to -12 % CPU,
    // docs/performance.md, "Remote frees without walks".)
    __builtin_prefetch(next);
    MarkHandedOut(b);
    ++pg->used;
    ++h->allocs;
    return b;
  }
  return Slow(size);
}

[[gnu::always_inline]] inline void* Malloc(size_t size) {
  if (size <= kMaxSmallSize) [[likely]]
    return MallocOfClass(tls_heap, SizeClassOf(size), size);
  return MallocSlow(size, false);
}

// The page map's slot for p, masked rather than bounds-checked (one
// instruction fewer): a pointer above the user address space aliases some
// slot, but it is above every span's `bump`, so FreeFast still refuses it.
[[gnu::always_inline]] inline uintptr_t SlotLookupMasked(const void* p) {
  return g_slots[(reinterpret_cast<uintptr_t>(p) >> kSlotShift) & (kSlots - 1)].load(
      std::memory_order_acquire);
}

// Frees p on the fast path if it can: a block of a span this thread owns
// that is not full (fast_owner), not already free (check.h), for which
// fits(page) holds. False: the slow path must take it.
template <typename Fits>
[[gnu::always_inline]] inline Page* FreeFast(void* p, Fits fits) {
  const uintptr_t base = SlotLookupMasked(p);
  if (base == 0) return nullptr;
  Page* pg = PageAt(base, static_cast<uint32_t>((reinterpret_cast<uintptr_t>(p) >> kPageShift) &
                                                (kPagesPerArena - 1)));
  // fast_owner is set only on head pages of spans of the heap it names, by
  // that heap's thread, so equality means this thread owns the span and the
  // offset into the span is p's offset into its page. A pointer that
  // is not a carved block start, or a block holding the free key, goes to
  // the slow path, which reports it.
  const uint32_t off = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p)) & (kPageSize - 1);
  Block* b = static_cast<Block*>(p);
  if (pg->fast_owner.load(std::memory_order_relaxed) == reinterpret_cast<uintptr_t>(tls_heap) &&
      static_cast<char*>(p) < pg->bump && IsBlockOffsetInPage(off, pg->div_magic) &&
      !HasFreeKey(b, pg) && fits(pg)) [[likely]] {
    b->next = pg->free;
    MarkFree(b, pg);
    pg->free = b;
    --pg->used;
    return pg;
  }
  return nullptr;
}

// After a fast free: the current span counts one block more (Page::current),
// so used == 0 means a partial span just emptied; it goes back (a tail call).
[[gnu::always_inline]] inline void AfterFastFree(Page* pg) {
  if (pg->used == 0) [[unlikely]]
    RetireEmpty(pg);
}

[[gnu::always_inline]] inline void Free(void* p) {
  if (Page* pg = FreeFast(p, [](const Page*) { return true; })) [[likely]] {
    AfterFastFree(pg);
    return;
  }
  FreeSlow(p);
}

// free_sized and sized delete: `size` must fit the block (SizedFreeFits).
[[gnu::always_inline]] inline void FreeSized(void* p, size_t size) {
  if (Page* pg = FreeFast(p, [size](const Page* pg) {
        return SizedFreeFits(size, pg->block_size, false);
      })) [[likely]] {
    AfterFastFree(pg);
    return;
  }
  FreeSizedSlow(p, size, 0);
}

// free_aligned_sized and aligned sized delete: an aligned request may get a
// much larger block, so only `size <= block size` is checked.
[[gnu::always_inline]] inline void FreeAlignedSized(void* p, size_t alignment, size_t size) {
  if (Page* pg = FreeFast(p, [size](const Page* pg) { return size <= pg->block_size; }))
      [[likely]] {
    AfterFastFree(pg);
    return;
  }
  FreeSizedSlow(p, size, alignment == 0 ? 1 : alignment);
}

// What the thread's current small spans may hold that it has not reported
// (Heap::Sync reports it): a span's bytes per class at most.
constexpr int64_t UnsyncedBound() {
  int64_t bytes = 0;
  for (size_t c = 0; c < kNumClasses; ++c) {
    bytes += static_cast<int64_t>(kSizeClasses.span_pages[c]) << kPageShift;
  }
  return bytes;
}

// Whether the executor's used can grow by `delta` under its max (the pool's
// capacity when it has none) whatever h's current spans hold unreported: e
// is h's executor, h's pending deltas are counted. False also while the
// capacity is unread (FitsUnderMax's exact check reads it).
[[gnu::always_inline]] inline bool FitsUnderMaxUnsynced(const Heap* h, const Tenant* e,
                                                        int64_t delta) {
  uint64_t m = e->account.max.load(std::memory_order_relaxed);
  if (m == 0) m = pool::KnownCapacity();
  return e->account.used.load(std::memory_order_relaxed) + h->used_delta + delta +
             UnsyncedBound() <=
         static_cast<int64_t>(m);
}

// The same, exact for large blocks: syncs h's current spans only when what
// they may hold unreported could tip it over.
[[gnu::always_inline]] inline bool FitsUnderMax(Heap* h, const Tenant* e, int64_t delta) {
  if (FitsUnderMaxUnsynced(h, e, delta)) [[likely]]
    return true;
  return FitsUnderMaxSynced(h, e, delta);
}

// ---- resolving a pointer inline (malloc_usable_size, realloc) ----
// The descriptor of p's page in its (non-huge) arena, or nullptr when p is in
// no arena or in a huge block's mapping (whose descriptors' bytes are the
// block's). The masked lookup is safe: a pointer above the user address
// space aliases some slot, but it is above every span's limit and is no
// large span's large_user, so SmallBlockAt and LargeBlockAt refuse it.
//
// The arena's metadata pages (index < kMetaPages) need no test of their own:
// descriptors 1 to kMetaPages - 1 are never handed out (kind kFree), and
// descriptor 0 is the arena header, whose bytes past its own fields stay zero
// (the mapping is fresh and nothing writes them): whatever kind byte the
// header's id gives, a zero `large_user` refuses every pointer, and so do the
// small block's `bump` and `div_magic`, which are the header's huge_requested
// and huge_owner: zero in an arena that is not a huge block's.
// (A flag and an out-parameter rather than a null pointer: the compiler
// cannot tell that base + offset is never null, and would test it.)
[[gnu::always_inline]] inline bool ArenaPageOf(const void* p, Page** pg) {
  const uintptr_t base = SlotLookupMasked(p);
  if (base == 0 || ArenaOf(base)->huge) return false;
  *pg = PageAt(base, static_cast<uint32_t>((reinterpret_cast<uintptr_t>(p) >> kPageShift) &
                                           (kPagesPerArena - 1)));
  return true;
}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
static_assert(sizeof(ArenaHeader) <= offsetof(Page, secure) &&
                  sizeof(ArenaHeader) <= offsetof(Page, large_user) &&
                  offsetof(Page, bump) == offsetof(ArenaHeader, huge_requested) &&
                  offsetof(Page, div_magic) == offsetof(ArenaHeader, huge_owner),
              "descriptor 0 (the arena header) must leave secure and large_user zero, and give "
              "bump and div_magic only huge fields: ArenaPageOf does not test for the metadata "
              "pages");
#pragma GCC diagnostic pop

// Whether p (at address a, of page pg from ArenaPageOf) is a block of a small
// span of the default policy in its span's first page, whoever owns the span
// (full spans included), checked as ResolveBlock checks it: a small span's
// head page, a block start below what the span carved (CarvedEnd: `bump`,
// not `limit`, so that a block never handed out is refused; as cheap: one
// load, in the first cache line with kind and div_magic). Secure mode sets up
// every span with its bits (SecurePolicy::kSpanBits) and a div_magic of 0,
// which no offset passes: a span that passes is of the default policy, whose
// usable size is the block's.
[[gnu::always_inline]] inline bool SmallBlockAt(const Page* pg, uintptr_t a) {
  return pg->kind == PageKind::kSmall && a < reinterpret_cast<uintptr_t>(CarvedEnd(pg)) &&
         IsBlockOffset(static_cast<uint32_t>(a & (kPageSize - 1)), pg->div_magic);
}

// Whether p (at a, of page pg from ArenaPageOf) is a large block at its
// span's first page (the pointer the span handed out), default mode. A large
// block whose alignment put it past its span's first page is not (it goes
// the general way).
// (The kind is loaded again, not shared with SmallBlockAt's test, so that
// the small block's test is one compare with memory.)
[[gnu::always_inline]] inline bool LargeBlockAt(const Page* pg, uintptr_t a) {
  return pg->large_user == a &&
         __atomic_load_n(reinterpret_cast<const uint8_t*>(&pg->kind), __ATOMIC_RELAXED) ==
             static_cast<uint8_t>(PageKind::kLarge) &&
         secure::g_mode.load(std::memory_order_relaxed) == 0;
}

// The span of a small block in its span's first page (SmallBlockAt); nullptr
// for anything else (null, a zero-size, large, huge or foreign pointer, a
// tail page, a secure span), which the caller then resolves the general way
// (reporting what it must).
[[gnu::always_inline]] inline const Page* SmallBlockHead(const void* p) {
  Page* pg;
  if (ArenaPageOf(p, &pg) && SmallBlockAt(pg, reinterpret_cast<uintptr_t>(p))) [[likely]]
    return pg;
  return nullptr;
}

// The span of a large block at its span's first page (LargeBlockAt); nullptr
// for anything else, resolved the general way. Redis's listpacks past the
// small classes are such blocks.
[[gnu::always_inline]] inline Page* LargeBlockHead(const void* p) {
  Page* pg;
  if (ArenaPageOf(p, &pg) && LargeBlockAt(pg, reinterpret_cast<uintptr_t>(p))) return pg;
  return nullptr;
}

// Whether a small block of `old_usable` bytes serves `size` as it is: same
// class, or a shrink that wastes at most half of it, unless the new size is a
// multiple of 16 that an 8-byte-aligned block (classes 72..120) does not suit.
[[gnu::always_inline]] inline bool KeepsSmallBlock(size_t size, size_t old_usable) {
  const bool aligned_enough = old_usable % kMinAlign == 0 || size % kMinAlign != 0;
  return size <= old_usable && (size > old_usable / 2 || old_usable <= 16) && aligned_enough;
}

// realloc of the large block at a (its span's head `head`, LargeBlockHead)
// within its span, when that needs no call: a growth within the span, or a
// resize that keeps the block's usable size (Redis's listpacks shrink by a
// few bytes at a time). No charge (the span's pages are charged already);
// a growth goes to the thread's pending deltas, as LargeAlloc's cached path
// reports, under the used rule against max as LargeAlloc's. False for
// anything else (a shrink by a quantum or more, a growth past the span or near
// max, another executor's block): ReallocSlow decides.
[[gnu::always_inline]] inline bool ResizeLargeInSpan(Page* head, uintptr_t a, size_t size) {
  const size_t old = head->large_size;
  // The span's bytes from the block on: a multiple of kLargeQuantum (spans
  // start on a page, the block on its alignment), so that the rounded size
  // fits whenever `size` does, and nothing below can overflow.
  const size_t room =
      (size_t{head->span_pages} << kPageShift) - (a - reinterpret_cast<uintptr_t>(PageStart(head)));
  const size_t usable = (size + kLargeQuantum - 1) & ~(kLargeQuantum - 1);
  // A shrink to half or less moves (LargeResizeInPlace's rule); one that
  // frees a quantum may give pages back: both are the slow path's.
  if (size > room || usable < old || size <= old / 2) return false;
  Heap* h = tls_heap;
  const Tenant* e = ExecOf(head);
  // The bootstrap heap has no executor (exec stays nullptr); every large
  // span has one, so this also refuses a thread that has not allocated yet.
  if (h->exec != e) return false;
  const int64_t delta = static_cast<int64_t>(usable) - static_cast<int64_t>(old);
  if (delta > 0) {
    // Near max, the full path decides (FitsUnderMax, then a move or the
    // report): no call here, so that this path saves no registers.
    if (!FitsUnderMaxUnsynced(h, e, delta)) return false;
    head->large_size = usable;
    head->grows = 1;
    h->used_delta += delta;
  }
  return true;
}

// realloc: a small block that keeps its class and a large one resized within
// its span inline, after one resolution of p; everything else (secure mode,
// null, moves, errors) in ReallocSlow (heap.cc). A small block holding the
// free key (freed, or skipped by the span's colour: span.h) goes there too,
// which reports it: kept, it would be handed back as live while its span's
// free list holds it (two compare-and-branch instructions: docs/checks.md).
[[gnu::always_inline]] inline void* ReallocFast(void* p, size_t size) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  Page* pg;
  if (ArenaPageOf(p, &pg)) [[likely]] {
    if (SmallBlockAt(pg, a)) {
      if (KeepsSmallBlock(size, pg->block_size) && !HasFreeKey(static_cast<Block*>(p), pg))
          [[likely]]
        return p;
    } else if (LargeBlockAt(pg, a) && ResizeLargeInSpan(pg, a, size)) [[likely]] {
      return p;
    }
  }
  return ReallocSlow(p, size);
}

// malloc_usable_size: Redis asks it at every allocation and every free
// (zmalloc_size), so a small block's and a large one's are inline, after one
// resolution of p.
[[gnu::always_inline]] inline size_t UsableSizeFast(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  Page* pg;
  if (ArenaPageOf(p, &pg)) [[likely]] {
    if (SmallBlockAt(pg, a)) [[likely]]
      return pg->block_size;
    if (LargeBlockAt(pg, a)) return pg->large_size;
  }
  return UsableSize(p);
}

}  // namespace execmem

#endif  // EXECMEM_CACHE_HEAP_INL_H_
