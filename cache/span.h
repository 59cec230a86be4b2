// The cache's span descriptor: what a page descriptor holds beyond the
// pool's words (pool/page.h, PoolPage: kind and span_pages).
//
// Every page of an arena has a kDescriptorSize-byte descriptor. The pool
// claims its first words (PoolPage) and the cache's Page derives from it and
// owns the rest, as snmalloc's front end owns its slab metadata while the
// back end claims its words explicitly. A span is a run of pages the pool
// handed out together; its first page's descriptor (the head) describes it
// and every other page of the span (a tail) points back to the head.
//
// Ownership of the fields: while a page is free (in the pool) only the pool
// reads its descriptor (kind kFree). When the pool hands out a span (head's
// span_pages set, kind kFree) the cache owns every field of the span's
// descriptors; the owner-thread fields are touched only by the thread whose
// heap owns the span. The owner words (fast_owner, owner, account) are
// opaque words here; cache/heap.h's accessors say what they point at.
#ifndef EXECMEM_CACHE_SPAN_H_
#define EXECMEM_CACHE_SPAN_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "cache/size_class.h"
#include "pool/pool.h"

namespace execmem {

struct Block {
  Block* next;
};

struct alignas(64) Page : PoolPage {
  // ---- owner-thread fields (first cache line: the fast paths) ----
  // (kind and span_pages, the pool's words, are bytes 0-3.)
  uint8_t size_class;
  uint8_t in_full;  // on the heap's full list
  uint8_t zeroed;   // span came fresh from the OS (all zero)
  // 1 on a span the threads of its executor share (heap_internal.h:
  // IsSharedClass), owned by g_shared_heap; 0 on every other small span.
  uint8_t shared;
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
  // Divisibility test for block starts (Lemire, Kaser and Kurz, 2019): an
  // offset x < 2^32 into the span is a multiple of block_size iff
  // x * div_magic < div_magic (mod 2^64), div_magic = 2^64 / block_size
  // rounded up (IsBlockOffset): a multiply and a compare, no shift.
  // 0 on a secure span (secure != 0), so that the inline paths that test a
  // block start (FreeFast, SmallBlockAt) refuse every block of it with no
  // test of `secure`; the slow paths use the class's (BlockMagic).
  uint64_t div_magic;
  char* bump;            // first never-carved byte (FirstBlock at the start); carved lazily
  uint16_t head_offset;  // kTail: pages back to the head
  uint8_t secure;        // allocator's secure-mode bits (cache/secure.h); 0 otherwise
  union {
    // Small spans: 1 while the span is its heap's current span of the class:
    // `used` then counts one block more, so that a free on the fast path
    // finds used == 0 only on a span that is not current (owner only).
    uint8_t current;
    // kLarge (and a large span in a thread's cache): 1 when its block was
    // made to grow (realloc's headroom) or grew in place, so that the span,
    // once freed, may serve a growing block shorter than itself
    // (cache/large.cc). Set whenever a span becomes large; InitSmallSpan
    // sets `current`.
    uint8_t grows;
  };
  uint32_t accounted_used;  // live blocks as last reported to the executor (owner only)
  // A secure span's free list (cache/secure_policy.h: encoded links), kept
  // apart from `free` so that the inline fast paths, which pop `free`, never
  // see a secure span's blocks: `free` stays null on secure spans (owner only).
  Block* secure_free;

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
  uint32_t capacity;     // blocks from FirstBlock on (span.h: colouring)
};
static_assert(sizeof(Page) == kDescriptorSize,
              "one descriptor a page, kDescriptorSize apart: Page arithmetic is the pool's stride");
// Page derives from the pool's words, so it is not standard-layout and
// offsetof is only conditionally supported: GCC and Clang give the
// single-inheritance layout these checks need.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
static_assert(offsetof(Page, kind) == 0 && offsetof(Page, span_pages) == 2 &&
                  offsetof(Page, size_class) == sizeof(PoolPage),
              "the pool's words first, then the cache's fields");
static_assert(offsetof(Page, owner) == 64,
              "the owner's fast-path fields fill the first cache line; what other threads "
              "write (thread_free) is in the second");
#pragma GCC diagnostic pop

// The descriptor of page `index` of the arena at `base`.
inline Page* PageAt(uintptr_t base, uint32_t index) {
  return static_cast<Page*>(PoolPageAt(base, index));
}
// A span the pool handed out (pool::AllocSpan), as the cache's descriptor.
inline Page* AsPage(PoolPage* head) { return static_cast<Page*>(head); }

// ---- Page::thread_free: [count | first block | kNotified | kHeapMode] ----
// The low bits say where remote frees go (cache/heap.h); the block pointer
// heads the span's list of other threads' frees, and the top bits count the
// blocks on it, so that the owner collects a list onto an empty free list
// without walking it (CollectThreadFree): each block of the list was written
// last by the thread that freed it, so a walk took a cache miss a block, one
// after another (larson: 12-14 % of its CPU samples).
inline constexpr uintptr_t kHeapMode = 1;
inline constexpr uintptr_t kNotified = 2;
inline constexpr uintptr_t kThreadFreeBits = kHeapMode | kNotified;  // blocks are 8-aligned
inline constexpr unsigned kThreadFreeCountShift = 48;
inline constexpr uintptr_t kThreadFreeOne = uintptr_t{1} << kThreadFreeCountShift;
inline constexpr uintptr_t kThreadFreeBlock = (kThreadFreeOne - 1) & ~kThreadFreeBits;
static_assert(kAddressBits <= kThreadFreeCountShift,
              "a block's address (below 2^kAddressBits: the page map) leaves the count's bits");
static_assert(
    [] {
      for (uint32_t n : kSizeClasses.capacity) {
        if (n >= (uintptr_t{1} << (64 - kThreadFreeCountShift))) return false;
      }
      return true;
    }(),
    "every block of a span fits the count");
// The first block of a thread_free word's list, and how many the list holds.
inline Block* ThreadFreeHead(uintptr_t tf) { return reinterpret_cast<Block*>(tf & kThreadFreeBlock); }
inline uint32_t ThreadFreeCount(uintptr_t tf) {
  return static_cast<uint32_t>(tf >> kThreadFreeCountShift);
}
// The word after b is pushed onto the list of word tf (kNotified set).
inline uintptr_t ThreadFreePushed(uintptr_t tf, const Block* b) {
  return ((tf & ~(kThreadFreeOne - 1)) + kThreadFreeOne) | reinterpret_cast<uintptr_t>(b) |
         kNotified;
}

// The divisibility constant of a small span's blocks, whatever its policy
// (Page::div_magic is 0 on secure spans).
inline uint64_t BlockMagic(const Page* pg) { return kSizeClasses.div_magic[pg->size_class]; }

// The end of what small span pg has carved (`bump`), read by any thread: a
// block start at or past it was never handed out. `bump` only grows while
// the span is handed out, and every store to it then is atomic (Carve and
// secure mode's CarveShuffled; InitSmallSpan's plain ones precede the span's
// publication). A block the span handed out reached the reading thread
// through the program's synchronisation, which orders the carving store
// before this load: a stale value can only refuse a block never handed out.
// A relaxed load: a plain move on x86-64 and aarch64, and `bump` is in the
// descriptor's first cache line, beside kind, block_size and div_magic.
inline char* CarvedEnd(const Page* pg) {
  return std::atomic_ref<char*>(const_cast<Page*>(pg)->bump).load(std::memory_order_relaxed);
}
// Moves the carved end of pg, handed out, to `end` (the store CarvedEnd reads).
inline void SetCarvedEnd(Page* pg, char* end) {
  std::atomic_ref<char*>(pg->bump).store(end, std::memory_order_relaxed);
}

// The head of the span pg is a page of.
inline Page* HeadOf(Page* pg) { return pg->kind == PageKind::kTail ? pg - pg->head_offset : pg; }
// The head descriptor of the span p lies in, or nullptr when p is not in a
// (non-huge) arena's pages; the span may be of any kind, free included.
inline Page* SpanHeadOf(const void* p) {
  const uintptr_t base = SlotLookup(p);
  if (base == 0 || ArenaOf(base)->huge) return nullptr;
  const uint32_t idx =
      static_cast<uint32_t>((reinterpret_cast<uintptr_t>(p) >> kPageShift) & (kPagesPerArena - 1));
  return idx < kMetaPages ? nullptr : HeadOf(PageAt(base, idx));
}
// Live blocks of a small span (its `used` without the current span's extra one).
inline uint32_t Live(const Page* pg) { return pg->used - pg->current; }
// Blocks of a small span not carved yet (past `bump`); the owner's view.
inline uint32_t Uncarved(const Page* pg) {
  return static_cast<uint32_t>((pg->limit - pg->bump) / pg->block_size);
}

// ---- span colouring ----
// Every small span starts at a 64 KiB boundary, so without colouring the
// first blocks of all spans (the ones a fresh span hands out first, and the
// hot ones of a thread that holds a few blocks of many classes) sit at page
// offset 0 and share a handful of L1 sets: ownobjects' write loop ran up to
// 3 x slower in one round of ten (docs/performance.md, "Span colouring").
// A default-mode span of blocks of at most kColorMaxBlock bytes therefore
// skips its first ColorBlocks blocks: its first block starts at one of the 64
// line offsets of the first 4 KiB, spread by page index and class (the Bonwick
// slab allocator's colouring). Offsets stay multiples of block_size from the
// page start, so the fast paths' divisibility test is unchanged; the skipped
// blocks carry the free key (InitSmallSpan), so that a free of one leaves the
// fast path, and the slow path reports it as an invalid pointer (it lies
// below FirstBlock). Secure spans are not coloured (their policy walks from
// PageStart).
inline constexpr uint32_t kColorMaxBlock = 512;
inline constexpr uint32_t kColorLines = 64;  // 4 KiB / 64 B: every L1 set of a 4 KiB page
// Blocks skipped at the start of small span `head` (its kind, class, block
// size and secure bits set).
inline uint32_t ColorBlocks(const Page* head) {
  if (head->secure != 0 || head->block_size > kColorMaxBlock) return 0;
  const uint32_t line = (PageIndexOf(head) * 23 + uint32_t{head->size_class} * 7) % kColorLines;
  return (line * 64 + head->block_size - 1) / head->block_size;
}
// The first block of small span `head`.
inline char* FirstBlock(const Page* head) {
  return PageStart(head) + size_t{ColorBlocks(head)} * head->block_size;
}

// Whether a small span has a block to hand out (free, or never carved).
inline bool HasFree(const Page* pg) { return pg->free != nullptr || pg->bump < pg->limit; }

// ---- page lists (owner only) ----
// Page lists: linked through next (null-terminated), the first page's prev
// naming the last, so that a page can be appended (ListPushBack).
inline void ListPush(Page** head, Page* p) {
  Page* first = *head;
  p->next = first;
  if (first != nullptr) {
    p->prev = first->prev;
    first->prev = p;
  } else {
    p->prev = p;
  }
  *head = p;
}

inline void ListPushBack(Page** head, Page* p) {
  Page* first = *head;
  p->next = nullptr;
  if (first == nullptr) {
    p->prev = p;
    *head = p;
    return;
  }
  Page* last = first->prev;
  last->next = p;
  p->prev = last;
  first->prev = p;
}

inline void ListRemove(Page** head, Page* p) {
  Page* first = *head;
  if (p == first) {
    *head = p->next;
  } else {
    p->prev->next = p->next;
  }
  if (p->next != nullptr) {
    p->next->prev = p->prev;  // the new first page's prev is still the last
  } else if (p != first) {
    first->prev = p->prev;  // p was the last
  }
  p->prev = p->next = nullptr;
}

}  // namespace execmem

#endif  // EXECMEM_CACHE_SPAN_H_
