// Frees across threads, and the orphanage. A block freed by a thread that
// does not own its span goes onto the span's thread_free list or the owning
// heap's remote list (RemoteFree; Heap::DrainRemote takes them back). The
// orphanage: spans whose heap went away (thread exit, executor
// destruction) while they still held live blocks. Frees into them arrive on
// the orphanage's remote list and are drained under g_orphan_lock by whichever
// thread gets it; a span that empties goes back to the pool, and a heap of the
// same executor that needs a span of the class adopts one first.
#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <new>

#include "cache/heap-inl.h"
#include "cache/heap.h"
#include "cache/heap_internal.h"
#include "cache/large.h"
#include "cache/meta.h"
#include "cache/secure.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {

SpinLock g_orphan_lock;
// Spans of exited threads (and destroyed executors) that still hold live blocks.
constinit Heap g_orphanage_storage{true};
// Orphaned spans wait on the orphanage's partial[class] lists (under
// g_orphan_lock) until their last block is freed or a heap of the same
// executor adopts them (AdoptOrphan). This counts them.
std::atomic<uint32_t> g_orphan_spans{0};

// Frees drained blocks into orphaned spans; forwards blocks whose span
// changed hands. Caller holds g_orphan_lock.
void DrainOrphanageLocked(Heap* orphan) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_orphan_lock) {
  uintptr_t list = orphan->remote.exchange(0, std::memory_order_acquire);
  while (list != 0) {
    Block* b = reinterpret_cast<Block*>(list);
    list = reinterpret_cast<uintptr_t>(b->next);
    Page* pg = SmallPageOf(b);
    if (OwnerHeap(pg) != orphan) {
      RemoteFree(pg, b);
      continue;
    }
    PushFreeBlock(pg, b);
    --pg->used;
    SyncPage(orphan, pg);
    if (pg->used == 0) {
      ListRemove(&orphan->partial[pg->size_class], pg);
      g_orphan_spans.fetch_sub(1, std::memory_order_relaxed);
      ReleaseSmallSpan(orphan, pg);
    }
  }
}

// Pushes b onto the remote list of the heap owning its span (whichever heap
// that is by then: a closed list means the span is changing hands).
void PushToOwnerHeap(Page* pg, Block* b) {
  for (;;) {
    Heap* owner = OwnerHeap(pg);
    uintptr_t head = owner->remote.load(std::memory_order_relaxed);
    if (head & 1) {  // closed: the span is being handed to the orphanage
      os::Yield();
      continue;
    }
    b->next = reinterpret_cast<Block*>(head);
    MarkFree(b, pg);
    if (owner->remote.compare_exchange_strong(head, reinterpret_cast<uintptr_t>(b),
                                              std::memory_order_release,
                                              std::memory_order_relaxed)) {
      if (owner == &g_orphanage_storage) DrainOrphanage();
      return;
    }
  }
}

void RemoteFree(Page* pg, Block* b) {
  if (pg->shared) {  // every thread's, none's to notify (GiveBack reports a bad block)
    SharedFree(pg, b);
    return;
  }
  for (;;) {
    uintptr_t tf = pg->thread_free.load(std::memory_order_acquire);
    if (tf & kHeapMode) break;
    if ((tf & kNotified) == 0) {
      // The first since the owner last looked: tell it, through its list.
      if (pg->thread_free.compare_exchange_weak(tf, tf | kNotified, std::memory_order_acq_rel,
                                                std::memory_order_relaxed)) {
        break;
      }
      continue;
    }
    b->next = ThreadFreeHead(tf);
    MarkFree(b, pg);
    if (pg->thread_free.compare_exchange_weak(tf, ThreadFreePushed(tf, b), std::memory_order_release,
                                              std::memory_order_relaxed)) {
      return;
    }
  }
  PushToOwnerHeap(pg, b);
}

