// Sizes, fractions and budgets (executor/config.h).
//
// Numbers are scanned by hand rather than with strtod / SimpleAtod: those
// accept exponents, "inf", "nan", hex and signs, none of which is a size, and
// a double cannot hold every byte count below 2^63 exactly. A decimal is kept
// as integer + digits / 10^n and scaled with 128-bit arithmetic, so "1.5GiB"
// is exactly 1610612736 bytes.
#include "executor/config.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "executor/report.h"

namespace execmem::config {
namespace {

__extension__ typedef unsigned __int128 U128;

constexpr uint64_t kSizeLimit = uint64_t{1} << 63;  // sizes are below this
constexpr uint64_t kBillion = 1'000'000'000;        // fractions are kept in billionths
constexpr int kMaxDecimalPlaces = 19;               // 10^19 still fits in uint64_t
constexpr size_t kMaxQuotedValue = 64;              // longer values are cut in messages

constexpr uint64_t Pow10(int n) {
  uint64_t p = 1;
  while (n-- > 0) p *= 10;
  return p;
}

constexpr bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// A decimal as written: integer + decimals / 10^places.
struct Decimal {
  uint64_t integer = 0;
  bool integer_overflow = false;  // the integer part does not fit in uint64_t
  uint64_t decimals = 0;          // the first `places` decimal places
  int places = 0;
  bool nonzero = false;  // some digit, counted or not, is not 0

  // floor(value * 2^shift); shift <= 40, so nothing here can overflow 128 bits.
  U128 Scaled(int shift) const {
    return (U128{integer} << shift) + (U128{decimals} << shift) / Pow10(places);
  }
  // floor(value * multiplier / divisor), with multiplier, divisor <= 10^9.
  U128 Scaled(uint64_t multiplier, uint64_t divisor) const {
    return (U128{integer} * multiplier * Pow10(places) + U128{decimals} * multiplier) /
           (U128{divisor} * Pow10(places));
  }
};

// Why a value was refused; empty when it was not.
using Reason = std::string;

// Consumes `digits [. digits]` or `. digits` from the front of `s`.
Reason ConsumeDecimal(std::string_view& s, Decimal& d) {
  size_t i = 0;
  for (; i < s.size() && IsDigit(s[i]); ++i) {
    const uint64_t digit = static_cast<uint64_t>(s[i] - '0');
    d.nonzero |= digit != 0;
    if (d.integer_overflow || d.integer > (UINT64_MAX - digit) / 10) {
      d.integer_overflow = true;
    } else {
      d.integer = d.integer * 10 + digit;
    }
  }
  const bool has_integer = i > 0;
  if (i < s.size() && s[i] == '.') {
    const size_t first = ++i;
    for (; i < s.size() && IsDigit(s[i]); ++i) {
      d.nonzero |= s[i] != '0';
      if (d.places < kMaxDecimalPlaces) {
        d.decimals = d.decimals * 10 + static_cast<uint64_t>(s[i] - '0');
        ++d.places;
      }
    }
    if (i == first) return has_integer ? "malformed number" : "not a number";
  } else if (!has_integer) {
    return "not a number";
  }
  s.remove_prefix(i);
  // "1.2.3g" or "1 2g": a second number is a typo, not a unit.
  if (!s.empty() && (IsDigit(s[0]) || s[0] == '.' ||
                     (s[0] == ' ' && s.size() > 1 && (IsDigit(s[1]) || s[1] == '.')))) {
    return "malformed number";
  }
  return "";
}

constexpr char ToLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
constexpr char ToUpper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

// C escapes for quotes, backslashes and control characters, \xNN for other
// bytes outside printable ASCII: the text stays on one line.
std::string Escaped(std::string_view s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\'':
        out += "\\'";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out += c;
        } else {
          constexpr char kHex[] = "0123456789abcdef";
          const auto b = static_cast<unsigned char>(c);
          out += {'\\', 'x', kHex[b >> 4], kHex[b & 15]};
        }
    }
  }
  return out;
}

// The value as it appears in a message: escaped so that the message stays on
// one line whatever the environment held, and cut when very long.
std::string Quoted(std::string_view value) {
  return "\"" + Escaped(value.substr(0, kMaxQuotedValue)) +
         (value.size() > kMaxQuotedValue ? "..." : "") + "\"";
}

// log2 of the unit's multiplier, or -1. Accepts "", b, k, kb, kib, m... t*.
int UnitShift(std::string_view unit) {
  const std::string u = AsciiLower(unit);
  if (u.empty() || u == "b") return 0;
  constexpr std::string_view kPrefixes = "kmgt";
  const size_t prefix = kPrefixes.find(u[0]);
  if (prefix == std::string_view::npos) return -1;
  const std::string_view rest = std::string_view(u).substr(1);
  if (rest.empty() || rest == "b" || rest == "ib") return 10 * static_cast<int>(prefix + 1);
  return -1;
}

