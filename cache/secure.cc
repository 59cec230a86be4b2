// Secure mode's out-of-line pieces for small blocks (cache/secure.h,
// cache/secure_policy.h): the mode and its secrets, the checks and their
// reports, shuffled carving, the quarantine ring. The span and free-list code
// that runs them is the one of span.cc, orphanage.cc and heap.cc.
//
// In the cache's order (cache.h) this file comes right after meta.cc: it
// calls nothing of the cache's other files (it hands blocks back to its
// callers rather than to their spans), and the span code calls it.
#include "cache/secure.h"

#include <cstdio>
#include <cstring>

#include "cache/check.h"
#include "cache/heap.h"
#include "cache/secure-inl.h"
#include "cache/secure_policy.h"
#include "cache/size_class.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem::secure {

std::atomic<int> g_mode{-1};
uint64_t g_canary_key = 0;
uint64_t g_link_key = 0;
uint32_t g_checks = 0;

namespace {

constexpr int kDeciding = -2;  // negative: Enabled() waits in Decide()

}  // namespace

void Report(const char* op, const char* what, const void* p, size_t block, const char* detail) {
  char buf[320];
  const int n = snprintf(buf, sizeof buf, "execmem: %s(): %s %p (a %zu-byte block)%s%s\n", op, what,
                         p, block, detail[0] != '\0' ? ": " : "", detail);
  os::WriteStderr(buf, n > 0 ? static_cast<size_t>(n) : 0);
  os::Abort();
}

void ReportChangedByte(const char* op, const char* b, size_t size, ptrdiff_t at) {
  char detail[64];
  snprintf(detail, sizeof detail, "byte %td changed after it was freed", at);
  Report(op, "write after free of", b, size, detail);
}

void ReportNeverHandedOut(const char* op, const Page* pg, const void* b) {
  Report(op, "pointer not allocated by execmem:", b, pg->block_size, "never handed out");
}

void ReportFreeMarkChanged(const char* op, const char* b, size_t size) {
  Report(op, "write after free of", b, size,
         "its last word (the free mark) changed after it was freed");
}

void ReportUnderflow(const char* op, const char* b, size_t size) {
  Report(op, "heap underflow before", b, size,
         "the word before the block (the canary of the block before) is overwritten");
}

void ReportNeighbour(const char* op, const char* nb, const char* b, size_t size, NeighbourFault f) {
  const char* what = nb > b ? "heap overflow past the end of" : "heap underflow before";
  Report(op, what, b, size,
         f == NeighbourFault::kFreeLink
             ? "the first word of the free block next to it is overwritten"
         : f == NeighbourFault::kFreeWritten ? "the free block next to it is written"
                                             : "the slack of the block next to it is written");
}

void ReportLive(const char* op, Page* pg, char* b, uint64_t n) {
  const uint32_t size = pg->block_size;
  if (n == kFreeTag) Report(op, "double free (or a block never allocated):", b, size, "");
  if (n > size - 8) {
    Report(op, "heap overflow past the end of", b, size,
           "the canary after the block is overwritten");
  }
  char detail[80];
  snprintf(detail, sizeof detail, "byte %td past the %zu bytes asked for was written",
           FirstNot<kSlack>(b + n, b + size - 8), static_cast<size_t>(n));
  Report(op, "heap overflow past the end of", b, size, detail);
}

void ReportNewest(const char* op, const char* b, size_t size, bool slack) {
  Report(op, "heap overflow past the end of", b, size,
         slack ? "the bytes past the request are written (found at the next malloc)"
               : "the canary after the block is overwritten (found at the next malloc)");
}

void ReportBadFreeBlock(Page* pg, const char* b) {
  const uint32_t size = pg->block_size;
  if (!LinkOk(pg, PageStart(pg), DecodeLink(Load64(b), b))) {
    Report("malloc", "write after free: the free-list link of", b, size,
           "it no longer points at a free block of its span");
  }
  if (LoadTail(b, size) != FreeMark(b)) {
    Report("malloc", "write after free of", b, size,
           "its last word (the free mark) changed after it was freed");
  }
  const size_t w = Watched(size);
  ReportChangedByte("malloc", b, size,
                    FirstNot(b + 8, b + (w < kReuseCheckBytes ? w : kReuseCheckBytes)) + 8);
}

