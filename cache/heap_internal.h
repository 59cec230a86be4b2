// Internals shared by the cache's .cc files (never included outside cache/).
// Grouped by the file that defines them, lowest first (cache.h: the inner
// order); a file calls only what the files below it define.
#ifndef EXECMEM_CACHE_HEAP_INTERNAL_H_
#define EXECMEM_CACHE_HEAP_INTERNAL_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cache/check.h"
#include "cache/heap.h"
#include "cache/large.h"
#include "cache/secure_policy.h"
#include "cache/span.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {

// ---- the default mode's policy ----
// The span and free-list code below is templates on a policy (the hooks are
// listed in cache/secure_policy.h, with secure mode's): DefaultPolicy's are
// the free key (check.h) and compile to the code the default mode always
// had; a current span's blocks take the inline fast paths (heap-inl.h).
void Carve(Page* pg);
struct DefaultPolicy {
  static constexpr bool kSecure = false;
  static constexpr uint8_t kSpanBits = 0;
  static constexpr uintptr_t kThreadFree = 0;  // span mode (heap.h)
  static constexpr bool kFastFrees = true;

  [[gnu::always_inline]] static Block*& Head(Page* pg) { return pg->free; }
  [[gnu::always_inline]] static bool HasFree(const Page* pg) { return execmem::HasFree(pg); }
  [[gnu::always_inline]] static void Push(Page* pg, Block* b) {
    b->next = pg->free;
    MarkFree(b, pg);
    pg->free = b;
  }
  // A free block without the free key was written after it was freed.
  [[gnu::always_inline]] static Block* Pop(Page* pg) {
    Block* b = pg->free;
    if (!HasFreeKey(b, pg)) ReportWriteAfterFree("malloc", b, pg->block_size, ExecOf(pg));
    pg->free = b->next;
    MarkHandedOut(b);
    return b;
  }
  [[gnu::always_inline]] static void Carve(secure::HeapState*, Page* pg) { execmem::Carve(pg); }
  [[gnu::always_inline]] static void Handout(secure::HeapState*, Page* pg, Block* b, size_t,
                                             bool zero) {
    if (zero) memset(b, 0, pg->block_size);
  }
  [[gnu::always_inline]] static secure::Held Hold(bool, secure::HeapState*, Page* pg, Block* b) {
    return {b, pg};
  }
  [[gnu::always_inline]] static secure::Held Evict(bool, secure::HeapState*) {
    return {nullptr, nullptr};
  }
  [[gnu::always_inline]] static size_t SmallUsable(const char*, Page* pg, const void*) {
    return pg->block_size;
  }
  [[gnu::always_inline]] static size_t LargeUsable(Page* pg, const void*) { return pg->large_size; }
  [[gnu::always_inline]] static size_t HugeUsable(ArenaHeader* huge) { return huge->huge_usable; }
  [[gnu::always_inline]] static bool SizeFits(size_t size, size_t usable, bool aligned) {
    return SizedFreeFits(size, usable, aligned);
  }
  // A block with the free key is confirmed (check.cc) and reported.
  [[gnu::always_inline]] static void CheckFree(const char* op, Heap* h, Heap* owner, Page* pg,
                                               Block* b, bool) {
    if (HasFreeKey(b, pg) && ConfirmFreeBlock(h, owner, pg, b)) [[unlikely]] {
      ReportDoubleFree(op, b, pg->block_size, ExecOf(pg));
    }
  }
  [[gnu::always_inline]] static void FreeLarge(Heap* h, ArenaHeader* huge, Page* pg, void*) {
    if (huge != nullptr) {
      HugeFree(huge);
    } else {
      LargeFree(h, pg);
    }
  }
};
using secure::SecurePolicy;