Reason ParseSizeBytes(std::string_view s, uint64_t& bytes) {
  if (s.empty()) return "empty";
  if (s[0] == '-') return "cannot be negative";
  Decimal d;
  if (Reason r = ConsumeDecimal(s, d); !r.empty()) return r;
  if (s.size() > 1 && s[0] == ' ') s.remove_prefix(1);  // "1.5 GiB"
  const int shift = UnitShift(s);
  if (shift < 0) return "unknown unit " + Quoted(s);
  const U128 value = d.integer_overflow ? U128{kSizeLimit} : d.Scaled(shift);
  if (value >= kSizeLimit) return "too large: sizes must be below 2^63 bytes (8 EiB)";
  if (value == 0 && d.nonzero) return "less than one byte";
  bytes = static_cast<uint64_t>(value);
  return "";
}

struct FractionParse {
  uint64_t billionths = 0;
  bool percent = false;
  bool not_below_one = false;  // a number, but >= 1 (100%)
};

// "0.1", ".25", "10%", "12.5 %": 0 <= value < 1, rounded down to billionths.
Reason ParseBillionths(std::string_view s, FractionParse& f) {
  if (s.empty()) return "empty";
  if (s[0] == '-') return "cannot be negative";
  Decimal d;
  if (Reason r = ConsumeDecimal(s, d); !r.empty()) return r;
  if (s == "%" || s == " %") {
    f.percent = true;
    s = {};
  }
  if (!s.empty()) return "unexpected " + Quoted(s) + " after the number";
  const uint64_t limit = f.percent ? 100 : 1;
  if (d.integer_overflow || d.integer >= limit) {
    f.not_below_one = true;
    return f.percent ? "must be below 100%" : "must be below 1 (100%)";
  }
  f.billionths = static_cast<uint64_t>(d.Scaled(kBillion, limit));
  return "";
}

uint64_t Billionths(double fraction) {
  if (!(fraction > 0)) return 0;  // NaN too
  if (fraction >= 1) return kBillion;
  // Rounded to nearest (fraction is in (0, 1), so + 0.5 and truncation do it):
  // no llround, which would make libexecmem_preload.so load libm.
  return static_cast<uint64_t>(fraction * static_cast<double>(kBillion) + 0.5);
}

// A number without a unit, or a percentage: read as a fraction of initial.
bool LooksLikeFraction(std::string_view s) {
  if (!s.empty() && s.back() == '%') return true;
  return !s.empty() && s.find_first_not_of("0123456789.-+") == std::string_view::npos;
}

std::string SettingName(std::string_view prefix, std::string_view name) {
  if (prefix.empty()) return std::string(name);
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(), ToUpper);
  return std::string(prefix) + upper;
}

// `EXECMEM_MAX "64g" (64 GiB)`
std::string Describe(std::string_view setting, std::string_view value, uint64_t bytes) {
  return std::string(setting) + " " + Quoted(StripBlanks(value)) + " (" + FormatBytes(bytes) + ")";
}

// The largest initial for which initial + overhead.Resolve(initial) <= capacity.
uint64_t LargestInitialFitting(const Overhead& overhead, uint64_t capacity) {
  if (overhead.kind == Overhead::kBytes) {
    return overhead.bytes >= capacity ? 0 : capacity - overhead.bytes;
  }
  // initial + ceil(initial * k / 1e9) <= C  <=>  initial * (1e9 + k) <= C * 1e9
  return static_cast<uint64_t>(U128{capacity} * kBillion /
                               (kBillion + Billionths(overhead.fraction)));
}

}  // namespace

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), ToLower);
  return out;
}

Status InvalidSetting(std::string_view setting, std::string_view value, std::string_view reason,
                      std::string_view accepted) {
  return InvalidArgument("invalid " + std::string(setting) + " " + Quoted(value) + ": " +
                         std::string(reason) + (reason.empty() ? "" : "; ") + "expected " +
                         std::string(accepted));
}

Result<uint64_t> ParseSize(std::string_view setting, std::string_view value) {
  uint64_t bytes = 0;
  if (Reason r = ParseSizeBytes(StripBlanks(value), bytes); !r.empty()) {
    return InvalidSetting(setting, value, r, kSizeAccepted);
  }
  return bytes;
}

Result<double> ParseFraction(std::string_view setting, std::string_view value) {
  FractionParse f;
  if (Reason r = ParseBillionths(StripBlanks(value), f); !r.empty()) {
    return InvalidSetting(setting, value, r, kFractionAccepted);
  }
  return static_cast<double>(f.billionths) / static_cast<double>(kBillion);
}

