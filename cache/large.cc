#include "cache/large.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "cache/check.h"
#include "cache/heap-inl.h"
#include "cache/heap.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {
namespace {

// ---- freed huge blocks (a free check: check.h) ----
struct HugeFreed {
  uintptr_t user;
  size_t usable;
  char name[sizeof(Tenant::name)];
};
SpinLock g_huge_lock;
HugeFreed g_huge_freed[kHugeFreedRing] ABSL_GUARDED_BY(g_huge_lock);
int g_huge_next ABSL_GUARDED_BY(g_huge_lock) = 0;

void* Fail() {
  errno = ENOMEM;
  return nullptr;
}

void* HugeAlloc(Heap* h, size_t usable, size_t alignment, bool zero) {
  Tenant* e = h->exec;
  // The header's region (kHugeLead), so that the fast free path never reads
  // the block's bytes as a descriptor.
  const size_t align = alignment < kHugeLead ? kHugeLead : alignment;
  const uint64_t estimate = usable + align;
  h->Sync();
  if (!ChargeOrReclaim(e, estimate, usable, h)) return Fail();
  size_t mapped = 0;
  bool zeroed = true;
  void* p = pool::AllocHuge(usable, align, OwnerWord(e), &mapped, &zeroed);
  if (p == nullptr) {
    e->Uncharge(estimate);
    snprintf(LastErrorOf(h), kLastErrorSize,
             "execmem: out of memory: the pool cannot map %zu bytes for executor '%s'", usable,
             e->name);
    e->account.oom_count.fetch_add(1, std::memory_order_relaxed);
    return Fail();
  }
  // Charge what is really mapped: the estimate was an upper bound.
  if (mapped < estimate) e->account.ReduceCharge(estimate - mapped);
  // The header is where the page map says (for alignments of an arena or
  // more, p itself is arena-aligned: masking p would land in the block).
  ArenaOf(SlotLookup(p))->huge_usable = usable;
  e->account.AddUsed(static_cast<int64_t>(usable), 1, 1);
  // A kept mapping holds its last owner's bytes: zeroed when asked, and in
  // secure mode always (a reused span is too: secure_large.cc).
  if ((zero || h->secure) && !zeroed) memset(p, 0, usable);
  return p;
}

// Gives the OS the pages of a large span from byte `from` (the block's end,
// rounded up to an OS page) to byte `to`: a span reused for a shorter block
// than it held (a freed run of the pool's, or of a thread's cache) would keep
// them resident, written by the block before, while the new block lives —
// the 64 KiB page's rounding and the large classes' up to 12.5 %, which a
// fresh span never touches and an mmap'd block (glibc's above 128 KiB) does
// not have. Measured: 0.7-1.0 MiB a Dask worker at groupby's in-use peak
// (docs/python-arenas.md).
void DecommitPastBlock(char* start, size_t from, size_t to) {
  const size_t os_page = os::PageSize();
  from = (from + os_page - 1) & ~(os_page - 1);
  if (to > from) os::Decommit(start + from, to - from);
}

// Span i of h's large cache out of it (the last one takes its place, with
// its age stamp).
Page* TakeCached(Heap* h, int i) {
  Page* head = h->large_cache[i];
  --h->large_count;
  h->large_cache[i] = h->large_cache[h->large_count];
  h->large_stamp[i] = h->large_stamp[h->large_count];
  h->large_pages -= head->span_pages;
  return head;
}

}  // namespace

[[gnu::noinline]] bool FitsUnderMaxSynced(Heap* h, const Tenant* e, int64_t delta) {
  h->Sync();
  return e->account.used.load(std::memory_order_relaxed) + delta <=
         static_cast<int64_t>(e->account.Max());
}

