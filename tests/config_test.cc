// Sizes, fractions, overheads and budgets as users write them (executor/config.h).
#include "executor/config.h"

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace execmem::config {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr uint64_t kKiB = uint64_t{1} << 10;
constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kTiB = uint64_t{1} << 40;

uint64_t Size(std::string_view value) {
  execmem::Result<uint64_t> v = ParseSize("EXECMEM_MAX", value);
  EXPECT_TRUE(v.ok()) << value << ": " << v.status();
  return v.ok() ? *v : ~uint64_t{0};
}

std::string SizeError(std::string_view value) {
  execmem::Result<uint64_t> v = ParseSize("EXECMEM_MAX", value);
  EXPECT_FALSE(v.ok()) << value << " parsed as " << (v.ok() ? *v : 0);
  if (v.ok()) return "";
  EXPECT_EQ(v.status().code(), EINVAL);
  const std::string message(v.status().message());
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  return message;
}

TEST(ParseSize, PlainBytes) {
  EXPECT_EQ(Size("0"), 0u);
  EXPECT_EQ(Size("1"), 1u);
  EXPECT_EQ(Size("1073741824"), kGiB);
  EXPECT_EQ(Size("100b"), 100u);
  EXPECT_EQ(Size("100B"), 100u);
  EXPECT_EQ(Size("9223372036854775807"), (uint64_t{1} << 63) - 1);
}

TEST(ParseSize, UnitsAreBinaryAndCaseInsensitive) {
  for (std::string_view k : {"64k", "64K", "64kb", "64KB", "64kib", "64KiB", "64KIB"}) {
    EXPECT_EQ(Size(k), 64 * kKiB) << k;
  }
  for (std::string_view m : {"512m", "512M", "512mb", "512MB", "512MiB", "512mib"}) {
    EXPECT_EQ(Size(m), 512 * kMiB) << m;
  }
  for (std::string_view g : {"4g", "4G", "4gb", "4GB", "4GiB"}) EXPECT_EQ(Size(g), 4 * kGiB) << g;
  for (std::string_view t : {"2t", "2T", "2TB", "2TiB"}) EXPECT_EQ(Size(t), 2 * kTiB) << t;
}

TEST(ParseSize, DecimalsRoundDown) {
  EXPECT_EQ(Size("1.5g"), kGiB + kGiB / 2);
  EXPECT_EQ(Size("1.5GiB"), 1610612736u);
  EXPECT_EQ(Size("0.5k"), 512u);
  EXPECT_EQ(Size(".5k"), 512u);
  EXPECT_EQ(Size("1.5"), 1u);        // fractions of a byte round down
  EXPECT_EQ(Size("0.001k"), 1u);     // 1.024 bytes
  EXPECT_EQ(Size("0.1m"), 104857u);  // 104857.6 bytes
  EXPECT_EQ(Size("0.0g"), 0u);
  // Digits past the 19th decimal place are accepted and do not count.
  EXPECT_EQ(Size("1.00000000000000000009999k"), kKiB);
}

TEST(ParseSize, SpacesAroundAndOneBeforeTheUnit) {
  EXPECT_EQ(Size("1.5 GiB"), kGiB + kGiB / 2);
  EXPECT_EQ(Size("  4g\n"), 4 * kGiB);
  EXPECT_EQ(Size("100 b"), 100u);
  EXPECT_THAT(SizeError("1  g"), HasSubstr("unknown unit"));
}

TEST(ParseSize, MessageNamesSettingValueAndWhatIsAccepted) {
  EXPECT_EQ(SizeError("abc"),
            "invalid EXECMEM_MAX \"abc\": not a number; expected a size such as 512m, 4g, 1.5GiB "
            "or 1073741824 (units k, m, g, t are powers of 1024)");
  execmem::Result<uint64_t> v = ParseSize("pool capacity", "lots");
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(std::string(v.status().message()),
              AllOf(HasSubstr("invalid pool capacity \"lots\""), HasSubstr("512m")));
}

TEST(ParseSize, RejectsEmpty) {
  EXPECT_THAT(SizeError(""), HasSubstr("invalid EXECMEM_MAX \"\": empty"));
  EXPECT_THAT(SizeError("   "), HasSubstr("empty"));
}

TEST(ParseSize, RejectsNegative) {
  for (std::string_view v : {"-1g", "-1", "-0"}) {
    EXPECT_THAT(SizeError(v), AllOf(HasSubstr(absl::StrCat("\"", std::string(v), "\"")),
                                    HasSubstr("cannot be negative")));
  }
}

TEST(ParseSize, RejectsGarbage) {
  for (std::string_view v : {"abc", "g", "GiB", ".", "+1g", "nan", "inf", "NaN", "infinity"}) {
    EXPECT_THAT(SizeError(v), HasSubstr("not a number")) << v;
  }
  for (std::string_view v : {"1.", "1.g", "1.2.3g", "1 2g", "1..5g"}) {
    EXPECT_THAT(SizeError(v), HasSubstr("malformed number")) << v;
  }
}

TEST(ParseSize, RejectsUnknownUnits) {
  EXPECT_THAT(SizeError("1x"), HasSubstr("unknown unit \"x\""));
  EXPECT_THAT(SizeError("1gg"), HasSubstr("unknown unit \"gg\""));
  EXPECT_THAT(SizeError("1e9"), HasSubstr("unknown unit \"e9\""));
  EXPECT_THAT(SizeError("0x10"), HasSubstr("unknown unit"));
  EXPECT_THAT(SizeError("1p"), HasSubstr("unknown unit"));
  // A long unit is quoted cut short, like the value (found by tests/fuzz).
  const std::string long_unit = SizeError("1" + std::string(500, '\xff'));
  EXPECT_LT(long_unit.size(), 800u);  // 2 KiB before
  EXPECT_THAT(long_unit, HasSubstr("...\""));
}

TEST(ParseSize, RejectsOverflow) {
  EXPECT_THAT(SizeError("9223372036854775808"), HasSubstr("too large"));  // 2^63
  EXPECT_THAT(SizeError("8388608t"), HasSubstr("too large"));             // 2^63
  EXPECT_THAT(SizeError("99999999999999999999999999"), HasSubstr("too large"));
  EXPECT_THAT(SizeError("18446744073709551616k"), HasSubstr("too large"));  // 2^64 * 1024
  EXPECT_EQ(Size("8388607.999t"), (uint64_t{1} << 63) - static_cast<uint64_t>(0.001 * kTiB) - 1);
}

TEST(ParseSize, RejectsNonzeroBelowOneByte) {
  EXPECT_THAT(SizeError("0.5"), HasSubstr("less than one byte"));
  EXPECT_THAT(SizeError("0.2b"), HasSubstr("less than one byte"));
}

TEST(ParseSize, MessagesStayOnOneLineAndShort) {
  const std::string message = SizeError("4g\nEXECMEM_OOM=abort");
  EXPECT_THAT(message, HasSubstr("\\n"));  // escaped, so the report stays one line
  const std::string long_value(1000, 'x');
  EXPECT_LT(SizeError(long_value).size(), 300u);
}

TEST(ParseFraction, AcceptsFractionsAndPercentages) {
  const auto fraction = [](std::string_view v) {
    execmem::Result<double> f = ParseFraction("fraction", v);
    EXPECT_TRUE(f.ok()) << v << ": " << f.status();
    return f.ok() ? *f : -1.0;
  };
  EXPECT_DOUBLE_EQ(fraction("0.1"), 0.1);
  EXPECT_DOUBLE_EQ(fraction("10%"), 0.1);
  EXPECT_DOUBLE_EQ(fraction("12.5%"), 0.125);
  EXPECT_DOUBLE_EQ(fraction("12.5 %"), 0.125);
  EXPECT_DOUBLE_EQ(fraction(".25"), 0.25);
  EXPECT_DOUBLE_EQ(fraction("0"), 0.0);
  EXPECT_DOUBLE_EQ(fraction("0%"), 0.0);
  EXPECT_DOUBLE_EQ(fraction("99.5%"), 0.995);
  EXPECT_DOUBLE_EQ(fraction("0.9999999999"), 0.999999999);  // kept to 9 places, rounded down
}

TEST(ParseFraction, RejectsOneAndAbove) {
  for (std::string_view v : {"1", "1.0", "100%", "150%", "2", "99999999999999999999999"}) {
    execmem::Result<double> f = ParseFraction("EXECMEM_X", v);
    ASSERT_FALSE(f.ok()) << v;
    EXPECT_THAT(std::string(f.status().message()),
                AllOf(HasSubstr(absl::StrCat("invalid EXECMEM_X \"", std::string(v), "\"")),
                      HasSubstr("must be below"), HasSubstr("100%")));
  }
}

TEST(ParseFraction, RejectsGarbage) {
  for (std::string_view v : {"", "-0.1", "abc", "0.1x", "10%%", "%", "0.1g", "nan"}) {
    execmem::Result<double> f = ParseFraction("EXECMEM_X", v);
    ASSERT_FALSE(f.ok()) << v;
    EXPECT_THAT(std::string(f.status().message()), HasSubstr("expected a fraction below 1"));
  }
}

TEST(ParseOverhead, FractionsPercentagesAndSizes) {
  execmem::Result<Overhead> o = ParseOverhead("EXECMEM_OVERHEAD", "0.15");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->kind, Overhead::kFraction);
  EXPECT_DOUBLE_EQ(o->fraction, 0.15);
  EXPECT_EQ(o->Resolve(100), 15u);          // exact: no 15.000000000000002 rounded up to 16
  EXPECT_EQ(o->Resolve(kGiB), 161061274u);  // 161061273.6 rounded up

  o = ParseOverhead("EXECMEM_OVERHEAD", "10%");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->kind, Overhead::kFraction);
  EXPECT_EQ(o->Resolve(kGiB), 107374183u);  // 107374182.4 rounded up
  EXPECT_EQ(o->Resolve(1), 1u);
  EXPECT_EQ(o->Resolve(0), 0u);

  o = ParseOverhead("EXECMEM_OVERHEAD", "12.5%");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->Resolve(8 * kGiB), kGiB);

  o = ParseOverhead("EXECMEM_OVERHEAD", "256m");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->kind, Overhead::kBytes);
  EXPECT_EQ(o->Resolve(kGiB), 256 * kMiB);
  EXPECT_EQ(o->Resolve(0), 256 * kMiB);

  o = ParseOverhead("EXECMEM_OVERHEAD", "1048576b");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->bytes, kMiB);

  o = ParseOverhead("EXECMEM_OVERHEAD", "0");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->Resolve(kGiB), 0u);
}

