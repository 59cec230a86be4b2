// Zero-size blocks (cache/zero_size.h).
#include "cache/zero_size.h"

#include <atomic>
#include <cstdint>
#include <new>

#include "cache/check.h"
#include "platform/os.h"

namespace execmem {

namespace {

// Made at the first malloc(0), by whichever thread wins the race.
struct ZeroRegion {
  uintptr_t base;  // kZeroRegionBytes of no-access address space
  // Bit i set: slot i is handed out. Plain words accessed through
  // std::atomic_ref, so that nothing writes (commits) the bitmap up front.
  uint64_t live[kZeroSlots / 64];
};
std::atomic<ZeroRegion*> g_region{nullptr};
std::atomic<uint64_t> g_next{0};

constexpr size_t RegionMetaBytes() { return (sizeof(ZeroRegion) + 4095) & ~size_t{4095}; }

ZeroRegion* Region() {
  ZeroRegion* r = g_region.load(std::memory_order_acquire);
  if (r != nullptr) return r;
  void* space = os::ReserveNoAccess(kZeroRegionBytes);
  if (space == nullptr) return nullptr;
  void* meta = os::MapAligned(RegionMetaBytes(), os::PageSize());  // zeroed
  if (meta == nullptr) {
    os::Unmap(space, kZeroRegionBytes);
    return nullptr;
  }
  auto* fresh = static_cast<ZeroRegion*>(meta);  // implicit-lifetime: no constructor to run
  fresh->base = reinterpret_cast<uintptr_t>(space);
  if (!g_region.compare_exchange_strong(r, fresh, std::memory_order_acq_rel)) {
    os::Unmap(meta, RegionMetaBytes());
    os::Unmap(space, kZeroRegionBytes);
    return r;
  }
  return fresh;
}

}  // namespace

void* ZeroBlock() {
  ZeroRegion* r = Region();
  if (r == nullptr) return nullptr;
  // Skips live slots; gives up (out of memory) after a few when nearly all are.
  for (int tries = 0; tries < 64; ++tries) {
    const uint64_t i = g_next.fetch_add(1, std::memory_order_relaxed) % kZeroSlots;
    const uint64_t bit = uint64_t{1} << (i % 64);
    if ((std::atomic_ref<uint64_t>(r->live[i / 64]).fetch_or(bit, std::memory_order_relaxed) &
         bit) == 0) {
      return reinterpret_cast<void*>(r->base + i * 16);
    }
  }
  return nullptr;
}

bool InZeroRegion(const void* p) {
  const ZeroRegion* r = g_region.load(std::memory_order_acquire);
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return r != nullptr && a >= r->base && a < r->base + kZeroRegionBytes;
}

void FreeZeroBlock(const char* op, const void* p) {
  ZeroRegion* r = g_region.load(std::memory_order_acquire);
  const uintptr_t off = reinterpret_cast<uintptr_t>(p) - r->base;
  if (off % 16 != 0) ReportInteriorPointer(op, p, off % 16, 0, nullptr);
  const uint64_t i = off / 16;
  const uint64_t bit = uint64_t{1} << (i % 64);
  if ((std::atomic_ref<uint64_t>(r->live[i / 64]).fetch_and(~bit, std::memory_order_relaxed) &
       bit) == 0) {
    ReportDoubleFreeNamed(op, p, 0, nullptr);
  }
}

}  // namespace execmem
