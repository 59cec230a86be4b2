// The arena table, the pool's byte counters and clock, and decommitting
// pages, with the huge-page advice a decommit takes back: what pool.cc (spans)
// and purge.cc (the cache) both build on. See pool.h.
#include <algorithm>

#include "platform/os.h"
#include "pool/arena.h"
#include "pool/pool.h"
#include "pool/pool_internal.h"

namespace execmem::pool {

std::atomic<uintptr_t> g_arenas[kMaxArenas];
std::atomic<uint32_t> g_arena_count{0};
std::atomic<uint64_t> g_held{0};
std::atomic<uint64_t> g_cached{0};
std::atomic<uint64_t> g_returned{0};
std::atomic<uint64_t> g_mapped{0};

namespace {

// Huge pages for large blocks, when asked for (SetHugePages; default off). A
// first touch faults an OS page at a time; where a 4 KiB fault is dear (the
// project's machine of 2026-12-07 morning, a virtual machine: about 13 us) a
// 20 MB block cost more to fault in than to write. A large block then asks
// the kernel for transparent huge pages behind the 2 MiB chunks it covers
// whole (AdviseHugeChunks: MADV_HUGEPAGE, a first touch then faults in 2 MiB
// at once; the block's bytes only, not its span's rounding or headroom, which
// a huge page would fault in unused). Where a huge page's first touch is the
// dear part (the machine of 2026-12-07 afternoon: 0.6-4 ms for 2 MiB of
// memory the host must back again, against 1.5 ms for 512 faults of 4 KiB)
// the advice doubles large-block churn's CPU time, so it is off by default
// (docs/large-blocks.md). A chunk keeps the advice while its pages stay
// committed; a purge that decommits any page of it takes the advice back, so
// that khugepaged never collapses a partly purged chunk into a whole huge
// page again (RSS stays what the cache bound allows). The span is charged
// whole to its executor: a huge page holds no memory outside a budget.
std::atomic<bool> g_huge_pages{false};
constexpr uint32_t kChunkPages = static_cast<uint32_t>((size_t{2} << 20) / kPageSize);
static_assert(kPagesPerArena / kChunkPages == kChunkWords * 32,
              "one bit a chunk in ArenaMeta::huge_chunks");

// The bits of chunks [first, end) that fall in word cw of huge_chunks.
uint32_t ChunkBits(uint32_t first, uint32_t end, uint32_t cw) {
  const uint32_t lo = cw * 32;
  const uint32_t a = std::max(first, lo), b = std::min(end, lo + 32);
  if (a >= b) return 0;
  const uint32_t n = b - a;
  return (n >= 32 ? ~uint32_t{0} : (uint32_t{1} << n) - 1) << (a - lo);
}

// Advises (on) or takes back (off) huge pages for the chunks in `bits` of word
// cw of the arena at base, one madvise per run of chunks.
void AdviseChunks(uintptr_t base, uint32_t cw, uint32_t bits, bool on) {
  constexpr size_t kChunkBytes = size_t{kChunkPages} << kPageShift;
  while (bits != 0) {
    const uint32_t lo = static_cast<uint32_t>(__builtin_ctz(bits));
    const uint32_t from_lo = bits >> lo;
    const uint32_t len = ~from_lo == 0 ? 32 - lo : static_cast<uint32_t>(__builtin_ctz(~from_lo));
    os::AdviseHugePages(reinterpret_cast<void*>(base + (cw * 32 + lo) * kChunkBytes),
                        len * kChunkBytes, on);
    bits &= ~ChunkBits(lo, lo + len, 0);
  }
}

}  // namespace

void SetHugePages(bool on) { g_huge_pages.store(on, std::memory_order_relaxed); }
bool HugePagesOn() { return g_huge_pages.load(std::memory_order_relaxed); }

void AdviseHugeChunks(PoolPage* head, size_t bytes) {
  if (!HugePagesOn()) return;
  const uint32_t n = static_cast<uint32_t>(std::min<size_t>(bytes >> kPageShift, head->span_pages));
  if (n < kChunkPages) return;
  const uintptr_t base = ArenaBaseOfPage(head);
  const uint32_t start = PageIndexOf(head);
  const uint32_t first = (start + kChunkPages - 1) / kChunkPages;
  const uint32_t end = (start + n) / kChunkPages;
  if (first >= end) return;
  ArenaMeta* m = MetaOfArena(base);
  for (uint32_t cw = first / 32; cw <= (end - 1) / 32; ++cw) {
    const uint32_t want = ChunkBits(first, end, cw);
    if ((m->huge_chunks[cw].load(std::memory_order_relaxed) & want) == want) continue;
    const uint32_t was = m->huge_chunks[cw].fetch_or(want, std::memory_order_relaxed);
    AdviseChunks(base, cw, want & ~was, /*on=*/true);
  }
}

namespace {

// Pages [start, start + n) are being decommitted: the chunks they touch lose
// the advice.
void ForgetHugeChunks(uintptr_t base, uint32_t start, uint32_t n) {
  ArenaMeta* m = MetaOfArena(base);
  const uint32_t first = start / kChunkPages, end = (start + n + kChunkPages - 1) / kChunkPages;
  for (uint32_t cw = first / 32; cw <= (end - 1) / 32; ++cw) {
    if (m->huge_chunks[cw].load(std::memory_order_relaxed) == 0) continue;
    const uint32_t touched = ChunkBits(first, end, cw);
    const uint32_t was = m->huge_chunks[cw].fetch_and(~touched, std::memory_order_relaxed);
    AdviseChunks(base, cw, was & touched, /*on=*/false);
  }
}

}  // namespace

uint32_t Clock32() {
  static const uint64_t epoch = os::NowMs();
  return static_cast<uint32_t>(os::NowMs() - epoch);
}

void DecommitSpanTail(PoolPage* head, size_t keep) {
  const size_t os_page = os::PageSize();
  const size_t from = (keep + os_page - 1) & ~(os_page - 1);
  const size_t bytes = size_t{head->span_pages} << kPageShift;
  if (from >= bytes) return;
  ForgetHugeChunks(ArenaBaseOfPage(head), PageIndexOf(head), head->span_pages);
  os::Decommit(PageStart(head) + from, bytes - from);  // refused: it stays committed
}

bool DecommitPages(uintptr_t base, uint32_t start, uint32_t n) {
  const uint64_t bytes = uint64_t{n} << kPageShift;
  ForgetHugeChunks(base, start, n);
  if (!os::Decommit(reinterpret_cast<void*>(base + (uintptr_t{start} << kPageShift)), bytes)) {
    return false;
  }
  g_returned.fetch_add(bytes, std::memory_order_relaxed);
  g_held.fetch_sub(bytes, std::memory_order_relaxed);
  return true;
}

}  // namespace execmem::pool
