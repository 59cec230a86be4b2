// Shuffle buffers, the shape of a map task's shuffle write: records are routed
// to many partitions, each an append-only buffer grown with realloc (the
// allocator's realloc-in-place matters here); big records live in their own
// blocks. A partition that grows past its limit is spilled alone, and when all
// buffers together pass the spill threshold every partition is flushed and freed
// in one batch, as a task does at its end.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "workload_common.h"

namespace {

constexpr size_t kPartitions = 200;
constexpr uint64_t kRecordsPerTask = 300000;
constexpr uint64_t kTasksPerScale = 6;
constexpr size_t kInitialBuffer = 1024;
constexpr size_t kPartitionSpill = size_t{1} << 20;
constexpr size_t kTaskSpill = size_t{48} << 20;
constexpr size_t kSourceBytes = size_t{64} << 10;

struct Partition {
  char* buffer = nullptr;
  size_t used = 0;
  size_t capacity = 0;
  uint64_t records = 0;
  std::vector<char*> large;  // records too big for the buffer
  std::vector<size_t> large_sizes;
};

[[noreturn]] void OutOfMemory(size_t bytes) {
  std::fprintf(stderr, "shuffle: allocation of %zu bytes failed\n", bytes);
  std::exit(1);
}

class Shuffle {
 public:
  Shuffle() : partitions_(kPartitions), source_(kSourceBytes) {
    bench::Rng rng(0xdada);
    for (auto& c : source_) c = static_cast<char>(rng.Next());
  }

  void Append(size_t p, const char* data, size_t len, bool large) {
    Partition& part = partitions_[p];
    if (large) {
      char* block = static_cast<char*>(std::malloc(len));
      if (block == nullptr) OutOfMemory(len);
      std::memcpy(block, data, len);
      part.large.push_back(block);
      part.large_sizes.push_back(len);
      buffered_ += len;
    } else {
      if (part.used + len > part.capacity) {
        size_t cap = part.capacity == 0 ? kInitialBuffer : part.capacity * 2;
        while (cap < part.used + len) cap *= 2;
        char* grown = static_cast<char*>(std::realloc(part.buffer, cap));
        if (grown == nullptr) OutOfMemory(cap);
        buffered_ += cap - part.capacity;
        part.buffer = grown;
        part.capacity = cap;
      }
      std::memcpy(part.buffer + part.used, data, len);
      part.used += len;
    }
    ++part.records;
    if (part.capacity >= kPartitionSpill) Flush(part);
    if (buffered_ >= kTaskSpill) FlushAll();
  }

  void FlushAll() {
    for (Partition& part : partitions_) Flush(part);
  }

  const std::vector<char>& source() const { return source_; }
  uint64_t checksum() const { return checksum_; }

 private:
  // "Writes" the partition (folds a sample of its bytes into the checksum) and frees it.
  void Flush(Partition& part) {
    if (part.records == 0) return;
    uint64_t h = bench::Mix(part.used, part.records);
    for (size_t off = 0; off + 8 <= part.used; off += 4096) {
      uint64_t word;
      std::memcpy(&word, part.buffer + off, sizeof word);
      h = bench::Mix(h, word);
    }
    for (size_t i = 0; i < part.large.size(); ++i) {
      uint64_t word;
      std::memcpy(&word, part.large[i], sizeof word);
      h = bench::Mix(h, word ^ part.large_sizes[i]);
      std::free(part.large[i]);
      buffered_ -= part.large_sizes[i];
    }
    std::free(part.buffer);
    buffered_ -= part.capacity;
    checksum_ = bench::Mix(checksum_, h);
    part = Partition{};
  }

  std::vector<Partition> partitions_;
  std::vector<char> source_;
  size_t buffered_ = 0;
  uint64_t checksum_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::ParseArgs(argc, argv, "shuffle");
  uint64_t checksum = 0;
  for (uint64_t task = 0; task < args.scale * kTasksPerScale; ++task) {
    bench::Rng rng(0x5a0f + task);
    Shuffle shuffle;
    const char* source = shuffle.source().data();
    for (uint64_t r = 0; r < kRecordsPerTask; ++r) {
      const bool large = rng.Next() % 100 == 0;
      const size_t len = large ? rng.Range(1024, 32768) : rng.Range(16, 256);
      const size_t offset = rng.Next() % (kSourceBytes - len);
      shuffle.Append(rng.Next() % kPartitions, source + offset, len, large);
    }
    shuffle.FlushAll();
    checksum = bench::Mix(checksum, shuffle.checksum());
  }
  bench::PrintChecksum(checksum);
  return 0;
}
