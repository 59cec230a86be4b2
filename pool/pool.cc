// The page pool: arena growth, spans, huge blocks, the capacity and the
// counters. See pool.h for the contract and arena.h for the lock-free
// protocol; the arena table, the byte counters and decommitting are in
// arena.cc, the cache bound, decay and the background purger in purge.cc.
#include "pool/pool.h"

#include <algorithm>

#include "platform/os.h"
#include "pool/arena.h"
#include "pool/pool_internal.h"

namespace execmem {

std::atomic<uintptr_t> g_slots[kSlots];

namespace pool {

std::atomic<uint64_t> g_capacity{0};  // 0: not yet read from cgroup / machine

namespace {

SpinLock g_grow_lock;  // serialises only the creation of a new arena

// The run freed last: (arena id + 1) << 32 | start << 16 | pages; 0: none.
// Tried first, so that the most recently freed pages (warm in the CPU's
// caches, not only committed) are reused first, as a LIFO would; a hint
// only: the claim decides.
std::atomic<uint64_t> g_recent{0};

uint64_t PackRecent(uint32_t id, uint32_t start, uint32_t n) {
  return (uint64_t{id + 1} << 32) | (uint64_t{start} << 16) | n;
}

PoolPage* TakeRecent(uint32_t pages) {
  const uint64_t r = g_recent.load(std::memory_order_relaxed);
  if (r == 0) return nullptr;
  // Only for a request of its length: splitting it would cut a run that a
  // longer request may need.
  const uint32_t n = static_cast<uint32_t>(r & 0xffff);
  if (n != pages) return nullptr;
  const uint32_t id = static_cast<uint32_t>(r >> 32) - 1;
  const uint32_t start = static_cast<uint32_t>(r >> 16) & 0xffff;
  const uintptr_t base = g_arenas[id].load(std::memory_order_acquire);
  ArenaMeta* m = MetaOfArena(base);
  // Only while all of it is still committed (a purge may have taken it).
  for (uint32_t w = start / 64; w <= (start + pages - 1) / 64; ++w) {
    const uint64_t mask = RunMask(start, pages, w);
    if ((m->dirty[w].load(std::memory_order_relaxed) & mask) != mask) return nullptr;
  }
  if (!ClaimRun(m, start, pages)) return nullptr;
  uint64_t expected = r;
  g_recent.compare_exchange_strong(expected, 0, std::memory_order_relaxed);
  return PoolPageAt(base, start);
}

// Adds `bytes` to g_held unless that passes the capacity.
bool ChargeHeld(uint64_t bytes) {
  if (bytes == 0) return true;
  const uint64_t cap = Capacity();
  uint64_t held = g_held.load(std::memory_order_relaxed);
  do {
    if (held + bytes > cap) return false;
  } while (!g_held.compare_exchange_weak(held, held + bytes, std::memory_order_relaxed));
  return true;
}

// ChargeHeld, after giving the whole cache back to the OS if it must.
bool ChargeHeldOrPurge(uint64_t bytes) {
  if (ChargeHeld(bytes)) return true;
  Purge(true);
  return ChargeHeld(bytes);
}

// Commits pages [start, start + n) just claimed: takes their dirty bits (out of
// the cache) and charges the fresh ones to g_held. Returns the number of dirty
// pages, or -1 when the capacity refused the fresh ones; the run is then
// released as it was.
// `masks` (kWords words, when given) receives the run's committed pages.
int64_t CommitClaimed(ArenaMeta* m, uint32_t start, uint32_t n, uint64_t* masks = nullptr) {
  uint64_t local[kWords];
  uint64_t* dirty_masks = masks != nullptr ? masks : local;
  const uint32_t dirty = TakeDirty(m, start, n, dirty_masks);
  g_cached.fetch_sub(uint64_t{dirty} << kPageShift, std::memory_order_relaxed);
  if (ChargeHeldOrPurge(uint64_t{n - dirty} << kPageShift)) return dirty;
  for (uint32_t w = start / 64; w <= (start + n - 1) / 64; ++w) {
    if (dirty_masks[w] != 0) m->dirty[w].fetch_or(dirty_masks[w], std::memory_order_relaxed);
  }
  m->dirty_pages.fetch_add(dirty, std::memory_order_relaxed);
  g_cached.fetch_add(uint64_t{dirty} << kPageShift, std::memory_order_relaxed);
  ReleaseRun(m, start, n);
  return -1;
}

// Points the page map's slots of [base, base + total) at value (an arena's
// or huge block's base, or 0).
void SetSlots(uintptr_t base, size_t total, uintptr_t value) {
  for (uintptr_t s = base; s < base + total; s += kSlotSize) {
    g_slots[s >> kSlotShift].store(value, std::memory_order_release);
  }
}

// Maps and publishes a new arena unless another thread did since `seen`
// arenas existed. False: the OS refused or the arena table is full.
bool Grow(uint32_t seen) {
  SpinLockHolder hold(g_grow_lock);
  const uint32_t id = g_arena_count.load(std::memory_order_relaxed);
  if (id != seen) return true;  // another thread grew: search again
  if (id >= kMaxArenas) return false;
  void* mem = os::MapAligned(kArenaSize, kArenaSize);
  if (mem == nullptr) return false;
  const uintptr_t base = reinterpret_cast<uintptr_t>(mem);
  ArenaHeader* hdr = ArenaOf(base);
  hdr->id = id;
  hdr->huge = 0;
  hdr->mapped_bytes = kArenaSize;
  ArenaMeta* m = MetaOfArena(base);  // zero-filled by the OS: nothing dirty
  for (uint32_t w = 0; w < kWords; ++w) {
    m->free[w].store(RunMask(kMetaPages, kArenaFreePages, w), std::memory_order_relaxed);
  }
  m->free_pages.store(kArenaFreePages, std::memory_order_relaxed);
  g_arenas[id].store(base, std::memory_order_release);
  SetSlots(base, kArenaSize, base);
  g_mapped.fetch_add(kArenaSize, std::memory_order_relaxed);
  g_arena_count.store(id + 1, std::memory_order_release);
  return true;
}

// Claims `pages` pages in some arena, lowest arena and address first: from
// runs whose pages are all dirty when `dirty_only`, else from any free run.
// With `room`, only where that many free pages follow. Returns the head or nullptr.
PoolPage* Take(uint32_t pages, uint32_t room, bool dirty_only) {
  const uint32_t want = pages + room;
  const uint32_t count = g_arena_count.load(std::memory_order_acquire);
  for (uint32_t id = 0; id < count; ++id) {
    const uintptr_t base = g_arenas[id].load(std::memory_order_acquire);
    ArenaMeta* m = MetaOfArena(base);
    const uint32_t avail = dirty_only ? m->dirty_pages.load(std::memory_order_relaxed)
                                      : m->free_pages.load(std::memory_order_relaxed);
    if (avail < want) continue;
    // A few attempts per arena: a failed claim means another thread took
    // part of the run; look again from there. Committed pages are searched
    // from the arena's dirty_scan mark (arena.h).
    const uint64_t scan = dirty_only ? m->dirty_scan.load(std::memory_order_acquire) : 0;
    uint32_t from = static_cast<uint32_t>(scan) * 64;
    for (int attempt = 0; attempt < 8; ++attempt) {
      auto word = [m, dirty_only](uint32_t w) {
        uint64_t x = m->free[w].load(std::memory_order_relaxed);
        if (dirty_only && x != 0) x &= m->dirty[w].load(std::memory_order_relaxed);
        return x;
      };
      uint32_t first_set = kWords;
      const int start = FindRunIn(word, want, from, &first_set);
      if (attempt == 0 && dirty_only) RaiseDirtyScan(m, scan, first_set);
      if (start < 0) break;
      if (ClaimRun(m, static_cast<uint32_t>(start), pages)) {
        return PoolPageAt(base, static_cast<uint32_t>(start));
      }
      from = static_cast<uint32_t>(start);
    }
  }
  return nullptr;
}

// Where a large request looks past first fit: from this many pages (1 MiB), a
// fault per 4 KiB of fresh memory costs far more than a look at every arena's
// bitmaps (64 words each).
constexpr uint32_t kMostDirtyMinPages = 16;

// The best place for `pages` pages among the free runs of one arena's snapshot:
// the window holding the most committed pages (each one a page fault saved).
// Among windows committed throughout, the one in the shortest committed
// segment (a maximal run of free committed pages): best fit on what is
// committed, as tcmalloc's page heap fits a request to its shortest free
// span that is still backed, so that a long segment stays whole for a long
// request. The request goes at the segment's end that borders a live block
// (else its start), so that the rest of the free run stays one piece. Among
// windows that must take fresh pages too, ties go to the shorter free run.
// Then the lower address. Returns false when no free run is long enough.
// (Best fit on the free run alone, when a fully committed window existed,
// carved the long committed segments of short free runs: at scale 10 of
// execmem-wl-malloclarge 5 % more fresh pages, docs/large-blocks.md.)
// (struct Placement: pool_internal.h.)


}  // namespace

bool BestWindow(const uint64_t* free, const uint64_t* dirty, uint32_t pages, Placement* out) {
  bool found = false;
  auto offer = [out, &found](const Placement& p) {
    if (!found || p.dirty > out->dirty || (p.dirty == out->dirty && p.rank < out->rank)) {
      *out = p;
      found = true;
    }
  };
  for (uint32_t s = NextSet(free, 0, kPagesPerArena), e = 0; s < kPagesPerArena;
       s = NextSet(free, e, kPagesPerArena)) {
    e = NextClear(free, s, kPagesPerArena);  // the maximal free run [s, e)
    if (e - s < pages) continue;
    // Its committed segments [a, b) (dirty is within free). A window holding
    // the most committed pages can be moved, without losing one, until it
    // starts where a segment starts (or ends at the run's end): moved right
    // while it starts on a purged page (it loses none), left while it starts
    // within a segment (it gains the page before for at most the last one).
    // Only those windows are counted.
    bool whole = false;
    Placement part{s, 0, e - s};
    for (uint32_t a = NextSet(dirty, s, e), b = 0; a < e; a = NextSet(dirty, b, e)) {
      b = NextClear(dirty, a, e);
      if (b - a >= pages) {
        whole = true;
        offer(Placement{a != s && b == e ? b - pages : a, pages, b - a});
      } else if (!whole) {
        const uint32_t w = std::min(a, e - pages);
        const uint32_t n = CountSet(dirty, w, w + pages);
        if (n > part.dirty) part.start = w, part.dirty = n;
      }
    }
    if (!whole) offer(part);
  }
  return found;
}

namespace {

// Claims `pages` pages where the most of them are still committed, over every
// arena (see BestWindow); nullptr when no free run holds a committed page.
PoolPage* TakeMostDirty(uint32_t pages) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    const uint32_t count = g_arena_count.load(std::memory_order_acquire);
    uint32_t best_id = 0;
    Placement best;
    bool found = false;
    for (uint32_t id = 0; id < count; ++id) {
      ArenaMeta* m = MetaOfArena(g_arenas[id].load(std::memory_order_acquire));
      if (m->free_pages.load(std::memory_order_relaxed) < pages ||
          m->dirty_pages.load(std::memory_order_relaxed) == 0) {
        continue;
      }
      uint64_t free[kWords], dirty[kWords];
      for (uint32_t w = 0; w < kWords; ++w) {
        free[w] = m->free[w].load(std::memory_order_relaxed);
        dirty[w] = m->dirty[w].load(std::memory_order_relaxed) & free[w];
      }
      Placement p;
      if (!BestWindow(free, dirty, pages, &p) || p.dirty == 0) continue;
      if (!found || p.dirty > best.dirty || (p.dirty == best.dirty && p.rank < best.rank)) {
        best = p, best_id = id, found = true;
      }
    }
    if (!found) return nullptr;
    const uintptr_t base = g_arenas[best_id].load(std::memory_order_acquire);
    if (ClaimRun(MetaOfArena(base), best.start, pages)) return PoolPageAt(base, best.start);
    // Lost a race for the run: look again.
  }
  return nullptr;
}

// Puts claimed pages [start, start + n) of an arena back: cached (dirty) when
// the pool keeps a cache, else decommitted at once.
void ReturnPages(uintptr_t base, uint32_t start, uint32_t n) {
  ArenaMeta* m = MetaOfArena(base);
  // Without a cache the pages go back at once; if the OS refuses, they are
  // cached instead (committed, and not zero).
  if (g_decay_ms.load(std::memory_order_relaxed) == 0 && DecommitPages(base, start, n)) {
    ReleaseRun(m, start, n);
    return;
  }
  NoteInUse(uint64_t{n} << kPageShift);
  MarkDirty(m, start, n, Clock32());
  g_recent.store(PackRecent(ArenaOf(base)->id, start, n), std::memory_order_relaxed);
  const uint64_t bytes = uint64_t{n} << kPageShift;
  const uint64_t cached = g_cached.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  ReleaseRun(m, start, n);
  if (!g_purger_wanted.load(std::memory_order_relaxed) && !PurgerTried()) {
    g_purger_wanted.store(true, std::memory_order_relaxed);
  }
  const Bounds b = CacheBounds();
  if (cached > b.bound) PurgeOldest(b.keep, /*decay=*/false);  // the oldest first
}

}  // namespace

