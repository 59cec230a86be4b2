#include "cache/meta.h"

#include <atomic>
#include <cstdint>

#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {
namespace {

constexpr size_t kSlabSize = size_t{1} << 20;
constexpr size_t kAlign = 64;

struct FreeNode {
  FreeNode* next;
};

struct KindState {
  SpinLock lock;
  // A freed object keeps its memory; the first word becomes the link. Heaps
  // put nothing a remote freer reads in their first word (see Heap layout).
  FreeNode* free ABSL_GUARDED_BY(lock) = nullptr;
  char* bump ABSL_GUARDED_BY(lock) = nullptr;
  char* end ABSL_GUARDED_BY(lock) = nullptr;
};

KindState g_kinds[static_cast<int>(MetaKind::kCount)];
std::atomic<uint64_t> g_carved{0};  // Σ bytes carved by every kind; read without the locks

}  // namespace

void* MetaAlloc(MetaKind kind, size_t size, bool* recycled) {
  KindState& k = g_kinds[static_cast<int>(kind)];
  size = (size + kAlign - 1) & ~(kAlign - 1);
  SpinLockHolder hold(k.lock);
  if (k.free != nullptr) {
    FreeNode* n = k.free;
    k.free = n->next;
    if (recycled != nullptr) *recycled = true;
    return n;
  }
  if (k.bump == nullptr || k.bump + size > k.end) {
    const size_t slab = size > kSlabSize ? size : kSlabSize;
    char* mem = static_cast<char*>(os::MapAligned(slab, os::PageSize()));
    if (mem == nullptr) return nullptr;
    k.bump = mem;
    k.end = mem + slab;
  }
  void* p = k.bump;
  k.bump += size;
  g_carved.fetch_add(size, std::memory_order_relaxed);
  if (recycled != nullptr) *recycled = false;
  return p;
}

void MetaFree(MetaKind kind, void* p) {
  KindState& k = g_kinds[static_cast<int>(kind)];
  SpinLockHolder hold(k.lock);
  FreeNode* n = static_cast<FreeNode*>(p);
  n->next = k.free;
  k.free = n;
}

uint64_t MetaBytes() { return g_carved.load(std::memory_order_relaxed); }

void MetaLockForFork() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (KindState& k : g_kinds) k.lock.Lock();
}

void MetaUnlockAfterFork(bool child) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (KindState& k : g_kinds) {
    if (child) {
      k.lock.ResetAfterFork();
    } else {
      k.lock.Unlock();
    }
  }
}

}  // namespace execmem
