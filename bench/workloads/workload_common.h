// Shared scaffolding of the macro workloads: argument parsing, a deterministic
// random generator and the checksum line that run.sh compares across
// allocators (the same input must give the same answer under every malloc).
//
// The workloads use only new/delete and malloc/free, never the execmem API, so
// that LD_PRELOAD decides which allocator they measure.
#ifndef EXECMEM_BENCH_WORKLOADS_WORKLOAD_COMMON_H_
#define EXECMEM_BENCH_WORKLOADS_WORKLOAD_COMMON_H_

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace bench {

// splitmix64: fast, good enough for workload shapes, identical on every run.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi], inclusive.
  uint64_t Range(uint64_t lo, uint64_t hi) { return lo + Next() % (hi - lo + 1); }
  // Skewed towards small values: a few hot keys and a long tail, like real group-by keys.
  uint64_t Skewed(uint64_t n) {
    const uint64_t a = Next() % n;
    const uint64_t b = Next() % n;
    return (a * b) / n;
  }

 private:
  uint64_t state_;
};

inline uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

struct Args {
  uint64_t scale = 1;
  uint64_t threads = 0;  // 0: the workload's default
};

// Usage: NAME [SCALE] [THREADS]. Bad input is an error message and exit status 2.
inline Args ParseArgs(int argc, char** argv, std::string_view name) {
  auto fail = [&](const char* what, const char* value) {
    std::fprintf(stderr,
                 "%.*s: bad %s '%s': expected a whole number from 1 to 100000\n"
                 "usage: %.*s [SCALE] [THREADS]\n",
                 static_cast<int>(name.size()), name.data(), what, value,
                 static_cast<int>(name.size()), name.data());
    std::exit(2);
  };
  auto parse = [&](const char* what, const char* text) -> uint64_t {
    errno = 0;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < 1 || v > 100000) {
      fail(what, text);
    }
    return v;
  };
  if (argc > 3) {
    std::fprintf(stderr, "%.*s: too many arguments\nusage: %.*s [SCALE] [THREADS]\n",
                 static_cast<int>(name.size()), name.data(), static_cast<int>(name.size()),
                 name.data());
    std::exit(2);
  }
  Args args;
  if (argc > 1) args.scale = parse("SCALE", argv[1]);
  if (argc > 2) args.threads = parse("THREADS", argv[2]);
  return args;
}

// The one line run.sh reads: "checksum=<hex>".
inline void PrintChecksum(uint64_t checksum) { std::printf("checksum=%016" PRIx64 "\n", checksum); }

// "ops=<n>": the operations (malloc+free pairs) a workload did, fixed by its
// scale and threads; the report divides it by the wall time for throughput.
inline void PrintOps(uint64_t ops) { std::printf("ops=%" PRIu64 "\n", ops); }

// Fisher-Yates with the workload's generator: the same permutation under
// every allocator.
template <typename T>
void Shuffle(T* items, size_t n, Rng& rng) {
  for (size_t i = n; i > 1; --i) {
    const size_t j = rng.Next() % i;
    T tmp = items[i - 1];
    items[i - 1] = items[j];
    items[j] = tmp;
  }
}

[[noreturn]] inline void OutOfMemory(const char* workload, size_t bytes) {
  std::fprintf(stderr, "%s: allocation of %zu bytes failed\n", workload, bytes);
  std::exit(1);
}

}  // namespace bench

#endif  // EXECMEM_BENCH_WORKLOADS_WORKLOAD_COMMON_H_