template <class P>
void DrainRemoteOf(Heap* h) {
  if (h->remote.load(std::memory_order_relaxed) == 0) return;
  uintptr_t list = h->remote.exchange(0, std::memory_order_acquire);
  while (list != 0) {
    Block* b = reinterpret_cast<Block*>(list);
    list = reinterpret_cast<uintptr_t>(b->next);
    Page* pg = SmallPageOf(b);
    if (OwnerHeap(pg) != h) {
      RemoteFree(pg, b);  // the span changed hands since the freer looked
      continue;
    }
    // b may be the notice of blocks on the span's list: those first (onto a
    // free list that may be empty: no walk), then b on top.
    TakeNotice(pg);
    P::Push(pg, b);
    --pg->used;
    AfterSlowFree<P>(h, pg);
  }
}
template void DrainRemoteOf<DefaultPolicy>(Heap*);
template void DrainRemoteOf<SecurePolicy>(Heap*);

void Heap::DrainRemote() {
  if (secure) {
    DrainRemoteOf<SecurePolicy>(this);
  } else {
    DrainRemoteOf<DefaultPolicy>(this);
  }
}

void Heap::FlushForeign() {
  for (size_t c = 0; c < kNumClasses; ++c) {
    Block* list = foreign[c];
    foreign[c] = nullptr;
    foreign_count[c] = 0;
    while (list != nullptr) {
      Block* b = list;
      list = b->next;
      Page* pg = SmallPageOf(b);
      // The span may have become ours since (an orphan adopted).
      if (OwnerHeap(pg) == this) {
        LocalFree<DefaultPolicy>(this, pg, b);
      } else {
        RemoteFree(pg, b);
      }
    }
  }
}

void SendSharedForeignHome(Heap* h, size_t c) {
  Block* list = h->foreign[c];
  Block** keep = &h->foreign[c];
  while (list != nullptr) {
    Block* b = list;
    list = b->next;
    Page* pg = SmallPageOf(b);
    if (pg->shared) {
      --h->foreign_count[c];
      SharedFree(pg, b);  // counted off Heap::shared_live when it came here
    } else {
      *keep = b;
      keep = &b->next;
    }
  }
  *keep = nullptr;
}

void ReleaseHeld(Heap* h, secure::Held held) {
  if (OwnerHeap(held.pg) == h) {
    LocalFree<SecurePolicy>(h, held.pg, held.b);
  } else {
    RemoteFree(held.pg, held.b);
  }
}

void FlushQuarantine(Heap* h) {
  for (secure::Held held; (held = secure::Evict(&h->sec, /*all=*/true)).b != nullptr;) {
    ReleaseHeld(h, held);
  }
  h->sec.last_alloc = nullptr;
  secure::FlushLargeQuarantine(h);
}

// Moves an orphaned span to h. From here remote frees go to h; blocks
// already queued at the orphanage are forwarded by its next drain.
void TakeOrphanLocked(Heap* h, Page* pg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_orphan_lock) {
  Heap* orphan = &g_orphanage_storage;
  ListRemove(&orphan->partial[pg->size_class], pg);
  g_orphan_spans.fetch_sub(1, std::memory_order_relaxed);
  --orphan->spans;
  ++h->spans;
  pg->in_full = 0;
  SetOwnerHeap(pg, h, std::memory_order_release);
}

// Gives a heap that needs a span of class c an orphaned one of its executor
// with free blocks, so that memory left by exited threads is reused. False
// if there is none (or the orphanage is busy).
template <class P>
bool AdoptOrphan(Heap* h, size_t c) {
  if (g_orphan_spans.load(std::memory_order_relaxed) == 0) return false;
  Heap* orphan = &g_orphanage_storage;
  if (!g_orphan_lock.TryLock()) return false;
  DrainOrphanageLocked(orphan);
  Page* found = nullptr;
  for (Page* pg = orphan->partial[c]; pg != nullptr; pg = pg->next) {
    if (ExecOf(pg) == h->exec && P::HasFree(pg)) {
      found = pg;
      break;
    }
  }
  if (found != nullptr) TakeOrphanLocked(h, found);
  g_orphan_lock.Unlock();
  DrainOrphanage();  // what was pushed while we held the lock was left to us
  if (found == nullptr) return false;
  EnterSpanMode<P>(h, found);
  MakeCurrent<P>(h, found);
  return true;
}
template bool AdoptOrphan<DefaultPolicy>(Heap*, size_t);
template bool AdoptOrphan<SecurePolicy>(Heap*, size_t);

