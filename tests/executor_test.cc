// Executors through the public API: creation and its settings (defaults,
// caps, every class of bad input), quota arithmetic, each budget rule at its
// boundary, growth grants, thread binding, cross-thread frees and stats.
//
// Boundaries are hit with large blocks (> 256 KiB), which are charged exactly:
// used grows by the size rounded up to 4 KiB, footprint by the span (64 KiB
// pages). Small blocks are charged per span; their tests allow the slack that
// executor/executor.h documents (at most the overhead reservation).
//
// Each TEST runs in its own process under ctest, but every test also restores
// what it changed (pool capacity, reservations) so that a filtered run of the
// whole binary in one process works too.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cache/heap.h"
#include "cache/heap_internal.h"
#include "cache/large.h"
#include "cache/size_class.h"
#include "execmem.h"
#include "execmem.hpp"
#include "executor/config.h"
#include "executor/runtime.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/executor_fixture.h"
#include "tests/testing.h"

namespace {

using ::testing::HasSubstr;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;
constexpr uint64_t kSpanPage = execmem::kPageSize;

// A large block whose usable size (a multiple of 4 KiB) is 4 KiB above the
// largest small class: used grows by 260 KiB, footprint by its span (whole
// pages, rounded up to a large class: cache/large.h).
constexpr uint64_t kWasteful = 260 * kKiB;
constexpr uint64_t kWastefulSpan = uint64_t{execmem::LargeClassPages(kWasteful)} * kSpanPage;
// kWastefulBlocks of them reach max + overhead exactly with used under max by
// more than one block (max = (kWastefulBlocks + 1) * kWasteful, overhead the
// rest): the waste of that many spans is more than a block.
constexpr uint64_t kWastefulBlocks = kWasteful / (kWastefulSpan - kWasteful) + 2;
constexpr uint64_t kWastefulMax = (kWastefulBlocks + 1) * kWasteful;
constexpr uint64_t kWastefulOverhead = kWastefulBlocks * kWastefulSpan - kWastefulMax;
static_assert(kWastefulBlocks * kWastefulSpan > kWastefulMax);

using execmem::test_support::OomMessage;
using execmem::test_support::PoolStats;

execmem::ExecutorConfig Config(std::string name, std::string initial, std::string max,
                               std::string overhead) {
  execmem::ExecutorConfig c;
  c.name = std::move(name);
  c.initial = std::move(initial);
  c.max = std::move(max);
  c.overhead = std::move(overhead);
  return c;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Every test starts from a known pool capacity and must give back every
// reservation it took (tests/executor_fixture.h).
using ExecutorTest = execmem::test_support::PoolCapacityTest;

// ---- creation and quota arithmetic --------------------------------------------

TEST_F(ExecutorTest, DefaultsAreOneGibInitialFourGibMaxTenPercentOverhead) {
  auto e = execmem::Executor::Create(Config("defaults", "", "", ""));
  ASSERT_TRUE(e.ok()) << e.status();
  const execmem_executor_stats_t s = e->Stats();
  EXPECT_EQ(s.version, static_cast<uint32_t>(EXECMEM_STATS_VERSION));
  EXPECT_STREQ(s.name, "defaults");
  EXPECT_EQ(e->name(), "defaults");
  EXPECT_EQ(s.initial, 1 * kGiB);
  EXPECT_EQ(s.max, 4 * kGiB);
  // 10 % of 1 GiB is 107374182.4 bytes; allow rounding to a page either way.
  EXPECT_NEAR(static_cast<double>(s.overhead), static_cast<double>(kGiB) / 10,
              static_cast<double>(kSpanPage));
  EXPECT_EQ(s.used, 0u);
  EXPECT_EQ(s.footprint, 0u);
  EXPECT_EQ(PoolStats().reserved - start_.reserved, s.initial + s.overhead);
}

TEST_F(ExecutorTest, DefaultMaxIsCappedByThePoolCapacity) {
  ASSERT_EQ(execmem_set_pool_capacity("2g"), 0) << execmem_last_error();
  auto e = execmem::Executor::Create(Config("capped", "", "", ""));
  ASSERT_TRUE(e.ok()) << e.status();
  const execmem_executor_stats_t s = e->Stats();
  EXPECT_EQ(s.max, 2 * kGiB);
  EXPECT_EQ(s.initial, 1 * kGiB);
  EXPECT_LE(s.initial + s.overhead, 2 * kGiB);
}

TEST_F(ExecutorTest, SettingsAreParsedInEveryAcceptedForm) {
  struct Case {
    const char* initial;
    const char* max;
    const char* overhead;
    uint64_t want_initial, want_max, want_overhead;
  };
  const Case cases[] = {
      {"64m", "256m", "25%", 64 * kMiB, 256 * kMiB, 16 * kMiB},
      {"64MiB", "256MB", "0.5", 64 * kMiB, 256 * kMiB, 32 * kMiB},
      {"1.5GiB", "2g", "8m", 3 * kGiB / 2, 2 * kGiB, 8 * kMiB},
      {"1048576", "4194304", "64k", kMiB, 4 * kMiB, 64 * kKiB},
      {"512K", "1G", "10%", 512 * kKiB, kGiB, 52428},  // 52428.8 rounds down
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.initial) + " / " + c.max + " / " + c.overhead);
    auto e = execmem::Executor::Create(Config("forms", c.initial, c.max, c.overhead));
    ASSERT_TRUE(e.ok()) << e.status();
    const execmem_executor_stats_t s = e->Stats();
    EXPECT_EQ(s.initial, c.want_initial);
    EXPECT_EQ(s.max, c.want_max);
    EXPECT_NEAR(static_cast<double>(s.overhead), static_cast<double>(c.want_overhead), 1.0);
    EXPECT_EQ(PoolStats().reserved - start_.reserved, s.initial + s.overhead);
  }
}

