// Spans of small blocks, the lowest of the cache's files: page lists,
// carving, span and heap modes, the current / partial / full placement,
// local frees, syncing counts to the tenant, giving spans back to the pool;
// the heaps every thread starts with (the bootstrap heap, the empty page).
// Calls nothing in the cache's other .cc files (cache.h: the inner order).
#include "cache/span.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>

#include "cache/check.h"
#include "cache/heap.h"
#include "cache/heap_internal.h"
#include "cache/secure.h"
#include "cache/secure_policy.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {

// The empty page: every heap's current[] points here for classes it has no
// span for, so the fast path needs no null check. Never written: free stays
// null and fast_owner stays 0.
constinit Page g_empty_page{};

namespace {

// Blocks carved at a time: those whose free key (the second word, check.h)
// lies in the OS pages the first one touches, and at least two. A carved
// block is written, so the former batch of at least 4 blocks made the spans
// of blocks of 1 KiB and more resident up to 3 blocks ahead of use; the
// second block stays carved so that an overflow of the block handed out
// runs into a free key and is caught (tests/safety: *_memcpy_overflow_medium).
inline uint32_t CarveBatch(const char* bump, uint32_t block_size) {
  constexpr uintptr_t kOsPageBytes = 4096;
  constexpr uintptr_t kKeyEnd = 2 * sizeof(Block*);
  const uintptr_t first_end = reinterpret_cast<uintptr_t>(bump) + block_size;
  const uintptr_t touched_end = (first_end + kOsPageBytes - 1) & ~(kOsPageBytes - 1);
  const uint32_t n = static_cast<uint32_t>(
      (touched_end - reinterpret_cast<uintptr_t>(bump) - kKeyEnd) / block_size + 1);
  return n < 2 ? 2 : n;
}

}  // namespace

// Reports the page's used-count change since the last report.
void SyncPage(Heap* h, Page* pg) {
  const int64_t d = static_cast<int64_t>(Live(pg)) - static_cast<int64_t>(pg->accounted_used);
  if (d == 0) return;
  pg->accounted_used = Live(pg);
  if (h->is_orphanage) {
    ExecOf(pg)->account.AddUsed(d * pg->block_size, d, 0);
  } else {
    h->used_delta += d * pg->block_size;
    h->blocks_delta += d;
  }
}

template <class P>
void InitSmallSpan(Page* head, Heap* h, size_t cls) {
  const uint32_t pages = head->span_pages;
  head->kind = PageKind::kSmall;
  head->size_class = static_cast<uint8_t>(cls);
  head->block_size = kSizeClasses.size[cls];
  head->capacity = kSizeClasses.capacity[cls];
  head->div_magic = P::kSpanBits == 0 ? kSizeClasses.div_magic[cls] : 0;  // (Page::div_magic)
  head->secure = P::kSpanBits;
  head->used = 0;
  head->current = 0;
  head->shared = 0;
  head->accounted_used = 0;
  head->free = nullptr;
  head->secure_free = nullptr;
  head->thread_free.store(P::kThreadFree, std::memory_order_relaxed);
  SetFastOwner(head, nullptr);
  head->in_full = 0;
  head->limit = PageStart(head) + size_t{head->capacity} * head->block_size;
  // Colouring (span.h): the skipped blocks hold the free key, so that a free
  // of one is refused by the fast path and reported by the slow one.
  const uint32_t skip = ColorBlocks(head);
  head->bump = PageStart(head);
  for (uint32_t i = 0; i < skip; ++i, head->bump += head->block_size) {
    MarkFree(reinterpret_cast<Block*>(head->bump), head);
  }
  head->capacity -= skip;
  head->prev = head->next = nullptr;
  SetExecOf(head, h->exec);
  SetOwnerHeap(head, h, std::memory_order_release);
  SetTails(head, 1, pages);
  ++h->spans;
}

// Gives an empty small span back to the pool and uncharges its executor.
void ReleaseSmallSpan(Heap* h, Page* pg) {
  if (h->sec.last_alloc_page == pg) h->sec.last_alloc = nullptr;  // secure_policy.h: HeapState
  SyncPage(h, pg);
  --h->spans;
  FreeSmallSpan(pg);
}