bool EnsureFirstArena() {
  return g_arena_count.load(std::memory_order_acquire) != 0 || Grow(0);
}

namespace {

// What of the cache stays when a request of `pages` took fresh pages: the
// fresh pages grow the committed heap (when they are touched) and the cache
// bound shrinks as in-use grows, so the purge to the bound runs now, before
// they are touched, not at the next free (else the peak is in use + the
// whole bound + this span).
uint64_t KeepAfterFreshPages(uint32_t pages, uint64_t cached) {
  const Bounds b = CacheBounds();
  uint64_t keep = cached > b.bound ? b.keep : cached;
  // And past the committed heap's high-water mark, the cached pages that
  // could not serve a request of up to 2 MiB (else it would have taken
  // them) go back for the fresh ones: the heap does not grow while it holds
  // free pages. Not for longer blocks: their freed runs, kept, serve the
  // next ones of other lengths with fewer fresh pages (TakeMostDirty;
  // measured on execmem-wl-largechurn: 54-66 k faults against 33 k when
  // they went back too, docs/python-arenas.md).
  if (pages <= kHighWaterMaxPages) keep = std::min(keep, KeepPastHighWater(cached));
  return keep;
}

// The pages the purge would give back for a large request's fresh pages move
// into its window instead (pool_internal.h, MoveOldestInto). Returns the pages
// moved, or -1 when the OS left some of the window unmapped: those stay
// claimed for good, the rest of the window goes back (committed pages cached,
// the others uncharged) and the caller looks again.
int64_t FillFromCache(uintptr_t base, uint32_t start, uint32_t pages, uint32_t dirty,
                      uint64_t* committed) {
  const uint64_t cached = g_cached.load(std::memory_order_relaxed);
  const uint64_t keep = KeepAfterFreshPages(pages, cached);
  if (keep >= cached) return 0;
  const uint32_t want =
      static_cast<uint32_t>(std::min<uint64_t>(pages - dirty, (cached - keep) >> kPageShift));
  const MoveOutcome moved = MoveOldestInto(base, start, pages, committed, want);
  if (moved.lost_pages == 0) return moved.moved;
  ArenaMeta* m = MetaOfArena(base);
  const uint32_t lost_end = moved.lost_start + moved.lost_pages;
  uint64_t uncharged = moved.lost_pages;
  for (uint32_t i = start; i < start + pages; ++i) {
    if (i >= moved.lost_start && i < lost_end) continue;
    if ((committed[i / 64] >> (i % 64) & 1) == 0) {
      ++uncharged;
      continue;
    }
    MarkDirty(m, i, 1, Clock32());
    g_cached.fetch_add(kPageSize, std::memory_order_relaxed);
  }
  g_held.fetch_sub(uncharged << kPageShift, std::memory_order_relaxed);
  if (moved.lost_start > start) ReleaseRun(m, start, moved.lost_start - start);
  if (lost_end < start + pages) ReleaseRun(m, lost_end, start + pages - lost_end);
  return -1;
}

}  // namespace

