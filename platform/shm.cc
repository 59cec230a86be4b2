#include "platform/shm.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "platform/errno_keeper.h"
#include "platform/os_internal.h"

namespace execmem::os {
namespace {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));

constexpr char kShmDir[] = "/dev/shm/";
constexpr size_t kPathCap = sizeof kShmDir + kMaxShmName + 32;

// "/dev/shm/<name><suffix>"; false when it does not fit.
bool ShmPath(char* out, const char* name, bool temporary) {
  if (!ValidShmName(name)) return false;
  int n = temporary ? snprintf(out, kPathCap, "%s%s.new.%d", kShmDir, name, getpid())
                    : snprintf(out, kPathCap, "%s%s", kShmDir, name);
  return n > 0 && static_cast<size_t>(n) < kPathCap;
}

int MapFd(int fd, bool writable, size_t size, ShmMapping* out) {
  void* p = mmap(nullptr, size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return errno;
  out->base = p;
  out->size = size;
  return 0;
}

// Reads /proc/<pid>/<file> into buf; bytes read or -1.
ssize_t ReadProcFile(int pid, const char* file, char* buf, size_t cap) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
  if (internal::InjectReadFault()) return -1;
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n;
  do {
    n = read(fd, buf, cap - 1);
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n < 0) return -1;
  buf[n] = '\0';
  return n;
}

uint64_t ParseDecimal(const char* s) {
  uint64_t v = 0;
  for (; *s >= '0' && *s <= '9'; ++s) {
    if (v > (UINT64_MAX - 9) / 10) return 0;
    v = v * 10 + static_cast<uint64_t>(*s - '0');
  }
  return v;
}

}  // namespace

bool ValidShmName(const char* name) {
  if (name == nullptr) return false;
  size_t n = 0;
  for (; name[n] != '\0'; ++n) {
    const char c = name[n];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok || n >= kMaxShmName) return false;
  }
  return n > 0 && !(n <= 2 && name[0] == '.' && (n == 1 || name[1] == '.'));
}

int ShmOpen(const char* name, bool writable, size_t min_size, size_t max_size, ShmMapping* out,
            ShmStat* st) {
  const ErrnoKeeper keep_errno;
  char path[kPathCap];
  int err = 0;
  int fd = -1;
  struct stat sb;
  if (!ShmPath(path, name, false)) {
    err = EINVAL;
  } else if (internal::InjectReadFault()) {
    err = ENOMEM;
  } else if ((fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC)) < 0) {
    err = errno;
  } else if (fstat(fd, &sb) != 0) {
    err = errno;
  } else {
    st->uid = sb.st_uid;
    st->gid = sb.st_gid;
    st->mode = sb.st_mode & 07777;
    st->size = static_cast<uint64_t>(sb.st_size);
    if (!S_ISREG(sb.st_mode) || st->size < min_size || st->size > max_size) {
      err = EINVAL;
    } else {
      err = MapFd(fd, writable, static_cast<size_t>(st->size), out);
    }
  }
  if (fd >= 0) close(fd);
  return err;
}

int ShmCreatePrivate(const char* name, uint32_t mode, size_t size, ShmMapping* out) {
  const ErrnoKeeper keep_errno;
  char path[kPathCap];
  if (!ShmPath(path, name, true)) return EINVAL;
  unlink(path);  // a leftover of a process that had our pid and died here
  int err = 0;
  const int fd = internal::InjectReadFault()
                     ? -1
                     : open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    err = errno;
  } else if (fchmod(fd, mode & 0777) != 0 || ftruncate(fd, static_cast<off_t>(size)) != 0) {
    err = errno;
  } else {
    err = MapFd(fd, true, size, out);
  }
  if (fd >= 0) close(fd);
  if (err != 0) unlink(path);
  return err;
}

int ShmPublish(const char* name) {
  const ErrnoKeeper keep_errno;
  char tmp[kPathCap], path[kPathCap];
  if (!ShmPath(tmp, name, true) || !ShmPath(path, name, false)) return EINVAL;
  const int err = link(tmp, path) == 0 ? 0 : errno;
  unlink(tmp);
  return err;
}

void ShmDiscard(const char* name) {
  const ErrnoKeeper keep_errno;
  char tmp[kPathCap];
  if (ShmPath(tmp, name, true)) unlink(tmp);
}

