#include "platform/os.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

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

void* SysMmap(size_t size) {
  if (InjectFault()) return MAP_FAILED;
  return mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
              -1, 0);
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
ssize_t ReadSmallFile(const char* path, char* buf, size_t cap) {
  if (InjectFault()) return -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, cap - 1);
  close(fd);
  if (n < 0) return -1;
  buf[n] = '\0';
  return n;
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
  // Over-reserve by `alignment` and trim both ends: the kernel gives no
  // alignment beyond the OS page otherwise.
  const size_t page = PageSize();
  if (alignment < page) alignment = page;
  size = (size + page - 1) & ~(page - 1);
  if (size == 0 || size > (SIZE_MAX >> 2) || alignment > (SIZE_MAX >> 2)) return nullptr;
  const size_t span = size + alignment;
  const int saved = errno;
  void* raw = SysMmap(span);
  if (raw == MAP_FAILED) {
    errno = saved;
    return nullptr;
  }
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + alignment - 1) & ~(alignment - 1);
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t end = start + span;
  if (end > aligned + size) munmap(reinterpret_cast<void*>(aligned + size), end - (aligned + size));
  errno = saved;
  return reinterpret_cast<void*>(aligned);
}

void Unmap(void* ptr, size_t size) {
  const int saved = errno;
  munmap(ptr, size);
  errno = saved;
}

bool Decommit(void* ptr, size_t size) {
  const int saved = errno;
  const bool ok = SysMadvise(ptr, size, MADV_DONTNEED) == 0;
  errno = saved;
  return ok;
}

bool RemapInPlace(void* ptr, size_t old_size, size_t new_size) {
  const int saved = errno;
  const bool ok = SysMremap(ptr, old_size, new_size, 0) != MAP_FAILED;
  errno = saved;
  return ok;
}

void* RemapAligned(void* ptr, size_t old_size, size_t new_size, size_t alignment) {
  const int saved = errno;
  // Reserve an aligned target range, then move the pages over it: mremap with
  // MREMAP_FIXED replaces the reservation atomically.
  void* target = MapAligned(new_size, alignment);
  if (target == nullptr) return nullptr;
  void* moved = SysMremap(ptr, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  if (moved == MAP_FAILED) {
    munmap(target, new_size);
    errno = saved;
    return nullptr;
  }
  errno = saved;
  return moved;
}

void AdviseHugePages(void* ptr, size_t size) {
  const int saved = errno;
  SysMadvise(ptr, size, MADV_HUGEPAGE);
  errno = saved;
}

void Prefault(void* ptr, size_t size) {
  const size_t page = PageSize();
  volatile char* p = static_cast<volatile char*>(ptr);
  for (size_t off = 0; off < size; off += page) p[off] = p[off];
}

uint64_t CgroupMemoryLimit() {
  char buf[64];
  // cgroup v2 first; a value of "max" means unlimited.
  if (ReadSmallFile("/sys/fs/cgroup/memory.max", buf, sizeof buf) > 0) {
    uint64_t v = ParseLimit(buf);
    if (v != 0) return v;
    return 0;
  }
  if (ReadSmallFile("/sys/fs/cgroup/memory/memory.limit_in_bytes", buf, sizeof buf) > 0) {
    uint64_t v = ParseLimit(buf);
    // v1 reports "no limit" as a huge page-rounded number (~2^63).
    if (v != 0 && v < (uint64_t{1} << 60)) return v;
  }
  return 0;
}

uint64_t PhysicalMemory() {
  long pages = SysConf(_SC_PHYS_PAGES);
  if (pages <= 0) return uint64_t{16} << 30;
  return static_cast<uint64_t>(pages) * PageSize();
}

uint64_t ResidentBytes() {
  const int saved = errno;
  char buf[128];  // "size resident shared text lib data dt": 7 numbers
  const ssize_t n = ReadSmallFile("/proc/self/statm", buf, sizeof buf);
  errno = saved;
  if (n <= 0) return 0;
  const char* second = strchr(buf, ' ');
  if (second == nullptr) return 0;
  return ParseLimit(second + 1) * PageSize();
}

uint64_t PeakResidentBytes() {
  const int saved = errno;
  // VmHWM is among the first 20 lines (under 1 KiB); the whole file is about
  // 1.5 KiB, longer with many groups or CPUs, so a first read of 4 KiB holds it.
  char buf[4096];
  const ssize_t n = ReadSmallFile("/proc/self/status", buf, sizeof buf);
  errno = saved;
  if (n <= 0) return 0;
  return NumberAfter(buf, "\nVmHWM:") * 1024;  // the kernel writes "VmHWM:  1234 kB"
}

uint64_t ResidentBytesIn(const void* ptr, size_t size) {
  const size_t page = PageSize();
  const uintptr_t first = reinterpret_cast<uintptr_t>(ptr) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(ptr) + size + page - 1) & ~(page - 1);
  const int saved = errno;
  uint64_t resident = 0;
  unsigned char vec[256];  // one byte per page, a chunk at a time
  for (uintptr_t at = first; at < end;) {
    const size_t pages = std::min<size_t>((end - at) / page, sizeof vec);
    if (InjectFault() || mincore(reinterpret_cast<void*>(at), pages * page, vec) != 0) {
      errno = saved;
      return 0;
    }
    for (size_t i = 0; i < pages; ++i) resident += vec[i] & 1;
    at += pages * page;
  }
  errno = saved;
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
  const int saved = errno;
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(ms / 1000);
  ts.tv_nsec = static_cast<long>((ms % 1000) * 1000000);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  errno = saved;
}

namespace {
struct ThreadStart {
  void (*fn)(void*);
  void* arg;
};
ThreadStart g_thread_start;  // one start at a time: StartDetachedThread waits for the copy
std::atomic<bool> g_thread_started{false};

void* ThreadMain(void* raw) {
  const ThreadStart start = *static_cast<ThreadStart*>(raw);
  g_thread_started.store(true, std::memory_order_release);
  start.fn(start.arg);
  return nullptr;
}
}  // namespace

bool StartDetachedThread(void (*fn)(void*), void* arg) {
  const int saved = errno;
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
  g_thread_start = ThreadStart{fn, arg};
  g_thread_started.store(false, std::memory_order_relaxed);
  pthread_t tid;
  const bool ok = !InjectFault() && pthread_create(&tid, &attr, &ThreadMain, &g_thread_start) == 0;
  if (ok) {
    while (!g_thread_started.load(std::memory_order_acquire)) sched_yield();
  }
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return ok;
}

void WriteStderr(const char* msg, size_t len) {
  const int saved = errno;
  while (len > 0) {
    ssize_t n = write(2, msg, len);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      break;
    }
    msg += n;
    len -= static_cast<size_t>(n);
  }
  errno = saved;
}

void Abort() { abort(); }

void SetFaultPlan(FaultPlan plan) {
  g_fault_at.store(0, std::memory_order_relaxed);
  g_fault_calls.store(0, std::memory_order_relaxed);
  g_faults.store(0, std::memory_order_relaxed);
  g_fault_and_after.store(plan.and_after, std::memory_order_relaxed);
  g_fault_at.store(plan.fail_at, std::memory_order_relaxed);
}

uint64_t FaultCalls() { return g_fault_calls.load(std::memory_order_relaxed); }
uint64_t FaultsInjected() { return g_faults.load(std::memory_order_relaxed); }

}  // namespace execmem::os
