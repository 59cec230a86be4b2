// Thread caches ("heaps"): one per (thread, executor) pair.
//
// Call graph:
//   Malloc (heap-inl.h, inline)  -> pop current[class]->free
//     `-> MallocSlow (heap.cc)   -> the heap's foreign list of the class;
//                                   thread_free of the current span; carve;
//                                   heap remote list;
//                                   the partial span with the most free
//                                   blocks; a block of a shared span
//                                   (classes of 512 B to 64 KiB:
//                                   heap_internal.h); an orphan;
//                                   ChargeOrReclaim (reclaim.cc, acting on
//                                   budget::Account::Charge's verdict),
//                                   pool::AllocSpan
//   Free (heap-inl.h, inline)    -> push `free` of any span the thread
//                                   owns that is not full (fast_owner); the
//                                   last block out of a non-current span
//                                   gives the span back (RetireEmpty)
//     `-> FreeSlow (heap.cc)     -> confirm and report a double free;
//                                   full span or tail page: local free;
//                                   other owner of our executor, class of
//                                   512 B and more: the heap's foreign list
//                                   (Heap::foreign), else RemoteFree (below);
//                                   an orphan of our executor: adopt it;
//                                   large / huge; invalid pointer: report
//   Secure heaps (secure_policy.h): neither inline path takes their blocks;
//   MallocSlow -> SecureMallocSmall (inline: the newest blocks' checks, a pop
//   of the current span) or SecureMallocChecked (refills, large, malloc(0));
//   FreeSlow / FreeSizedSlow -> SecureFreeOwned (inline: a block of a span
//   the heap owns: checks, quarantine, local give-back) or the general path
//
// Free lists of a small span, sharded by who frees: `free` (malloc pops, the
// owner's frees push: LIFO, so the block freed last is reused while still in
// cache) and `thread_free` (other threads' frees push with a CAS on the
// span's own word, in the descriptor's second cache line). A producer and a
// consumer therefore meet only on the word of one span, never on one word
// per heap. (mimalloc also splits the owner's frees onto a local_free list;
// measured here it cost 4 instructions per LIFO pair in the golden, and
// every block freed waited a round before reuse.)
//
// Where a remote free goes (Page::thread_free: a count of blocks, a block
// pointer and low bits; cache/span.h):
//   kNotified clear  the owner has not been told since it last looked (the
//                 span's list may hold blocks: a count and a pointer): the
//                 freer sets kNotified and sends its block through the owning
//                 heap's `remote` list. Draining it, the owner frees that
//                 block and looks at the span's list (TakeNotice): it
//                 collects it when that needs no walk (the span's free list
//                 is empty: the list becomes it, its count subtracted from
//                 `used`) or brings every live block home (the span goes
//                 back), else leaves it and clears kNotified. So a heap's
//                 word sees one push per span per round, and remote frees
//                 wait only until the owner's next slow path, whatever span
//                 they went to (full spans included).
//   kNotified|n|p the owner has been told: the block goes onto the span's
//                 list. The owner also collects it when the span's free list
//                 runs dry, on a sweep, when the heap is abandoned.
//   kHeapMode     every block goes through the owning heap's list (pointer
//                 part 0): spans of secure heaps, orphans, and spans while
//                 their heap abandons them.
// Only the owner enters and leaves heap mode: by a CAS from 0 (collecting
// the blocks instead if some arrived), back by a store.
//
// The fast paths touch only the heap and the page descriptor: no atomic, no
// lock. Ownership: a heap's non-atomic fields are touched only by its thread
// while the heap is kActive (or after a CAS to kActive / kDead by whoever
// then owns it exclusively). fast_owner == h holds exactly for the spans h
// owns that are current or on a partial list, of a heap that is not secure,
// and only on head pages (a block in a tail page takes the slow path).
#ifndef EXECMEM_CACHE_HEAP_H_
#define EXECMEM_CACHE_HEAP_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "cache/secure_policy.h"
#include "cache/size_class.h"
#include "cache/span.h"
#include "cache/tenant.h"
#include "pool/pool.h"

