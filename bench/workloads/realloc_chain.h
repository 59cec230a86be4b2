// The realloc chain shared by execmem-wl-largebuf and execmem-wl-reallocchain:
// one buffer grown by realloc from 4 KiB to 256 MiB in steps of 1.25x, the way
// a growing column or a serialisation buffer grows. It crosses every large-block
// path of an allocator (execmem: span-sized blocks, then dedicated mappings
// above 64 MiB), and what the old block held must survive every move.
#ifndef EXECMEM_BENCH_WORKLOADS_REALLOC_CHAIN_H_
#define EXECMEM_BENCH_WORKLOADS_REALLOC_CHAIN_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "pages.h"
#include "workload_common.h"

namespace bench {

constexpr size_t kChainStart = kPage;
constexpr size_t kChainEnd = size_t{256} << 20;

// The next size of the chain: 1.25x, rounded up to 4 KiB, never past kChainEnd
// (so that every chain ends at the same size under every allocator's realloc).
constexpr size_t ChainNext(size_t size) {
  const size_t grown = (size + size / 4 + kPage - 1) / kPage * kPage;
  return grown < kChainEnd ? grown : kChainEnd;
}
static_assert(ChainNext(kChainStart) == 2 * kPage, "the chain must grow from its first step");

// Grows one buffer from kChainStart to kChainEnd, touching each new page and
// checking after each realloc that the first and last bytes of the old content
// were kept; returns the checksum of the sizes, sentinels and final content.
inline uint64_t RunReallocChain(const char* workload, uint64_t seed) {
  Rng rng(seed);
  size_t size = kChainStart;
  char* block = static_cast<char*>(std::malloc(size));
  if (block == nullptr) OutOfMemory(workload, size);
  FillPages(block, 0, size, rng);
  uint64_t h = 0;
  while (size < kChainEnd) {
    const size_t next = ChainNext(size);
    const char first = block[0];
    const char last = block[size - 1];
    char* grown = static_cast<char*>(std::realloc(block, next));
    if (grown == nullptr) OutOfMemory(workload, next);
    block = grown;
    if (block[0] != first || block[size - 1] != last) {
      std::fprintf(stderr, "%s: realloc from %zu to %zu bytes lost the old content\n", workload,
                   size, next);
      std::exit(1);
    }
    FillPages(block, size, next, rng);
    h = Mix(Mix(h, next), static_cast<unsigned char>(last));
    size = next;
  }
  h = SumPages(block, size, h);
  std::free(block);
  return h;
}

}  // namespace bench

#endif  // EXECMEM_BENCH_WORKLOADS_REALLOC_CHAIN_H_