// ---- spans (span.cc) ----
void SyncPage(Heap* h, Page* pg);
template <class P>
void InitSmallSpan(Page* head, Heap* h, size_t cls);
// Owner: moves the span's thread_free list (span mode) onto `free`; the
// number of blocks moved.
uint32_t CollectThreadFree(Page* pg);
// Owner, span mode: a notice of pg (heap.h) came off the heap's remote list,
// not yet freed into the span. Collects the span's list when that needs no
// walk (its free list is empty) or brings every live block home; else leaves
// it on the span for later (the span's free list running dry, a sweep), and
// re-arms the notice.
void TakeNotice(Page* pg);
// Owner: puts the span in heap mode (heap.h), collecting into `free` the
// blocks that arrive on its list meanwhile.
void EnterHeapMode(Page* pg);
// Owner: span mode again, and frees on the fast path (not for secure spans).
template <class P>
void EnterSpanMode(Heap* h, Page* pg);
// A full span of h with a free block again: to its partial list.
template <class P>
void Unfull(Heap* h, Page* pg);
void ReleaseSmallSpan(Heap* h, Page* pg);
// The same for a span no heap counts (a shared span), its count synced.
void FreeSmallSpan(Page* pg);
// An empty span on h's partial list: back to the pool.
void ReleasePartial(Heap* h, Page* pg);
// h's current span pg, empty: h has no current span of its class any more,
// and pg goes back to the pool.
void RetireCurrent(Heap* h, Page* pg);
// A span of h got a block back off the fast path: off the full list, and
// back to the pool if that was its last block. True if it went back.
template <class P>
bool AfterSlowFree(Heap* h, Page* pg);
template <class P>
void MakeCurrent(Heap* h, Page* pg);
// A block of a span h owns back onto its free list (off the fast path).
template <class P>
void LocalFree(Heap* h, Page* pg, Block* b);
Page* SmallPageOf(void* p);

