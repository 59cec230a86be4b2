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
// Bytes of the block freed last checked again at each secure malloc.
constexpr size_t kNewestCheckBytes = 64;

}  // namespace

void Report(const char* op, const char* what, const void* p, size_t block, const char* detail) {
  char buf[320];
  const int n = snprintf(buf, sizeof buf, "execmem: %s(): %s %p (a %zu-byte block)%s%s\n", op, what,
                         p, block, detail[0] != '\0' ? ": " : "", detail);
  os::WriteStderr(buf, n > 0 ? static_cast<size_t>(n) : 0);
  os::Abort();
}

namespace {

// The checks below are inline in their callers (one free or malloc runs a
// dozen of them: called, each cost its prologue and epilogue, 18
// instructions a neighbour check on hashagg); what they report is out of
// line and cold, so that the hot paths keep few registers.
[[noreturn, gnu::cold, gnu::noinline]] void ReportChangedByte(const char* op, const char* b,
                                                             size_t size, ptrdiff_t at) {
  char detail[64];
  snprintf(detail, sizeof detail, "byte %td changed after it was freed", at);
  Report(op, "write after free of", b, size, detail);
}

[[noreturn, gnu::cold, gnu::noinline]] void ReportNeverHandedOut(const char* op, const Page* pg,
                                                                const void* b) {
  Report(op, "pointer not allocated by execmem:", b, pg->block_size, "never handed out");
}

[[noreturn, gnu::cold, gnu::noinline]] void ReportFreeMarkChanged(const char* op, const char* b,
                                                                 size_t size) {
  Report(op, "write after free of", b, size,
         "its last word (the free mark) changed after it was freed");
}

[[noreturn, gnu::cold, gnu::noinline]] void ReportUnderflow(const char* op, const char* b,
                                                           size_t size) {
  Report(op, "heap underflow before", b, size,
         "the word before the block (the canary of the block before) is overwritten");
}

// What a neighbour check found: the overflow or underflow of b into nb.
enum class NeighbourFault { kFreeLink, kFreeWritten, kSlack };
[[noreturn, gnu::cold, gnu::noinline]] void ReportNeighbour(const char* op, const char* nb,
                                                           const char* b, size_t size,
                                                           NeighbourFault f) {
  const char* what = nb > b ? "heap overflow past the end of" : "heap underflow before";
  Report(op, what, b, size,
         f == NeighbourFault::kFreeLink      ? "the first word of the free block next to it is overwritten"
         : f == NeighbourFault::kFreeWritten ? "the free block next to it is written"
                                             : "the slack of the block next to it is written");
}

[[noreturn, gnu::cold, gnu::noinline]] void ReportLive(const char* op, Page* pg, char* b,
                                                      uint64_t n) {
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

[[noreturn, gnu::cold, gnu::noinline]] void ReportNewest(const char* op, const char* b,
                                                        size_t size, bool slack) {
  Report(op, "heap overflow past the end of", b, size,
         slack ? "the bytes past the request are written (found at the next malloc)"
               : "the canary after the block is overwritten (found at the next malloc)");
}

// Checks that the tail word before b (the block before's) is a canary or a
// free mark; b is not block 0.
[[gnu::always_inline]] inline void CheckBefore(const char* op, Page* pg, const char* b) {
  const uint32_t size = pg->block_size;
  if (!ValidTail(LoadTail(b - size, size), b - size, size)) [[unlikely]] {
    ReportUnderflow(op, b, size);
  }
}

// Checks nb, a neighbour of a block of pg, which this heap owns (so only this
// thread hands its blocks out): a free neighbour's word 0 must be zero (in a
// quarantine), an encoded link of its span or, in transit between threads, a
// plain one, and the 32 bytes before its tail zero; a live neighbour's slack
// must be intact. An overflow or underflow that spared the tail words lands
// there. A live neighbour's slack may be changing under another thread's
// free (the free mark is stored before the block is zeroed) or realloc (the
// busy mark first): the tail word is read again after the scan, and a report
// made only if it did not change.
[[gnu::always_inline]] inline void CheckNeighbour(const char* op, Page* pg, const char* nb,
                                                  const char* b) {
  const uint32_t size = pg->block_size;
  const char* start = PageStart(pg);
  if (nb < start || nb >= pg->bump) return;  // never carved
  const uint64_t t1 = LoadTail(nb, size);
  const uint64_t n = CanarySize(t1, nb);
  if (n == kFreeTag) {
    std::atomic_thread_fence(std::memory_order_acquire);  // its zeroing (CheckFree)
    const uint64_t w = Load64(nb);
    // (Word 0 of a quarantined block is zero only when freed blocks are.)
    if (w != 0 && On(kZeroing) && !LinkOk(pg, start, DecodeLink(w, nb)) &&
        !LooksLikeLink(reinterpret_cast<const Block*>(w))) [[unlikely]] {
      ReportNeighbour(op, nb, b, size, NeighbourFault::kFreeLink);
    }
    if (On(kZeroing) && size - 8 <= kWatchBytes) {
      const char* end = nb + size - 8;
      const char* from = end - 32 > nb + 16 ? end - 32 : nb + 16;
      if (from < end && FirstNot(from, end) >= 0) [[unlikely]] {
        ReportNeighbour(op, nb, b, size, NeighbourFault::kFreeWritten);
      }
    }
    return;
  }
  if (n > size - 8) return;  // busy, or a broken tail (CheckBefore's, or its own free's)
  const ptrdiff_t at = FirstNot<kSlack>(nb + n, nb + size - 8);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (at >= 0 && LoadTail(nb, size) == t1) [[unlikely]] {
    ReportNeighbour(op, nb, b, size, NeighbourFault::kSlack);
  }
}

// Both neighbours of b, a block of a span this heap owns.
[[gnu::always_inline]] inline void CheckNeighbours(const char* op, Page* pg, const char* b) {
  const uint32_t size = pg->block_size;
  if (b != PageStart(pg)) CheckNeighbour(op, pg, b - size, b);
  if (b + size < pg->limit) CheckNeighbour(op, pg, b + size, b);
}

// The requested size of the live small block b, checking its canary, the
// slack after the request and the word before b; reports otherwise.
[[gnu::always_inline]] inline size_t CheckLiveInline(const char* op, Page* pg, char* b) {
  const uint32_t size = pg->block_size;
  const bool first = b == PageStart(pg);
  if (first && ReservesBlock0(pg)) [[unlikely]] {
    ReportNeverHandedOut(op, pg, b);
  }
  const uint64_t n = CanarySize(LoadTail(b, size), b);
  if (n > size - 8 || FirstNot<kSlack>(b + n, b + size - 8) >= 0) [[unlikely]] {
    ReportLive(op, pg, b, n);
  }
  if (!first) CheckBefore(op, pg, b);
  return static_cast<size_t>(n);
}

}  // namespace

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
    pg->bump += size;
    --pg->capacity;
  }
  constexpr uint32_t kMaxBatch = 256;
  uint32_t n = static_cast<uint32_t>(kOsPage / size);
  if (n < 4) n = 4;
  if (n > kMaxBatch) n = kMaxBatch;
  const uint32_t left = static_cast<uint32_t>((pg->limit - pg->bump) / size);
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
  pg->bump = first + size_t{n} * size;  // before the pushes: Pop checks links against it
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
  const bool mine = owner == h;
  if (mine && b >= pg->bump) [[unlikely]] {
    ReportNeverHandedOut(op, pg, b);
  }
  if (!live_checked) CheckLiveInline(op, pg, b);
  if (mine && On(kNeighbours)) CheckNeighbours(op, pg, b);
  const uint32_t size = pg->block_size;
  if (!On(kZeroing)) {
    StoreTail(b, size, FreeMark(b));
    return;
  }
  // Busy while it is zeroed, then free: a neighbour's check on the owner's
  // thread (CheckNeighbour) must take the zeroing neither for an overflow
  // into a live block (the busy mark comes first) nor a free block not yet
  // zero for one written after it was freed (the free mark, released, comes
  // last: a free block read with its mark is zero). Seen on larson under
  // valgrind, whose thread switches land anywhere.
  StoreTail(b, size, BusyMark(b));
  std::atomic_thread_fence(std::memory_order_release);
  Fill<0>(b, b + Watched(size));
  std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(b + size - 8))
      .store(FreeMark(b), std::memory_order_release);
}