bool AdoptSpan(Heap* h, Page* pg) {
  if (!g_orphan_lock.TryLock()) return false;
  test_hook::At(test_hook::Point::kAdoptSpanLocked);
  const bool orphan = OwnerHeap(pg) == &g_orphanage_storage;
  if (orphan) TakeOrphanLocked(h, pg);
  g_orphan_lock.Unlock();
  DrainOrphanage();  // what was pushed while we held the lock was left to us
  if (!orphan) return false;
  ListPush(&h->partial[pg->size_class], pg);
  EnterSpanMode<DefaultPolicy>(h, pg);  // secure heaps adopt no span at a free
  return true;
}

Heap* Orphanage() { return &g_orphanage_storage; }

// ---- shared spans (heap_internal.h: IsSharedClass) ----

// The owner word of shared spans: no thread's heap (nothing of it is used).
constinit Heap g_shared_heap{true};

namespace {

// The lock of one class's shared spans (of every executor: each keeps its
// own list, Tenant::shared_spans, so that a thread never looks past other
// executors' spans for one of its own).
struct alignas(64) SharedClass {
  SpinLock lock;
  // The heap that took the last block (its Heap::id: a heap made later at
  // the same address is another), and how many in a row it took (kSharedRun).
  uint64_t last ABSL_GUARDED_BY(lock) = 0;
  uint32_t run ABSL_GUARDED_BY(lock) = 0;
};
SharedClass g_shared[kNumClasses];

// Reports d blocks handed out (1) or freed (-1) of the shared span pg (under
// its class's lock, or before it is shared): into the pending deltas of the
// calling thread's heap h when h is of the span's executor (no atomic; h
// reports them as it reports its own), else to the executor at once.
void CountShared(Heap* h, Page* pg, int d) {
  pg->accounted_used += d;  // SyncPage's invariant: what is reported
  const int64_t bytes = int64_t{d} * pg->block_size;
  if (h != &g_bootstrap_heap && h->exec == ExecOf(pg)) {
    h->used_delta += bytes;
    h->blocks_delta += d;
  } else {
    ExecOf(pg)->account.AddUsed(bytes, d, 0);
  }
}

// A block for h of the shared span pg, which has one (or a span not yet
// shared), taken off its free list.
Block* PopShared(Heap* h, Page* pg) {
  if (pg->free == nullptr) Carve(pg);
  Block* b = pg->free;  // still free: PopForeign checks its key and hands it out
  pg->free = b->next;
  ++pg->used;
  ++ExecOf(pg)->shared_used[pg->size_class];
  CountShared(h, pg, 1);
  return b;
}

// The spans of an executor's list of a class's shared spans that have a free
// block come before those that have none (SharedSpansValid): the head has
// one when any has.
Block* TakeSharedLocked([[maybe_unused]] SharedClass& sc, Heap* h, size_t c)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(sc.lock) {
  Page** spans = &h->exec->shared_spans[c];
  Page* pg = *spans;
  if (pg == nullptr || !HasFree(pg)) return nullptr;
  Block* b = PopShared(h, pg);
  if (!HasFree(pg)) {  // full: behind the spans with free blocks
    ListRemove(spans, pg);
    ListPushBack(spans, pg);
  }
  return b;
}

// A new shared span of class c, charged to h's executor, with a block taken
// for the caller; nullptr when the executor (*refused set) or the pool
// refuses.
Block* NewSharedSpan(Heap* h, size_t c, size_t request, bool* refused) {
  const uint32_t pages = kSizeClasses.span_pages[c];
  const uint64_t bytes = uint64_t{pages} << kPageShift;
  h->FlushDeltas();
  if (!ChargeOrReclaim(h->exec, bytes, request, h)) {
    *refused = true;
    return nullptr;
  }
  SharedClass& sc = g_shared[c];
  {
    // Spill hooks may have run on this thread and left a block of the class.
    SpinLockHolder hold(sc.lock);
    if (Block* b = TakeSharedLocked(sc, h, c)) {
      h->exec->Uncharge(bytes);
      return b;
    }
  }
  bool zeroed = false;
  Page* pg = AsPage(pool::AllocSpan(pages, &zeroed));
  if (pg == nullptr) {
    h->exec->Uncharge(bytes);
    return nullptr;
  }
  pg->zeroed = zeroed;
  InitSmallSpan<DefaultPolicy>(pg, h, c);
  --h->spans;  // no heap's: g_shared_heap counts none
  pg->shared = 1;
  pg->thread_free.store(kHeapMode, std::memory_order_relaxed);
  SetOwnerHeap(pg, &g_shared_heap, std::memory_order_release);
  SpinLockHolder hold(sc.lock);
  Block* b = PopShared(h, pg);
  if (HasFree(pg)) {
    ListPush(&h->exec->shared_spans[c], pg);
  } else {
    ListPushBack(&h->exec->shared_spans[c], pg);
  }
  return b;
}

}  // namespace

