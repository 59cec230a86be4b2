// Secure mode's checks, inline (cache/secure_policy.h gives the formats and
// the policy): one secure free or malloc runs a dozen of them, so heap.cc's
// common secure paths (SecureFreeOwned, SecureMallocSmall) and secure.cc's
// out-of-line entry points (CheckFree, CheckNewest, Quarantine, for the
// rest) take them inline; called, each cost its prologue and epilogue (18
// instructions a neighbour check on hashagg). What they report is out of
// line and cold (secure.cc), so that the hot paths keep few registers.
#ifndef EXECMEM_CACHE_SECURE_INL_H_
#define EXECMEM_CACHE_SECURE_INL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "cache/check.h"
#include "cache/secure_policy.h"
#include "cache/span.h"

namespace execmem::secure {

// Bytes of the block freed last checked again at each secure malloc.
inline constexpr size_t kNewestCheckBytes = 64;

// ---- reports (secure.cc): one line on stderr, then abort ----
[[noreturn, gnu::cold]] void ReportChangedByte(const char* op, const char* b, size_t size,
                                               ptrdiff_t at);
[[noreturn, gnu::cold]] void ReportNeverHandedOut(const char* op, const Page* pg, const void* b);
[[noreturn, gnu::cold]] void ReportFreeMarkChanged(const char* op, const char* b, size_t size);
[[noreturn, gnu::cold]] void ReportUnderflow(const char* op, const char* b, size_t size);
// What a neighbour check found: the overflow or underflow of b into nb.
enum class NeighbourFault { kFreeLink, kFreeWritten, kSlack };
[[noreturn, gnu::cold]] void ReportNeighbour(const char* op, const char* nb, const char* b,
                                             size_t size, NeighbourFault f);
// A live block whose canary (n: the size it decodes to) or slack is broken.
[[noreturn, gnu::cold]] void ReportLive(const char* op, Page* pg, char* b, uint64_t n);
// The block handed out last, found broken at the next malloc.
[[noreturn, gnu::cold]] void ReportNewest(const char* op, const char* b, size_t size, bool slack);

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

// The lines a free of b reads besides its own: the word before it and, when
// the neighbours are checked, their heads and tail words. Asked for together
// at the start, their misses overlap rather than follow one another (larson,
// whose blocks are cold at free: the loads of a neighbour's head and tail
// were a fifth of secure free's time).
[[gnu::always_inline]] inline void PrefetchFree(const Page* pg, const char* b, bool neighbours) {
  const uint32_t size = pg->block_size;
  __builtin_prefetch(b - 8);
  if (neighbours) {
    __builtin_prefetch(b - size);
    __builtin_prefetch(b + size);
    __builtin_prefetch(b + 2 * size - 8);
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

// Checks a block entering free (mine: h owns its span) and marks it free,
// zeroed (secure_policy.h: CheckFree).
[[gnu::always_inline]] inline void CheckFreeInline(const char* op, bool mine, Page* pg, char* b,
                                                   bool live_checked) {
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
[[gnu::always_inline]] inline void CheckNewestInline(HeapState* s, const char* op) {
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

// Takes a freed block (checked, zeroed) into the ring; the block that left
// it to make room, or {nullptr}.
[[gnu::always_inline]] inline Held QuarantineInline(HeapState* s, Block* b, Page* pg) {
  Held out = s->ring_count == kQuarantineSlots ? EvictOldest(s) : Held{nullptr, nullptr};
  s->ring[(s->ring_head + s->ring_count) % kQuarantineSlots] = Held{b, pg};
  ++s->ring_count;
  s->ring_bytes += pg->block_size;
  if (out.b == nullptr && s->ring_bytes > kQuarantineBytes && s->ring_count > 1) {
    out = EvictOldest(s);
  }
  return out;
}

}  // namespace execmem::secure

#endif  // EXECMEM_CACHE_SECURE_INL_H_
