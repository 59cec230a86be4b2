// Larson-style server (larson.cc, larson_sized.cc): many worker threads, each owning an array of
// slots, keep replacing a random slot with a block of random size, so blocks have random lifetimes.
// One block in eight is handed to another worker to free (a request allocated on one thread and
// retired on another), and every epoch the threads exit and fresh ones take over their slots, as a
// server's pool threads come and go. Every block carries its id and is checked when freed.
//
// Two ways to allocate: malloc/free (larson), or ::operator new(n) with the
// sized ::operator delete(p, n) a C++ server's containers use (larson-sized).
// Both print "ops=N" (blocks allocated and freed) besides the checksum, for
// the throughput column.
#ifndef EXECMEM_BENCH_WORKLOADS_LARSON_H_
#define EXECMEM_BENCH_WORKLOADS_LARSON_H_

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "workload_common.h"

namespace larson {

enum class Api { kMalloc, kSizedDelete };

constexpr uint64_t kDefaultThreads = 8;
constexpr size_t kSlots = 2000;
constexpr uint64_t kOpsPerEpoch = 60000;
constexpr uint64_t kEpochsPerScale = 8;
constexpr uint64_t kHandOffOneIn = 8;
constexpr size_t kHandOffBatch = 64;
constexpr uint64_t kDrainEvery = 256;

struct Header {
  uint64_t id;
  uint32_t size;
};

struct Worker {
  explicit Worker(uint64_t index) : rng(0x1a750 + index), slots(kSlots, nullptr) {}
  bench::Rng rng;
  std::vector<char*> slots;
  std::vector<char*> outbox;  // blocks on their way to the next worker
  std::mutex inbox_mu;
  std::vector<char*> inbox;  // guarded by inbox_mu
  uint64_t next_id = 0;
  uint64_t allocated_sum = 0;
  uint64_t freed_sum = 0;
  uint64_t corrupt = 0;
};

inline size_t PickSize(bench::Rng& rng) {
  const uint64_t r = rng.Next() % 100;
  if (r < 90) return rng.Range(16, 512);
  if (r < 99) return rng.Range(513, 4096);
  return rng.Range(4097, 65536);
}

template <Api kApi>
char* NewBlock(Worker& w, uint64_t worker_index) {
  const size_t size = PickSize(w.rng);
  char* p = nullptr;
  if constexpr (kApi == Api::kMalloc) {
    p = static_cast<char*>(std::malloc(size));
  } else {
    p = static_cast<char*>(::operator new(size, std::nothrow));
  }
  if (p == nullptr) bench::OutOfMemory("larson", size);
  const Header h{(worker_index << 40) | w.next_id++, static_cast<uint32_t>(size)};
  std::memcpy(p, &h, sizeof h);
  p[size - 1] = static_cast<char>(h.id);
  w.allocated_sum += h.id;
  return p;
}

// Frees a block after checking that nobody wrote over it; sums what it freed
// into `freer` (any worker: the sums are compared only in total).
template <Api kApi>
void FreeBlock(Worker& freer, char* p) {
  Header h;
  std::memcpy(&h, p, sizeof h);
  if (h.size < 16 || h.size > 65536 || p[h.size - 1] != static_cast<char>(h.id)) ++freer.corrupt;
  freer.freed_sum += h.id;
  if constexpr (kApi == Api::kMalloc) {
    std::free(p);
  } else {
    ::operator delete(p, h.size);
  }
}

template <Api kApi>
void Drain(Worker& w) {
  std::vector<char*> got;
  {
    std::lock_guard<std::mutex> lock(w.inbox_mu);
    got.swap(w.inbox);
  }
  for (char* p : got) FreeBlock<kApi>(w, p);
}

void SendOutbox(Worker& from, Worker& to) {
  if (from.outbox.empty()) return;
  std::lock_guard<std::mutex> lock(to.inbox_mu);
  to.inbox.insert(to.inbox.end(), from.outbox.begin(), from.outbox.end());
  from.outbox.clear();
}

template <Api kApi>
void RunEpoch(std::deque<Worker>& workers, uint64_t index) {
  Worker& w = workers[index];
  Worker& next = workers[(index + 1) % workers.size()];
  for (uint64_t op = 0; op < kOpsPerEpoch; ++op) {
    char*& slot = w.slots[w.rng.Next() % kSlots];
    if (slot != nullptr) {
      if (w.rng.Next() % kHandOffOneIn == 0) {
        w.outbox.push_back(slot);
        if (w.outbox.size() >= kHandOffBatch) SendOutbox(w, next);
      } else {
        FreeBlock<kApi>(w, slot);
      }
    }
    slot = NewBlock<kApi>(w, index);
    if (op % kDrainEvery == 0) Drain<kApi>(w);
  }
  SendOutbox(w, next);
}

// The program: larson NAME [SCALE] [THREADS].
template <Api kApi>
int Main(int argc, char** argv, std::string_view name) {
  const bench::Args args = bench::ParseArgs(argc, argv, name);
  const uint64_t threads = args.threads != 0 ? args.threads : kDefaultThreads;
  std::deque<Worker> workers;  // a deque: Worker holds a mutex and cannot move
  for (uint64_t i = 0; i < threads; ++i) workers.emplace_back(i);

  for (uint64_t epoch = 0; epoch < args.scale * kEpochsPerScale; ++epoch) {
    std::vector<std::thread> pool;
    for (uint64_t i = 0; i < threads; ++i) {
      pool.emplace_back(RunEpoch<kApi>, std::ref(workers), i);
    }
    for (auto& t : pool) t.join();
  }

  uint64_t allocated = 0, freed = 0, corrupt = 0;
  for (Worker& w : workers) {
    Drain<kApi>(w);
    for (char*& p : w.slots) {
      if (p != nullptr) FreeBlock<kApi>(w, p);
    }
  }
  for (Worker& w : workers) {
    allocated += w.allocated_sum;
    freed += w.freed_sum;
    corrupt += w.corrupt;
  }
  if (corrupt != 0 || allocated != freed) {
    std::fprintf(
        stderr, "%.*s: %llu corrupted blocks, id sums allocated %llx freed %llx\n",
        static_cast<int>(name.size()), name.data(), static_cast<unsigned long long>(corrupt),
        static_cast<unsigned long long>(allocated), static_cast<unsigned long long>(freed));
    return 1;
  }
  bench::PrintOps(threads * args.scale * kEpochsPerScale * kOpsPerEpoch);
  bench::PrintChecksum(bench::Mix(allocated, threads));
  return 0;
}

}  // namespace larson

#endif  // EXECMEM_BENCH_WORKLOADS_LARSON_H_
