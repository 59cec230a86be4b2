// execmem::MemoryResource with standard pmr containers, and the stats reports.
#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <string>
#include <unordered_map>
#include <vector>

#include "execmem.h"
#include "execmem.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

uint64_t Used(execmem_executor_t* e = execmem_default_executor()) {
  execmem_executor_stats_t s;
  EXPECT_EQ(execmem_executor_stats(e, &s), 0);
  return s.used;
}

TEST(Pmr, VectorGrowsThroughExecmemAndGivesEverythingBack) {
  const uint64_t start = Used();
  execmem::MemoryResource resource;
  {
    std::pmr::vector<uint64_t> v(&resource);
    for (uint64_t i = 0; i < 2'000'000; ++i) v.push_back(i * 3);
    EXPECT_TRUE(execmem_owns(v.data()));
    EXPECT_GE(Used(), start + v.capacity() * sizeof(uint64_t));
    for (uint64_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], i * 3);
    v.resize(10);
    v.shrink_to_fit();
    EXPECT_TRUE(execmem_owns(v.data()));
    EXPECT_EQ(v[9], 27u);
  }
  EXPECT_EQ(Used(), start);
}

TEST(Pmr, UnorderedMapOfStringsLivesInExecmem) {
  const uint64_t start = Used();
  execmem::MemoryResource resource;
  {
    std::pmr::unordered_map<int, std::pmr::string> m(&resource);
    for (int i = 0; i < 100'000; ++i) {
      m.emplace(i, std::pmr::string(40 + i % 200, static_cast<char>('a' + i % 26)));
    }
    ASSERT_EQ(m.size(), 100'000u);
    for (int i = 0; i < 100'000; i += 7) {
      const auto& s = m.at(i);
      ASSERT_EQ(s.size(), 40u + i % 200);
      ASSERT_EQ(s.front(), 'a' + i % 26);
      // Long strings are allocated through the map's resource.
      EXPECT_TRUE(execmem_owns(s.data()));
    }
    for (int i = 0; i < 100'000; i += 2) m.erase(i);
    EXPECT_EQ(m.size(), 50'000u);
    EXPECT_GT(Used(), start);
  }
  EXPECT_EQ(Used(), start);
}

TEST(Pmr, OverAlignedRequestsAreHonoured) {
  execmem::MemoryResource resource;
  for (size_t alignment : {8ul, 16ul, 64ul, 256ul, 4096ul, 65536ul, 1ul << 21}) {
    for (size_t bytes : {1ul, 100ul, 5000ul, 300000ul}) {
      // Several at once: consecutive blocks of a class sit at different
      // offsets modulo the alignment.
      void* blocks[4];
      for (void*& p : blocks) {
        p = resource.allocate(bytes, alignment);
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % alignment, 0u)
            << "allocate(" << bytes << ", " << alignment << ")";
        EXPECT_TRUE(execmem_owns(p));
        memset(p, 1, bytes);
      }
      for (void* p : blocks) resource.deallocate(p, bytes, alignment);
    }
  }
}

TEST(Pmr, ResourcesCompareEqualToEachOtherOnly) {
  execmem::MemoryResource a;
  execmem::MemoryResource b(execmem_default_executor());
  EXPECT_TRUE(a.is_equal(b));
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a.is_equal(*std::pmr::new_delete_resource()));
  // Memory from one is freed by the other.
  void* p = a.allocate(128);
  b.deallocate(p, 128);
}

// A resource bound to a small executor throws OutOfMemory (a std::bad_alloc)
// out of the container, which stays usable; the executor is charged even
// though the thread is bound to the default one.
TEST(Pmr, ARefusedGrowthThrowsAndLeavesTheContainerIntact) {
  execmem::ExecutorConfig config;
  config.name = "pmr-small";
  config.initial = "1m";
  config.max = "4m";
  config.overhead = "1m";
  auto e = execmem::Executor::Create(config);
  ASSERT_TRUE(e.ok()) << e.status();
  {
    execmem::MemoryResource resource(e->get());
    std::pmr::vector<char> v(&resource);
    v.resize(1 << 20, 'x');
    EXPECT_GE(Used(e->get()), 1u << 20);
    EXPECT_EQ(execmem_current_executor(), execmem_default_executor());
    try {
      v.resize(8 << 20, 'y');
      FAIL() << "8 MiB fit a 4 MiB max";
    } catch (const std::bad_alloc& oom) {
      EXPECT_THAT(oom.what(), HasSubstr("pmr-small"));
      EXPECT_NE(dynamic_cast<const execmem::OutOfMemory*>(&oom), nullptr);
    }
    ASSERT_EQ(v.size(), 1u << 20);
    EXPECT_EQ(v.front(), 'x');
    EXPECT_EQ(v.back(), 'x');
  }
  EXPECT_EQ(Used(e->get()), 0u);
}

TEST(Stats, JsonAndTextNameTheDefaultExecutor) {
  void* keep = execmem_malloc(1000);  // something to report
  char* json = execmem_stats_json();
  ASSERT_NE(json, nullptr);
  EXPECT_TRUE(execmem_owns(json)) << "the buffer comes from execmem_malloc";
  const std::string j(json);
  execmem_free(json);
  EXPECT_THAT(j, StartsWith("{"));
  EXPECT_EQ(j.find_last_not_of(" \n"), j.rfind('}'));
  EXPECT_THAT(j, HasSubstr("\"default\""));
  char* text = execmem_stats_text();
  ASSERT_NE(text, nullptr);
  const std::string t(text);
  execmem_free(text);
  EXPECT_THAT(t, HasSubstr("default"));
  EXPECT_THAT(execmem::StatsJson(), HasSubstr("\"default\""));
  EXPECT_THAT(execmem::StatsText(), HasSubstr("default"));
  execmem_free(keep);
}

}  // namespace
