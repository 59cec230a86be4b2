// A message built into a fixed buffer without allocating (out-of-memory
// reports are written while the allocator is out of memory).
#ifndef EXECMEM_EXECUTOR_REPORT_H_
#define EXECMEM_EXECUTOR_REPORT_H_

#include <algorithm>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <iterator>

namespace execmem {

struct ReportBuffer {
  char* buf;
  size_t cap;
  size_t len = 0;
  template <typename... Args>
  void Add(const char* fmt, Args... args) {
    if (len + 1 >= cap) return;
    int n = snprintf(buf + len, cap - len, fmt, args...);
    if (n > 0) len = std::min(cap - 1, len + static_cast<size_t>(n));
  }
};

// A size in units, formatted without allocating: "100 B", "12 KiB", "1.5 GiB"
// (exact multiples without decimals, anything else with one decimal, rounded
// down so that a value never reads as more than it is).
struct SizeText {
  char text[48];  // the longest: "18446744073709551615 B" fits easily
  const char* c_str() const { return text; }
};

inline SizeText FormatSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int unit = 0;
  while (unit + 1 < static_cast<int>(std::size(kUnits)) && (bytes >> (10 * (unit + 1))) != 0) {
    ++unit;
  }
  const int shift = 10 * unit;
  const uint64_t whole = bytes >> shift;
  const uint64_t rest = bytes - (whole << shift);
  SizeText t;
  if (rest == 0) {
    snprintf(t.text, sizeof t.text, "%" PRIu64 " %s", whole, kUnits[unit]);
  } else {
    // rest < 2^60, so rest * 10 fits in 64 bits.
    snprintf(t.text, sizeof t.text, "%" PRIu64 ".%" PRIu64 " %s", whole, (rest * 10) >> shift,
             kUnits[unit]);
  }
  return t;
}

}  // namespace execmem

#endif  // EXECMEM_EXECUTOR_REPORT_H_
