// The shared-memory seam: POSIX shared-memory objects (/dev/shm), futexes
// and other processes' identity, for the
// shared pool (budget/shared_ledger.h). As the rest of platform/: nothing
// here allocates through malloc and errno is left as it was; failures are
// returned as errno values.
#ifndef EXECMEM_PLATFORM_SHM_H_
#define EXECMEM_PLATFORM_SHM_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace execmem::os {

// ---- shared-memory objects ----------------------------------------------------
// Objects are named as shm_open names them, without the leading '/': files
// of /dev/shm. A name is 1..kMaxShmName bytes of [A-Za-z0-9._-].
inline constexpr size_t kMaxShmName = 200;
bool ValidShmName(const char* name);

struct ShmMapping {
  void* base = nullptr;
  size_t size = 0;
};

// What an existing object is: owner, group, permission bits, size.
struct ShmStat {
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t mode = 0;  // permission bits only
  uint64_t size = 0;
};

// Opens the existing object `name` read-write (or read-only) and maps it
// whole, shared, after fstat: fills `st` whenever the object could be
// opened. The mapping is made only when st.size is in [min_size, max_size];
// otherwise EINVAL with `st` filled (the caller names the size). Not a regular
// file, or a symbolic link: ELOOP / EINVAL. 0 or an errno value.
int ShmOpen(const char* name, bool writable, size_t min_size, size_t max_size, ShmMapping* out,
            ShmStat* st);

// Creates a new object for `name` under a private temporary name
// ("<name>.new.<pid>"), with permission bits `mode` (not narrowed by the
// umask), `size` zero bytes, mapped read-write. The caller fills it, then
// publishes it with ShmPublish, or drops it with ShmDiscard. 0 or an errno.
int ShmCreatePrivate(const char* name, uint32_t mode, size_t size, ShmMapping* out);
// Gives the object made by ShmCreatePrivate its name, atomically (link(2)):
// EEXIST when another process published one first (the caller then opens
// that one). The temporary name is removed either way. 0 or an errno.
int ShmPublish(const char* name);
void ShmDiscard(const char* name);
// Removes the object `name` (shm_unlink); 0 or an errno (ENOENT).
int ShmUnlink(const char* name);
void ShmUnmap(ShmMapping* m);
// The effective uid; whether gid is the effective gid or a supplementary one.
uint32_t EffectiveUid();
bool InGroup(uint32_t gid);

// ---- futexes (shared: across processes) ---------------------------------------
// Waits while *word == expected, at most timeout_ms; true when woken or the
// value differed, false on timeout. A signal ends the wait early (true).
bool FutexWait(std::atomic<uint32_t>* word, uint32_t expected, uint64_t timeout_ms);
void FutexWakeAll(std::atomic<uint32_t>* word);

// ---- other processes ------------------------------------------------------------
// What /proc/PID/stat says of a process.
struct ProcessStat {
  bool exists = false;       // /proc/PID/stat could be read
  char state = '?';          // R S D T t Z X ...
  uint64_t start_ticks = 0;  // field 22: clock ticks after boot
};
ProcessStat ReadProcessStat(int pid);
// The process is the one that started at start_ticks and has not exited: it
// exists, with that start time (so a reused pid is a different process), and
// is not a zombie (Z) or dead (X). A stopped process (T) is alive.
bool ProcessAlive(int pid, uint64_t start_ticks);
// /proc/PID/comm into buf (at most cap-1 bytes, NUL-terminated); false if gone.
bool ProcessName(int pid, char* buf, size_t cap);
// Resident bytes of process pid (/proc/PID/statm); 0 when unknown.
uint64_t ProcessResidentBytes(int pid);
// The inode of this process's pid namespace (/proc/self/ns/pid); 0 if unknown.
uint64_t PidNamespaceId();

}  // namespace execmem::os

#endif  // EXECMEM_PLATFORM_SHM_H_
