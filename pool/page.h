// The arena layout and the pool's words of page descriptors.
//
// Memory comes in 256 MiB arenas aligned to 256 MiB. An arena is 4096 pages of
// 64 KiB; its first kMetaPages pages hold the arena header and one
// kDescriptorSize-byte descriptor per page (kDescriptorPages), then the
// pool's bitmaps and free times (kPoolMetaPages, pool/arena.h). A span is a
// run of pages handed out together; its first page's descriptor (the head)
// describes it.
//
// Ownership of a descriptor: the pool claims its first words, PoolPage (kind
// and span_pages); the rest is the cache's span descriptor (cache/span.h),
// opaque here. While a page is free (in the pool) its kind is kFree and
// nothing else in the descriptor is meaningful; the pool's own state lives
// in pool/arena.h. When the pool hands out a span it sets the head's
// span_pages and kind kFree; from then on the cache owns the descriptors of
// the span's pages (it marks every page kFree again before giving it back).
// The arena header's huge_owner is an opaque owner word: the pool never
// reads it.
#ifndef EXECMEM_POOL_PAGE_H_
#define EXECMEM_POOL_PAGE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace execmem {

inline constexpr size_t kPageShift = 16;
// 64 KiB. Measured (2026-12-01, callgrind and peak footprint under valgrind,
// most-free partial span first): 16 KiB pages cut larson's peak footprint
// from 27.8 to 20.6 MiB but cost 1.6x the instructions on randorder and
// 1.4x on outoforder (more span changes per allocation); 32 KiB sat between.
// The layout follows kPageShift (descriptor and pool pages are computed).
inline constexpr size_t kPageSize = size_t{1} << kPageShift;  // 64 KiB
// 256 MiB arenas. A free run cannot cross an arena's end, so with 64 MiB
// arenas (until 2026-12-07) a freed block next to an arena's end could not
// serve a longer request and blocks of 3-30 MiB packed two or three to an
// arena: execmem-wl-largechurn took fresh pages (and purged cached ones to
// stay under the cache bound) at 26 of its 176 large requests, 111.5-112.5 k
// faults; with 256 MiB arenas 101-106 k, below tcmalloc's 102.4 k at the same
// peak RSS (docs/large-blocks.md, seventh step). The span limit stays what a
// 64 MiB arena held (kMaxSpanPages): longer blocks keep their own mappings,
// which grow by mremap without a copy.
inline constexpr size_t kArenaShift = 28;
inline constexpr size_t kArenaSize = size_t{1} << kArenaShift;      // 256 MiB
inline constexpr uint32_t kPagesPerArena = kArenaSize / kPageSize;  // 4096
// Metadata at the start of every arena: the descriptors (kDescriptorSize
// bytes a page: two to a cache-line pair), then the pool's bitmaps and free
// times (pool/arena.h: about 4.25 bytes a page; its static_assert checks the
// room).
inline constexpr size_t kDescriptorSize = 128;
inline constexpr uint32_t kDescriptorPages =
    static_cast<uint32_t>((kPagesPerArena * kDescriptorSize + kPageSize - 1) / kPageSize);
inline constexpr uint32_t kPoolMetaPages =
    static_cast<uint32_t>((kPagesPerArena * 5 + 256 + kPageSize - 1) / kPageSize);
inline constexpr uint32_t kMetaPages = kDescriptorPages + kPoolMetaPages;
// The pages of an arena after its metadata, and the longest span: 1021 pages
// (63.8 MiB), what a 64 MiB arena held; a larger block is a huge block.
inline constexpr uint32_t kArenaFreePages = kPagesPerArena - kMetaPages;
inline constexpr uint32_t kMaxSpanPages = (uint32_t{64} << 20 >> kPageShift) - 3;
static_assert(kMaxSpanPages <= kArenaFreePages);
// User addresses on x86-64 / aarch64 Linux fit in 47 bits.
inline constexpr unsigned kAddressBits = 47;

