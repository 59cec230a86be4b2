// The stats report (api/stats_format.h): JSON checked by a small strict
// parser written here (RFC 8259, UTF-8 included), text by its rows and widths.
#include "api/stats_format.h"

#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "api/prometheus_format.h"
#include "api/timeline.h"
#include "execmem.h"
#include "execmem.hpp"
#include "executor/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pool/page.h"

namespace execmem {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- a minimal strict JSON parser ------------------------------------------------

struct Json {
  enum Type { kNull, kBool, kNumber, kString, kArray, kObject } type = kNull;
  std::string text;               // a string's decoded value, or a number as written
  std::vector<Json> items;        // an array's items, or an object's member values
  std::vector<std::string> keys;  // an object's keys, in order, duplicates kept

  // The member `key`; a missing one fails the test and reads as null.
  const Json* Get(std::string_view key) const {
    static const Json kMissing;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] == key) return &items[i];
    }
    ADD_FAILURE() << "no member \"" << key << "\"";
    return &kMissing;
  }
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}

  // The document, or nullptr with error() set.
  std::unique_ptr<Json> Parse() {
    auto value = std::make_unique<Json>();
    if (!Value(*value)) return nullptr;
    SkipSpace();
    if (pos_ != s_.size()) return Fail("trailing characters");
    return value;
  }
  const std::string& error() const { return error_; }

 private:
  std::nullptr_t Fail(std::string_view what) {
    if (error_.empty()) error_ = absl::StrCat(std::string(what), " at offset ", pos_);
    return nullptr;
  }
  bool Eat(char c) {
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void SkipSpace() {
    while (pos_ < s_.size() && std::strchr(" \t\n\r", s_[pos_]) != nullptr && s_[pos_] != 0) ++pos_;
  }
  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return Fail("bad literal"), false;
    pos_ += word.size();
    return true;
  }

  bool Value(Json& v) {
    SkipSpace();
    if (pos_ >= s_.size()) return Fail("unexpected end"), false;
    const char c = s_[pos_];
    if (c == '{') return Object(v);
    if (c == '[') return Array(v);
    if (c == '"') return v.type = Json::kString, String(v.text);
    if (c == 't') return v.type = Json::kBool, v.text = "true", Literal("true");
    if (c == 'f') return v.type = Json::kBool, v.text = "false", Literal("false");
    if (c == 'n') return v.type = Json::kNull, Literal("null");
    return v.type = Json::kNumber, Number(v.text);
  }

  bool Object(Json& v) {
    v.type = Json::kObject;
    ++pos_;
    if (Eat('}')) return true;
    do {
      SkipSpace();
      std::string key;
      if (pos_ >= s_.size() || s_[pos_] != '"' || !String(key)) return Fail("bad key"), false;
      if (!Eat(':')) return Fail("missing ':'"), false;
      Json member;
      if (!Value(member)) return false;
      v.keys.push_back(std::move(key));
      v.items.push_back(std::move(member));
    } while (Eat(','));
    return Eat('}') || (Fail("missing '}'"), false);
  }

  bool Array(Json& v) {
    v.type = Json::kArray;
    ++pos_;
    if (Eat(']')) return true;
    do {
      Json item;
      if (!Value(item)) return false;
      v.items.push_back(std::move(item));
    } while (Eat(','));
    return Eat(']') || (Fail("missing ']'"), false);
  }

  bool Digits() {
    const size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

  bool Number(std::string& out) {
    const size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '0') {
      ++pos_;
    } else if (!Digits()) {
      return Fail("bad value"), false;
    }
    if (pos_ < s_.size() && s_[pos_] == '.' && (++pos_, !Digits()))
      return Fail("bad fraction"), false;
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!Digits()) return Fail("bad exponent"), false;
    }
    out = std::string(s_.substr(start, pos_ - start));
    return true;
  }

  static void AppendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // Length of a valid UTF-8 sequence of 2..4 bytes at pos_, or 0.
  size_t Utf8Length() const {
    const auto b = [&](size_t i) {
      return pos_ + i < s_.size() ? static_cast<unsigned char>(s_[pos_ + i]) : 0;
    };
    const auto cont = [&](size_t i) { return (b(i) & 0xC0) == 0x80; };
    const unsigned lead = b(0);
    if (lead >= 0xC2 && lead <= 0xDF) return cont(1) ? 2 : 0;
    if (lead >= 0xE0 && lead <= 0xEF) {
      const uint32_t cp = ((lead & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
      return cont(1) && cont(2) && cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF) ? 3 : 0;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
      const uint32_t cp =
          ((lead & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
      return cont(1) && cont(2) && cont(3) && cp >= 0x10000 && cp <= 0x10FFFF ? 4 : 0;
    }
    return 0;
  }

  bool String(std::string& out) {
    ++pos_;  // '"'
    while (pos_ < s_.size()) {
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return Fail("raw control character in string"), false;
      if (c >= 0x80) {
        const size_t n = Utf8Length();
        if (n == 0) return Fail("invalid UTF-8"), false;
        out.append(s_.substr(pos_, n));
        pos_ += n;
        continue;
      }
      ++pos_;
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (pos_ >= s_.size()) break;
      const char e = s_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          if (pos_ + 4 > s_.size()) return Fail("short \\u"), false;
          uint32_t cp = 0;
          for (int i = 0; i < 4; ++i) {
            const char h = s_[pos_++];
            const char* digits = "0123456789abcdef";
            const char* d = std::strchr(digits, h | 0x20);
            if (h == 0 || d == nullptr) return Fail("bad \\u"), false;
            cp = cp * 16 + static_cast<uint32_t>(d - digits);
          }
          if (cp >= 0xD800 && cp <= 0xDFFF) return Fail("surrogate \\u"), false;  // not emitted
          AppendUtf8(out, cp);
          break;
        }
        default:
          return Fail("bad escape"), false;
      }
    }
    return Fail("unterminated string"), false;
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

std::unique_ptr<Json> ParseJson(std::string_view s) {
  JsonParser parser(s);
  std::unique_ptr<Json> json = parser.Parse();
  EXPECT_NE(json, nullptr) << parser.error() << "\n" << s;
  return json;
}

TEST(JsonParser, RejectsWhatIsNotJson) {
  for (std::string_view bad : {"", "{", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "\"\x01\"", "01",
                               "\"\xff\"", "\"\\x41\"", "{} {}", "[1,]", "\"abc"}) {
    EXPECT_EQ(JsonParser(bad).Parse(), nullptr) << bad;
  }
  EXPECT_NE(JsonParser(R"({"a":[1,-2.5e3,"\u00e9",true,null],"b":{}})").Parse(), nullptr);
}

// ---- fixtures -------------------------------------------------------------------

constexpr std::string_view kPoolKeys[] = {
    "capacity", "reserved", "granted",       "held",     "cached",  "returned_to_os", "arenas",
    "mapped",   "resident", "peak_resident", "metadata", "tracked", "untracked"};
constexpr std::string_view kExecutorKeys[] = {"name",
                                              "initial",
                                              "max",
                                              "overhead",
                                              "used",
                                              "peak_used",
                                              "footprint",
                                              "peak_footprint",
                                              "overhead_in_use",
                                              "allocations",
                                              "frees",
                                              "spill_calls",
                                              "spill_failures",
                                              "bytes_spilled",
                                              "oom_count",
                                              "ns_above_initial",
                                              "emergency_uses",
                                              "emergency_bytes",
                                              "emergency_active"};

// Every field a different value, so that a swapped field shows.
execmem_pool_stats_t MakePool() {
  execmem_pool_stats_t p{};
  p.version = EXECMEM_STATS_VERSION;
  p.capacity = 24ull << 30;
  p.reserved = (1ull << 30) + 1;
  p.granted = 3ull << 20;
  p.held = 700ull << 20;
  p.cached = 12ull << 20;
  p.returned_to_os = 5ull << 30;
  p.arenas = 7;
  p.mapped = 64ull << 30;
  p.resident = 900ull << 20;
  p.peak_resident = 2ull << 30;
  p.metadata = 3ull << 20;
  p.tracked = 703ull << 20;    // held + metadata
  p.untracked = 197ull << 20;  // resident - tracked
  return p;
}

// Version 4's shared-pool fields, in struct order, and their keys.
constexpr std::string_view kSharedKeys[] = {"shared_capacity",
                                            "shared_reserved",
                                            "shared_granted",
                                            "shared_peak",
                                            "shared_members",
                                            "shared_refusals",
                                            "shared_reclaimed_members",
                                            "shared_reclaimed_bytes",
                                            "member_reserved",
                                            "member_granted",
                                            "member_used",
                                            "member_asked",
                                            "member_answered"};
std::vector<uint64_t*> SharedFields(execmem_pool_stats_t& p) {
  return {&p.shared_capacity,
          &p.shared_reserved,
          &p.shared_granted,
          &p.shared_peak,
          &p.shared_members,
          &p.shared_refusals,
          &p.shared_reclaimed_members,
          &p.shared_reclaimed_bytes,
          &p.member_reserved,
          &p.member_granted,
          &p.member_used,
          &p.member_asked,
          &p.member_answered};
}

// MakePool of a member of the shared pool `name`: every shared field a
// different value (5000 + its index).
execmem_pool_stats_t MakeMemberPool(std::string_view name) {
  execmem_pool_stats_t p = MakePool();
  memcpy(p.shared_name, name.data(), std::min(name.size(), sizeof(p.shared_name) - 1));
  const std::vector<uint64_t*> fields = SharedFields(p);
  for (size_t i = 0; i < fields.size(); ++i) *fields[i] = 5000 + i;
  return p;
}

// Every numeric field, in struct order.
std::vector<uint64_t*> Fields(execmem_executor_stats_t& e) {
  return {&e.initial,          &e.max,
          &e.overhead,         &e.used,
          &e.peak_used,        &e.footprint,
          &e.peak_footprint,   &e.overhead_in_use,
          &e.allocations,      &e.frees,
          &e.spill_calls,      &e.spill_failures,
          &e.bytes_spilled,    &e.oom_count,
          &e.ns_above_initial, &e.emergency_uses,
          &e.emergency_bytes,  &e.emergency_active};
}

execmem_executor_stats_t MakeExecutor(std::string_view name, uint64_t seed) {
  execmem_executor_stats_t e{};
  e.version = EXECMEM_STATS_VERSION;
  memcpy(e.name, name.data(), std::min(name.size(), sizeof(e.name)));
  const std::vector<uint64_t*> fields = Fields(e);
  for (size_t i = 0; i < fields.size(); ++i) *fields[i] = seed * 1000 + i + 1;
  return e;
}

uint64_t PoolField(const execmem_pool_stats_t& p, std::string_view key) {
  const std::map<std::string_view, uint64_t> values = {
      {"capacity", p.capacity},  {"reserved", p.reserved},
      {"granted", p.granted},    {"held", p.held},
      {"cached", p.cached},      {"returned_to_os", p.returned_to_os},
      {"arenas", p.arenas},      {"mapped", p.mapped},
      {"resident", p.resident},  {"peak_resident", p.peak_resident},
      {"metadata", p.metadata},  {"tracked", p.tracked},
      {"untracked", p.untracked}};
  return values.at(key);
}

const Json& FirstExecutor(const Json& doc) {
  static const Json kMissing;
  const Json* list = doc.Get("executors");
  if (list->items.empty()) {
    ADD_FAILURE() << "no executors";
    return kMissing;
  }
  return list->items[0];
}

// ---- JSON -------------------------------------------------------------------------

TEST(StatsJson, HasEveryFieldWithItsValue) {
  const execmem_pool_stats_t pool = MakePool();
  const std::vector<execmem_executor_stats_t> executors = {MakeExecutor("default", 1),
                                                           MakeExecutor("query-7", 2)};
  const std::string text = FormatStatsJson(pool, executors);
  const std::unique_ptr<Json> json = ParseJson(text);
  ASSERT_NE(json, nullptr);
  ASSERT_EQ(json->type, Json::kObject);
  EXPECT_THAT(json->keys, ElementsAreArray({"version", "pool", "executors"}));
  EXPECT_EQ(json->Get("version")->text, std::to_string(EXECMEM_STATS_VERSION));

  const Json* p = json->Get("pool");
  ASSERT_EQ(p->type, Json::kObject);
  EXPECT_THAT(p->keys, ElementsAreArray(kPoolKeys));
  for (std::string_view key : kPoolKeys) {
    EXPECT_EQ(p->Get(key)->type, Json::kNumber);
    EXPECT_EQ(p->Get(key)->text, absl::StrCat(PoolField(pool, key))) << key;
  }

  const Json* list = json->Get("executors");
  ASSERT_EQ(list->type, Json::kArray);
  ASSERT_EQ(list->items.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const Json& e = list->items[i];
    EXPECT_THAT(e.keys, ElementsAreArray(kExecutorKeys));
    EXPECT_EQ(e.Get("name")->text, i == 0 ? "default" : "query-7");
    // Fields in struct order hold seed * 1000 + 1, + 2...
    for (size_t k = 1; k < std::size(kExecutorKeys); ++k) {
      EXPECT_EQ(e.Get(kExecutorKeys[k])->text, absl::StrCat((i + 1) * 1000 + k))
          << kExecutorKeys[k];
    }
  }
}

TEST(StatsJson, SharedPoolFiguresOnlyInASharedPool) {
  // Not a member: the pool object is as before version 4.
  std::unique_ptr<Json> json = ParseJson(FormatStatsJson(MakePool(), {}));
  ASSERT_NE(json, nullptr);
  EXPECT_THAT(json->Get("pool")->keys, ElementsAreArray(kPoolKeys));

  // A member: the name (escaped), then every shared field with its value.
  const execmem_pool_stats_t pool = MakeMemberPool("pg\"1\\");
  json = ParseJson(FormatStatsJson(pool, {}));
  ASSERT_NE(json, nullptr);
  const Json* p = json->Get("pool");
  std::vector<std::string_view> keys(std::begin(kPoolKeys), std::end(kPoolKeys));
  keys.push_back("shared_name");
  keys.insert(keys.end(), std::begin(kSharedKeys), std::end(kSharedKeys));
  EXPECT_THAT(p->keys, ElementsAreArray(keys));
  EXPECT_EQ(p->Get("shared_name")->text, "pg\"1\\");
  for (size_t i = 0; i < std::size(kSharedKeys); ++i) {
    EXPECT_EQ(p->Get(kSharedKeys[i])->type, Json::kNumber);
    EXPECT_EQ(p->Get(kSharedKeys[i])->text, std::to_string(5000 + i)) << kSharedKeys[i];
  }
}

TEST(StatsJson, LargestValuesAreExact) {
  execmem_pool_stats_t pool = MakePool();
  pool.mapped = ~uint64_t{0};
  execmem_executor_stats_t e = MakeExecutor("x", 1);
  e.allocations = ~uint64_t{0};
  const std::unique_ptr<Json> json = ParseJson(FormatStatsJson(pool, {&e, 1}));
  ASSERT_NE(json, nullptr);
  EXPECT_EQ(json->Get("pool")->Get("mapped")->text, "18446744073709551615");
  EXPECT_EQ(FirstExecutor(*json).Get("allocations")->text, "18446744073709551615");
}

TEST(StatsJson, NoExecutors) {
  const std::string text = FormatStatsJson(MakePool(), {});
  const std::unique_ptr<Json> json = ParseJson(text);
  ASSERT_NE(json, nullptr);
  EXPECT_EQ(json->Get("executors")->type, Json::kArray);
  EXPECT_TRUE(json->Get("executors")->items.empty());
}

TEST(StatsJson, NamesAreEscaped) {
  struct Case {
    std::string name;
    std::string decoded;
  };
  const Case cases[] = {
      {"say \"hi\"", "say \"hi\""},
      {"back\\slash", "back\\slash"},
      {"line\nbreak\ttab\x01\x1f", "line\nbreak\ttab\x01\x1f"},
      {"ex\xC3\xA9"
       "cuteur \xE2\x82\xAC",
       "ex\xC3\xA9"
       "cuteur \xE2\x82\xAC"},  // é, €
      {"bad\xFF"
       "byte",
       "bad\xEF\xBF\xBD"
       "byte"},                                                  // -> U+FFFD
      {"cut\xE2\x82", "cut\xEF\xBF\xBD\xEF\xBF\xBD"},            // truncated €
      {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},  // a surrogate
      {"</script>", "</script>"},
  };
  for (const Case& c : cases) {
    const execmem_executor_stats_t e = MakeExecutor(c.name, 1);
    const std::unique_ptr<Json> json = ParseJson(FormatStatsJson(MakePool(), {&e, 1}));
    ASSERT_NE(json, nullptr) << c.name;
    EXPECT_EQ(FirstExecutor(*json).Get("name")->text, c.decoded);
  }
}

TEST(StatsJson, NameFillingAllSixtyFourBytes) {
  const std::string name(64, 'n');  // no NUL terminator in the struct
  const execmem_executor_stats_t e = MakeExecutor(name, 3);
  const std::unique_ptr<Json> json = ParseJson(FormatStatsJson(MakePool(), {&e, 1}));
  ASSERT_NE(json, nullptr);
  EXPECT_EQ(FirstExecutor(*json).Get("name")->text, name);
}

// ---- text -------------------------------------------------------------------------

std::vector<std::string> Lines(const std::string& text) {
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  lines.pop_back();  // after the final newline
  return lines;
}

TEST(StatsText, RowsPerExecutorAndPoolLines) {
  execmem_executor_stats_t a = MakeExecutor("default", 1);
  a.used = 12ull << 20;
  a.peak_used = (3ull << 30) / 2;
  a.initial = 1ull << 30;
  a.max = 4ull << 30;
  a.allocations = 123456;
  a.oom_count = 3;
  a.ns_above_initial = 2'500'000'000;
  const execmem_executor_stats_t b = MakeExecutor("query-7", 2);
  const std::string text = FormatStatsText(MakePool(), {a, b});
  const std::vector<std::string> lines = Lines(text);

  EXPECT_EQ(lines[0], "execmem stats (version " + std::to_string(EXECMEM_STATS_VERSION) + ")");
  std::vector<std::string> default_rows, query_rows;
  for (const std::string& line : lines) {
    EXPECT_LT(line.size(), 130u) << line;
    if (line.starts_with("default ")) default_rows.push_back(line);
    if (line.starts_with("query-7 ")) query_rows.push_back(line);
  }
  ASSERT_EQ(default_rows.size(), 2u) << text;  // memory row and activity row
  ASSERT_EQ(query_rows.size(), 2u) << text;
  EXPECT_THAT(default_rows[0], HasSubstr("12 MiB"));
  EXPECT_THAT(default_rows[0], HasSubstr("1.5 GiB"));
  EXPECT_THAT(default_rows[0], HasSubstr("4 GiB"));
  EXPECT_THAT(default_rows[1], HasSubstr("123456"));
  EXPECT_THAT(default_rows[1], HasSubstr("2.5 s"));
  EXPECT_THAT(text, HasSubstr("peak footprint"));
  EXPECT_THAT(text, HasSubstr("allocations"));
  EXPECT_THAT(text, HasSubstr("OOMs"));
  EXPECT_THAT(text, HasSubstr("pool: capacity 24 GiB, reserved 1.0 GiB"));
  EXPECT_THAT(text, HasSubstr("held 700 MiB (cached 12 MiB), returned to OS 5 GiB, arenas 7, "
                              "mapped 64 GiB"));
}

TEST(StatsText, ResidentTrackedAndUntracked) {
  const std::vector<std::string> lines = Lines(FormatStatsText(MakePool(), {}));
  ASSERT_GE(lines.size(), 3u);
  const std::vector<std::string> last(lines.end() - 3, lines.end());
  EXPECT_EQ(last[0], "pool: resident 900 MiB (peak 2 GiB), tracked 703 MiB, untracked 197 MiB");
  // footprints = held - cached
  EXPECT_EQ(last[1], "pool: tracked = footprints 688 MiB + cached 12 MiB + metadata 3 MiB");
  EXPECT_TRUE(last[2].starts_with("(resident: ")) << last[2];
  EXPECT_THAT(last[2], HasSubstr("untracked"));
  for (const std::string& line : last) EXPECT_LT(line.size(), 130u) << line;

  execmem_pool_stats_t odd = MakePool();
  odd.cached = odd.held + 1;  // snapshots that disagree never show a negative part
  EXPECT_THAT(FormatStatsText(odd, {}), HasSubstr("tracked = footprints 0 B + cached"));
}

// Where each header label of a table line ends: labels are separated by two
// or more spaces, and the cells below are right-aligned to them.
std::map<std::string, size_t> HeaderEnds(std::string_view header) {
  std::map<std::string, size_t> ends;
  size_t i = 0;
  while (i < header.size()) {
    const size_t start = i;
    while (i < header.size() &&
           !(header[i] == ' ' && i + 1 < header.size() && header[i + 1] == ' ')) {
      ++i;
    }
    ends[std::string(header.substr(start, i - start))] = i;
    while (i < header.size() && header[i] == ' ') ++i;
  }
  return ends;
}

TEST(StatsText, CellsSitUnderTheirHeaders) {
  execmem_executor_stats_t e = MakeExecutor("worker", 1);
  const uint64_t kMiB = 1ull << 20;
  e.used = 1 * kMiB;
  e.peak_used = 2 * kMiB;
  e.footprint = 3 * kMiB;
  e.peak_footprint = 4 * kMiB;
  e.overhead_in_use = 5 * kMiB;
  e.initial = 6 * kMiB;
  e.max = 7 * kMiB;
  e.overhead = 8 * kMiB;
  e.allocations = 11;
  e.frees = 12;
  e.spill_calls = 13;
  e.spill_failures = 14;
  e.bytes_spilled = 9 * kMiB;
  e.oom_count = 15;
  e.ns_above_initial = 16'000'000;
  const std::vector<std::string> lines = Lines(FormatStatsText(MakePool(), {&e, 1}));
  ASSERT_GE(lines.size(), 6u);
  const std::pair<std::string, std::string> memory[] = {
      {"used", "1 MiB"},          {"peak used", "2 MiB"},
      {"footprint", "3 MiB"},     {"peak footprint", "4 MiB"},
      {"overhead used", "5 MiB"}, {"initial", "6 MiB"},
      {"max", "7 MiB"},           {"overhead", "8 MiB"}};
  const std::pair<std::string, std::string> activity[] = {
      {"allocations", "11"}, {"frees", "12"}, {"spill calls", "13"},       {"spill failures", "14"},
      {"spilled", "9 MiB"},  {"OOMs", "15"},  {"above initial", "16.0 ms"}};
  const auto check = [](const std::string& header, const std::string& row, const auto& cells) {
    const std::map<std::string, size_t> ends = HeaderEnds(header);
    EXPECT_EQ(ends.size(), std::size(cells) + 1) << header;  // + "executor"
    EXPECT_TRUE(row.starts_with("worker ")) << row;
    for (const auto& [label, value] : cells) {
      ASSERT_EQ(ends.count(label), 1u) << label << " in " << header;
      EXPECT_TRUE(row.substr(0, ends.at(label)).ends_with("  " + value))
          << label << " should be " << value << " in\n"
          << header << "\n"
          << row;
    }
  };
  check(lines[1], lines[2], memory);
  check(lines[4], lines[5], activity);
}

TEST(StatsText, EmergencyLineOnlyWhereTheReserveWasUsed) {
  execmem_executor_stats_t used = MakeExecutor("failing", 1);
  used.emergency_uses = 3;
  used.emergency_bytes = 1536;
  used.emergency_active = 0;
  execmem_executor_stats_t active = MakeExecutor("stuck", 2);
  active.emergency_uses = 0;
  active.emergency_bytes = 0;
  active.emergency_active = 1;
  execmem_executor_stats_t quiet = MakeExecutor("fine", 3);
  quiet.emergency_uses = quiet.emergency_bytes = quiet.emergency_active = 0;
  const std::string text = FormatStatsText(MakePool(), {used, active, quiet});
  EXPECT_THAT(text, HasSubstr("\nemergency reserve of failing: served 3 request(s), 1.5 KiB after "
                              "a refusal\n"));
  EXPECT_THAT(text, HasSubstr("\nemergency reserve of stuck: served 0 request(s), 0 B after a "
                              "refusal (in the emergency state now)\n"));
  EXPECT_THAT(text, Not(HasSubstr("emergency reserve of fine")));
}

TEST(StatsText, ColumnsAreAligned) {
  execmem_executor_stats_t big = MakeExecutor("a-rather-long-executor", 1);
  big.used = 1023ull << 20;  // "1023 MiB", a wide cell
  const execmem_executor_stats_t small = MakeExecutor("x", 2);
  const std::vector<std::string> lines = Lines(FormatStatsText(MakePool(), {big, small}));
  // Header and rows of each table: right-aligned, so all end in the same column.
  std::vector<size_t> table_widths;
  for (size_t i = 1; i < lines.size() && !lines[i].starts_with("pool:"); ++i) {
    if (lines[i].empty() || lines[i].starts_with("emergency reserve of ")) continue;
    table_widths.push_back(lines[i].size());
  }
  ASSERT_EQ(table_widths.size(), 6u);  // two tables of a header and two rows
  EXPECT_EQ(table_widths[0], table_widths[1]);
  EXPECT_EQ(table_widths[0], table_widths[2]);
  EXPECT_EQ(table_widths[3], table_widths[4]);
  EXPECT_EQ(table_widths[3], table_widths[5]);
  // The "used" header ends where the used cells end.
  const size_t used_end = lines[1].find("used") + 4;
  EXPECT_EQ(lines[2].substr(0, used_end).ends_with("1023 MiB"), true) << lines[2];
}

TEST(StatsText, WidestValuesStayUnder130Columns) {
  execmem_executor_stats_t e = MakeExecutor(std::string(64, 'w'), 1);
  for (uint64_t* f : Fields(e)) *f = ~uint64_t{0};
  execmem_executor_stats_t kib = MakeExecutor("k", 2);  // "1023.9 KiB": the widest size
  for (uint64_t* f : {&kib.used, &kib.peak_used, &kib.footprint, &kib.peak_footprint,
                      &kib.overhead_in_use, &kib.initial, &kib.max, &kib.overhead}) {
    *f = (1ull << 20) - 1;
  }
  for (uint64_t* f :
       {&kib.allocations, &kib.frees, &kib.spill_calls, &kib.spill_failures, &kib.oom_count}) {
    *f = 999'999'999'999;  // the widest exact count
  }
  execmem_pool_stats_t pool{};
  pool.capacity = pool.reserved = pool.granted = pool.held = pool.cached = pool.returned_to_os =
      pool.arenas = pool.mapped = pool.resident = pool.peak_resident = pool.metadata =
          pool.tracked = pool.untracked = ~uint64_t{0};
  const std::string text = FormatStatsText(pool, {e, kib});
  for (const std::string& line : Lines(text)) EXPECT_LT(line.size(), 130u) << line;
  EXPECT_THAT(text, HasSubstr("1023.9 KiB"));
  EXPECT_THAT(text, HasSubstr("15.9 EiB"));
  EXPECT_THAT(text, HasSubstr("18.4E"));  // 2^64 - 1 allocations
  EXPECT_THAT(text, HasSubstr("999999999999"));
  EXPECT_THAT(text, HasSubstr(std::string(23, 'w') + "~"));  // cut to 24 columns
  EXPECT_THAT(text, Not(HasSubstr(std::string(25, 'w'))));
}

TEST(StatsText, SharedPoolLinesOnlyInASharedPool) {
  EXPECT_THAT(FormatStatsText(MakePool(), {}), Not(HasSubstr("shared pool")));
  execmem_pool_stats_t pool = MakeMemberPool("dask-node1");
  pool.shared_capacity = 1ull << 30;
  pool.shared_reserved = 100ull << 20;
  pool.shared_granted = 412ull << 20;
  pool.shared_peak = 900ull << 20;
  pool.shared_members = 3;
  pool.shared_refusals = 17;
  pool.shared_reclaimed_members = 1;
  pool.shared_reclaimed_bytes = 64ull << 20;
  pool.member_reserved = 10ull << 20;
  pool.member_granted = 200ull << 20;
  pool.member_used = 180ull << 20;
  pool.member_asked = 4;
  pool.member_answered = 3;
  const std::string text = FormatStatsText(pool, {});
  EXPECT_THAT(text, HasSubstr("\nshared pool dask-node1: capacity 1 GiB, reserved 100 MiB, "
                              "granted 412 MiB, peak 900 MiB, 3 member(s)\n"));
  EXPECT_THAT(text, HasSubstr("\nshared pool: free 512 MiB; refused 17 request(s); reclaimed 1 "
                              "dead member(s) (64 MiB)\n"));
  EXPECT_THAT(text, HasSubstr("\nshared pool: this process reserved 10 MiB, granted 200 MiB, "
                              "used 180 MiB; asked to give back 4 time(s), answered 3\n"));
}

TEST(StatsText, SharedPoolLinesStayUnder130Columns) {
  execmem_pool_stats_t pool = MakeMemberPool(std::string(190, 'n'));
  for (uint64_t* f : SharedFields(pool)) *f = ~uint64_t{0};
  const std::string text = FormatStatsText(pool, {});
  EXPECT_THAT(text, HasSubstr("shared pool " + std::string(23, 'n') + "~: capacity 15.9 EiB"));
  for (const std::string& line : Lines(text)) EXPECT_LT(line.size(), 130u) << line;
}

TEST(StatsText, NamesCannotBreakTheLayout) {
  const execmem_executor_stats_t e = MakeExecutor("two\nlines\x1b[31m", 1);
  const std::string text = FormatStatsText(MakePool(), {&e, 1});
  EXPECT_THAT(text, HasSubstr("two?lines?[31m"));
  EXPECT_THAT(text, Not(HasSubstr("\x1b")));
  // Multi-byte names are cut on a character boundary: 24 columns of é.
  std::string accents;
  for (int i = 0; i < 30; ++i) accents += "\xC3\xA9";
  const execmem_executor_stats_t u = MakeExecutor(accents.substr(0, 60), 2);
  const std::string cut = FormatStatsText(MakePool(), {&u, 1});
  EXPECT_THAT(cut, HasSubstr(accents.substr(0, 46) + "~"));
  EXPECT_THAT(cut, Not(HasSubstr(accents.substr(0, 48))));
}

TEST(StatsText, NoExecutors) {
  const std::string text = FormatStatsText(MakePool(), {});
  EXPECT_THAT(text, HasSubstr("executors: none"));
  EXPECT_THAT(text, HasSubstr("pool: capacity 24 GiB"));
}

// ---- the live report -----------------------------------------------------------

// The figures of this process, as the API fills them: the definitions of
// execmem.h hold, and the JSON carries the same figures.
TEST(StatsLive, ResidentTrackedAndUntrackedAreSane) {
  // Some memory of execmem's own, touched, so that tracked is well above 0.
  std::vector<void*> blocks;
  for (int i = 0; i < 64; ++i) {
    blocks.push_back(execmem_malloc(64 << 10));
    ASSERT_NE(blocks.back(), nullptr);
    memset(blocks.back(), 1, 64 << 10);
  }
  execmem_pool_stats_t p{};
  execmem_pool_stats(&p);
  EXPECT_EQ(p.version, static_cast<uint32_t>(EXECMEM_STATS_VERSION));
  EXPECT_GT(p.resident, 4ull << 20) << "64 blocks of 64 KiB are resident";
  EXPECT_GE(p.peak_resident, p.resident);
  EXPECT_GE(p.held, 4ull << 20);
  EXPECT_GE(p.arenas, 1u);
  EXPECT_GE(p.metadata, p.arenas * kMetaPages * kPageSize) << "descriptor pages, whole";
  EXPECT_LT(p.metadata, p.mapped) << "metadata is a small part of what execmem maps";
  EXPECT_EQ(p.tracked, p.held + p.metadata);
  EXPECT_EQ(p.untracked, p.resident > p.tracked ? p.resident - p.tracked : 0);
  EXPECT_LT(p.untracked, p.resident);

  const std::unique_ptr<Json> json = ParseJson(StatsJson());
  ASSERT_NE(json, nullptr);
  EXPECT_EQ(json->Get("version")->text, absl::StrCat(EXECMEM_STATS_VERSION));
  const Json* pool = json->Get("pool");
  const auto number = [&](std::string_view key) { return std::stoull(pool->Get(key)->text); };
  EXPECT_GT(number("resident"), 0u);
  EXPECT_GE(number("peak_resident"), number("resident"));
  EXPECT_EQ(number("tracked"), number("held") + number("metadata"));
  EXPECT_EQ(number("untracked"),
            number("resident") > number("tracked") ? number("resident") - number("tracked") : 0);
  EXPECT_THAT(StatsText(), HasSubstr("pool: resident "));
  for (void* b : blocks) execmem_free(b);
}

// ---- the process a report names (issue 11) ------------------------------------------

TEST(StatsReport, NamesThePidAndTheProgram) {
  const ProcessInfo process{4242, "py\"thon", 1764585912};
  const std::unique_ptr<Json> json = ParseJson(FormatStatsJson(MakePool(), {}, process));
  ASSERT_NE(json, nullptr);
  EXPECT_THAT(json->keys,
              ElementsAreArray({"version", "pid", "program", "start", "pool", "executors"}));
  EXPECT_EQ(json->Get("pid")->text, "4242");
  EXPECT_EQ(json->Get("program")->text, "py\"thon");
  EXPECT_EQ(json->Get("start")->text, "1764585912");
  const std::vector<std::string> lines = Lines(FormatStatsText(MakePool(), {}, process));
  EXPECT_EQ(lines[0], "execmem stats (version " + std::to_string(EXECMEM_STATS_VERSION) +
                          ") of pid 4242 (py\"thon)");
  // The live report names this process.
  EXPECT_THAT(StatsText(), HasSubstr(" of pid " + std::to_string(getpid()) + " ("));
  const std::unique_ptr<Json> live = ParseJson(StatsJson());
  ASSERT_NE(live, nullptr);
  EXPECT_EQ(live->Get("pid")->text, std::to_string(getpid()));
  EXPECT_FALSE(live->Get("program")->text.empty());
}

// ---- timeline lines -------------------------------------------------------------------

TEST(TimelineLines, HeaderSampleAndNoteAreJsonLines) {
  const std::string header = timeline::FormatHeader({77, "prog", 1700000000}, 250, 1 << 20);
  ASSERT_EQ(header.back(), '\n');
  EXPECT_EQ(header.find('\n'), header.size() - 1);
  std::unique_ptr<Json> json = ParseJson(header.substr(0, header.size() - 1));
  ASSERT_NE(json, nullptr);
  EXPECT_THAT(json->keys, ElementsAreArray(
                              {"timeline", "pid", "program", "start", "interval_ms", "max_bytes"}));
  EXPECT_EQ(json->Get("interval_ms")->text, "250");

  const execmem_pool_stats_t pool = MakePool();
  const std::vector<execmem_executor_stats_t> executors = {MakeExecutor("a\nb", 1),
                                                           MakeExecutor("etl", 2)};
  const std::string sample = timeline::FormatSample(1500, 1700000001500, 77, true, pool, executors);
  EXPECT_EQ(sample.find('\n'), sample.size() - 1);
  json = ParseJson(sample.substr(0, sample.size() - 1));
  ASSERT_NE(json, nullptr);
  EXPECT_THAT(json->keys,
              ElementsAreArray({"t_ms", "time_ms", "pid", "final", "rss", "pool", "executors"}));
  EXPECT_EQ(json->Get("t_ms")->text, "1500");
  EXPECT_EQ(json->Get("final")->type, Json::kBool);
  EXPECT_EQ(json->Get("rss")->text, std::to_string(pool.resident));
  EXPECT_EQ(json->Get("pool")->Get("cached")->text, std::to_string(pool.cached));
  EXPECT_EQ(json->Get("pool")->Get("held")->text, std::to_string(pool.held));
  const Json* list = json->Get("executors");
  ASSERT_EQ(list->items.size(), 2u);
  EXPECT_EQ(list->items[0].Get("name")->text, "a\nb");
  EXPECT_THAT(list->items[1].keys,
              ElementsAreArray({"name", "used", "peak_used", "footprint", "peak_footprint",
                                "initial", "max", "overhead", "spill_calls", "bytes_spilled",
                                "oom_count", "ns_above_initial"}));
  EXPECT_EQ(list->items[1].Get("used")->text, std::to_string(executors[1].used));
  EXPECT_EQ(list->items[1].Get("oom_count")->text, std::to_string(executors[1].oom_count));
  EXPECT_EQ(list->items[1].Get("bytes_spilled")->text, std::to_string(executors[1].bytes_spilled));

  const std::string note = timeline::FormatNote("full \"now\"", 9);
  json = ParseJson(note.substr(0, note.size() - 1));
  ASSERT_NE(json, nullptr);
  EXPECT_EQ(json->Get("note")->text, "full \"now\"");
}

TEST(TimelineLines, ASampleOfAMemberHasTheSharedPool) {
  std::string sample = timeline::FormatSample(10, 20, 77, false, MakePool(), {});
  std::unique_ptr<Json> json = ParseJson(sample.substr(0, sample.size() - 1));
  ASSERT_NE(json, nullptr);
  EXPECT_THAT(json->Get("pool")->keys, Not(::testing::Contains("shared_name")));

  sample = timeline::FormatSample(10, 20, 77, false, MakeMemberPool("etl"), {});
  json = ParseJson(sample.substr(0, sample.size() - 1));
  ASSERT_NE(json, nullptr);
  const Json* p = json->Get("pool");
  EXPECT_EQ(p->Get("shared_name")->text, "etl");
  for (size_t i = 0; i < std::size(kSharedKeys); ++i) {
    EXPECT_EQ(p->Get(kSharedKeys[i])->text, std::to_string(5000 + i)) << kSharedKeys[i];
  }
}

TEST(TimelineLines, IntervalIsAWholePositiveNumberOfMilliseconds) {
  EXPECT_EQ(*timeline::ParseIntervalMs("X", ""), timeline::kDefaultIntervalMs);
  EXPECT_EQ(*timeline::ParseIntervalMs("X", " 250 "), 250u);
  EXPECT_EQ(*timeline::ParseIntervalMs("X", "3600000"), 3600000u);
  for (const char* bad : {"0", "-5", "abc", "1.5", "+5", "1s", "3600001", "99999999999999999999"}) {
    Result<uint64_t> ms = timeline::ParseIntervalMs("EXECMEM_TIMELINE_MS", bad);
    ASSERT_FALSE(ms.ok()) << bad;
    const std::string message(ms.status().message());
    EXPECT_THAT(message, HasSubstr("invalid EXECMEM_TIMELINE_MS \"" + std::string(bad) + "\""));
    EXPECT_THAT(message, HasSubstr("from 1 to 3600000"));
    EXPECT_EQ(message.find('\n'), std::string::npos);
    // A number past 64 bits is a whole number too long ("not a whole number"
    // until 2026-12-08).
    const std::string_view b(bad);
    if (b.size() > 1 && b.find_first_not_of("0123456789") == std::string_view::npos) {
      EXPECT_THAT(message, HasSubstr(": too long;")) << bad;
    }
  }
}

// ---- Prometheus -------------------------------------------------------------------------

// A check of the text exposition format: every sample's metric has one HELP
// and one TYPE line before its samples, names are valid, counters end in
// _total, label values are quoted with only \\, \" and \n escapes.
void CheckPrometheus(const std::string& text) {
  ASSERT_FALSE(text.empty());
  ASSERT_EQ(text.back(), '\n');
  std::map<std::string, std::string> types;
  std::map<std::string, int> helps;
  std::string current;
  const auto valid_name = [](std::string_view n) {
    if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
    for (char c : n) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != ':') return false;
    }
    return true;
  };
  for (const std::string& line : Lines(text)) {
    if (line.empty()) continue;  // after the last newline
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      // "# HELP name text...": the first three blanks split, the text stays whole.
      std::vector<std::string> parts;
      size_t from = 0;
      for (int k = 0; k < 3; ++k) {
        const size_t blank = line.find(' ', from);
        if (blank == std::string::npos) break;
        parts.push_back(line.substr(from, blank - from));
        from = blank + 1;
      }
      parts.push_back(line.substr(from));
      ASSERT_GE(parts.size(), 4u) << line;
      EXPECT_TRUE(valid_name(parts[2])) << line;
      if (parts[1] == "HELP") {
        EXPECT_EQ(++helps[parts[2]], 1) << line;
        EXPECT_EQ(types.count(parts[2]), 0u) << "HELP after TYPE: " << line;
      } else {
        EXPECT_TRUE(types.emplace(parts[2], parts[3]).second) << line;
        EXPECT_TRUE(parts[3] == "gauge" || parts[3] == "counter") << line;
        if (parts[3] == "counter") {
          EXPECT_TRUE(parts[2].size() >= 6 &&
                      parts[2].compare(parts[2].size() - 6, 6, "_total") == 0)
              << line;
        }
      }
      current = parts[2];
      continue;
    }
    ASSERT_NE(line[0], '#') << line;
    const size_t brace = line.find('{');
    ASSERT_NE(brace, std::string::npos) << line;
    const std::string name = line.substr(0, brace);
    EXPECT_EQ(name, current) << "a sample not under its own TYPE: " << line;
    EXPECT_EQ(types.count(name), 1u) << line;
    // Labels: name="value" pairs, escapes only \\ \" \n.
    size_t i = brace + 1;
    while (line[i] != '}') {
      const size_t eq = line.find("=\"", i);
      ASSERT_NE(eq, std::string::npos) << line;
      EXPECT_TRUE(valid_name(line.substr(i, eq - i))) << line;
      i = eq + 2;
      for (; line[i] != '"'; ++i) {
        ASSERT_LT(i, line.size()) << line;
        if (line[i] == '\\') {
          ++i;
          EXPECT_TRUE(line[i] == '\\' || line[i] == '"' || line[i] == 'n') << line;
        }
      }
      ++i;
      if (line[i] == ',') ++i;
    }
    const std::string value = line.substr(i + 1);
    ASSERT_EQ(value[0], ' ') << line;
    char* end = nullptr;
    std::strtod(value.c_str() + 1, &end);
    EXPECT_EQ(*end, '\0') << "not a number: " << line;
  }
}

