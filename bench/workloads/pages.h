// Page-by-page filling and reading back of large blocks, for the workloads
// that measure what large buffers cost in resident memory: every 4 KiB of a
// block is written, so that RSS counts the whole block under every allocator
// (an untouched page would be free under one and not under another), and what
// was written is read back into the checksum, so that an allocator that loses
// or mixes up content gives a different answer.
#ifndef EXECMEM_BENCH_WORKLOADS_PAGES_H_
#define EXECMEM_BENCH_WORKLOADS_PAGES_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "workload_common.h"

namespace bench {

constexpr size_t kPage = size_t{4} << 10;

// Writes a random byte at every 4 KiB step of [from, to) (offsets from the
// block's start, which need not be page aligned) and at to - 1, so that each OS
// page of the range is touched. `from` is a multiple of kPage.
inline void FillPages(char* block, size_t from, size_t to, Rng& rng) {
  for (size_t off = from; off < to; off += kPage) block[off] = static_cast<char>(rng.Next());
  if (to > from) block[to - 1] = static_cast<char>(rng.Next());
}

// Folds what FillPages(block, 0, size) wrote into h.
inline uint64_t SumPages(const char* block, size_t size, uint64_t h) {
  for (size_t off = 0; off < size; off += kPage) {
    h = Mix(h, static_cast<unsigned char>(block[off]));
  }
  return Mix(h, static_cast<unsigned char>(block[size - 1]));
}

// A malloc'd buffer whose every page is written (largebuf, largechurn).
struct PagedBuffer {
  char* data = nullptr;
  size_t size = 0;
};

// A buffer of a random size in [min, max], every page written.
inline PagedBuffer TakePaged(Rng& rng, size_t min, size_t max, const char* workload) {
  PagedBuffer b;
  b.size = rng.Range(min, max);
  b.data = static_cast<char*>(std::malloc(b.size));
  if (b.data == nullptr) OutOfMemory(workload, b.size);
  FillPages(b.data, 0, b.size, rng);
  return b;
}

// Reads the buffer back into the checksum h, then frees it.
inline uint64_t DropPaged(PagedBuffer& b, uint64_t h) {
  h = SumPages(b.data, b.size, Mix(h, b.size));
  std::free(b.data);
  b = PagedBuffer{};
  return h;
}

}  // namespace bench

#endif  // EXECMEM_BENCH_WORKLOADS_PAGES_H_