TEST_F(ExecutorTest, ReservationsAddUpAndAreGivenBackOnDestroy) {
  auto a = execmem::Executor::Create(Config("a", "100m", "1g", "10m"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(PoolStats().reserved - start_.reserved, 110 * kMiB);
  auto b = execmem::Executor::Create(Config("b", "200m", "1g", "20m"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(PoolStats().reserved - start_.reserved, 330 * kMiB);
  ASSERT_TRUE(a->Destroy().ok());
  EXPECT_EQ(PoolStats().reserved - start_.reserved, 220 * kMiB);
  ASSERT_TRUE(b->Destroy().ok());
  EXPECT_EQ(PoolStats().reserved, start_.reserved);
  EXPECT_EQ(PoolStats().granted, start_.granted);
  // A destroyed handle is empty: destroying it again is a no-op.
  EXPECT_TRUE(a->Destroy().ok());
}

struct BadSetting {
  const char* initial;
  const char* max;
  const char* overhead;
  const char* names;  // the setting the message must name
  const char* value;  // a value the message must quote, or nullptr
};

// Every class of bad input, with the pool at 8 GiB.
const BadSetting kBadSettings[] = {
    // initial above max
    {"2g", "1g", "", "initial", nullptr},
    {"1g", "1023m", "", "initial", nullptr},
    {"9g", "", "", "initial", nullptr},  // above the (capped) default max
    // overhead fraction of 100 % or more, or negative
    {"1g", "2g", "100%", "overhead", "100%"},
    {"1g", "2g", "1.0", "overhead", "1.0"},
    {"1g", "2g", "250%", "overhead", "250%"},
    {"1g", "2g", "-10%", "overhead", "-10%"},
    // max above the pool's capacity
    {"", "16g", "", "max", "16g"},
    {"1g", "8193m", "", "max", "8193m"},
    // garbage
    {"abc", "", "", "initial", "abc"},
    {"", "12q", "", "max", "12q"},
    {"", "", "ten", "overhead", "ten"},
    {"1g1", "", "", "initial", "1g1"},
    {"-1g", "", "", "initial", "-1g"},
    {"1.5.5g", "", "", "initial", "1.5.5g"},
    {"", "4gg", "", "max", "4gg"},
    {"", "", "10%%", "overhead", "10%%"},
    {"99999999999999999999999", "", "", "initial", nullptr},  // overflows 64 bits
    {"", "20000000t", "", "max", nullptr},                    // overflows with its suffix
    {"m", "", "", "initial", nullptr},
    {"", "", "%", "overhead", nullptr},
};

TEST_F(ExecutorTest, BadSettingsAreInvalidArgumentNamingTheSettingAndCreateNothing) {
  for (const BadSetting& c : kBadSettings) {
    const std::string trace = std::string("initial='") + c.initial + "' max='" + c.max +
                              "' overhead='" + c.overhead + "'";
    SCOPED_TRACE(trace);
    auto e = execmem::Executor::Create(Config("half-created", c.initial, c.max, c.overhead));
    ASSERT_FALSE(e.ok()) << "accepted; stats say initial " << e->Stats().initial << " max "
                         << e->Stats().max << " overhead " << e->Stats().overhead;
    EXPECT_EQ(e.status().code(), EINVAL) << e.status();
    const std::string msg(e.status().message());
    EXPECT_THAT(Lower(msg), HasSubstr(c.names));
    if (c.value != nullptr) {
      EXPECT_THAT(msg, HasSubstr(c.value));
    }
    EXPECT_EQ(PoolStats().reserved, start_.reserved);
    EXPECT_THAT(execmem::StatsJson(), ::testing::Not(HasSubstr("half-created")));
  }
}

TEST_F(ExecutorTest, BadSettingsThroughTheCApiAreEinvalWithTheLastError) {
  for (const BadSetting& c : kBadSettings) {
    SCOPED_TRACE(std::string("initial='") + c.initial + "' max='" + c.max + "' overhead='" +
                 c.overhead + "'");
    execmem_executor_options_t o{};
    o.name = "c-half-created";
    o.initial = c.initial;
    o.max = c.max;
    o.overhead = c.overhead;
    execmem_executor_t* out = nullptr;
    const int err = execmem_executor_create(&o, &out);
    EXPECT_EQ(err, EINVAL);
    if (err == 0) execmem_executor_destroy(out);
    EXPECT_THAT(Lower(execmem_last_error()), HasSubstr(c.names));
    EXPECT_EQ(PoolStats().reserved, start_.reserved);
  }
}

TEST_F(ExecutorTest, ZeroMaxIsRejected) {
  auto e = execmem::Executor::Create(Config("zero", "0", "0", "0"));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), EINVAL);
  EXPECT_THAT(Lower(std::string(e.status().message())), HasSubstr("max"));
  EXPECT_EQ(PoolStats().reserved, start_.reserved);
}

TEST_F(ExecutorTest, InitialAboveWhatThePoolHasLeftIsResourceExhausted) {
  ASSERT_EQ(execmem_set_pool_capacity("1g"), 0) << execmem_last_error();
  auto a = execmem::Executor::Create(Config("first", "600m", "1g", "0.1"));
  ASSERT_TRUE(a.ok()) << a.status();
  const uint64_t reserved = PoolStats().reserved;
  auto b = execmem::Executor::Create(Config("second", "600m", "1g", "0.1"));
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), ENOMEM) << b.status();
  EXPECT_THAT(std::string(b.status().message()), HasSubstr("second"));
  EXPECT_EQ(PoolStats().reserved, reserved);

  execmem_executor_options_t o{};
  o.name = "third";
  o.initial = "600m";
  execmem_executor_t* out = nullptr;
  EXPECT_EQ(execmem_executor_create(&o, &out), ENOMEM);
  EXPECT_EQ(PoolStats().reserved, reserved);
  // A capacity below what is reserved is refused; above it is fine.
  EXPECT_EQ(execmem_set_pool_capacity("512m"), EINVAL);
  EXPECT_THAT(Lower(execmem_last_error()), HasSubstr("capacity"));
  EXPECT_EQ(execmem_set_pool_capacity("lots"), EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("lots"));
  EXPECT_EQ(PoolStats().capacity, kGiB);
}