void FreeSmallSpan(Page* pg) {
  SetFastOwner(pg, nullptr);
  pg->thread_free.store(0, std::memory_order_relaxed);  // empty: no block is out
  for (uint32_t i = 1; i < pg->span_pages; ++i) pg[i].kind = PageKind::kFree;
  Tenant* e = ExecOf(pg);
  const uint64_t bytes = uint64_t{pg->span_pages} << kPageShift;
  SetOwnerHeap(pg, nullptr, std::memory_order_relaxed);
  pool::FreeSpan(pg);
  e->Uncharge(bytes);
}

void Carve(Page* pg) {
  const uint32_t bs = pg->block_size;
  uint32_t n = CarveBatch(pg->bump, bs);
  const uint32_t left = Uncarved(pg);
  if (n > left) n = left;
  char* first = pg->bump;
  Block* b = reinterpret_cast<Block*>(first);
  // Carved blocks are free blocks: they carry the key (check.h), so that a
  // free of one never handed out is caught like a double free.
  for (uint32_t i = 1; i < n; ++i) {
    Block* next = reinterpret_cast<Block*>(first + size_t{i} * bs);
    b->next = next;
    MarkFree(b, pg);
    b = next;
  }
  b->next = pg->free;
  MarkFree(b, pg);
  pg->free = reinterpret_cast<Block*>(first);
  // Atomic: other threads read it without the owner or the class's lock
  // (CarvedEnd).
  SetCarvedEnd(pg, first + size_t{n} * bs);
}

uint32_t CollectThreadFree(Page* pg) {
  const uintptr_t tf = pg->thread_free.load(std::memory_order_relaxed);
  if (tf == 0 || tf == kHeapMode) return 0;
  // Not heap mode: only pushes race with us, and they retry.
  const uintptr_t taken = pg->thread_free.exchange(0, std::memory_order_acquire);
  Block* list = ThreadFreeHead(taken);
  if (list == nullptr) return 0;
  const uint32_t n = ThreadFreeCount(taken);
  // The list as it is when the free list is empty (a current span that ran
  // dry, a full span): its blocks are touched as malloc hands them out, each
  // miss then overlapping the caller's work, not in a walk of misses in a row.
  // Else one list goes behind the other, walked to its end: the shorter, or
  // the free list when as long (the owner wrote its blocks last: more likely
  // in its cache). Its length by the invariant on Page (span.h), `used`
  // still counting the n blocks.
  if (Block* own = pg->free; own != nullptr) {
    const uint32_t own_count = pg->capacity - Live(pg) - Uncarved(pg);
    Block* tail = own_count <= n ? own : list;
    while (tail->next != nullptr) tail = tail->next;
    if (own_count <= n) {
      tail->next = list;
      list = own;
    } else {
      tail->next = own;
    }
  }
  pg->free = list;
  pg->used -= n;
  return n;
}

void TakeNotice(Page* pg) {
  uintptr_t tf = pg->thread_free.load(std::memory_order_acquire);
  for (;;) {
    if ((tf & kNotified) == 0) return;  // heap mode (no list), or nothing pending
    // The blocks come home without a walk (the free list is empty), or all
    // the span's live blocks are back, with the notice (pg goes back whole).
    const uint32_t pending = ThreadFreeCount(tf);
    if (pg->free == nullptr || (pending != 0 && pg->current == 0 && pending + 1 == pg->used)) {
      CollectThreadFree(pg);
      return;
    }
    // Left on the span's list, re-armed: the next remote free notifies again.
    if (pg->thread_free.compare_exchange_weak(tf, tf & ~kNotified, std::memory_order_acq_rel,
                                              std::memory_order_acquire)) {
      return;
    }
  }
}

void EnterHeapMode(Page* pg) {
  for (;;) {
    uintptr_t expected = 0;
    if (pg->thread_free.compare_exchange_strong(expected, kHeapMode, std::memory_order_acq_rel,
                                                std::memory_order_relaxed) ||
        expected == kHeapMode) {
      return;
    }
    CollectThreadFree(pg);  // blocks arrived: take them, then try again from 0
  }
}

template <class P>
void EnterSpanMode(Heap* h, Page* pg) {
  if constexpr (P::kFastFrees) {                          // secure spans stay in heap mode
    pg->thread_free.store(0, std::memory_order_release);  // freers in heap mode never write it
    SetFastOwner(pg, h);
  }
}