SharedTake SharedMalloc(Heap* h, size_t c, size_t n) {
  Block* b;
  bool alone;
  {
    SharedClass& sc = g_shared[c];
    SpinLockHolder hold(sc.lock);
    b = TakeSharedLocked(sc, h, c);
    if (sc.last == h->id) {
      ++sc.run;
    } else {
      sc.last = h->id;
      sc.run = 1;
    }
    // A run of takes alone is what a thread of a loaded machine does in a
    // time slice of its own; alone is also holding every block the class's
    // shared spans have handed out (the one taken here, those on h's foreign
    // list, those h's thread took: Heap::shared_live, exact for a thread
    // that frees what it takes), which no other thread's live block is.
    alone = sc.run >= kSharedRun && h->exec->shared_used[c] <= uint32_t{h->shared_live[c]} +
                                                                   h->foreign_count[c] +
                                                                   (b != nullptr ? 1 : 0);
  }
  bool refused = false;
  if (b == nullptr) b = NewSharedSpan(h, c, n, &refused);
  if (b == nullptr) return refused ? SharedTake::kRefused : SharedTake::kNoSpan;
  // Onto the foreign list, whence SmallMalloc hands it out (PopForeign).
  b->next = h->foreign[c];
  h->foreign[c] = b;
  ++h->foreign_count[c];
  if (alone) h->shared_live[c] = kSharedPromote;  // no other thread takes the class
  return SharedTake::kTaken;
}

bool SharedFree(Page* pg, Block* b) {
  const size_t c = pg->size_class;
  Heap* h = tls_heap;  // the freeing thread's: its counts only
  SharedClass& sc = g_shared[c];
  {
    SpinLockHolder hold(sc.lock);
    if (reinterpret_cast<char*>(b) >= pg->bump) return false;  // never handed out
    DefaultPolicy::Push(pg, b);
    --pg->used;
    --ExecOf(pg)->shared_used[c];
    CountShared(h, pg, -1);
    Page** spans = &ExecOf(pg)->shared_spans[c];
    if (pg->used != 0) {
      if (*spans != pg) {  // a free block now: to the front
        ListRemove(spans, pg);
        ListPush(spans, pg);
      }
      return true;
    }
    ListRemove(spans, pg);
  }
  FreeSmallSpan(pg);  // empty: back to the pool, outside the lock
  return true;
}

bool SharedSpansValid(Tenant* e) {
  for (size_t c = 0; c < kNumClasses; ++c) {
    SpinLockHolder hold(g_shared[c].lock);
    bool full_seen = false;
    for (const Page* pg = e->shared_spans[c]; pg != nullptr; pg = pg->next) {
      if (!pg->shared || pg->size_class != c || ExecOf(pg) != e || pg->used == 0) return false;
      if (HasFree(pg) && full_seen) return false;  // TakeSharedLocked looks at the head only
      if (!HasFree(pg)) full_seen = true;
    }
  }
  return true;
}

bool SharedHoldsFree(Page* pg, const Block* b) {
  SpinLockHolder hold(g_shared[pg->size_class].lock);
  // (false if the span emptied and went back meanwhile)
  return pg->shared && OnList(pg->free, b, pg->capacity);
}

