// Fuzz target: the setting parsers of executor/config.h — sizes, fractions,
// overheads and an executor's budgets — checked against their contract.
//
// Input: a selector byte, then the text (for budgets: initial, max, overhead
// separated by '\0', then 8 bytes of pool capacity).
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>

#include "executor/config.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using execmem::config::Budgets;
using execmem::config::Overhead;
using execmem::fuzz::Input;
using execmem::fuzz::OneLine;
using execmem::fuzz::Require;

constexpr uint64_t kSizeLimit = uint64_t{1} << 63;

void RequireInvalid(const execmem::Status& s, std::string_view what) {
  Require(s.code() == EINVAL, "%.*s: code %d", int(what.size()), what.data(),
          static_cast<int>(s.code()));
  Require(OneLine(s.message()), "%.*s: message not one line: %s", int(what.size()), what.data(),
          std::string(s.message()).c_str());
}

// Parses `text` as a size and checks what must hold of any answer.
execmem::Result<uint64_t> CheckedSize(std::string_view text) {
  execmem::Result<uint64_t> v = execmem::config::ParseSize("EXECMEM_MAX", text);
  if (!v.ok()) {
    RequireInvalid(v.status(), "ParseSize");
    Require(std::string_view(v.status().message()).starts_with("invalid EXECMEM_MAX \""),
            "ParseSize: message does not name the setting: %s",
            std::string(v.status().message()).c_str());
    return v;
  }
  Require(*v < kSizeLimit, "ParseSize: %llu is not below 2^63",
          static_cast<unsigned long long>(*v));
  return v;
}

void FuzzSize(std::string_view text) {
  const execmem::Result<uint64_t> v = CheckedSize(text);
  // Case and surrounding blanks never change the answer.
  std::string upper(text);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  const execmem::Result<uint64_t> u = CheckedSize(upper);
  Require(u.ok() == v.ok() && (!v.ok() || *u == *v), "ParseSize: \"%s\" and its upper case differ",
          upper.c_str());
  const execmem::Result<uint64_t> b = CheckedSize(" \t" + std::string(text) + "\n ");
  Require(b.ok() == v.ok() && (!v.ok() || *b == *v), "ParseSize: surrounding blanks change it");
  // What FormatBytes writes reads back as at most the value, less by under
  // a tenth of its unit (below 1 PiB: sizes have no units above t).
  if (!v.ok() || *v >= (uint64_t{1} << 50)) return;
  const std::string shown = execmem::config::FormatBytes(*v);
  const execmem::Result<uint64_t> back = CheckedSize(shown);
  Require(back.ok(), "ParseSize refuses FormatBytes(%llu) = \"%s\"",
          static_cast<unsigned long long>(*v), shown.c_str());
  int shift = 0;
  while (shift < 60 && (*v >> (shift + 10)) != 0) shift += 10;
  Require(*back <= *v && *v - *back <= (uint64_t{1} << shift) / 10 + 1,
          "FormatBytes(%llu) = \"%s\" reads back as %llu", static_cast<unsigned long long>(*v),
          shown.c_str(), static_cast<unsigned long long>(*back));
}

void FuzzFraction(std::string_view text) {
  const execmem::Result<double> f = execmem::config::ParseFraction("EXECMEM_X", text);
  if (!f.ok()) {
    RequireInvalid(f.status(), "ParseFraction");
    return;
  }
  Require(*f >= 0 && *f < 1, "ParseFraction: %.17g is not in [0, 1)", *f);
}

void FuzzOverhead(std::string_view text, uint64_t initial) {
  const execmem::Result<Overhead> o = execmem::config::ParseOverhead("EXECMEM_OVERHEAD", text);
  if (!o.ok()) {
    RequireInvalid(o.status(), "ParseOverhead");
    return;
  }
  if (o->kind == Overhead::kFraction) {
    Require(o->fraction >= 0 && o->fraction < 1, "ParseOverhead: fraction %.17g", o->fraction);
    const uint64_t r = o->Resolve(initial);
    Require(r <= initial, "Overhead %.17g of %llu resolves to %llu", o->fraction,
            static_cast<unsigned long long>(initial), static_cast<unsigned long long>(r));
  } else {
    Require(o->bytes < kSizeLimit, "ParseOverhead: %llu bytes",
            static_cast<unsigned long long>(o->bytes));
    Require(o->Resolve(initial) == o->bytes, "a size overhead depends on initial");
  }
}

void FuzzBudgets(Input& in) {
  const std::string initial(in.Until('\0'));
  const std::string max(in.Until('\0'));
  const std::string overhead(in.Until('\0'));
  // Capacities of any size, but mostly a few KiB to a few TiB.
  uint64_t capacity = in.Bits(8);
  if (capacity == 0) capacity = 1;
  if ((capacity & 1) != 0) capacity >>= (capacity >> 1) % 64;
  if (capacity == 0) capacity = 1;
  const execmem::Result<Budgets> b =
      execmem::config::ResolveBudgets(initial, max, overhead, capacity, "EXECMEM_");
  if (!b.ok()) {
    RequireInvalid(b.status(), "ResolveBudgets");
    return;
  }
  const auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  Require(b->max > 0 && b->max <= capacity, "max %llu, capacity %llu", u(b->max), u(capacity));
  Require(b->initial <= b->max, "initial %llu above max %llu", u(b->initial), u(b->max));
  Require(b->initial + b->overhead <= capacity, "initial %llu + overhead %llu above capacity %llu",
          u(b->initial), u(b->overhead), u(capacity));
  // Explicit values are kept as written, never capped.
  const auto strip = [](const std::string& s) { return execmem::config::StripBlanks(s); };
  if (!strip(initial).empty()) {
    Require(*execmem::config::ParseSize("i", initial) == b->initial, "explicit initial changed");
  }
  if (!strip(max).empty()) {
    Require(*execmem::config::ParseSize("m", max) == b->max, "explicit max changed");
  }
  if (!strip(overhead).empty()) {
    const Overhead o = *execmem::config::ParseOverhead("o", overhead);
    Require(o.Resolve(b->initial) == b->overhead, "explicit overhead changed");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  const uint8_t selector = in.Byte();
  switch (selector % 4) {
    case 0:
      FuzzSize(in.Rest());
      break;
    case 1:
      FuzzFraction(in.Rest());
      break;
    case 2: {
      const uint64_t initial = in.Bits(8) >> (selector % 64);
      FuzzOverhead(in.Rest(), initial);
      break;
    }
    default:
      FuzzBudgets(in);
      break;
  }
  return 0;
}
