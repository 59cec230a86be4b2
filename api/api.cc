// The C and C++ entry points (include/execmem.h, include/execmem.hpp).
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "api/options.h"
#include "api/snapshot.h"
#include "api/stats_format.h"
#include "budget/budget.h"
#include "cache/cache.h"
#include "execmem.h"
#include "execmem.hpp"
#include "executor/executor.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {
namespace {

int SetError(int err, const std::string& msg) {
  snprintf(ThreadLastError(), kLastErrorSize, "%s", msg.c_str());
  return err;
}

// A name the registry can tell apart and a report prints on one line: less
// than kTenantNameSize bytes (a longer one was cut silently, so that two
// names alike in their first 63 bytes made two executors of one name) and no
// control character. 0, or EINVAL with the error set.
int CheckName(const char* name) {
  if (name == nullptr) return 0;
  const size_t len = strnlen(name, kTenantNameSize);
  const char* reason = len >= kTenantNameSize ? "longer than 63 bytes" : nullptr;
  for (size_t i = 0; i < len && reason == nullptr; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) reason = "a control character";
  }
  if (reason == nullptr) return 0;
  return SetError(EINVAL,
                  std::string(config::InvalidSetting("executor name", name, reason,
                                                     "1 to 63 bytes without control characters, "
                                                     "or NULL or \"\" for a generated one")
                                  .message()));
}

std::string ToHex(unsigned v) {
  char buf[16];
  snprintf(buf, sizeof buf, "%x", v);
  return buf;
}

// EXECMEM_SHARED_WAIT_MS as the options table reads it (its default when
// unset), for execmem_shared_join's wait -1.
Result<uint64_t> SharedWaitFromEnvironment() {
  const options::OptionSpec* spec = options::FindOption("shared_wait_ms");
  options::ProcessOptions read;
  const char* value = os::GetEnv(spec->env);
  if (Status st = spec->apply(*spec, value == nullptr ? "" : value, read); !st.ok()) return st;
  return read.shared_wait_ms;
}

ExecutorImpl* ToExec(execmem_executor_t* e) { return reinterpret_cast<ExecutorImpl*>(e); }
execmem_executor_t* ToHandle(ExecutorImpl* e) { return reinterpret_cast<execmem_executor_t*>(e); }

bool ValidAlignment(size_t a) { return a != 0 && (a & (a - 1)) == 0 && a <= EXECMEM_MAX_ALIGNMENT; }

[[noreturn]] void ThrowOom(size_t size) {
  const char* report = ThreadLastError();
  if (report[0] == '\0') {
    throw OutOfMemory("execmem: out of memory: request of " + std::to_string(size) + " bytes");
  }
  throw OutOfMemory(report);
}

// execmem's own metadata, an upper bound (see execmem_pool_stats_t):
//  * the arenas' metadata pages (descriptors, the pool's bitmaps), kMetaPages per arena, counted
//  whole
//    (descriptors of pages never carved are not touched until carved);
//  * the allocator's heaps, thread states and executors (cache/meta.h);
//  * the touched OS pages of the page map (g_slots, 16 MiB of BSS; mincore,
//    so the pages only ever read count as well).
// Huge blocks' headers are inside their mapping, which held counts already.
uint64_t MetadataBytes(uint64_t arenas) {
  return arenas * kMetaPages * kPageSize + MetaBytes() +
         os::ResidentBytesIn(g_slots, sizeof(g_slots));
}

// The stats ABI (docs/abi.md): the caller's `version` says which layout its
// struct has, and only that layout's bytes are written. 0 (a zeroed struct)
// and values this library does not know (a newer header, or a version never
// set) get version 1, the layout every version starts with.
uint32_t ServedStatsVersion(uint32_t asked) {
  return asked >= 1 && asked <= EXECMEM_STATS_VERSION ? asked : 1;
}

// Copies the fields of `version` from the full struct to the caller's.
template <typename Stats>
void WriteStats(Stats full, Stats* out, uint32_t version, size_t version_bytes) {
  full.version = version;
  memcpy(static_cast<void*>(out), &full, version_bytes);
}

