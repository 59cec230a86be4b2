// Internals shared by the thread-cache files (heap.cc: spans and slow paths;
// orphanage.cc: spans of exited threads; thread.cc: thread state and
// binding). Not part of any layer's contract: include only from those.
#ifndef EXECMEM_CACHE_HEAP_INTERNAL_H_
#define EXECMEM_CACHE_HEAP_INTERNAL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "cache/heap.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {

// ---- the orphanage (orphanage.cc) ----
extern SpinLock g_orphan_lock;
// Spans of exited threads (and destroyed executors) that still hold live blocks.
extern Heap g_orphanage_storage;
// Orphaned spans wait on the orphanage's partial[class] lists (under
// g_orphan_lock) until their last block is freed or a heap of the same
// executor adopts them (AdoptOrphan). This counts them.
extern std::atomic<uint32_t> g_orphan_spans;
void DrainOrphanageLocked(Heap* orphan) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_orphan_lock);
void DrainOrphanage();
bool AdoptOrphan(Heap* h, size_t c);
// Takes the orphaned span pg for h (whose executor it is charged to) onto
// h's partial list. False if the orphanage is busy or pg is no orphan now.
bool AdoptSpan(Heap* h, Page* pg);

// ---- threads (thread.cc) ----
// The calling thread's heap, creating the thread's state on first use;
// nullptr when out of memory.
Heap* CurrentHeapForSlowPath();
// Unlinks a heap from its executor's list (after Abandon).
void UnlinkFromExecutor(Heap* h);

// ---- spans (heap.cc) ----
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
void ListPush(Page** head, Page* p);
void ListPushBack(Page** head, Page* p);
void ListRemove(Page** head, Page* p);
void SyncPage(Heap* h, Page* pg);
void InitSmallSpan(Page* head, Heap* h, size_t cls);
// Live blocks of a small span (its `used` without the current span's extra one).
inline uint32_t Live(const Page* pg) { return pg->used - pg->current; }
// Owner: moves the span's thread_free list (span mode) onto `free`; the
// number of blocks moved.
uint32_t CollectThreadFree(Page* pg);
// Owner: puts the span in heap mode (heap.h), collecting into `free` the
// blocks that arrive on its list meanwhile.
void EnterHeapMode(Page* pg);
// Owner: span mode again, and frees on the fast path (not for secure heaps).
void EnterSpanMode(Heap* h, Page* pg);
// A full span of h with a free block again: to its partial list.
void Unfull(Heap* h, Page* pg);
void ReleaseSmallSpan(Heap* h, Page* pg);
bool HasFree(const Page* pg);
void MakeCurrent(Heap* h, Page* pg);
void LocalFree(Heap* h, Page* pg, Block* b);
void RemoteFree(Page* pg, Block* b);
Page* SmallPageOf(void* p);
// Takes a new span for class c (charging the executor). False: out of memory.
bool NewSpan(Heap* h, size_t c, size_t request);
// Resolves p to its span head and checks it is a live block start; nullptr
// for a huge block (*huge set). Reports invalid pointers.
Page* ResolveBlock(const void* p, ArenaHeader** huge, const char* op);

}  // namespace execmem

#endif  // EXECMEM_CACHE_HEAP_INTERNAL_H_