TEST_F(ExecutorTest, NullAndDefaultArgumentsAreRejected) {
  execmem_executor_t* out = nullptr;
  EXPECT_EQ(execmem_executor_create(nullptr, &out), EINVAL);
  execmem_executor_options_t o{};
  EXPECT_EQ(execmem_executor_create(&o, nullptr), EINVAL);
  EXPECT_EQ(execmem_executor_destroy(nullptr), EINVAL);
  EXPECT_EQ(execmem_executor_destroy(execmem_default_executor()), EINVAL);
  EXPECT_STREQ(execmem_executor_name(execmem_default_executor()), "default");
  execmem_executor_stats_t s;
  EXPECT_EQ(execmem_executor_stats(nullptr, &s), EINVAL);
  EXPECT_EQ(execmem_executor_stats(execmem_default_executor(), nullptr), EINVAL);
  EXPECT_EQ(PoolStats().reserved, start_.reserved);
}

// A name is at most 63 bytes without control characters: a longer one was
// cut silently (two names alike in their first 63 bytes made two executors of
// one name) and a newline split every report naming it, until 2026-12-08.
TEST_F(ExecutorTest, LongNamesAndControlCharactersAreRefused) {
  const std::string longest(63, 'n');
  const std::string too_long(64, 'n');
  execmem_executor_options_t o{};
  o.initial = "0";
  o.max = "16m";
  execmem_executor_t* e = nullptr;
  o.name = too_long.c_str();
  EXPECT_EQ(execmem_executor_create(&o, &e), EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("longer than 63 bytes"));
  o.name = "two\nlines";
  EXPECT_EQ(execmem_executor_create(&o, &e), EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("invalid executor name \"two\\nlines\": a control"));
  EXPECT_EQ(std::string(execmem_last_error()).find('\n'), std::string::npos);
  o.name = longest.c_str();
  ASSERT_EQ(execmem_executor_create(&o, &e), 0) << execmem_last_error();
  EXPECT_EQ(execmem_executor_name(e), longest);
  execmem_executor_t* child = nullptr;
  o.name = too_long.c_str();
  o.max = "8m";
  EXPECT_EQ(execmem_executor_create_child(e, &o, &child), EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("longer than 63 bytes"));
  EXPECT_EQ(execmem_executor_destroy(e), 0) << execmem_last_error();
  EXPECT_EQ(PoolStats().reserved, start_.reserved);
}

TEST_F(ExecutorTest, CApiCreateWithNullSettingsTakesTheDefaults) {
  execmem_executor_options_t o{};
  o.name = "c-defaults";
  execmem_executor_t* e = nullptr;
  ASSERT_EQ(execmem_executor_create(&o, &e), 0) << execmem_last_error();
  EXPECT_STREQ(execmem_executor_name(e), "c-defaults");
  execmem_executor_stats_t s;
  ASSERT_EQ(execmem_executor_stats(e, &s), 0);
  EXPECT_EQ(s.initial, kGiB);
  EXPECT_EQ(s.max, 4 * kGiB);
  EXPECT_EQ(execmem_executor_destroy(e), 0);
  EXPECT_EQ(PoolStats().reserved, start_.reserved);
}

// ---- rule: used <= max ----------------------------------------------------------