void DrainOrphanage() {
  Heap* orphan = Orphanage();
  // Re-check after unlocking: a block pushed while another thread held the
  // lock is drained by that thread's re-check or by ours. So every holder of
  // g_orphan_lock calls this after unlocking (AdoptOrphan, AdoptSpan, Abandon).
  while (orphan->remote.load(std::memory_order_acquire) != 0) {
    if (!g_orphan_lock.TryLock()) return;
    DrainOrphanageLocked(orphan);
    g_orphan_lock.Unlock();
  }
}

void Heap::Abandon() {
  if (secure) FlushQuarantine(this);
  FlushForeign();
  DrainRemote();
  ReleaseLargeCache();
  Sync();
  Heap* orphan = Orphanage();
  Page* keep = nullptr;  // spans with live blocks, for the orphanage
  auto give = [&](Page* pg) {
    SetFastOwner(pg, nullptr);
    pg->prev = pg->next = nullptr;
    pg->in_full = 0;
    // Heap mode: from here frees from other threads go through the heap
    // lists, ours closed below, so that they find the orphanage.
    EnterHeapMode(pg);
    if (pg->used == 0) {
      ReleaseSmallSpan(this, pg);
    } else {
      SyncPage(this, pg);
      pg->next = keep;
      keep = pg;
    }
  };
  for (size_t c = 0; c < kNumClasses; ++c) {
    Page* cur = current[c];
    current[c] = &g_empty_page;
    current_mask[c / 64] &= ~(uint64_t{1} << (c % 64));
    if (cur != &g_empty_page) {
      --cur->used;
      cur->current = 0;
      give(cur);
    }
    for (Page* pg = partial[c]; pg != nullptr;) {
      Page* next = pg->next;
      give(pg);
      pg = next;
    }
    partial[c] = nullptr;
  }
  for (Page* pg = full; pg != nullptr;) {
    Page* next = pg->next;
    give(pg);
    pg = next;
  }
  full = nullptr;
  {
    SpinLockHolder hold(g_orphan_lock);
    for (Page* pg = keep; pg != nullptr;) {
      Page* next = pg->next;
      ListPush(&orphan->partial[pg->size_class], pg);
      g_orphan_spans.fetch_add(1, std::memory_order_relaxed);
      --spans;
      ++orphan->spans;
      SetOwnerHeap(pg, orphan, std::memory_order_release);
      pg = next;
    }
  }
  Sync();
  // Close the remote list; blocks that arrived meanwhile belong to spans now
  // in the orphanage.
  uintptr_t list = remote.exchange(1, std::memory_order_acq_rel);
  while (list != 0) {
    Block* b = reinterpret_cast<Block*>(list);
    list = reinterpret_cast<uintptr_t>(b->next);
    RemoteFree(SmallPageOf(b), b);
  }
  DrainOrphanage();
  UnlinkFromExecutor(this);
  Tenant* e = exec;
  abandoned.store(true, std::memory_order_release);
  e->Unref();
}

void Tenant::LinkHeapLocked(Heap* h) {
  h->exec_prev = nullptr;
  h->exec_next = heaps;
  if (heaps != nullptr) heaps->exec_prev = h;
  heaps = h;
}

void Tenant::UnlinkHeapLocked(Heap* h) {
  if (h->exec_prev != nullptr) {
    h->exec_prev->exec_next = h->exec_next;
  } else {
    heaps = h->exec_next;
  }
  if (h->exec_next != nullptr) h->exec_next->exec_prev = h->exec_prev;
  h->exec_next = h->exec_prev = nullptr;
}

// Unlinks a heap from its executor's list (after Abandon).
void UnlinkFromExecutor(Heap* h) {
  Tenant* e = h->exec;
  SpinLockHolder hold(e->heaps_lock);
  e->UnlinkHeapLocked(h);
}

void LockHeapsForFork() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  g_orphan_lock.Lock();
  for (SharedClass& sc : g_shared) sc.lock.Lock();
}
void UnlockHeapsAfterFork(bool child) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (child) {
    for (SharedClass& sc : g_shared) sc.lock.ResetAfterFork();
    g_orphan_lock.ResetAfterFork();
  } else {
    for (SharedClass& sc : g_shared) sc.lock.Unlock();
    g_orphan_lock.Unlock();
  }
}

// Exported for executor destruction.
void AbandonHeapOf(Heap* h) { h->Abandon(); }

}  // namespace execmem