// At each secure malloc, the block handed out last and the block freed
// last are checked again, not only at their next free or reuse: an overflow
// by memcpy or a write through a pointer just freed (the commonest errors)
// is reported before the program goes on. O(1): their tail words (and the
// one before the block handed out last), and the first bytes of the freed
// one. The block handed out last is checked only while its span is still
// this heap's (only this thread can change that); its neighbours' tail words
// may change under the check, but only from one valid value to another.
void CheckNewest(HeapState* s, const char* op) {
  if (char* b = s->last_alloc) {
    Page* pg = s->last_alloc_page;
    {
      const uint32_t size = pg->block_size;
      const uint64_t t1 = LoadTail(b, size);
      if (!ValidTail(t1, b, size)) [[unlikely]] {
        ReportNewest(op, b, size, /*slack=*/false);
      }
      if (b != PageStart(pg)) CheckBefore(op, pg, b);
      // Its slack, re-reading the tail word (another thread may be freeing
      // or resizing the block: see CheckNeighbour).
      if (const uint64_t n = CanarySize(t1, b); n <= size - 8) {
        const ptrdiff_t at = FirstNot<kSlack>(b + n, b + size - 8);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (at >= 0 && LoadTail(b, size) == t1) [[unlikely]] {
          ReportNewest(op, b, size, /*slack=*/true);
        }
      }
    }
  }
  if (s->ring_count == 0) return;
  const Held& held = s->ring[(s->ring_head + s->ring_count - 1) % kQuarantineSlots];
  char* newest = reinterpret_cast<char*>(held.b);
  const uint32_t size = held.pg->block_size;
  const size_t w = Watched(size);
  if (const ptrdiff_t at =
          On(kZeroing) ? FirstNot(newest, newest + (w < kNewestCheckBytes ? w : kNewestCheckBytes))
                       : -1;
      at >= 0) [[unlikely]] {
    ReportChangedByte(op, newest, size, at);
  }
  if (LoadTail(newest, size) != FreeMark(newest)) [[unlikely]] {
    ReportFreeMarkChanged(op, newest, size);
  }
}

