// Secure mode (EXECMEM_SECURE=1, or the CMake option EXECMEM_SECURE_DEFAULT=ON).
//
// Design: secure mode is a policy of the one span and free-list code
// (cache/secure_policy.h lists the hooks; DefaultPolicy in heap_internal.h is
// the other instantiation), chosen once per process, before the first heap
// exists, and never changed, so that every block of the process is secure or
// none is. A secure heap has current spans like any heap, but their blocks
// never take the inline fast paths (Page::free stays null and fast_owner 0):
// Malloc and Free fall through to MallocSlow and FreeSlow, which run the
// secure instantiation, so the default fast path is not one instruction
// longer (tests/fastpath_golden_test.sh). Files: secure_policy.h (the inline
// hooks, the formats), secure.cc (the mode, the secrets, the checks' reports,
// shuffled carving, the quarantine ring), secure_large.cc (guard pages around
// large and huge blocks, the large quarantine).
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

#include "cache/secure_policy.h"
#include "cache/span.h"
#include "pool/pool.h"

namespace execmem {

class Heap;

namespace secure {

// 1 on, 0 off, negative not decided yet (-1) or being decided by another
// thread: Enabled() then waits in Decide() (runs before the first heap).
extern std::atomic<int> g_mode;
// Whether the process asked for secure mode (EXECMEM_SECURE, or the build's
// default). The options table is the api layer's, so it defines this
// (api/options.cc), constant-initialised: Decide may run before any
// constructor.
using RequestedFn = bool (*)();
extern const RequestedFn g_requested;
// Which optional protections secure mode runs (secure_policy.h's Check bits;
// EXECMEM_SECURE_CHECKS), also defined by api/options.cc.
using ChecksFn = uint32_t (*)();
extern const ChecksFn g_requested_checks;
int Decide();
inline bool Enabled() {
  const int m = g_mode.load(std::memory_order_relaxed);
  return (m < 0 ? Decide() : m) != 0;
}

}  // namespace secure

// A block goes back onto its span's free list in the orphanage's drain
// (whose spans are of either policy): encoded when the span is secure.
inline void PushFreeBlock(Page* pg, Block* b) {
  if (pg->secure != 0) [[unlikely]] {
    secure::SecurePolicy::Push(pg, b);
    return;
  }
  b->next = pg->free;
  pg->free = b;
}

}  // namespace execmem

#endif  // EXECMEM_CACHE_SECURE_H_