TEST(Prometheus, TextExpositionFormat) {
  const std::vector<execmem_executor_stats_t> executors = {MakeExecutor("default", 1),
                                                           MakeExecutor("q\"4\\2\n\xff", 2)};
  const std::string text =
      FormatStatsPrometheus(MakePool(), executors, {31, "my \"prog\"", 1700000000});
  CheckPrometheus(text);
  EXPECT_THAT(text, HasSubstr("# TYPE execmem_executor_used_bytes gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE execmem_executor_ooms_total counter\n"));
  EXPECT_THAT(text, HasSubstr("execmem_executor_used_bytes{executor=\"default\",pid=\"31\","
                              "program=\"my \\\"prog\\\"\"} " +
                              std::to_string(executors[0].used) + "\n"));
  // Escaped: " \ and newline; a byte that is not UTF-8 becomes U+FFFD.
  EXPECT_THAT(text,
              HasSubstr("execmem_executor_max_bytes{executor=\"q\\\"4\\\\2\\n\xEF\xBF\xBD\","));
  EXPECT_THAT(text, HasSubstr("execmem_pool_cached_bytes{pid=\"31\",program=\"my "
                              "\\\"prog\\\"\"} " +
                              std::to_string(MakePool().cached) + "\n"));
  // Nanoseconds above initial are written as seconds.
  EXPECT_THAT(text, HasSubstr("execmem_executor_above_initial_seconds_total{executor=\"default\""));
  EXPECT_THAT(text, HasSubstr("} 0.000001015\n"));
}

