// The realloc chain alone (realloc_chain.h), 2 x SCALE times: one buffer grown
// from 4 KiB to 256 MiB by 1.25x steps, every new page touched, then freed.
// Nothing else is live, so its time and peak RSS are realloc's own: how large
// blocks grow (in place, by remapping, or by copying) and whether the blocks
// left behind are returned.
#include <cstdint>

#include "realloc_chain.h"
#include "workload_common.h"

namespace {

constexpr const char* kName = "reallocchain";
constexpr uint64_t kChainsPerScale = 2;

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::ParseArgs(argc, argv, kName);
  uint64_t checksum = 0;
  for (uint64_t chain = 0; chain < args.scale * kChainsPerScale; ++chain) {
    checksum = bench::Mix(checksum, bench::RunReallocChain(kName, 0xc4a10000 + chain));
  }
  bench::PrintChecksum(checksum);
  return 0;
}
