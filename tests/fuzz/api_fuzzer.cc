// Fuzz target: sequences of C API calls — malloc, calloc, realloc, aligned
// allocation, free, executors created, bound and destroyed, spill hooks that
// free, fail, lie, allocate or throw — checked against a shadow model of
// every live block (where it is, its size and alignment, its contents, the
// executor it is charged to).
//
// After each call: a block honours its size, alignment and zeroing, overlaps
// no other live block and is owned by execmem; a failure is NULL with ENOMEM
// (EINVAL for a bad alignment). On a check step and at the end of the input:
// each executor's used equals the model's live bytes for it, used <=
// footprint <= max + overhead. At the end everything is freed and destroyed
// and the counters must be back at zero (executors, pool, ledger), so that no
// input leaves state behind for the next one.
//
// Input: one byte per operation, followed by its operands.
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "budget/budget.h"
#include "cache/large.h"
#include "execmem.h"
#include "pool/page.h"
#include "pool/pool.h"
#include "tests/block_pattern.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/testing.h"

namespace {

using execmem::fuzz::Input;
using execmem::fuzz::Require;

constexpr size_t kKiB = size_t{1} << 10;
constexpr size_t kMiB = size_t{1} << 20;
constexpr int kMaxExecutors = 4;
constexpr int kHooksPerExecutor = 2;
constexpr int kDefault = -1;                         // Block::exec: the default executor
constexpr int kNobody = -2;                          // Block::exec: its executor was destroyed
constexpr size_t kMaxLiveBytes = size_t{256} << 20;  // the harness's own cap (RSS)
constexpr int kMaxOps = 400;

struct Block {
  unsigned char* p;
  size_t size;     // asked for
  size_t usable;   // execmem_usable_size when taken
  uint8_t tag;     // seeds the contents' pattern
  int exec;        // slot in g_execs, kDefault or kNobody
  size_t aligned;  // the alignment asked of an aligned allocation, else 0
};

struct Hook {
  int exec = 0;
  int kind = 0;  // 0 frees, 1 fails, 2 lies, 3 allocates then frees, 4 throws
  bool added = false;
  char name[8] = {};
};

struct Exec {
  execmem_executor_t* handle = nullptr;
  Hook hooks[kHooksPerExecutor];
};

std::vector<Block> g_blocks;
std::map<uintptr_t, uintptr_t> g_ranges;  // live [start, end) by start
Exec g_execs[kMaxExecutors];
int g_bound = kDefault;
uint8_t g_tag = 0;
size_t g_live_bytes = 0;

using execmem::test_support::ForSampled;
using execmem::test_support::Pattern;

// Checks the block's written positions below `limit` (its old contents).
void Verify(const Block& b, const unsigned char* at, size_t limit, const char* when) {
  ForSampled(b.size, [&](size_t i) {
    if (i >= limit) return;
    Require(at[i] == Pattern(b.tag, i), "%s: block %p (%zu bytes) corrupt at %zu", when,
            static_cast<void*>(b.p), b.size, i);
  });
}

void Fill(const Block& b) {
  ForSampled(b.size, [&](size_t i) { b.p[i] = Pattern(b.tag, i); });
}

void AddRange(const Block& b) {
  const uintptr_t start = reinterpret_cast<uintptr_t>(b.p);
  const uintptr_t end = start + (b.usable == 0 ? 1 : b.usable);
  auto next = g_ranges.lower_bound(start);
  Require(next == g_ranges.end() || next->first >= end, "block %p overlaps the live block at %p",
          static_cast<void*>(b.p), reinterpret_cast<void*>(next->first));
  if (next != g_ranges.begin()) {
    auto prev = std::prev(next);
    Require(prev->second <= start, "block %p overlaps the live block at %p",
            static_cast<void*>(b.p), reinterpret_cast<void*>(prev->first));
  }
  g_ranges[start] = end;
}

// Takes a block just returned by execmem into the model.
void Took(void* p, size_t size, size_t alignment, bool zeroed, const char* what) {
  Require(reinterpret_cast<uintptr_t>(p) % alignment == 0, "%s(%zu) = %p is not %zu-aligned", what,
          size, p, alignment);
  Block b{static_cast<unsigned char*>(p),
          size,
          execmem_usable_size(p),
          ++g_tag,
          g_bound,
          std::string_view(what) == "posix_memalign" || std::string_view(what) == "aligned_alloc"
              ? alignment
              : 0};
  Require(b.usable >= size, "%s(%zu) = %p has %zu usable bytes", what, size, p, b.usable);
  Require(execmem_owns(p) == 1, "%s(%zu) = %p is not owned", what, size, p);
  if (zeroed) {
    ForSampled(size, [&](size_t i) {
      Require(b.p[i] == 0, "%s(%zu) = %p: byte %zu is not 0", what, size, p, i);
    });
  }
  AddRange(b);
  Fill(b);
  g_blocks.push_back(b);
  g_live_bytes += b.usable;
}

// Removes block i from the model (the caller frees or reallocates it).
Block Take(size_t i) {
  Block b = g_blocks[i];
  g_blocks[i] = g_blocks.back();
  g_blocks.pop_back();
  g_ranges.erase(reinterpret_cast<uintptr_t>(b.p));
  g_live_bytes -= b.usable;
  return b;
}

void FreeAt(size_t i, bool sized) {
  const Block b = Take(i);
  Verify(b, b.p, b.size, "free");
  if (sized) {
    // A block of an aligned allocation is freed with its alignment (C23).
    if (b.aligned != 0) {
      execmem_free_aligned_sized(b.p, b.aligned, b.size);
    } else {
      execmem_free_sized(b.p, b.size);
    }
  } else {
    execmem_free(b.p);
  }
}

// The contract's alignment of a block of `size` bytes from malloc.
size_t MallocAlignment(size_t size) { return size > 64 && size < 128 && size % 16 != 0 ? 8 : 16; }

void RequireFailure(const char* what, size_t size, int expected = ENOMEM) {
  Require(errno == expected, "%s(%zu) returned NULL with errno %d, not %d", what, size, errno,
          expected);
}

// A size: mostly small, some large, a few huge (their first touches fault
// in 2 MiB pages: they are slow) or impossible.
size_t Size(Input& in) {
  const uint8_t b = in.Byte();
  if (b < 128) return b == 0 ? in.Byte() % 17 : in.Bits(1) + (b & 1) * 256;
  if (b < 192) return 1 + in.Bits(3) % (256 * kKiB);
  if (b < 250) return 256 * kKiB + in.Bits(3) % (8 * kMiB);
  switch (b) {
    case 250:
      return 0;
    case 251:
      return SIZE_MAX;
    case 252:
      return size_t{1} << 62;
    case 253:
      return 64 * kMiB - in.Bits(2);
    default:
      return 64 * kMiB + in.Bits(3) % (40 * kMiB);
  }
}

bool Impossible(size_t size) { return size >= (size_t{1} << 62); }

bool RoomFor(size_t size) { return Impossible(size) || g_live_bytes + size <= kMaxLiveBytes; }

void OpMalloc(Input& in) {
  const size_t size = Size(in);
  if (!RoomFor(size)) return;
  errno = 0;
  void* p = execmem_malloc(size);
  if (p == nullptr) return RequireFailure("malloc", size);
  Require(!Impossible(size), "malloc(%zu) succeeded", size);
  Took(p, size, MallocAlignment(size), false, "malloc");
}

void OpCalloc(Input& in) {
  const uint8_t n = in.Byte();
  size_t count = n == 0 ? 1 : n;
  size_t size = Size(in) / count;
  if (n == 255) count = SIZE_MAX / 2 + 1, size = 2 + (size % 2);  // overflows
  size_t total;
  const bool overflow = __builtin_mul_overflow(count, size, &total);
  if (!overflow && !RoomFor(total)) return;
  errno = 0;
  void* p = execmem_calloc(count, size);
  if (p == nullptr) return RequireFailure("calloc", overflow ? SIZE_MAX : total);
  Require(!overflow && !Impossible(total), "calloc(%zu, %zu) succeeded", count, size);
  Took(p, total, total > 64 && total < 128 && total % 16 != 0 ? 8 : 16, true, "calloc");
}

void OpRealloc(Input& in) {
  const size_t size = Size(in);
  if (!RoomFor(size)) return;
  if (g_blocks.empty()) {
    errno = 0;
    void* p = execmem_realloc(nullptr, size);
    if (p == nullptr) return RequireFailure("realloc(NULL)", size);
    Took(p, size, MallocAlignment(size), false, "realloc(NULL)");
    return;
  }
  // Out of the model while execmem has it: a spill hook must not free it.
  const Block b = Take(in.Bits(2) % g_blocks.size());
  // A huge block resized to a huge size is remapped, maybe moved, and stays
  // charged to its executor; any other move is a new block of the bound one.
  // (A zero-size block lies in no arena: allocator/zero_size.h.)
  const uintptr_t base = execmem::SlotLookup(b.p);
  const bool remapped = base != 0 && execmem::ArenaOf(base)->huge != 0 &&
                        size <= execmem::kMaxRequest &&
                        execmem::LargeClassPages(size) > execmem::kMaxSpanPages;
  errno = 0;
  void* q = execmem_realloc(b.p, size);
  if (q == nullptr) {
    RequireFailure("realloc", size);
    Verify(b, b.p, b.size, "a failed realloc");  // the block is intact
    AddRange(b);
    g_blocks.push_back(b);
    g_live_bytes += b.usable;
    return;
  }
  Require(!Impossible(size), "realloc(%zu) succeeded", size);
  Verify(b, static_cast<unsigned char*>(q), size < b.size ? size : b.size, "realloc");
  Block nb{static_cast<unsigned char*>(q),          size, execmem_usable_size(q), b.tag,
           q == b.p || remapped ? b.exec : g_bound, 0};
  Require(nb.usable >= size, "realloc(%zu) = %p has %zu usable bytes", size, q, nb.usable);
  Require(reinterpret_cast<uintptr_t>(q) % MallocAlignment(size) == 0 || q == b.p,
          "realloc(%zu) = %p is misaligned", size, q);
  AddRange(nb);
  Fill(nb);
  g_blocks.push_back(nb);
  g_live_bytes += nb.usable;
}

void OpAligned(Input& in, bool posix) {
  const uint8_t a = in.Byte();
  // Powers of two up to 32 MiB; a few invalid ones. (Alignments of an arena
  // and more are issue 12, item 1.)
  size_t alignment = size_t{1} << (a % 26);
  if (a >= 250) alignment = a == 255 ? 0 : 48 + a;  // not powers of two
  const size_t size = Size(in);
  if (!RoomFor(size + alignment)) return;
  const bool valid = alignment != 0 && (alignment & (alignment - 1)) == 0 &&
                     (!posix || alignment >= sizeof(void*));
  errno = 0;
  void* p = nullptr;
  if (posix) {
    const int err = execmem_posix_memalign(&p, alignment, size);
    if (err != 0) {
      Require(p == nullptr, "posix_memalign failed but wrote %p", p);
      Require(err == (valid ? ENOMEM : EINVAL), "posix_memalign(%zu, %zu) returned %d", alignment,
              size, err);
      return;
    }
  } else {
    p = execmem_aligned_alloc(alignment, size);
    if (p == nullptr) return RequireFailure("aligned_alloc", size, valid ? ENOMEM : EINVAL);
  }
  Require(valid && !Impossible(size), "aligned allocation (%zu, %zu) succeeded", alignment, size);
  Took(p, size, alignment, false, posix ? "posix_memalign" : "aligned_alloc");
}

// ---- executors and hooks ----

size_t HookFn(void* context, size_t bytes) {
  Hook* hook = static_cast<Hook*>(context);
  switch (hook->kind) {
    case 1:
      return EXECMEM_SPILL_FAILED;
    case 2:
      return bytes;  // claims it all, frees nothing
    case 3: {
      void* p = execmem_malloc(100);
      Require(p != nullptr || errno == ENOMEM, "malloc in a hook: errno %d", errno);
      execmem_free(p);
      break;
    }
    case 4:
      throw std::runtime_error("hook");
    default:
      break;
  }
  size_t freed = 0;
  for (size_t i = g_blocks.size(); i-- > 0 && freed < bytes;) {
    if (g_blocks[i].exec != hook->exec) continue;
    freed += g_blocks[i].usable;
    FreeAt(i, false);
  }
  return freed;
}

int FreeExecSlot() {
  for (int i = 0; i < kMaxExecutors; ++i) {
    if (g_execs[i].handle == nullptr) return i;
  }
  return -1;
}

void OpCreate(Input& in) {
  const int slot = FreeExecSlot();
  const uint8_t how = in.Byte();
  static constexpr const char* kInitial[] = {"", "0", "1m", "4m"};
  static constexpr const char* kMax[] = {"", "1m", "2m", "8m", "32m", "128m", "1.5m", "3m"};
  static constexpr const char* kOverhead[] = {"", "0", "10%", "1m", "4m", "0.5", "64k", "100%"};
  std::string initial = kInitial[how & 3], max = kMax[(how >> 2) & 7],
              overhead = kOverhead[(how >> 5) & 7];
  const bool raw = in.Byte() == 0xff;
  if (raw) {  // settings as written by anyone
    initial = std::string(in.Until('\0'));
    max = std::string(in.Until('\0'));
    overhead = std::string(in.Until('\0'));
  }
  execmem_executor_options_t o{};
  // Names are unique among live executors: one per slot.
  const std::string name = "fuzz-" + std::to_string(slot);
  o.name = name.c_str();
  o.initial = initial.c_str();
  o.max = max.c_str();
  o.overhead = overhead.c_str();
  // Prefault touches all of initial: only the small ones (default: 1 GiB).
  o.prefault = how % 7 == 0 && (how & 3) >= 2 && !raw;
  execmem_executor_t* e = nullptr;
  if (slot < 0) return;
  const int err = execmem_executor_create(&o, &e);
  if (err != 0) {
    Require(err == EINVAL || err == ENOMEM, "executor_create returned %d", err);
    Require(e == nullptr, "executor_create failed but wrote a handle");
    const std::string message = execmem_last_error();
    Require(execmem::fuzz::OneLine(message), "executor_create: no one-line message");
    return;
  }
  g_execs[slot] = Exec{};
  g_execs[slot].handle = e;
}

int PickExec(Input& in) {
  const uint8_t b = in.Byte();
  return b % (kMaxExecutors + 1) == kMaxExecutors ? kDefault : b % (kMaxExecutors + 1);
}

execmem_executor_t* HandleOf(int slot) {
  return slot == kDefault ? execmem_default_executor() : g_execs[slot].handle;
}

void OpDestroy(Input& in) {
  const int slot = PickExec(in);
  if (slot == kDefault) {
    Require(execmem_executor_destroy(execmem_default_executor()) == EINVAL,
            "destroying the default executor did not fail");
    return;
  }
  if (g_execs[slot].handle == nullptr) return;
  const int err = execmem_executor_destroy(g_execs[slot].handle);
  if (g_bound == slot) {
    Require(err == EBUSY, "destroying the bound executor returned %d", err);
    return;
  }
  Require(err == 0, "executor_destroy returned %d: %s", err, execmem_last_error());
  g_execs[slot] = Exec{};
  for (Block& b : g_blocks) {
    if (b.exec == slot) b.exec = kNobody;  // valid, charged to nobody
  }
}

void OpBind(Input& in) {
  const int slot = PickExec(in);
  if (slot != kDefault && g_execs[slot].handle == nullptr) return;
  errno = 0;
  execmem_executor_t* prev = execmem_bind(HandleOf(slot));
  Require(prev == HandleOf(g_bound), "bind returned the wrong previous executor");
  if (execmem_current_executor() == HandleOf(slot)) {
    g_bound = slot;
  } else {
    Require(errno == ENOMEM, "bind failed with errno %d", errno);
  }
}

void OpHook(Input& in, bool add) {
  const int slot = PickExec(in);
  const uint8_t b = in.Byte();
  if (slot == kDefault || g_execs[slot].handle == nullptr) return;
  Hook& h = g_execs[slot].hooks[b % kHooksPerExecutor];
  if (add) {
    const bool existed = h.added;
    if (!existed) {
      h.exec = slot;
      h.kind = (b >> 1) % 5;
      snprintf(h.name, sizeof h.name, "h%d", b % kHooksPerExecutor);
    }
    const int err = execmem_executor_add_spill_hook(g_execs[slot].handle, h.name,
                                                    static_cast<int8_t>(b), &HookFn, &h);
    Require(err == (existed ? EEXIST : 0), "add_spill_hook returned %d", err);
    h.added = true;
  } else {
    const int err =
        execmem_executor_remove_spill_hook(g_execs[slot].handle, h.added ? h.name : "none");
    Require(err == (h.added ? 0 : ENOENT), "remove_spill_hook returned %d", err);
    h.added = false;
  }
}

// used == the model's live bytes; used <= footprint <= max + overhead.
void CheckExec(int slot) {
  execmem_executor_stats_t s;
  Require(execmem_executor_stats(HandleOf(slot), &s) == 0, "executor_stats failed");
  uint64_t model = 0;
  for (const Block& b : g_blocks) {
    if (b.exec == slot) model += b.usable;
  }
  const auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  Require(s.used == model, "executor %d: used %llu, the model has %llu", slot, u(s.used), u(model));
  Require(s.used <= s.footprint, "executor %d: used %llu above footprint %llu", slot, u(s.used),
          u(s.footprint));
  Require(s.footprint <= s.max + s.overhead, "executor %d: footprint %llu above max %llu + %llu",
          slot, u(s.footprint), u(s.max), u(s.overhead));
}

void CheckAll() {
  CheckExec(kDefault);
  for (int i = 0; i < kMaxExecutors; ++i) {
    if (g_execs[i].handle != nullptr) CheckExec(i);
  }
  const execmem::budget::LedgerCounters l = execmem::budget::Counters();
  Require(l.reserved + l.granted <= execmem::pool::Capacity(), "the ledger passes the capacity");
}

void OpCapacity(Input& in) {
  static constexpr const char* kCapacities[] = {"0", "64m", "256m", "1g", "3m", "x", "", "16g"};
  const char* c = kCapacities[in.Byte() % 8];
  const int err = execmem_set_pool_capacity(c);
  Require(err == 0 || err == EINVAL, "set_pool_capacity(%s) returned %d", c, err);
}

// Frees and destroys everything; every counter must then be back at zero.
void Finish() {
  if (g_bound != kDefault) {
    execmem_bind(nullptr);
    g_bound = kDefault;
  }
  CheckAll();
  while (!g_blocks.empty()) FreeAt(g_blocks.size() - 1, false);
  for (Exec& e : g_execs) {
    if (e.handle == nullptr) continue;
    Require(execmem_executor_destroy(e.handle) == 0, "executor_destroy: %s", execmem_last_error());
    e = Exec{};
  }
  Require(execmem_set_pool_capacity("0") == 0, "cannot restore the pool capacity");
  execmem_trim();
  execmem_executor_stats_t s;
  execmem_executor_stats(execmem_default_executor(), &s);
  Require(s.used == 0 && s.footprint == 0, "default executor: used %llu, footprint %llu at the end",
          static_cast<unsigned long long>(s.used), static_cast<unsigned long long>(s.footprint));
  const std::string left = execmem::test_support::LeftInPoolAndLedger();
  Require(left.empty(), "%s", left.c_str());
  Require(g_ranges.empty() && g_live_bytes == 0, "the model is not empty");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  for (int ops = 0; !in.empty() && ops < kMaxOps; ++ops) {
    switch (in.Byte() % 18) {
      case 0:
      case 1:
      case 2:
        OpMalloc(in);
        break;
      case 3:
        OpCalloc(in);
        break;
      case 4:
        OpRealloc(in);
        break;
      case 5:
        OpAligned(in, false);
        break;
      case 6:
        OpAligned(in, true);
        break;
      case 7:
      case 8:
        if (!g_blocks.empty()) FreeAt(in.Bits(2) % g_blocks.size(), in.Byte() & 1);
        break;
      case 9:
        OpCreate(in);
        break;
      case 10:
        OpDestroy(in);
        break;
      case 11:
        OpBind(in);
        break;
      case 12:
        OpHook(in, true);
        break;
      case 13:
        OpHook(in, false);
        break;
      case 14:
        CheckAll();
        break;
      case 15:
        execmem_trim();
        break;
      case 16:
        OpCapacity(in);
        break;
      default:
        if (!g_blocks.empty()) {
          const Block& b = g_blocks[in.Bits(2) % g_blocks.size()];
          Verify(b, b.p, b.size, "check");
          Require(execmem_usable_size(b.p) == b.usable, "usable size of %p changed",
                  static_cast<void*>(b.p));
        }
        break;
    }
  }
  Finish();
  return 0;
}
