// Cheap checks of frees, on in every build (issue 12). What is checked:
//
//  * Double free of a small block (any class). Every block on a free list —
//    a span's `free`, a heap's remote list, the orphanage's — holds the free
//    key of its span in its second word (blocks are at least 16 bytes), and
//    a block handed out has 0 there until the program writes it. A free that
//    finds the key goes to the slow path, which confirms before reporting
//    (as glibc's tcache does with its key): on the owning thread it looks for
//    the block on the span's free list and the heap's remote list; for the
//    orphanage, under its lock; for a span of another thread (whose lists
//    only that thread may walk) it checks that the first word is a
//    free-list link (null or a small block start). A program word that
//    happens to equal the key only costs that walk.
//  * Double free of a large block: the span is kFree (in the thread's large
//    cache or back in the pool) and its descriptor still names the pointer.
//  * Double free of a huge block: its mapping is gone, and the pointer is
//    one of the last kHugeFreedRing huge blocks freed.
//  * Invalid pointers: foreign, inside the allocator's metadata, never
//    handed out, or inside a block (reported with the block and the offset).
//  * Sized frees (free_sized, free_aligned_sized, sized operator delete,
//    execmem::deallocate(p, n)): the size must be one the block could have
//    been allocated (or realloc'ed in place) for — SizedFreeFits.
//
// Each finding is one line on stderr, then abort(), e.g.
//   execmem: free(): double free of 0x7f3a0c010030 (a 48-byte block of executor "q42")
//
//  * Writes after free that reach a free block's second word (issue 19):
//    malloc checks that the block it takes still holds the key (a memset or
//    a stale pointer's store over the freed block removes it) and reports
//    "write after free" instead of handing the block out.
//
// Cost: the malloc fast path compares the second word with the key and
// clears it (a compare and a store); the free fast path compares it with the
// key and stores the key (3 instructions), and its page-map lookup masks the
// slot instead of bounds-checking it (1 fewer): +5 instructions per
// malloc+free pair in tests/fastpath_golden_test.sh. The
// key is the address of the span's descriptor: a value in a register on the
// fast path (a secret would cost a load), and one no program keeps in its
// data, since it points into execmem's metadata.
//
// What is NOT caught here: a free of a block that was freed and then handed
// out again (that free is legitimate), a double free whose block a
// use-after-free write has overwritten, a write after free that spares the
// second word (or that the block's next malloc never sees), and a free into
// a span that went back to the pool (reported as an invalid pointer). The
// secure mode adds more.
#ifndef EXECMEM_CACHE_CHECK_H_
#define EXECMEM_CACHE_CHECK_H_

#include <cstddef>
#include <cstdint>

#include "cache/span.h"
#include "pool/pool.h"

namespace execmem {

class Tenant;
class Heap;

// ---- the free key (second word of a free block) ----
using KeyWord [[gnu::may_alias]] = uintptr_t;

// The key of blocks of the span whose head descriptor is `head`.
[[gnu::always_inline]] inline uintptr_t FreeKey(const Page* head) {
  return reinterpret_cast<uintptr_t>(head);
}
[[gnu::always_inline]] inline bool HasFreeKey(const Block* b, const Page* head) {
  return reinterpret_cast<const KeyWord*>(b)[1] == FreeKey(head);
}
[[gnu::always_inline]] inline void MarkFree(Block* b, const Page* head) {
  reinterpret_cast<KeyWord*>(b)[1] = FreeKey(head);
}
[[gnu::always_inline]] inline void MarkHandedOut(Block* b) { reinterpret_cast<KeyWord*>(b)[1] = 0; }

// Whether `size` is one a block of `usable` bytes could have been allocated
// for: not above it, and more than half of it (no request gets a block more
// than twice its size; a realloc that shrinks keeps the block only down to
// half) — except for the smallest class and for aligned requests, which may
// get much larger blocks (then only `size <= usable` is checked).
[[gnu::always_inline]] inline bool SizedFreeFits(size_t size, size_t usable, bool aligned) {
  return size <= usable && (aligned || usable <= 16 || size > usable / 2);
}

// Walks at most `limit` links of a free list (a corrupt list cannot loop us).
inline bool OnList(const Block* list, const Block* b, uint64_t limit) {
  for (uint64_t n = 0; list != nullptr && n <= limit; ++n, list = list->next) {
    if (list == b) return true;
  }
  return false;
}

// ---- slow path (check.cc) ----
// b has the free key of its span `head` owned by `owner`; h is the calling
// thread's heap. True if b is really free (see above).
bool ConfirmFreeBlock(Heap* h, Heap* owner, Page* head, const Block* b);

// A free-list link: null, or the start of a small block in execmem's memory.
inline bool LooksLikeLink(const Block* next) {
  if (next == nullptr) return true;
  const Page* pg = SpanHeadOf(next);
  if (pg == nullptr || pg->kind != PageKind::kSmall || pg->block_size == 0) return false;
  const uintptr_t a = reinterpret_cast<uintptr_t>(next);
  const uintptr_t off = a - reinterpret_cast<uintptr_t>(PageStart(pg));
  return off % pg->block_size == 0 && a < reinterpret_cast<uintptr_t>(pg->limit) &&
         a >= reinterpret_cast<uintptr_t>(FirstBlock(pg));
}

// (Freed huge blocks are remembered by large.cc: HugeFreedSize, large.h.)

// The reports: one line on stderr, then abort(). `e` may be null (the
// executor is not known, e.g. it may be destroyed).
[[noreturn]] void ReportDoubleFree(const char* op, const void* p, size_t block_size,
                                   const Tenant* e);
[[noreturn]] void ReportDoubleFreeNamed(const char* op, const void* p, size_t block_size,
                                        const char* exec_name);
// p lies `offset` bytes into a block of `block_size` bytes.
[[noreturn]] void ReportInteriorPointer(const char* op, const void* p, size_t offset,
                                        size_t block_size, const Tenant* e);
[[noreturn]] void ReportWrongSize(const char* op, const void* p, size_t size, size_t block_size,
                                  const Tenant* e);
// The free block p (on a span's free list) lost its free key: written after
// it was freed.
[[noreturn]] void ReportWriteAfterFree(const char* op, const void* p, size_t block_size,
                                       const Tenant* e);
// p is not a block execmem handed out (foreign, metadata, never handed out).
[[noreturn]] void ReportInvalidPointer(const char* op, const void* p);

}  // namespace execmem

#endif  // EXECMEM_CACHE_CHECK_H_
