// The OS seam's resident-memory readers (platform/os.h), checked against
// memory this test maps and touches itself.
#include "platform/os.h"

#include <cerrno>
#include <cstdint>

#include "gtest/gtest.h"

namespace execmem {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

TEST(OsResident, IsPositiveAndBelowThePeak) {
  const uint64_t resident = os::ResidentBytes();
  const uint64_t peak = os::PeakResidentBytes();
  EXPECT_GT(resident, 0u);
  EXPECT_EQ(resident % os::PageSize(), 0u);
  EXPECT_GT(peak, 0u);
  EXPECT_EQ(peak % 1024, 0u);
  EXPECT_GE(peak, resident);
  EXPECT_LT(resident, os::PhysicalMemory());
}

// Touching 64 MiB raises the RSS by about that much, and the peak with it.
// RSS counters are approximate (the kernel batches them per thread or per
// CPU), so the checks leave 4 MiB of slack.
TEST(OsResident, GrowsWithTouchedMemoryAndShrinksWhenUnmapped) {
  constexpr size_t kSize = 64 * kMiB;
  const uint64_t before = os::ResidentBytes();
  void* mem = os::MapAligned(kSize, os::PageSize());
  ASSERT_NE(mem, nullptr);
  EXPECT_LT(os::ResidentBytes(), before + 4 * kMiB) << "mapping alone is not resident";
  os::Prefault(mem, kSize);
  const uint64_t touched = os::ResidentBytes();
  const uint64_t peak = os::PeakResidentBytes();
  EXPECT_GE(touched, before + kSize - 4 * kMiB);
  EXPECT_GE(peak, touched);
  EXPECT_EQ(os::ResidentBytesIn(mem, kSize), kSize);
  os::Unmap(mem, kSize);
  EXPECT_LE(os::ResidentBytes(), touched - kSize + 4 * kMiB);
  // The high-water mark is taken from the same approximate counters, so it
  // may read a little lower than before; it stays near the 64 MiB peak.
  EXPECT_GE(os::PeakResidentBytes(), peak - 4 * kMiB) << "the peak stays after the unmap";
}

TEST(OsResident, ResidentBytesInCountsOnlyTouchedPages) {
  const size_t page = os::PageSize();
  constexpr size_t kPages = 1000;  // more than one mincore chunk
  char* mem = static_cast<char*>(os::MapAligned(kPages * page, page));
  ASSERT_NE(mem, nullptr);
  EXPECT_EQ(os::ResidentBytesIn(mem, kPages * page), 0u);
  for (size_t i = 0; i < kPages; i += 3) mem[i * page] = 1;
  const uint64_t touched = (kPages + 2) / 3;
  EXPECT_EQ(os::ResidentBytesIn(mem, kPages * page), touched * page);
  // An unaligned range covers every page it overlaps.
  EXPECT_EQ(os::ResidentBytesIn(mem + 1, 1), page);
  EXPECT_EQ(os::ResidentBytesIn(mem + page + 1, page), 0u);     // pages 1 and 2, untouched
  EXPECT_EQ(os::ResidentBytesIn(mem + 3 * page - 1, 2), page);  // pages 2 and 3
  os::Unmap(mem, kPages * page);
}

TEST(OsResident, PreserveErrno) {
  errno = 1234;
  os::ResidentBytes();
  os::PeakResidentBytes();
  int local = 0;
  os::ResidentBytesIn(&local, sizeof local);
  EXPECT_EQ(errno, 1234);
  // A range that is no longer mapped: mincore fails (ENOMEM) and errno stays.
  void* gone = os::MapAligned(os::PageSize(), os::PageSize());
  ASSERT_NE(gone, nullptr);
  os::Unmap(gone, os::PageSize());
  EXPECT_EQ(os::ResidentBytesIn(gone, os::PageSize()), 0u);
  EXPECT_EQ(errno, 1234);
}

// MapAligned keeps errno whichever way it returns: mapped (over-reserved and
// trimmed), and refused twice (more than the address space: the
// over-reservation, then the exact size).
TEST(OsMap, MapAlignedPreservesErrno) {
  errno = 1234;
  const size_t arena = size_t{256} << 20;
  void* mem = os::MapAligned(os::PageSize(), arena);
  ASSERT_NE(mem, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(mem) % arena, 0u);
  EXPECT_EQ(errno, 1234);
  os::Unmap(mem, os::PageSize());
  EXPECT_EQ(os::MapAligned(size_t{1} << 48, os::PageSize()), nullptr);
  EXPECT_EQ(errno, 1234);
}

// os::ErrnoKeeper restores errno on every way out of its scope; the seam's
// memory calls that fail keep the caller's errno through it.
TEST(OsErrno, KeeperRestoresOnEveryReturn) {
  const auto fails_early = [](bool early) {
    const os::ErrnoKeeper keep_errno;
    errno = EINVAL;
    if (early) return 1;
    errno = ENOMEM;
    return 2;
  };
  errno = 1234;
  EXPECT_EQ(fails_early(true), 1);
  EXPECT_EQ(errno, 1234);
  EXPECT_EQ(fails_early(false), 2);
  EXPECT_EQ(errno, 1234);
}

TEST(OsErrno, FailedMemoryCallsKeepErrno) {
  const size_t page = os::PageSize();
  void* gone = os::MapAligned(page, page);
  ASSERT_NE(gone, nullptr);
  os::Unmap(gone, page);
  errno = 1234;
  EXPECT_FALSE(os::Protect(gone, page, false));                      // ENOMEM: not mapped
  EXPECT_FALSE(os::Decommit(static_cast<char*>(gone) + 1, page));    // EINVAL: unaligned
  EXPECT_FALSE(os::RemapInPlace(gone, page, 2 * page));              // EFAULT: not mapped
  EXPECT_EQ(os::ReserveNoAccess(size_t{1} << 62), nullptr);          // ENOMEM: too large
  EXPECT_EQ(os::RemapAligned(gone, page, 2 * page, page), nullptr);  // EFAULT: not mapped
  EXPECT_EQ(errno, 1234);
}

}  // namespace
}  // namespace execmem
