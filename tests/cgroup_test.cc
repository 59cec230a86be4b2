// The cgroup limit (platform/cgroup.h), read from cgroup trees laid out in a
// temporary directory: /proc/self/cgroup, /proc/self/mountinfo and the
// cgroup directories, under a test-only root.
#include "platform/cgroup.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "platform/os.h"

namespace execmem {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr char kV1Unlimited[] = "9223372036854771712";

class CgroupTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/execmem-cgroup-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // Writes <root>/<path> (parents made).
  void Write(const std::string& path, const std::string& text) {
    const std::filesystem::path full = root_ + "/" + path;
    std::filesystem::create_directories(full.parent_path());
    std::ofstream(full) << text;
  }
  os::CgroupLimit Read() { return os::ReadCgroupLimit(root_.c_str()); }

  // This machine's hybrid layout: v1 controllers under /sys/fs/cgroup/<c>,
  // the v2 hierarchy at /sys/fs/cgroup/unified.
  void HybridMounts(const std::string& memory_root = "/") {
    Write("proc/self/mountinfo",
          "22 1 0:20 / / rw,relatime - overlay overlay rw\n"
          "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
          "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
          "34 30 0:31 " +
              memory_root +
              " /sys/fs/cgroup/memory rw,relatime shared:7 - cgroup cgroup rw,memory\n"
              "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
  }

  std::string root_;
};

TEST_F(CgroupTree, V2NestedCgroupIsBoundedByItsParent) {
  Write("proc/self/cgroup", "0::/system.slice/app.service\n");
  Write("proc/self/mountinfo",
        "22 1 0:20 / / rw - ext4 /dev/sda1 rw\n"
        "30 22 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
  Write("sys/fs/cgroup/system.slice/memory.max", std::to_string(1024 * kMiB) + "\n");
  Write("sys/fs/cgroup/system.slice/app.service/memory.max", "max\n");
  const os::CgroupLimit got = Read();
  EXPECT_EQ(got.version, os::CgroupVersion::kV2);
  EXPECT_EQ(got.bytes, 1024 * kMiB) << "the mount's root file (absent here) alone says nothing";
}

TEST_F(CgroupTree, V2TakesTheTightestOfEveryLevel) {
  Write("proc/self/cgroup", "0::/a/b/c\n");
  Write("proc/self/mountinfo", "30 22 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
  Write("sys/fs/cgroup/memory.max", std::to_string(4096 * kMiB) + "\n");
  Write("sys/fs/cgroup/a/memory.max", std::to_string(300 * kMiB) + "\n");
  Write("sys/fs/cgroup/a/b/memory.max", std::to_string(600 * kMiB) + "\n");
  Write("sys/fs/cgroup/a/b/c/memory.max", std::to_string(900 * kMiB) + "\n");
  EXPECT_EQ(Read().bytes, 300 * kMiB);
}

TEST_F(CgroupTree, HybridLayoutReadsTheV1MemoryHierarchy) {
  Write("proc/self/cgroup",
        "9:name=systemd:/\n4:memory:/process_api/f0638f\n3:cpuset:/\n1:cpu:/\n0::/\n");
  HybridMounts();
  Write("sys/fs/cgroup/memory/memory.limit_in_bytes", std::string(kV1Unlimited) + "\n");
  Write("sys/fs/cgroup/memory/process_api/memory.limit_in_bytes", std::string(kV1Unlimited) + "\n");
  Write("sys/fs/cgroup/memory/process_api/f0638f/memory.limit_in_bytes",
        std::to_string(512 * kMiB) + "\n");
  Write("sys/fs/cgroup/unified/memory.max", std::to_string(64 * kMiB) + "\n");  // not ours
  const os::CgroupLimit got = Read();
  EXPECT_EQ(got.version, os::CgroupVersion::kV1);
  EXPECT_EQ(got.bytes, 512 * kMiB);
}

TEST_F(CgroupTree, V1ParentTighterThanChild) {
  Write("proc/self/cgroup", "4:memory,foo:/yarn/container_1\n");
  HybridMounts();
  Write("sys/fs/cgroup/memory/yarn/memory.limit_in_bytes", std::to_string(2048 * kMiB) + "\n");
  Write("sys/fs/cgroup/memory/yarn/container_1/memory.limit_in_bytes",
        std::to_string(8192 * kMiB) + "\n");
  EXPECT_EQ(Read().bytes, 2048 * kMiB);
}

TEST_F(CgroupTree, V1UnlimitedEverywhereIsZero) {
  Write("proc/self/cgroup", "4:memory:/x\n0::/\n");
  HybridMounts();
  Write("sys/fs/cgroup/memory/memory.limit_in_bytes", std::string(kV1Unlimited) + "\n");
  Write("sys/fs/cgroup/memory/x/memory.limit_in_bytes", std::string(kV1Unlimited) + "\n");
  const os::CgroupLimit got = Read();
  EXPECT_EQ(got.version, os::CgroupVersion::kV1);
  EXPECT_EQ(got.bytes, 0u);
}

// Inside a container the mount's root is the container's own cgroup: the
// mount point is the process's cgroup directory.
TEST_F(CgroupTree, ContainerMountRootIsTakenOffThePath) {
  Write("proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
  Write("proc/self/mountinfo",
        "30 22 0:27 /kubepods/pod1/ctr /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n");
  Write("sys/fs/cgroup/memory.max", std::to_string(256 * kMiB) + "\n");
  EXPECT_EQ(Read().bytes, 256 * kMiB);
  // A path outside the mount's root (a cgroup namespace shows "/"): the
  // mount point is taken as the process's cgroup, as the JVM does.
  Write("proc/self/cgroup", "0::/\n");
  EXPECT_EQ(Read().bytes, 256 * kMiB);
}

TEST_F(CgroupTree, EscapedMountPointAndOverlongLines) {
  Write("proc/self/cgroup", "0::/job\n");
  Write("proc/self/mountinfo", "1 0 0:1 / /" + std::string(6000, 'x') +
                                   " rw - cgroup2 cgroup2 rw\n"
                                   "30 22 0:27 / /my\\040cgroups rw - cgroup2 cgroup2 rw\n");
  Write("my cgroups/job/memory.max", std::to_string(77 * kMiB) + "\n");
  EXPECT_EQ(Read().bytes, 77 * kMiB);
}

TEST_F(CgroupTree, MissingOrGarbageFilesGiveNoLimit) {
  EXPECT_EQ(Read().bytes, 0u);  // nothing at all
  EXPECT_EQ(Read().version, os::CgroupVersion::kNone);
  Write("proc/self/cgroup", "garbage\n::\n4:memory\n0::/a\n");
  Write("proc/self/mountinfo", "30 22 - cgroup2\n- - - -\n\n30 22 0:27 / /cg rw - cgroup2 x rw\n");
  Write("cg/a/memory.max", "-5\n");
  Write("cg/memory.max", "99999999999999999999999999\n");  // overflows: no limit
  const int saved = errno = 1234;
  EXPECT_EQ(Read().bytes, 0u);
  EXPECT_EQ(errno, saved) << "errno is preserved";
}

TEST_F(CgroupTree, MemoryControllerInV1TakesPrecedenceOnlyWhenMounted) {
  // A v1 memory line but no v1 memory mount: the v2 hierarchy is read.
  Write("proc/self/cgroup", "4:memory:/x\n0::/y\n");
  Write("proc/self/mountinfo", "30 22 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
  Write("sys/fs/cgroup/y/memory.max", std::to_string(5 * kMiB) + "\n");
  const os::CgroupLimit got = Read();
  EXPECT_EQ(got.version, os::CgroupVersion::kV2);
  EXPECT_EQ(got.bytes, 5 * kMiB);
}

TEST(CgroupReal, TheProcessLimitIsTheSeamsDefault) {
  const os::CgroupLimit got = os::ReadCgroupLimit("");
  EXPECT_EQ(got.bytes, os::CgroupMemoryLimit());
  if (access("/proc/self/cgroup", R_OK) == 0) {
    EXPECT_NE(got.version, os::CgroupVersion::kNone);
  }
}

}  // namespace
}  // namespace execmem
