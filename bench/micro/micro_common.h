// Shapes shared by execmem-bench-micro (malloc through LD_PRELOAD) and
// execmem-bench-api (the C++ API), so that their numbers line up row by row.
#ifndef EXECMEM_BENCH_MICRO_MICRO_COMMON_H_
#define EXECMEM_BENCH_MICRO_MICRO_COMMON_H_

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>

namespace bench {

inline constexpr size_t kBatch = 1000;

inline void PowersOfTwo16ToMiB(benchmark::internal::Benchmark* b) {
  for (int64_t size = 16; size <= (int64_t{1} << 20); size *= 2) b->Arg(size);
}
inline void BatchSizes(benchmark::internal::Benchmark* b) {
  for (int64_t size : {16, 64, 256, 1024, 4096, 16384, 65536}) b->Arg(size);
}
inline void CrossThreadSizes(benchmark::internal::Benchmark* b) {
  for (int64_t size : {64, 1024}) b->Arg(size);
}
// {step, limit}: step 0 doubles (vector growth), else grows by step (string builder).
inline void ReallocShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"step", "limit"});
  b->Args({64, 64 << 10});
  b->Args({0, 1 << 20});
}
inline void Alignments(benchmark::internal::Benchmark* b) {
  for (int64_t alignment : {16, 64, 4096, 65536}) b->Arg(alignment);
}

// The mixed 16-512 B sizes of bench/tools/pairs.c (same generator, same table).
class SizeTable {
 public:
  SizeTable() {
    uint32_t x = 12345;
    for (auto& s : sizes_) {
      x = x * 1103515245u + 12345u;
      s = 16 + (x >> 8) % 497;
    }
  }
  size_t operator[](size_t i) const { return sizes_[i % kCount]; }

 private:
  static constexpr size_t kCount = 64;
  std::array<size_t, kCount> sizes_;
};

// A consumer thread that frees the batches a producer publishes: a ring of a
// few fixed batches, so the hand-off itself allocates nothing. Single producer,
// single consumer; a slot's `full` flag is the only synchronisation
// (release on publish / on emptying, acquire on the other side).
class CrossThreadFreer {
 public:
  using FreeFn = void (*)(void*);

  explicit CrossThreadFreer(FreeFn free_fn) : free_(free_fn), consumer_([this] { Consume(); }) {}
  ~CrossThreadFreer() {
    Drain();
    stop_.store(true, std::memory_order_release);
    consumer_.join();
  }
  CrossThreadFreer(const CrossThreadFreer&) = delete;
  CrossThreadFreer& operator=(const CrossThreadFreer&) = delete;

  // The next slot to fill, once the consumer has emptied it.
  void** AcquireEmpty() {
    Slot& slot = ring_[head_ % kRing];
    Wait([&] { return !slot.full.load(std::memory_order_acquire); });
    return slot.blocks.data();
  }
  void Publish(size_t count) {
    Slot& slot = ring_[head_++ % kRing];
    slot.count = count;
    slot.full.store(true, std::memory_order_release);
  }
  void Drain() {
    for (Slot& slot : ring_) Wait([&] { return !slot.full.load(std::memory_order_acquire); });
  }

 private:
  static constexpr size_t kRing = 4;
  struct Slot {
    std::atomic<bool> full{false};
    size_t count = 0;
    std::array<void*, kBatch> blocks{};
  };

  template <typename Ready>
  static void Wait(Ready ready) {
    for (int spins = 0; !ready(); ++spins) {
      if (spins > 64) std::this_thread::yield();
    }
  }

  void Consume() {
    for (size_t tail = 0;; ++tail) {
      Slot& slot = ring_[tail % kRing];
      for (int spins = 0; !slot.full.load(std::memory_order_acquire); ++spins) {
        if (stop_.load(std::memory_order_acquire)) return;
        if (spins > 64) std::this_thread::yield();
      }
      for (size_t i = 0; i < slot.count; ++i) free_(slot.blocks[i]);
      slot.full.store(false, std::memory_order_release);
    }
  }

  FreeFn free_;
  std::array<Slot, kRing> ring_;
  size_t head_ = 0;  // producer only
  std::atomic<bool> stop_{false};
  std::thread consumer_;  // last: starts after the ring exists
};

}  // namespace bench

#endif  // EXECMEM_BENCH_MICRO_MICRO_COMMON_H_
