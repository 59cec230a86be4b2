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
//   tenant.h         Tenant (a budget::Account + its heaps, name, refcount)
//                    and Reclaimer, the interface the layer above provides
//   span.h           Page, the span descriptor: the cache's fields of each
//                    page descriptor after the pool's words (pool/page.h)
//   size_class.h     the size-class table (compile time)
//   heap.h           Heap (one per thread and tenant), ThreadState, the
//                    owner words of page descriptors; the call graph
//   heap-inl.h       the fast paths: Malloc, Free, FreeSized (always inline)
//   heap.cc          spans of small blocks, the slow paths, realloc, binding
//                    checks; charges the tenant per span (ChargeOrReclaim)
//   heap_internal.h  internals shared by heap.cc, orphanage.cc, thread.cc,
//                    secure.cc, check.cc (never included outside cache/)
//   orphanage.cc     spans of exited threads and destroyed tenants
//   thread.cc        thread state, binding a thread to a tenant
//   large.h/.cc      large blocks (a span each) and huge blocks (own mapping)
//   check.h/.cc      the free checks: double frees, invalid pointers, sized frees
//   secure.h/.cc     secure mode: canaries, guard pages, quarantines, encoded
//                    links, shuffled carving, faulting zero-size blocks
//   meta.h/.cc       type-stable storage for heaps, thread states, tenants
//
// Invariants, and who keeps them:
//   * A small span's `used - current + free + never carved == capacity`
//     (heap.cc; Heap::IsValid walks it).
//   * fast_owner == h exactly on the head pages of h's non-full spans of a
//     heap that is not secure (heap.cc, orphanage.cc; heap.h explains).
//   * A heap's non-atomic fields belong to its thread while it is kActive
//     (thread.cc binds; the executor layer claims dead heaps under
//     Tenant::heaps_lock).
//   * Every span and large block is charged to its tenant's account before it
//     is handed out and uncharged when it goes back to the pool (heap.cc,
//     large.cc; Page::account names the tenant).
//   * Tenant::refs: one per heap and per charge; the last Unref ends the
//     tenant through Reclaimer::Release.
//   * Fork: the orphanage's lock, then the checks' ring, then meta, taken in
//     that order by the fork handlers (executor/runtime.cc).
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
