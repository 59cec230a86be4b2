// A randomized model test: a seeded sequence of malloc / calloc / realloc /
// aligned_alloc / posix_memalign / free with sizes mostly small, some large
// and rarely huge, checked against a shadow of what must be true:
//  * every live block keeps the pattern written into it (checked on free and
//    on realloc, for the bytes realloc must preserve);
//  * no two live blocks overlap, usable sizes included (an ordered map of
//    [start, start + usable));
//  * usable_size >= the request, alignment as asked, calloc memory is zero,
//    execmem_owns() agrees;
//  * at the end, with everything freed, the executor's used is back where it was.
// A failure names the seed and the operation's index, so it can be replayed.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "execmem.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace {

using execmem::test_support::kSanitized;

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * kKiB;
constexpr size_t kMaxLive = 20000;
constexpr size_t kMaxLiveBytes = 768 * kMiB;
constexpr size_t kMaxLiveHuge = 2;
constexpr size_t kHugeMin = 64 * kMiB;

// The bytes a pattern covers: all of a small block; the ends and a stripe per
// 64 KiB of a big one (filling 100 MiB blocks in full would dominate the run).
template <typename Fn>
void ForEachPatterned(size_t size, size_t limit, Fn fn) {
  const size_t end = std::min(size, limit);
  if (size <= 16 * kKiB) {
    for (size_t i = 0; i < end; ++i) fn(i);
    return;
  }
  for (size_t i = 0; i < 4 * kKiB && i < end; ++i) fn(i);
  for (size_t s = 64 * kKiB; s + 64 <= size - 4 * kKiB; s += 64 * kKiB) {
    for (size_t i = s; i < s + 64 && i < end; ++i) fn(i);
  }
  for (size_t i = size - 4 * kKiB; i < end; ++i) fn(i);
}

uint8_t PatternAt(uint32_t seed, size_t i) {
  return static_cast<uint8_t>(seed + i * 131 + (i >> 8) * 7);
}

void Fill(void* p, size_t size, uint32_t seed) {
  auto* m = static_cast<uint8_t*>(p);
  ForEachPatterned(size, size, [&](size_t i) { m[i] = PatternAt(seed, i); });
}

// Index of the first byte (below limit) that lost its pattern, or SIZE_MAX.
size_t FirstBad(const void* p, size_t size, uint32_t seed, size_t limit) {
  const auto* m = static_cast<const uint8_t*>(p);
  size_t bad = SIZE_MAX;
  ForEachPatterned(size, limit, [&](size_t i) {
    if (bad == SIZE_MAX && m[i] != PatternAt(seed, i)) bad = i;
  });
  return bad;
}

struct Block {
  void* p;
  size_t size;
  uint32_t seed;
};

// The shadow: live blocks by address, and a vector to pick from at random.
class Shadow {
 public:
  // Adds [p, p + usable); false (with why) if it overlaps a live block.
  bool Insert(const Block& b, std::string* why) {
    const uintptr_t s = reinterpret_cast<uintptr_t>(b.p);
    const uintptr_t e = s + execmem_usable_size(b.p);
    auto next = ranges_.lower_bound(s);
    if (next != ranges_.end() && next->first < e) {
      *why = "overlaps the live block at " + std::to_string(next->first);
      return false;
    }
    if (next != ranges_.begin() && std::prev(next)->second.end > s) {
      *why = "overlaps the live block at " + std::to_string(std::prev(next)->first);
      return false;
    }
    ranges_.emplace(s, Range{e, blocks_.size()});
    blocks_.push_back(b);
    bytes_ += b.size;
    if (b.size >= kHugeMin) ++huge_;
    return true;
  }

  Block TakeAt(size_t i) {
    const Block b = blocks_[i];
    ranges_.erase(reinterpret_cast<uintptr_t>(b.p));
    if (i + 1 != blocks_.size()) {
      blocks_[i] = blocks_.back();
      ranges_.at(reinterpret_cast<uintptr_t>(blocks_[i].p)).index = i;
    }
    blocks_.pop_back();
    bytes_ -= b.size;
    if (b.size >= kHugeMin) --huge_;
    return b;
  }

