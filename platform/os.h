// The one seam between execmem and the operating system.
//
// Files (platform/ is the lowest layer: it includes only the C/C++ and
// POSIX headers; inner order, each calling only those before it: os, cgroup,
// shm):
//   os.{h,cc}       this contract: memory mappings, threads, environment,
//                   exit, clocks, files, yields and futex waits
//   os_internal.h   shared by platform/'s files only
//   cgroup.{h,cc}   the cgroup v1/v2 memory limit, read as the JVM reads it
//   shm.{h,cc}      POSIX shared memory, futexes across processes, another
//                   process's identity (pid + start time) for the shared pool
//   errno_keeper.h  os::ErrnoKeeper: errno restored when a scope ends
//   spin_lock.h     the library's lock: execmem::SpillLock (the public
//                   include/execmem_lock.hpp) with Abseil's annotations
//   test_hook.h     named pause points for tests that force one interleaving
//
// Nothing outside platform/ calls mmap, munmap, madvise, sysconf or reads
// cgroup files. Every function here is async-signal-unsafe but malloc-free:
// none allocates through malloc, so the allocator may call them from any path,
// including before main and inside fork handlers.
#ifndef EXECMEM_PLATFORM_OS_H_
#define EXECMEM_PLATFORM_OS_H_

#include <cstddef>
#include <cstdint>

#include "platform/errno_keeper.h"  // part of this contract
#include "platform/spin_lock.h"     // part of this contract
#include "platform/test_hook.h"     // test seams, part of this contract