PoolPage* AllocSpan(uint32_t pages, bool* zeroed, uint32_t room) {
  if (pages == 0 || pages > kMaxSpanPages) return nullptr;
  if (room > kMaxSpanPages - pages) room = kMaxSpanPages - pages;
  PoolPage* head = nullptr;
  int64_t dirty = 0;
  // Committed pages first (no fault), with the room asked for if possible.
  if (room == 0) head = TakeRecent(pages);
  for (;;) {
    while (head == nullptr) {
      if (room != 0) head = Take(pages, room, /*dirty_only=*/true);
      if (head == nullptr && room != 0) head = Take(pages, room, /*dirty_only=*/false);
      if (pages >= kMostDirtyMinPages) {
        // A large request: where the most pages are committed, even if the run
        // must take fresh pages too (a freed block of another length).
        if (head == nullptr) head = TakeMostDirty(pages);
      } else if (head == nullptr) {
        head = Take(pages, 0, /*dirty_only=*/true);
      }
      if (head == nullptr) head = Take(pages, 0, /*dirty_only=*/false);
      if (head != nullptr) break;
      if (!Grow(g_arena_count.load(std::memory_order_acquire))) return nullptr;
    }
    const uintptr_t base = ArenaBaseOfPage(head);
    uint64_t committed[kWords];
    dirty = CommitClaimed(MetaOfArena(base), PageIndexOf(head), pages, committed);
    if (dirty < 0) return nullptr;
    if (static_cast<uint32_t>(dirty) == pages || pages < kMostDirtyMinPages || !PageMovesOn()) break;
    const int64_t moved =
        FillFromCache(base, PageIndexOf(head), pages, static_cast<uint32_t>(dirty), committed);
    if (moved >= 0) {
      dirty += moved;
      break;
    }
    head = nullptr;
  }
  if (static_cast<uint32_t>(dirty) < pages) {
    const uint64_t cached = g_cached.load(std::memory_order_relaxed);
    const uint64_t keep = KeepAfterFreshPages(pages, cached);
    // Kept huge mappings go back first, for a span of any length: they are
    // what the committed heap holds for the program's next huge block, and
    // this phase needs fresh pages instead.
    GiveBackHugePastHighWater();
    if (keep < cached) PurgeOldest(keep, /*decay=*/false);
    NoteHeldHigh();
  }
  MaybePurge();
  head->span_pages = static_cast<uint16_t>(pages);
  head->kind = PageKind::kFree;
  *zeroed = dirty == 0;
  return head;
}

