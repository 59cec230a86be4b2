// execmem-bench-micro: allocator micro benchmarks through plain
// malloc/free/realloc/aligned_alloc, so they measure whichever allocator is
// LD_PRELOADed (glibc with none; execmem through its shim). bench/run.sh runs
// this binary once per allocator, interleaved.
//
// Every benchmark reports items = malloc+free pairs, so 1e9 / items_per_second
// is nanoseconds per pair whatever the batch shape.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "micro_common.h"

namespace {

void* Malloc(benchmark::State& state, size_t size) {
  void* p = std::malloc(size);
  if (p == nullptr) state.SkipWithError("malloc returned NULL");
  return p;
}

// One pair per iteration; the pair is freed at once (the hottest path there is).
void BM_MallocFree(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    char* p = static_cast<char*>(Malloc(state, size));
    if (p == nullptr) break;
    p[0] = 1;  // a write, so that the block is real, but no page-touching memset
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MallocFree)->Apply(bench::PowersOfTwo16ToMiB);

// Mixed 16-512 B LIFO pairs: the same shape the callgrind probe counts.
void BM_MixedSmallLifo(benchmark::State& state) {
  const bench::SizeTable sizes;
  size_t i = 0;
  for (auto _ : state) {
    char* p = static_cast<char*>(Malloc(state, sizes[i++]));
    if (p == nullptr) break;
    p[0] = 1;
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MixedSmallLifo);

// Allocate 1 000, then free 1 000 (in allocation order): refills and flushes.
void BM_Batch(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  std::vector<void*> blocks(bench::kBatch);
  for (auto _ : state) {
    for (auto& b : blocks) {
      b = Malloc(state, size);
      if (b == nullptr) return;
      static_cast<char*>(b)[0] = 1;
    }
    benchmark::ClobberMemory();
    for (void* b : blocks) std::free(b);
  }
  state.SetItemsProcessed(state.iterations() * bench::kBatch);
}
BENCHMARK(BM_Batch)->Apply(bench::BatchSizes);

// Producer allocates batches, a consumer thread frees them: remote frees.
void BM_CrossThread(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  bench::CrossThreadFreer freer([](void* p) { std::free(p); });
  for (auto _ : state) {
    void** batch = freer.AcquireEmpty();
    for (size_t i = 0; i < bench::kBatch; ++i) {
      batch[i] = Malloc(state, size);
      if (batch[i] == nullptr) {
        freer.Publish(i);
        return;
      }
      static_cast<char*>(batch[i])[0] = 1;
    }
    freer.Publish(bench::kBatch);
  }
  freer.Drain();
  state.SetItemsProcessed(state.iterations() * bench::kBatch);
}
BENCHMARK(BM_CrossThread)->Apply(bench::CrossThreadSizes)->UseRealTime();

// realloc growth: a buffer grown in steps of `step` bytes from 16 B to `limit`,
// as a string builder (small steps) or a vector (doubling, step 0) grows.
void BM_ReallocGrowth(benchmark::State& state) {
  const size_t step = static_cast<size_t>(state.range(0));
  const size_t limit = static_cast<size_t>(state.range(1));
  int64_t reallocs = 0;
  for (auto _ : state) {
    size_t size = 16;
    char* p = static_cast<char*>(Malloc(state, size));
    if (p == nullptr) return;
    while (size < limit) {
      size = step == 0 ? size * 2 : size + step;
      char* q = static_cast<char*>(std::realloc(p, size));
      if (q == nullptr) {
        std::free(p);
        state.SkipWithError("realloc returned NULL");
        return;
      }
      p = q;
      p[size - 1] = 1;
      ++reallocs;
    }
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
  state.SetItemsProcessed(reallocs);
}
BENCHMARK(BM_ReallocGrowth)->Apply(bench::ReallocShapes);

// aligned_alloc at several alignments (size 256 B, or the alignment if larger).
void BM_AlignedAlloc(benchmark::State& state) {
  const size_t alignment = static_cast<size_t>(state.range(0));
  const size_t size = alignment > 256 ? alignment : 256;
  for (auto _ : state) {
    char* p = static_cast<char*>(std::aligned_alloc(alignment, size));
    if (p == nullptr || reinterpret_cast<uintptr_t>(p) % alignment != 0) {
      state.SkipWithError("aligned_alloc returned NULL or a misaligned block");
      std::free(p);
      return;
    }
    p[0] = 1;
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AlignedAlloc)->Apply(bench::Alignments);

}  // namespace

BENCHMARK_MAIN();