// Version 4's fields: the shared pool this process is a member of (zeros and
// "" when none). The process's own figures are published first, so that its
// slot says what the report says.
void FillShared(execmem_pool_stats_t* out) {
  const size_t from = offsetof(execmem_pool_stats_t, shared_capacity);
  memset(reinterpret_cast<char*>(out) + from, 0, sizeof *out - from);
  budget::SharedPoolFigures f;
  if (!budget::ReadSharedPool(&f)) return;
  out->shared_capacity = f.capacity;
  out->shared_reserved = f.reserved;
  out->shared_granted = f.granted;
  out->shared_peak = f.peak;
  out->shared_members = f.members;
  out->shared_refusals = f.refusals;
  out->shared_reclaimed_members = f.reclaimed_members;
  out->shared_reclaimed_bytes = f.reclaimed_bytes;
  out->member_reserved = f.own_reserved;
  out->member_granted = f.own_granted;
  out->member_used = f.own_used;
  out->member_asked = f.own_asked;
  out->member_answered = f.own_answered;
  static_assert(sizeof out->shared_name == sizeof f.name);
  memcpy(out->shared_name, f.name, sizeof f.name);
}

char* CopyOut(const std::string& s) {
  char* p = static_cast<char*>(Malloc(s.size() + 1));
  if (p != nullptr) memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

}  // namespace

std::vector<execmem_executor_stats_t> AllStats() {
  std::vector<execmem_executor_stats_t> v;
  ThreadHeapsSync();
  ForEachExecutor([&](ExecutorImpl* e) {
    execmem_executor_stats_t s;
    e->Snapshot(&s);
    v.push_back(s);
  });
  return v;
}

}  // namespace execmem

using namespace execmem;

extern "C" {

void* execmem_malloc(size_t size) { return Malloc(size); }

void* execmem_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (total <= kMaxSmallSize) {
    void* p = Malloc(total);
    if (p != nullptr) memset(p, 0, total);
    return p;
  }
  return MallocSlow(total, true);  // skips the memset on memory fresh from the OS
}

void* execmem_realloc(void* ptr, size_t size) { return Realloc(ptr, size); }

void execmem_free(void* ptr) { Free(ptr); }

void execmem_free_sized(void* ptr, size_t size) { FreeSized(ptr, size); }

void execmem_free_aligned_sized(void* ptr, size_t alignment, size_t size) {
  FreeAlignedSized(ptr, alignment, size);
}

void* execmem_aligned_alloc(size_t alignment, size_t size) {
  if (!ValidAlignment(alignment)) {
    errno = EINVAL;
    return nullptr;
  }
  return MallocAligned(size, alignment, false);
}