void FreeSpan(PoolPage* head) {
  head->kind = PageKind::kFree;
  ReturnPages(ArenaBaseOfPage(head), PageIndexOf(head), head->span_pages);
}

bool GrowSpan(PoolPage* head, uint32_t new_pages) {
  const uint32_t old_pages = head->span_pages;
  const uint32_t start = PageIndexOf(head);
  if (new_pages <= old_pages) return new_pages == old_pages;
  // Not past the longest span (1021 pages), though a 256 MiB arena has room
  // for more: longer blocks are huge blocks (cache/large.cc checks it too).
  if (new_pages > kMaxSpanPages || start + new_pages > kPagesPerArena) return false;
  const uintptr_t base = ArenaBaseOfPage(head);
  ArenaMeta* m = MetaOfArena(base);
  const uint32_t extra = new_pages - old_pages;
  if (!ClaimRun(m, start + old_pages, extra)) return false;
  const int64_t dirty = CommitClaimed(m, start + old_pages, extra);
  if (dirty < 0) return false;
  // Fresh pages for a block growing in place (a realloc chain's spans): kept
  // huge mappings give back as many past the high-water mark, as in AllocSpan.
  if (static_cast<uint32_t>(dirty) < extra) GiveBackHugePastHighWater();
  head->span_pages = static_cast<uint16_t>(new_pages);
  return true;
}