// What a page descriptor is to the pool: the words it claims at the start of
// each kDescriptorSize-byte descriptor (the cache's span descriptor, Page in
// cache/span.h, derives from it and owns the rest). The pool indexes
// descriptors by their stride (PoolPageAt, DescriptorAfter), never by
// sizeof(PoolPage).
enum class PageKind : uint8_t {
  kFree = 0,  // in the pool (or never handed out): the only kind the pool writes or reads
  kSmall,     // the cache's: head of a span of small blocks of one size class
  kLarge,     // the cache's: head of a span holding one large block
  kTail,      // the cache's: non-first page of a handed-out span
};

struct PoolPage {
  PageKind kind;
  uint16_t span_pages;  // a span's head: its length in pages
};
static_assert(sizeof(PoolPage) == 4 && alignof(PoolPage) == 2,
              "the cache's span descriptor lays out its own fields from byte 4 (cache/span.h)");

struct ArenaHeader {
  uint32_t id;
  uint32_t huge;          // 1: a dedicated mapping for one huge block
  size_t mapped_bytes;    // huge: bytes mapped
  uintptr_t huge_user;    // huge: the pointer handed out
  size_t huge_usable;     // huge: usable bytes
  uintptr_t huge_owner;   // huge: word of the account charged
  size_t huge_requested;  // huge, secure mode: bytes asked for (cache/secure.h)
};
static_assert(sizeof(ArenaHeader) <= kDescriptorSize, "the header lives in descriptor 0's slot");
static_assert(kPagesPerArena * kDescriptorSize <= kDescriptorPages * kPageSize,
              "the descriptors fill kDescriptorPages; the pool's pages follow (pool/arena.h)");

// Arena-relative helpers. The arena base is the kArenaSize-aligned address.
inline ArenaHeader* ArenaOf(uintptr_t base) { return reinterpret_cast<ArenaHeader*>(base); }
// Descriptors are kDescriptorSize apart: index them with these, not with
// PoolPage pointer arithmetic.
inline PoolPage* PoolPageAt(uintptr_t base, uint32_t index) {
  return reinterpret_cast<PoolPage*>(base + uintptr_t{index} * kDescriptorSize);
}
// The descriptor of the page `i` pages after p's.
inline PoolPage* DescriptorAfter(PoolPage* p, uint32_t i) {
  return reinterpret_cast<PoolPage*>(reinterpret_cast<uintptr_t>(p) +
                                     uintptr_t{i} * kDescriptorSize);
}
inline uintptr_t ArenaBaseOfPage(const PoolPage* p) {
  return reinterpret_cast<uintptr_t>(p) & ~(kArenaSize - 1);
}
inline uint32_t PageIndexOf(const PoolPage* p) {
  return static_cast<uint32_t>((reinterpret_cast<uintptr_t>(p) & (kArenaSize - 1)) /
                               kDescriptorSize);
}
inline char* PageStart(const PoolPage* p) {
  return reinterpret_cast<char*>(ArenaBaseOfPage(p) + (uintptr_t{PageIndexOf(p)} << kPageShift));
}

// ---- the page map: 64 MiB slot -> arena base (or 0) -----------------------
// 2^21 slots cover the 47-bit user address space; 16 MiB of zero BSS of which
// only the touched OS pages become resident. A slot is 64 MiB, not an
// arena's 256 MiB: an arena sets its four slots, a huge block only the slots
// its mapping covers, so that another mapping in the rest of a huge block's
// 256 MiB-aligned range (glibc's 64 MiB heaps of other threads, in a process
// that mixes allocators) is never taken for execmem's (fuzz.api found it).
inline constexpr size_t kSlotShift = 26;
inline constexpr size_t kSlotSize = size_t{1} << kSlotShift;
static_assert(kSlotShift <= kArenaShift);
inline constexpr size_t kSlots = size_t{1} << (kAddressBits - kSlotShift);
extern std::atomic<uintptr_t> g_slots[kSlots];

// The arena base covering p, or 0 when p is not in memory execmem manages.
inline uintptr_t SlotLookup(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t slot = a >> kSlotShift;
  if (slot >= kSlots) [[unlikely]]
    return 0;
  return g_slots[slot].load(std::memory_order_acquire);
}

}  // namespace execmem

#endif  // EXECMEM_POOL_PAGE_H_
