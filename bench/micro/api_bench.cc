// execmem-bench-api: the C++ API measured directly (execmem::allocate /
// deallocate), thread-bound executor switching, and every shape once with
// quotas off and once on, so that the cost of budgets is a number:
//   quota:0  the thread is unbound and allocates for the default executor,
//            whose budgets (1g initial / 4g max) these loops never approach;
//   quota:1  the thread is bound to an executor with initial 16m and max 256m:
//            the 64 KiB batches cross initial, so growth grants are exercised,
//            but max is never reached (no spills, no failures).
// Items are allocate+deallocate pairs, as in execmem-bench-micro.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "execmem.hpp"
#include "micro_common.h"

namespace {

struct Executors {
  std::optional<execmem::Executor> quota;
  std::optional<execmem::Executor> switch_a;
  std::optional<execmem::Executor> switch_b;
  std::string error;  // why they could not be created; empty when they were
};

const Executors& GetExecutors() {
  static const Executors* executors = [] {
    auto* e = new Executors;  // never destroyed: benchmarks may run until exit
    auto make = [&](std::optional<execmem::Executor>& slot, const char* name, const char* initial,
                    const char* max) {
      execmem::ExecutorConfig config;
      config.name = name;
      config.initial = initial;
      config.max = max;
      auto created = execmem::Executor::Create(config);
      if (!created.ok()) {
        e->error =
            std::string("cannot create executor ") + name + ": " + created.status().ToString();
        return;
      }
      slot.emplace(std::move(*created));
    };
    make(e->quota, "bench-quota", "16m", "256m");
    make(e->switch_a, "bench-switch-a", "64m", "256m");
    make(e->switch_b, "bench-switch-b", "64m", "256m");
    return e;
  }();
  return *executors;
}

// Binds the benchmark thread for quota:1; leaves it unbound for quota:0.
// For quota:1 it also reports the quota executor's peak of live bytes so far
// (counter quota_peak_used_mib), the evidence that the budgets were exercised
// (above initial) and never hit (below max).
class QuotaBinding {
 public:
  QuotaBinding(benchmark::State& state, int64_t quota) : state_(state) {
    const Executors& e = GetExecutors();
    if (!e.error.empty()) {
      state.SkipWithError(e.error.c_str());
      ok_ = false;
      return;
    }
    if (quota != 0) scope_.emplace(*e.quota);
  }
  ~QuotaBinding() {
    if (!scope_) return;
    const execmem_executor_stats_t stats = GetExecutors().quota->Stats();
    state_.counters["quota_peak_used_mib"] = static_cast<double>(stats.peak_used) / (1 << 20);
    state_.counters["quota_ooms"] = static_cast<double>(stats.oom_count);
  }
  QuotaBinding(const QuotaBinding&) = delete;
  QuotaBinding& operator=(const QuotaBinding&) = delete;
  bool ok() const { return ok_; }

