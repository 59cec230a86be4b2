// Threads writing their own small objects (the shape of cache-thrash and
// cache-scratch): every thread (THREADS, default 2) allocates a batch of 8-64
// B objects, writes them over and over, sums them and frees them. Two phases:
//   active  — the threads allocate at the same time, so an allocator that
//             carves one cache line for two threads makes them fight over it;
//   passive — the main thread first allocates the batches, interleaved (block
//             k for thread k mod THREADS), each thread frees the blocks it was
//             given and then allocates its own, so an allocator that hands the
//             freed block back to the freeing thread gives neighbouring blocks
//             of one line to different threads.
// Nothing is shared between the threads by the program itself: time spent
// above the single-thread cost is false sharing the allocator made. The
// checksum sums every object's bytes, so a write that landed in another
// thread's object changes it.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <thread>
#include <vector>

#include "workload_common.h"

namespace {

constexpr const char* kName = "ownobjects";
constexpr uint64_t kDefaultThreads = 2;
constexpr size_t kObjects = 64;       // per thread per round
constexpr uint64_t kPasses = 200000;  // writes per object per round
constexpr uint64_t kRoundsPerScale = 2;

size_t SizeOf(size_t j) { return 8 + 8 * (j % 8); }  // 8, 16, ... 64 B

unsigned char* NewObject(size_t size) {
  auto* p = static_cast<unsigned char*>(std::malloc(size));
  if (p == nullptr) bench::OutOfMemory(kName, size);
  std::memset(p, 0, size);
  return p;
}

// Writes the first 8 bytes of each object of the batch kPasses times through
// volatile (so that every write reaches memory), then folds every byte into
// the thread's own sum (a local: the sums array itself must not be shared
// while the threads run) and frees the objects.
uint64_t WriteAndFree(std::vector<unsigned char*>& objects, uint64_t sum) {
  for (uint64_t pass = 0; pass < kPasses; ++pass) {
    for (size_t j = 0; j < objects.size(); ++j) {
      volatile unsigned char* v = objects[j];
      const size_t at = pass & 7;
      v[at] = static_cast<unsigned char>(v[at] + 1 + j);
    }
  }
  for (size_t j = 0; j < objects.size(); ++j) {
    for (size_t k = 0; k < SizeOf(j); ++k) sum = bench::Mix(sum, objects[j][k]);
    std::free(objects[j]);
  }
  objects.clear();
  return sum;
}

// Each phase's threads start together (a latch), so that they do run at the
// same time even on a loaded machine.
void Active(std::latch* start, uint64_t rounds, uint64_t* sum) {
  start->arrive_and_wait();
  uint64_t local = *sum;
  std::vector<unsigned char*> objects;
  for (uint64_t r = 0; r < rounds; ++r) {
    for (size_t j = 0; j < kObjects; ++j) objects.push_back(NewObject(SizeOf(j)));
    local = WriteAndFree(objects, local);
  }
  *sum = local;
}

void Passive(std::latch* start, std::vector<unsigned char*>* given, uint64_t* sum) {
  start->arrive_and_wait();
  for (unsigned char* p : *given) std::free(p);
  given->clear();
  std::vector<unsigned char*> objects;
  for (size_t j = 0; j < kObjects; ++j) objects.push_back(NewObject(SizeOf(j)));
  *sum = WriteAndFree(objects, *sum);
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::ParseArgs(argc, argv, kName);
  const uint64_t threads = args.threads != 0 ? args.threads : kDefaultThreads;
  const uint64_t rounds = args.scale * kRoundsPerScale;
  std::vector<uint64_t> sums(threads, 0);

  std::vector<std::thread> pool;
  std::latch active_start(static_cast<ptrdiff_t>(threads));
  for (uint64_t t = 0; t < threads; ++t) {
    pool.emplace_back(Active, &active_start, rounds, &sums[t]);
  }
  for (auto& t : pool) t.join();

  std::vector<std::vector<unsigned char*>> given(threads);
  for (uint64_t r = 0; r < rounds; ++r) {
    for (size_t j = 0; j < kObjects; ++j) {
      for (uint64_t t = 0; t < threads; ++t) given[t].push_back(NewObject(SizeOf(j)));
    }
    pool.clear();
    std::latch start(static_cast<ptrdiff_t>(threads));
    for (uint64_t t = 0; t < threads; ++t) pool.emplace_back(Passive, &start, &given[t], &sums[t]);
    for (auto& t : pool) t.join();
  }

  uint64_t sum = threads;
  for (uint64_t s : sums) sum = bench::Mix(sum, s);
  bench::PrintChecksum(sum);
  return 0;
}
