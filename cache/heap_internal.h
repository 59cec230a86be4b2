// Internals shared by the cache's .cc files (never included outside cache/).
// Grouped by the file that defines them, lowest first (cache.h: the inner
// order); a file calls only what the files below it define.
#ifndef EXECMEM_CACHE_HEAP_INTERNAL_H_
#define EXECMEM_CACHE_HEAP_INTERNAL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "cache/heap.h"
#include "cache/span.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {

// ---- spans (span.cc) ----
void SyncPage(Heap* h, Page* pg);
void InitSmallSpan(Page* head, Heap* h, size_t cls);
// Carves the next batch of never-used blocks of pg onto its free list.
void Carve(Page* pg);
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
// An empty span on h's partial list: back to the pool.
void ReleasePartial(Heap* h, Page* pg);
// A span of h got a block back off the fast path: off the full list, and
// back to the pool if that was its last block. True if it went back.
bool AfterSlowFree(Heap* h, Page* pg);
void MakeCurrent(Heap* h, Page* pg);
void LocalFree(Heap* h, Page* pg, Block* b);
Page* SmallPageOf(void* p);

// ---- frees across threads and the orphanage (orphanage.cc) ----
void RemoteFree(Page* pg, Block* b);
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
// Unlinks a heap from its executor's list (after Abandon).
void UnlinkFromExecutor(Heap* h);

// ---- threads (thread.cc) ----
// The calling thread's heap, creating the thread's state on first use;
// nullptr when out of memory.
Heap* CurrentHeapForSlowPath();

// ---- slow paths (heap.cc) ----
// Takes a new span for class c (charging the executor). False: out of memory.
bool NewSpan(Heap* h, size_t c, size_t request);
// Resolves p to its span head and checks it is a live block start; nullptr
// for a huge block (*huge set). Reports invalid pointers.
Page* ResolveBlock(const void* p, ArenaHeader** huge, const char* op);

}  // namespace execmem

#endif  // EXECMEM_CACHE_HEAP_INTERNAL_H_
