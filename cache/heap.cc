// Thread caches: the allocation slow paths, frees, realloc, and what a heap
// does as a whole (sweep, sync, trim). The highest of the cache's files: see
// heap.h for the call graph and ownership rules, cache.h for the inner order;
// span operations are in span.cc, frees across threads and the orphanage in
// orphanage.cc, thread state and binding in thread.cc.
#include "cache/heap.h"

#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <new>

#include "cache/check.h"
#include "cache/heap-inl.h"
#include "cache/heap_internal.h"
#include "cache/large.h"
#include "cache/meta.h"
#include "cache/secure-inl.h"
#include "cache/secure.h"
#include "cache/zero_size.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {

// Makes the partial span of class c with the most free blocks current, of
// the first kPartialScan (every partial span has one). Measured against
// taking the fullest (2026-12-01, 32 KiB pages, callgrind and peak footprint
// under valgrind): the fullest hands out its few free blocks and has to be
// replaced at once, so randorder ran 1.22x and larson 1.09x the
// instructions, and larson's peak footprint was higher, not lower (26.5
// against 23.0 MiB). Reads only the spans' first cache lines: remote frees
// still on a span's list (heap.h: kNotified; those the drain of the heap's
// list just before left there) count as used, and come home when the span's
// free list runs dry.
constexpr int kPartialScan = 8;
template <class P>
bool FindPartial(Heap* h, size_t c) {
  Page* best = nullptr;
  int scanned = 0;
  for (Page* pg = h->partial[c]; pg != nullptr && scanned < kPartialScan; ++scanned) {
    if (best == nullptr || pg->used < best->used) best = pg;
    pg = pg->next;
  }
  if (best == nullptr) return false;
  ListRemove(&h->partial[c], best);
  MakeCurrent<P>(h, best);
  return true;
}

namespace {

void* OutOfMemory(size_t size) {
  (void)size;
  errno = ENOMEM;
  return nullptr;
}

}  // namespace

// Takes a new span for class c. False: out of memory (report written).
template <class P>
bool NewSpan(Heap* h, size_t c, size_t request) {
  const uint32_t pages = kSizeClasses.span_pages[c];
  const bool first = h->current[c] == &g_empty_page && h->partial[c] == nullptr;
  const uint64_t bytes = uint64_t{pages} << kPageShift;
  // Only the pending deltas, not a walk of every current span: a refusal
  // syncs all of them in reclaim.cc before it judges.
  h->FlushDeltas();
  if (!ChargeOrReclaim(h->exec, bytes, request, h)) return false;
  // Spill hooks may have run on this thread and left a usable span.
  if (P::HasFree(h->current[c]) || h->partial[c] != nullptr) {
    h->exec->Uncharge(bytes);
    return true;
  }
  AgeLargeCache(h);
  bool zeroed = false;
  Page* pg = AsPage(pool::AllocSpan(pages, &zeroed));
  if (pg == nullptr) {
    h->exec->Uncharge(bytes);
    h->exec->account.oom_count.fetch_add(1, std::memory_order_relaxed);
    snprintf(ThreadLastError(), kLastErrorSize,
             "execmem: out of memory: the pool cannot supply %" PRIu64
             " bytes for executor '%s' (pool capacity reached or the OS refused)",
             bytes, h->exec->name);
    return false;
  }
  pg->zeroed = zeroed;
  if constexpr (!P::kSecure) {
    if (first && !zeroed && kSizeClasses.size[c] <= kLightClassMaxSize) {
      pool::DecommitSpanTail(pg, kLightSpanKeep);
    }
  }
  InitSmallSpan<P>(pg, h, c);
  MakeCurrent<P>(h, pg);
  // The heap grew: its emptied spans of the classes of few blocks go back,
  // after the new span is taken, so that it is not one of them.
  RetireEmptyFewBlocks(h, c);
  return true;
}

namespace {

// A block of h's foreign list of class c (heap.h), handed out: still
// counted in its span's used, so no count changes but the heap's allocs.
void* PopForeign(Heap* h, size_t c, size_t n, bool zero) {
  Block* b = h->foreign[c];
  Page* pg = SmallPageOf(b);
  if (!HasFreeKey(b, pg)) ReportWriteAfterFree("malloc", b, pg->block_size, ExecOf(pg));
  h->foreign[c] = b->next;
  --h->foreign_count[c];
  MarkHandedOut(b);
  ++h->allocs;
  if (pg->shared) SharedLiveTaken(h, c);  // Heap::shared_live
  DefaultPolicy::Handout(&h->sec, pg, b, n, zero);
  return b;
}

}  // namespace

