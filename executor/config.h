// Settings as users write them: sizes ("512m", "1.5GiB"), fractions ("0.1",
// "10%") and executor budgets, parsed into bytes with messages that say which
// setting was wrong, what it held and what is accepted.
//
// Used by the C API (execmem_executor_create, execmem_set_pool_capacity) and by
// the LD_PRELOAD shim before main, so nothing here has static initialisers:
// the tables are constexpr and the texts string_views. Errors are
// execmem::Status values (include/execmem.hpp), and text is built with the
// standard library: libexecmem_preload.so needs libc alone, and Debian's
// compiled Abseil exists only as shared libraries or non-PIC archives (see
// the top-level CMakeLists.txt), so the layers use header-only Abseil only.
//
// Sizes:    number [ " " ] [ unit ], case-insensitive, surrounding blanks ignored.
//           number: digits with an optional decimal part ("1", "1.5", ".5").
//           unit:   b | k | m | g | t, optionally followed by "b" or "ib"
//                   ("K", "kb", "KiB", "MB", "GiB", "tb"...). Always binary
//                   (1k = 1024; "MB" means MiB too, as in the JVM and Spark).
//           Fractions of a byte are rounded down ("1.5" = 1 byte); a nonzero
//           value that rounds down to 0 bytes ("0.2b") is rejected as a
//           likely mistake; sizes must be below 2^63 bytes (8 EiB). Only the
//           first 19 decimal places count; further digits must be digits.
// Fractions: "0.1" or "10%", 0 <= f < 1, kept to 9 decimal places (rounded down).
// Overhead: a percentage ("10%") or a number without a unit ("0.1") is a
//           fraction of initial; anything else is a size ("256m", "1048576b").
//           A bare number >= 1 is rejected rather than read as bytes: "1"
//           would otherwise mean either 100% or one byte.
#ifndef EXECMEM_EXECUTOR_CONFIG_H_
#define EXECMEM_EXECUTOR_CONFIG_H_

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "execmem.hpp"  // Status, Result

namespace execmem::config {

// What each kind of setting accepts, quoted in error messages and in the
// options table (api/options.cc) so that the two cannot disagree.
inline constexpr std::string_view kSizeAccepted =
    "a size such as 512m, 4g, 1.5GiB or 1073741824 (units k, m, g, t are powers of 1024)";
inline constexpr std::string_view kFractionAccepted =
    "a fraction below 1 such as 0.1, or a percentage below 100% such as 10%";
inline constexpr std::string_view kOverheadAccepted =
    "a fraction of initial below 1 such as 0.1, a percentage below 100% such as 10%, "
    "or a size such as 256m";

// The budget defaults, written as a user would write them. ResolveBudgets
// parses these very strings, so the documentation cannot drift from them.
inline constexpr std::string_view kDefaultInitial = "1g";
inline constexpr std::string_view kDefaultMax = "4g";
inline constexpr std::string_view kDefaultOverhead = "10%";

// `s` without leading and trailing ASCII whitespace.
inline std::string_view StripBlanks(std::string_view s) {
  constexpr std::string_view kBlanks = " \t\n\v\f\r";
  const size_t first = s.find_first_not_of(kBlanks);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kBlanks) - first + 1);
}

// `s` with A-Z made a-z (nothing else changes: settings are ASCII).
std::string AsciiLower(std::string_view s);

// The error of a bad argument (EINVAL, as the C API returns it).
inline Status InvalidArgument(std::string message) { return Status(EINVAL, std::move(message)); }

// The one shape of every "bad setting" message, on one line whatever `value`
// holds (it is escaped, and cut after 64 bytes):
//   invalid EXECMEM_MAX "abc": not a number; expected a size such as ...
// `reason` may be empty.
Status InvalidSetting(std::string_view setting, std::string_view value, std::string_view reason,
                      std::string_view accepted);

// `setting` names the value in error messages ("EXECMEM_MAX", "max").
Result<uint64_t> ParseSize(std::string_view setting, std::string_view value);

// 0 <= result < 1; a multiple of 1e-9 (the nearest double to one).
Result<double> ParseFraction(std::string_view setting, std::string_view value);

struct Overhead {
  enum Kind { kFraction, kBytes };
  Kind kind = kFraction;
  double fraction = 0;  // of initial, when kind == kFraction
  uint64_t bytes = 0;   // when kind == kBytes

  // The overhead in bytes for an executor whose initial reservation is
  // `initial`: a fraction is rounded up, so that 10% of anything nonzero
  // is at least one byte.
  uint64_t Resolve(uint64_t initial) const;
};

Result<Overhead> ParseOverhead(std::string_view setting, std::string_view value);

struct Budgets {
  uint64_t initial = 0;
  uint64_t max = 0;
  uint64_t overhead = 0;
};

// Budgets of one executor from its settings; "" takes the default.
//
// Defaults (kDefault*) give way; explicit values are checked:
//  - max:      default 4g, capped by the pool capacity and raised to an
//              explicit initial; an explicit max must be > 0 and at most the
//              capacity.
//  - initial:  default 1g, capped by max and so that initial + an explicit
//              overhead fits the capacity; an explicit initial must be at
//              most max and the capacity.
//  - overhead: default 10% of initial, capped so that initial + overhead
//              fits the capacity; an explicit overhead must fit beside initial.
// Messages name settings as `setting_prefix` + the upper-case name
// ("EXECMEM_MAX") when a prefix is given, else as "initial", "max", "overhead".
Result<Budgets> ResolveBudgets(std::string_view initial, std::string_view max,
                               std::string_view overhead, uint64_t pool_capacity,
                               std::string_view setting_prefix = "");

// "100 B", "12 KiB", "512 MiB", "1.5 GiB": exact multiples without decimals,
// anything else with one decimal, rounded down (so "1.0 GiB" is a little more
// than 1 GiB, and a value never reads as more than it is).
std::string FormatBytes(uint64_t bytes);

}  // namespace execmem::config

#endif  // EXECMEM_EXECUTOR_CONFIG_H_
