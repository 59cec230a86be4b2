// Large blocks (above kMaxSmallSize): one span each, charged to the executor
// when the span is taken (and kept in the freeing thread's small cache of
// large spans until trimmed); huge blocks (more than an arena) get their own mapping.
#ifndef EXECMEM_ALLOCATOR_LARGE_H_
#define EXECMEM_ALLOCATOR_LARGE_H_

#include <cstddef>

#include "pool/page.h"

namespace execmem {

class Heap;

// Usable sizes of large blocks are multiples of this (waste <= 1.6 % above 256 KiB).
inline constexpr size_t kLargeQuantum = 4096;

// headroom: make the span a quarter larger than the block, so that a block
// that grows by realloc can grow in place next time (amortised growth).
void* LargeAlloc(Heap* h, size_t size, size_t alignment, bool zero, bool headroom = false);
// h: the freeing thread's heap, which may keep the span for reuse.
void LargeFree(Heap* h, Page* head);
// Gives a large span back to the pool and uncharges its executor.
void ReleaseLargeSpan(Page* head);
// Shrinks or grows a large block within its span; false if it must move.
bool LargeResizeInPlace(Page* head, size_t size);
void HugeFree(ArenaHeader* hdr);

}  // namespace execmem

#endif  // EXECMEM_ALLOCATOR_LARGE_H_