// The small-block malloc of both policies (cache/secure_policy.h): pop the
// current span's free list; else blocks other threads freed into it, new
// ones carved; the heap's remote list; the partial span with the most free
// blocks; a sweep; an orphan; a new span.
template <class P>
[[gnu::always_inline]] inline void* SmallMalloc(Heap* h, size_t c, size_t n, bool zero) {
  for (;;) {
    Page* pg = h->current[c];
    if (P::Head(pg) != nullptr) {
      Block* b = P::Pop(pg);
      ++pg->used;
      ++h->allocs;
      P::Handout(&h->sec, pg, b, n, zero);
      return b;
    }
    if constexpr (P::kFastFrees) {
      // Blocks of other heaps' spans this thread freed (heap.h: foreign).
      if (h->foreign[c] != nullptr) {
        if (ForeignUsable(h, c)) return PopForeign(h, c, n, zero);
        // A class h no longer shares: its shared blocks go home, the
        // others behind them become usable.
        SendSharedForeignHome(h, c);
        continue;
      }
    }
    if (pg != &g_empty_page) {
      // Blocks other threads freed, then new ones.
      if (CollectThreadFree(pg) != 0) continue;
      if (pg->bump < pg->limit) {
        P::Carve(&h->sec, pg);
        continue;
      }
    }
    if (h->remote.load(std::memory_order_relaxed) != 0) {
      DrainRemoteOf<P>(h);
      if (P::HasFree(h->current[c])) continue;
    }
    if (FindPartial<P>(h, c)) continue;
    // An exited thread's span with free blocks is memory held already: before
    // a shared span's block, which may take a new span.
    if (AdoptOrphan<P>(h, c)) continue;
    if constexpr (P::kFastFrees) {
      // A class this thread holds few blocks of: a span its executor's
      // threads share.
      if (IsSharedClass(c) && h->shared_live[c] < kSharedPromote && h != &g_bootstrap_heap) {
        // Put on the foreign list; a refused charge was reported and the
        // spill hooks asked: the thread's own span would be refused it too.
        const SharedTake took = SharedMalloc(h, c, n);
        if (took == SharedTake::kTaken) return PopForeign(h, c, n, zero);
        if (took == SharedTake::kRefused) return OutOfMemory(n);
      }
    }
    if (h->spans >= h->spans_at_sweep + h->spans / 8 + 16) {
      h->Sweep();  // before growing: spans other threads emptied go back first
      continue;
    }
    if (!NewSpan<P>(h, c, n)) return OutOfMemory(n);
  }
}

// Secure mode's malloc after the newest blocks' checks: a class with room
// for the canary, or a large block between guard pages.
[[gnu::noinline]] void* SecureMallocChecked(Heap* h, size_t size, size_t alignment, bool zero) {
  const size_t a = alignment < kMinAlign ? kMinAlign : alignment;
  if (size == 0 && a == kMinAlign) {
    if (void* z = ZeroBlock()) return z;
  }
  const size_t c = SecurePolicy::ClassOf(size, a);
  if (c < kNumClasses) return SmallMalloc<SecurePolicy>(h, c, size, zero);
  return secure::GuardedAlloc(h, size, a, zero);
}

// Secure mode's malloc: the newest blocks checked again, then the block.
void* SecureMalloc(Heap* h, size_t size, size_t alignment, bool zero) {
  if (secure::On(secure::kNewest)) secure::CheckNewest(&h->sec, "malloc");
  return SecureMallocChecked(h, size, alignment, zero);
}

// Secure mode's common malloc, inline in MallocSlow (the one branch on
// Heap::secure it always took): a small block popped from the current span
// of its class, with every check of SecureMalloc's, inline; anything else
// (a refill, malloc(0), a large block) goes on out of line. Saves the calls
// and their prologues: 100 instructions a malloc/free pair of the 500 the
// secure path cost with every optional protection off (hashagg).
[[gnu::always_inline]] inline void* SecureMallocSmall(Heap* h, size_t size, bool zero) {
  if (secure::On(secure::kNewest)) secure::CheckNewestInline(&h->sec, "malloc");
  if (size - 1 < kMaxSmallSize - 8) [[likely]] {  // not 0, and small with the tail word
    const size_t c = SecurePolicy::ClassOf(size, kMinAlign);
    Page* pg = h->current[c];
    if (pg->secure_free != nullptr) [[likely]] {
      Block* b = SecurePolicy::Pop(pg);
      ++pg->used;
      ++h->allocs;
      SecurePolicy::Handout(&h->sec, pg, b, size, zero);
      return b;
    }
  }
  return SecureMallocChecked(h, size, kMinAlign, zero);
}