TEST_F(ExecutorTest, UsedMayReachMaxExactlyButNotPassIt) {
  // Without the emergency reserve, which would serve the small block after
  // the refusal (tests/emergency_test.cc).
  execmem::test_support::EmergencyReserveGuard no_reserve(0);
  auto e = execmem::Executor::Create(Config("at-max", "1m", "4m", "512k"));
  ASSERT_TRUE(e.ok()) << e.status();
  execmem::ExecutorScope scope(*e);
  void* a = execmem_malloc(3 * kMiB + 512 * kKiB);
  ASSERT_NE(a, nullptr);
  void* b = execmem_malloc(512 * kKiB);
  ASSERT_NE(b, nullptr);
  execmem_executor_stats_t s = e->Stats();
  EXPECT_EQ(s.used, 4 * kMiB);
  EXPECT_EQ(s.footprint, 4 * kMiB);
  EXPECT_EQ(s.oom_count, 0u);

  // One more large block, and even one more small block, pass max.
  errno = 0;
  EXPECT_EQ(execmem_malloc(kWasteful), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(execmem_malloc(16), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(execmem::try_allocate(kWasteful), nullptr);
  s = e->Stats();
  EXPECT_EQ(s.used, 4 * kMiB) << "a refused allocation must not stay charged";
  EXPECT_EQ(s.footprint, 4 * kMiB);
  EXPECT_EQ(s.oom_count, 3u);

  // The C++ API throws a std::bad_alloc that says who, what, and the figures.
  const std::string msg = OomMessage(kWasteful);
  EXPECT_THAT(msg, HasSubstr("'at-max'"));
  EXPECT_THAT(msg, HasSubstr(std::to_string(kWasteful)));
  EXPECT_THAT(msg, HasSubstr("used 4 MiB"));
  EXPECT_THAT(msg, HasSubstr("max 4 MiB"));
  EXPECT_THAT(msg, HasSubstr("footprint 4 MiB"));
  EXPECT_THAT(msg, HasSubstr("spill hooks"));
  EXPECT_THROW(execmem::allocate(kWasteful), std::bad_alloc);

  execmem_free(b);
  void* c = execmem_malloc(512 * kKiB);  // what was freed can be had again
  EXPECT_NE(c, nullptr);
  execmem_free(c);
  execmem_free(a);
  s = e->Stats();
  EXPECT_EQ(s.used, 0u);
  execmem_trim();  // freed large spans stay in the thread's cache (and footprint) until trimmed
  s = e->Stats();
  EXPECT_EQ(s.footprint, 0u);
  EXPECT_EQ(s.peak_used, 4 * kMiB);
  EXPECT_EQ(s.allocations, 3u);
  EXPECT_EQ(s.frees, 3u);
}

TEST_F(ExecutorTest, ASingleRequestAboveMaxFailsAndOneOfMaxSucceeds) {
  auto e = execmem::Executor::Create(Config("one-block", "1m", "8m", "512k"));
  ASSERT_TRUE(e.ok()) << e.status();
  execmem::ExecutorScope scope(*e);
  EXPECT_EQ(execmem_malloc(8 * kMiB + 1), nullptr);
  EXPECT_EQ(execmem_calloc(1, 8 * kMiB + 4 * kKiB), nullptr);
  EXPECT_EQ(execmem_aligned_alloc(kMiB, 8 * kMiB + 1), nullptr);
  void* p = execmem_malloc(8 * kMiB);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(e->Stats().used, 8 * kMiB);
  // Growing in place or moving past max is refused and keeps the block.
  EXPECT_EQ(execmem_realloc(p, 8 * kMiB + 64 * kKiB), nullptr);
  EXPECT_EQ(e->Stats().used, 8 * kMiB);
  EXPECT_THROW(execmem::reallocate(p, 9 * kMiB), execmem::OutOfMemory);
  execmem_free(p);
  EXPECT_EQ(e->Stats().used, 0u);
  EXPECT_EQ(e->Stats().oom_count, 5u);
}

// ---- rule: footprint <= max + overhead --------------------------------------------

TEST_F(ExecutorTest, FootprintMayReachMaxPlusOverheadExactlyButNotPassIt) {
  // kWastefulBlocks blocks of 260 KiB: used under max, footprint exactly max
  // + overhead. One more would keep used within max but take footprint past.
  auto e = execmem::Executor::Create(Config("at-limit", "1m", std::to_string(kWastefulMax),
                                            std::to_string(kWastefulOverhead) + "b"));
  ASSERT_TRUE(e.ok()) << e.status();
  execmem::ExecutorScope scope(*e);
  std::vector<void*> blocks;
  for (uint64_t i = 0; i < kWastefulBlocks; ++i) {
    void* p = execmem_malloc(kWasteful);
    ASSERT_NE(p, nullptr) << "block " << i;
    blocks.push_back(p);
  }
  execmem_executor_stats_t s = e->Stats();
  EXPECT_EQ(s.used, kWastefulBlocks * kWasteful);
  EXPECT_EQ(s.footprint, kWastefulBlocks * kWastefulSpan);
  EXPECT_EQ(s.footprint, s.max + s.overhead);
  EXPECT_EQ(s.overhead_in_use, s.footprint - s.used);

  errno = 0;
  EXPECT_EQ(execmem_malloc(kWasteful), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  const std::string msg = OomMessage(kWasteful);
  EXPECT_THAT(msg, HasSubstr("'at-limit'"));
  EXPECT_THAT(
      msg, HasSubstr("footprint " + execmem::config::FormatBytes(kWastefulBlocks * kWastefulSpan)));
  EXPECT_THAT(msg, HasSubstr("overhead"));
  s = e->Stats();
  EXPECT_EQ(s.used, kWastefulBlocks * kWasteful);
  EXPECT_EQ(s.footprint, kWastefulBlocks * kWastefulSpan);
  EXPECT_EQ(s.oom_count, 2u);

  // Once one block is freed, another fits again.
  execmem_free(blocks.back());
  blocks.pop_back();
  void* p = execmem_malloc(kWasteful);
  EXPECT_NE(p, nullptr);
  blocks.push_back(p);
  for (void* b : blocks) execmem_free(b);
  s = e->Stats();
  EXPECT_EQ(s.used, 0u);
  execmem_trim();  // freed large spans stay in the thread's cache (and footprint) until trimmed
  s = e->Stats();
  EXPECT_EQ(s.footprint, 0u);
  EXPECT_EQ(s.peak_footprint, kWastefulBlocks * kWastefulSpan);
}

TEST_F(ExecutorTest, OwnCachedEmptySpansAreTrimmedBeforeFootprintFails) {
  // One block of every small class below 512 B, freed at once: each span
  // stays cached (empty) as its class's current span (the classes of 64 KiB
  // and more give theirs back at once: the next test; those in between are
  // shared by the executor's threads, cache/heap_internal.h, and an emptied
  // shared span goes back at once).
  std::vector<size_t> sizes;
  uint64_t cached = 0;
  for (size_t c = 0; c < execmem::kNumClasses; ++c) {
    if (execmem::IsSharedClass(c) || execmem::ClassSize(c) >= 64 * kKiB) continue;
    sizes.push_back(execmem::ClassSize(c));
    cached += uint64_t{execmem::kSizeClasses.span_pages[c]} * kSpanPage;
  }
  ASSERT_GE(cached, 1 * kMiB + kSpanPage);
  ASSERT_LE(cached, 4 * kMiB);
  auto e = execmem::Executor::Create(Config("trim", "2m", "4m", "1m"));
  ASSERT_TRUE(e.ok()) << e.status();
  execmem::ExecutorScope scope(*e);
  std::vector<void*> blocks;
  for (size_t n : sizes) {
    void* p = execmem_malloc(n);
    ASSERT_NE(p, nullptr) << n;
    blocks.push_back(p);
  }
  for (void* p : blocks) execmem_free(p);
  execmem_executor_stats_t s = e->Stats();
  EXPECT_EQ(s.used, 0u);
  ASSERT_EQ(s.footprint, cached) << "expected the empty spans to stay cached";

  // Used stays far under max, but footprint + block passes max + overhead by
  // one page unless the cached spans go first.
  const uint64_t big = 5 * kMiB - cached + kSpanPage;
  void* p = execmem_malloc(big);
  ASSERT_NE(p, nullptr) << "cached empty spans were not trimmed first";
  s = e->Stats();
  EXPECT_EQ(s.used, big);
  EXPECT_EQ(s.footprint, uint64_t{execmem::LargeClassPages(big)} * kSpanPage);
  EXPECT_EQ(s.spill_calls, 0u);
  EXPECT_EQ(s.oom_count, 0u);
  execmem_free(p);
}

TEST_F(ExecutorTest, EmptiedSpansOfBlocksOf64KiBAndMoreGoBackWhenTheHeapTakesASpan) {
  // A span of the classes of 64 KiB and more holds one to seven blocks: once
  // its blocks are all back the heap keeps it as the class's current span
  // (a second free of a block is still caught there) until it takes a new
  // span, small or large; then those go back first (docs/python-arenas.md).
  auto e = execmem::Executor::Create(Config("fewblocks", "64m", "64m", "1m"));
  ASSERT_TRUE(e.ok()) << e.status();
  execmem::ExecutorScope scope(*e);
  uint64_t spans = 0;
  for (size_t c = 0; c < execmem::kNumClasses; ++c) {
    const size_t n = execmem::ClassSize(c);
    if (n < 64 * kKiB) continue;
    void* p = execmem_malloc(n);
    ASSERT_NE(p, nullptr) << n;
    execmem_free(p);
    spans += uint64_t{execmem::kSizeClasses.span_pages[c]} * kSpanPage;
  }
  execmem_executor_stats_t s = e->Stats();
  EXPECT_EQ(s.used, 0u);
  // Each class's span but the last one's went back when the next class took its span.
  const uint64_t last = uint64_t{execmem::kSizeClasses.span_pages[execmem::kNumClasses - 1]} *
                        kSpanPage;
  ASSERT_LT(last, spans);
  EXPECT_EQ(s.footprint, last) << "the emptied current spans stayed";
  // A small class below takes a span: the last one goes back too, its own stays.
  void* q = execmem_malloc(256);  // (a class whose spans are not shared)
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(e->Stats().footprint, kSpanPage);
  // A block of 64 KiB and more freed stays in its span until then, and a
  // second free of it is caught (the death test below).
  execmem_free(q);
}

TEST_F(ExecutorTest, ADoubleFreeOfA256KiBBlockIsCaughtAfterItsSpanEmptied) {
  auto e = execmem::Executor::Create(Config("fewblocks2", "64m", "64m", "1m"));
  ASSERT_TRUE(e.ok()) << e.status();
  execmem::ExecutorScope scope(*e);
  void* p = execmem_malloc(256 * kKiB);
  ASSERT_NE(p, nullptr);
  execmem_free(p);
  EXPECT_DEATH(execmem_free(p), "double free");
}

// A heap that takes a span from the pool "grows" (Heap::grown): what it keeps
// for reuse and does not reuse while it grows Heap::kCacheAge times goes back
// to the pool (docs/python-arenas.md: an idle Dask worker kept 0.84 MiB of
// large spans in a thread's cache and 0.6 MiB of emptied 16-64 KiB spans).
class CacheAgeTest : public ExecutorTest {
 protected:
  static constexpr int kAge = static_cast<int>(execmem::Heap::kCacheAge);
  static constexpr size_t kGrowBlock = 256;  // below the shared classes (heap_internal.h)

  // Before the executor goes.
  void FreeAll() {
    for (void* p : live_) execmem_free(p);
    live_.clear();
  }
  // n growths: blocks of kGrowBlock bytes, kept, until n more spans of them
  // were taken (a span's capacity is read from it: cache/span.h, colouring).
  void Grow(int n) {
    for (int i = 0; i < n; ++i) {
      for (size_t k = 0;; ++k) {
        ASSERT_LT(k, execmem::kPageSize / kGrowBlock + 1) << "no new span";
        void* p = execmem_malloc(kGrowBlock);
        ASSERT_NE(p, nullptr);
        live_.push_back(p);
        if (spans_.insert(execmem::SpanHeadOf(p)).second) break;
      }
    }
  }
  // The spans of the blocks Grow keeps.
  uint64_t GrownSpans() const {
    const size_t c = execmem::SizeClassOf(kGrowBlock);
    return spans_.size() * uint64_t{execmem::kSizeClasses.span_pages[c]} * kSpanPage;
  }

  std::set<const execmem::Page*> spans_;
  std::vector<void*> live_;
};

TEST_F(CacheAgeTest, ALargeSpanCachedAndNotReusedGoesBackAfterKCacheAgeGrowths) {
  auto e = execmem::Executor::Create(Config("largeage", "64m", "64m", "1m"));
  ASSERT_TRUE(e.ok()) << e.status();
  execmem::ExecutorScope scope(*e);
  const uint64_t large_span = uint64_t{execmem::LargeClassPages(kMiB)} * kSpanPage;
  void* big = execmem_malloc(kMiB);
  ASSERT_NE(big, nullptr);
  execmem_free(big);
  EXPECT_EQ(e->Stats().footprint, large_span) << "the freed span is cached";
  Grow(kAge - 1);
  EXPECT_EQ(e->Stats().footprint, large_span + GrownSpans()) << "gone before its age";
  // Reused from the cache (no new span), and freed again: its age starts again.
  big = execmem_malloc(kMiB);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(e->Stats().footprint, large_span + GrownSpans()) << "not served from the cache";
  execmem_free(big);
  Grow(kAge - 1);
  EXPECT_EQ(e->Stats().footprint, large_span + GrownSpans()) << "the reuse did not renew it";
  Grow(1);
  EXPECT_EQ(e->Stats().footprint, GrownSpans()) << "the unused cached span stayed";
  FreeAll();
}

TEST_F(CacheAgeTest, AnEmptied20KiBSpanGoesBackWhenSeenEmptyKCacheAgeGrowthsApart) {
  auto e = execmem::Executor::Create(Config("mediumage", "64m", "64m", "1m"));
  ASSERT_TRUE(e.ok()) << e.status();
  execmem::ExecutorScope scope(*e);
  const size_t c = execmem::SizeClassOf(20000);
  ASSERT_GE(c, execmem::kFirstAgedEmptyClass);
  ASSERT_LT(c, execmem::kFirstFewBlocksClass);
  const uint64_t span = uint64_t{execmem::kSizeClasses.span_pages[c]} * kSpanPage;
  // A thread holding few blocks of the class takes them from spans its
  // executor's threads share (heap_internal.h); one holding kSharedPromote
  // takes spans of its own, which this is about.
  std::vector<void*> shared;
  for (size_t i = 0; i < execmem::kSharedPromote; ++i) {
    shared.push_back(execmem_malloc(20000));
    ASSERT_NE(shared.back(), nullptr);
  }
  void* p = execmem_malloc(20000);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(execmem::SpanHeadOf(p)->shared, 0) << "not a span of the thread's own";
  for (void* q : shared) execmem_free(q);
  const uint64_t base = e->Stats().footprint - span;  // what is left of the shared spans
  execmem_free(p);
  Grow(kAge);  // seen empty at the first growth, and kAge - 1 since
  EXPECT_EQ(e->Stats().footprint, base + span + GrownSpans()) << "gone before its age";
  // Used between two growths: its age starts again.
  p = execmem_malloc(20000);
  ASSERT_NE(p, nullptr);
  Grow(1);
  execmem_free(p);
  Grow(kAge);
  EXPECT_EQ(e->Stats().footprint, base + span + GrownSpans()) << "the reuse did not renew it";
  Grow(1);
  EXPECT_EQ(e->Stats().footprint, base + GrownSpans()) << "the emptied span stayed";
  FreeAll();
}

// ---- batching of small blocks -----------------------------------------------------

struct SmallFill {
  std::vector<void*> blocks;
  int err = 0;
};

void FillWithSmallBlocks(size_t size, SmallFill* out) {
  for (int i = 0; i < 1 << 20; ++i) {
    errno = 0;
    void* p = execmem_malloc(size);
    if (p == nullptr) {
      out->err = errno;
      return;
    }
    memset(p, 0xab, size);
    out->blocks.push_back(p);
  }
}

TEST_F(ExecutorTest, SmallBlocksStopNearMaxWithinTheDocumentedSlack) {
  auto e = execmem::Executor::Create(Config("small", "512k", "1m", "256k"));
  ASSERT_TRUE(e.ok()) << e.status();
  const size_t kSizes[] = {16, 1000, 3000, 40000};
  for (size_t size : kSizes) {
    SCOPED_TRACE(size);
    SmallFill fill;
    {
      execmem::ExecutorScope scope(*e);
      FillWithSmallBlocks(size, &fill);
    }
    EXPECT_EQ(fill.err, ENOMEM);
    const uint64_t block = execmem::ClassSize(execmem::SizeClassOf(size));
    execmem_executor_stats_t s = e->Stats();
    EXPECT_EQ(s.used, fill.blocks.size() * block);
    EXPECT_LE(s.used, s.max + s.overhead);
    EXPECT_LE(s.footprint, s.max + s.overhead);
    EXPECT_GT(s.used + 2 * kSpanPage, s.max) << "refused far below max";
    {
      execmem::ExecutorScope scope(*e);
      for (void* p : fill.blocks) execmem_free(p);
      execmem_trim();
    }
    s = e->Stats();
    EXPECT_EQ(s.used, 0u);
    EXPECT_EQ(s.footprint, 0u);
  }
}

TEST_F(ExecutorTest, TwoThreadsOnOneExecutorOvershootByAtMostTheOverhead) {
  auto e = execmem::Executor::Create(Config("shared-small", "1m", "2m", "512k"));
  ASSERT_TRUE(e.ok()) << e.status();
  std::mutex mu;
  std::condition_variable cv;
  int filled = 0;
  bool release = false;
  SmallFill fills[2];
  auto work = [&](SmallFill* fill) {
    execmem::ExecutorScope scope(*e);
    FillWithSmallBlocks(700, fill);
    std::unique_lock<std::mutex> lock(mu);
    ++filled;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    lock.unlock();
    for (void* p : fill->blocks) execmem_free(p);
  };
  std::thread t1(work, &fills[0]);
  std::thread t2(work, &fills[1]);
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return filled == 2; });
  }
  execmem_executor_stats_t s = e->Stats();
  EXPECT_EQ(fills[0].err, ENOMEM);
  EXPECT_EQ(fills[1].err, ENOMEM);
  EXPECT_EQ(s.used, (fills[0].blocks.size() + fills[1].blocks.size()) * 704);
  EXPECT_LE(s.used, s.max + s.overhead);
  EXPECT_LE(s.footprint, s.max + s.overhead);
  EXPECT_GT(s.used + 2 * kSpanPage, s.max);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  t1.join();
  t2.join();
  s = e->Stats();  // the threads' caches were given back when they exited
  EXPECT_EQ(s.used, 0u);
  EXPECT_EQ(s.footprint, 0u);
  EXPECT_EQ(s.allocations, s.frees);
}