uint64_t Overhead::Resolve(uint64_t initial) const {
  if (kind == kBytes) return bytes;
  const U128 scaled = U128{initial} * Billionths(fraction);
  return static_cast<uint64_t>((scaled + kBillion - 1) / kBillion);
}

Result<Overhead> ParseOverhead(std::string_view setting, std::string_view value) {
  const std::string_view s = StripBlanks(value);
  Overhead overhead;
  if (!LooksLikeFraction(s)) {
    overhead.kind = Overhead::kBytes;
    if (Reason r = ParseSizeBytes(s, overhead.bytes); !r.empty()) {
      return InvalidSetting(setting, value, r, kOverheadAccepted);
    }
    return overhead;
  }
  FractionParse f;
  if (Reason r = ParseBillionths(s, f); !r.empty()) {
    if (f.not_below_one) {
      r = "overhead must be below 100% of initial";
      // "268435456" was probably meant as bytes: say how to write that.
      if (!f.percent && s.size() > 1 &&
          s.find_first_not_of("0123456789") == std::string_view::npos) {
        r += " (a number without a unit is a fraction of initial; for a size add a unit, such as " +
             std::string(s) + "b)";
      }
    }
    return InvalidSetting(setting, value, r, kOverheadAccepted);
  }
  overhead.kind = Overhead::kFraction;
  overhead.fraction = static_cast<double>(f.billionths) / static_cast<double>(kBillion);
  return overhead;
}

Result<Budgets> ResolveBudgets(std::string_view initial_value, std::string_view max_value,
                               std::string_view overhead_value, uint64_t pool_capacity,
                               std::string_view setting_prefix) {
  const std::string initial_name = SettingName(setting_prefix, "initial");
  const std::string max_name = SettingName(setting_prefix, "max");
  const std::string overhead_name = SettingName(setting_prefix, "overhead");
  const bool has_initial = !StripBlanks(initial_value).empty();
  const bool has_max = !StripBlanks(max_value).empty();
  const bool has_overhead = !StripBlanks(overhead_value).empty();
  const std::string capacity_text = "the pool capacity of " + FormatBytes(pool_capacity);

  // Explicit values, or the defaults as written in config.h.
  Result<uint64_t> initial = has_initial ? ParseSize(initial_name, initial_value)
                                         : ParseSize("default initial", kDefaultInitial);
  if (!initial.ok()) return initial.status();
  Result<uint64_t> max =
      has_max ? ParseSize(max_name, max_value) : ParseSize("default max", kDefaultMax);
  if (!max.ok()) return max.status();
  Result<Overhead> overhead = has_overhead ? ParseOverhead(overhead_name, overhead_value)
                                           : ParseOverhead("default overhead", kDefaultOverhead);
  if (!overhead.ok()) return overhead.status();

  Budgets b;
  if (has_max) {
    if (*max == 0) return InvalidSetting(max_name, max_value, "max must be above 0", kSizeAccepted);
    if (*max > pool_capacity) {
      return InvalidArgument(Describe(max_name, max_value, *max) + " is above " + capacity_text);
    }
  }
  if (has_initial && *initial > pool_capacity) {
    return InvalidArgument(Describe(initial_name, initial_value, *initial) + " is above " +
                           capacity_text);
  }
  if (has_initial && has_max && *initial > *max) {
    return InvalidArgument(Describe(initial_name, initial_value, *initial) + " is above " +
                           Describe(max_name, max_value, *max) + ": initial must not exceed max");
  }
  // A default max makes room for an explicit initial rather than refuse it.
  b.max = has_max ? *max : std::min(pool_capacity, std::max(*max, has_initial ? *initial : 0));

  if (has_overhead && overhead->kind == Overhead::kBytes && overhead->bytes > pool_capacity) {
    return InvalidArgument(Describe(overhead_name, overhead_value, overhead->bytes) + " is above " +
                           capacity_text);
  }
  b.initial = has_initial ? *initial : std::min(*initial, b.max);
  if (!has_initial && has_overhead) {
    b.initial = std::min(b.initial, LargestInitialFitting(*overhead, pool_capacity));
  }

  b.overhead = overhead->Resolve(b.initial);
  if (!has_overhead) {
    b.overhead = std::min(b.overhead, pool_capacity - b.initial);
  } else if (b.initial + b.overhead > pool_capacity) {  // both below 2^63: no overflow
    return InvalidArgument(Describe(initial_name, initial_value, b.initial) + " plus " +
                           Describe(overhead_name, overhead_value, b.overhead) + " is " +
                           FormatBytes(b.initial + b.overhead) + ", above " + capacity_text);
  }
  return b;
}

std::string FormatBytes(uint64_t bytes) { return FormatSize(bytes).c_str(); }

}  // namespace execmem::config