void ShrinkSpan(PoolPage* head, uint32_t new_pages) {
  const uint32_t old_pages = head->span_pages;
  if (new_pages == 0 || new_pages >= old_pages) return;
  for (uint32_t i = new_pages; i < old_pages; ++i) DescriptorAfter(head, i)->kind = PageKind::kFree;
  head->span_pages = static_cast<uint16_t>(new_pages);
  ReturnPages(ArenaBaseOfPage(head), PageIndexOf(head) + new_pages, old_pages - new_pages);
}

// ---- huge blocks ----------------------------------------------------------

namespace {

// A huge block's fresh pages, which no cached page can serve: past the
// committed heap's high-water mark, as many cached pages go back, so that the
// heap does not grow while it holds pages of the wrong kind (as AllocSpan does
// for requests of up to 2 MiB). Else a cache kept for the recent peak of
// large spans stays beside the huge blocks of the program's next phase
// (execmem-wl-largebuf: its churn, then its realloc chain, 512 MiB of peak
// RSS against 377; docs/large-blocks.md, 2026-12-07).
void GiveBackPastHighWater() {
  GiveBackHugePastHighWater();
  const uint64_t cached = g_cached.load(std::memory_order_relaxed);
  const uint64_t keep = KeepPastHighWater(cached);
  if (keep < cached) PurgeOldest(keep, /*decay=*/false);
  NoteHeldHigh();
}

// Where a huge block's mapping must start: a multiple of the arena size (the
// page map's slots) and of the block's own alignment, which is its offset.
size_t HugeMapAlignment(size_t offset) { return std::max(kArenaSize, offset); }

// Puts a huge block's header and page-map slots over [base, base + total).
void* PublishHuge(uintptr_t base, size_t total, size_t offset, uintptr_t owner) {
  ArenaHeader* hdr = ArenaOf(base);
  *hdr = ArenaHeader{};  // a kept mapping's header holds the last block's
  hdr->huge = 1;
  hdr->mapped_bytes = total;
  hdr->huge_user = base + offset;
  hdr->huge_usable = total - offset;
  hdr->huge_owner = owner;
  SetSlots(base, total, base);
  return reinterpret_cast<void*>(hdr->huge_user);
}

}  // namespace

