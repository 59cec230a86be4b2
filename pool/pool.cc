// The arena pool: see pool.h for the contract.
#include "pool/pool.h"

#include <algorithm>

#include "platform/os.h"
#include "pool/spin_lock.h"
#include "pool/span_stack.h"

namespace execmem {

std::atomic<uintptr_t> g_slots[kSlots];

namespace {

constexpr uint32_t kMaxArenas = 1u << 16;  // 4 TiB of arenas
constexpr uint64_t kDefaultDecayMs = 5000;

std::atomic<uintptr_t> g_arenas[kMaxArenas];
std::atomic<uint32_t> g_arena_count{0};
std::atomic<uint32_t> g_current_arena{0};  // id + 1; 0: none yet
SpinLock g_grow_lock;  // serialises only the creation of a new arena

// Invariant per length n: a span is on at most one of g_hot[n], g_cold[n],
// and spans on g_hot[n] are committed (counted in g_held and g_cached).
SpanStack g_hot[kMaxSpanPages + 1];
SpanStack g_cold[kMaxSpanPages + 1];

std::atomic<uint64_t> g_capacity{0};  // 0: not yet read from cgroup / machine
std::atomic<uint64_t> g_ledger{0};    // reserved + granted, <= capacity
std::atomic<uint64_t> g_reserved{0};
std::atomic<uint64_t> g_granted{0};
std::atomic<uint64_t> g_held{0};      // committed bytes of spans and huge blocks
std::atomic<uint64_t> g_cached{0};    // of g_held: hot spans in the pool
std::atomic<uint64_t> g_returned{0};  // bytes decommitted, all time
std::atomic<uint64_t> g_mapped{0};
std::atomic<uint64_t> g_decay_ms{kDefaultDecayMs};
std::atomic<uint64_t> g_last_purge_ms{0};

}  // namespace

uint64_t pool::DefaultCapacity() {
  const uint64_t phys = os::PhysicalMemory();
  const uint64_t cg = os::CgroupMemoryLimit();
  return cg != 0 ? std::min(cg, phys) : phys;
}

namespace {

// Adds `bytes` to g_held unless that passes the capacity.
bool ChargeHeld(uint64_t bytes) {
  const uint64_t cap = pool::Capacity();
  uint64_t held = g_held.load(std::memory_order_relaxed);
  do {
    if (held + bytes > cap) return false;
  } while (!g_held.compare_exchange_weak(held, held + bytes, std::memory_order_relaxed));
  return true;
}

void InitSpanHead(Page* p, uint32_t pages) {
  p->span_pages = static_cast<uint16_t>(pages);
  p->kind = PageKind::kFree;
}

// Carves `pages` never-used pages from the current arena, growing the pool by
// a new arena when it is exhausted. Lock-free except for the arena creation.
Page* Carve(uint32_t pages) {
  for (;;) {
    const uint32_t cur = g_current_arena.load(std::memory_order_acquire);
    if (cur != 0) {
      const uintptr_t base = g_arenas[cur - 1].load(std::memory_order_acquire);
      ArenaHeader* hdr = ArenaOf(base);
      uint32_t b = hdr->bump.load(std::memory_order_relaxed);
      while (b + pages <= kPagesPerArena) {
        if (hdr->bump.compare_exchange_weak(b, b + pages, std::memory_order_relaxed)) {
          Page* p = PageAt(base, b);
          InitSpanHead(p, pages);
          return p;
        }
      }
      // Too little left: give the remainder to the cold stack of its length.
      if (b < kPagesPerArena &&
          hdr->bump.compare_exchange_strong(b, kPagesPerArena, std::memory_order_relaxed)) {
        Page* rest = PageAt(base, b);
        InitSpanHead(rest, kPagesPerArena - b);
        g_cold[kPagesPerArena - b].Push(rest);
      }
    }
    SpinLockHolder hold(g_grow_lock);
    if (g_current_arena.load(std::memory_order_acquire) != cur) continue;  // another thread grew
    const uint32_t id = g_arena_count.load(std::memory_order_relaxed);
    if (id >= kMaxArenas) return nullptr;
    void* mem = os::MapAligned(kArenaSize, kArenaSize);
    if (mem == nullptr) return nullptr;
    const uintptr_t base = reinterpret_cast<uintptr_t>(mem);
    ArenaHeader* hdr = ArenaOf(base);
    hdr->id = id;
    hdr->huge = 0;
    hdr->mapped_bytes = kArenaSize;
    hdr->bump.store(kMetaPages, std::memory_order_relaxed);
    g_arenas[id].store(base, std::memory_order_release);
    g_slots[base >> kArenaShift].store(base, std::memory_order_release);
    g_arena_count.store(id + 1, std::memory_order_release);
    g_mapped.fetch_add(kArenaSize, std::memory_order_relaxed);
    g_current_arena.store(id + 1, std::memory_order_release);
  }
}

// Splits a longer cold span when nothing else fits (fragmented pool).
Page* SplitCold(uint32_t pages) {
  for (uint32_t m = pages + 1; m <= kMaxSpanPages; ++m) {
    Page* p = g_cold[m].Pop();
    if (p == nullptr) continue;
    Page* rest = p + pages;
    InitSpanHead(rest, m - pages);
    g_cold[m - pages].Push(rest);
    InitSpanHead(p, pages);
    return p;
  }
  return nullptr;
}

void Decommit(Page* p, uint32_t pages) {
  const uint64_t bytes = uint64_t{pages} << kPageShift;
  os::Decommit(PageStart(p), bytes);
  g_returned.fetch_add(bytes, std::memory_order_relaxed);
  g_held.fetch_sub(bytes, std::memory_order_relaxed);
}

void MaybePurge() {
  const uint64_t decay = g_decay_ms.load(std::memory_order_relaxed);
  const uint64_t interval = std::max<uint64_t>(decay / 4, 10);
  const uint64_t now = os::NowMs();
  uint64_t last = g_last_purge_ms.load(std::memory_order_relaxed);
  if (now - last < interval) return;
  if (!g_last_purge_ms.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
  pool::Purge(false);
}

}  // namespace

Page* PageFromGlobalIndex(uint32_t gidx) {
  const uintptr_t base = g_arenas[gidx / kPagesPerArena].load(std::memory_order_relaxed);
  return PageAt(base, gidx % kPagesPerArena);
}

uint32_t GlobalIndexOf(const Page* p) {
  return ArenaOf(ArenaBaseOfPage(p))->id * kPagesPerArena + PageIndexOf(p);
}

namespace pool {

Page* AllocSpan(uint32_t pages, bool* zeroed) {
  if (pages == 0 || pages > kMaxSpanPages) return nullptr;
  const uint64_t bytes = uint64_t{pages} << kPageShift;
  if (Page* p = g_hot[pages].Pop()) {
    g_cached.fetch_sub(bytes, std::memory_order_relaxed);
    *zeroed = false;
    return p;
  }
  MaybePurge();
  if (!ChargeHeld(bytes)) {
    Purge(true);
    if (!ChargeHeld(bytes)) return nullptr;
  }
  Page* p = g_cold[pages].Pop();
  if (p == nullptr) p = Carve(pages);
  if (p == nullptr) p = SplitCold(pages);
  if (p == nullptr) {
    g_held.fetch_sub(bytes, std::memory_order_relaxed);
    return nullptr;
  }
  *zeroed = true;
  return p;
}

void FreeSpan(Page* head) {
  const uint32_t pages = head->span_pages;
  const uint64_t bytes = uint64_t{pages} << kPageShift;
  head->kind = PageKind::kFree;
  if (g_decay_ms.load(std::memory_order_relaxed) == 0) {
    Decommit(head, pages);
    g_cold[pages].Push(head);
    return;
  }
  head->freed_at_ms = os::NowMs();
  g_cached.fetch_add(bytes, std::memory_order_relaxed);
  g_hot[pages].Push(head);
  MaybePurge();
}

void Purge(bool all) {
  const uint64_t now = os::NowMs();
  const uint64_t decay = g_decay_ms.load(std::memory_order_relaxed);
  for (uint32_t n = 1; n <= kMaxSpanPages; ++n) {
    if (g_hot[n].Empty()) continue;
    Page* keep_first = nullptr;
    Page* keep_last = nullptr;
    for (Page* p = g_hot[n].TakeAll(); p != nullptr;) {
      Page* next = NextInStack(p);
      // freed_at may be later than `now` (freed after we read the clock): young.
      if (all || (now >= p->freed_at_ms && now - p->freed_at_ms >= decay)) {
        g_cached.fetch_sub(uint64_t{n} << kPageShift, std::memory_order_relaxed);
        Decommit(p, n);
        g_cold[n].Push(p);
      } else {
        if (keep_last != nullptr) {
          keep_last->pool_next.store(GlobalIndexOf(p) + 1, std::memory_order_relaxed);
        } else {
          keep_first = p;
        }
        keep_last = p;
      }
      p = next;
    }
    if (keep_first != nullptr) g_hot[n].PushChain(keep_first, keep_last);
  }
}

void SetDecayMs(uint64_t ms) { g_decay_ms.store(ms, std::memory_order_relaxed); }

void* AllocHuge(size_t size, size_t alignment, uintptr_t owner, size_t* mapped) {
  const size_t os_page = os::PageSize();
  const size_t offset = std::max(alignment, os_page);  // the header's OS page, or the alignment
  if (size > (size_t{1} << kAddressBits) || offset > (size_t{1} << kAddressBits)) return nullptr;
  const size_t total = (offset + size + os_page - 1) & ~(os_page - 1);
  if (!ChargeHeld(total)) {
    Purge(true);
    if (!ChargeHeld(total)) return nullptr;
  }
  void* mem = os::MapAligned(total, kArenaSize);
  if (mem == nullptr) {
    g_held.fetch_sub(total, std::memory_order_relaxed);
    return nullptr;
  }
  const uintptr_t base = reinterpret_cast<uintptr_t>(mem);
  ArenaHeader* hdr = ArenaOf(base);
  hdr->huge = 1;
  hdr->mapped_bytes = total;
  hdr->huge_user = base + offset;
  hdr->huge_usable = total - offset;
  hdr->huge_owner = owner;
  for (uintptr_t s = base; s < base + total; s += kArenaSize) {
    g_slots[s >> kArenaShift].store(base, std::memory_order_release);
  }
  g_mapped.fetch_add(total, std::memory_order_relaxed);
  *mapped = total;
  return reinterpret_cast<void*>(hdr->huge_user);
}

void FreeHuge(ArenaHeader* hdr) {
  const uintptr_t base = reinterpret_cast<uintptr_t>(hdr);
  const size_t total = hdr->mapped_bytes;
  for (uintptr_t s = base; s < base + total; s += kArenaSize) {
    g_slots[s >> kArenaShift].store(0, std::memory_order_release);
  }
  g_held.fetch_sub(total, std::memory_order_relaxed);
  g_mapped.fetch_sub(total, std::memory_order_relaxed);
  g_returned.fetch_add(total, std::memory_order_relaxed);
  os::Unmap(hdr, total);
}

uint64_t Capacity() {
  uint64_t cap = g_capacity.load(std::memory_order_relaxed);
  if (cap == 0) {
    uint64_t expected = 0;
    cap = DefaultCapacity();
    if (!g_capacity.compare_exchange_strong(expected, cap, std::memory_order_relaxed)) cap = expected;
  }
  return cap;
}

bool SetCapacity(uint64_t bytes) {
  if (bytes == 0) bytes = DefaultCapacity();
  if (bytes < g_ledger.load(std::memory_order_relaxed)) return false;
  g_capacity.store(bytes, std::memory_order_relaxed);
  return true;
}

bool Reserve(uint64_t bytes) {
  if (!Grant(bytes)) return false;
  g_granted.fetch_sub(bytes, std::memory_order_relaxed);
  g_reserved.fetch_add(bytes, std::memory_order_relaxed);
  return true;
}

void Unreserve(uint64_t bytes) {
  g_reserved.fetch_sub(bytes, std::memory_order_relaxed);
  g_ledger.fetch_sub(bytes, std::memory_order_relaxed);
}

bool Grant(uint64_t bytes) {
  const uint64_t cap = Capacity();
  uint64_t cur = g_ledger.load(std::memory_order_relaxed);
  do {
    if (cur + bytes > cap || cur + bytes < cur) return false;
  } while (!g_ledger.compare_exchange_weak(cur, cur + bytes, std::memory_order_relaxed));
  g_granted.fetch_add(bytes, std::memory_order_relaxed);
  return true;
}

void Ungrant(uint64_t bytes) {
  g_granted.fetch_sub(bytes, std::memory_order_relaxed);
  g_ledger.fetch_sub(bytes, std::memory_order_relaxed);
}

uint64_t Unallocated() {
  const uint64_t cap = Capacity();
  const uint64_t l = g_ledger.load(std::memory_order_relaxed);
  return l >= cap ? 0 : cap - l;
}

PoolCounters Counters() {
  PoolCounters c;
  c.capacity = Capacity();
  c.reserved = g_reserved.load(std::memory_order_relaxed);
  c.granted = g_granted.load(std::memory_order_relaxed);
  c.held = g_held.load(std::memory_order_relaxed);
  c.cached = g_cached.load(std::memory_order_relaxed);
  c.returned_to_os = g_returned.load(std::memory_order_relaxed);
  c.arenas = g_arena_count.load(std::memory_order_relaxed);
  c.mapped = g_mapped.load(std::memory_order_relaxed);
  return c;
}

void LockForFork() ABSL_NO_THREAD_SAFETY_ANALYSIS { g_grow_lock.Lock(); }
void UnlockAfterFork(bool child) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (child) {
    g_grow_lock.ResetAfterFork();
  } else {
    g_grow_lock.Unlock();
  }
}

bool IsValid() {
  // Quiescent check (tests): count spans on the stacks and check each span's
  // head is free and its length matches the stack it is on.
  for (uint32_t n = 1; n <= kMaxSpanPages; ++n) {
    for (SpanStack* s : {&g_hot[n], &g_cold[n]}) {
      Page* top = s->TakeAll();
      Page* last = nullptr;
      bool ok = true;
      uint64_t count = 0;
      for (Page* p = top; p != nullptr; p = NextInStack(p)) {
        if (p->span_pages != n || p->kind != PageKind::kFree) ok = false;
        if (++count > (uint64_t{kMaxArenas} * kPagesPerArena)) return false;  // a cycle
        last = p;
      }
      if (top != nullptr) s->PushChain(top, last);
      if (!ok) return false;
    }
  }
  return true;
}

}  // namespace pool
}  // namespace execmem