void Heap::Sweep() {
  for (size_t c = 0; c < kNumClasses; ++c) {
    if (current[c] != &g_empty_page) CollectThreadFree(current[c]);
    for (Page* pg = partial[c]; pg != nullptr;) {
      Page* next = pg->next;
      if (CollectThreadFree(pg) != 0 && pg->used == 0) ReleasePartial(this, pg);
      pg = next;
    }
  }
  spans_at_sweep = spans;
}

void Heap::SyncAll() {
  FlushForeign();
  DrainRemote();
  Sweep();
  for (size_t c = 0; c < kNumClasses; ++c) {
    for (Page* pg = partial[c]; pg != nullptr; pg = pg->next) SyncPage(this, pg);
  }
  for (Page* pg = full; pg != nullptr; pg = pg->next) SyncPage(this, pg);
  Sync();
}

void Heap::TrimEmpty() {
  if (secure) FlushQuarantine(this);
  FlushForeign();
  DrainRemote();
  Sweep();
  ReleaseLargeCache();
  for (size_t c = 0; c < kNumClasses; ++c) {
    Page* cur = current[c];
    if (cur != &g_empty_page && Live(cur) == 0) RetireCurrent(this, cur);
    for (Page* pg = partial[c]; pg != nullptr;) {
      Page* next = pg->next;
      if (pg->used == 0) ReleasePartial(this, pg);
      pg = next;
    }
  }
  Sync();
}

bool Heap::IsValid() const {
  uint32_t owned = 0;
  // fast: whether fast_owner must name this heap (see heap.h).
  auto check = [&](const Page* pg, bool is_current, bool fast) {
    ++owned;
    if (pg->kind != PageKind::kSmall || OwnerHeap(pg) != this) return false;
    if (pg->current != (is_current ? 1 : 0)) return false;
    if (IsFastOwner(pg, this) != (fast && !secure)) return false;
    uint32_t nfree = 0;
    if (secure) {
      if (pg->free != nullptr) return false;  // the inline fast path must find none
      for (const char* b = reinterpret_cast<const char*>(pg->secure_free); b != nullptr;
           b = secure::DecodeLink(secure::Load64(b), b)) {
        if (++nfree > pg->capacity) return false;
      }
    } else {
      for (const Block* b = pg->free; b != nullptr; b = b->next) {
        if (++nfree > pg->capacity) return false;
      }
    }
    return Live(pg) + nfree + Uncarved(pg) == pg->capacity;
  };
  for (size_t c = 0; c < kNumClasses; ++c) {
    if (current[c] != &g_empty_page && !check(current[c], true, true)) return false;
    for (const Page* pg = partial[c]; pg != nullptr; pg = pg->next) {
      if (!check(pg, false, true) || pg->in_full) return false;
    }
  }
  for (const Page* pg = full; pg != nullptr; pg = pg->next) {
    if (!check(pg, false, false) || !pg->in_full) return false;
  }
  return owned == spans;
}

// ---- slow paths ----

void* MallocSlow(size_t size, bool zero) noexcept {
  // A safe point: no lock held, no heap half-updated (starting the purger
  // thread may allocate, re-entering here).
  pool::MaybeStartPurger();
  Heap* h = CurrentHeapForSlowPath();
  if (h == nullptr) return OutOfMemory(size);
  if (h->secure) return SecureMallocSmall(h, size, zero);
  if (size == 0) [[unlikely]] {  // kZeroClass: zero_size.h
    void* z = ZeroBlock();
    return z != nullptr ? z : OutOfMemory(size);
  }
  if (size > kMaxSmallSize) return LargeAlloc(h, size, kMinAlign, zero);
  return SmallMalloc<DefaultPolicy>(h, SizeClassOf(size), size, zero);
}

void* MallocAligned(size_t size, size_t alignment, bool zero) {
  if (alignment <= kMinAlign && size % kMinAlign == 0) {
    void* p = zero ? MallocSlow(size, true) : Malloc(size);
    return p;
  }
  if (secure::Enabled()) {
    Heap* h = CurrentHeapForSlowPath();
    return h == nullptr ? OutOfMemory(size) : SecureMalloc(h, size, alignment, zero);
  }
  // A small class whose size is a multiple of the alignment hands out
  // aligned blocks (spans start page-aligned); powers of two always are.
  if (alignment <= kPageSize) {
    size_t n = size < alignment ? alignment : size;
    if (n <= kMaxSmallSize) {
      size_t c = SizeClassOf(n);
      while (c < kNumClasses && ClassSize(c) % alignment != 0) ++c;
      if (c < kNumClasses) {
        void* p = zero ? MallocSlow(ClassSize(c), true) : Malloc(ClassSize(c));
        return p;
      }
    }
  }
  Heap* h = CurrentHeapForSlowPath();
  if (h == nullptr) return OutOfMemory(size);
  return LargeAlloc(h, size, alignment, zero);
}