int execmem_posix_memalign(void** out, size_t alignment, size_t size) {
  if (!ValidAlignment(alignment) || alignment < sizeof(void*)) return EINVAL;
  const os::ErrnoKeeper keep_errno;  // posix_memalign returns its error, errno stays
  void* p = MallocAligned(size, alignment, false);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

size_t execmem_usable_size(const void* ptr) { return UsableSize(ptr); }

int execmem_owns(const void* ptr) { return Owns(ptr) ? 1 : 0; }

int execmem_executor_create(const execmem_executor_options_t* options, execmem_executor_t** out) {
  if (options == nullptr || out == nullptr)
    return SetError(EINVAL, "execmem_executor_create: null argument");
  if (const int bad = CheckName(options->name); bad != 0) return bad;
  auto budgets = config::ResolveBudgets(
      options->initial ? options->initial : "", options->max ? options->max : "",
      options->overhead ? options->overhead : "", pool::Capacity(), "");
  if (!budgets.ok()) return SetError(EINVAL, std::string(budgets.status().message()));
  ExecutorImpl* e = nullptr;
  const int err = CreateExecutor(options->name, budgets->initial, budgets->max, budgets->overhead,
                                 options->prefault != 0, nullptr, &e);
  if (err == ENOMEM) {
    return SetError(err, "cannot reserve initial + overhead (" +
                             config::FormatBytes(budgets->initial + budgets->overhead) +
                             ") for executor '" + (options->name ? options->name : "") +
                             "': the pool has " + config::FormatBytes(budget::Unallocated()) +
                             " unreserved");
  }
  if (err == EEXIST) {
    return SetError(err, std::string("an executor named '") + options->name + "' exists");
  }
  if (err != 0) return SetError(err, "invalid executor settings");
  *out = ToHandle(e);
  ThreadLastError()[0] = '\0';
  return 0;
}

int execmem_executor_destroy(execmem_executor_t* executor) {
  BusyReason why = BusyReason::kNone;
  const int err = DestroyExecutor(ToExec(executor), &why);
  if (err == EBUSY) {
    const char* reason = why == BusyReason::kChildren ? "' has live children: destroy them first"
                         : why == BusyReason::kReserved
                             ? "' holds reserved bytes: execmem_unreserve them first"
                             : "' is still bound to a thread";
    return SetError(err, std::string("executor '") + ToExec(executor)->name + reason);
  }
  if (err != 0) return SetError(err, "cannot destroy this executor (default or already destroyed)");
  return 0;
}

int execmem_executor_create_child(execmem_executor_t* parent,
                                  const execmem_executor_options_t* options,
                                  execmem_executor_t** out) {
  if (parent == nullptr || options == nullptr || out == nullptr) {
    return SetError(EINVAL, "execmem_executor_create_child: null argument");
  }
  if (const int bad = CheckName(options->name); bad != 0) return bad;
  ExecutorImpl* p = ToExec(parent);
  if (p->closing.load(std::memory_order_acquire)) {
    return SetError(EINVAL, std::string("parent '") + p->name + "' is being destroyed");
  }
  auto given = [](const char* v) { return v != nullptr && v[0] != '\0'; };
  uint64_t max = p->account.Max();
  if (given(options->max)) {
    auto v = config::ParseSize("max", options->max);
    if (!v.ok()) return SetError(EINVAL, std::string(v.status().message()));
    max = *v;
  }
  uint64_t initial = 0;
  if (given(options->initial)) {
    auto v = config::ParseSize("initial", options->initial);
    if (!v.ok()) return SetError(EINVAL, std::string(v.status().message()));
    initial = *v;
  }
  uint64_t overhead = p->account.Overhead();
  if (given(options->overhead)) {
    auto v = config::ParseOverhead("overhead", options->overhead);
    if (!v.ok()) return SetError(EINVAL, std::string(v.status().message()));
    overhead = v->Resolve(initial);
  }
  const std::string child = given(options->name) ? options->name : "(unnamed)";
  if (max == 0) return SetError(EINVAL, "max of child '" + child + "' must be above 0");
  if (max > p->account.Max()) {
    return SetError(EINVAL, "max " + config::FormatBytes(max) + " of child '" + child +
                                "' is above the max of its parent '" + p->name + "' (" +
                                config::FormatBytes(p->account.Max()) + ")");
  }
  if (initial > max) {
    return SetError(EINVAL, "initial " + config::FormatBytes(initial) + " of child '" + child +
                                "' is above its max " + config::FormatBytes(max));
  }
  ExecutorImpl* e = nullptr;
  const int err =
      CreateExecutor(options->name, initial, max, overhead, options->prefault != 0, p, &e);
  if (err == ENOMEM) {
    return SetError(err, "cannot reserve initial " + config::FormatBytes(initial) + " of child '" +
                             child + "' from its parent '" + p->name + "': " + ThreadLastError());
  }
  if (err == EEXIST) return SetError(err, "an executor named '" + child + "' exists");
  if (err == ESRCH) {
    return SetError(EINVAL, std::string("parent '") + p->name + "' is being destroyed");
  }
  if (err != 0) {
    return SetError(err, "max " + config::FormatBytes(max) + " of child '" + child +
                             "' is above the max of its parent '" + p->name + "'");
  }
  *out = ToHandle(e);
  ThreadLastError()[0] = '\0';
  return 0;
}

execmem_executor_t* execmem_executor_parent(const execmem_executor_t* executor) {
  if (executor == nullptr) return nullptr;
  return ToHandle(reinterpret_cast<const ExecutorImpl*>(executor)->Parent());
}

int execmem_executor_set_fair_shares(execmem_executor_t* executor, int on) {
  if (executor == nullptr)
    return SetError(EINVAL, "execmem_executor_set_fair_shares: null executor");
  ToExec(executor)->account.fair_shares.store(on != 0, std::memory_order_relaxed);
  return 0;
}

int execmem_executor_set_limits(execmem_executor_t* executor,
                                const execmem_executor_options_t* limits) {
  if (executor == nullptr || limits == nullptr) {
    return SetError(EINVAL, "execmem_executor_set_limits: null argument");
  }
  ExecutorImpl* e = ToExec(executor);
  auto given = [](const char* v) { return v != nullptr && v[0] != '\0'; };
  NewLimits l;
  if (given(limits->initial)) {
    auto v = config::ParseSize("initial", limits->initial);
    if (!v.ok()) return SetError(EINVAL, std::string(v.status().message()));
    l.initial = *v;
  }
  if (given(limits->max)) {
    auto v = config::ParseSize("max", limits->max);
    if (!v.ok()) return SetError(EINVAL, std::string(v.status().message()));
    l.max = *v;
  }
  if (given(limits->overhead)) {
    auto v = config::ParseOverhead("overhead", limits->overhead);
    if (!v.ok()) return SetError(EINVAL, std::string(v.status().message()));
    l.overhead = v->Resolve(l.initial.value_or(e->account.Initial()));
  }
  std::string message;
  const int err = SetLimits(e, l, &message);
  if (err != 0) {
    return SetError(err, std::string("execmem_executor_set_limits('") + e->name + "'): " + message);
  }
  return 0;
}

execmem_executor_t* execmem_executor_find(const char* name) {
  ExecutorImpl* e = name != nullptr ? FindExecutor(name) : nullptr;
  if (e == nullptr) {
    SetError(ENOENT, std::string("no executor named '") + (name ? name : "(null)") + "'");
    errno = ENOENT;
  }
  return ToHandle(e);
}

int execmem_executor_for_each(execmem_executor_t* parent, execmem_executor_fn fn, void* context) {
  if (fn == nullptr) return SetError(EINVAL, "execmem_executor_for_each: null function");
  // A snapshot with a reference on each, as large as the list is.
  std::vector<ExecutorImpl*> list(16);
  int n;
  while ((n = CollectChildren(ToExec(parent), list.data(), static_cast<int>(list.size()))) >
         static_cast<int>(list.size())) {
    for (ExecutorImpl* e : list) e->Unref();
    list.resize(static_cast<size_t>(n) * 2);
  }
  int result = 0;
  for (int i = 0; i < n; ++i) {
    if (result == 0) result = fn(ToHandle(list[i]), context);
    list[i]->Unref();
  }
  return result;
}

int execmem_reserve(execmem_executor_t* executor, size_t bytes) {
  if (executor == nullptr) return SetError(EINVAL, "execmem_reserve: null executor");
  const int err = Reserve(ToExec(executor), bytes);
  if (err == EINVAL) {
    return SetError(err, std::string("execmem_reserve: executor '") + ToExec(executor)->name +
                             "' is being destroyed");
  }
  return err;  // ENOMEM: the report is in the last-error buffer
}

void execmem_unreserve(execmem_executor_t* executor, size_t bytes) {
  if (executor == nullptr) {
    SetError(EINVAL, "execmem_unreserve: null executor");
    errno = EINVAL;
    return;
  }
  ExecutorImpl* e = ToExec(executor);
  if (Unreserve(e, bytes) != 0) {
    SetError(EINVAL, "execmem_unreserve: " + config::FormatBytes(bytes) + " (" +
                         std::to_string(bytes) + " bytes) is more than executor '" + e->name +
                         "' holds reserved (" + config::FormatBytes(e->account.reserved.load()) +
                         "); nothing was unreserved");
    errno = EINVAL;
  }
}

size_t execmem_reserved(const execmem_executor_t* executor) {
  if (executor == nullptr) return 0;
  return reinterpret_cast<const ExecutorImpl*>(executor)->account.reserved.load(
      std::memory_order_relaxed);
}

execmem_executor_t* execmem_default_executor(void) { return ToHandle(DefaultExecutor()); }

const char* execmem_executor_name(const execmem_executor_t* executor) {
  return reinterpret_cast<const ExecutorImpl*>(executor)->name;
}

execmem_executor_t* execmem_bind(execmem_executor_t* executor) {
  int err = 0;
  ExecutorImpl* prev = AsExecutor(BindThread(ToExec(executor), &err));
  if (err != 0) {
    SetError(err, "cannot bind: executor is being destroyed");
    errno = err;
  }
  return ToHandle(prev);
}

execmem_executor_t* execmem_current_executor(void) { return ToHandle(CurrentExecutor()); }

int execmem_executor_add_spill_hook(execmem_executor_t* executor, const char* name, int priority,
                                    execmem_spill_fn fn, void* context) {
  return execmem_executor_add_spill_hook_flags(executor, name, priority, fn, context, 0);
}

int execmem_executor_add_spill_hook_flags(execmem_executor_t* executor, const char* name,
                                          int priority, execmem_spill_fn fn, void* context,
                                          unsigned flags) {
  if (executor == nullptr || name == nullptr || fn == nullptr) {
    return SetError(EINVAL, "execmem_executor_add_spill_hook: null argument");
  }
  if ((flags & ~EXECMEM_SPILL_ANY_THREAD) != 0) {
    return SetError(EINVAL, "execmem_executor_add_spill_hook_flags: unknown flags 0x" +
                                ToHex(flags & ~EXECMEM_SPILL_ANY_THREAD) +
                                " (EXECMEM_SPILL_ANY_THREAD is the only one)");
  }
  auto hook = std::make_shared<SpillHook>();
  snprintf(hook->name, sizeof hook->name, "%s", name);
  hook->priority = priority;
  hook->fn = [fn, context](size_t bytes) { return fn(context, bytes); };
  hook->any_thread = (flags & EXECMEM_SPILL_ANY_THREAD) != 0;
  const int err = ToExec(executor)->AddHook(std::move(hook));
  if (err == EEXIST) return SetError(err, std::string("a spill hook named '") + name + "' exists");
  if (err != 0) return SetError(err, "too many spill hooks");
  return 0;
}

int execmem_executor_remove_spill_hook(execmem_executor_t* executor, const char* name) {
  if (executor == nullptr || name == nullptr) return SetError(EINVAL, "null argument");
  const int err = ToExec(executor)->RemoveHook(name);
  if (err != 0) return SetError(err, std::string("no spill hook named '") + name + "'");
  return 0;
}

int execmem_executor_stats(execmem_executor_t* executor, execmem_executor_stats_t* out) {
  if (executor == nullptr || out == nullptr) return EINVAL;
  const uint32_t version = ServedStatsVersion(out->version);
  ThreadHeapsSync();
  execmem_executor_stats_t full;
  ToExec(executor)->Snapshot(&full);
  // Version 3 appended the emergency_* fields.
  WriteStats(full, out, version,
             version >= 3 ? sizeof full : offsetof(execmem_executor_stats_t, emergency_uses));
  return 0;
}

void execmem_pool_stats(execmem_pool_stats_t* caller) {
  if (caller == nullptr) return;
  const uint32_t version = ServedStatsVersion(caller->version);
  execmem_pool_stats_t full;
  execmem_pool_stats_t* out = &full;
  const PoolCounters c = pool::Counters();
  const budget::LedgerCounters ledger = budget::Counters();
  out->capacity = c.capacity;
  out->reserved = ledger.reserved;
  out->granted = ledger.granted;
  out->held = c.held;
  out->cached = c.cached;
  out->returned_to_os = c.returned_to_os;
  out->arenas = c.arenas;
  out->mapped = c.mapped;
  // The kernel's RSS counters are approximate: a peak read just after the
  // resident can be a few pages lower than it.
  out->resident = os::ResidentBytes();
  out->peak_resident = std::max(os::PeakResidentBytes(), out->resident);
  out->metadata = MetadataBytes(c.arenas);
  out->tracked = c.held + out->metadata;
  out->untracked = out->resident > out->tracked ? out->resident - out->tracked : 0;
  FillShared(out);
  // Version 2 appended resident ... untracked, version 4 the shared pool's figures.
  WriteStats(full, caller, version,
             version >= 4   ? sizeof full
             : version >= 2 ? offsetof(execmem_pool_stats_t, shared_capacity)
                            : offsetof(execmem_pool_stats_t, resident));
}

char* execmem_stats_json(void) {
  execmem_pool_stats_t pool_stats;
  execmem_pool_stats(&pool_stats);
  return CopyOut(FormatStatsJson(pool_stats, AllStats(), ThisProcess()));
}

char* execmem_stats_text(void) {
  execmem_pool_stats_t pool_stats;
  execmem_pool_stats(&pool_stats);
  return CopyOut(FormatStatsText(pool_stats, AllStats(), ThisProcess()));
}

void execmem_trim(void) { TrimThreadAndPool(); }

int execmem_set_pool_capacity(const char* capacity) {
  auto v = config::ParseSize("pool capacity", capacity ? capacity : "");
  if (!v.ok()) return SetError(EINVAL, std::string(v.status().message()));
  if (!budget::SetCapacity(*v)) {
    return SetError(EINVAL, "pool capacity " + config::FormatBytes(*v) +
                                " is below what executors have reserved");
  }
  return 0;
}

const char* execmem_last_error(void) { return ThreadLastError(); }

int execmem_shared_join(const char* name, const char* capacity, unsigned flags, int wait_ms) {
  internal::SharedJoinSettings settings;
  settings.name = name;
  if (capacity != nullptr && capacity[0] != '\0') {
    auto v = config::ParseSize("execmem_shared_join capacity", capacity);
    if (!v.ok()) return SetError(EINVAL, std::string(v.status().message()));
    if (*v == 0)
      return SetError(EINVAL,
                      "execmem_shared_join: capacity 0 refused: a size such as 1g expected");
    settings.capacity = *v;
  }
  if ((flags & ~EXECMEM_SHARED_GROUP) != 0) {
    return SetError(EINVAL, "execmem_shared_join: unknown flags 0x" +
                                ToHex(flags & ~EXECMEM_SHARED_GROUP) +
                                " (EXECMEM_SHARED_GROUP is the only one)");
  }
  settings.mode = (flags & EXECMEM_SHARED_GROUP) != 0 ? 0660 : 0600;
  if (wait_ms < -1) {
    return SetError(EINVAL, "execmem_shared_join: wait " + std::to_string(wait_ms) +
                                " ms refused: 0 to 600000, or -1 for EXECMEM_SHARED_WAIT_MS");
  }
  if (wait_ms == -1) {
    Result<uint64_t> from_env = SharedWaitFromEnvironment();
    if (!from_env.ok()) return SetError(EINVAL, from_env.status().message());
    settings.wait_ms = *from_env;
  } else {
    settings.wait_ms = static_cast<uint64_t>(wait_ms);
  }
  std::string note;
  const Status status = internal::JoinSharedPool(settings, &note);
  if (!status.ok()) return SetError(status.code(), status.message());
  if (const int rc = internal::RegisterSharedForkHandler(); rc != 0) {
    SetError(0, std::string("execmem_shared_join: pthread_atfork failed: ") + strerror(rc) +
                    "; a forked child will not be a member");
    return 0;
  }
  SetError(0, note);
  return 0;
}

}  // extern "C"