// ---- growth above initial ------------------------------------------------------

TEST_F(ExecutorTest, GrowthIsGrantedInQuantaAndGivenBack) {
  auto e = execmem::Executor::Create(Config("grower", "2m", "256m", "1m"));
  ASSERT_TRUE(e.ok()) << e.status();
  auto scope = std::make_unique<execmem::ExecutorScope>(*e);
  std::vector<void*> blocks;
  // Within initial + overhead no grant is needed.
  for (int i = 0; i < 3; ++i) {
    blocks.push_back(execmem_malloc(kMiB));
    ASSERT_NE(blocks.back(), nullptr);
  }
  EXPECT_EQ(PoolStats().granted, start_.granted);
  // Beyond it, grants in quanta: 1 MiB while under 16 MiB, 4 MiB under 64 MiB.
  for (int i = 3; i < 40; ++i) {
    blocks.push_back(execmem_malloc(kMiB));
    ASSERT_NE(blocks.back(), nullptr);
    const uint64_t needed = (i + 1) * kMiB - 3 * kMiB;
    const uint64_t granted = PoolStats().granted - start_.granted;
    const uint64_t quantum = needed <= 16 * kMiB ? kMiB : 4 * kMiB;
    EXPECT_GE(granted, needed) << i;
    EXPECT_LT(granted, needed + quantum) << i;
    EXPECT_EQ(granted % kMiB, 0u) << i;
  }
  const execmem_executor_stats_t s = e->Stats();
  EXPECT_EQ(s.footprint, 40 * kMiB);
  for (void* p : blocks) execmem_free(p);
  // Freed growth goes back to the pool, but for a slack of at most two quanta.
  EXPECT_LE(PoolStats().granted - start_.granted, 2 * kMiB);
  scope.reset();
  ASSERT_TRUE(e->Destroy().ok());
  EXPECT_EQ(PoolStats().granted, start_.granted);
  EXPECT_EQ(PoolStats().reserved, start_.reserved);
}