namespace execmem {

class Tenant;
struct ThreadState;

extern Page g_empty_page;
constexpr Page& g_empty_page_ref() { return g_empty_page; }

enum class HeapState : int { kIdle = 0, kActive = 1, kDead = 2 };

constexpr size_t FirstClassOfAtLeast(size_t bytes) {
  size_t c = 0;
  while (c < kNumClasses && kSizeClasses.size[c] < bytes) ++c;
  return c;
}
// An emptied current span of these classes goes back to the pool when the
// heap takes a new one: at once from kFirstFewBlocksClass (64 KiB), after
// Heap::kCacheAge growths from kFirstAgedEmptyClass (16 KiB) (span.cc:
// RetireEmptyFewBlocks).
inline constexpr size_t kFirstAgedEmptyClass = FirstClassOfAtLeast(kPageSize / 4);
inline constexpr size_t kFirstFewBlocksClass = FirstClassOfAtLeast(kPageSize);

class Heap {
 public:
  // Constant-initialisable: the bootstrap heap and the orphanage are statics
  // that must work before any constructor runs.
  constexpr explicit Heap(bool orphanage = false) : is_orphanage(orphanage) {
    for (auto& p : current) p = &g_empty_page_ref();
    for (auto& p : partial) p = nullptr;
    for (auto& b : foreign) b = nullptr;
    for (auto& n : foreign_count) n = 0;
    for (auto& n : shared_live) n = 0;
    for (auto& n : shared_takes) n = 0;
  }

  // ---- fast-path fields ----
  // Never null: &g_empty_page when the class has no span, and always for
  // kZeroClass (malloc(0) takes the slow path).
  Page* current[kNumClasses + 1];
  uint64_t allocs = 0;  // allocations not yet reported to the executor
  // kSizeClasses.lookup16, next to current[]: the shim's malloc indexes it
  // from the heap's address, which it holds already (one instruction fewer
  // than addressing the table).
  std::array<uint8_t, 65> lookup16 = kSizeClasses.lookup16;

  // ---- slow-path fields (owner thread) ----
  Tenant* exec = nullptr;
  ThreadState* thread = nullptr;
  // Unique among the heaps the process has made (Init), where a Heap* is not:
  // a heap's memory is reused for the next one (meta.cc). What a class's
  // shared spans remember of the heap that took their last block
  // (orphanage.cc: SharedClass::last), so that a new heap does not continue
  // an exited one's run of takes.
  uint64_t id = 0;
  Page* partial[kNumClasses];  // spans with free blocks, most recently used first
  Page* full = nullptr;        // spans with no free block
  // Blocks of other heaps' spans (of this heap's executor) that this thread
  // freed, kept for its own next allocations of the class rather than sent
  // back to their owner, who may be off the CPU (tcmalloc's frees go to the
  // freeing thread's lists likewise). A block here is free (it carries its
  // span's free key) but still counted in its span's `used`, so the span
  // stays its owner's and never empties under us; at most kForeignMax a
  // class (more go home), all sent home at Abandon, TrimEmpty and SyncAll
  // (FlushForeign). Only classes of 512 B and more (heap_internal.h:
  // kForeignMax says why), default mode only (secure heaps' remote frees go
  // home).
  Block* foreign[kNumClasses];
  uint16_t foreign_count[kNumClasses];
  // Blocks of shared spans (heap_internal.h: IsSharedClass) this thread
  // took and has not freed itself, a class: while below kSharedPromote of
  // the class it takes them from the shared spans, from there on from a span
  // of its own (it uses the class much). Counted by this thread only (a free
  // on another thread counts there; it drifts by what larson hands over,
  // which evens out), never below 0.
  uint16_t shared_live[kNumClasses];
  uint16_t shared_takes[kNumClasses];  // and how many it took in all (kSharedTakes)
  // Large spans this thread freed, kept for its next large allocation of the
  // same length: reuse then touches no shared atomic. A cached span is still
  // in the executor's footprint (it is a cached free block) but not in used.
  // At most kLargeCache spans of at most 2 MiB, 2 MiB in all: what the cache
  // keeps is resident and no other thread or length can use it (pymalloc's
  // freed 1 MiB arenas: 4 a thread were 5-6 MiB a Dask worker); the rest goes
  // to the pool, which serves any thread and gives back what it need not keep.
  static constexpr int kLargeCache = 4;
  static constexpr uint32_t kLargeCacheMaxPages = (size_t{2} << 20) >> kPageShift;  // 2 MiB
  Page* large_cache[kLargeCache] = {};
  int large_count = 0;
  uint32_t large_pages = 0;  // pages of the spans in large_cache
  // The cache ages in the heap's own growth, not in time (no clock read, and
  // a thread that does not grow changes nothing): `grown` counts the spans
  // the heap took from the pool (small and large), large_stamp[i] is `grown`
  // when large_cache[i] was freed, and a span not reused within
  // kCacheAge growths goes back to the pool (AgeLargeCache, large.cc),
  // which any thread reuses and which decays and purges what stays unused.
  static constexpr uint32_t kCacheAge = 16;
  uint32_t large_stamp[kLargeCache] = {};
  uint32_t grown = 0;
  // The current span of class kFirstAgedEmptyClass + i if it was empty at
  // growth empty_since[i] and at every growth since (RetireEmptyFewBlocks):
  // it goes back once that is kCacheAge growths ago.
  static constexpr size_t kAgedEmptyClasses = kFirstFewBlocksClass - kFirstAgedEmptyClass;
  const Page* empty_seen[kAgedEmptyClasses] = {};
  uint32_t empty_since[kAgedEmptyClasses] = {};
  // Spans owned, and the count at the last sweep of the partial lists (a
  // sweep collects thread_free lists and gives back empty spans; MallocSlow
  // runs one before a new span once the heap grew by an eighth since the last).
  uint32_t spans = 0;
  uint32_t spans_at_sweep = 0;
  // Bit c set iff current[c] is a real span (Sync walks only those).
  uint64_t current_mask[(kNumClasses + 63) / 64] = {};
  int64_t used_delta = 0;  // bytes not yet reported to the executor
  int64_t blocks_delta = 0;
  // Secure mode (cache/secure.h), fixed at Init: the heap's spans are
  // SecurePolicy's (their blocks never take the inline fast paths: free
  // null, fast_owner 0); its own state (quarantines, the random state) is
  // secure_policy.h's.
  bool secure = false;
  secure::HeapState sec;