TEST(ParseOverhead, RejectsHundredPercentAndAbove) {
  for (std::string_view v : {"100%", "1", "1.0", "150%", "1.5", "268435456"}) {
    execmem::Result<Overhead> o = ParseOverhead("EXECMEM_OVERHEAD", v);
    ASSERT_FALSE(o.ok()) << v;
    EXPECT_THAT(std::string(o.status().message()),
                AllOf(HasSubstr(absl::StrCat("invalid EXECMEM_OVERHEAD \"", std::string(v), "\"")),
                      HasSubstr("overhead must be below 100% of initial")));
  }
  execmem::Result<Overhead> o = ParseOverhead("EXECMEM_OVERHEAD", "268435456");
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("268435456b"));  // how to say bytes
}

TEST(ParseOverhead, RejectsGarbage) {
  for (std::string_view v : {"", "-0.1", "-1g", "abc", "1x", "10%%", "ten percent", "1gg"}) {
    execmem::Result<Overhead> o = ParseOverhead("EXECMEM_OVERHEAD", v);
    ASSERT_FALSE(o.ok()) << v;
    EXPECT_THAT(std::string(o.status().message()),
                AllOf(HasSubstr("invalid EXECMEM_OVERHEAD"),
                      HasSubstr("expected a fraction of initial below 1")));
  }
}