TEST_F(ExecutorTest, OneBigBlockIsGrantedAndFullyGivenBack) {
  auto e = execmem::Executor::Create(Config("big", "2m", "256m", "1m"));
  ASSERT_TRUE(e.ok()) << e.status();
  execmem::ExecutorScope scope(*e);
  void* p = execmem_malloc(32 * kMiB);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(PoolStats().granted - start_.granted, 29 * kMiB);
  execmem_free(p);
  EXPECT_EQ(PoolStats().granted, start_.granted);
}

TEST_F(ExecutorTest, GrowthStopsWhereThePoolEnds) {
  // 64 MiB, of which 16 MiB are reserved by an idle executor: the pool ends
  // (at 48 MiB of footprint) well before pool-bound's max. The default
  // executor first gives back what this thread caches for it (earlier tests'
  // freed large spans), which arbitration cannot take from another thread.
  execmem_trim();
  ASSERT_EQ(execmem_set_pool_capacity("64m"), 0) << execmem_last_error();
  auto idle = execmem::Executor::Create(Config("idle", "15m", "16m", "1m"));
  ASSERT_TRUE(idle.ok()) << idle.status();
  auto e = execmem::Executor::Create(Config("pool-bound", "8m", "60m", "1m"));
  ASSERT_TRUE(e.ok()) << e.status();
  execmem::ExecutorScope scope(*e);
  std::vector<void*> blocks;
  for (;;) {
    errno = 0;
    void* p = execmem_malloc(kMiB);
    if (p == nullptr) break;
    blocks.push_back(p);
    ASSERT_LE(blocks.size(), 64u);
  }
  EXPECT_GE(blocks.size(), 47u) << OomMessage(kMiB);
  EXPECT_EQ(errno, ENOMEM);
  const execmem_pool_stats_t pool = PoolStats();
  EXPECT_LE(pool.reserved + pool.granted, pool.capacity);
  EXPECT_LT(pool.capacity - pool.reserved - pool.granted, kMiB) << "refused with room left";
  const std::string msg = OomMessage(kMiB);
  EXPECT_THAT(msg, HasSubstr("'pool-bound'"));
  EXPECT_THAT(Lower(msg), HasSubstr("pool"));
  for (void* b : blocks) execmem_free(b);
  EXPECT_EQ(e->Stats().used, 0u);
}