TEST(Prometheus, NoExecutorsStillTypesEveryMetric) {
  const std::string text = FormatStatsPrometheus(MakePool(), {}, {1, "p", 0});
  CheckPrometheus(text);
  EXPECT_THAT(text, HasSubstr("# TYPE execmem_executor_used_bytes gauge\n"));
  EXPECT_THAT(text, Not(HasSubstr("execmem_executor_used_bytes{")));
}

TEST(Prometheus, AMemberLabelsEverySampleWithItsPool) {
  const std::string alone =
      FormatStatsPrometheus(MakePool(), {MakeExecutor("default", 1)}, {31, "prog", 0});
  EXPECT_THAT(alone, Not(HasSubstr("pool=\"")));
  EXPECT_THAT(alone, Not(HasSubstr("execmem_shared_")));

  const execmem_pool_stats_t pool = MakeMemberPool("pg\"x");
  const std::string text =
      FormatStatsPrometheus(pool, {MakeExecutor("default", 1)}, {31, "prog", 0});
  CheckPrometheus(text);
  size_t samples = 0;
  for (const std::string& line : Lines(text)) {
    if (line.empty() || line[0] == '#') continue;
    ++samples;
    EXPECT_THAT(line, HasSubstr(",pool=\"pg\\\"x\"}")) << line;
  }
  EXPECT_GT(samples, 30u);
  EXPECT_THAT(text, HasSubstr("# TYPE execmem_shared_capacity_bytes gauge\n"
                              "execmem_shared_capacity_bytes{pid=\"31\",program=\"prog\","
                              "pool=\"pg\\\"x\"} 5000\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE execmem_shared_refusals_total counter\n"));
  EXPECT_THAT(text, HasSubstr("execmem_shared_member_answered_total{pid=\"31\",program=\"prog\","
                              "pool=\"pg\\\"x\"} 5012\n"));
  EXPECT_THAT(text, HasSubstr("execmem_executor_used_bytes{executor=\"default\",pid=\"31\","
                              "program=\"prog\",pool=\"pg\\\"x\"} "));
}

TEST(Prometheus, LiveThroughTheCApi) {
  char* text = execmem_stats_prometheus();
  ASSERT_NE(text, nullptr);
  const std::string s(text);
  execmem_free(text);
  CheckPrometheus(s);
  EXPECT_THAT(s, HasSubstr("execmem_executor_used_bytes{executor=\"default\",pid=\"" +
                           std::to_string(getpid()) + "\""));
}

}  // namespace
}  // namespace execmem
