#include "platform/os.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "platform/cgroup.h"
#include "platform/os_internal.h"

namespace execmem::os {
namespace {

// ---- injected faults (os.h) ----
#ifdef EXECMEM_FAULT_INJECTION
constexpr bool kFaultInjection = true;
#else
constexpr bool kFaultInjection = false;
#endif

std::atomic<uint64_t> g_fault_calls{0};
std::atomic<uint64_t> g_fault_at{0};
std::atomic<bool> g_fault_and_after{false};
std::atomic<uint64_t> g_faults{0};

// Numbers one fallible OS call; true when the plan says it fails. Every
// fallible call below goes through it first.
inline bool InjectFault() {
  if constexpr (!kFaultInjection) {
    return false;
  } else {
    const uint64_t n = g_fault_calls.fetch_add(1, std::memory_order_relaxed) + 1;
    const uint64_t at = g_fault_at.load(std::memory_order_relaxed);
    if (at == 0 || n < at || (n > at && !g_fault_and_after.load(std::memory_order_relaxed))) {
      return false;
    }
    g_faults.fetch_add(1, std::memory_order_relaxed);
    errno = ENOMEM;
    return true;
  }
}

int SysMadvise(void* ptr, size_t size, int advice) {
  if (InjectFault()) return -1;
  return madvise(ptr, size, advice);
}

void* SysMremap(void* ptr, size_t old_size, size_t new_size, int flags, void* target = nullptr) {
  if (InjectFault()) return MAP_FAILED;
  return mremap(ptr, old_size, new_size, flags, target);
}

long SysConf(int name) {
  if (InjectFault()) return -1;
  return sysconf(name);
}

// Reads a small file into buf without malloc; returns bytes read or -1.
// errno is left as it was.
ssize_t ReadSmallFile(const char* path, char* buf, size_t cap) {
  const ErrnoKeeper keep_errno;
  if (InjectFault()) return -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = -1;
  if (fd >= 0) {
    n = read(fd, buf, cap - 1);
    close(fd);
    if (n >= 0) buf[n] = '\0';
  }
  return n < 0 ? -1 : n;
}

// Parses a decimal number at the start of s; 0 for "max" or garbage.
uint64_t ParseLimit(const char* s) {
  uint64_t v = 0;
  bool any = false;
  for (; *s >= '0' && *s <= '9'; ++s) {
    any = true;
    if (v > (UINT64_MAX - 9) / 10) return 0;
    v = v * 10 + static_cast<uint64_t>(*s - '0');
  }
  return any ? v : 0;
}

// The decimal number after the first occurrence of `key` in s, skipping
// blanks; 0 when absent.
uint64_t NumberAfter(const char* s, const char* key) {
  const char* at = strstr(s, key);
  if (at == nullptr) return 0;
  at += strlen(key);
  while (*at == ' ' || *at == '\t') ++at;
  return ParseLimit(at);
}

}  // namespace

bool internal::InjectReadFault() {
  const ErrnoKeeper keep_errno;
  return InjectFault();
}

size_t PageSize() {
  static std::atomic<size_t> cached{0};
  size_t v = cached.load(std::memory_order_relaxed);
  if (v == 0) {
    long r = SysConf(_SC_PAGESIZE);
    v = r > 0 ? static_cast<size_t>(r) : 4096;
    cached.store(v, std::memory_order_relaxed);
  }
  return v;
}

void* MapAligned(size_t size, size_t alignment) {
  // The kernel gives no alignment beyond the OS page: over-reserve by
  // `alignment` and trim both ends, which leaves the trimmed head unmapped
  // below the result (a write far before an arena's first block faults
  // there: safety.original's one_mbyte_underflow_* are caught by it).
  const size_t page = PageSize();
  if (alignment < page) alignment = page;
  size = (size + page - 1) & ~(page - 1);
  if (size == 0 || size > (SIZE_MAX >> 2) || alignment > (SIZE_MAX >> 2)) return nullptr;
  const size_t span = size + alignment;
  const ErrnoKeeper keep_errno;
  if (InjectFault()) return nullptr;
  constexpr int kProt = PROT_READ | PROT_WRITE;
  constexpr int kFlags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  void* raw = mmap(nullptr, span, kProt, kFlags, -1, 0);
  if (raw != MAP_FAILED) {
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (start + alignment - 1) & ~(alignment - 1);
    if (aligned > start) munmap(raw, aligned - start);
    const uintptr_t end = start + span;
    if (end > aligned + size) {
      munmap(reinterpret_cast<void*>(aligned + size), end - (aligned + size));
    }
    return reinterpret_cast<void*>(aligned);
  }
  // Refused: `size` alone, then at the aligned addresses on either side of
  // where the kernel put it (its free range usually goes on there). The
  // over-reservation needs size + alignment of address space at once, 512 MiB
  // for the first 256 MiB arena, which a low RLIMIT_AS (ulimit -v) refuses
  // where the arena itself fits (the shim then died at start under ulimit -v
  // 500000). jemalloc's pages_map does the same.
  void* first = mmap(nullptr, size, kProt, kFlags, -1, 0);
  if (first == MAP_FAILED) return nullptr;
  const uintptr_t at = reinterpret_cast<uintptr_t>(first);
  if ((at & (alignment - 1)) == 0) return first;
  munmap(first, size);
  void* result = nullptr;
  for (const uintptr_t hint : {at & ~(alignment - 1), (at + alignment - 1) & ~(alignment - 1)}) {
    // MAP_FIXED_NOREPLACE never replaces a mapping; a kernel before 4.17
    // takes it as a hint, and another address is given back.
    void* p = mmap(reinterpret_cast<void*>(hint), size, kProt, kFlags | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == reinterpret_cast<void*>(hint)) {
      result = p;
      break;
    }
    if (p != MAP_FAILED) munmap(p, size);
  }
  return result;
}

void Unmap(void* ptr, size_t size) {
  const ErrnoKeeper keep_errno;
  munmap(ptr, size);
}

bool Decommit(void* ptr, size_t size) {
  const ErrnoKeeper keep_errno;
  return SysMadvise(ptr, size, MADV_DONTNEED) == 0;
}

bool RemapInPlace(void* ptr, size_t old_size, size_t new_size) {
  const ErrnoKeeper keep_errno;
  return SysMremap(ptr, old_size, new_size, 0) != MAP_FAILED;
}

void* RemapAligned(void* ptr, size_t old_size, size_t new_size, size_t alignment) {
  const ErrnoKeeper keep_errno;
  // Reserve an aligned target range, then move the pages over it: mremap with
  // MREMAP_FIXED replaces the reservation atomically.
  void* target = MapAligned(new_size, alignment);
  if (target == nullptr) return nullptr;
  void* moved = SysMremap(ptr, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  if (moved == MAP_FAILED) {
    munmap(target, new_size);
    return nullptr;
  }
  return moved;
}

MoveVerdict MovePages(void* from, void* to, size_t size) {
#ifndef MREMAP_DONTUNMAP
  constexpr int MREMAP_DONTUNMAP = 4;  // Linux 5.7's uapi value
#endif
  const ErrnoKeeper keep_errno;
  constexpr int kFlags = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP;
  if (SysMremap(from, size, size, kFlags, to) == to) return MoveVerdict::kMoved;
  // Refused. A kernel may have unmapped `to` before it looked at `from`: map
  // it again. MAP_FIXED_NOREPLACE fails (EEXIST) where it is still mapped; a
  // kernel before 4.17 takes it as a hint and answers elsewhere.
  void* p = mmap(to, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == to) return MoveVerdict::kRefused;
  if (p != MAP_FAILED) {
    munmap(p, size);
    return MoveVerdict::kRefused;
  }
  return errno == EEXIST ? MoveVerdict::kRefused : MoveVerdict::kLost;
}

bool MapFresh(void* ptr, size_t size) {
  const ErrnoKeeper keep_errno;
  if (InjectFault()) return false;
  return mmap(ptr, size, PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == ptr;
}

bool Protect(void* ptr, size_t size, bool accessible) {
  const ErrnoKeeper keep_errno;
  return mprotect(ptr, size, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
}

void* ReserveNoAccess(size_t size) {
  const ErrnoKeeper keep_errno;
  void* p = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

uint64_t RandomU64() {
  const ErrnoKeeper keep_errno;
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof v)) {
    v = NowNs() ^ (reinterpret_cast<uintptr_t>(&v) << 16) ^ static_cast<uint64_t>(getpid());
  }
  return v;
}

void AdviseHugePages(void* ptr, size_t size, bool on) {
  const ErrnoKeeper keep_errno;
  SysMadvise(ptr, size, on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
}

void Prefault(void* ptr, size_t size) {
  const size_t page = PageSize();
  volatile char* p = static_cast<volatile char*>(ptr);
  for (size_t off = 0; off < size; off += page) p[off] = p[off];
}

uint64_t PhysicalMemory() {
  long pages = SysConf(_SC_PHYS_PAGES);
  if (pages <= 0) return uint64_t{16} << 30;
  return static_cast<uint64_t>(pages) * PageSize();
}

uint64_t ResidentBytes() {
  char buf[128];  // "size resident shared text lib data dt": 7 numbers
  const ssize_t n = ReadSmallFile("/proc/self/statm", buf, sizeof buf);
  if (n <= 0) return 0;
  const char* second = strchr(buf, ' ');
  if (second == nullptr) return 0;
  return ParseLimit(second + 1) * PageSize();
}

uint64_t PeakResidentBytes() {
  // VmHWM is among the first 20 lines (under 1 KiB); the whole file is about
  // 1.5 KiB, longer with many groups or CPUs, so a first read of 4 KiB holds it.
  char buf[4096];
  const ssize_t n = ReadSmallFile("/proc/self/status", buf, sizeof buf);
  if (n <= 0) return 0;
  return NumberAfter(buf, "\nVmHWM:") * 1024;  // the kernel writes "VmHWM:  1234 kB"
}

uint64_t ResidentBytesIn(const void* ptr, size_t size) {
  const size_t page = PageSize();
  const uintptr_t first = reinterpret_cast<uintptr_t>(ptr) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(ptr) + size + page - 1) & ~(page - 1);
  const ErrnoKeeper keep_errno;
  uint64_t resident = 0;
  unsigned char vec[256];  // one byte per page, a chunk at a time
  for (uintptr_t at = first; at < end;) {
    const size_t pages = std::min<size_t>((end - at) / page, sizeof vec);
    if (InjectFault() || mincore(reinterpret_cast<void*>(at), pages * page, vec) != 0) return 0;
    for (size_t i = 0; i < pages; ++i) resident += vec[i] & 1;
    at += pages * page;
  }
  return resident * page;
}

uint64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void SleepMs(uint64_t ms) {
  const ErrnoKeeper keep_errno;
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(ms / 1000);
  ts.tv_nsec = static_cast<long>((ms % 1000) * 1000000);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

bool StartDetachedThread(void* (*fn)(void*), void* arg) {
  const ErrnoKeeper keep_errno;
  // The new thread inherits the signal mask: block everything around the
  // creation so that none of the program's handlers ever runs on it.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  // Small, but room for the static TLS of large programs (glibc puts it on the stack).
  pthread_attr_setstacksize(&attr, 256 * 1024);
  // fn and arg go to pthread_create as they are: nothing on this stack for
  // the new thread to copy, so the caller (an allocating thread) never waits
  // for the new thread to be scheduled. It did (a sched_yield loop) until
  // 2026-12-07: on a loaded machine thousands of yields a start (a
  // randorder-mt run 24 744, an ownobjects run 12 888; docs/performance.md).
  pthread_t tid;
  const bool ok = !InjectFault() && pthread_create(&tid, &attr, fn, arg) == 0;
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return ok;
}

namespace {
// A duplicate of fd 2 taken by KeepStderr, or -1.
std::atomic<int> g_kept_stderr{-1};
}  // namespace

const char* const* Environment() { return environ; }

int AtExit(void (*fn)()) { return atexit(fn); }

int OnExit(void (*fn)(int, void*), void* arg) { return on_exit(fn, arg); }

void ExitNow(int status) { _exit(status); }

void KeepStderr() {
  if (g_kept_stderr.load(std::memory_order_relaxed) >= 0 || InjectFault()) return;
  // Above the descriptors a program counts on getting (3, 4, ...): 100 or the
  // lowest free one above it. Close-on-exec: an exec'd program keeps its own.
  const int fd = fcntl(2, F_DUPFD_CLOEXEC, 100);
  if (fd >= 0) g_kept_stderr.store(fd, std::memory_order_relaxed);
}

void WriteStderr(const char* msg, size_t len) {
  const ErrnoKeeper keep_errno;
  int fd = 2;
  while (len > 0) {
    ssize_t n = write(fd, msg, len);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      // fd 2 was closed (coreutils close it before exit handlers run):
      // the duplicate taken at start-up still reaches the same place.
      const int kept = g_kept_stderr.load(std::memory_order_relaxed);
      if (n < 0 && errno == EBADF && fd == 2 && kept >= 0) {
        fd = kept;
        continue;
      }
      break;
    }
    msg += n;
    len -= static_cast<size_t>(n);
  }
}

void Abort() { abort(); }

// ---- process identity and files ------------------------------------------------

int ProcessId() { return static_cast<int>(getpid()); }

const char* ProgramName() {
  const char* name = program_invocation_short_name;
  return name == nullptr ? "" : name;
}

uint64_t ProcessStartTime() {
  // "pid (comm) state ppid ..." where comm may hold spaces and parentheses:
  // the fields after the last ')' are numbered from 3; starttime is field 22,
  // clock ticks after boot.
  char buf[1024];
  const ssize_t n = ReadSmallFile("/proc/self/stat", buf, sizeof buf);
  if (n <= 0) return 0;
  const char* at = strrchr(buf, ')');
  if (at == nullptr) return 0;
  for (int field = 2; field < 22; ++field) {
    at = strchr(at + 1, ' ');
    if (at == nullptr) return 0;
  }
  const uint64_t ticks = ParseLimit(at + 1);
  const long hz = sysconf(_SC_CLK_TCK);
  timespec boot, real;
  if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &boot) != 0 ||
      clock_gettime(CLOCK_REALTIME, &real) != 0) {
    return 0;  // neither sets errno for these clocks
  }
  // boot time (real - boot: constant but for clock adjustments) + the
  // start's offset after boot, in nanoseconds so that two calls agree.
  const auto ns = [](const timespec& t) {
    return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
  };
  const int64_t started = ns(real) - ns(boot) +
                          static_cast<int64_t>(ticks) * (1'000'000'000 / static_cast<int64_t>(hz));
  return started > 0 ? static_cast<uint64_t>(started / 1'000'000'000) : 0;
}

uint64_t WallClockMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1'000'000;
}

bool CurrentDirectory(char* buf, size_t cap) { return getcwd(buf, cap) != nullptr; }

namespace {

bool WriteAllFd(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool WriteWholeFile(const char* path, int flags, const char* data, size_t size) {
  const int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
  if (fd < 0) return false;
  if (!WriteAllFd(fd, data, size)) {
    const ErrnoKeeper keep_write_error;
    close(fd);
    return false;
  }
  return close(fd) == 0;
}

}  // namespace

bool AppendToFile(const char* path, const char* data, size_t size) {
  return WriteWholeFile(path, O_APPEND, data, size);
}

bool TruncateFile(const char* path) { return WriteWholeFile(path, O_TRUNC, "", 0); }

bool ReplaceFile(const char* path, const char* data, size_t size) {
  struct stat st;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    return WriteWholeFile(path, O_TRUNC, data, size);
  }
  char tmp[4096 + 32];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, ProcessId()) >= static_cast<int>(sizeof tmp)) {
    errno = ENAMETOOLONG;
    return false;
  }
  if (WriteWholeFile(tmp, O_TRUNC, data, size) && rename(tmp, path) == 0) return true;
  const ErrnoKeeper keep_error;
  unlink(tmp);
  return false;
}

