// A message built into a fixed buffer without allocating (out-of-memory
// reports are written while the allocator is out of memory).
#ifndef EXECMEM_ALLOCATOR_REPORT_H_
#define EXECMEM_ALLOCATOR_REPORT_H_

#include <algorithm>
#include <cstddef>
#include <cstdio>

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

}  // namespace execmem

#endif  // EXECMEM_ALLOCATOR_REPORT_H_
