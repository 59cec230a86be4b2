// A lock-free LIFO of spans (Treiber stack), linked through Page::pool_next.
//
// ABA: the head word packs a 32-bit version with the top span's global page
// index (+1, 0 = empty). Every successful push or pop increments the version,
// so a CAS prepared from a stale head fails even when the same span is back
// on top. Descriptors are never unmapped, so reading pool_next of a span
// another thread just popped is safe (the value may be stale; the CAS then fails).
// Ordering: pushes publish the span's descriptor with release; pops acquire.
#ifndef EXECMEM_POOL_SPAN_STACK_H_
#define EXECMEM_POOL_SPAN_STACK_H_

#include <atomic>
#include <cstdint>

#include "pool/page.h"

namespace execmem {

// Global page index: arena id * kPagesPerArena + page index.
Page* PageFromGlobalIndex(uint32_t gidx);
uint32_t GlobalIndexOf(const Page* p);

class SpanStack {
 public:
  constexpr SpanStack() = default;

  void Push(Page* p) { PushChain(p, p); }

  // Pushes first..last, already linked through pool_next, keeping their order
  // (first ends on top).
  void PushChain(Page* first, Page* last) {
    const uint32_t link = GlobalIndexOf(first) + 1;
    uint64_t old = head_.load(std::memory_order_relaxed);
    uint64_t desired;
    do {
      last->pool_next.store(static_cast<uint32_t>(old), std::memory_order_relaxed);
      desired = (((old >> 32) + 1) << 32) | link;
    } while (!head_.compare_exchange_weak(old, desired, std::memory_order_release,
                                          std::memory_order_relaxed));
  }

  Page* Pop() {
    uint64_t old = head_.load(std::memory_order_acquire);
    for (;;) {
      const uint32_t top = static_cast<uint32_t>(old);
      if (top == 0) return nullptr;
      Page* p = PageFromGlobalIndex(top - 1);
      const uint32_t next = p->pool_next.load(std::memory_order_relaxed);
      const uint64_t desired = (((old >> 32) + 1) << 32) | next;
      if (head_.compare_exchange_weak(old, desired, std::memory_order_acquire,
                                      std::memory_order_acquire)) {
        return p;
      }
    }
  }

  // Detaches the whole stack; returns its top (walk with pool_next).
  Page* TakeAll() {
    uint64_t old = head_.load(std::memory_order_acquire);
    for (;;) {
      if (static_cast<uint32_t>(old) == 0) return nullptr;
      const uint64_t desired = ((old >> 32) + 1) << 32;
      if (head_.compare_exchange_weak(old, desired, std::memory_order_acquire,
                                      std::memory_order_acquire)) {
        return PageFromGlobalIndex(static_cast<uint32_t>(old) - 1);
      }
    }
  }

  bool Empty() const { return static_cast<uint32_t>(head_.load(std::memory_order_relaxed)) == 0; }
  void ResetAfterFork() {}

 private:
  std::atomic<uint64_t> head_{0};
};

inline Page* NextInStack(const Page* p) {
  const uint32_t n = p->pool_next.load(std::memory_order_relaxed);
  return n == 0 ? nullptr : PageFromGlobalIndex(n - 1);
}

}  // namespace execmem

#endif  // EXECMEM_POOL_SPAN_STACK_H_
