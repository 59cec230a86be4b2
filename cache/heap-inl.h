// The allocation fast paths. See heap.h for the call graph.
#ifndef EXECMEM_CACHE_HEAP_INL_H_
#define EXECMEM_CACHE_HEAP_INL_H_

#include "cache/check.h"
#include "cache/heap.h"
#include "cache/large.h"
#include "cache/secure.h"

namespace execmem {

[[gnu::always_inline]] inline void* Malloc(size_t size) {
  if (size <= kMaxSmallSize) [[likely]] {
    Heap* h = tls_heap;
    Page* pg = h->current[SizeClassOf(size)];
    Block* b = pg->free;
    // A free block without the free key was written after it was freed:
    // MallocSlow reports it (check.h).
    if (b != nullptr && HasFreeKey(b, pg)) [[likely]] {
      pg->free = b->next;
      MarkHandedOut(b);
      ++pg->used;
      ++h->allocs;
      return b;
    }
  }
  return MallocSlow(size, false);
}

// The page map's slot for p, masked rather than bounds-checked (one
// instruction fewer): a pointer above the user address space aliases some
// slot, but it is above every span's `bump`, so FreeFast still refuses it.
[[gnu::always_inline]] inline uintptr_t SlotLookupMasked(const void* p) {
  return g_slots[(reinterpret_cast<uintptr_t>(p) >> kArenaShift) & (kSlots - 1)].load(
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
      static_cast<char*>(p) < pg->bump &&
      IsBlockOffset(off, pg->div_inv, pg->div_shift, pg->div_limit) && !HasFreeKey(b, pg) &&
      fits(pg)) [[likely]] {
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

// realloc's common case, before it resolves p: p is a large block of the
// calling thread's executor that grows (or keeps its size) within its span.
// One lookup of the span; no charge (the span's pages are charged already);
// the change goes to the thread's pending deltas, as LargeAlloc's cached
// path reports; the used rule against max as LargeAlloc's. False for
// anything else (p unchecked: ReallocSlow's full path checks it).
[[gnu::always_inline]] inline bool GrowLargeInSpan(void* p, size_t size) {
  const uintptr_t base = SlotLookupMasked(p);
  if (base == 0 || ArenaOf(base)->huge) return false;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uint32_t idx = static_cast<uint32_t>((a >> kPageShift) & (kPagesPerArena - 1));
  if (idx < kMetaPages) return false;
  Page* head = HeadOf(PageAt(base, idx));
  // A masked slot's alias (a pointer above the user address space) is never
  // a block's start, so large_user tells it apart.
  if (head->kind != PageKind::kLarge || head->large_user != a) return false;
  const size_t old = head->large_size;
  // The span's bytes from the block on: a multiple of kLargeQuantum (spans
  // start on a page, the block on its alignment), so that the rounded size
  // fits whenever `size` does, and nothing below can overflow.
  const size_t room =
      (size_t{head->span_pages} << kPageShift) - (a - reinterpret_cast<uintptr_t>(PageStart(head)));
  if (size < old || size > room) return false;  // a shrink, or a growth past the span
  Heap* h = tls_heap;
  const Tenant* e = ExecOf(head);
  // The bootstrap heap has no executor (exec stays nullptr); every large
  // span has one, so this also refuses a thread that has not allocated yet.
  if (h->exec != e) return false;
  const size_t usable = (size + kLargeQuantum - 1) & ~(kLargeQuantum - 1);
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

// realloc: the growth within the span inline, everything else (secure mode,
// small blocks, moves, errors) in ReallocSlow (heap.cc).
[[gnu::always_inline]] inline void* ReallocFast(void* p, size_t size) {
  if (secure::g_mode.load(std::memory_order_relaxed) == 0 && GrowLargeInSpan(p, size)) [[likely]] {
    return p;
  }
  return ReallocSlow(p, size);
}

// The span of a small block in its span's first page, whoever owns the span
// (full spans included), without ResolveBlock's general resolution; nullptr
// for anything else (null, a zero-size, large, huge or foreign pointer, a
// tail page, a secure span), which the caller then resolves the general way
// (reporting what it must). A pointer it takes is checked as ResolveBlock
// checks it: an arena's slot, a small span's page, a block start below the
// span's limit. The masked lookup is safe here: a pointer above the user
// address space is above every span's limit.
[[gnu::always_inline]] inline const Page* SmallBlockHead(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t base = SlotLookupMasked(p);
  if (base == 0 || ArenaOf(base)->huge) return nullptr;
  const uint32_t idx = static_cast<uint32_t>((a >> kPageShift) & (kPagesPerArena - 1));
  const Page* pg = PageAt(base, idx);
  // Secure mode sets up every span with its bits (SecurePolicy::kSpanBits):
  // secure == 0 is a span of the default policy, whose usable size is the
  // block's.
  if (idx >= kMetaPages && pg->kind == PageKind::kSmall && pg->secure == 0 && p < pg->limit &&
      IsBlockOffset(static_cast<uint32_t>(a & (kPageSize - 1)), pg->div_inv, pg->div_shift,
                    pg->div_limit)) [[likely]] {
    return pg;
  }
  return nullptr;
}

// The span of a large block in its span's first page (the pointer the span
// handed out), default mode; nullptr for anything else, resolved the general
// way. Redis's listpacks past the small classes are such blocks.
[[gnu::always_inline]] inline Page* LargeBlockHead(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t base = SlotLookupMasked(p);
  if (base == 0 || ArenaOf(base)->huge) return nullptr;
  const uint32_t idx = static_cast<uint32_t>((a >> kPageShift) & (kPagesPerArena - 1));
  Page* pg = PageAt(base, idx);
  if (idx >= kMetaPages && pg->kind == PageKind::kLarge && pg->large_user == a &&
      secure::g_mode.load(std::memory_order_relaxed) == 0) {
    return pg;
  }
  return nullptr;
}

// malloc_usable_size: Redis asks it at every allocation and every free
// (zmalloc_size), so a small block's and a large one's are inline.
[[gnu::always_inline]] inline size_t UsableSizeFast(const void* p) {
  if (const Page* pg = SmallBlockHead(p)) [[likely]] return pg->block_size;
  if (const Page* pg = LargeBlockHead(p)) return pg->large_size;
  return UsableSize(p);
}

}  // namespace execmem

#endif  // EXECMEM_CACHE_HEAP_INL_H_