void* AllocHuge(size_t size, size_t alignment, uintptr_t owner, size_t* mapped, bool* zeroed) {
  const size_t os_page = os::PageSize();
  // The header's region, or the alignment (a power of two): the user pointer
  // is base + offset, so base must be aligned to max(arena size, offset).
  const size_t offset = std::max(alignment, os_page);
  if (size > (size_t{1} << kAddressBits) || offset > (size_t{1} << kAddressBits)) return nullptr;
  const size_t total = (offset + size + os_page - 1) & ~(os_page - 1);
  *mapped = total;
  // A freed huge block's mapping kept whole serves it first: committed
  // already (in g_held), its pages resident, no fault and no zeroing.
  if (const uintptr_t kept = TakeHugeMapping(total, HugeMapAlignment(offset)); kept != 0) {
    if (zeroed != nullptr) *zeroed = false;
    return PublishHuge(kept, total, offset, owner);
  }
  if (zeroed != nullptr) *zeroed = true;
  if (!ChargeHeldOrPurge(total)) return nullptr;
  void* mem = os::MapAligned(total, HugeMapAlignment(offset));
  if (mem == nullptr) {
    g_held.fetch_sub(total, std::memory_order_relaxed);
    return nullptr;
  }
  const uintptr_t base = reinterpret_cast<uintptr_t>(mem);
  // Huge pages only when asked for (SetHugePages), as for arenas' chunks: on
  // this project's VM a fresh 2 MiB page whose memory the host took back
  // costs 10-20 times its 512 small pages, so the advice made largebuf and
  // reallocchain's time bimodal (0.28-0.98 s at scale 2); a freed mapping is
  // now kept and reused (KeepHugeMapping), so later realloc chains fault
  // nothing either way (docs/large-blocks.md, "Tenth step").
  if (HugePagesOn()) os::AdviseHugePages(mem, total);
  void* user = PublishHuge(base, total, offset, owner);
  g_mapped.fetch_add(total, std::memory_order_relaxed);
  GiveBackPastHighWater();
  return user;
}

