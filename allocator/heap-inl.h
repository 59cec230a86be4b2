// The allocation fast paths. See heap.h for the call graph.
#ifndef EXECMEM_ALLOCATOR_HEAP_INL_H_
#define EXECMEM_ALLOCATOR_HEAP_INL_H_

#include "allocator/heap.h"

namespace execmem {

[[gnu::always_inline]] inline void* Malloc(size_t size) {
  if (size <= kMaxSmallSize) [[likely]] {
    Heap* h = tls_heap;
    Page* pg = h->current[SizeClassOf(size)];
    Block* b = pg->free;
    if (b != nullptr) [[likely]] {
      pg->free = b->next;
      ++pg->used;
      ++h->allocs;
      return b;
    }
  }
  return MallocSlow(size, false);
}

[[gnu::always_inline]] inline void Free(void* p) {
  const uintptr_t base = SlotLookup(p);
  if (base != 0) [[likely]] {
    Page* pg = PageAt(base, static_cast<uint32_t>((reinterpret_cast<uintptr_t>(p) >> kPageShift) &
                                                  (kPagesPerArena - 1)));
    // fast_owner is set only on the current span of the class of a heap, by
    // that heap's thread, so equality means this thread owns the span. Only
    // head pages are ever current, so the offset into the span is p's offset
    // into its 64 KiB page. A pointer that is not a carved block start goes
    // to the slow path, which reports it.
    const uint32_t off = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p)) & (kPageSize - 1);
    if (pg->fast_owner.load(std::memory_order_relaxed) == reinterpret_cast<uintptr_t>(tls_heap) &&
        static_cast<char*>(p) < pg->bump &&
        IsBlockOffset(off, pg->div_inv, pg->div_shift, pg->div_limit)) [[likely]] {
      Block* b = static_cast<Block*>(p);
      b->next = pg->free;
      pg->free = b;
      --pg->used;
      return;
    }
  }
  FreeSlow(p);
}

}  // namespace execmem

#endif  // EXECMEM_ALLOCATOR_HEAP_INL_H_
