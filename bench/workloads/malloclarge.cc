// Large blocks replaced at random, the shape of mimalloc-bench's malloc-large:
// 20 live blocks of 5-25 MB; 200 x SCALE times (2 000 at the full bench's
// scale 10) one of them, at random, is replaced by a new block of a random size,
// zero-filled as std::make_unique<char[]>(n) does (every page written). The new
// block is taken before the old one is freed (a unique_ptr assignment), so 21
// blocks are live at the peak. Live memory is about 300 MB; what the allocator
// costs beyond the memset is how it serves a large request after a free of
// another size: from the pages just freed (no page fault), or from fresh pages
// that fault while the freed ones go back to the OS.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "pages.h"
#include "workload_common.h"

namespace {

constexpr const char* kName = "malloclarge";
constexpr size_t kSlots = 20;
constexpr size_t kMinBlock = size_t{5} << 20;
constexpr size_t kMaxBlock = size_t{25} << 20;
constexpr uint64_t kReplacementsPerScale = 200;

struct Block {
  char* data = nullptr;
  size_t size = 0;
};

Block Take(bench::Rng& rng) {
  Block b;
  b.size = rng.Range(kMinBlock, kMaxBlock);
  // new char[n]() as make_unique: value-initialised, so every page is written
  // (a malloc and a memset of 0 would be turned into a calloc by the compiler).
  b.data = new char[b.size]();
  // A few writes, so that the checksum sees the block's content kept.
  b.data[0] = static_cast<char>(rng.Next());
  b.data[b.size / 2] = static_cast<char>(rng.Next());
  b.data[b.size - 1] = static_cast<char>(rng.Next());
  return b;
}

uint64_t Drop(Block& b, uint64_t h) {
  if (b.data == nullptr) return h;
  h = bench::Mix(h, b.size);
  h = bench::Mix(h, static_cast<unsigned char>(b.data[0]));
  h = bench::Mix(h, static_cast<unsigned char>(b.data[b.size / 2]));
  h = bench::Mix(h, static_cast<unsigned char>(b.data[b.size - 1]));
  h = bench::Mix(h, static_cast<unsigned char>(b.data[b.size / 4]));  // a zero
  delete[] b.data;
  b = Block{};
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::ParseArgs(argc, argv, kName);
  bench::Rng rng(0x6d6c6172);
  std::array<Block, kSlots> slots;
  uint64_t checksum = 0;
  for (uint64_t i = 0; i < args.scale * kReplacementsPerScale; ++i) {
    Block& slot = slots[rng.Next() % kSlots];
    Block fresh = Take(rng);  // before the old block goes, as make_unique's assignment
    checksum = Drop(slot, checksum);
    slot = fresh;
  }
  for (Block& b : slots) checksum = Drop(b, checksum);
  bench::PrintChecksum(checksum);
  return 0;
}
