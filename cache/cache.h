// cache/ — thread caches. Contract of this layer (the only header of cache/
// that another layer includes).
//
// Layer order: platform -> pool -> budget -> cache -> executor -> api -> shim.
// cache/ includes platform/os.h, pool/pool.h and budget/budget.h, and no
// layer above: what it needs from above (the reclaim loop, the default
// tenant, the end of a tenant) comes through one interface, Reclaimer
// (tenant.h), which the executor layer implements.
//
// Map — which file holds what:
//   cache.h          this contract
//   tenant.h         Tenant (its budget::Account, first member; its heaps,
//                    name, refcount) and Reclaimer, the interface the layer
//                    above provides
//   span.h           Page, the span descriptor: the cache's fields of each
//                    page descriptor after the pool's words (pool/page.h);
//                    span heads, page lists (inline)
//   size_class.h     the size-class table (compile time)
//   heap.h           Heap (one per thread and tenant), ThreadState, the
//                    owner words of page descriptors; the call graph
//   heap-inl.h       the fast paths: Malloc, Free, FreeSized (always inline)
//   heap_internal.h  what the .cc files below share, by defining file
//                    (never included outside cache/)
//   check.h          the free key (inline) and the reports
//   meta.h/.cc       type-stable storage for heaps, thread states, tenants
//   span.cc          spans of small blocks: lists, carving, span and heap
//                    modes, placement, local frees, syncing counts, giving
//                    spans back; the bootstrap heap and the empty page
//   large.h/.cc      large blocks (a span each) and huge blocks (own
//                    mapping); the ring of freed huge blocks
//   orphanage.cc     frees across threads (RemoteFree, Heap::DrainRemote)
//                    and the orphanage: spans of exited threads and
//                    destroyed tenants
//   thread.cc        thread state, binding a thread to a tenant
//   check.cc         the free checks' confirmations and reports
//   zero_size.h/.cc  the blocks of malloc(0)
//   heap.cc          the slow paths, realloc, what a heap does as a whole
//                    (sweep, sync, trim); charges the tenant per span
//                    (ChargeOrReclaim)
//   secure.h         secure mode: the mode (chosen once per process)
//   secure_policy.h  secure mode's policy of the span and free-list code
//                    (SecurePolicy: encoded links, tail-word canaries, zeroing,
//                    shuffled carving, the quarantine), its formats and
//                    hooks; the other policy, DefaultPolicy, is in
//                    heap_internal.h
//   secure.cc        secure mode's out-of-line pieces for small blocks: the
//                    secrets, the checks and reports, shuffled carving, the
//                    quarantine ring (hands blocks back, never frees them)
//   secure_large.cc  guard pages around large and huge blocks, the large
//                    quarantine
//
// Inner order — a .cc file calls functions (and uses objects) of the files
// before it only, never after it:
//   meta.cc -> secure.cc -> span.cc -> large.cc -> secure_large.cc
//   -> orphanage.cc -> thread.cc -> check.cc -> zero_size.cc -> heap.cc
// Headers give types, constants and inline code to all of them. The span
// and free-list code (span.cc, orphanage.cc, heap.cc's SmallMalloc and
// FreeResolved) is templates on a policy, DefaultPolicy or SecurePolicy,
// which heap.cc's slow-path entry points pick (secure_policy.h).
//
// Invariants, and who keeps them:
//   * A small span's `used - current + free + never carved == capacity`
//     (span.cc, orphanage.cc; Heap::IsValid in heap.cc walks it).
//   * fast_owner == h exactly on the head pages of h's non-full spans of a
//     heap that is not secure (span.cc, orphanage.cc; heap.h explains); a
//     secure span's Page::free is always null (its list is secure_free), so
//     neither inline fast path takes a secure block.
//   * A heap's non-atomic fields belong to its thread while it is kActive
//     (thread.cc binds; the executor layer claims dead heaps under
//     Tenant::heaps_lock).
//   * Every span and large block is charged to its tenant's account before it
//     is handed out and uncharged when it goes back to the pool (heap.cc
//     charges a small span, span.cc gives it back; large.cc; Page::account
//     names the tenant).
//   * Tenant::refs: one per heap and per charge; the last Unref ends the
//     tenant through Reclaimer::Release.
//   * Fork: the orphanage's lock, then the ring of freed huge blocks
//     (large.cc), then meta, taken in that order by the fork handlers
//     (executor/runtime.cc).
#ifndef EXECMEM_CACHE_CACHE_H_
#define EXECMEM_CACHE_CACHE_H_

#include "cache/check.h"
#include "cache/heap-inl.h"
#include "cache/heap.h"
#include "cache/large.h"
#include "cache/meta.h"
#include "cache/secure.h"
#include "cache/size_class.h"
#include "cache/span.h"
#include "cache/tenant.h"

#endif  // EXECMEM_CACHE_CACHE_H_