namespace {

bool IsFreeOp(const char* op) { return strncmp(op, "free", 4) == 0; }

// A large span back in the pool (or in a thread's large cache) whose
// descriptor still names p: p was a large block and is freed.
[[noreturn]] void ReportFreedOrInvalid(const char* op, const void* p, const Page* pg) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (IsFreeOp(op) && pg->large_user == a && a != 0) {
    // In this thread's large cache, the span is still its executor's.
    const Tenant* e = nullptr;
    const Heap* h = tls_heap;
    for (int i = 0; i < h->large_count; ++i) {
      if (h->large_cache[i] == pg) e = ExecOf(pg);
    }
    ReportDoubleFree(op, p, pg->large_size, e);
  }
  ReportInvalidPointer(op, p);
}

}  // namespace

// Resolves p to its span head and checks it is a live block start.
// Returns nullptr for a huge block (*huge set) and reports invalid pointers
// (check.h: what is told apart).
Page* ResolveBlock(const void* p, ArenaHeader** huge, const char* op) {
  *huge = nullptr;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t base = SlotLookup(p);
  if (base == 0) {
    char name[sizeof(Tenant::name)];
    if (IsFreeOp(op)) {
      if (const size_t usable = HugeFreedSize(a, name, sizeof name)) {
        ReportDoubleFreeNamed(op, p, usable, name[0] != '\0' ? name : nullptr);
      }
    }
    ReportInvalidPointer(op, p);
  }
  ArenaHeader* ah = ArenaOf(base);
  if (ah->huge) {
    if (a != ah->huge_user) {
      if (a > ah->huge_user && a - ah->huge_user < ah->huge_usable) {
        ReportInteriorPointer(op, p, a - ah->huge_user, ah->huge_usable, HugeExecOf(ah));
      }
      ReportInvalidPointer(op, p);
    }
    *huge = ah;
    return nullptr;
  }
  const uint32_t idx = static_cast<uint32_t>((a >> kPageShift) & (kPagesPerArena - 1));
  if (idx < kMetaPages) ReportInvalidPointer(op, p);
  Page* pg = HeadOf(PageAt(base, idx));
  if (pg->kind == PageKind::kLarge) {
    if (a != pg->large_user) {
      if (a > pg->large_user && a - pg->large_user < pg->large_size) {
        ReportInteriorPointer(op, p, a - pg->large_user, pg->large_size, ExecOf(pg));
      }
      ReportInvalidPointer(op, p);
    }
    return pg;
  }
  if (pg->kind == PageKind::kFree) ReportFreedOrInvalid(op, p, pg);
  if (pg->kind != PageKind::kSmall) ReportInvalidPointer(op, p);
  const uintptr_t off = a - reinterpret_cast<uintptr_t>(PageStart(pg));
  // Past what the span carved (never handed out: CarvedEnd, at most
  // `limit`), or a block the colour skipped (span.h).
  if (a >= reinterpret_cast<uintptr_t>(CarvedEnd(pg)) ||
      a < reinterpret_cast<uintptr_t>(FirstBlock(pg))) {
    ReportInvalidPointer(op, p);
  }
  if (!IsBlockOffset(static_cast<uint32_t>(off), BlockMagic(pg))) [[unlikely]] {
    ReportInteriorPointer(op, p, off % pg->block_size, pg->block_size, ExecOf(pg));
  }
  return pg;
}

