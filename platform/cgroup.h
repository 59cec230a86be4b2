// The memory limit of this process's cgroup, read the way the JVM's container
// support reads it (hotspot os/linux/cgroupSubsystem_linux.cpp):
//
//   1. /proc/self/cgroup gives the process's cgroup: the v1 line whose
//      controllers hold `memory` ("4:memory:/a/b"), or the v2 line ("0::/a/b").
//   2. /proc/self/mountinfo gives where that hierarchy is mounted: a `cgroup`
//      mount whose super options hold `memory` (v1), else the `cgroup2` mount.
//      A mount's root ("/" on the host, the container's own cgroup inside one)
//      is taken off the cgroup path: mount point + (path - root).
//   3. The limit is the tightest memory.limit_in_bytes (v1) or memory.max (v2)
//      of that directory and of every parent up to the mount point: a nested
//      cgroup (a systemd service, a YARN container) is bounded by its parents.
//
// A hybrid layout (v1 controllers mounted beside the v2 hierarchy, as on this
// project's machine) reads v1 when the memory controller is mounted there,
// as the JVM does. "max" (v2) and v1's page-counter maximum mean unlimited.
//
// Nothing here allocates through malloc (fixed buffers, read(2)); errno is
// left as it was. Lines of /proc/self/mountinfo longer than kMaxLine bytes are
// skipped, and paths longer than kMaxCgroupPath.
#ifndef EXECMEM_PLATFORM_CGROUP_H_
#define EXECMEM_PLATFORM_CGROUP_H_

#include <cstddef>
#include <cstdint>

namespace execmem::os {

// Longest mountinfo line and cgroup path (or directory) handled; longer ones
// are skipped, as a mount or cgroup that could not be the process's.
inline constexpr size_t kMaxCgroupLine = 4096;
inline constexpr size_t kMaxCgroupPath = 1024;

// Which hierarchy the limit came from.
enum class CgroupVersion : uint8_t { kNone, kV1, kV2 };

struct CgroupLimit {
  uint64_t bytes = 0;  // 0: unlimited or unknown
  CgroupVersion version = CgroupVersion::kNone;
};

// The limit, with every path read under `root` ("" for the real system): a
// test lays out <root>/proc/self/cgroup, <root>/proc/self/mountinfo and the
// cgroup directories the mountinfo names, under <root>, in a temporary
// directory. root must be shorter than kMaxCgroupPath / 2.
CgroupLimit ReadCgroupLimit(const char* root);

}  // namespace execmem::os

#endif  // EXECMEM_PLATFORM_CGROUP_H_