  size_t count() const { return blocks_.size(); }
  size_t bytes() const { return bytes_; }
  size_t huge() const { return huge_; }

 private:
  struct Range {
    uintptr_t end;
    size_t index;
  };
  std::map<uintptr_t, Range> ranges_;
  std::vector<Block> blocks_;
  size_t bytes_ = 0;
  size_t huge_ = 0;
};

enum class Op { kMalloc, kCalloc, kAligned, kMemalign, kRealloc, kFree };

class Model {
 public:
  explicit Model(uint64_t seed) : rng_(seed) {}

  size_t Size(bool allow_huge) {
    const uint32_t r = rng_() % 1000;
    if (r < 700) return 1 + rng_() % 256;
    if (r < 900) return 1 + rng_() % 4096;
    if (r < 980) return 1 + rng_() % (256 * kKiB);
    if (r < 999 || !allow_huge) return 256 * kKiB + rng_() % (4 * kMiB);
    return kHugeMin + rng_() % (40 * kMiB);
  }

  Op NextOp(const Shadow& live) {
    if (live.count() == 0) return Op::kMalloc;
    if (live.count() >= kMaxLive || live.bytes() >= kMaxLiveBytes) return Op::kFree;
    const uint32_t r = rng_() % 100;
    if (r < 38) return Op::kMalloc;
    if (r < 45) return Op::kCalloc;
    if (r < 50) return Op::kAligned;
    if (r < 53) return Op::kMemalign;
    if (r < 63) return Op::kRealloc;
    return Op::kFree;
  }

  size_t Alignment() { return size_t{1} << (3 + rng_() % 19); }  // 8 .. 2 MiB
  size_t Pick(size_t n) { return rng_() % n; }
  uint32_t Seed() { return static_cast<uint32_t>(rng_()); }

 private:
  std::mt19937_64 rng_;
};

// Checks a fresh block; returns an empty string when it is fine.
std::string CheckFresh(void* p, size_t size, size_t alignment) {
  if (p == nullptr) return "allocation of " + std::to_string(size) + " failed";
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a % alignment != 0) return "misaligned for " + std::to_string(alignment);
  if (size % 16 == 0 && a % 16 != 0) return "a multiple of 16 bytes not 16-aligned";
  if (execmem_usable_size(p) < size) return "usable size below the request";
  if (!execmem_owns(p)) return "execmem_owns() denies a live block";
  return "";
}

