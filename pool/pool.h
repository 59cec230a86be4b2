// pool/ — the process-wide arena pool. Contract of this layer:
//
//  * Memory comes from the OS in 64 MiB arenas (platform/os.h, MapAligned) and
//    is handed out as spans of 64 KiB pages. Backend choice: plain mmap, not a
//    jemalloc arena via mallocx. Debian's libjemalloc exports unprefixed
//    malloc/free, so linking it into libexecmem_preload.so would put two
//    definitions of malloc in one process; and arenas must be aligned to their
//    size so that any pointer finds its page descriptor with a shift, which
//    mmap gives us directly. jemalloc stays a benchmark baseline.
//  * AllocSpan / FreeSpan are lock-free: per span length, a stack of hot
//    (committed) spans and one of cold (returned to the OS) spans. Hot spans
//    are reused first, the most recently freed first. A hot span idle for the
//    decay time is returned to the OS (madvise) by whichever thread next finds
//    a purge due. Only growing the pool by a new arena (an mmap) takes a lock.
//  * The pool holds at most `capacity` committed bytes (default: the cgroup
//    limit, else physical memory). Budgets (executors' reservations and
//    grants, bounded by the same capacity) are budget/'s, one layer up.
//  * The pool knows no allocator type: page descriptors carry opaque owner
//    words (page.h) that only the allocator interprets.
//  * Huge blocks (more than an arena's pages) get a dedicated aligned mapping
//    registered in the same page map.
#ifndef EXECMEM_POOL_POOL_H_
#define EXECMEM_POOL_POOL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "pool/page.h"

namespace execmem {

struct PoolCounters {
  uint64_t capacity, reserved, granted, held, cached, returned_to_os, arenas, mapped;
};

namespace pool {

// Hands out a span of `pages` contiguous pages (1..kMaxSpanPages); its head
// descriptor has span_pages set, kind kFree, and *zeroed says whether the
// memory is known to be zero. Returns nullptr when the capacity would be passed
// (after purging the hot caches) or the OS refuses.
Page* AllocSpan(uint32_t pages, bool* zeroed);
// Takes a span back. The head's span_pages must be what AllocSpan gave.
void FreeSpan(Page* head);

// A dedicated mapping for one huge block: returns the user pointer (aligned to
// `alignment`) with `usable` bytes, or nullptr. *mapped receives the bytes held.
// `owner` is stored, opaque, in the header's huge_owner.
void* AllocHuge(size_t size, size_t alignment, uintptr_t owner, size_t* mapped);
void FreeHuge(ArenaHeader* arena);

// Returns hot spans idle for longer than the decay time (all of them when
// `all`) to the OS.
void Purge(bool all);
void SetDecayMs(uint64_t ms);

// ---- capacity ----
uint64_t Capacity();
// The default capacity: cgroup v2 memory.max, v1 memory.limit_in_bytes, else
// physical memory.
uint64_t DefaultCapacity();
// Stores the capacity (0: the default). Call budget::SetCapacity, which
// first checks the budget ledger.
bool SetCapacity(uint64_t bytes);
// Superseded by budget/ (budget::Reserve etc.) and no longer called; to be
// deleted with the pool v2 rewrite. Counters().reserved / .granted stay 0.
bool Reserve(uint64_t bytes);
void Unreserve(uint64_t bytes);
bool Grant(uint64_t bytes);
void Ungrant(uint64_t bytes);
uint64_t Unallocated();  // capacity - reserved - granted

PoolCounters Counters();

// Test seam: number of arenas created, and a full consistency walk of the
// stacks (every page on at most one stack, span lengths consistent).
bool IsValid();

// fork(): take the arena-growth lock before, release it after (parent) or
// reset it (child).
void LockForFork();
void UnlockAfterFork(bool child);

}  // namespace pool
}  // namespace execmem

#endif  // EXECMEM_POOL_POOL_H_
