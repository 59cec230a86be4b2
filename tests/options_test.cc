// The EXECMEM_* process options (api/options.h), read through a fake
// environment.
#include "api/options.h"

#include <cerrno>
#include <map>
#include <string>
#include <string_view>

#include "cache/cache.h"
#include "executor/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace execmem::options {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

using Env = std::map<std::string, std::string>;

execmem::Result<ProcessOptions> Read(const Env& env) {
  return ReadProcessOptions([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

ProcessOptions ReadOk(const Env& env) {
  execmem::Result<ProcessOptions> o = Read(env);
  EXPECT_TRUE(o.ok()) << o.status();
  return o.ok() ? *o : ProcessOptions{};
}

// The message for `value` in `variable`, checked to be one line that names both.
std::string ReadError(const std::string& variable, const std::string& value) {
  execmem::Result<ProcessOptions> o = Read({{variable, value}});
  if (o.ok()) {
    ADD_FAILURE() << variable << "=" << value << " was accepted";
    return "";
  }
  EXPECT_EQ(o.status().code(), EINVAL);
  const std::string message(o.status().message());
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_THAT(message, HasSubstr("invalid " + std::string(variable) + " "));
  const OptionSpec* spec = FindOption(variable);
  EXPECT_NE(spec, nullptr) << variable;
  if (spec != nullptr) {
    EXPECT_THAT(message, HasSubstr("expected " + std::string(spec->accepted)));
  }
  return message;
}

TEST(ProcessOptions, DefaultsWhenNothingIsSet) {
  const ProcessOptions o = ReadOk({});
  EXPECT_EQ(o.initial, "");  // resolved later, against the pool capacity
  EXPECT_EQ(o.max, "");
  EXPECT_EQ(o.overhead, "");
  EXPECT_EQ(o.pool_capacity, "");
  EXPECT_EQ(o.oom, ProcessOptions::Oom::kNull);
  EXPECT_EQ(o.stats, ProcessOptions::StatsSink::kNone);
  EXPECT_EQ(o.stats_path, "");
  EXPECT_EQ(o.decay_ms, 5000u);
  EXPECT_EQ(o.emergency_reserve, 64u * 1024);
}

TEST(ProcessOptions, EmptyOrBlankMeansDefault) {
  const ProcessOptions o = ReadOk({{"EXECMEM_INITIAL", ""},
                                   {"EXECMEM_MAX", "  "},
                                   {"EXECMEM_OOM", ""},
                                   {"EXECMEM_STATS", ""},
                                   {"EXECMEM_DECAY_MS", " "}});
  EXPECT_EQ(o.initial, "");
  EXPECT_EQ(o.max, "");
  EXPECT_EQ(o.oom, ProcessOptions::Oom::kNull);
  EXPECT_EQ(o.stats, ProcessOptions::StatsSink::kNone);
  EXPECT_EQ(o.decay_ms, 5000u);
}

TEST(ProcessOptions, EveryVariableIsRead) {
  const ProcessOptions o = ReadOk({{"EXECMEM_INITIAL", "512m"},
                                   {"EXECMEM_MAX", " 2g "},
                                   {"EXECMEM_OVERHEAD", "15%"},
                                   {"EXECMEM_OOM", "abort"},
                                   {"EXECMEM_STATS", "/tmp/stats.json"},
                                   {"EXECMEM_DECAY_MS", "250"},
                                   {"EXECMEM_POOL_CAPACITY", "8GiB"}});
  EXPECT_EQ(o.initial, "512m");
  EXPECT_EQ(o.max, "2g");  // trimmed
  EXPECT_EQ(o.overhead, "15%");
  EXPECT_EQ(o.oom, ProcessOptions::Oom::kAbort);
  EXPECT_EQ(o.stats, ProcessOptions::StatsSink::kFile);
  EXPECT_EQ(o.stats_path, "/tmp/stats.json");
  EXPECT_EQ(o.decay_ms, 250u);
  EXPECT_EQ(o.pool_capacity, "8GiB");
}

TEST(ProcessOptions, OomPolicy) {
  EXPECT_EQ(ReadOk({{"EXECMEM_OOM", "null"}}).oom, ProcessOptions::Oom::kNull);
  EXPECT_EQ(ReadOk({{"EXECMEM_OOM", "ABORT"}}).oom, ProcessOptions::Oom::kAbort);
  EXPECT_EQ(ReadOk({{"EXECMEM_OOM", " report "}}).oom, ProcessOptions::Oom::kReport);
  EXPECT_EQ(ReadError("EXECMEM_OOM", "panic"),
            "invalid EXECMEM_OOM \"panic\": expected null, report or abort");
  ReadError("EXECMEM_OOM", "nul");
  ReadError("EXECMEM_OOM", "1");
}

TEST(ProcessOptions, StatsSink) {
  EXPECT_EQ(ReadOk({{"EXECMEM_STATS", "stderr"}}).stats, ProcessOptions::StatsSink::kStderr);
  EXPECT_EQ(ReadOk({{"EXECMEM_STATS", "1"}}).stats, ProcessOptions::StatsSink::kStderr);
  EXPECT_EQ(ReadOk({{"EXECMEM_STATS", "off"}}).stats, ProcessOptions::StatsSink::kNone);
  EXPECT_EQ(ReadOk({{"EXECMEM_STATS", "0"}}).stats, ProcessOptions::StatsSink::kNone);
  const ProcessOptions o = ReadOk({{"EXECMEM_STATS", "out/stats.json"}});
  EXPECT_EQ(o.stats, ProcessOptions::StatsSink::kFile);
  EXPECT_EQ(o.stats_path, "out/stats.json");
  EXPECT_EQ(ReadOk({{"EXECMEM_STATS", "./stdout"}}).stats_path, "./stdout");
  EXPECT_THAT(ReadError("EXECMEM_STATS", "stdout"), HasSubstr("never goes to stdout"));
  EXPECT_THAT(ReadError("EXECMEM_STATS", "/tmp/"), HasSubstr("a directory"));
}

TEST(ProcessOptions, DecayMilliseconds) {
  EXPECT_EQ(ReadOk({{"EXECMEM_DECAY_MS", "0"}}).decay_ms, 0u);
  EXPECT_EQ(ReadOk({{"EXECMEM_DECAY_MS", "3600000"}}).decay_ms, 3600000u);
  for (const char* bad : {"5s", "-1", "+5", "1e3", "1.5", "abc"}) {
    EXPECT_THAT(ReadError("EXECMEM_DECAY_MS", bad), HasSubstr("not a whole number"));
  }
  EXPECT_THAT(ReadError("EXECMEM_DECAY_MS", "3600001"), HasSubstr("too long"));
  // Past 64 bits: a whole number too ("not a whole number" until 2026-12-08).
  EXPECT_THAT(ReadError("EXECMEM_DECAY_MS", "99999999999999999999999"), HasSubstr("too long"));
}

TEST(ProcessOptions, SecureMode) {
  EXPECT_FALSE(ReadOk({}).secure);  // the default build
  EXPECT_TRUE(ReadOk({{"EXECMEM_SECURE", "1"}}).secure);
  EXPECT_TRUE(ReadOk({{"EXECMEM_SECURE", " ON "}}).secure);
  EXPECT_FALSE(ReadOk({{"EXECMEM_SECURE", "off"}}).secure);
  EXPECT_FALSE(ReadOk({{"EXECMEM_SECURE", "0"}}).secure);
  EXPECT_THAT(ReadError("EXECMEM_SECURE", "yes please"), HasSubstr("\"yes please\""));
  EXPECT_THAT(ReadError("EXECMEM_SECURE", "2"), HasSubstr("0 (or off), 1 (or on)"));
}

TEST(ProcessOptions, SecureChecks) {
  EXPECT_EQ(ReadOk({}).secure_checks, secure::kAllChecks);  // all by default
  EXPECT_EQ(ReadOk({{"EXECMEM_SECURE_CHECKS", "all"}}).secure_checks, secure::kAllChecks);
  EXPECT_EQ(ReadOk({{"EXECMEM_SECURE_CHECKS", "none"}}).secure_checks, 0u);
  EXPECT_EQ(ReadOk({{"EXECMEM_SECURE_CHECKS", " zero , quarantine "}}).secure_checks,
            uint32_t{secure::kZeroing | secure::kQuarantine});
  EXPECT_EQ(ReadOk({{"EXECMEM_SECURE_CHECKS", "shuffle,newest,neighbours"}}).secure_checks,
            uint32_t{secure::kShuffle | secure::kNewest | secure::kNeighbours});
  EXPECT_THAT(ReadError("EXECMEM_SECURE_CHECKS", "zero,canary"), HasSubstr("\"zero,canary\""));
  EXPECT_THAT(ReadError("EXECMEM_SECURE_CHECKS", "zero,"), HasSubstr("comma list"));
  auto requested = [](const char* value) {
    return SecureChecksRequested([&](const char* name) -> const char* {
      return std::string_view(name) == "EXECMEM_SECURE_CHECKS" ? value : nullptr;
    });
  };
  EXPECT_EQ(requested(nullptr), secure::kAllChecks);
  EXPECT_EQ(requested("quarantine"), uint32_t{secure::kQuarantine});
  EXPECT_EQ(requested("bogus"), secure::kAllChecks);  // the start-up refuses it with its message
}

TEST(ProcessOptions, SecureModeRequestedReadsTheSameVariable) {
  auto requested = [](const char* value) {
    return SecureModeRequested([&](const char* name) -> const char* {
      return std::string_view(name) == "EXECMEM_SECURE" ? value : nullptr;
    });
  };
  EXPECT_TRUE(requested("1"));
  EXPECT_TRUE(requested("on"));
  EXPECT_FALSE(requested("0"));
  EXPECT_FALSE(requested(nullptr));
  EXPECT_FALSE(requested("bogus"));  // the default; the shim refuses to start with it
}

TEST(ProcessOptions, EmergencyReserve) {
  EXPECT_EQ(ReadOk({{"EXECMEM_EMERGENCY_RESERVE", "0"}}).emergency_reserve, 0u);
  EXPECT_EQ(ReadOk({{"EXECMEM_EMERGENCY_RESERVE", "256k"}}).emergency_reserve, 256u * 1024);
  EXPECT_EQ(ReadOk({{"EXECMEM_EMERGENCY_RESERVE", "16m"}}).emergency_reserve, 16u << 20);
  EXPECT_EQ(ReadOk({{"EXECMEM_EMERGENCY_RESERVE", " "}}).emergency_reserve, 64u * 1024);
  EXPECT_THAT(ReadError("EXECMEM_EMERGENCY_RESERVE", "16m1"), HasSubstr("unknown unit"));
  EXPECT_THAT(ReadError("EXECMEM_EMERGENCY_RESERVE", "17m"),
              HasSubstr("above the largest reserve, 16m"));
  EXPECT_THAT(ReadError("EXECMEM_EMERGENCY_RESERVE", "-1"), HasSubstr("cannot be negative"));
}

TEST(ProcessOptions, HugePagesAreOffUnlessAskedFor) {
  EXPECT_FALSE(ReadOk({}).huge_pages);
  EXPECT_TRUE(ReadOk({{"EXECMEM_HUGE_PAGES", "1"}}).huge_pages);
  EXPECT_TRUE(ReadOk({{"EXECMEM_HUGE_PAGES", " ON "}}).huge_pages);
  EXPECT_FALSE(ReadOk({{"EXECMEM_HUGE_PAGES", "off"}}).huge_pages);
  EXPECT_THAT(ReadError("EXECMEM_HUGE_PAGES", "yes"),
              AllOf(HasSubstr("EXECMEM_HUGE_PAGES"), HasSubstr("0 (or off), 1 (or on)")));
}

TEST(ProcessOptions, SharedPool) {
  const ProcessOptions none = ReadOk({});
  EXPECT_EQ(none.shared, "");
  EXPECT_EQ(none.shared_capacity, "");
  EXPECT_EQ(none.shared_mode, 0600u);
  EXPECT_FALSE(none.shared_required);
  EXPECT_EQ(none.shared_wait_ms, 1000u);
  const ProcessOptions o = ReadOk({{"EXECMEM_SHARED", " pg "},
                                   {"EXECMEM_SHARED_CAPACITY", "1g"},
                                   {"EXECMEM_SHARED_MODE", "0660"},
                                   {"EXECMEM_SHARED_REQUIRED", "1"},
                                   {"EXECMEM_SHARED_WAIT_MS", "250"}});
  EXPECT_EQ(o.shared, "pg");
  EXPECT_EQ(o.shared_capacity, "1g");
  EXPECT_EQ(o.shared_mode, 0660u);
  EXPECT_TRUE(o.shared_required);
  EXPECT_EQ(o.shared_wait_ms, 250u);
  EXPECT_THAT(ReadError("EXECMEM_SHARED", "a/b"), HasSubstr("not a pool name"));
  ReadError("EXECMEM_SHARED", std::string(300, 'x'));
  ReadError("EXECMEM_SHARED_CAPACITY", "lots");
  ReadError("EXECMEM_SHARED_MODE", "0777");
  ReadError("EXECMEM_SHARED_REQUIRED", "maybe");
  ReadError("EXECMEM_SHARED_WAIT_MS", "-5");
  ReadError("EXECMEM_SHARED_WAIT_MS", "600001");
}

// A pool too small for the shim's own start-up and reports (std::terminate
// until 2026-12-08); 0 is the default capacity.
TEST(ProcessOptions, PoolCapacityOfAtLeastTwoMebibytes) {
  for (const char* small : {"1", "64k", "1m", "2047k"}) {
    EXPECT_THAT(ReadError("EXECMEM_POOL_CAPACITY", small), HasSubstr("below 2m")) << small;
  }
  EXPECT_EQ(ReadOk({{"EXECMEM_POOL_CAPACITY", "2m"}}).pool_capacity, "2m");
  EXPECT_EQ(ReadOk({{"EXECMEM_POOL_CAPACITY", "0"}}).pool_capacity, "0");
  EXPECT_EQ(ReadOk({{"EXECMEM_POOL_CAPACITY", " "}}).pool_capacity, "");
}

TEST(ProcessOptions, BadSizesAreRefused) {
  for (const char* variable : {"EXECMEM_INITIAL", "EXECMEM_MAX", "EXECMEM_POOL_CAPACITY"}) {
    EXPECT_THAT(ReadError(variable, "abc"), AllOf(HasSubstr("\"abc\""), HasSubstr("not a number")));
    EXPECT_THAT(ReadError(variable, "-1g"), HasSubstr("cannot be negative"));
    EXPECT_THAT(ReadError(variable, "4x"), HasSubstr("unknown unit"));
    EXPECT_THAT(ReadError(variable, "99999999t"), HasSubstr("too large"));
  }
  EXPECT_THAT(ReadError("EXECMEM_OVERHEAD", "100%"),
              HasSubstr("overhead must be below 100% of initial"));
  EXPECT_THAT(ReadError("EXECMEM_OVERHEAD", "1"), HasSubstr("overhead must be below 100%"));
  ReadError("EXECMEM_OVERHEAD", "lots");
}

TEST(ProcessOptions, FirstBadVariableStopsTheRead) {
  execmem::Result<ProcessOptions> o =
      Read({{"EXECMEM_MAX", "4g"}, {"EXECMEM_OOM", "explode"}, {"EXECMEM_DECAY_MS", "soon"}});
  ASSERT_FALSE(o.ok());
  // In table order: EXECMEM_OOM comes before EXECMEM_DECAY_MS.
  EXPECT_THAT(std::string(o.status().message()),
              AllOf(HasSubstr("invalid EXECMEM_OOM \"explode\""), Not(HasSubstr("DECAY"))));
}

TEST(OptionTable, VariablesAndLookup) {
  const std::string_view expected[] = {"EXECMEM_INITIAL",         "EXECMEM_MAX",
                                       "EXECMEM_OVERHEAD",        "EXECMEM_OOM",
                                       "EXECMEM_STATS",           "EXECMEM_DECAY_MS",
                                       "EXECMEM_HUGE_PAGES",
                                       "EXECMEM_POOL_CAPACITY",   "EXECMEM_EMERGENCY_RESERVE",
                                       "EXECMEM_SECURE",          "EXECMEM_SECURE_CHECKS",
                                       "EXECMEM_TIMELINE",
                                       "EXECMEM_TIMELINE_MS",     "EXECMEM_TIMELINE_MAX",
                                       "EXECMEM_PROMETHEUS",      "EXECMEM_SHARED",
                                       "EXECMEM_SHARED_CAPACITY", "EXECMEM_SHARED_MODE",
                                       "EXECMEM_SHARED_REQUIRED", "EXECMEM_SHARED_WAIT_MS"};
  ASSERT_EQ(AllOptions().size(), std::size(expected));
  for (std::string_view env : expected) {
    const OptionSpec* spec = FindOption(env);
    ASSERT_NE(spec, nullptr) << env;
    EXPECT_EQ(FindOption(spec->name), spec);
    EXPECT_FALSE(spec->description.empty());
  }
  EXPECT_EQ(FindOption("EXECMEM_NOPE"), nullptr);
  EXPECT_EQ(FindOption("max")->default_value, config::kDefaultMax);
  EXPECT_EQ(FindOption("max")->accepted, config::kSizeAccepted);
}

// Only variables that the table lists are ever looked up.
TEST(OptionTable, ReadLooksUpEveryListedVariableOnce) {
  std::map<std::string, int> lookups;
  ASSERT_TRUE(ReadProcessOptions([&](const char* name) -> const char* {
                ++lookups[name];
                return nullptr;
              }).ok());
  ASSERT_EQ(lookups.size(), AllOptions().size());
  for (const OptionSpec& spec : AllOptions()) EXPECT_EQ(lookups[spec.env], 1) << spec.env;
}

TEST(OptionTable, DefaultsParse) {
  // Each default goes through its option's own parser.
  for (const OptionSpec& spec : AllOptions()) {
    if (spec.default_value.empty()) continue;
    execmem::Result<ProcessOptions> o = Read({{spec.env, std::string(spec.default_value)}});
    EXPECT_TRUE(o.ok()) << spec.env << "=" << spec.default_value << ": " << o.status();
  }
}

TEST(OptionsHelp, MarkdownTableOfEveryOption) {
  const std::string help = OptionsHelp();
  EXPECT_THAT(help,
              HasSubstr("| Variable | Default | Accepted | Description |\n|---|---|---|---|\n"));
  size_t rows = 0;
  for (size_t pos = 0; (pos = help.find("\n| `EXECMEM_", pos)) != std::string::npos; ++pos) ++rows;
  EXPECT_EQ(rows, AllOptions().size());
  for (const OptionSpec& spec : AllOptions()) {
    EXPECT_THAT(help, HasSubstr("| `" + std::string(spec.env) + "` | "));
    EXPECT_THAT(help, HasSubstr(spec.description));
  }
  EXPECT_THAT(help, HasSubstr("| `EXECMEM_MAX` | `4g` (capped by the pool capacity"));
  EXPECT_THAT(help, HasSubstr("| `EXECMEM_DECAY_MS` | `5000` |"));
  EXPECT_THAT(help, HasSubstr("null, report or abort"));
  // Every line is a table row.
  for (size_t start = 0; start < help.size();) {
    const size_t end = help.find('\n', start);
    ASSERT_NE(end, std::string::npos);
    EXPECT_EQ(help[start], '|');
    EXPECT_EQ(help[end - 1], '|');
    start = end + 1;
  }
}

}  // namespace
}  // namespace execmem::options

TEST(ProcessOptions, UnknownVariablesAreWarnedAbout) {
  const char* env[] = {"EXECMEM_MAXX=64m",
                       "EXECMEM_MAX=1g",
                       "HOME=/root",
                       "EXECMEM_PRELOAD=/x",
                       "EXECMEM_DASK_STATS_DIR=/tmp",
                       "EXECMEM_ARENA_EXT=/x/_execmem_arena.so",  // set by execmem_dask
                       "EXECMEM_COLOUR=red",
                       "EXECMEM_Stats=1",
                       nullptr};
  const std::string warnings = execmem::options::UnknownVariableWarnings(env);
  EXPECT_EQ(warnings,
            "execmem: warning: EXECMEM_MAXX is not an execmem variable, ignored (did you mean "
            "EXECMEM_MAX?)\n"
            "execmem: warning: EXECMEM_COLOUR is not an execmem variable, ignored\n"
            "execmem: warning: EXECMEM_Stats is not an execmem variable, ignored (did you mean "
            "EXECMEM_STATS?)\n");
  const char* clean[] = {"EXECMEM_MAX=1g", "PATH=/bin", nullptr};
  EXPECT_EQ(execmem::options::UnknownVariableWarnings(clean), "");
}