namespace execmem::os {

// ---- threads, environment ----
// Gives the CPU to another thread (sched_yield): the back-off of the few
// waits that spin on another thread's progress.
void Yield();
// The environment variable `name`, or nullptr (getenv: no allocation).
const char* GetEnv(const char* name);
// A thread-specific slot whose value, when not null, is passed to `at_exit`
// when the thread exits (a pthread key). False if the OS refused.
using ThreadKey = unsigned;
bool NewThreadKey(ThreadKey* key, void (*at_exit)(void*));
void SetThreadValue(ThreadKey key, void* value);
// Fork handlers (pthread_atfork): 0 or an errno value.
int AtFork(void (*prepare)(), void (*parent)(), void (*child)());
// The process's environment (environ): NAME=VALUE strings, null-terminated.
const char* const* Environment();

// ---- process exit ----
// Runs fn when the process exits (atexit); with the status passed to exit()
// (on_exit). 0, or nonzero if refused.
int AtExit(void (*fn)());
int OnExit(void (*fn)(int status, void* arg), void* arg);
// Ends the process now with `status` (_exit): no exit handlers, no flushing.
[[noreturn]] void ExitNow(int status);

// The OS page size (4 KiB on x86-64 Linux), cached after the first call.
size_t PageSize();

// Reserves and commits `size` bytes of zeroed, read-write memory whose start
// is a multiple of `alignment` (a power of two >= PageSize()). Returns nullptr
// when the OS refuses. The region is released with Unmap(ptr, size).
void* MapAligned(size_t size, size_t alignment);
void Unmap(void* ptr, size_t size);

// Gives the physical memory behind [ptr, ptr+size) back to the OS; the range
// stays mapped and reads as zero when touched again. ptr and size must be
// multiples of PageSize(). Returns false if the OS refused.
bool Decommit(void* ptr, size_t size);

// Resizes the mapping [ptr, ptr+old_size) to new_size bytes without moving
// it (mremap without MREMAP_MAYMOVE): growth succeeds only when the address
// space after it is free. Sizes are multiples of PageSize(). False if refused.
bool RemapInPlace(void* ptr, size_t old_size, size_t new_size);
// Moves the mapping [ptr, ptr+old_size) with its contents to a new range of
// new_size bytes whose start is a multiple of `alignment`, without copying
// (the kernel moves page tables). Returns the new start, or nullptr when the
// OS refuses (the old mapping is then intact).
void* RemapAligned(void* ptr, size_t old_size, size_t new_size, size_t alignment);

// Moves the pages of [from, from+size) to [to, to+size) without copying or
// faulting them (mremap MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
// Linux 5.7+: the kernel moves the page-table entries). Both ranges are
// private anonymous read-write memory, multiples of PageSize(), and do not
// overlap; `from` lies within one mapping (an mremap of a range that spans
// two is refused), and `to` holds nothing the caller needs (its old pages are
// dropped). Verdicts:
//  kMoved    `to` holds from's old contents; `from` stays mapped and reads as
//            zero when touched again (as after Decommit).
//  kRefused  nothing moved: `from` is unchanged; `to` is mapped and reads as
//            zero (a kernel that unmapped it before refusing, as before
//            Linux 6.16 for a source spanning two mappings, has it mapped
//            again here).
//  kLost     nothing moved, and `to` is unmapped: the kernel refused to map it
//            again (out of memory). The range must not be used any more.
// Each move splits the mappings at the four ends (a moved range keeps its
// own page offset and does not merge with its neighbours): the caller bounds
// how many it makes (vm.max_map_count) and joins them again with MapFresh.
enum class MoveVerdict { kMoved, kRefused, kLost };
MoveVerdict MovePages(void* from, void* to, size_t size);
// Replaces [ptr, ptr+size) by fresh zero pages (mmap MAP_FIXED, the flags of
// MapAligned's mappings), which join the neighbouring mappings of the same
// kind: how a range that moves split is made one mapping again. Its old
// contents are dropped. False if refused: the range may then be unmapped
// (a kernel before 6.12 unmaps before it maps) and must not be used.
bool MapFresh(void* ptr, size_t size);

// Sets [ptr, ptr+size) to no access (any touch faults: guard pages) or back to
// read-write. ptr and size must be multiples of PageSize(). False if refused
// (e.g. the process's mapping count limit); the range is then unchanged.
bool Protect(void* ptr, size_t size, bool accessible);
// Reserves `size` bytes of address space that faults on any access (PROT_NONE,
// no memory behind it). nullptr when the OS refuses.
void* ReserveNoAccess(size_t size);

// 64 random bits from the kernel (getrandom), for per-process secrets; falls
// back to a mix of the clock and addresses when the kernel refuses.
uint64_t RandomU64();

// Asks for transparent huge pages behind [ptr, ptr+size) (MADV_HUGEPAGE):
// a first touch then faults in 2 MiB at a time. Only for memory that is used
// whole (huge blocks); a no-op where the kernel has no THP. `on` false takes
// the advice back (MADV_NOHUGEPAGE), so that khugepaged does not collapse a
// range the pool has partly given back into a whole huge page again.
void AdviseHugePages(void* ptr, size_t size, bool on = true);

// Touches every OS page of [ptr, ptr+size) so that later first accesses do not fault.
void Prefault(void* ptr, size_t size);

// The memory limit of the cgroup this process runs in: the tightest v1
// memory.limit_in_bytes or v2 memory.max from its own cgroup up to the root
// (platform/cgroup.h ReadCgroupLimit); 0 when unlimited or unknown.
uint64_t CgroupMemoryLimit();
// Physical memory of the machine in bytes.
uint64_t PhysicalMemory();

// The process's resident set size in bytes: the second field of
// /proc/self/statm times the OS page size. 0 when /proc cannot be read.
uint64_t ResidentBytes();
// The process's peak resident set size in bytes: VmHWM of /proc/self/status.
// 0 when /proc cannot be read. The kernel keeps both figures in approximate
// (batched) counters, so a peak read just after ResidentBytes() can be a few
// pages below it.
uint64_t PeakResidentBytes();
// Bytes of the OS pages overlapping [ptr, ptr+size) that are resident
// (mincore), an upper bound: a page only ever read counts as well (it maps the
// shared zero page). 0 when the OS refuses.
uint64_t ResidentBytesIn(const void* ptr, size_t size);

// The address of a symbol of the process (dlsym): the first definition in
// the global scope (FindSymbol), or the first after the library this code is
// linked into (FindNextSymbol, RTLD_NEXT). nullptr when none is found.
void* FindSymbol(const char* name);
void* FindNextSymbol(const char* name);
// When the first definition of `name` in the process's global scope is in
// another loaded object than the code at `here`: that object's file name
// ("the main program" for the executable); else nullptr. No allocation.
const char* OtherDefinition(const char* name, const void* here);

// Monotonic milliseconds, cheap (coarse clock, vDSO).
uint64_t NowMs();
// Monotonic nanoseconds, precise.
uint64_t NowNs();

// Sleeps for `ms` milliseconds (nanosleep; resumes after signals).
void SleepMs(uint64_t ms);
// Starts a detached thread running fn(arg) with all signals blocked, so that
// it never runs a program's signal handlers (fn's result is ignored). False if
// the OS refused. Returns without waiting for the new thread to run. Safe to
// call from several threads at once.
bool StartDetachedThread(void* (*fn)(void*), void* arg);

// Writes a message to stderr with write(2): no stdio, no allocation. When
// fd 2 is closed (EBADF), to the duplicate KeepStderr took, if any.
void WriteStderr(const char* msg, size_t len);
// Keeps a close-on-exec duplicate of fd 2 (numbered 100 or above) for
// WriteStderr, so that reports written at exit reach stderr in a program
// that closed fd 2 first. Call once at start-up; later calls do nothing.
void KeepStderr();
[[noreturn]] void Abort();

// ---- process identity and files (observability: stats, timelines) ----------
// For the at-exit report, the timeline sampler and the Prometheus file. None
// allocates; each returns false (errno set) when the OS refuses.

// getpid(); cheap, never cached (a forked child sees its own).
int ProcessId();
// The program's name: the last part of argv[0] (glibc's
// program_invocation_short_name), "" when unknown.
const char* ProgramName();
// When the process started, as Unix seconds (from /proc/self/stat and the
// boot time in /proc/stat; a forked child has its own). 0 when unknown.
uint64_t ProcessStartTime();
// Wall-clock milliseconds since the Unix epoch (CLOCK_REALTIME).
uint64_t WallClockMs();
// The current directory into buf (cap bytes); false when it does not fit.
bool CurrentDirectory(char* buf, size_t cap);

// Appends [data, data+size) to the file at path, creating it (0644); opened
// and closed at every call, so that a program closing all its descriptors or
// changing directory (path is absolute) does not lose it.
bool AppendToFile(const char* path, const char* data, size_t size);
// Replaces the file at path by [data, data+size) atomically: written to
// "<path>.tmp.<pid>" and renamed over it, so a reader sees the old or the
// new file whole. A path that exists and is not a regular file (a FIFO,
// /dev/stderr) is written in place instead.
bool ReplaceFile(const char* path, const char* data, size_t size);
// Creates (or truncates) the file at path, empty.
bool TruncateFile(const char* path);
// Whether a file could be created at path: its directory exists and is
// writable (or path is an existing writable non-regular file).
bool CanCreateFile(const char* path);
// ---- injected faults (a test seam) -----------------------------------------
// In a build of this file with EXECMEM_FAULT_INJECTION defined (a test-only
// object library, tests/fault), every fallible OS call made above — mmap,
// mremap, madvise, mincore, sysconf, pthread_create and the reads of cgroup
// and /proc files — is numbered, and the call whose number is planned fails
// the way the OS fails it (ENOMEM, a read error), so that the callers' error
// paths can be run one by one. In every other build these do nothing, and
// the seam compiles to nothing (a constexpr false).
struct FaultPlan {
  uint64_t fail_at = 0;    // the n-th fallible call from now fails (1-based); 0: none
  bool and_after = false;  // and so does every call after it
};
// Restarts the numbering and arms `plan`.
void SetFaultPlan(FaultPlan plan);
// Fallible calls made since the last SetFaultPlan, and how many were failed.
uint64_t FaultCalls();
uint64_t FaultsInjected();

}  // namespace execmem::os

// Part of this contract: shared-memory objects, futexes and /proc reads for
// the shared pool; the cgroup limit read as the JVM reads it.
#include "platform/cgroup.h"  // IWYU pragma: export
#include "platform/shm.h"     // IWYU pragma: export

#endif  // EXECMEM_PLATFORM_OS_H_