  // ---- shared ----
  // Blocks freed by other threads into this heap's spans; bit 0 set: closed
  // (the heap is being abandoned; freers must re-read Page::heap).
  std::atomic<uintptr_t> remote{0};
  std::atomic<HeapState> state{HeapState::kIdle};
  Heap* exec_next = nullptr;  // Tenant::heaps (Tenant::LinkHeapLocked)
  Heap* exec_prev = nullptr;
  Heap* thread_next = nullptr;         // ThreadState::heaps (owner thread)
  Heap* claim_next = nullptr;          // DestroyExecutor's claimed heaps (the destroyer's)
  std::atomic<bool> abandoned{false};  // Abandon() finished
  const bool is_orphanage;

  void Init(Tenant* e, ThreadState* t);
  // Reports used / allocs of current spans and pending deltas to the executor.
  void Sync();
  // Reports only the pending deltas (not the current spans' counts: those are
  // within the batching error documented in executor.h). Cheap.
  void FlushDeltas();
  // Takes remote frees on the heap's list back into their spans.
  void DrainRemote();
  // Sends every block of `foreign` back to its span's owner.
  void FlushForeign();
  // Collects every owned span's thread_free list and gives back empty spans.
  void Sweep();
  // Sweep, then reports every owned span's used count (exact stats).
  void SyncAll();
  // Returns every empty span (and cached large span) to the pool.
  void TrimEmpty();
  void ReleaseLargeCache();
  // Gives every span away (empty ones to the pool, others to the orphanage)
  // and closes the remote list. The heap must be owned exclusively.
  void Abandon();
  // Debug walker: every owned span's counters are consistent.
  bool IsValid() const;
};

// Page::thread_free's low bits (kHeapMode, kNotified): cache/span.h; what they
// mean: the top of this file.

// ---- the owner words of page descriptors ----
// cache/span.h keeps them opaque words; here is what they hold:
//   Page::fast_owner  the Heap* that may free into the span on the fast path, else 0
//   Page::owner       the Heap* owning the span (the orphanage's for orphans)
//   Page::account     the Tenant* charged for the span
//   ArenaHeader::huge_owner  the Tenant* charged for a huge block
inline uintptr_t OwnerWord(const void* p) { return reinterpret_cast<uintptr_t>(p); }
inline bool IsFastOwner(const Page* pg, const Heap* h) {
  return pg->fast_owner.load(std::memory_order_relaxed) == OwnerWord(h);
}
inline void SetFastOwner(Page* pg, const Heap* h) {
  pg->fast_owner.store(OwnerWord(h), std::memory_order_relaxed);
}
// Makes pages [from, to) of a handed-out span its tails (pointing back to
// the head, never anyone's current span).
inline void SetTails(Page* head, uint32_t from, uint32_t to) {
  for (uint32_t i = from; i < to; ++i) {
    head[i].kind = PageKind::kTail;
    head[i].head_offset = static_cast<uint16_t>(i);
    SetFastOwner(&head[i], nullptr);
  }
}
inline Heap* OwnerHeap(const Page* pg) {
  return reinterpret_cast<Heap*>(pg->owner.load(std::memory_order_acquire));
}
inline void SetOwnerHeap(Page* pg, const Heap* h, std::memory_order order) {
  pg->owner.store(OwnerWord(h), order);
}
inline Tenant* ExecOf(const Page* pg) { return reinterpret_cast<Tenant*>(pg->account); }
inline void SetExecOf(Page* pg, const Tenant* e) { pg->account = OwnerWord(e); }
inline Tenant* HugeExecOf(const ArenaHeader* a) { return reinterpret_cast<Tenant*>(a->huge_owner); }

// The size of a thread's last-error buffer (out-of-memory reports included).
inline constexpr size_t kLastErrorSize = 2048;

struct ThreadState {
  Heap* heaps = nullptr;  // this thread's heaps, one per executor it used
  Heap* bound = nullptr;
  ThreadState* next_free = nullptr;
  // Message buffers live here rather than in TLS: a large static TLS block
  // would keep libexecmem.so from being dlopen()ed.
  // The last error of a call that failed, out-of-memory reports included
  // (execmem_last_error reads it).
  char last_error[kLastErrorSize] = {};
};

// The calling thread's last-error buffer (a shared fallback before its first
// allocation): the out-of-memory report and any other error share it.
char* ThreadLastError();
// The last-error buffer of the thread whose heap h is (never the bootstrap
// heap): what ThreadLastError() gives on that thread, for the files below
// thread.cc in the cache's order (cache.h).
inline char* LastErrorOf(const Heap* h) { return h->thread->last_error; }

extern Heap g_bootstrap_heap;

// The heap the calling thread allocates from; &g_bootstrap_heap before the
// thread's first allocation.
extern constinit thread_local Heap* tls_heap [[gnu::tls_model("initial-exec")]];

// Slow paths (heap.cc).
[[gnu::noinline]] void* MallocSlow(size_t size, bool zero) noexcept;
[[gnu::noinline]] void FreeSlow(void* p) noexcept;
// A partial span of the calling thread's heap whose last block was freed on
// the fast path: back to the pool.
[[gnu::noinline]] void RetireEmpty(Page* pg) noexcept;
// Gives back h's emptied current spans of the classes of 64 KiB and more,
// and of 16-64 KiB once aged, but `keep` (span.cc says why); called where h
// has taken a new span from the pool (after, so that a block freed there is
// not the next one handed out).
void RetireEmptyFewBlocks(Heap* h, size_t keep);
// A sized free (alignment 0: not an aligned one) off the fast path: checks
// the size against the block (cache/check.h), then frees it.
[[gnu::noinline]] void FreeSizedSlow(void* p, size_t size, size_t alignment) noexcept;
// Small allocation for an aligned request; nullptr if none.
void* MallocAligned(size_t size, size_t alignment, bool zero);
// Binding (heap.cc).
Tenant* BindThread(Tenant* e, int* err);
Tenant* CurrentTenant();
// The usable size of p (0 if not ours when `check` is false, else reports).
size_t UsableSize(const void* p);
bool Owns(const void* p);
// realloc (ReallocFast in heap-inl.h, the same out of line); ReallocSlow is
// its path past a small block kept and a large one resized within its span.
void* Realloc(void* p, size_t size);
[[gnu::noinline]] void* ReallocSlow(void* p, size_t size);
void ThreadHeapsSync();
void TrimThreadAndPool();
void LockHeapsForFork();
void UnlockHeapsAfterFork(bool child);

}  // namespace execmem

#endif  // EXECMEM_CACHE_HEAP_H_