// ---- frees across threads and the orphanage (orphanage.cc) ----
void RemoteFree(Page* pg, Block* b);
// ---- shared spans (orphanage.cc) ----
// Spans of the classes of kSharedMinSize to kSharedMaxSize bytes are shared
// by the threads of an executor. A thread held at least one span of every class it
// had used, whole, however few blocks of it it held: on larson (84 classes)
// that floor alone was 6.4 MiB a thread, 52 MiB on 8 threads against
// tcmalloc's whole 43 (docs/performance.md, "Larson's resident memory",
// first and fourth passes). A thread with no span of its own with a free
// block of such a class takes one from a span of its executor's (tcmalloc's
// central free lists, jemalloc's shared bins), under the class's own lock,
// before it takes a span of its own; the foreign lists (below) stay in front
// of them, as a tcmalloc thread's cache is in front of its central lists.
// Classes below hold dozens of blocks a thread and are allocated too often
// for a lock (measured: below 512 B larson's CPU doubled).
//
// A shared span: Page::shared set, owned by g_shared_heap (no thread's),
// fast_owner 0 (no fast free), in heap mode; its blocks, counts and list
// change only under its class's lock; the blocks handed out and freed are
// counted in the calling thread's heap's pending deltas. A free of one that
// the freeing thread does not keep on its foreign list ends in SharedFree
// (FreeOwnedSlow, or RemoteFree on the general path): an empty span goes
// back to the pool at once.
inline constexpr uint32_t kSharedMinSize = 512;
// Classes of kPageSize and more keep spans of their own: a span holds 1 to 7
// of their blocks, and the heap gives those emptied back when it takes a
// span (RetireEmptyFewBlocks); larson's blocks are at most 64 KiB.
inline constexpr uint32_t kSharedMaxSize = kPageSize - 1;
// Whether class c is one whose spans the threads share.
constexpr bool IsSharedClass(size_t c) {
  return kSizeClasses.size[c] >= kSharedMinSize && kSizeClasses.size[c] <= kSharedMaxSize;
}
// A thread that comes to hold kSharedPromote blocks of a class from shared
// spans (Heap::shared_live) uses it much, and one that takes kSharedRun of
// its shared blocks in a row, no other thread taking one meanwhile, while no
// other thread holds one (Tenant::shared_used: a count, not a time slice a
// loaded machine gave the thread to itself), uses it alone (a span of its
// own is what a shared one would be, and costs no lock): from then on it
// takes spans of its own for the class (the count stays at kSharedPromote:
// it does not go back). larson's threads hold 1-8 blocks a class of 512 B
// and more and take them in turns; randorder's one worker thread holds ~350
// blocks of each class of 512 B-1 KiB and ~6 of each above, which it alone
// takes (docs/performance.md, fourth pass). kSharedPromote was 32, which
// larson's threads reached in the classes of 2-4 KiB (15-30 blocks held, and
// one in eight handed to another thread, whose frees of them do not count
// off the taker's count): they took spans of their own there (8 threads:
// 15-31 spans of each such class at the peak, 3-8 of them shared); at 96
// they keep sharing (docs/performance.md, sixth pass).
inline constexpr uint16_t kSharedPromote = 96;
inline constexpr uint32_t kSharedRun = 32;
// And one that took kSharedTakes blocks of a class from shared spans (or
// reused them off its foreign list: a loop of malloc and free of one size
// takes none from the shared spans after the first) allocates it often
// enough for its slow path to matter: spans of its own too. larson's threads
// take ~20-220 a class of 512 B-64 KiB in their lives (an epoch).
inline constexpr uint16_t kSharedTakes = 1024;
// h's thread freed a block of a shared span of class c (or kept it on its
// foreign list): one fewer it holds, unless it got to kSharedPromote.
inline void SharedLiveFreed(Heap* h, size_t c) {
  if (h->shared_live[c] != 0 && h->shared_live[c] < kSharedPromote) --h->shared_live[c];
}
extern Heap g_shared_heap;
// A block of class c for h from a shared span of h's executor (a new one
// when none has a free block), put on h's foreign list of the class, whence
// SmallMalloc hands it out with its checks (PopForeign): kTaken; kRefused
// when the executor refused the span's charge (reported, spill hooks asked:
// the malloc fails, as the thread's own span would be refused the same
// charge); kNoSpan when the pool had none (the thread's own path then tries,
// and reports).
enum class SharedTake { kTaken, kRefused, kNoSpan };
SharedTake SharedMalloc(Heap* h, size_t c, size_t request);
// A block of the shared span pg back to it; false (and nothing done) for a
// block never handed out (the caller reports it). Heap::shared_live is the
// caller's: a block going home from a foreign list was counted off when it
// went there (PushForeign).
bool SharedFree(Page* pg, Block* b);
// The calling thread h frees b of the shared span pg, not onto its foreign
// list: back to the span, and one block fewer h holds.
inline bool SharedFreeHere(Heap* h, Page* pg, Block* b) {
  if (h->exec == ExecOf(pg)) SharedLiveFreed(h, pg->size_class);
  return SharedFree(pg, b);
}
// h's thread took a block of a shared span of class c (PopForeign): one more
// it holds; kSharedTakes taken in all, and it uses the class much.
inline void SharedLiveTaken(Heap* h, size_t c) {
  if (h->shared_live[c] >= kSharedPromote) return;
  ++h->shared_live[c];
  if (++h->shared_takes[c] >= kSharedTakes) h->shared_live[c] = kSharedPromote;
}
// Whether e's lists of shared spans hold only e's shared spans of their
// class, none empty, those with a free block before those with none.
bool SharedSpansValid(Tenant* e);
// Whether b is on the free list of the shared span pg (a double free).
bool SharedHoldsFree(Page* pg, const Block* b);
// Whether h's next malloc of class c may take the first block of its
// foreign list: not a shared span's once h takes spans of its own for c
// (SendSharedForeignHome then sends them back to their spans at h's next
// malloc of c; until then a block freed twice is still found there).
inline bool ForeignUsable(Heap* h, size_t c) {
  return h->shared_live[c] < kSharedPromote || !SmallPageOf(h->foreign[c])->shared;
}
// The shared spans' blocks on h's foreign list of class c back to their
// spans (h no longer shares c: they would wait there, unused, until the list
// goes home); the list's other blocks stay.
void SendSharedForeignHome(Heap* h, size_t c);
// Blocks of class c a heap keeps of other heaps' spans (heap.h: foreign):
// kForeignBytes of them and at least one, for the classes of at least
// kForeignMinSize bytes; none for smaller classes, whose remote frees go
// home. Measured on larson (docs/performance.md, "third pass"): a thread holds
// a few blocks of each class of 512 B and more but a span of each, so
// reusing other threads' blocks saves spans there; below, every reused block
// costs a slow malloc and a slow free and saves little (all classes: +6 %
// instructions on larson, 512 B and up: +1.5 %). kForeignBytes was 32 KiB:
// the blocks on a list are free but usable by its thread alone, which, one
// thread of 8 on 2 cores, is off the CPU most of the time; with 8 KiB a free
// that does not fit goes back to its shared span at once, where any thread of
// the executor takes it (larson, 8 threads: 4.4 MiB of blocks on foreign
// lists at the peak of spans held; docs/performance.md, sixth pass).
inline constexpr uint32_t kForeignMinSize = 512;
inline constexpr uint32_t kForeignBytes = uint32_t{8} << 10;
constexpr std::array<uint16_t, kNumClasses> MakeForeignMax() {
  std::array<uint16_t, kNumClasses> m{};
  for (size_t c = 0; c < kNumClasses; ++c) {
    const uint32_t size = kSizeClasses.size[c];
    const uint32_t n = kForeignBytes / size;
    m[c] = static_cast<uint16_t>(size < kForeignMinSize ? 0 : n == 0 ? 1 : n);
  }
  return m;
}
inline constexpr std::array<uint16_t, kNumClasses> kForeignMax = MakeForeignMax();
// A block of another heap's span that h's thread frees, onto h's foreign
// list of its class: false when the list is full, the span is another
// executor's or h is the bootstrap heap (then it goes home: RemoteFree), or
// the block of a shared span lies at or past its `bump` as last carved (it
// may be one the span never handed out: SharedFree tells, under the class's
// lock, and the caller reports it; on the list it would be handed out here
// and again when the span carves it).
inline bool PushForeign(Heap* h, Page* pg, Block* b) {
  const size_t c = pg->size_class;
  if (h->foreign_count[c] >= kForeignMax[c] || h == &g_bootstrap_heap || ExecOf(pg) != h->exec) {
    return false;
  }
  if (pg->shared && reinterpret_cast<char*>(b) >= CarvedEnd(pg)) return false;
  b->next = h->foreign[c];
  MarkFree(b, pg);
  h->foreign[c] = b;
  ++h->foreign_count[c];
  if (pg->shared) SharedLiveFreed(h, c);  // Heap::shared_live
  return true;
}
extern SpinLock g_orphan_lock;
// Spans of exited threads (and destroyed executors) that still hold live blocks.
extern Heap g_orphanage_storage;
// Orphaned spans wait on the orphanage's partial[class] lists (under
// g_orphan_lock) until their last block is freed or a heap of the same
// executor adopts them (AdoptOrphan). This counts them.
extern std::atomic<uint32_t> g_orphan_spans;
void DrainOrphanageLocked(Heap* orphan) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_orphan_lock);
void DrainOrphanage();
template <class P>
bool AdoptOrphan(Heap* h, size_t c);
// Takes remote frees on h's list back into their spans (Heap::DrainRemote
// picks the heap's policy).
template <class P>
void DrainRemoteOf(Heap* h);
// A secure heap's quarantined block b goes back to its span: the owner's
// free list, or the owning heap's remote list.
void ReleaseHeld(Heap* h, secure::Held held);
// Every block in h's quarantines back to its span (before h gives its spans
// away or trims).
void FlushQuarantine(Heap* h);
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
// NewSpan: a thread's first span of a class of at most kLightClassMaxSize
// bytes (it has no other span of the class) keeps only its first
// kLightSpanKeep bytes resident when the pool hands it committed pages
// (pool::DecommitSpanTail). Such a thread often holds a few KiB of the class
// (larson's threads 1-15 KiB of each class up to 256 B), and a span carves
// only as far as its blocks are needed, but a freed span's pages serve the
// next span of any class dirty: the tails of these spans, written by the
// pages' earlier users, were resident for nothing (larson, 8 threads: 3-4
// MiB of 57; docs/performance.md, seventh pass). A thread that uses the class
// much takes its next spans while it holds one, and those stay as the pool
// gives them, so that their carving faults nothing: decommitting every new
// span of these classes cost hashagg, sort and tree 2-4 k more page faults.
inline constexpr uint32_t kLightClassMaxSize = 256;
inline constexpr size_t kLightSpanKeep = size_t{8} << 10;
// Resolves p to its span head and checks it is a live block start; nullptr
// for a huge block (*huge set). Reports invalid pointers.
Page* ResolveBlock(const void* p, ArenaHeader** huge, const char* op);

}  // namespace execmem

#endif  // EXECMEM_CACHE_HEAP_INTERNAL_H_
