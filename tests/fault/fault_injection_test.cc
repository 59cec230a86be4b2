// Injected faults at the platform seam (platform/os.h, FaultPlan).
//
// This program is linked to a copy of platform/ built with
// EXECMEM_FAULT_INJECTION and to the other layers' objects as the library
// has them. It runs one fixed workload — small, large and huge blocks,
// calloc, aligned blocks, realloc in place and by moving, an executor with a
// spill hook, binding, trimming, a pool without a cache, stats — first with no
// fault, to count the K fallible OS calls it makes, then once for each N in
// 1..K with the N-th call failing, and once more with every call from the N-th
// on failing (an OS that stays out of memory). Every run is a fresh process
// (fork of a parent that never touched execmem), so each starts from
// execmem's initial state.
//
// Each run must: get NULL with errno ENOMEM (or an error code) where a call
// fails, never a crash, a hang (alarm) or a block that breaks its contract
// (size, alignment, contents, zeroing); and end with every counter back at
// zero: executors' used and footprint, the pool's held and cached bytes, the
// ledger's reservations and grants, and the pool's bitmaps consistent.
//
//   fault_injection_test [--max-runs R]   all N when 2K <= R, else R evenly spread
//   fault_injection_test --run N [--and-after]   one run, for debugging
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "budget/budget.h"
#include "execmem.h"
#include "platform/os.h"
#include "pool/pool.h"
#include "tests/block_pattern.h"
#include "tests/testing.h"

