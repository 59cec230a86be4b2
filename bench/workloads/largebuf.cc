// Large buffers, the shape of an executor holding a few big batches (decoded
// column chunks, sort runs, broadcast tables) and replacing one at a time: 16
// live buffers of 3-30 MiB, each fully touched, one freed and a new one of
// another size taken 80 x SCALE times; then, with the buffers gone, the realloc
// chain (realloc_chain.h) 2 x SCALE times. Live memory never passes 16 x 30 MiB
// (the chain: 256 MiB, plus the block a realloc copies from), so peak RSS above
// that is what the allocator keeps of freed large blocks of mixed sizes: they
// must serve the next, larger requests, or go back to the OS.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "pages.h"
#include "realloc_chain.h"
#include "workload_common.h"

namespace {

constexpr const char* kName = "largebuf";
constexpr size_t kSlots = 16;
constexpr size_t kMinBuffer = size_t{3} << 20;
constexpr size_t kMaxBuffer = size_t{30} << 20;
constexpr uint64_t kReplacementsPerScale = 80;
constexpr uint64_t kChainsPerScale = 2;

using Buffer = bench::PagedBuffer;

Buffer Take(bench::Rng& rng) { return bench::TakePaged(rng, kMinBuffer, kMaxBuffer, kName); }
uint64_t Drop(Buffer& b, uint64_t h) { return bench::DropPaged(b, h); }

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::ParseArgs(argc, argv, kName);
  bench::Rng rng(0x1a26eb0f);
  std::array<Buffer, kSlots> slots;
  for (Buffer& b : slots) b = Take(rng);
  uint64_t checksum = 0;
  for (uint64_t i = 0; i < args.scale * kReplacementsPerScale; ++i) {
    Buffer& b = slots[rng.Next() % kSlots];
    checksum = Drop(b, checksum);
    b = Take(rng);
  }
  for (Buffer& b : slots) checksum = Drop(b, checksum);

  for (uint64_t chain = 0; chain < args.scale * kChainsPerScale; ++chain) {
    checksum = bench::Mix(checksum, bench::RunReallocChain(kName, 0xc4a10000 + chain));
  }
  bench::PrintChecksum(checksum);
  return 0;
}