ArenaHeader* ResizeHuge(ArenaHeader* hdr, size_t usable, int64_t* delta) {
  const size_t os_page = os::PageSize();
  const uintptr_t base = reinterpret_cast<uintptr_t>(hdr);
  const size_t offset = hdr->huge_user - base;
  const size_t old_total = hdr->mapped_bytes;
  if (usable > (size_t{1} << kAddressBits)) return nullptr;
  const size_t total = (offset + usable + os_page - 1) & ~(os_page - 1);
  *delta = static_cast<int64_t>(total) - static_cast<int64_t>(old_total);
  if (total == old_total) return hdr;
  if (total > old_total && TakeHugeMappingAt(base, base + old_total, total - old_total)) {
    // Grown over a kept mapping just after it (its own freed tail, or the
    // rest of the mapping it was taken from): the same mapping, no call.
    SetSlots(base, total, base);
    hdr->mapped_bytes = total;
    hdr->huge_usable = total - offset;
    return hdr;
  }
  if (total > old_total && !ChargeHeldOrPurge(total - old_total)) return nullptr;
  uintptr_t new_base = base;
  DropHugeRests(base);  // it shrinks or grows by mremap: no rest is after it then
  if (total < old_total) {
    // A shrink splits the mapping, which the OS can refuse (ENOMEM at its
    // limit of mappings): the block then keeps its mapping, unchanged.
    if (!os::RemapInPlace(hdr, old_total, total)) {
      *delta = 0;
      return hdr;
    }
    SetSlots(base, old_total, 0);
  } else if (!os::RemapInPlace(hdr, old_total, total)) {
    // The address space after it is taken: move the pages (no copy). The
    // block is invisible to the page map while it moves; only its owner,
    // which is resizing it, may touch it meanwhile.
    SetSlots(base, old_total, 0);
    void* moved = os::RemapAligned(hdr, old_total, total, HugeMapAlignment(offset));
    if (moved == nullptr) {
      SetSlots(base, old_total, base);
      g_held.fetch_sub(total - old_total, std::memory_order_relaxed);
      return nullptr;
    }
    new_base = reinterpret_cast<uintptr_t>(moved);
  }
  ArenaHeader* nh = ArenaOf(new_base);
  nh->mapped_bytes = total;
  nh->huge_user = new_base + offset;
  nh->huge_usable = total - offset;
  SetSlots(new_base, total, new_base);
  if (total < old_total) {
    g_held.fetch_sub(old_total - total, std::memory_order_relaxed);
    g_mapped.fetch_sub(old_total - total, std::memory_order_relaxed);
    g_returned.fetch_add(old_total - total, std::memory_order_relaxed);
  } else {
    g_mapped.fetch_add(total - old_total, std::memory_order_relaxed);
    GiveBackPastHighWater();
  }
  return nh;
}