namespace {

// The oldest block of the quarantine leaves it, checked: still all zero (its
// watched bytes) with its free mark. The ring is small, so the block is
// usually still in cache.
[[gnu::always_inline]] inline Held EvictOldest(HeapState* s) {
  const Held held = s->ring[s->ring_head];
  char* b = reinterpret_cast<char*>(held.b);
  s->ring_head = (s->ring_head + 1) % kQuarantineSlots;
  --s->ring_count;
  const uint32_t size = held.pg->block_size;
  if (const ptrdiff_t at = On(kZeroing) ? FirstNot(b, b + Watched(size)) : -1; at >= 0)
      [[unlikely]] {
    ReportChangedByte("free", b, size, at);
  }
  if (LoadTail(b, size) != FreeMark(b)) [[unlikely]] {
    ReportFreeMarkChanged("free", b, size);
  }
  s->ring_bytes -= size;
  return held;
}

}  // namespace

Held Quarantine(HeapState* s, Block* b, Page* pg) {
  Held out = s->ring_count == kQuarantineSlots ? EvictOldest(s) : Held{nullptr, nullptr};
  s->ring[(s->ring_head + s->ring_count) % kQuarantineSlots] = Held{b, pg};
  ++s->ring_count;
  s->ring_bytes += pg->block_size;
  if (out.b == nullptr && s->ring_bytes > kQuarantineBytes && s->ring_count > 1) {
    out = EvictOldest(s);
  }
  return out;
}

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
