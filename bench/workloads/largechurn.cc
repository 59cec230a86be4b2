// The churn phase of execmem-wl-largebuf alone (without its realloc chain,
// which otherwise dominates glibc's time): 16 live buffers of 3-30 MiB, each
// fully touched; 80 x SCALE times (800 at the full bench's scale 10) one, at
// random, is read back, freed, and replaced by a new one of another size. What
// it measures is whether a freed large block serves the next large request
// (committed pages, no fault) or goes back to the OS while the next one faults
// in fresh pages; peak RSS says what the allocator keeps meanwhile.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "pages.h"
#include "workload_common.h"

namespace {

constexpr const char* kName = "largechurn";
constexpr size_t kSlots = 16;
constexpr size_t kMinBuffer = size_t{3} << 20;
constexpr size_t kMaxBuffer = size_t{30} << 20;
constexpr uint64_t kReplacementsPerScale = 80;

using Buffer = bench::PagedBuffer;

Buffer Take(bench::Rng& rng) { return bench::TakePaged(rng, kMinBuffer, kMaxBuffer, kName); }
uint64_t Drop(Buffer& b, uint64_t h) { return bench::DropPaged(b, h); }

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::ParseArgs(argc, argv, kName);
  bench::Rng rng(0x1a26eb0f);  // largebuf's: the same buffers as its churn phase
  std::array<Buffer, kSlots> slots;
  for (Buffer& b : slots) b = Take(rng);
  uint64_t checksum = 0;
  for (uint64_t i = 0; i < args.scale * kReplacementsPerScale; ++i) {
    Buffer& b = slots[rng.Next() % kSlots];
    checksum = Drop(b, checksum);
    b = Take(rng);
  }
  for (Buffer& b : slots) checksum = Drop(b, checksum);
  bench::PrintChecksum(checksum);
  return 0;
}