// ---- binding and threads ------------------------------------------------------------

TEST_F(ExecutorTest, BindingIsPerThreadAndScopesRestoreIt) {
  auto a = execmem::Executor::Create(Config("bind-a", "1m", "64m", "512k"));
  auto b = execmem::Executor::Create(Config("bind-b", "1m", "64m", "512k"));
  ASSERT_TRUE(a.ok() && b.ok());
  execmem_executor_t* const outer = execmem_current_executor();
  {
    execmem::ExecutorScope sa(*a);
    EXPECT_EQ(execmem_current_executor(), a->get());
    {
      execmem::ExecutorScope sb(*b);
      EXPECT_EQ(execmem_current_executor(), b->get());
      // Another thread is not affected.
      execmem_executor_t* other = nullptr;
      std::thread([&] { other = execmem_current_executor(); }).join();
      EXPECT_EQ(other, execmem_default_executor());
      void* p = execmem_malloc(kMiB);
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(b->Stats().used, kMiB);
      EXPECT_EQ(a->Stats().used, 0u);
      execmem_free(p);
    }
    EXPECT_EQ(execmem_current_executor(), a->get());
    execmem_executor_t* prev = execmem_bind(b->get());
    EXPECT_EQ(prev, a->get());
    EXPECT_EQ(execmem_bind(nullptr), b->get());
    EXPECT_EQ(execmem_current_executor(), execmem_default_executor());
    execmem_bind(prev);
  }
  EXPECT_EQ(execmem_current_executor(), outer);
}

TEST_F(ExecutorTest, DestroyWhileBoundIsBusyAndNamesTheExecutor) {
  auto e = execmem::Executor::Create(Config("busy", "1m", "64m", "512k"));
  ASSERT_TRUE(e.ok()) << e.status();
  {
    execmem::ExecutorScope scope(*e);
    void* p = execmem_malloc(100);
    ASSERT_NE(p, nullptr);
    const execmem::Status st = e->Destroy();
    EXPECT_EQ(st.code(), EBUSY) << st;
    EXPECT_THAT(std::string(st.message()), HasSubstr("busy"));
    EXPECT_EQ(execmem_executor_destroy(e->get()), EBUSY);
    execmem_free(p);
  }
  // Bound on another thread.
  std::mutex mu;
  std::condition_variable cv;
  int phase = 0;
  std::thread t([&] {
    execmem::ExecutorScope scope(*e);
    std::unique_lock<std::mutex> lock(mu);
    phase = 1;
    cv.notify_all();
    cv.wait(lock, [&] { return phase == 2; });
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return phase == 1; });
  }
  EXPECT_EQ(execmem_executor_destroy(e->get()), EBUSY);
  {
    std::lock_guard<std::mutex> lock(mu);
    phase = 2;
  }
  cv.notify_all();
  t.join();
  // The executor still works after the refused destroys.
  {
    execmem::ExecutorScope scope(*e);
    void* p = execmem_malloc(kMiB);
    EXPECT_NE(p, nullptr);
    execmem_free(p);
  }
  EXPECT_TRUE(e->Destroy().ok());
  EXPECT_EQ(PoolStats().reserved, start_.reserved);
}

TEST_F(ExecutorTest, BlocksOutliveTheirDestroyedExecutor) {
  auto e = execmem::Executor::Create(Config("gone", "1m", "64m", "512k"));
  ASSERT_TRUE(e.ok()) << e.status();
  std::vector<void*> small;
  void* large = nullptr;
  {
    execmem::ExecutorScope scope(*e);
    for (int i = 0; i < 1000; ++i) small.push_back(execmem_malloc(200));
    large = execmem_malloc(3 * kMiB);
    ASSERT_NE(large, nullptr);
  }
  ASSERT_TRUE(e->Destroy().ok());
  EXPECT_EQ(PoolStats().reserved, start_.reserved);
  EXPECT_EQ(PoolStats().granted, start_.granted);
  // Still valid memory, freed from this (now differently bound) thread.
  memset(large, 1, 3 * kMiB);
  for (void* p : small) {
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(execmem_owns(p));
    memset(p, 2, 200);
  }
  for (void* p : small) execmem_free(p);
  execmem_free(large);
  execmem_trim();
}