// ---- budgets ------------------------------------------------------------------

constexpr uint64_t kBigPool = 64 * kGiB;

Budgets Resolve(std::string_view initial, std::string_view max, std::string_view overhead,
                uint64_t capacity = kBigPool) {
  execmem::Result<Budgets> b = ResolveBudgets(initial, max, overhead, capacity, "EXECMEM_");
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? *b : Budgets{};
}

std::string ResolveError(std::string_view initial, std::string_view max, std::string_view overhead,
                         uint64_t capacity = kBigPool, std::string_view prefix = "EXECMEM_") {
  execmem::Result<Budgets> b = ResolveBudgets(initial, max, overhead, capacity, prefix);
  if (b.ok()) {
    ADD_FAILURE() << "accepted: initial " << b->initial << " max " << b->max << " overhead "
                  << b->overhead;
    return "";
  }
  EXPECT_EQ(b.status().code(), EINVAL);
  return std::string(b.status().message());
}

TEST(ResolveBudgets, EmptyTakesTheDefaults) {
  const Budgets b = Resolve("", "", "");
  EXPECT_EQ(b.initial, kGiB);
  EXPECT_EQ(b.max, 4 * kGiB);
  EXPECT_EQ(b.overhead, 107374183u);  // 10% of 1 GiB, rounded up
}

