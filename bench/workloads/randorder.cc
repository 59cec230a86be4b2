// Random sizes allocated and freed in random order: each thread (THREADS,
// default 1; bench/run.sh's randorder-mt runs 2) keeps its own working set of
// slots and, op after op, frees the block in a random slot and puts a new one
// of a random size there — mostly 8 B - 1 KiB, one in a hundred up to 64 KiB —
// so that lifetimes are random and sizes mixed, with no thread sharing a block.
// Every block carries its size and a tag at both ends, checked when freed.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "workload_common.h"

namespace {

constexpr const char* kName = "randorder";
constexpr uint64_t kDefaultThreads = 1;
constexpr size_t kSlots = 20000;
constexpr uint64_t kOpsPerScale = 600000;
constexpr size_t kMinSize = 8;
constexpr size_t kSmallMax = 1024;
constexpr size_t kLargeMax = 64 << 10;
constexpr uint64_t kLargeOneIn = 100;

struct Result {
  uint64_t sum = 0;
  uint64_t corrupt = 0;
};

size_t PickSize(bench::Rng& rng) {
  if (rng.Next() % kLargeOneIn == 0) return rng.Range(kSmallMax + 1, kLargeMax);
  return rng.Range(kMinSize, kSmallMax);
}

// A block of `size` >= 8 bytes: its size in the first 4 bytes (a tag byte in
// the next), the tag again in its last byte.
char* NewBlock(bench::Rng& rng) {
  const size_t size = PickSize(rng);
  char* p = static_cast<char*>(std::malloc(size));
  if (p == nullptr) bench::OutOfMemory(kName, size);
  const uint32_t size32 = static_cast<uint32_t>(size);
  const char tag = static_cast<char>(rng.Next());
  std::memcpy(p, &size32, sizeof size32);
  p[4] = tag;
  p[size - 1] = tag;
  return p;
}

void FreeBlock(char* p, Result& r) {
  uint32_t size;
  std::memcpy(&size, p, sizeof size);
  if (size < kMinSize || size > kLargeMax || p[size - 1] != p[4]) ++r.corrupt;
  r.sum = bench::Mix(r.sum, (uint64_t{size} << 8) | static_cast<unsigned char>(p[4]));
  std::free(p);
}

void Run(uint64_t index, uint64_t ops, Result* result) {
  bench::Rng rng(0x7a9d0 + index);
  std::vector<char*> slots(kSlots, nullptr);
  Result r;
  for (uint64_t op = 0; op < ops; ++op) {
    char*& slot = slots[rng.Next() % kSlots];
    if (slot != nullptr) FreeBlock(slot, r);
    slot = NewBlock(rng);
  }
  for (char* p : slots) {
    if (p != nullptr) FreeBlock(p, r);
  }
  *result = r;
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::ParseArgs(argc, argv, kName);
  const uint64_t threads = args.threads != 0 ? args.threads : kDefaultThreads;
  const uint64_t ops = args.scale * kOpsPerScale;
  std::vector<Result> results(threads);
  std::vector<std::thread> pool;
  for (uint64_t i = 0; i < threads; ++i) pool.emplace_back(Run, i, ops, &results[i]);
  for (auto& t : pool) t.join();
  uint64_t sum = threads, corrupt = 0;
  for (const Result& r : results) {
    sum = bench::Mix(sum, r.sum);
    corrupt += r.corrupt;
  }
  if (corrupt != 0) {
    std::fprintf(stderr, "%s: %llu corrupted blocks\n", kName,
                 static_cast<unsigned long long>(corrupt));
    return 1;
  }
  bench::PrintOps(threads * ops);
  bench::PrintChecksum(sum);
  return 0;
}
