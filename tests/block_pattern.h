// The contents test programs write into blocks and check later
// (tests/fuzz/api_fuzzer.cc, tests/fault/fault_injection_test.cc): a pattern
// that depends on a block's tag and the offset, on a sample of positions
// that keeps large and huge blocks mostly untouched.
#ifndef EXECMEM_TESTS_BLOCK_PATTERN_H_
#define EXECMEM_TESTS_BLOCK_PATTERN_H_

#include <cstddef>
#include <cstdint>

namespace execmem::test_support {

// Calls fn(i) for the sampled offsets i of a block of `size` bytes: all of
// a small block; else its first and last 4 KiB and one byte of every 4 KiB
// between — of every MiB above 4 MiB, of every 32 MiB in huge blocks, whose
// first touches fault in 2 MiB pages.
template <typename Fn>
void ForSampled(size_t size, Fn fn) {
  constexpr size_t kEdge = size_t{4} << 10;
  if (size <= 2 * kEdge) {
    for (size_t i = 0; i < size; ++i) fn(i);
    return;
  }
  const size_t stride = size > (size_t{32} << 20)  ? size_t{32} << 20
                        : size > (size_t{4} << 20) ? size_t{1} << 20
                                                   : kEdge;
  for (size_t i = 0; i < kEdge; ++i) fn(i);
  for (size_t i = kEdge; i < size - kEdge; i += stride) fn(i);
  for (size_t i = size - kEdge; i < size; ++i) fn(i);
}

inline unsigned char Pattern(uint8_t tag, size_t i) {
  return static_cast<unsigned char>(tag ^ (i * 131) ^ (i >> 12));
}

}  // namespace execmem::test_support

#endif  // EXECMEM_TESTS_BLOCK_PATTERN_H_
