// The rows a demo task works on, and the checksums that prove its results.
//
// Rows are a pure function of (seed, index), so a task never stores its
// input: it regenerates nothing and checks everything against sums taken
// while generating. Every checksum here is independent of row order, which is
// what lets the sorted (and spilled, and merged) output be compared with the
// input.
#ifndef EXECMEM_DEMO_ROWS_H_
#define EXECMEM_DEMO_ROWS_H_

#include <cstdint>

namespace execmem_demo {

struct Row {
  uint64_t key;
  uint64_t value;
};
static_assert(sizeof(Row) == 16, "spill files hold rows as raw 16-byte records");

// The external sort's order: by key, then by value.
inline bool RowLess(const Row& a, const Row& b) {
  return a.key != b.key ? a.key < b.key : a.value < b.value;
}

// splitmix64's finalizer: a bijection on 64-bit words, so distinct key
// indexes always give distinct keys.
constexpr uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Row i has key index i % keys, so each key occurs exactly rows / keys times
// (one more for the first rows % keys keys): the aggregation's per-group
// counts can be checked without storing anything.
class RowGenerator {
 public:
  RowGenerator(uint64_t seed, uint64_t rows, uint64_t keys)
      : rows_(rows),
        keys_(keys < 1 ? 1 : (keys > rows ? rows : keys)),
        key_salt_(Mix(seed ^ 0x6b6579ULL)),
        value_salt_(Mix(seed ^ 0x76616cULL)) {}

  Row At(uint64_t i) const { return Row{Mix((i % keys_) ^ key_salt_), Mix(i + value_salt_) >> 40}; }

  uint64_t rows() const { return rows_; }
  // Distinct keys in the input.
  uint64_t keys() const { return keys_; }
  uint64_t MinCountPerKey() const { return rows_ / keys_; }
  uint64_t MaxCountPerKey() const { return rows_ / keys_ + (rows_ % keys_ != 0 ? 1 : 0); }

 private:
  uint64_t rows_;
  uint64_t keys_;
  uint64_t key_salt_;
  uint64_t value_salt_;
};

// What a sort must preserve: the multiset of rows. Arithmetic wraps mod 2^64.
struct RowChecksum {
  uint64_t count = 0;
  uint64_t key_sum = 0;
  uint64_t value_sum = 0;
  uint64_t row_hash_sum = 0;

  void Add(const Row& r) {
    ++count;
    key_sum += r.key;
    value_sum += r.value;
    row_hash_sum += Mix(r.key ^ Mix(r.value + 0x9e3779b97f4a7c15ULL));
  }
  bool operator==(const RowChecksum&) const = default;
};

// What an aggregation must produce. Over the rows,
//   Σ w(key)·value  and  Σ u(key)
// equal, over the groups (key, sum, count),
//   Σ w(key)·sum    and  Σ u(key)·count,
// so a lost, duplicated or misattributed row changes one of them.
struct AggChecksum {
  uint64_t rows = 0;
  uint64_t weighted_sum = 0;
  uint64_t weighted_count = 0;

  void AddRow(const Row& r) { AddGroup(r.key, r.value, 1); }
  void AddGroup(uint64_t key, uint64_t sum, uint64_t count) {
    rows += count;
    weighted_sum += Mix(key ^ 0x77ULL) * sum;
    weighted_count += Mix(key ^ 0x75ULL) * count;
  }
  bool operator==(const AggChecksum&) const = default;
};

}  // namespace execmem_demo

#endif  // EXECMEM_DEMO_ROWS_H_