TEST(ResolveBudgets, ExplicitValues) {
  const Budgets b = Resolve("2g", "8g", "256m");
  EXPECT_EQ(b.initial, 2 * kGiB);
  EXPECT_EQ(b.max, 8 * kGiB);
  EXPECT_EQ(b.overhead, 256 * kMiB);
  EXPECT_EQ(Resolve("2g", "", "").overhead, 2 * 107374183u - 1);  // 214748364.8 rounded up
  EXPECT_EQ(Resolve("1g", "1g", "0").overhead, 0u);
}

TEST(ResolveBudgets, DefaultsAreCappedByASmallPool) {
  Budgets b = Resolve("", "", "", 512 * kMiB);
  EXPECT_EQ(b.max, 512 * kMiB);
  EXPECT_EQ(b.initial, 512 * kMiB);
  EXPECT_EQ(b.overhead, 0u);  // nothing left beside initial

  b = Resolve("", "", "", 2 * kGiB);
  EXPECT_EQ(b.max, 2 * kGiB);
  EXPECT_EQ(b.initial, kGiB);
  EXPECT_EQ(b.overhead, 107374183u);

  b = Resolve("", "", "", 0);
  EXPECT_EQ(b.initial + b.max + b.overhead, 0u);
}

TEST(ResolveBudgets, DefaultsGiveWayToExplicitValues) {
  // A default initial is capped by an explicit max.
  Budgets b = Resolve("", "256m", "");
  EXPECT_EQ(b.initial, 256 * kMiB);
  EXPECT_EQ(b.max, 256 * kMiB);
  // A default max makes room for an explicit initial.
  b = Resolve("6g", "", "");
  EXPECT_EQ(b.initial, 6 * kGiB);
  EXPECT_EQ(b.max, 6 * kGiB);
  // ... within the pool.
  b = Resolve("3g", "", "", 3 * kGiB + kGiB / 2);
  EXPECT_EQ(b.max, 3 * kGiB + kGiB / 2);
  // A default overhead is capped so that initial + overhead fits the pool.
  b = Resolve("1g", "", "", kGiB + kMiB);
  EXPECT_EQ(b.overhead, kMiB);
  // A default initial shrinks so that an explicit overhead fits beside it.
  b = Resolve("", "", "512m", kGiB);
  EXPECT_EQ(b.initial, 512 * kMiB);
  EXPECT_EQ(b.overhead, 512 * kMiB);
  b = Resolve("", "", "25%", kGiB);
  EXPECT_LE(b.initial + b.overhead, kGiB);
  EXPECT_EQ(b.initial, 858993459u);  // floor(1 GiB / 1.25)
}