namespace {

// Frees into a span owned by another heap of this same thread (an executor
// the thread is not bound to now), taking that heap exclusively.
template <class P>
bool FreeIntoOwnIdleHeap(Heap* h, Heap* owner, Page* pg, Block* b) {
  if (h == &g_bootstrap_heap || h->thread == nullptr) return false;
  bool mine = false;
  for (Heap* x = h->thread->heaps; x != nullptr; x = x->thread_next) {
    if (x == owner) {
      mine = true;
      break;
    }
  }
  if (!mine) return false;
  HeapState idle = HeapState::kIdle;
  if (!owner->state.compare_exchange_strong(idle, HeapState::kActive, std::memory_order_acquire)) {
    return false;
  }
  LocalFree<P>(owner, pg, b);
  owner->Sync();
  owner->state.store(HeapState::kIdle, std::memory_order_release);
  return true;
}

// A small block free gives back (at once, or as it leaves the quarantine) to
// its span: the owner's free list, another heap of this thread, or the
// owning heap's remote list.
template <class P>
void GiveBack(Heap* h, Heap* owner, Page* pg, Block* b, const char* op) {
  // A span of an exited thread of our executor: take it over, so that this
  // free and the next ones into it are local (mimalloc's reclaim on free).
  // Blocks of the span still queued at the orphanage follow it. (A span
  // adopted here takes this thread's fast frees: the default mode's only.)
  if constexpr (P::kFastFrees) {
    if (owner == &g_orphanage_storage && h != &g_bootstrap_heap && ExecOf(pg) == h->exec &&
        AdoptSpan(h, pg)) {
      owner = h;
    }
  }
  if (owner == h) {
    if (reinterpret_cast<char*>(b) >= pg->bump) ReportInvalidPointer(op, b);  // never handed out
    LocalFree<P>(h, pg, b);
    return;
  }
  // Another heap's span: a block it never handed out was refused before it
  // got here (ResolveBlock, or SecureFreeChecked, compares with CarvedEnd).
  if (owner != nullptr && owner != &g_orphanage_storage &&
      FreeIntoOwnIdleHeap<P>(h, owner, pg, b)) {
    return;
  }
  if constexpr (P::kFastFrees) {
    // Kept for this thread's next allocation of the class (heap.h: foreign).
    if (owner != &g_orphanage_storage && PushForeign(h, pg, b)) return;
    if (pg->shared) {
      if (!SharedFreeHere(h, pg, b)) ReportInvalidPointer(op, b);  // never handed out
      return;
    }
  }
  RemoteFree(pg, b);
}

// Frees a block ResolveBlock accepted: its policy's checks (a block already
// free is reported), then what the policy holds back or gives back.
// live_checked: the policy's SmallUsable has checked the block (a sized free).
template <class P>
void FreeResolved(void* p, Page* pg, ArenaHeader* huge, const char* op, bool live_checked = false) {
  Heap* h = tls_heap;
  if (huge != nullptr || pg->kind == PageKind::kLarge) {
    P::FreeLarge(h, huge, pg, p);
    return;
  }
  Block* b = static_cast<Block*>(p);
  Heap* owner = OwnerHeap(pg);
  P::CheckFree(op, h, owner, pg, b, live_checked);
  secure::Held out = P::Hold(h->secure, &h->sec, pg, b);
  if (out.b == b) {
    GiveBack<P>(h, owner, pg, b, op);
    return;
  }
  for (; out.b != nullptr; out = P::Evict(h->secure, &h->sec)) {
    GiveBack<P>(h, OwnerHeap(out.pg), out.pg, out.b, op);
  }
}

// A block of a span this thread owns that the fast path did not take: in a
// tail page of a span of several pages, or in a full span; or a block of
// another heap's span of this thread's executor, for the foreign list
// (heap.h); or a block of a shared span (heap_internal.h). Frees it without
// the general resolution below. False for anything else (an orphan's block:
// the general path adopts its span), and for a block holding the free key
// (the general path confirms and reports it).
bool FreeOwnedSlow(void* p) {
  Page* pg = SpanHeadOf(p);
  Heap* h = tls_heap;
  if (pg == nullptr || pg->kind != PageKind::kSmall) return false;
  const Heap* owner = OwnerHeap(pg);
  // Another heap's block of a class without foreign lists: the general path
  // sends it home.
  if (owner != h && kForeignMax[pg->size_class] == 0) return false;
  const uint32_t off = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p) -
                                             reinterpret_cast<uintptr_t>(PageStart(pg)));
  Block* b = static_cast<Block*>(p);
  if (!IsBlockOffset(off, BlockMagic(pg)) || HasFreeKey(b, pg)) {
    return false;
  }
  // A block the colour skipped (span.h) whose free key was overwritten: the
  // general path reports it.
  if (off < kColorLines * 64 + kColorMaxBlock && static_cast<char*>(p) < FirstBlock(pg)) {
    return false;
  }
  // Past what the span carved (never handed out: CarvedEnd, at most
  // `limit`): the general path reports it.
  if (static_cast<char*>(p) >= CarvedEnd(pg)) return false;
  if (owner == h) {
    LocalFree<DefaultPolicy>(h, pg, b);
    return true;
  }
  if (owner == &g_orphanage_storage) return false;
  if (PushForeign(h, pg, b)) return true;
  if (!pg->shared) return false;
  if (!SharedFreeHere(h, pg, b)) ReportInvalidPointer("free", p);  // never handed out
  return true;
}

