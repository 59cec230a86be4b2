// Shared by the fuzz targets (tests/fuzz/*_fuzzer.cc): a reader of the
// fuzzer's bytes and the check that stops a run with a one-line message.
//
// Each target defines LLVMFuzzerTestOneInput. Built with clang and
// -fsanitize=fuzzer (make fuzz) it is a libFuzzer binary; in every other
// build it is linked with replay_main.cc and CTest feeds it the checked-in
// corpus (tests/fuzz/corpus/<target>/).
#ifndef EXECMEM_TESTS_FUZZ_FUZZ_SUPPORT_H_
#define EXECMEM_TESTS_FUZZ_FUZZ_SUPPORT_H_

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace execmem::fuzz {

// Aborts (a finding) with the message unless `ok`.
[[gnu::format(printf, 2, 3)]] inline void Require(bool ok, const char* fmt, ...) {
  if (ok) return;
  va_list ap;
  va_start(ap, fmt);
  fputs("fuzz: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

// The input, consumed from the front; past the end every read gives zeros.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return size_ == 0; }
  uint8_t Byte() {
    if (size_ == 0) return 0;
    --size_;
    return *data_++;
  }
  // Little-endian, from up to `bytes` bytes.
  uint64_t Bits(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t{Byte()} << (8 * i);
    return v;
  }
  // Bytes up to the next `sep` (dropped) or the end.
  std::string_view Until(char sep) {
    const void* at = size_ == 0 ? nullptr : memchr(data_, sep, size_);
    const size_t n =
        at == nullptr ? size_ : static_cast<size_t>(static_cast<const uint8_t*>(at) - data_);
    std::string_view s(reinterpret_cast<const char*>(data_), n);
    const size_t used = at == nullptr ? n : n + 1;
    data_ += used;
    size_ -= used;
    return s;
  }
  std::string_view Rest() { return Until('\0'); }

 private:
  const uint8_t* data_;
  size_t size_;
};

// A status message must be one line, and quote bad values cut short.
inline bool OneLine(std::string_view message) {
  return !message.empty() && message.find('\n') == std::string_view::npos &&
         message.find('\r') == std::string_view::npos && message.size() < 1024;
}

}  // namespace execmem::fuzz

#endif  // EXECMEM_TESTS_FUZZ_FUZZ_SUPPORT_H_