int ShmUnlink(const char* name) {
  const ErrnoKeeper keep_errno;
  char path[kPathCap];
  if (!ShmPath(path, name, false)) return EINVAL;
  const int err = unlink(path) == 0 ? 0 : errno;
  return err;
}

void ShmUnmap(ShmMapping* m) {
  if (m->base == nullptr) return;
  const ErrnoKeeper keep_errno;
  munmap(m->base, m->size);
  m->base = nullptr;
  m->size = 0;
}

uint32_t EffectiveUid() { return static_cast<uint32_t>(geteuid()); }

bool InGroup(uint32_t gid) {
  const ErrnoKeeper keep_errno;
  bool in = getegid() == static_cast<gid_t>(gid);
  gid_t groups[256];
  const int n = in ? 0 : getgroups(256, groups);
  for (int i = 0; i < n && !in; ++i) in = groups[i] == static_cast<gid_t>(gid);
  return in;
}

bool FutexWait(std::atomic<uint32_t>* word, uint32_t expected, uint64_t timeout_ms) {
  const ErrnoKeeper keep_errno;
  timespec rel;
  rel.tv_sec = static_cast<time_t>(timeout_ms / 1000);
  rel.tv_nsec = static_cast<long>(timeout_ms % 1000) * 1'000'000;
  // Shared (no FUTEX_PRIVATE_FLAG): the word is in memory other processes map.
  const long r =
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &rel, nullptr, 0);
  const bool timed_out = r != 0 && errno == ETIMEDOUT;
  return !timed_out;
}

void FutexWakeAll(std::atomic<uint32_t>* word) {
  const ErrnoKeeper keep_errno;
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

ProcessStat ReadProcessStat(int pid) {
  ProcessStat st;
  if (pid <= 0) return st;
  const ErrnoKeeper keep_errno;
  // "pid (comm) state ppid ...": comm may hold blanks and ')', so fields are
  // counted after the last ')': state is field 3, starttime field 22.
  char buf[1024];
  const ssize_t n = ReadProcFile(pid, "stat", buf, sizeof buf);
  if (n <= 0) return st;
  const char* at = strrchr(buf, ')');
  if (at == nullptr || at[1] != ' ' || at[2] == '\0') return st;
  st.exists = true;
  st.state = at[2];
  for (int field = 2; field < 22; ++field) {
    at = strchr(at + 1, ' ');
    if (at == nullptr) return st;
  }
  st.start_ticks = ParseDecimal(at + 1);
  return st;
}

bool ProcessAlive(int pid, uint64_t start_ticks) {
  const ProcessStat st = ReadProcessStat(pid);
  if (!st.exists) {
    // /proc unreadable for another reason than the process being gone:
    // taken as alive (never reclaim what might still be used).
    const ErrnoKeeper keep_errno;
    const bool gone = kill(pid, 0) != 0 && errno == ESRCH;
    return !gone;
  }
  return st.start_ticks == start_ticks && st.state != 'Z' && st.state != 'X';
}

bool ProcessName(int pid, char* buf, size_t cap) {
  const ErrnoKeeper keep_errno;
  const ssize_t n = cap == 0 ? -1 : ReadProcFile(pid, "comm", buf, cap);
  if (n < 0) return false;
  char* nl = strchr(buf, '\n');
  if (nl != nullptr) *nl = '\0';
  return true;
}

uint64_t ProcessResidentBytes(int pid) {
  char buf[128];
  const ErrnoKeeper keep_errno;
  const ssize_t n = ReadProcFile(pid, "statm", buf, sizeof buf);
  if (n <= 0) return 0;
  const char* second = strchr(buf, ' ');
  if (second == nullptr) return 0;
  const long page = sysconf(_SC_PAGESIZE);
  return ParseDecimal(second + 1) * static_cast<uint64_t>(page > 0 ? page : 4096);
}

uint64_t PidNamespaceId() {
  const ErrnoKeeper keep_errno;
  struct stat sb;
  const bool ok = stat("/proc/self/ns/pid", &sb) == 0;
  return ok ? static_cast<uint64_t>(sb.st_ino) : 0;
}

}  // namespace execmem::os