void* LargeAlloc(Heap* h, size_t size, size_t alignment, bool zero, bool headroom) {
  if (size > kMaxRequest) {
    snprintf(LastErrorOf(h), kLastErrorSize,
             "execmem: out of memory: request of %zu bytes is larger than any block execmem can "
             "map (executor '%s')",
             size, h->exec->name);
    return Fail();
  }
  // An empty request still gets a block of its own (a unique pointer).
  const size_t usable =
      size == 0 ? kLargeQuantum : (size + kLargeQuantum - 1) & ~(kLargeQuantum - 1);
  // Spans start page-aligned; a larger alignment needs slack to slide into.
  const size_t slack = alignment > kPageSize ? alignment - kPageSize : 0;
  const size_t room = headroom ? usable / 4 : 0;
  const size_t pages = LargeClassPages(usable + slack + room);
  const size_t span_bytes = pages << kPageShift;
  if (pages > kMaxSpanPages) return HugeAlloc(h, usable, alignment, zero);
  Tenant* e = h->exec;
  if (alignment <= kPageSize && h->large_count > 0) {
    // A span of the same length; a growing block (headroom) takes the
    // shortest cached span that holds it and that a growing block left
    // (Page::grows), and grows in place within it: a buffer built by realloc
    // reuses the span the last such buffer left. A span another block left
    // (a freed buffer of its own length, one of pymalloc's 1 MiB arenas)
    // serves only its length: a block that stops growing early would keep
    // all of its pages, resident, while it lives (measured: 6-20 MiB a Dask
    // worker, docs/python-arenas.md).
    int best = -1;
    for (int i = 0; i < h->large_count; ++i) {
      const Page* cached = h->large_cache[i];
      const uint32_t n = cached->span_pages;
      if (n == pages) {
        best = i;
        break;
      }
      if (headroom && n > pages && cached->grows &&
          (best < 0 || n < h->large_cache[best]->span_pages)) {
        best = i;
      }
    }
    // The used rule still holds exactly for large blocks.
    if (best >= 0 && FitsUnderMax(h, e, static_cast<int64_t>(usable))) {
      Page* head = TakeCached(h, best);
      // The pages past the last block's end are not resident (given back
      // when it was allocated or shrank, or never touched) unless it grew in
      // place; a growing block keeps them, to grow into.
      if (!headroom && (head->grows || head->large_size > usable)) {
        DecommitPastBlock(PageStart(head), usable, size_t{head->span_pages} << kPageShift);
      }
      head->kind = PageKind::kLarge;
      head->large_user = reinterpret_cast<uintptr_t>(PageStart(head));
      head->large_size = usable;
      head->grows = headroom ? 1 : 0;
      h->used_delta += static_cast<int64_t>(usable);
      h->blocks_delta += 1;
      h->allocs += 1;
      void* p = PageStart(head);
      if (zero) memset(p, 0, usable);
      return p;
    }
  }
  h->Sync();
  if (!ChargeOrReclaim(e, span_bytes, usable, h)) return Fail();
  AgeLargeCache(h);
  bool zeroed = false;
  // A growing block asks for free pages after it, to grow in place next time.
  Page* head = AsPage(pool::AllocSpan(static_cast<uint32_t>(pages), &zeroed,
                                      headroom ? static_cast<uint32_t>(pages) : 0));
  if (head == nullptr) {
    e->Uncharge(span_bytes);
    e->account.oom_count.fetch_add(1, std::memory_order_relaxed);
    snprintf(LastErrorOf(h), kLastErrorSize,
             "execmem: out of memory: the pool cannot supply %zu bytes for executor '%s' (pool "
             "capacity reached or the OS refused)",
             span_bytes, e->name);
    return Fail();
  }
  char* start = PageStart(head);
  const uintptr_t user =
      (reinterpret_cast<uintptr_t>(start) + alignment - 1) & ~(uintptr_t{alignment} - 1);
  // The heap grew: its emptied spans of the classes of few blocks go back,
  // after the new span is taken, so that it is not one of them.
  RetireEmptyFewBlocks(h, kNumClasses);
  head->kind = PageKind::kLarge;
  SetFastOwner(head, nullptr);
  head->large_user = user;
  head->large_size = usable;
  head->grows = headroom ? 1 : 0;
  SetExecOf(head, e);
  head->zeroed = zeroed;
  SetOwnerHeap(head, nullptr, std::memory_order_relaxed);
  SetTails(head, 1, static_cast<uint32_t>(pages));
  e->account.AddUsed(static_cast<int64_t>(usable), 1, 1);
  pool::AdviseHugeChunks(head, user - reinterpret_cast<uintptr_t>(start) + usable);
  void* p = reinterpret_cast<void*>(user);
  if (!zeroed && !headroom) {
    DecommitPastBlock(start, user - reinterpret_cast<uintptr_t>(start) + usable, span_bytes);
  }
  if (zero && !zeroed) memset(p, 0, usable);
  return p;
}

