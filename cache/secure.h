// Secure mode (EXECMEM_SECURE=1, or the CMake option EXECMEM_SECURE_DEFAULT=ON).
//
// Design: secure mode lives entirely on the slow paths, so that the normal
// fast path is not one instruction longer (tests/fastpath_golden_test.sh).
// A secure heap never gets a current span (MakeCurrent keeps its spans on the
// partial list), so every Malloc finds &g_empty_page and every Free finds no
// fast owner: both fall through to MallocSlow / FreeSlow, which hand the call
// to this file when Enabled(). The mode is decided once, before the first
// heap exists, and never changes, so every block of the process is secure or
// none is.
//
// What it adds, and where it is checked:
//   small blocks (<= 256 KiB - 8): the block's last word is a canary, the
//     requested size n keyed with a per-process secret and the block's
//     address; bytes [n, end - 8) hold 0xAB. free() checks both (overflow),
//     the word before the block (the previous block's canary or zero:
//     underflow), and reports a zero canary as a double free. Block 0 of a
//     span of 3+ blocks is never handed out, so those blocks all have a
//     checked word before them.
//   freed small blocks are zeroed (their first kWatchBytes, 16 KiB) and wait
//     in a FIFO quarantine (per heap, bounded by kQuarantineBytes); when one
//     leaves it, and again (its head) when it is reused, it must still be
//     zero (write after free). Small blocks therefore come out of malloc
//     zeroed (their first 16 KiB).
//   free lists: a block's next pointer is stored XOR the secret and its own
//     address (like glibc's safe-linking, mimalloc's MI_SECURE); a decoded
//     pointer outside its span or off a block boundary is reported.
//   carving: a fresh batch of blocks enters the free list in random order.
//   large and huge blocks: a PROT_NONE guard page before and after the
//     block (an overflow or underflow faults at once), the bytes between the
//     end of the request and the guard hold 0xAB, checked at free; freed
//     large blocks are made PROT_NONE and quarantined (a use after free
//     faults), huge blocks are unmapped at once.
//   malloc(0): a unique pointer into a PROT_NONE reservation; any access
//     faults (zero_size.h: the default mode does the same).
// Every report is one line on stderr, then abort.
#ifndef EXECMEM_CACHE_SECURE_H_
#define EXECMEM_CACHE_SECURE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "cache/span.h"
#include "pool/pool.h"

namespace execmem {

class Heap;

namespace secure {

// Page::secure bits.
inline constexpr uint8_t kSpan = 1;         // a small span carved in secure mode
inline constexpr uint8_t kQuarantined = 2;  // a large block in the quarantine

// Bytes of freed small blocks a heap holds back before reuse, and of large
// blocks (PROT_NONE meanwhile).
inline constexpr size_t kQuarantineBytes = size_t{256} << 10;
inline constexpr size_t kLargeQuarantineBytes = size_t{8} << 20;
inline constexpr uint32_t kLargeQuarantineBlocks = 8;

// 1 on, 0 off, negative not decided yet (-1) or being decided by another
// thread: Enabled() then waits in Decide() (runs before the first heap).
extern std::atomic<int> g_mode;
// Whether the process asked for secure mode (EXECMEM_SECURE, or the build's
// default). The options table is the api layer's, so it defines this
// (api/options.cc), constant-initialised: Decide may run before any
// constructor.
using RequestedFn = bool (*)();
extern const RequestedFn g_requested;
int Decide();
inline bool Enabled() {
  const int m = g_mode.load(std::memory_order_relaxed);
  return (m < 0 ? Decide() : m) != 0;
}

// The slow-path entry points (heap.cc calls them when Enabled()).
void* Malloc(Heap* h, size_t size, size_t alignment, bool zero);
void Free(void* p);
// A sized free: `size` must be what was asked for (up to the shim's rounding
// to 16); with an alignment (aligned sized frees), at most that.
void FreeSized(void* p, size_t size, size_t alignment);
size_t UsableSize(const void* p);
void* Realloc(void* p, size_t size);

// Frees every block in h's quarantines (before h gives its spans away).
void FlushQuarantine(Heap* h);

// Pushes b onto a secure span's free list, encoding the link.
void PushFree(Page* pg, Block* b);

}  // namespace secure

// A block goes back onto its span's free list (remote drains, orphanage):
// through secure::PushFree when the span is secure.
inline void PushFreeBlock(Page* pg, Block* b) {
  if (pg->secure != 0) [[unlikely]] {
    secure::PushFree(pg, b);
    return;
  }
  b->next = pg->free;
  pg->free = b;
}

}  // namespace execmem

#endif  // EXECMEM_CACHE_SECURE_H_