bool CanCreateFile(const char* path) {
  struct stat st;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) return access(path, W_OK) == 0;
  const char* slash = strrchr(path, '/');
  if (slash == nullptr) return access(".", W_OK | X_OK) == 0;
  char dir[4096];
  const size_t len = static_cast<size_t>(slash - path) + 1;
  if (len >= sizeof dir) {
    errno = ENAMETOOLONG;
    return false;
  }
  memcpy(dir, path, len);
  dir[len] = '\0';
  return access(dir, W_OK | X_OK) == 0;
}
void SetFaultPlan(FaultPlan plan) {
  g_fault_at.store(0, std::memory_order_relaxed);
  g_fault_calls.store(0, std::memory_order_relaxed);
  g_faults.store(0, std::memory_order_relaxed);
  g_fault_and_after.store(plan.and_after, std::memory_order_relaxed);
  g_fault_at.store(plan.fail_at, std::memory_order_relaxed);
}

uint64_t FaultCalls() { return g_fault_calls.load(std::memory_order_relaxed); }
uint64_t FaultsInjected() { return g_faults.load(std::memory_order_relaxed); }
void* FindSymbol(const char* name) { return dlsym(RTLD_DEFAULT, name); }
void* FindNextSymbol(const char* name) { return dlsym(RTLD_NEXT, name); }

const char* OtherDefinition(const char* name, const void* here) {
  Dl_info mine{}, first{};
  const void* found = dlsym(RTLD_DEFAULT, name);
  if (found == nullptr || dladdr(here, &mine) == 0 || dladdr(found, &first) == 0) return nullptr;
  if (first.dli_fbase == mine.dli_fbase) return nullptr;
  return first.dli_fname != nullptr && first.dli_fname[0] != '\0' ? first.dli_fname
                                                                  : "the main program";
}

void Yield() { sched_yield(); }

const char* GetEnv(const char* name) { return getenv(name); }

static_assert(std::is_same_v<ThreadKey, pthread_key_t>, "os::ThreadKey is a pthread key");
bool NewThreadKey(ThreadKey* key, void (*at_exit)(void*)) {
  return pthread_key_create(key, at_exit) == 0;
}
void SetThreadValue(ThreadKey key, void* value) { pthread_setspecific(key, value); }

int AtFork(void (*prepare)(), void (*parent)(), void (*child)()) {
  return pthread_atfork(prepare, parent, child);
}

}  // namespace execmem::os