void LargeFree(Heap* h, Page* head) {
  Tenant* e = ExecOf(head);
  const uint32_t pages = head->span_pages;
  if (h != &g_bootstrap_heap && h->exec == e && h->large_count < Heap::kLargeCache &&
      h->large_pages + pages <= Heap::kLargeCacheMaxPages) {
    // Marked free, so that a second free of the same pointer is reported.
    head->kind = PageKind::kFree;
    h->used_delta -= static_cast<int64_t>(head->large_size);
    h->blocks_delta -= 1;
    h->large_stamp[h->large_count] = h->grown;
    h->large_cache[h->large_count++] = head;
    h->large_pages += pages;
    return;
  }
  e->account.AddUsed(-static_cast<int64_t>(head->large_size), -1, 0);
  ReleaseLargeSpan(head);
}

void ReleaseLargeSpan(Page* head) {
  Tenant* e = ExecOf(head);
  const uint32_t pages = head->span_pages;
  for (uint32_t i = 1; i < pages; ++i) head[i].kind = PageKind::kFree;
  // The free pages no longer lead to the head: the page holding the block's
  // start names it too, so that a second free is reported as one (check.h).
  const uint32_t user_page = static_cast<uint32_t>(
      (head->large_user - reinterpret_cast<uintptr_t>(PageStart(head))) >> kPageShift);
  if (user_page != 0 && user_page < pages) {
    head[user_page].large_user = head->large_user;
    head[user_page].large_size = head->large_size;
  }
  pool::FreeSpan(head);
  e->Uncharge(uint64_t{pages} << kPageShift);
}

namespace {

// A large block resized in place to `usable` bytes (delta more than before):
// a block that grew marks its span (Page::grows), and the change is reported
// through `own`, the calling thread's heap of the block's executor, with its
// other deltas, or else to the account at once.
void SetLargeUsable(Heap* own, Tenant* e, Page* head, size_t usable, int64_t delta) {
  head->large_size = usable;
  if (delta > 0) head->grows = 1;
  if (own != nullptr) {
    own->used_delta += delta;
  } else {
    e->account.AddUsed(delta, 0, 0);
  }
}

}  // namespace

bool LargeResizeInPlace(Heap* h, Page* head, size_t size) {
  // A shrink to a small size that would leave more than half of the block
  // unused moves to a small block; a growth stays (a block realloc promoted
  // from a small class: see Realloc).
  if (size <= kMaxSmallSize && size <= head->large_size / 2) return false;
  const size_t usable = (size + kLargeQuantum - 1) & ~(kLargeQuantum - 1);
  if (usable == head->large_size) return true;  // a growth by a few bytes at a time
  const uintptr_t start = reinterpret_cast<uintptr_t>(PageStart(head));
  const size_t lead = head->large_user - start;  // alignment slack before the block
  const uint32_t pages = head->span_pages;
  const int64_t delta = static_cast<int64_t>(usable) - static_cast<int64_t>(head->large_size);
  Tenant* e = ExecOf(head);
  // The calling thread's heap of the block's executor reports the change
  // with its other deltas (as LargeAlloc's cached path does): no shared
  // atomic on a resize within the span.
  Heap* own = h != nullptr && h->exec == e && h != &g_bootstrap_heap ? h : nullptr;
  if (delta > 0) {
    const bool fits = own != nullptr ? FitsUnderMax(own, e, delta)
                                     : e->account.used.load(std::memory_order_relaxed) + delta <=
                                           static_cast<int64_t>(e->account.Max());
    if (!fits) return false;  // the moving path spills or fails with the report
  }
  if (lead + usable > (size_t{pages} << kPageShift)) {
    // Grow the span over the free pages after it, with a quarter of headroom
    // so that a block grown step by step rarely comes back here.
    const uint32_t want = LargeClassPages(lead + usable + usable / 4);
    if (want > kMaxSpanPages) return false;
    const uint64_t extra = uint64_t{want - pages} << kPageShift;
    if (h != nullptr) h->Sync();
    if (!ChargeOrReclaim(e, extra, static_cast<uint64_t>(delta), h)) return false;
    if (!pool::GrowSpan(head, want)) {
      e->Uncharge(extra);
      return false;
    }
    e->Unref();  // the span already holds the executor's reference
    SetTails(head, pages, want);
    pool::AdviseHugeChunks(head, lead + usable);
  } else if (delta < 0) {
    // Give back whole pages a shrink leaves unused (keeping a class length).
    const uint32_t keep = LargeClassPages(lead + usable);
    uint32_t now = pages;
    if (keep < pages && keep >= 1) {
      pool::ShrinkSpan(head, keep);
      e->account.ReduceCharge(uint64_t{pages - keep} << kPageShift);
      now = keep;
    }
    // A plain block keeps no resident page past its end (LargeAlloc), as
    // glibc's mremap of an mmap'd block gives them back; a growing one keeps
    // them to grow into.
    if (!head->grows) {
      DecommitPastBlock(reinterpret_cast<char*>(start), lead + usable, size_t{now} << kPageShift);
    }
  }
  SetLargeUsable(own, e, head, usable, delta);
  return true;
}