// Blocks allocated by a thread bound to `owner`, freed by a thread bound to
// `other`, are credited to `owner` - with the allocating thread alive (its
// cache drains the remote frees) and after it exited (the orphaned spans).
TEST_F(ExecutorTest, AFreeFromAnyThreadCreditsTheAllocatingExecutor) {
  auto owner = execmem::Executor::Create(Config("owner", "1m", "64m", "512k"));
  auto other = execmem::Executor::Create(Config("other", "1m", "64m", "512k"));
  ASSERT_TRUE(owner.ok() && other.ok());
  for (bool owner_alive : {true, false}) {
    SCOPED_TRACE(owner_alive ? "owner thread alive" : "owner thread exited");
    std::vector<void*> blocks;
    std::mutex mu;
    std::condition_variable cv;
    int phase = 0;
    execmem_executor_stats_t owner_after{};
    std::thread t([&] {
      execmem::ExecutorScope scope(*owner);
      for (int i = 0; i < 300; ++i) blocks.push_back(execmem_malloc(1000));
      blocks.push_back(execmem_malloc(300 * kKiB));
      blocks.push_back(execmem_malloc(2 * kMiB));
      const execmem_executor_stats_t s = owner->Stats();
      EXPECT_EQ(s.used, 300 * 1024 + 300 * kKiB + 2 * kMiB);
      std::unique_lock<std::mutex> lock(mu);
      phase = 1;
      cv.notify_all();
      if (!owner_alive) return;
      cv.wait(lock, [&] { return phase == 2; });
      owner_after = owner->Stats();  // drains the remote frees
    });
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return phase == 1; });
    }
    if (!owner_alive) t.join();
    {
      execmem::ExecutorScope scope(*other);
      for (void* p : blocks) {
        ASSERT_NE(p, nullptr);
        execmem_free(p);
      }
      EXPECT_EQ(other->Stats().used, 0u);
      EXPECT_EQ(other->Stats().allocations, 0u);
    }
    if (owner_alive) {
      {
        std::lock_guard<std::mutex> lock(mu);
        phase = 2;
      }
      cv.notify_all();
      t.join();
      EXPECT_EQ(owner_after.used, 0u);
    }
    const execmem_executor_stats_t s = owner->Stats();
    EXPECT_EQ(s.used, 0u);
    EXPECT_EQ(s.footprint, 0u);
    EXPECT_EQ(s.allocations, s.frees);
  }
}

TEST_F(ExecutorTest, MemoryResourceChargesItsExecutorFromAnyThread) {
  auto e = execmem::Executor::Create(Config("pmr", "1m", "8m", "512k"));
  ASSERT_TRUE(e.ok()) << e.status();
  execmem::MemoryResource resource(e->get());
  void* p = resource.allocate(2 * kMiB, 64);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  EXPECT_EQ(e->Stats().used, 2 * kMiB);
  EXPECT_EQ(execmem_current_executor(), execmem_default_executor());
  EXPECT_THROW((void)resource.allocate(7 * kMiB, 16), execmem::OutOfMemory);
  resource.deallocate(p, 2 * kMiB, 64);
  EXPECT_EQ(e->Stats().used, 0u);
}

// ---- stats -------------------------------------------------------------------------

TEST_F(ExecutorTest, StatsCountAllocationsPeaksAndTimeAboveInitial) {
  auto e = execmem::Executor::Create(Config("counted", "1m", "16m", "512k"));
  ASSERT_TRUE(e.ok()) << e.status();
  execmem::ExecutorScope scope(*e);
  void* a = execmem_malloc(512 * kKiB);
  void* b = execmem_malloc(512 * kKiB);
  EXPECT_EQ(e->Stats().ns_above_initial, 0u) << "at initial is not above it";
  void* c = execmem_malloc(2 * kMiB);
  ASSERT_TRUE(a && b && c);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  execmem_free(c);
  execmem_free(b);
  execmem_executor_stats_t s = e->Stats();
  EXPECT_EQ(s.allocations, 3u);
  EXPECT_EQ(s.frees, 2u);
  EXPECT_EQ(s.used, 512 * kKiB);
  EXPECT_EQ(s.peak_used, 3 * kMiB);
  EXPECT_EQ(s.peak_footprint, 3 * kMiB);
  EXPECT_GE(s.ns_above_initial, 25'000'000u);
  const uint64_t above = s.ns_above_initial;
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(e->Stats().ns_above_initial, above) << "the clock runs only while above initial";
  execmem_free(a);
}

TEST_F(ExecutorTest, StatsJsonNamesEveryExecutor) {
  auto a = execmem::Executor::Create(Config("json-alpha", "1m", "16m", "512k"));
  auto b = execmem::Executor::Create(Config("json-beta", "1m", "16m", "512k"));
  ASSERT_TRUE(a.ok() && b.ok());
  void* p = nullptr;
  {
    execmem::ExecutorScope scope(*a);
    p = execmem_malloc(kMiB);
  }
  const std::string json = execmem::StatsJson();
  EXPECT_THAT(json, HasSubstr("json-alpha"));
  EXPECT_THAT(json, HasSubstr("json-beta"));
  EXPECT_THAT(json, HasSubstr("default"));
  EXPECT_THAT(json, HasSubstr(std::to_string(kMiB)));
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.back() == '}' || json.back() == '\n', true);
  char* c = execmem_stats_json();
  ASSERT_NE(c, nullptr);
  EXPECT_THAT(std::string(c), HasSubstr("json-beta"));
  execmem_free(c);
  char* text = execmem_stats_text();
  ASSERT_NE(text, nullptr);
  EXPECT_THAT(std::string(text), HasSubstr("json-alpha"));
  execmem_free(text);
  ASSERT_TRUE(b->Destroy().ok());
  EXPECT_THAT(execmem::StatsJson(), ::testing::Not(HasSubstr("json-beta")));
  execmem_free(p);
}

TEST(ExecutorDeathTest, AbortPolicyPrintsTheReportAndAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        execmem::internal::SetOomPolicy(execmem::internal::OomPolicy::kAbort);
        auto e = execmem::Executor::Create(Config("abort-me", "1m", "4m", "512k"));
        if (!e.ok()) return;
        execmem::ExecutorScope scope(*e);
        execmem_malloc(5 * kMiB);
      },
      "out of memory in executor 'abort-me'");
}

}  // namespace