template <class P>
[[gnu::always_inline]] inline void FreeOf(void* p) {
  if constexpr (P::kFastFrees) {
    if (FreeOwnedSlow(p)) return;
  }
  if (InZeroRegion(p)) {
    FreeZeroBlock("free", p);
    return;
  }
  ArenaHeader* huge;
  Page* pg = ResolveBlock(p, &huge, "free");
  FreeResolved<P>(p, pg, huge, "free");
}

template <class P>
void FreeSizedOf(void* p, size_t size, size_t alignment) {
  const char* op = alignment != 0 ? "free_aligned_sized" : "free_sized";
  if (InZeroRegion(p)) {
    if (size != 0) ReportWrongSize(op, p, size, 0, nullptr);
    FreeZeroBlock(op, p);
    return;
  }
  ArenaHeader* huge;
  Page* pg = ResolveBlock(p, &huge, op);
  size_t usable;
  const Tenant* e;
  if (huge != nullptr) {
    usable = P::HugeUsable(huge);
    e = HugeExecOf(huge);
  } else {
    usable = pg->kind == PageKind::kLarge ? P::LargeUsable(pg, p) : P::SmallUsable(op, pg, p);
    e = ExecOf(pg);
  }
  if (!P::SizeFits(size, usable, alignment != 0)) {
    // A double free is reported as one, whatever the size (secure mode's
    // SmallUsable has checked that).
    if (!P::kSecure && huge == nullptr && pg->kind == PageKind::kSmall &&
        HasFreeKey(static_cast<Block*>(p), pg) &&
        ConfirmFreeBlock(tls_heap, OwnerHeap(pg), pg, static_cast<Block*>(p))) {
      ReportDoubleFree(op, p, usable, e);
    }
    ReportWrongSize(op, p, size, usable, e);
  }
  FreeResolved<P>(p, pg, huge, op, /*live_checked=*/true);
}

// op: the caller's name in a report (realloc asks it too).
template <class P>
size_t UsableSizeOf(const void* p, const char* op = "malloc_usable_size") {
  if (InZeroRegion(p)) return 0;
  ArenaHeader* huge;
  Page* pg = ResolveBlock(p, &huge, op);
  if (huge != nullptr) return P::HugeUsable(huge);
  if (pg->kind == PageKind::kLarge) return P::LargeUsable(pg, p);
  return P::SmallUsable(op, pg, p);
}

// Secure mode's common free, inline in FreeSlow and FreeSizedSlow: a small
// block of a secure heap's span — this heap's, or another thread's (larson's
// hand-offs) — checked as FreeResolved<SecurePolicy> checks it (its canary,
// slack and the word before; when this heap owns the span, the neighbours;
// zeroed and marked), held in the quarantine, what leaves it given back.
// False for anything else, and for a pointer that is not a block handed out
// or a sized free whose size does not fit (nothing done yet): the general
// path takes it and reports what is wrong. size 0: an unsized free. Saves
// ResolveBlock's general resolution and four calls (hashagg: 130
// instructions a free; a free from another thread, the same and the
// out-of-line CheckFree and Quarantine).
// kMine: this heap owns the span (its neighbours are checked, `bump` is
// ours to read); each case is compiled on its own, so that the common one
// (hashagg: every free) pays nothing for the other.
template <bool kMine>
[[gnu::always_inline]] inline bool SecureFreeChecked(Heap* h, Page* pg, char* b, size_t size,
                                                     const char* op) {
  // Never handed out (past `bump`; another thread's atomic read: CarvedEnd).
  if (b >= (kMine ? pg->bump : CarvedEnd(pg)) || !secure::IsBlockOf(pg, PageStart(pg), b)) {
    return false;
  }
  secure::PrefetchFree(pg, b, kMine && secure::On(secure::kNeighbours));
  const size_t n = secure::CheckLiveInline(op, pg, b);
  if (size != 0 && !SecurePolicy::SizeFits(size, n, false)) return false;
  secure::CheckFreeInline(op, kMine, pg, b, /*live_checked=*/true);
  if (h->sec.last_alloc == b) h->sec.last_alloc = nullptr;
  if (!secure::On(secure::kQuarantine)) {
    if constexpr (kMine) {
      LocalFree<SecurePolicy>(h, pg, reinterpret_cast<Block*>(b));
    } else {
      GiveBack<SecurePolicy>(h, OwnerHeap(pg), pg, reinterpret_cast<Block*>(b), op);
    }
    return true;
  }
  for (secure::Held out = secure::QuarantineInline(&h->sec, reinterpret_cast<Block*>(b), pg);
       out.b != nullptr; out = SecurePolicy::Evict(true, &h->sec)) {
    if (OwnerHeap(out.pg) != h) {
      GiveBack<SecurePolicy>(h, OwnerHeap(out.pg), out.pg, out.b, op);
      continue;
    }
    // GiveBack's and LocalFree's local free, inline.
    if (reinterpret_cast<char*>(out.b) >= out.pg->bump) ReportInvalidPointer(op, out.b);
    SecurePolicy::Push(out.pg, out.b);
    --out.pg->used;
    if ((out.pg->in_full || out.pg->used == 0) && AfterSlowFree<SecurePolicy>(h, out.pg)) continue;
    SyncPage(h, out.pg);
  }
  return true;
}

