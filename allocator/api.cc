// The C and C++ entry points (include/execmem.h, include/execmem.hpp).
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "allocator/config.h"
#include "allocator/executor.h"
#include "allocator/heap-inl.h"
#include "allocator/large.h"
#include "allocator/meta.h"
#include "allocator/runtime.h"
#include "allocator/snapshot.h"
#include "allocator/stats_format.h"
#include "budget/budget.h"
#include "execmem.h"
#include "execmem.hpp"
#include "platform/os.h"
#include "pool/page.h"
#include "pool/pool.h"

namespace execmem {
namespace {


int SetError(int err, const std::string& msg) {
  snprintf(ThreadLastError(), sizeof(ThreadState::last_error), "%s", msg.c_str());
  return err;
}

ExecutorImpl* ToExec(execmem_executor_t* e) { return reinterpret_cast<ExecutorImpl*>(e); }
execmem_executor_t* ToHandle(ExecutorImpl* e) { return reinterpret_cast<execmem_executor_t*>(e); }

bool ValidAlignment(size_t a) { return a != 0 && (a & (a - 1)) == 0 && a <= EXECMEM_MAX_ALIGNMENT; }

[[noreturn]] void ThrowOom(size_t size) {
  const char* report = OomReportBuffer();
  if (report[0] == '\0') {
    throw OutOfMemory("execmem: out of memory: request of " + std::to_string(size) + " bytes");
  }
  throw OutOfMemory(report);
}

// execmem's own metadata, an upper bound (see execmem_pool_stats_t):
//  * the arenas' metadata pages (descriptors, the pool's bitmaps), kMetaPages per arena, counted whole
//    (descriptors of pages never carved are not touched until carved);
//  * the allocator's heaps, thread states and executors (allocator/meta.h);
//  * the touched OS pages of the page map (g_slots, 16 MiB of BSS; mincore,
//    so the pages only ever read count as well).
// Huge blocks' headers are inside their mapping, which held counts already.
uint64_t MetadataBytes(uint64_t arenas) {
  return arenas * kMetaPages * kPageSize + MetaBytes() +
         os::ResidentBytesIn(g_slots, sizeof(g_slots));
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

void execmem_free_sized(void* ptr, size_t size) {
  (void)size;
  Free(ptr);
}

void execmem_free_aligned_sized(void* ptr, size_t alignment, size_t size) {
  (void)alignment;
  (void)size;
  Free(ptr);
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
  const int saved = errno;
  void* p = MallocAligned(size, alignment, false);
  errno = saved;
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

size_t execmem_usable_size(const void* ptr) { return UsableSize(ptr); }

int execmem_owns(const void* ptr) { return Owns(ptr) ? 1 : 0; }

int execmem_executor_create(const execmem_executor_options_t* options, execmem_executor_t** out) {
  if (options == nullptr || out == nullptr) return SetError(EINVAL, "execmem_executor_create: null argument");
  auto budgets = config::ResolveBudgets(options->initial ? options->initial : "",
                                        options->max ? options->max : "",
                                        options->overhead ? options->overhead : "",
                                        pool::Capacity(), "");
  if (!budgets.ok()) return SetError(EINVAL, std::string(budgets.status().message()));
  ExecutorImpl* e = nullptr;
  const int err = CreateExecutor(options->name, budgets->initial, budgets->max, budgets->overhead,
                                 options->prefault != 0, &e);
  if (err == ENOMEM) {
    return SetError(err, "cannot reserve initial + overhead (" +
                             config::FormatBytes(budgets->initial + budgets->overhead) +
                             ") for executor '" + (options->name ? options->name : "") +
                             "': the pool has " + config::FormatBytes(budget::Unallocated()) +
                             " unreserved");
  }
  if (err != 0) return SetError(err, "invalid executor settings");
  *out = ToHandle(e);
  ThreadLastError()[0] = '\0';
  return 0;
}

int execmem_executor_destroy(execmem_executor_t* executor) {
  const int err = DestroyExecutor(ToExec(executor));
  if (err == EBUSY) {
    return SetError(err, std::string("executor '") + ToExec(executor)->name +
                             "' is still bound to a thread");
  }
  if (err != 0) return SetError(err, "cannot destroy this executor (default or already destroyed)");
  return 0;
}

execmem_executor_t* execmem_default_executor(void) { return ToHandle(DefaultExecutor()); }

const char* execmem_executor_name(const execmem_executor_t* executor) {
  return reinterpret_cast<const ExecutorImpl*>(executor)->name;
}

execmem_executor_t* execmem_bind(execmem_executor_t* executor) {
  int err = 0;
  ExecutorImpl* prev = BindThread(ToExec(executor), &err);
  if (err != 0) {
    SetError(err, "cannot bind: executor is being destroyed");
    errno = err;
  }
  return ToHandle(prev);
}

execmem_executor_t* execmem_current_executor(void) { return ToHandle(CurrentExecutor()); }

int execmem_executor_add_spill_hook(execmem_executor_t* executor, const char* name, int priority,
                                    execmem_spill_fn fn, void* context) {
  if (executor == nullptr || name == nullptr || fn == nullptr) {
    return SetError(EINVAL, "execmem_executor_add_spill_hook: null argument");
  }
  auto hook = std::make_shared<SpillHook>();
  snprintf(hook->name, sizeof hook->name, "%s", name);
  hook->priority = priority;
  hook->fn = [fn, context](size_t bytes) { return fn(context, bytes); };
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
  ThreadHeapsSync();
  ToExec(executor)->Snapshot(out);
  return 0;
}

void execmem_pool_stats(execmem_pool_stats_t* out) {
  const PoolCounters c = pool::Counters();
  const budget::LedgerCounters ledger = budget::Counters();
  out->version = EXECMEM_STATS_VERSION;
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

}  // extern "C"

// ---- C++ API ----
namespace execmem {

void* allocate(std::size_t size) {
  void* p = Malloc(size);
  if (p == nullptr) [[unlikely]] ThrowOom(size);
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
void deallocate(void* ptr, std::size_t) noexcept { Free(ptr); }
std::size_t usable_size(const void* ptr) noexcept { return UsableSize(ptr); }

Result<Executor> Executor::Create(const ExecutorConfig& config) {
  execmem_executor_options_t o{};
  o.name = config.name.c_str();
  o.initial = config.initial.c_str();
  o.max = config.max.c_str();
  o.overhead = config.overhead.c_str();
  o.prefault = config.prefault ? 1 : 0;
  execmem_executor_t* e = nullptr;
  const int err = execmem_executor_create(&o, &e);
  if (err != 0) return Status(err, execmem_last_error());
  return Executor(e);
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
  if (!fn) return Status(EINVAL, "spill hook without a function");
  auto hook = std::make_shared<SpillHook>();
  snprintf(hook->name, sizeof hook->name, "%s", name.c_str());
  hook->priority = priority;
  hook->fn = std::move(fn);
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
