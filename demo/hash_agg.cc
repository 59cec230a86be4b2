#include "demo/hash_agg.h"

#include <cstring>
#include <string>

#include "absl/status/statusor.h"
#include "demo/allocate_or_spill.h"
#include "execmem.hpp"

namespace execmem_demo {

void AggTable::ForEachGroup(absl::FunctionRef<void(uint64_t, uint64_t, uint64_t)> fn) const {
  for (std::size_t i = 0; i < capacity(); ++i) {
    if (slots_[i].count != 0) fn(slots_[i].key, slots_[i].sum, slots_[i].count);
  }
}

void AggTable::Clear() {
  if (slots_ != nullptr) execmem::deallocate(slots_, bytes());
  slots_ = nullptr;
  mask_ = 0;
  size_ = 0;
  grow_at_ = 0;
}

absl::Status AggTable::Grow(absl::FunctionRef<void()> relieve) {
  const std::size_t new_capacity = slots_ == nullptr ? kInitialCapacity : 2 * capacity();
  const std::size_t new_bytes = new_capacity * sizeof(Slot);
  absl::StatusOr<void*> memory = AllocateOrSpill(new_bytes, relieve);
  if (!memory.ok()) {
    return absl::Status(memory.status().code(),
                        "growing the aggregation table to " + std::to_string(new_bytes) +
                            " bytes: " + std::string(memory.status().message()));
  }
  // All-zero is "every slot empty".
  std::memset(*memory, 0, new_bytes);

  Slot* old_slots = slots_;
  const std::size_t old_capacity = capacity();
  slots_ = static_cast<Slot*>(*memory);
  mask_ = new_capacity - 1;
  grow_at_ = new_capacity * kMaxLoadPercent / 100;
  for (std::size_t i = 0; i < old_capacity; ++i) {
    const Slot& s = old_slots[i];
    if (s.count == 0) continue;
    std::size_t j = SlotOf(s.key);
    while (slots_[j].count != 0) j = (j + 1) & mask_;
    slots_[j] = s;
  }
  if (old_slots != nullptr) execmem::deallocate(old_slots, old_capacity * sizeof(Slot));
  return absl::OkStatus();
}

}  // namespace execmem_demo
