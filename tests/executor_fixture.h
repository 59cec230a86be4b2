// The fixture of the tests that create executors and charge them to the
// limit (executor_test.cc, spill_test.cc): each test starts from a known pool
// capacity and must give back every reservation it took.
#ifndef EXECMEM_TESTS_EXECUTOR_FIXTURE_H_
#define EXECMEM_TESTS_EXECUTOR_FIXTURE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "execmem.h"
#include "execmem.hpp"
#include "executor/runtime.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace execmem::test_support {

// The pool capacity every test starts from: room for what the tests reserve
// whatever the machine's memory.
inline constexpr uint64_t kTestPoolCapacity = uint64_t{8} << 30;

class PoolCapacityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(execmem::internal::SetPoolCapacity(kTestPoolCapacity).ok());
    start_ = PoolStats();
  }
  void TearDown() override {
    EXPECT_EQ(PoolStats().reserved, start_.reserved) << "a reservation was not given back";
    EXPECT_TRUE(execmem::internal::SetPoolCapacity(0).ok());
  }
  // The pool's figures when the test started.
  execmem_pool_stats_t start_{};
};

// What an allocation of `size` through the throwing C++ API reported; "" if
// it succeeded (the block is then freed).
inline std::string OomMessage(size_t size) {
  try {
    void* p = execmem::allocate(size);
    execmem::deallocate(p);
  } catch (const execmem::OutOfMemory& e) {
    return e.what();
  }
  return "";
}

}  // namespace execmem::test_support

#endif  // EXECMEM_TESTS_EXECUTOR_FIXTURE_H_
