// Many small objects freed out of order, one thread (the shape of
// mimalloc-bench's alloc-test and cfrac): a working set of a few hundred
// thousand live objects of 16-256 B; every round the set is shuffled and a
// part of it, in that shuffled order, is freed and replaced by new objects of
// other sizes, so that frees land all over the allocator's spans instead of in
// the one it allocates from. At the end everything is freed in shuffled
// order. Every object carries its size and a pattern, checked when freed.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "workload_common.h"

namespace {

constexpr const char* kName = "outoforder";
constexpr size_t kLive = 200000;
constexpr size_t kMinSize = 16;
constexpr size_t kMaxSize = 256;
constexpr uint64_t kRoundsPerScale = 3;
// Each round frees and replaces kLive * kReplacedPerMille / 1000 objects.
constexpr uint64_t kReplacedPerMille = 500;

struct Object {
  uint32_t size;
  uint32_t tag;
};

class Set {
 public:
  Set() : rng_(0x0f0f0), objects_(kLive) {
    for (char*& p : objects_) p = New();
  }

  void Round() {
    bench::Shuffle(objects_.data(), objects_.size(), rng_);
    const size_t replaced = kLive * kReplacedPerMille / 1000;
    for (size_t i = 0; i < replaced; ++i) {
      Free(objects_[i]);
      objects_[i] = New();
    }
  }

  void FreeAll() {
    bench::Shuffle(objects_.data(), objects_.size(), rng_);
    for (char* p : objects_) Free(p);
    objects_.clear();
  }

  uint64_t ops() const { return ops_; }
  uint64_t sum() const { return sum_; }
  uint64_t corrupt() const { return corrupt_; }

 private:
  char* New() {
    const size_t size = rng_.Range(kMinSize, kMaxSize);
    char* p = static_cast<char*>(std::malloc(size));
    if (p == nullptr) bench::OutOfMemory(kName, size);
    const Object o{static_cast<uint32_t>(size), static_cast<uint32_t>(rng_.Next())};
    std::memcpy(p, &o, sizeof o);
    p[size - 1] = static_cast<char>(o.tag);
    ++ops_;
    return p;
  }

  void Free(char* p) {
    Object o;
    std::memcpy(&o, p, sizeof o);
    if (o.size < kMinSize || o.size > kMaxSize || p[o.size - 1] != static_cast<char>(o.tag)) {
      ++corrupt_;
    }
    sum_ = bench::Mix(sum_, (uint64_t{o.size} << 32) | o.tag);
    std::free(p);
  }

  bench::Rng rng_;
  std::vector<char*> objects_;
  uint64_t ops_ = 0;
  uint64_t sum_ = 0;
  uint64_t corrupt_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::ParseArgs(argc, argv, kName);
  Set set;
  for (uint64_t r = 0; r < args.scale * kRoundsPerScale; ++r) set.Round();
  set.FreeAll();
  if (set.corrupt() != 0) {
    std::fprintf(stderr, "%s: %llu corrupted objects\n", kName,
                 static_cast<unsigned long long>(set.corrupt()));
    return 1;
  }
  bench::PrintOps(set.ops());
  bench::PrintChecksum(set.sum());
  return 0;
}
