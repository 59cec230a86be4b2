// Secure mode's inline pieces (cache/secure_policy.h) on their own: the scan
// that finds a written byte (FirstNot) at every length and position, and tail
// words that tell blocks apart.
#include "cache/secure_policy.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace execmem::secure {
namespace {

// Every range length from 0 to 300 bytes, at every start offset modulo 16,
// with no byte written and with each byte in turn written: FirstNot answers
// -1 or the offset of the first one, for zero and for the slack byte. (The
// scan uses overlapping whole loads: a wrong overlap misses the first or the
// last bytes of some length.)
template <unsigned char byte>
void CheckEveryLengthAndPosition() {
  std::vector<char> buf(8 + 16 + 300 + 8);
  for (size_t start = 8; start < 8 + 16; ++start) {
    for (size_t len = 0; len <= 300; ++len) {
      memset(buf.data(), byte ^ 0x5A, buf.size());  // outside the range: other bytes
      char* from = buf.data() + start;
      memset(from, byte, len);
      ASSERT_EQ(FirstNot<byte>(from, from + len), -1) << "start " << start << " len " << len;
      for (size_t at = 0; at < len; ++at) {
        from[at] = static_cast<char>(byte ^ 0x01);
        ASSERT_EQ(FirstNot<byte>(from, from + len), static_cast<ptrdiff_t>(at))
            << "start " << start << " len " << len;
        from[at] = static_cast<char>(byte);
      }
    }
  }
}

TEST(SecurePolicy, FirstNotFindsTheFirstWrittenByteAtEveryLength) {
  CheckEveryLengthAndPosition<0>();
  CheckEveryLengthAndPosition<kSlack>();
}

// A block's tail word decodes to its size; the tail word of any other block
// (8 bytes to 16 MiB away), copied over it, decodes to no valid size: an
// overflow that copies a whole neighbour shows. Free and busy marks likewise
// belong to their block only.
TEST(SecurePolicy, TailWordsBelongToTheirBlock) {
  const uint64_t saved = g_canary_key;
  for (uint64_t key : {0x0123456789abcdefull, 0xfedcba9876543210ull, 0ull}) {
    g_canary_key = (key & ~uint64_t{0xFF}) | (uint64_t{1} << 63) | kTailByte;
    const uintptr_t base = uintptr_t{0x7f12'3456'0000};
    for (uint32_t size : {32u, 48u, 80u, 4608u, 262144u}) {
      const auto* b = reinterpret_cast<const char*>(base);
      const uint64_t live = LiveCanary(b, size - 8);
      EXPECT_EQ(live & 0xFF, kTailByte);
      EXPECT_NE(live >> 63, 0u);
      EXPECT_EQ(CanarySize(live, b), size - 8);
      EXPECT_EQ(CanarySize(FreeMark(b), b), kFreeTag);
      EXPECT_EQ(CanarySize(BusyMark(b), b), kBusyTag);
      for (uint64_t k = 1; k <= 64; ++k) {
        const auto* near = reinterpret_cast<const char*>(base + 8 * k);
        EXPECT_FALSE(ValidTail(LiveCanary(near, size - 8), b, size)) << size << " " << k;
        const auto* other = reinterpret_cast<const char*>(base + k * size);
        const auto* before = reinterpret_cast<const char*>(base - k * size);
        for (uint64_t n : {uint64_t{0}, uint64_t{size} - 8}) {
          EXPECT_FALSE(ValidTail(LiveCanary(other, n), b, size)) << size << " " << k;
          EXPECT_FALSE(ValidTail(LiveCanary(before, n), b, size)) << size << " " << k;
        }
        EXPECT_FALSE(ValidTail(FreeMark(other), b, size));
        EXPECT_FALSE(ValidTail(BusyMark(before), b, size));
      }
    }
  }
  g_canary_key = saved;
}

}  // namespace
}  // namespace execmem::secure
