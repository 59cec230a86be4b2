// Large blocks (above kMaxSmallSize): one span each, charged to the executor
// when the span is taken (and kept in the freeing thread's small cache of
// large spans until trimmed); huge blocks (more than an arena) get their own mapping.
#ifndef EXECMEM_CACHE_LARGE_H_
#define EXECMEM_CACHE_LARGE_H_

#include <cstddef>
#include <cstdint>

#include "cache/span.h"
#include "pool/pool.h"

namespace execmem {

class Heap;
class Tenant;

// The largest request any block can serve (half the user address space);
// above it LargeAlloc refuses with its report, and no size arithmetic runs.
inline constexpr size_t kMaxRequest = size_t{1} << (kAddressBits - 1);

// A huge block's mapping starts with its header's region, as long as an
// arena's descriptors (kDescriptorPages pages, 512 KiB): the inline fast
// free path takes the mapping for an arena and reads the descriptor of page
// (p >> kPageShift) mod kPagesPerArena, which then always lies in the header's
// region (zero past the ArenaHeader, which no fast path accepts), never in the
// block's bytes (tests/death_test.cc: AHugeBlocksBytesAreNeverTakenForADescriptor).
// Address space only: the region past the header's page is never touched.
inline constexpr size_t kHugeLead = size_t{kDescriptorPages} << kPageShift;

// Usable sizes of large blocks are multiples of this (waste <= 1.6 % above 256 KiB).
inline constexpr size_t kLargeQuantum = 4096;

// Spans up to this length (2 MiB) come in large size classes; longer ones
// have the block's exact page count.
inline constexpr uint32_t kLargeClassMaxPages = static_cast<uint32_t>((size_t{2} << 20) >> kPageShift);

// Large size classes: the pages of a span for `bytes`, exact up to 8 pages,
// then 8 classes per doubling (at most 12.5 % more) up to kLargeClassMaxPages,
// so that span lengths repeat and the per-thread cache of freed large spans
// (spans of at most 2 MiB) finds matches; exact above, where no thread cache
// keeps a span and the rounding was only committed memory that a dirty span
// reused holds resident (up to 12.5 % of a block of 3-30 MiB: on
// execmem-wl-largechurn 14 MiB of its 334 MiB in use at the peak).
constexpr uint32_t LargeClassPages(size_t bytes) {
  const size_t p = (bytes + kPageSize - 1) >> kPageShift;
  if (p <= 8 || p > kLargeClassMaxPages) return static_cast<uint32_t>(p);
  const int lg = 63 - __builtin_clzll(p);
  const size_t step = size_t{1} << (lg - 3);
  return static_cast<uint32_t>((p + step - 1) & ~(step - 1));
}
static_assert(LargeClassPages(5 * kPageSize) == 5);
static_assert(LargeClassPages(9 * kPageSize) == 9);
static_assert(LargeClassPages(17 * kPageSize + 1) == 18);
static_assert(LargeClassPages(31 * kPageSize) == 32);
static_assert(LargeClassPages(33 * kPageSize) == 33);
static_assert(LargeClassPages(kMaxSpanPages * kPageSize) == kMaxSpanPages);

// realloc growth of a small block of at least this many bytes makes it a large
// block (with headroom), which grows in place from then on.
inline constexpr size_t kReallocPromote = 4096;

// headroom: make the span a quarter larger than the block, so that a block
// that grows by realloc can grow in place next time (amortised growth).
void* LargeAlloc(Heap* h, size_t size, size_t alignment, bool zero, bool headroom = false);
// h: the freeing thread's heap, which may keep the span for reuse.
void LargeFree(Heap* h, Page* head);
// Gives a large span back to the pool and uncharges its executor.
void ReleaseLargeSpan(Page* head);
// h is about to take a span from the pool: counts the growth (Heap::grown)
// and gives back the cached large spans not reused within
// Heap::kCacheAge growths, before the pool is asked, so that it can
// serve the request from their pages.
void AgeLargeCache(Heap* h);
// Shrinks or grows a large block in place: within its span, or by claiming
// the free pages after it (and giving back pages a shrink leaves unused).
// False if it must move.
bool LargeResizeInPlace(Heap* h, Page* head, size_t size);
// Whether the executor e's used can grow by `delta` under its max, h's
// current spans synced first (FitsUnderMax's exact check, heap-inl.h).
[[gnu::noinline]] bool FitsUnderMaxSynced(Heap* h, const Tenant* e, int64_t delta);
// `keep`: its mapping may be kept for the next huge block (pool::FreeHuge);
// secure mode's guarded blocks are unmapped, so that a later access faults.
void HugeFree(ArenaHeader* hdr, bool keep = true);
// Resizes a huge block (mremap: in place or by moving pages, never copying)
// to `size` bytes; returns the block's pointer or nullptr (errno ENOMEM, the
// block unchanged).
void* HugeResize(Heap* h, ArenaHeader* hdr, size_t size);

// ---- freed huge blocks (a free check, check.h) ----
// A huge block freed: remembered, so that a second free is told apart from a
// foreign pointer. kHugeFreedRing of them are kept.
inline constexpr int kHugeFreedRing = 64;
void NoteHugeFreed(uintptr_t user, size_t usable, const Tenant* e);
// If p is a remembered freed huge block, its usable size and the executor's
// name (copied into name[name_cap]); else 0.
size_t HugeFreedSize(uintptr_t p, char* name, size_t name_cap);
// fork(): the lock of the freed-huge ring (executor/runtime.cc's handlers).
void LockChecksForFork();
void UnlockChecksAfterFork(bool child);

}  // namespace execmem

#endif  // EXECMEM_CACHE_LARGE_H_