void* HugeResize(Heap* h, ArenaHeader* hdr, size_t size) {
  Tenant* e = HugeExecOf(hdr);
  const size_t old_usable = hdr->huge_usable;
  const size_t usable = (size + kLargeQuantum - 1) & ~(kLargeQuantum - 1);
  const int64_t used_delta = static_cast<int64_t>(usable) - static_cast<int64_t>(old_usable);
  // Charge an upper bound of the growth first (the mapping grows by at most
  // the usable growth rounded to OS pages, which kLargeQuantum is).
  const uint64_t estimate = used_delta > 0 ? static_cast<uint64_t>(used_delta) : 0;
  if (estimate != 0) {
    if (h != nullptr) h->Sync();
    if (!ChargeOrReclaim(e, estimate, estimate, h)) return Fail();
  }
  int64_t mapped_delta = 0;
  ArenaHeader* nh = pool::ResizeHuge(hdr, usable, &mapped_delta);
  if (nh == nullptr) {
    if (estimate != 0) e->Uncharge(estimate);
    return Fail();
  }
  if (estimate != 0) e->Unref();  // the block already holds the executor's reference
  const int64_t over = static_cast<int64_t>(estimate) - mapped_delta;
  if (over > 0) e->account.ReduceCharge(static_cast<uint64_t>(over));
  nh->huge_usable = usable;
  e->account.AddUsed(used_delta, 0, 0);
  return reinterpret_cast<void*>(nh->huge_user);
}

void HugeFree(ArenaHeader* hdr, bool keep) {
  Tenant* e = HugeExecOf(hdr);
  NoteHugeFreed(hdr->huge_user, hdr->huge_usable, e);
  const size_t mapped = hdr->mapped_bytes;
  e->account.AddUsed(-static_cast<int64_t>(hdr->huge_usable), -1, 0);
  pool::FreeHuge(hdr, keep);
  e->Uncharge(mapped);
}

void AgeLargeCache(Heap* h) {
  const uint32_t now = ++h->grown;
  for (int i = 0; i < h->large_count;) {
    if (now - h->large_stamp[i] < Heap::kCacheAge) {
      ++i;
      continue;
    }
    ReleaseLargeSpan(TakeCached(h, i));
  }
}

void Heap::ReleaseLargeCache() {
  while (large_count > 0) ReleaseLargeSpan(large_cache[--large_count]);
  large_pages = 0;
}

// ---- freed huge blocks ----

void NoteHugeFreed(uintptr_t user, size_t usable, const Tenant* e) {
  SpinLockHolder hold(g_huge_lock);
  HugeFreed& slot = g_huge_freed[g_huge_next];
  g_huge_next = (g_huge_next + 1) % kHugeFreedRing;
  slot.user = user;
  slot.usable = usable;
  snprintf(slot.name, sizeof slot.name, "%s", e != nullptr ? e->name : "");
}

size_t HugeFreedSize(uintptr_t p, char* name, size_t name_cap) {
  SpinLockHolder hold(g_huge_lock);
  for (const HugeFreed& f : g_huge_freed) {
    if (f.user == p && p != 0) {
      snprintf(name, name_cap, "%s", f.name);
      return f.usable;
    }
  }
  return 0;
}

void LockChecksForFork() ABSL_NO_THREAD_SAFETY_ANALYSIS { g_huge_lock.Lock(); }

void UnlockChecksAfterFork(bool child) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (child) {
    g_huge_lock.ResetAfterFork();
  } else {
    g_huge_lock.Unlock();
  }
}

}  // namespace execmem