// Carves the next batch of blocks (about an OS page) into the free list in
// random order, each zero with its free mark.
void CarveShuffled(HeapState* s, Page* pg) {
  const uint32_t size = pg->block_size;
  char* start = PageStart(pg);
  if (pg->bump == start && ReservesBlock0(pg)) {
    if (!pg->zeroed) memset(start, 0, size);
    StoreTail(start, size, FreeMark(start));
    // Atomic, as every store to `bump` of a span handed out: any thread
    // reads it (CarvedEnd).
    SetCarvedEnd(pg, start + size);
    --pg->capacity;
  }
  constexpr uint32_t kMaxBatch = 256;
  uint32_t n = static_cast<uint32_t>(kOsPage / size);
  if (n < 4) n = 4;
  if (n > kMaxBatch) n = kMaxBatch;
  const uint32_t left = Uncarved(pg);
  if (n > left) n = left;
  char* first = pg->bump;
  if (!pg->zeroed) {
    // Only what a free block keeps zero (Watched): all of a block up to 16
    // KiB, the head of a larger one.
    if (size - 8 <= kWatchBytes) {
      memset(first, 0, size_t{n} * size);
    } else {
      for (uint32_t i = 0; i < n; ++i) memset(first + size_t{i} * size, 0, kWatchBytes);
    }
  }
  uint16_t order[kMaxBatch];
  // Pushed last, popped first: unshuffled (EXECMEM_SECURE_CHECKS without
  // shuffle), blocks come out in address order, as the default mode's.
  for (uint32_t i = 0; i < n; ++i) order[i] = static_cast<uint16_t>(n - 1 - i);
  for (uint32_t i = On(kShuffle) ? n : 0; i > 1; --i) {
    const uint32_t j = RandomBelow(s, i);
    const uint16_t t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  // Before the pushes: Pop checks links against it. Atomic (CarvedEnd).
  SetCarvedEnd(pg, first + size_t{n} * size);
  for (uint32_t i = 0; i < n; ++i) {
    char* b = first + size_t{order[i]} * size;
    StoreTail(b, size, FreeMark(b));
    Store64(b, EncodeLink(pg->secure_free, b));
    pg->secure_free = reinterpret_cast<Block*>(b);
  }
}

size_t CheckLive(const char* op, Page* pg, char* b) { return CheckLiveInline(op, pg, b); }

void CheckFree(const char* op, const Heap* h, const Heap* owner, Page* pg, char* b,
               bool live_checked) {
  CheckFreeInline(op, owner == h, pg, b, live_checked);
}

void CheckNewest(HeapState* s, const char* op) { CheckNewestInline(s, op); }

Held Quarantine(HeapState* s, Block* b, Page* pg) { return QuarantineInline(s, b, pg); }

Held Evict(HeapState* s, bool all) {
  if (all ? s->ring_count == 0 : s->ring_bytes <= kQuarantineBytes || s->ring_count <= 1) {
    return {nullptr, nullptr};
  }
  return EvictOldest(s);
}

bool ResizeSmallInPlace(Page* pg, char* b, size_t old, size_t size) {
  if (size == 0) return false;
  const uint32_t bs = pg->block_size;
  if (size + 8 > bs || size + 8 <= bs / 2) return false;
  // Busy while the slack moves (CheckNeighbour on the owner's thread).
  StoreTail(b, bs, BusyMark(b));
  std::atomic_thread_fence(std::memory_order_release);
  if (size > old) memset(b + old, 0, size - old);
  memset(b + size, kSlack, bs - 8 - size);
  std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(b + bs - 8))
      .store(LiveCanary(b, size), std::memory_order_release);
  return true;
}

int Decide() {
  int m = g_mode.load(std::memory_order_acquire);
  while (m < 0) {  // -1 undecided, kDeciding: another thread reads the setting
    if (m < 0) {
      int expected = -1;
      if (g_mode.compare_exchange_strong(expected, kDeciding, std::memory_order_acq_rel)) {
        const bool on = g_requested();
        if (on) {
          g_canary_key = (os::RandomU64() & ~uint64_t{0xFF}) | (uint64_t{1} << 63) | kTailByte;
          g_link_key = os::RandomU64();
          g_checks = g_requested_checks();
          // Guard pages split the arenas' mappings where the pool does not
          // know: its page moves (mremap within one mapping) stay off.
          pool::SetPageMoves(false);
        }
        g_mode.store(on ? 1 : 0, std::memory_order_release);
        return on ? 1 : 0;
      }
    }
    m = g_mode.load(std::memory_order_acquire);
  }
  return m;
}

}  // namespace execmem::secure