TEST(ResolveBudgets, InitialAboveMax) {
  EXPECT_EQ(ResolveError("6g", "4g", ""),
            "EXECMEM_INITIAL \"6g\" (6 GiB) is above EXECMEM_MAX \"4g\" (4 GiB): initial must "
            "not exceed max");
  EXPECT_THAT(ResolveError("6g", "4g", "", kBigPool, ""),
              HasSubstr("initial \"6g\" (6 GiB) is above max \"4g\" (4 GiB)"));
}

TEST(ResolveBudgets, AboveThePoolCapacity) {
  const uint64_t capacity = 23 * kGiB + 400 * kMiB;  // "23.3 GiB" (23.39 rounded down)
  EXPECT_EQ(ResolveError("", "64g", "", capacity),
            "EXECMEM_MAX \"64g\" (64 GiB) is above the pool capacity of 23.3 GiB");
  EXPECT_EQ(ResolveError("30g", "", "", capacity),
            "EXECMEM_INITIAL \"30g\" (30 GiB) is above the pool capacity of 23.3 GiB");
  EXPECT_THAT(ResolveError("", "", "30g", capacity),
              HasSubstr("EXECMEM_OVERHEAD \"30g\" (30 GiB) is above the pool capacity"));
  EXPECT_EQ(ResolveError("20g", "", "25%", capacity),
            "EXECMEM_INITIAL \"20g\" (20 GiB) plus EXECMEM_OVERHEAD \"25%\" (5 GiB) is 25 GiB, "
            "above the pool capacity of 23.3 GiB");
  EXPECT_THAT(ResolveError("20g", "22g", "4g", capacity), HasSubstr("plus EXECMEM_OVERHEAD"));
}

TEST(ResolveBudgets, BadValuesNameTheirSetting) {
  EXPECT_THAT(ResolveError("abc", "", ""), HasSubstr("invalid EXECMEM_INITIAL \"abc\""));
  EXPECT_THAT(ResolveError("", "-1g", ""), HasSubstr("invalid EXECMEM_MAX \"-1g\""));
  EXPECT_THAT(ResolveError("", "", "100%"),
              HasSubstr("invalid EXECMEM_OVERHEAD \"100%\": overhead must be below 100%"));
  EXPECT_THAT(ResolveError("", "0", ""), HasSubstr("max must be above 0"));
  EXPECT_THAT(ResolveError("x", "", "", kBigPool, ""), HasSubstr("invalid initial \"x\""));
  EXPECT_THAT(ResolveError("", "", "2", kBigPool, ""), HasSubstr("invalid overhead \"2\""));
}

// ---- FormatBytes -------------------------------------------------------------

TEST(FormatBytes, Units) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(100), "100 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(kKiB), "1 KiB");
  EXPECT_EQ(FormatBytes(12 * kKiB), "12 KiB");
  EXPECT_EQ(FormatBytes(512 * kMiB), "512 MiB");
  EXPECT_EQ(FormatBytes(kGiB + kGiB / 2), "1.5 GiB");
  EXPECT_EQ(FormatBytes(kGiB + 1), "1.0 GiB");      // not exact: one decimal
  EXPECT_EQ(FormatBytes(4 * kGiB - 1), "3.9 GiB");  // rounded down, never up
  EXPECT_EQ(FormatBytes(2 * kTiB), "2 TiB");
  EXPECT_EQ(FormatBytes(uint64_t{1} << 50), "1 PiB");
  EXPECT_EQ(FormatBytes(~uint64_t{0}), "15.9 EiB");
}

TEST(FormatBytes, RoundTripsThroughParseSize) {
  for (uint64_t v :
       {uint64_t{0}, uint64_t{100}, 12 * kKiB, 512 * kMiB, kGiB + kGiB / 2, 3 * kTiB}) {
    EXPECT_EQ(Size(FormatBytes(v)), v) << FormatBytes(v);
  }
}

}  // namespace
}  // namespace execmem::config