namespace {

constexpr size_t kKiB = size_t{1} << 10;
constexpr size_t kMiB = size_t{1} << 20;
constexpr unsigned kRunSeconds = 60;  // a run takes milliseconds; this is a hang
constexpr size_t kParallelRuns = 2;

uint64_t g_fail_at = 0;
bool g_and_after = false;

// Ends the run with a one-line message unless `ok`.
[[gnu::format(printf, 2, 3)]] void Check(bool ok, const char* fmt, ...) {
  if (ok) return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fprintf(stderr, "fault_injection: failing call %llu%s: %s\n",
          static_cast<unsigned long long>(g_fail_at), g_and_after ? " and after" : "", buf);
  _exit(1);
}

struct Block {
  unsigned char* p;
  size_t size;
  unsigned char tag;
  execmem_executor_t* exec;  // charged to
  size_t reach;              // the largest size it had at p
};

std::vector<Block> g_live;
unsigned char g_next_tag = 1;
size_t g_spill_calls = 0;

using execmem::test_support::ForSampled;
using execmem::test_support::Pattern;

// Checks the positions written in b below `limit`, read at `at` (b.p unless moved).
void CheckContents(const Block& b, const char* when, const unsigned char* at = nullptr,
                   size_t limit = SIZE_MAX) {
  if (at == nullptr) at = b.p;
  ForSampled(b.size, [&](size_t i) {
    if (i >= limit) return;
    Check(at[i] == Pattern(b.tag, i), "%s: block %p of %zu bytes lost its contents at %zu", when,
          static_cast<void*>(b.p), b.size, i);
  });
}

// Checks a block just returned (or its failure) and records it.
void Took(void* p, size_t size, size_t alignment, bool zeroed, const char* what) {
  if (p == nullptr) {
    Check(errno == ENOMEM, "%s(%zu) returned NULL with errno %d, not ENOMEM", what, size, errno);
    return;
  }
  Check(reinterpret_cast<uintptr_t>(p) % alignment == 0, "%s(%zu) = %p is not %zu-aligned", what,
        size, p, alignment);
  Check(execmem_usable_size(p) >= size, "%s(%zu) = %p has only %zu usable bytes", what, size, p,
        execmem_usable_size(p));
  Block b{static_cast<unsigned char*>(p), size, g_next_tag++, execmem_current_executor(), size};
  if (zeroed) {
    ForSampled(size, [&](size_t i) {
      Check(b.p[i] == 0, "%s(%zu) = %p is not zero at %zu", what, size, p, i);
    });
  }
  ForSampled(size, [&](size_t i) { b.p[i] = Pattern(b.tag, i); });
  g_live.push_back(b);
}

void* Malloc(size_t size) {
  errno = 0;
  void* p = execmem_malloc(size);
  Took(p, size, size >= 128 || size % 16 == 0 ? 16 : 8, false, "malloc");
  return p;
}

void Calloc(size_t n, size_t size) {
  errno = 0;
  Took(execmem_calloc(n, size), n * size, 16, true, "calloc");
}

void Aligned(size_t alignment, size_t size) {
  errno = 0;
  Took(execmem_aligned_alloc(alignment, size), size, alignment, false, "aligned_alloc");
}

void Memalign(size_t alignment, size_t size) {
  void* p = nullptr;
  const int err = execmem_posix_memalign(&p, alignment, size);
  Check(err == 0 || err == ENOMEM, "posix_memalign(%zu) returned %d", size, err);
  if (err == 0) {
    Took(p, size, alignment, false, "posix_memalign");
  } else {
    Check(p == nullptr, "posix_memalign failed but wrote %p", p);
  }
}

// A huge block (a mapping of its own) must leave no page mapped once freed
// and trimmed, whatever its mapping went through: the OS says ENOMEM for
// unmapped pages. (The pool may keep a freed huge block's mapping for the
// next huge block until a trim: docs/large-blocks.md, ninth step.)
void CheckUnmapped(const Block& b) {
  if (b.reach <= 64 * kMiB) return;
  execmem_trim();
  unsigned char vec;
  for (size_t off = 0; off < b.reach; off += kMiB) {
    const bool mapped = mincore(b.p + off, 4 * kKiB, &vec) == 0;
    Check(!mapped, "freed huge block %p (once %zu bytes) is still mapped at +%zu",
          static_cast<void*>(b.p), b.reach, off);
  }
}

void FreeAt(size_t i) {
  const Block b = g_live[i];
  CheckContents(b, "free");
  g_live[i] = g_live.back();
  g_live.pop_back();
  execmem_free(b.p);
  CheckUnmapped(b);
}

void FreeAll() {
  while (!g_live.empty()) FreeAt(g_live.size() - 1);
}

// Resizes the block at i, which must keep its contents up to the smaller size.
void Realloc(size_t i, size_t size) {
  Block b = g_live[i];
  CheckContents(b, "realloc");
  errno = 0;
  void* q = execmem_realloc(b.p, size);
  if (q == nullptr) {
    Check(errno == ENOMEM, "realloc(%zu) returned NULL with errno %d", size, errno);
    CheckContents(b, "a failed realloc");  // the old block stays valid
    return;
  }
  Check(execmem_usable_size(q) >= size, "realloc(%zu) = %p is too small", size, q);
  CheckContents(b, "after realloc", static_cast<unsigned char*>(q), size);
  const Block nb{static_cast<unsigned char*>(q), size, b.tag, b.exec,
                 q == b.p && b.reach > size ? b.reach : size};
  ForSampled(nb.size, [&](size_t j) { nb.p[j] = Pattern(nb.tag, j); });
  g_live[i] = nb;
}

// Frees blocks charged to the executor until `bytes` are freed.
size_t SpillHook(void* context, size_t bytes) {
  ++g_spill_calls;
  auto* e = static_cast<execmem_executor_t*>(context);
  size_t freed = 0;
  for (size_t i = g_live.size(); i-- > 0 && freed < bytes;) {
    if (g_live[i].exec != e) continue;
    freed += g_live[i].size;
    FreeAt(i);
  }
  return freed;
}

void CheckExecutorEmpty(execmem_executor_t* e, const char* when) {
  execmem_executor_stats_t s;
  Check(execmem_executor_stats(e, &s) == 0, "executor stats failed");
  Check(s.used == 0 && s.footprint == 0,
        "%s: executor '%s' has used %llu and footprint %llu, not 0", when, s.name,
        static_cast<unsigned long long>(s.used), static_cast<unsigned long long>(s.footprint));
}

// Pool level, as tests/pool_test.cc's page-move tests: a run of 8 pages
// cached between two live pages, then a 20-page span.
void MoveCachedPages() {
  namespace pool = execmem::pool;
  execmem_trim();
  bool zeroed = false;
  execmem::PoolPage* z = pool::AllocSpan(10, &zeroed);
  if (z == nullptr) return;
  execmem::PoolPage* pieces[3];
  constexpr uint32_t kFrom[3] = {0, 1, 9}, kPages[3] = {1, 8, 1};
  for (int i = 0; i < 3; ++i) {
    pieces[i] = execmem::DescriptorAfter(z, kFrom[i]);
    pieces[i]->span_pages = static_cast<uint16_t>(kPages[i]);
    pieces[i]->kind = execmem::PageKind::kFree;
  }
  memset(execmem::PageStart(pieces[1]), 0x5a, 8 * execmem::kPageSize);
  pool::FreeSpan(pieces[1]);
  pool::ForgetPeak();
  execmem::PoolPage* c = pool::AllocSpan(20, &zeroed);
  if (c != nullptr) {
    const char* p = execmem::PageStart(c);
    for (size_t off = 0; off < 20 * execmem::kPageSize; off += 4096) {
      Check(!zeroed || p[off] == 0, "a span said zero has byte %d at %zu", p[off], off);
    }
    pool::FreeSpan(c);
  }
  pool::FreeSpan(pieces[0]);
  pool::FreeSpan(pieces[2]);
}

void Workload() {
  // Decay an hour: the purger thread then never purges by itself during a
  // run, so the calls are numbered in the same order every run.
  execmem::pool::SetDecayMs(3'600'000);

  // Small, large and huge blocks of the default executor.
  for (int i = 0; i < 200; ++i) {
    static constexpr size_t kSizes[] = {8, 24, 100, 500, 3000, 20000, 200 * kKiB};
    Malloc(kSizes[i % 7]);
  }
  Malloc(300 * kKiB);
  Malloc(3 * kMiB);
  Calloc(2, kMiB);
  Calloc(1000, 40);
  Aligned(256 * kKiB, 300 * kKiB);
  Aligned(64, 72);
  Memalign(4 * kMiB, 70 * kMiB);  // huge, aligned
  Malloc(kMiB);
  if (!g_live.empty()) Realloc(g_live.size() - 1, 6 * kMiB);  // grows in place or moves
  if (!g_live.empty()) Realloc(g_live.size() - 1, 2 * kMiB);  // shrinks in place
  Malloc(80 * kMiB);
  if (!g_live.empty()) Realloc(g_live.size() - 1, 160 * kMiB);  // mremap
  if (!g_live.empty()) Realloc(g_live.size() - 1, 70 * kMiB);   // shrinks the mapping (< half)
  for (size_t i = 0; i < g_live.size(); i += 3) FreeAt(i);

  // An executor with a spill hook, past one arena.
  execmem_executor_options_t o{};
  o.name = "faulty";
  o.initial = "4m";
  o.max = "96m";
  o.overhead = "8m";
  execmem_executor_t* e = nullptr;
  const int created = execmem_executor_create(&o, &e);
  Check(created == 0 || created == ENOMEM, "executor_create returned %d: %s", created,
        execmem_last_error());
  if (created == 0) {
    const int hooked = execmem_executor_add_spill_hook(e, "drop", 0, &SpillHook, e);
    Check(hooked == 0 || hooked == ENOMEM, "add_spill_hook returned %d", hooked);
    errno = 0;
    execmem_bind(e);
    const bool bound = execmem_current_executor() == e;
    Check(bound || errno == ENOMEM, "bind failed with errno %d", errno);
    for (int i = 0; i < 12; ++i) Malloc(6 * kMiB);
    for (int i = 0; i < 300; ++i) Malloc(i % 2 ? 48 : 9000);
    for (int i = 0; i < 6; ++i) Malloc(8 * kMiB);  // passes max: the hook spills
    for (size_t i = 0; i < g_live.size(); i += 2) FreeAt(i);
    if (bound) {
      execmem_bind(nullptr);
      Check(execmem_current_executor() == execmem_default_executor(), "unbind failed");
    }
  }

  // Everything back, then the cache to the OS: memory a refused madvise
  // left committed must not be handed out as zero.
  FreeAll();
  execmem_trim();
  Calloc(1, 3 * kMiB);
  Calloc(4, 16 * kKiB);
  FreeAll();

  if (created == 0) {
    execmem_bind(e);
    if (execmem_current_executor() == e) {
      execmem_trim();
      CheckExecutorEmpty(e, "after trim");
      execmem_bind(nullptr);
    }
    Check(execmem_executor_destroy(e) == 0, "executor_destroy failed: %s", execmem_last_error());
  }

  execmem_pool_stats_t ps;
  execmem_pool_stats(&ps);  // /proc and mincore reads
  if (char* json = execmem_stats_json()) execmem_free(json);

  // A large span that takes fresh pages past the high-water mark while 8
  // pages are cached: they move into it (mremap) instead of being purged. A
  // refused move leaves them cached and the span's pages as they were.
  MoveCachedPages();

  // No cache: freed pages are decommitted at once, or kept if refused.
  execmem::pool::SetDecayMs(0);
  Malloc(kMiB);
  FreeAll();
  Calloc(1, kMiB);
  FreeAll();
}

void CheckEverythingBack() {
  execmem_trim();
  CheckExecutorEmpty(execmem_default_executor(), "at the end");
  const execmem::PoolCounters c = execmem::pool::Counters();
  Check(c.held == c.cached, "pool holds %llu bytes, of which only %llu cached",
        static_cast<unsigned long long>(c.held), static_cast<unsigned long long>(c.cached));
  // Once the OS gives again, the cache goes back to it too.
  execmem::os::SetFaultPlan({});
  execmem_trim();
  const std::string left = execmem::test_support::LeftInPoolAndLedger();
  Check(left.empty(), "%s", left.c_str());
}

struct Outcome {
  bool ok;
  uint64_t calls, injected;
};

// A run in a fresh child process: started, then waited for.
struct Child {
  pid_t pid;
  int fd;  // the read end of the pipe the child reports its counts on
  uint64_t fail_at;
  bool and_after;
};

Child Start(uint64_t fail_at, bool and_after) {
  int fds[2];
  if (pipe(fds) != 0) {
    perror("pipe");
    exit(2);
  }
  const pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(2);
  }
  if (pid == 0) {
    close(fds[0]);
    alarm(kRunSeconds);
    g_fail_at = fail_at;
    g_and_after = and_after;
    execmem::os::SetFaultPlan({fail_at, and_after});
    Workload();
    const uint64_t counts[2] = {execmem::os::FaultCalls(), execmem::os::FaultsInjected()};
    CheckEverythingBack();
    // 16 bytes: the pipe holds them without a reader.
    if (write(fds[1], counts, sizeof counts) != static_cast<ssize_t>(sizeof counts)) _exit(3);
    _exit(0);
  }
  close(fds[1]);
  return {pid, fds[0], fail_at, and_after};
}