// Runs `ops` operations; `lock` (if any) guards the shadow, which several
// threads may share. Returns the first failure, or "".
std::string RunModel(uint64_t seed, uint64_t ops, Shadow& live, std::mutex* lock) {
  Model m(seed);
  auto guard = [&] { return lock ? std::unique_lock<std::mutex>(*lock) : std::unique_lock<std::mutex>(); };
  auto where = [&](uint64_t i, const char* op) {
    return "seed " + std::to_string(seed) + " op " + std::to_string(i) + " (" + op + "): ";
  };
  for (uint64_t i = 0; i < ops; ++i) {
    Op op;
    bool allow_huge;
    Block victim{nullptr, 0, 0};
    {
      auto g = guard();
      op = m.NextOp(live);
      allow_huge = live.huge() < kMaxLiveHuge;
      if (op == Op::kFree || op == Op::kRealloc) victim = live.TakeAt(m.Pick(live.count()));
    }
    std::string err;
    Block fresh{nullptr, 0, m.Seed()};
    switch (op) {
      case Op::kMalloc:
      case Op::kCalloc:
      case Op::kAligned:
      case Op::kMemalign: {
        fresh.size = m.Size(allow_huge);
        size_t alignment = 8;
        if (op == Op::kMalloc) {
          fresh.p = execmem_malloc(fresh.size);
        } else if (op == Op::kCalloc) {
          const size_t count = 1 + m.Pick(8);
          const size_t each = (fresh.size + count - 1) / count;
          fresh.size = count * each;
          fresh.p = execmem_calloc(count, each);
          if (fresh.p != nullptr) {
            const auto* c = static_cast<const uint8_t*>(fresh.p);
            const size_t check = std::min(fresh.size, 1 * kMiB);
            for (size_t j = 0; j < check; ++j) {
              if (c[j] != 0) return where(i, "calloc") + "byte " + std::to_string(j) + " not zero";
            }
          }
        } else if (op == Op::kAligned) {
          alignment = m.Alignment();
          fresh.p = execmem_aligned_alloc(alignment, fresh.size);
        } else {
          alignment = m.Alignment();
          const int rc = execmem_posix_memalign(&fresh.p, alignment, fresh.size);
          if (rc != 0) return where(i, "posix_memalign") + "returned " + std::to_string(rc);
        }
        err = CheckFresh(fresh.p, fresh.size, alignment);
        if (!err.empty()) return where(i, "allocate") + err;
        Fill(fresh.p, fresh.size, fresh.seed);
        break;
      }
      case Op::kRealloc: {
        fresh.size = m.Size(allow_huge);
        fresh.p = execmem_realloc(victim.p, fresh.size);
        err = CheckFresh(fresh.p, fresh.size, 8);
        if (!err.empty()) return where(i, "realloc") + err;
        const size_t kept = std::min(victim.size, fresh.size);
        const size_t bad = FirstBad(fresh.p, victim.size, victim.seed, kept);
        if (bad != SIZE_MAX) {
          return where(i, "realloc") + "from " + std::to_string(victim.size) + " to " +
                 std::to_string(fresh.size) + " lost byte " + std::to_string(bad);
        }
        Fill(fresh.p, fresh.size, fresh.seed);
        break;
      }
      case Op::kFree: {
        const size_t bad = FirstBad(victim.p, victim.size, victim.seed, victim.size);
        if (bad != SIZE_MAX) {
          return where(i, "free") + "block of " + std::to_string(victim.size) +
                 " lost its pattern at byte " + std::to_string(bad);
        }
        execmem_free(victim.p);
        continue;
      }
    }
    auto g = guard();
    if (!live.Insert(fresh, &err)) return where(i, "insert") + err;
  }
  return "";
}

std::string FreeAll(Shadow& live) {
  while (live.count() > 0) {
    const Block b = live.TakeAt(live.count() - 1);
    const size_t bad = FirstBad(b.p, b.size, b.seed, b.size);
    if (bad != SIZE_MAX) return "block of " + std::to_string(b.size) + " lost byte " + std::to_string(bad);
    execmem_free(b.p);
  }
  return "";
}

uint64_t Used() {
  execmem_executor_stats_t s;
  execmem_executor_stats(execmem_default_executor(), &s);
  return s.used;
}

TEST(Model, RandomOperationsAgainstAShadow) {
  const uint64_t ops = kSanitized ? 40'000 : 200'000;
  const uint64_t used = Used();
  for (uint64_t seed : {1ull, 20240601ull}) {
    Shadow live;
    const std::string err = RunModel(seed, ops, live, nullptr);
    EXPECT_EQ(err, "");
    EXPECT_EQ(FreeAll(live), "");
    EXPECT_EQ(Used(), used) << "seed " << seed;
  }
}

// Two threads share one shadow: each frees and reallocs blocks the other
// allocated, so every kind of block crosses threads.
TEST(Model, TwoThreadsShareTheirBlocks) {
  const uint64_t ops = kSanitized ? 15'000 : 100'000;
  const uint64_t used = Used();
  Shadow live;
  std::mutex lock;
  std::string errs[2];
  std::thread a([&] { errs[0] = RunModel(7, ops, live, &lock); });
  std::thread b([&] { errs[1] = RunModel(8, ops, live, &lock); });
  a.join();
  b.join();
  EXPECT_EQ(errs[0], "");
  EXPECT_EQ(errs[1], "");
  EXPECT_EQ(FreeAll(live), "");
  // Blocks the exited threads allocated were credited when freed here.
  EXPECT_EQ(Used(), used);
}

}  // namespace