// ---- C++ API ----
namespace execmem {

void* allocate(std::size_t size) {
  void* p = Malloc(size);
  if (p == nullptr) [[unlikely]]
    ThrowOom(size);
  return p;
}

void* allocate_aligned(std::size_t size, std::size_t alignment) {
  if (!ValidAlignment(alignment)) throw std::bad_alloc();
  void* p = MallocAligned(size, alignment, false);
  if (p == nullptr) ThrowOom(size);
  return p;
}

void* try_allocate(std::size_t size) noexcept { return Malloc(size); }

void* reallocate(void* ptr, std::size_t size) {
  void* p = Realloc(ptr, size);
  if (p == nullptr && size != 0) ThrowOom(size);
  return p;
}

void deallocate(void* ptr) noexcept { Free(ptr); }
void deallocate(void* ptr, std::size_t size) noexcept { FreeSized(ptr, size); }
std::size_t usable_size(const void* ptr) noexcept { return UsableSize(ptr); }

namespace {

execmem_executor_options_t ToOptions(const ExecutorConfig& config) {
  execmem_executor_options_t o{};
  o.name = config.name.c_str();
  o.initial = config.initial.c_str();
  o.max = config.max.c_str();
  o.overhead = config.overhead.c_str();
  o.prefault = config.prefault ? 1 : 0;
  return o;
}

Status ToStatus(int err) { return err == 0 ? Status() : Status(err, execmem_last_error()); }

}  // namespace

Result<Executor> Executor::Create(const ExecutorConfig& config) {
  const execmem_executor_options_t o = ToOptions(config);
  execmem_executor_t* e = nullptr;
  if (const int err = execmem_executor_create(&o, &e); err != 0) return ToStatus(err);
  return Executor(e);
}

Result<Executor> Executor::CreateChild(const ExecutorConfig& config) const {
  const execmem_executor_options_t o = ToOptions(config);
  execmem_executor_t* child = nullptr;
  if (const int err = execmem_executor_create_child(e_, &o, &child); err != 0) {
    return ToStatus(err);
  }
  return Executor(child);
}

Status Executor::SetLimits(const ExecutorConfig& limits) {
  const execmem_executor_options_t o = ToOptions(limits);
  return ToStatus(execmem_executor_set_limits(e_, &o));
}

Executor& Executor::operator=(Executor&& other) noexcept {
  if (this != &other) {
    if (e_ != nullptr) execmem_executor_destroy(e_);
    e_ = other.e_;
    other.e_ = nullptr;
  }
  return *this;
}

Executor::~Executor() {
  if (e_ != nullptr) execmem_executor_destroy(e_);
}

Status Executor::Destroy() {
  if (e_ == nullptr) return Status();
  const int err = execmem_executor_destroy(e_);
  if (err != 0) return Status(err, execmem_last_error());
  e_ = nullptr;
  return Status();
}

Status Executor::AddSpillHook(std::string name, int priority, SpillFn fn) {
  return AddSpillHook(std::move(name), priority, std::move(fn), SpillThread::kAllocating);
}

Status Executor::AddSpillHook(std::string name, int priority, SpillFn fn, SpillThread thread) {
  if (!fn) return Status(EINVAL, "spill hook without a function");
  auto hook = std::make_shared<SpillHook>();
  snprintf(hook->name, sizeof hook->name, "%s", name.c_str());
  hook->priority = priority;
  hook->fn = std::move(fn);
  hook->any_thread = thread == SpillThread::kAny;
  const int err = reinterpret_cast<ExecutorImpl*>(e_)->AddHook(std::move(hook));
  if (err == EEXIST) return Status(err, "a spill hook named '" + name + "' exists");
  if (err != 0) return Status(err, "too many spill hooks");
  return Status();
}

Status Executor::RemoveSpillHook(std::string_view name) {
  const std::string n(name);
  if (const int err = execmem_executor_remove_spill_hook(e_, n.c_str()); err != 0) {
    return Status(err, execmem_last_error());
  }
  return Status();
}

execmem_executor_stats_t Executor::Stats() const {
  execmem_executor_stats_t s;
  execmem_executor_stats(e_, &s);
  return s;
}

void* MemoryResource::do_allocate(std::size_t bytes, std::size_t alignment) {
  execmem_executor_t* prev = nullptr;
  const bool rebind = executor_ != nullptr && executor_ != execmem_current_executor();
  if (rebind) prev = execmem_bind(executor_);
  // Up to 8 every class is aligned enough; 16 needs a class that is a multiple of 16.
  void* p = alignment <= 8 ? Malloc(bytes) : MallocAligned(bytes, alignment, false);
  if (rebind) execmem_bind(prev);
  if (p == nullptr) ThrowOom(bytes);
  return p;
}

void MemoryResource::do_deallocate(void* p, std::size_t, std::size_t) { Free(p); }

bool MemoryResource::do_is_equal(const std::pmr::memory_resource& other) const noexcept {
  auto* o = dynamic_cast<const MemoryResource*>(&other);
  return o != nullptr;  // any execmem resource can free any execmem block
}

Status SharedJoin(std::string_view name, const SharedPoolOptions& options) {
  const std::string n(name);
  const int err = execmem_shared_join(n.c_str(), options.capacity.c_str(),
                                      options.group ? EXECMEM_SHARED_GROUP : 0, options.wait_ms);
  return Status(err, execmem_last_error());
}

Result<std::size_t> ParseSize(std::string_view setting, std::string_view value) {
  Result<uint64_t> v = config::ParseSize(setting, value);
  if (!v.ok()) return v.status();
  return static_cast<std::size_t>(*v);
}

std::string StatsJson() {
  execmem_pool_stats_t pool_stats;
  execmem_pool_stats(&pool_stats);
  return FormatStatsJson(pool_stats, AllStats(), ThisProcess());
}

std::string StatsText() {
  execmem_pool_stats_t pool_stats;
  execmem_pool_stats(&pool_stats);
  return FormatStatsText(pool_stats, AllStats(), ThisProcess());
}

}  // namespace execmem
