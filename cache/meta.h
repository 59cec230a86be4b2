// Type-stable storage for the allocator's own objects (heaps, thread states,
// executors). Objects come from mmap'd slabs, never from malloc, and their
// memory is never unmapped: a stale pointer to a freed heap still points at a
// heap-shaped object (remote freers rely on this, see heap.cc).
#ifndef EXECMEM_CACHE_META_H_
#define EXECMEM_CACHE_META_H_

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

namespace execmem {

// Size-segregated free lists: kinds never share memory.
enum class MetaKind { kHeap, kThread, kExecutor, kCount };
// *recycled (if given) tells whether the memory held an object of this kind before.
void* MetaAlloc(MetaKind kind, size_t size, bool* recycled = nullptr);
void MetaFree(MetaKind kind, void* p);
// Bytes carved from the slabs so far, all kinds (objects live or on a free
// list): what the slabs hold resident, give or take the last, partly carved OS
// page of each slab. Slabs are mapped 1 MiB at a time, but their never-carved
// part is never touched, so it is not counted.
uint64_t MetaBytes();
void MetaLockForFork();
void MetaUnlockAfterFork(bool child);

template <typename T, typename... Args>
T* MetaNew(MetaKind kind, Args&&... args) {
  void* p = MetaAlloc(kind, sizeof(T));
  return p == nullptr ? nullptr : new (p) T(std::forward<Args>(args)...);
}

}  // namespace execmem

#endif  // EXECMEM_CACHE_META_H_