namespace {

// Puts a span the heap owns that is not current on the list it belongs on,
// or back to the pool when empty.
template <class P>
void Place(Heap* h, Page* pg) {
  if (pg->used == 0) {
    ReleaseSmallSpan(h, pg);
  } else if (P::HasFree(pg)) {
    pg->in_full = 0;
    ListPush(&h->partial[pg->size_class], pg);
  } else {
    // Frees into a full span go slow: they unfull it (the owner's through
    // LocalFree, the first of another thread's through the heap list).
    SetFastOwner(pg, nullptr);
    pg->in_full = 1;
    ListPush(&h->full, pg);
  }
}

// Moves a page that stopped being current to the list it belongs on, or to
// the pool when empty.
template <class P>
void Demote(Heap* h, Page* pg) {
  --pg->used;
  pg->current = 0;
  SyncPage(h, pg);
  Place<P>(h, pg);
}

}  // namespace

// A secure heap's current spans are current as the default mode's are, but
// their blocks never take the inline fast paths: Page::free stays null (the
// list is Page::secure_free) and fast_owner 0, so Malloc and Free fall
// through to MallocSlow and FreeSlow, which run the secure instantiation.
template <class P>
void MakeCurrent(Heap* h, Page* pg) {
  const size_t c = pg->size_class;
  Page* old = h->current[c];
  if (old == pg) return;
  h->current[c] = pg;
  h->current_mask[c / 64] |= uint64_t{1} << (c % 64);
  if constexpr (P::kFastFrees) SetFastOwner(pg, h);
  ++pg->used;
  pg->current = 1;
  if (old != &g_empty_page) Demote<P>(h, old);
}

// A span of h that was full has a free block again: to its partial list.
// It goes to the back of the list: spans reach the front in the order they
// got a block back, each having gathered the frees of a whole round by then,
// so that a span made current serves many allocations before the next switch
// (at the front, spans unfulled by a single free were taken back at once).
template <class P>
void Unfull(Heap* h, Page* pg) {
  ListRemove(&h->full, pg);
  pg->in_full = 0;
  ListPushBack(&h->partial[pg->size_class], pg);
  if constexpr (P::kFastFrees) SetFastOwner(pg, h);
}

// An empty span on h's partial list: back to the pool.
void ReleasePartial(Heap* h, Page* pg) {
  ListRemove(&h->partial[pg->size_class], pg);
  ReleaseSmallSpan(h, pg);
}

// A span of h got a block back off the fast path: off the full list, and
// back to the pool if that was its last block (never the current span:
// Page::current). True if it went back.
void RetireCurrent(Heap* h, Page* pg) {
  const size_t c = pg->size_class;
  h->current[c] = &g_empty_page;
  h->current_mask[c / 64] &= ~(uint64_t{1} << (c % 64));
  pg->used = 0;
  pg->current = 0;
  ReleaseSmallSpan(h, pg);
}

// The classes of blocks of 64 KiB and more: a span holds one to seven blocks,
// so that a current span whose blocks all came back is most of its pages
// resident for nothing (up to 448 KiB a class and a thread; 2-11 MiB a Dask
// worker, docs/python-arenas.md). The heap gives those back when it takes a
// new span, not at the free: a block freed twice is still on its span's free
// list then, and caught (tests/safety).
// The classes of 16-64 KiB (two to seven blocks a span; 0.6 MiB of an idle
// Dask worker) go back likewise once their span has been seen empty at
// growths of the heap Heap::kCacheAge apart, the age of the large
// cache: a block of them freed twice a few spans later is still caught
// (tests/safety: df_delayed_medium takes 10 spans between its two frees).
void RetireEmptyFewBlocks(Heap* h, size_t keep) {
  constexpr size_t first = kFirstFewBlocksClass;
  for (size_t w = first / 64; w < std::size(h->current_mask); ++w) {
    uint64_t bits = h->current_mask[w];
    if (w == first / 64) bits &= ~uint64_t{0} << (first % 64);
    for (; bits != 0; bits &= bits - 1) {
      const size_t c = w * 64 + static_cast<size_t>(__builtin_ctzll(bits));
      Page* pg = h->current[c];
      if (c != keep && pg != &g_empty_page && Live(pg) == 0) RetireCurrent(h, pg);
    }
  }
  for (size_t i = 0; i < Heap::kAgedEmptyClasses; ++i) {
    const size_t c = kFirstAgedEmptyClass + i;
    Page* pg = h->current[c];
    if (c == keep || pg == &g_empty_page || Live(pg) != 0) {
      h->empty_seen[i] = nullptr;
    } else if (h->empty_seen[i] != pg) {
      h->empty_seen[i] = pg;
      h->empty_since[i] = h->grown;
    } else if (h->grown - h->empty_since[i] >= Heap::kCacheAge) {
      h->empty_seen[i] = nullptr;
      RetireCurrent(h, pg);
    }
  }
}