[[gnu::always_inline]] inline bool SecureFreeOwned(void* p, size_t size, const char* op) {
  Page* pg = SpanHeadOf(p);
  Heap* h = tls_heap;
  char* b = static_cast<char*>(p);
  if (pg == nullptr || pg->kind != PageKind::kSmall || !h->secure) return false;
  if (OwnerHeap(pg) == h) [[likely]] {
    return SecureFreeChecked<true>(h, pg, b, size, op);
  }
  return SecureFreeChecked<false>(h, pg, b, size, op);
}

// Secure mode's frees, out of FreeSlow's and FreeSizedSlow's frames: inline
// there, SecureFreeOwned's registers made the default mode's slow frees pay
// for a longer prologue (randorder: +0.25 % instructions; now +0.04 %). The
// call costs secure mode 20 instructions a free (hashagg: +1.7 %).
[[gnu::noinline]] void SecureFree(void* p) {
  if (!SecureFreeOwned(p, 0, "free")) FreeOf<SecurePolicy>(p);
}

[[gnu::noinline]] void SecureFreeSized(void* p, size_t size, size_t alignment) {
  if (alignment != 0 || size == 0 || !SecureFreeOwned(p, size, "free_sized")) {
    FreeSizedOf<SecurePolicy>(p, size, alignment);
  }
}

// Secure mode's realloc: in place when the new size suits the block (the
// canary or the slack moved), else a new block and the old one freed.
void* SecureRealloc(void* p, size_t size) {
  Heap* h = CurrentHeapForSlowPath();
  if (h == nullptr) return OutOfMemory(size);
  if (p == nullptr) return SecureMalloc(h, size, kMinAlign, false);
  const size_t old = UsableSizeOf<SecurePolicy>(p, "realloc");  // checks p first
  if (!InZeroRegion(p)) {
    ArenaHeader* huge;
    Page* pg = ResolveBlock(p, &huge, "realloc");
    char* b = static_cast<char*>(p);
    if (huge == nullptr && pg->kind == PageKind::kSmall &&
        secure::ResizeSmallInPlace(pg, b, old, size)) {
      return p;
    }
    if (huge == nullptr && pg->kind == PageKind::kLarge &&
        secure::ResizeLargeGuarded(h, pg, b, size)) {
      return p;
    }
    if (huge != nullptr) {
      if (void* moved = secure::ResizeHugeGuarded(h, p, size)) return moved;
    }
  }
  void* q = size > kMaxSmallSize - 8 && size > old
                ? secure::GuardedAlloc(h, size, kMinAlign, false, /*headroom=*/true)
                : SecureMalloc(h, size, kMinAlign, false);
  if (q == nullptr) return nullptr;
  memcpy(q, p, old < size ? old : size);
  FreeOf<SecurePolicy>(p);
  return q;
}

}  // namespace

// The entry points pick the policy: secure mode is chosen once per process.
void FreeSlow(void* p) noexcept {
  if (p == nullptr) return;
  if (secure::Enabled()) {
    SecureFree(p);
    return;
  }
  FreeOf<DefaultPolicy>(p);
}

void FreeSizedSlow(void* p, size_t size, size_t alignment) noexcept {
  if (p == nullptr) return;
  if (secure::Enabled()) {
    SecureFreeSized(p, size, alignment);
    return;
  }
  FreeSizedOf<DefaultPolicy>(p, size, alignment);
}

size_t UsableSize(const void* p) {
  if (p == nullptr) return 0;
  return secure::Enabled() ? UsableSizeOf<SecurePolicy>(p) : UsableSizeOf<DefaultPolicy>(p);
}

