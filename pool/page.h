// Page descriptors and the arena layout, shared by the pool and the allocator.
//
// Memory comes in 64 MiB arenas aligned to 64 MiB. An arena is 1024 pages of
// 64 KiB; its first kMetaPages pages hold the arena header and one 128-byte
// descriptor (Page) per page (kDescriptorPages), then the pool's bitmaps and
// free times (kPoolMetaPages, pool/arena.h). A span is a run of pages handed out together;
// its first page's descriptor (the head) describes it and every other page of
// the span (a tail) points back to the head.
//
// Ownership of the fields: while a page is free (in the pool) its descriptor
// has kind kFree and nothing else in it is meaningful; the pool's own state
// lives in pool/arena.h. When the pool hands out a span it sets the head's
// span_pages and kind kFree; from then on the allocator owns every field; the
// owner-thread fields are touched only by the thread whose heap owns the page.
// The owner words (fast_owner, owner, account, huge_owner) are opaque here:
// the pool never reads them, and only the allocator knows what they point at
// (cache/heap.h's accessors).
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
inline constexpr size_t kArenaShift = 26;
inline constexpr size_t kArenaSize = size_t{1} << kArenaShift;      // 64 MiB
inline constexpr uint32_t kPagesPerArena = kArenaSize / kPageSize;  // 1024
// Metadata at the start of every arena: the descriptors (128 bytes a page),
// then the pool's bitmaps and free times (pool/arena.h: about 4.25 bytes a
// page; its static_assert checks the room).
inline constexpr uint32_t kDescriptorPages =
    static_cast<uint32_t>((kPagesPerArena * 128 + kPageSize - 1) / kPageSize);
inline constexpr uint32_t kPoolMetaPages =
    static_cast<uint32_t>((kPagesPerArena * 5 + 256 + kPageSize - 1) / kPageSize);
inline constexpr uint32_t kMetaPages = kDescriptorPages + kPoolMetaPages;
inline constexpr uint32_t kMaxSpanPages = kPagesPerArena - kMetaPages;
// User addresses on x86-64 / aarch64 Linux fit in 47 bits.
inline constexpr unsigned kAddressBits = 47;

struct Block {
  Block* next;
};

enum class PageKind : uint8_t {
  kFree = 0,  // in the pool (or never handed out)
  kSmall,     // head of a span of small blocks of one size class
  kLarge,     // head of a span holding one large block
  kTail,      // non-first page of a handed-out span
};

struct alignas(64) Page {
  // ---- owner-thread fields (first cache line: the fast paths) ----
  // Invariant (small spans, owner's view):
  //   used - current + (blocks on `free`) + (blocks never carved from bump)
  //        == capacity
  // Blocks freed by other threads are counted in `used` until the owner
  // collects them (from `thread_free` or its heap's remote list).
  // Blocks malloc hands out (a pop is a load and a branch) and the owner's
  // frees push: the block freed last is handed out first, still in cache.
  Block* free;
  // Owner word of the fast free path: the owning heap's while the span may
  // take frees on the fast path (the allocator says when), else 0. Written by
  // the owner, read by any freeing thread: relaxed atomic (a plain load on
  // x86-64 and aarch64) so that the comparison is race-free.
  std::atomic<uintptr_t> fast_owner;
  uint32_t used;  // blocks handed out and not freed back (+ `current`)
  uint32_t block_size;
  // Divisibility test for block starts (Granlund-Montgomery): an offset x into
  // the span is a multiple of block_size iff rotr(x * div_inv, div_shift) <= div_limit.
  uint32_t div_inv;
  uint32_t div_limit;
  char* bump;  // first never-carved byte; blocks are carved lazily
  uint8_t size_class;
  PageKind kind;
  uint8_t in_full;  // on the heap's full list
  uint8_t zeroed;   // span came fresh from the OS (all zero)
  uint16_t span_pages;
  uint16_t head_offset;  // kTail: pages back to the head
  uint8_t div_shift;
  uint8_t secure;  // allocator's secure-mode bits (cache/secure.h); 0 otherwise
  // 1 while the span is its heap's current span of the class: `used` then
  // counts one block more, so that a free on the fast path finds used == 0
  // only on a span that is not current (owner only).
  uint8_t current;
  uint8_t reserved0;
  uint32_t accounted_used;  // live blocks as last reported to the executor (owner only)
  uint64_t reserved1;

  // ---- shared / slow-path fields (second cache line) ----
  std::atomic<uintptr_t> owner;  // owner word; read by remote freers
  // Blocks other threads freed into the span, pushed with a CAS; the low bits
  // are the allocator's (cache/heap.h: where remote frees go).
  std::atomic<uintptr_t> thread_free;
  uintptr_t account;  // word of the account charged for this span
  Page* prev;         // heap page lists (owner only)
  Page* next;
  char* limit;           // end of the last whole block of the span
  uintptr_t large_user;  // kLarge: the pointer handed out
  uint32_t large_size;   // kLarge: usable bytes (a span is below 4 GiB)
  uint32_t capacity;     // blocks in the span
};
static_assert(sizeof(Page) == 128, "two descriptors per cache-line pair; metadata fits kMetaPages");
static_assert(offsetof(Page, owner) == 64,
              "the owner's fast-path fields fill the first cache line; what other threads "
              "write (thread_free) is in the second");

struct ArenaHeader {
  uint32_t id;
  uint32_t huge;          // 1: a dedicated mapping for one huge block
  size_t mapped_bytes;    // huge: bytes mapped
  uintptr_t huge_user;    // huge: the pointer handed out
  size_t huge_usable;     // huge: usable bytes
  uintptr_t huge_owner;   // huge: word of the account charged
  size_t huge_requested;  // huge, secure mode: bytes asked for (cache/secure.h)
};
static_assert(sizeof(ArenaHeader) <= sizeof(Page), "the header lives in descriptor 0's slot");
static_assert(kPagesPerArena * sizeof(Page) <= kDescriptorPages * kPageSize,
              "descriptors fill pages 0-1; page 2 is the pool's (pool/arena.h)");

// Arena-relative helpers. The arena base is the 64 MiB-aligned address.
inline ArenaHeader* ArenaOf(uintptr_t base) { return reinterpret_cast<ArenaHeader*>(base); }
inline Page* PageAt(uintptr_t base, uint32_t index) {
  return reinterpret_cast<Page*>(base) + index;
}
inline uintptr_t ArenaBaseOfPage(const Page* p) {
  return reinterpret_cast<uintptr_t>(p) & ~(kArenaSize - 1);
}
inline uint32_t PageIndexOf(const Page* p) {
  return static_cast<uint32_t>((reinterpret_cast<uintptr_t>(p) & (kArenaSize - 1)) / sizeof(Page));
}
inline char* PageStart(const Page* p) {
  return reinterpret_cast<char*>(ArenaBaseOfPage(p) + (uintptr_t{PageIndexOf(p)} << kPageShift));
}

// ---- the page map: 64 MiB slot -> arena base (or 0) -----------------------
// 2^21 slots cover the 47-bit user address space; 16 MiB of zero BSS of which
// only the touched OS pages become resident.
inline constexpr size_t kSlots = size_t{1} << (kAddressBits - kArenaShift);
extern std::atomic<uintptr_t> g_slots[kSlots];

// The arena base covering p, or 0 when p is not in memory execmem manages.
inline uintptr_t SlotLookup(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t slot = a >> kArenaShift;
  if (slot >= kSlots) [[unlikely]]
    return 0;
  return g_slots[slot].load(std::memory_order_acquire);
}

}  // namespace execmem

#endif  // EXECMEM_POOL_PAGE_H_