void FreeHuge(ArenaHeader* hdr, bool keep) {
  const uintptr_t base = reinterpret_cast<uintptr_t>(hdr);
  const size_t total = hdr->mapped_bytes;
  SetSlots(base, total, 0);
  if (keep && KeepHugeMapping(base, total)) return;
  DropHugeRests(base);
  g_held.fetch_sub(total, std::memory_order_relaxed);
  g_mapped.fetch_sub(total, std::memory_order_relaxed);
  g_returned.fetch_add(total, std::memory_order_relaxed);
  os::Unmap(hdr, total);
}

// ---- capacity ------------------------------------------------------------------

uint64_t DefaultCapacity() {
  const uint64_t phys = os::PhysicalMemory();
  const uint64_t cg = os::CgroupMemoryLimit();
  return cg != 0 ? std::min(cg, phys) : phys;
}

uint64_t Capacity() {
  uint64_t cap = g_capacity.load(std::memory_order_relaxed);
  if (cap == 0) {
    uint64_t expected = 0;
    cap = DefaultCapacity();
    if (!g_capacity.compare_exchange_strong(expected, cap, std::memory_order_relaxed))
      cap = expected;
  }
  return cap;
}

bool SetCapacity(uint64_t bytes) {
  if (bytes == 0) bytes = DefaultCapacity();
  g_capacity.store(bytes, std::memory_order_relaxed);
  return true;
}

PoolCounters Counters() {
  PoolCounters c;
  c.capacity = Capacity();
  c.held = g_held.load(std::memory_order_relaxed);
  c.cached = g_cached.load(std::memory_order_relaxed) + g_huge_cached.load(std::memory_order_relaxed);
  c.returned_to_os = g_returned.load(std::memory_order_relaxed);
  c.arenas = g_arena_count.load(std::memory_order_relaxed);
  c.mapped = g_mapped.load(std::memory_order_relaxed);
  return c;
}

void LockForFork() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  LockPurgeForFork();
  g_grow_lock.Lock();
}
void UnlockAfterFork(bool child) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (child) {
    g_grow_lock.ResetAfterFork();
  } else {
    g_grow_lock.Unlock();
  }
  UnlockPurgeAfterFork(child);
}

bool IsValid() {
  uint64_t dirty_total = 0;
  const uint32_t count = g_arena_count.load(std::memory_order_acquire);
  for (uint32_t id = 0; id < count; ++id) {
    const uintptr_t base = g_arenas[id].load(std::memory_order_acquire);
    if (base == 0 || ArenaOf(base)->id != id) return false;
    const ArenaMeta* m = MetaOfArena(base);
    uint32_t nfree = 0, ndirty = 0;
    for (uint32_t w = 0; w < kWords; ++w) {
      const uint64_t f = m->free[w].load(std::memory_order_relaxed);
      const uint64_t d = m->dirty[w].load(std::memory_order_relaxed);
      if ((d & ~f) != 0) return false;                         // dirty within free
      if ((f & RunMask(0, kMetaPages, w)) != 0) return false;  // metadata never free
      nfree += static_cast<uint32_t>(__builtin_popcountll(f));
      ndirty += static_cast<uint32_t>(__builtin_popcountll(d));
      for (uint64_t bits = f; bits != 0; bits &= bits - 1) {
        const uint32_t i = w * 64 + static_cast<uint32_t>(__builtin_ctzll(bits));
        if (PoolPageAt(base, i)->kind != PageKind::kFree) return false;
      }
    }
    if (nfree != m->free_pages.load(std::memory_order_relaxed)) return false;
    if (ndirty != m->dirty_pages.load(std::memory_order_relaxed)) return false;
    dirty_total += uint64_t{ndirty} << kPageShift;
  }
  return dirty_total == g_cached.load(std::memory_order_relaxed);
}

}  // namespace pool
}  // namespace execmem