 private:
  benchmark::State& state_;
  std::optional<execmem::ExecutorScope> scope_;
  bool ok_ = true;
};

void* Allocate(benchmark::State& state, size_t size) {
  try {
    return execmem::allocate(size);
  } catch (const std::bad_alloc& e) {
    state.SkipWithError(e.what());
    return nullptr;
  }
}

void WithQuota(benchmark::internal::Benchmark* b, std::vector<int64_t> args) {
  for (int64_t quota : {0, 1}) {
    std::vector<int64_t> with = args;
    with.push_back(quota);
    b->Args(with);
  }
}

void BM_ApiAllocate(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  QuotaBinding binding(state, state.range(1));
  if (!binding.ok()) return;
  for (auto _ : state) {
    char* p = static_cast<char*>(Allocate(state, size));
    if (p == nullptr) break;
    p[0] = 1;
    benchmark::DoNotOptimize(p);
    execmem::deallocate(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ApiAllocate)->ArgNames({"size", "quota"})->Apply([](auto* b) {
  for (int64_t size : {16, 64, 256, 1024, 4096, 65536, 1 << 20}) WithQuota(b, {size});
});

void BM_ApiAllocateSized(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  QuotaBinding binding(state, state.range(1));
  if (!binding.ok()) return;
  for (auto _ : state) {
    char* p = static_cast<char*>(Allocate(state, size));
    if (p == nullptr) break;
    p[0] = 1;
    benchmark::DoNotOptimize(p);
    execmem::deallocate(p, size);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ApiAllocateSized)->ArgNames({"size", "quota"})->Apply([](auto* b) {
  for (int64_t size : {64, 1024}) WithQuota(b, {size});
});

void BM_ApiMixedSmallLifo(benchmark::State& state) {
  QuotaBinding binding(state, state.range(0));
  if (!binding.ok()) return;
  const bench::SizeTable sizes;
  size_t i = 0;
  for (auto _ : state) {
    char* p = static_cast<char*>(Allocate(state, sizes[i++]));
    if (p == nullptr) break;
    p[0] = 1;
    benchmark::DoNotOptimize(p);
    execmem::deallocate(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ApiMixedSmallLifo)->ArgNames({"quota"})->Apply([](auto* b) { WithQuota(b, {}); });

void BM_ApiBatch(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  QuotaBinding binding(state, state.range(1));
  if (!binding.ok()) return;
  std::vector<void*> blocks(bench::kBatch);
  for (auto _ : state) {
    for (auto& b : blocks) {
      b = Allocate(state, size);
      if (b == nullptr) return;
      static_cast<char*>(b)[0] = 1;
    }
    benchmark::ClobberMemory();
    for (void* b : blocks) execmem::deallocate(b);
  }
  state.SetItemsProcessed(state.iterations() * bench::kBatch);
}
BENCHMARK(BM_ApiBatch)->ArgNames({"size", "quota"})->Apply([](auto* b) {
  for (int64_t size : {64, 4096, 65536}) WithQuota(b, {size});
});

void FreeBlock(void* p) { execmem::deallocate(p); }

// The producer is bound (quota:1); the consumer thread is not: its frees go
// back to the executor that owns each block.
void BM_ApiCrossThread(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  QuotaBinding binding(state, state.range(1));
  if (!binding.ok()) return;
  bench::CrossThreadFreer freer(&FreeBlock);
  for (auto _ : state) {
    void** batch = freer.AcquireEmpty();
    for (size_t i = 0; i < bench::kBatch; ++i) {
      batch[i] = Allocate(state, size);
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
BENCHMARK(BM_ApiCrossThread)
    ->ArgNames({"size", "quota"})
    ->Apply([](auto* b) {
      for (int64_t size : {64, 1024}) WithQuota(b, {size});
    }) -> UseRealTime();

void BM_ApiReallocGrowth(benchmark::State& state) {
  const size_t step = static_cast<size_t>(state.range(0));
  const size_t limit = static_cast<size_t>(state.range(1));
  QuotaBinding binding(state, state.range(2));
  if (!binding.ok()) return;
  int64_t reallocs = 0;
  for (auto _ : state) {
    size_t size = 16;
    char* p = static_cast<char*>(Allocate(state, size));
    if (p == nullptr) return;
    while (size < limit) {
      size = step == 0 ? size * 2 : size + step;
      try {
        p = static_cast<char*>(execmem::reallocate(p, size));
      } catch (const std::bad_alloc& e) {
        execmem::deallocate(p);
        state.SkipWithError(e.what());
        return;
      }
      p[size - 1] = 1;
      ++reallocs;
    }
    benchmark::DoNotOptimize(p);
    execmem::deallocate(p);
  }
  state.SetItemsProcessed(reallocs);
}
BENCHMARK(BM_ApiReallocGrowth)->ArgNames({"step", "limit", "quota"})->Apply([](auto* b) {
  WithQuota(b, {64, 64 << 10});
  WithQuota(b, {0, 1 << 20});
});

void BM_ApiAligned(benchmark::State& state) {
  const size_t alignment = static_cast<size_t>(state.range(0));
  const size_t size = alignment > 256 ? alignment : 256;
  QuotaBinding binding(state, state.range(1));
  if (!binding.ok()) return;
  for (auto _ : state) {
    char* p;
    try {
      p = static_cast<char*>(execmem::allocate_aligned(size, alignment));
    } catch (const std::bad_alloc& e) {
      state.SkipWithError(e.what());
      return;
    }
    if (reinterpret_cast<uintptr_t>(p) % alignment != 0) {
      state.SkipWithError("allocate_aligned returned a misaligned block");
      execmem::deallocate(p);
      return;
    }
    p[0] = 1;
    benchmark::DoNotOptimize(p);
    execmem::deallocate(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ApiAligned)->ArgNames({"alignment", "quota"})->Apply([](auto* b) {
  for (int64_t alignment : {64, 4096}) WithQuota(b, {alignment});
});

// ---- executor switching ----------------------------------------------------

// Bind and restore, nothing else: the price of an ExecutorScope.
void BM_ExecutorScope(benchmark::State& state) {
  const Executors& e = GetExecutors();
  if (!e.error.empty()) return state.SkipWithError(e.error.c_str());
  for (auto _ : state) {
    execmem::ExecutorScope scope(*e.switch_a);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ExecutorScope);

// A 64 B pair under a different executor each iteration (A, B, A, B ...), as
// a worker thread does when it runs tasks of different executors in turn.
void BM_ExecutorSwitchAlloc(benchmark::State& state) {
  const Executors& e = GetExecutors();
  if (!e.error.empty()) return state.SkipWithError(e.error.c_str());
  const execmem::Executor* both[2] = {&*e.switch_a, &*e.switch_b};
  size_t i = 0;
  for (auto _ : state) {
    execmem::ExecutorScope scope(*both[i++ & 1]);
    char* p = static_cast<char*>(Allocate(state, 64));
    if (p == nullptr) break;
    p[0] = 1;
    benchmark::DoNotOptimize(p);
    execmem::deallocate(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ExecutorSwitchAlloc);

// The same pair and scope with no switch (always A): the baseline for the above.
void BM_ExecutorSameAlloc(benchmark::State& state) {
  const Executors& e = GetExecutors();
  if (!e.error.empty()) return state.SkipWithError(e.error.c_str());
  for (auto _ : state) {
    execmem::ExecutorScope scope(*e.switch_a);
    char* p = static_cast<char*>(Allocate(state, 64));
    if (p == nullptr) break;
    p[0] = 1;
    benchmark::DoNotOptimize(p);
    execmem::deallocate(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ExecutorSameAlloc);

}  // namespace

BENCHMARK_MAIN();