template <class P>
bool AfterSlowFree(Heap* h, Page* pg) {
  if (pg->in_full) Unfull<P>(h, pg);
  if (pg->used != 0) return false;
  ReleasePartial(h, pg);
  return true;
}

// A block freed by the owner of its span outside the fast path (a full span,
// a tail page, a block whose second word happened to equal the free key).
template <class P>
void LocalFree(Heap* h, Page* pg, Block* b) {
  P::Push(pg, b);
  --pg->used;
  if (!AfterSlowFree<P>(h, pg)) {
    SyncPage(h, pg);  // a slow path anyway: keeps used exact for frees into idle heaps
  }
}

// The span code's two instantiations (cache/secure_policy.h).
template void InitSmallSpan<DefaultPolicy>(Page*, Heap*, size_t);
template void EnterSpanMode<DefaultPolicy>(Heap*, Page*);
template void MakeCurrent<DefaultPolicy>(Heap*, Page*);
template void Unfull<DefaultPolicy>(Heap*, Page*);
template bool AfterSlowFree<DefaultPolicy>(Heap*, Page*);
template void LocalFree<DefaultPolicy>(Heap*, Page*, Block*);
template void InitSmallSpan<secure::SecurePolicy>(Page*, Heap*, size_t);
template void EnterSpanMode<secure::SecurePolicy>(Heap*, Page*);
template void MakeCurrent<secure::SecurePolicy>(Heap*, Page*);
template void Unfull<secure::SecurePolicy>(Heap*, Page*);
template bool AfterSlowFree<secure::SecurePolicy>(Heap*, Page*);
template void LocalFree<secure::SecurePolicy>(Heap*, Page*, Block*);

void RetireEmpty(Page* pg) noexcept { ReleasePartial(tls_heap, pg); }

Page* SmallPageOf(void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  Page* pg = PageAt(SlotLookup(p), static_cast<uint32_t>((a >> kPageShift) & (kPagesPerArena - 1)));
  return HeadOf(pg);
}

constinit thread_local Heap* tls_heap [[gnu::tls_model("initial-exec")]] = &g_bootstrap_heap;

// The bootstrap heap: current[] all point at the empty page so the first
// allocation of every thread takes the slow path, which creates its heap.
constinit Heap g_bootstrap_heap;

namespace {
constinit std::atomic<uint64_t> g_next_heap_id{1};  // Heap::id (0: the bootstrap heap)
}  // namespace

void Heap::Init(Tenant* e, ThreadState* t) {
  for (auto& p : current) p = &g_empty_page;
  for (auto& p : partial) p = nullptr;
  for (auto& b : foreign) b = nullptr;
  for (auto& n : foreign_count) n = 0;
  for (auto& n : shared_live) n = 0;
  for (auto& n : shared_takes) n = 0;
  for (auto& m : current_mask) m = 0;
  for (auto& p : large_cache) p = nullptr;
  large_count = 0;
  large_pages = 0;
  grown = 0;
  for (auto& p : empty_seen) p = nullptr;
  allocs = 0;
  spans = spans_at_sweep = 0;
  exec = e;
  thread = t;
  id = g_next_heap_id.fetch_add(1, std::memory_order_relaxed);
  full = nullptr;
  used_delta = 0;
  blocks_delta = 0;
  remote.store(0, std::memory_order_relaxed);
  state.store(HeapState::kIdle, std::memory_order_relaxed);
  exec_next = exec_prev = thread_next = claim_next = nullptr;
  abandoned.store(false, std::memory_order_relaxed);
  secure = secure::Enabled();
  sec = secure::HeapState{};
  sec.rng = (reinterpret_cast<uintptr_t>(this) * 0x9E3779B97F4A7C15ull) ^ os::NowNs() ^ 1;
}

void Heap::Sync() {
  for (size_t w = 0; w < std::size(current_mask); ++w) {
    for (uint64_t bits = current_mask[w]; bits != 0; bits &= bits - 1) {
      SyncPage(this, current[w * 64 + static_cast<size_t>(__builtin_ctzll(bits))]);
    }
  }
  FlushDeltas();
}

void Heap::FlushDeltas() {
  if (used_delta != 0 || blocks_delta != 0 || allocs != 0) {
    exec->account.AddUsed(used_delta, blocks_delta, allocs);
    used_delta = blocks_delta = 0;
    allocs = 0;
  }
}

}  // namespace execmem