bool Owns(const void* p) {
  if (p == nullptr) return false;
  if (InZeroRegion(p)) return true;
  const uintptr_t base = SlotLookup(p);
  if (base == 0) return false;
  ArenaHeader* ah = ArenaOf(base);
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (ah->huge) return a == ah->huge_user;
  const uint32_t idx = static_cast<uint32_t>((a >> kPageShift) & (kPagesPerArena - 1));
  if (idx < kMetaPages) return false;
  Page* pg = HeadOf(PageAt(base, idx));
  if (pg->kind == PageKind::kLarge) return a == pg->large_user;
  if (pg->kind != PageKind::kSmall) return false;
  const uintptr_t off = a - reinterpret_cast<uintptr_t>(PageStart(pg));
  // Never-carved blocks (CarvedEnd) are not ours to hand back.
  return off % pg->block_size == 0 && a < reinterpret_cast<uintptr_t>(CarvedEnd(pg)) &&
         a >= reinterpret_cast<uintptr_t>(FirstBlock(pg));
}

void* Realloc(void* p, size_t size) { return ReallocFast(p, size); }

void* ReallocSlow(void* p, size_t size) {
  if (secure::Enabled()) return SecureRealloc(p, size);
  if (p == nullptr) return Malloc(size);
  size_t old_usable;
  // A small block first, with one resolution (Redis's sds strings and
  // listpacks resize in their class, and shrink); one holding the free key
  // the general way, which checks it.
  const Page* small = SmallBlockHead(p);
  if (small != nullptr && !HasFreeKey(static_cast<const Block*>(p), small)) {
    old_usable = small->block_size;
    if (KeepsSmallBlock(size, old_usable)) return p;
  } else {
    // Nothing to copy. Not gated on SlotLookup(p) == 0: the zero region may lie
    // in the last 64 MiB slot of a huge block, which the page map gives to
    // that block (fuzz.api aborted: realloc(): pointer not allocated).
    if (InZeroRegion(p)) {
      void* q = Malloc(size);
      if (q != nullptr) FreeZeroBlock("realloc", p);
      return q;
    }
    ArenaHeader* huge = nullptr;
    Page* pg = LargeBlockHead(p);  // a large block: no general resolution
    if (pg == nullptr) pg = ResolveBlock(p, &huge, "realloc");
    // A request no block can have goes to the allocation below, which refuses
    // it with the report (and no size arithmetic here can overflow).
    const bool mappable = size <= kMaxRequest;
    if (huge != nullptr) {
      old_usable = huge->huge_usable;
      if (size <= old_usable && size >= old_usable / 2) return p;
      // Still huge: remap (in place, or by moving pages), never copy.
      if (mappable && LargeClassPages(size) > kMaxSpanPages) {
        Heap* h = CurrentHeapForSlowPath();
        return h == nullptr ? nullptr : HugeResize(h, huge, size);
      }
    } else if (pg->kind == PageKind::kLarge) {
      old_usable = pg->large_size;
      if (mappable && LargeResizeInPlace(CurrentHeapForSlowPath(), pg, size)) return p;
    } else {
      old_usable = pg->block_size;
      // Freed (the free key, confirmed): realloc would free it again. (A
      // block the colour skipped: ResolveBlock reported it.)
      DefaultPolicy::CheckFree("realloc", tls_heap, OwnerHeap(pg), pg, static_cast<Block*>(p),
                               false);
      if (KeepsSmallBlock(size, old_usable)) return p;
    }
  }
  void* q;
  // A block that grows past kReallocPromote (a buffer being built) becomes a
  // large block with headroom, so that it grows in place from then on (within
  // its 64 KiB pages, then over the free pages after them) instead of being
  // copied at every small size class.
  if (size > old_usable && (size > kMaxSmallSize || old_usable >= kReallocPromote)) {
    Heap* h = CurrentHeapForSlowPath();
    q = h == nullptr ? nullptr : LargeAlloc(h, size, kMinAlign, false, /*headroom=*/true);
  } else {
    q = Malloc(size);
  }
  if (q == nullptr) return nullptr;
  memcpy(q, p, size < old_usable ? size : old_usable);
  Free(p);
  return q;
}

void ThreadHeapsSync() {
  Heap* h = tls_heap;
  if (h == &g_bootstrap_heap) return;
  h->SyncAll();
}

void TrimThreadAndPool() {
  Heap* h = tls_heap;
  if (h != &g_bootstrap_heap) {
    h->TrimEmpty();
    h->exec->account.MaybeReleaseGrant(true);  // and the slack of its grant
  }
  DrainOrphanage();
  pool::Purge(true);
}

}  // namespace execmem