Outcome Wait(const Child& c) {
  int status = 0;
  waitpid(c.pid, &status, 0);
  uint64_t counts[2] = {0, 0};
  const ssize_t got = read(c.fd, counts, sizeof counts);
  close(c.fd);
  const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && got == sizeof counts;
  if (!ok) {
    if (WIFSIGNALED(status)) {
      fprintf(stderr, "fault_injection: failing call %llu%s: killed by signal %d (%s)%s\n",
              static_cast<unsigned long long>(c.fail_at), c.and_after ? " and after" : "",
              WTERMSIG(status), strsignal(WTERMSIG(status)),
              WTERMSIG(status) == SIGALRM ? ": a hang" : "");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      fprintf(stderr, "fault_injection: failing call %llu: no counts reported\n",
              static_cast<unsigned long long>(c.fail_at));
    }
  }
  return {ok, counts[0], counts[1]};
}

Outcome Run(uint64_t fail_at, bool and_after) { return Wait(Start(fail_at, and_after)); }

}  // namespace

int main(int argc, char** argv) {
  uint64_t max_runs = 600;
  long single = -1;
  bool single_after = false;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--max-runs") == 0 && i + 1 < argc) {
      max_runs = strtoull(argv[++i], nullptr, 10);
    } else if (strcmp(argv[i], "--run") == 0 && i + 1 < argc) {
      single = strtol(argv[++i], nullptr, 10);
    } else if (strcmp(argv[i], "--and-after") == 0) {
      single_after = true;
    } else {
      fprintf(stderr, "usage: %s [--max-runs R] [--run N [--and-after]]\n", argv[0]);
      return 2;
    }
  }
  if (single >= 0) {
    const Outcome o = Run(static_cast<uint64_t>(single), single_after);
    printf("fault_injection: run %ld: %s, %llu calls, %llu failed\n", single,
           o.ok ? "ok" : "FAILED", static_cast<unsigned long long>(o.calls),
           static_cast<unsigned long long>(o.injected));
    return o.ok ? 0 : 1;
  }

  const Outcome clean = Run(0, false);
  if (!clean.ok || clean.injected != 0) {
    fprintf(stderr, "fault_injection: the workload fails without faults\n");
    return 1;
  }
  const uint64_t k = clean.calls;
  if (k < 10) {
    fprintf(stderr, "fault_injection: the workload made only %llu fallible calls\n",
            static_cast<unsigned long long>(k));
    return 1;
  }
  // Every N when it fits in max_runs, else an even spread that keeps N = 1..
  // and the last call (the order of calls is fixed, so the sample is too).
  std::vector<uint64_t> ns;
  const uint64_t per_mode = max_runs / 2;
  if (k <= per_mode) {
    for (uint64_t n = 1; n <= k; ++n) ns.push_back(n);
  } else {
    for (uint64_t i = 0; i < per_mode; ++i) ns.push_back(1 + i * (k - 1) / (per_mode - 1));
  }
  // Two runs at a time (the machine has two cores); each is independent.
  int failures = 0;
  uint64_t injected_runs = 0;
  std::vector<Child> running;
  auto wait_oldest = [&] {
    const Outcome o = Wait(running.front());
    running.erase(running.begin());
    if (!o.ok) ++failures;
    if (o.injected != 0) ++injected_runs;
  };
  for (const bool and_after : {false, true}) {
    for (const uint64_t n : ns) {
      if (running.size() == kParallelRuns) wait_oldest();
      running.push_back(Start(n, and_after));
    }
  }
  while (!running.empty()) wait_oldest();
  printf(
      "fault_injection: K = %llu fallible OS calls; N = %llu..%llu (%zu values), each failed "
      "once and from N on: %d of %zu runs failed; a fault was injected in %llu runs\n",
      static_cast<unsigned long long>(k), static_cast<unsigned long long>(ns.front()),
      static_cast<unsigned long long>(ns.back()), ns.size(), failures, 2 * ns.size(),
      static_cast<unsigned long long>(injected_runs));
  // Each N <= K is reached in every run unless a failure shortened the run;
  // most runs must really have met their fault, or this test tests nothing.
  if (injected_runs < ns.size()) {
    fprintf(stderr, "fault_injection: faults were injected in too few runs\n");
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
