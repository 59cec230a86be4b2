// Thread state: the per-thread list of heaps, thread exit, binding a thread
// to an executor, per-thread message buffers.
#include <pthread.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <new>

#include "cache/heap-inl.h"
#include "cache/heap.h"
#include "cache/heap_internal.h"
#include "cache/large.h"
#include "cache/meta.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {
namespace {

os::ThreadKey g_thread_key;
std::atomic<int> g_key_state{0};  // 0 none, 1 creating, 2 ready

void ThreadExit(void* arg);

void EnsureThreadKey() {
  int s = g_key_state.load(std::memory_order_acquire);
  if (s == 2) return;
  int expected = 0;
  if (g_key_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    os::NewThreadKey(&g_thread_key, ThreadExit);
    g_key_state.store(2, std::memory_order_release);
    return;
  }
  while (g_key_state.load(std::memory_order_acquire) != 2) os::Yield();
}

Heap* NewHeap(ThreadState* t, Tenant* e) {
  // A recycled heap is re-initialised with atomic stores only: a stale remote
  // freer may still be reading its `remote` word (see RemoteFree).
  bool recycled = false;
  if (test_hook::At(test_hook::Point::kNewHeapFail)) return nullptr;
  void* mem = MetaAlloc(MetaKind::kHeap, sizeof(Heap), &recycled);
  if (mem == nullptr) return nullptr;
  Heap* h = recycled ? static_cast<Heap*>(mem) : new (mem) Heap();
  h->Init(e, t);
  e->Ref();
  {
    SpinLockHolder hold(e->heaps_lock);
    e->LinkHeapLocked(h);
  }
  h->thread_next = t->heaps;
  t->heaps = h;
  return h;
}

// Finds (or makes) the thread's heap for e. Dead heaps met on the way are
// freed once their destroyer has finished abandoning them; until then (the
// destroyer may be paused between claiming and abandoning, see
// DestroyExecutor) they stay on the list, and a later walk or ThreadExit
// frees them.
Heap* HeapFor(ThreadState* t, Tenant* e) {
  Heap** link = &t->heaps;
  while (Heap* h = *link) {
    if (h->state.load(std::memory_order_acquire) == HeapState::kDead) {
      if (h->abandoned.load(std::memory_order_acquire)) {
        *link = h->thread_next;
        MetaFree(MetaKind::kHeap, h);
        continue;
      }
    } else if (h->exec == e) {
      return h;
    }
    link = &h->thread_next;
  }
  return NewHeap(t, e);
}

Heap* InitThread() {
  EnsureThreadKey();
  ThreadState* t = MetaNew<ThreadState>(MetaKind::kThread);
  if (t == nullptr) return nullptr;
  Heap* h = NewHeap(t, g_reclaimer->DefaultTenant());
  if (h == nullptr) {
    // Nothing points at t yet: the next allocation starts over.
    MetaFree(MetaKind::kThread, t);
    return nullptr;
  }
  h->state.store(HeapState::kActive, std::memory_order_release);
  t->bound = h;
  tls_heap = h;
  os::SetThreadValue(g_thread_key, t);
  return h;
}

}  // namespace

Heap* CurrentHeapForSlowPath() {
  Heap* h = tls_heap;
  if (h == &g_bootstrap_heap) [[unlikely]]
    h = InitThread();
  return h;
}

namespace {

void ThreadExit(void* arg) {
  ThreadState* t = static_cast<ThreadState*>(arg);
  tls_heap = &g_bootstrap_heap;
  for (Heap* h = t->heaps; h != nullptr;) {
    Heap* next = h->thread_next;
    // Claim the heap, unless a destroyer has: then wait until it has
    // finished abandoning it. A destroyer that fails (EBUSY) puts its claims
    // back to kIdle without abandoning them: claim the heap then.
    bool mine = false;
    for (HeapState s = h->state.load(std::memory_order_acquire);;) {
      if (s == HeapState::kDead) {
        if (h->abandoned.load(std::memory_order_acquire)) break;
        os::Yield();
        s = h->state.load(std::memory_order_acquire);
      } else if (h->state.compare_exchange_weak(s, HeapState::kDead, std::memory_order_acq_rel)) {
        mine = true;
        break;
      }
    }
    if (mine) h->Abandon();
    MetaFree(MetaKind::kHeap, h);
    h = next;
  }
  MetaFree(MetaKind::kThread, t);
}

}  // namespace

// ---- binding ----

Tenant* BindThread(Tenant* e, int* err) {
  *err = 0;
  if (e == nullptr) e = g_reclaimer->DefaultTenant();
  Heap* cur = CurrentHeapForSlowPath();
  if (cur == nullptr) {
    *err = ENOMEM;
    return nullptr;
  }
  Tenant* prev = cur->exec;
  if (prev == e) return prev;
  if (e->closing.load(std::memory_order_acquire)) {
    *err = EINVAL;
    return prev;
  }
  test_hook::At(test_hook::Point::kBindAfterClosingCheck);
  Heap* nh = HeapFor(cur->thread, e);
  if (nh == nullptr) {
    *err = ENOMEM;
    return prev;
  }
  // Activate under heaps_lock, re-checking `closing` there: DestroyExecutor
  // sets closing before it walks the heaps under the same lock, so either it
  // meets this heap active (and fails with EBUSY) or this sees closing. The
  // check above only saves making a heap for an executor already closing.
  bool activated = false;
  {
    SpinLockHolder hold(e->heaps_lock);
    HeapState idle = HeapState::kIdle;
    activated =
        !e->closing.load(std::memory_order_acquire) &&
        nh->state.compare_exchange_strong(idle, HeapState::kActive, std::memory_order_acq_rel);
  }
  if (!activated) {
    *err = EINVAL;  // being destroyed (or destroyed meanwhile)
    return prev;
  }
  cur->Sync();
  cur->state.store(HeapState::kIdle, std::memory_order_release);
  cur->thread->bound = nh;
  tls_heap = nh;
  return prev;
}

char* ThreadLastError() {
  static char fallback[kLastErrorSize];
  Heap* h = CurrentHeapForSlowPath();
  return h != nullptr ? h->thread->last_error : fallback;
}

Tenant* CurrentTenant() {
  Heap* h = tls_heap;
  return h == &g_bootstrap_heap ? g_reclaimer->DefaultTenant() : h->exec;
}

}  // namespace execmem
