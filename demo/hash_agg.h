// Hash aggregation (SUM, COUNT ... GROUP BY key) in an open-addressing table
// whose slots are allocated from the executor the thread is bound to.
//
// The table itself cannot spill; when it must grow and the executor is full,
// it asks the caller's `relieve` to free other memory (the task's sort
// buffer) and retries, see allocate_or_spill.h.
#ifndef EXECMEM_DEMO_HASH_AGG_H_
#define EXECMEM_DEMO_HASH_AGG_H_

#include <cstddef>
#include <cstdint>

#include "absl/base/optimization.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace execmem_demo {

class AggTable {
 public:
  AggTable() = default;
  ~AggTable() { Clear(); }
  AggTable(const AggTable&) = delete;
  AggTable& operator=(const AggTable&) = delete;

  // Adds value to key's group. Fails only when growing fails; the table is
  // then unchanged.
  absl::Status Add(uint64_t key, uint64_t value, absl::FunctionRef<void()> relieve) {
    if (ABSL_PREDICT_FALSE(size_ >= grow_at_)) {
      if (absl::Status s = Grow(relieve); !s.ok()) return s;
    }
    std::size_t i = SlotOf(key);
    while (slots_[i].count != 0 && slots_[i].key != key) i = (i + 1) & mask_;
    Slot& slot = slots_[i];
    if (slot.count == 0) {
      slot.key = key;
      ++size_;
    }
    slot.sum += value;
    ++slot.count;
    return absl::OkStatus();
  }

  // Calls fn(key, sum, count) for every group, in no particular order.
  void ForEachGroup(absl::FunctionRef<void(uint64_t, uint64_t, uint64_t)> fn) const;

  // Frees the slots (the memory goes back to the executor).
  void Clear();

  std::size_t groups() const { return size_; }
  std::size_t bytes() const { return capacity() * sizeof(Slot); }

 private:
  // count == 0 marks an empty slot, so any key (0 included) can be stored.
  struct Slot {
    uint64_t key;
    uint64_t sum;
    uint64_t count;
  };
  static constexpr std::size_t kInitialCapacity = 1024;
  // Linear probing stays short below this load.
  static constexpr std::size_t kMaxLoadPercent = 70;

  std::size_t capacity() const { return slots_ == nullptr ? 0 : mask_ + 1; }
  // Fibonacci hashing: the high bits of key * 2^64/φ, reduced by the mask.
  std::size_t SlotOf(uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9e3779b97f4a7c15ULL) >> 20) & mask_;
  }
  absl::Status Grow(absl::FunctionRef<void()> relieve);

  Slot* slots_ = nullptr;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
  std::size_t grow_at_ = 0;  // size_ at which the next Add grows; 0 while empty
};

}  // namespace execmem_demo

#endif  // EXECMEM_DEMO_HASH_AGG_H_
