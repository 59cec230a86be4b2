// The slow half of the free checks: confirmations and reports (check.h).
#include "cache/check.h"

#include <atomic>
#include <cstdio>
#include <cstring>

#include "cache/heap.h"
#include "cache/heap_internal.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {
namespace {

// Links of a remote list walked at most (it spans all of a heap's spans).
constexpr uint64_t kRemoteWalkLimit = uint64_t{1} << 24;

}  // namespace

namespace {

const char* NameOf(const Tenant* e) { return e != nullptr ? e->name : nullptr; }

// "a 48-byte block of executor "q42"", or less when a part is unknown.
struct BlockText {
  char text[128];
  BlockText(size_t block_size, const char* exec_name) {
    if (exec_name != nullptr) {
      snprintf(text, sizeof text, "a %zu-byte block of executor \"%s\"", block_size, exec_name);
    } else {
      snprintf(text, sizeof text, "a %zu-byte block", block_size);
    }
  }
};

[[noreturn]] void Emit(char* buf, int n, size_t cap) {
  size_t len = n > 0 ? static_cast<size_t>(n) : 0;
  if (len > cap - 2) len = cap - 2;  // snprintf truncated: keep the line
  buf[len++] = '\n';
  os::WriteStderr(buf, len);
  os::Abort();
}

}  // namespace

bool ConfirmFreeBlock(Heap* h, Heap* owner, Page* head, const Block* b) {
  // Freed by this thread into its foreign list (heap.h), whoever owns the span.
  if (OnList(h->foreign[head->size_class], b, h->foreign_count[head->size_class])) return true;
  if (owner == h) {
    // Only this thread changes head->free; the nodes of the
    // span's thread_free list and of the heap's remote list stay put until
    // this thread collects them.
    return OnList(head->free, b, head->capacity) ||
           OnList(ThreadFreeHead(head->thread_free.load(std::memory_order_acquire)), b,
                  head->capacity) ||
           OnList(reinterpret_cast<const Block*>(h->remote.load(std::memory_order_acquire) &
                                                 ~uintptr_t{1}),
                  b, kRemoteWalkLimit);
  }
  // (a shared span's block may be on another thread's foreign list: then the
  // link test below, as for another heap's span)
  if (owner == &g_shared_heap && SharedHoldsFree(head, b)) return true;
  if (owner == &g_orphanage_storage) {
    SpinLockHolder hold(g_orphan_lock);
    // Orphaned spans' lists change only under the lock (the span may have
    // been adopted meanwhile: then its new owner's list is not ours to walk).
    if (OwnerHeap(head) == owner) {
      return OnList(head->free, b, head->capacity) ||
             OnList(reinterpret_cast<const Block*>(owner->remote.load(std::memory_order_acquire) &
                                                   ~uintptr_t{1}),
                    b, kRemoteWalkLimit);
    }
  }
  return LooksLikeLink(b->next);
}

void ReportDoubleFreeNamed(const char* op, const void* p, size_t block_size,
                           const char* exec_name) {
  char buf[256];
  const BlockText what(block_size, exec_name);
  Emit(buf, snprintf(buf, sizeof buf, "execmem: %s(): double free of %p (%s)", op, p, what.text),
       sizeof buf);
}

void ReportDoubleFree(const char* op, const void* p, size_t block_size, const Tenant* e) {
  ReportDoubleFreeNamed(op, p, block_size, NameOf(e));
}

void ReportInteriorPointer(const char* op, const void* p, size_t offset, size_t block_size,
                           const Tenant* e) {
  char buf[256];
  const BlockText what(block_size, NameOf(e));
  Emit(buf,
       snprintf(buf, sizeof buf,
                "execmem: %s(): pointer %p not allocated by execmem (it is %zu bytes into %s)", op,
                p, offset, what.text),
       sizeof buf);
}

void ReportWrongSize(const char* op, const void* p, size_t size, size_t block_size,
                     const Tenant* e) {
  char buf[256];
  const BlockText what(block_size, NameOf(e));
  Emit(buf,
       snprintf(buf, sizeof buf, "execmem: %s(): wrong size %zu for %p (%s)", op, size, p,
                what.text),
       sizeof buf);
}

void ReportWriteAfterFree(const char* op, const void* p, size_t block_size, const Tenant* e) {
  char buf[256];
  const BlockText what(block_size, NameOf(e));
  Emit(buf,
       snprintf(buf, sizeof buf,
                "execmem: %s(): write after free of %p (%s): its free key was overwritten", op, p,
                what.text),
       sizeof buf);
}

void ReportInvalidPointer(const char* op, const void* p) {
  char buf[160];
  int n = snprintf(buf, sizeof buf, "execmem: %s(): pointer %p not allocated by execmem", op, p);
  Emit(buf, n, sizeof buf);
}

}  // namespace execmem
