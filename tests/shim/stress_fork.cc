// Multi-threaded stress of the shim, run under LD_PRELOAD:
//
//  1. cross-thread frees: producers allocate (malloc, new[], aligned_alloc,
//     realloc), consumers on other threads check the content and free;
//  2. thread churn: short-lived threads allocate and exit while others keep
//     allocating; what they leave is freed by the main thread afterwards, and
//     under execmem the footprint must not keep what their caches held;
//  3. fork from the multi-threaded process: the child allocates (malloc,
//     new, a thread of its own, a fork of its own) and exits 0; a child that
//     hangs (a lock held across fork) is killed and reported;
//  4. dlopen / dlclose of a library that allocates, in a loop, while another
//     thread allocates.
//
// Usage: stress_fork [--require-execmem] PROBE_LIBRARY
#include <dlfcn.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "execmem.h"  // types only: the C API is looked up with dlsym

namespace {

// ---- blocks that carry their own check --------------------------------------------
enum class Kind : uint8_t { kMalloc, kNewArray, kAligned, kRealloc };

struct Block {
  unsigned char* data;
  std::size_t size;
  Kind kind;
  uint8_t seed;
};

std::size_t PickSize(std::mt19937& rng) {
  const unsigned r = rng() % 1000;
  if (r < 700) return 1 + rng() % 256;
  if (r < 950) return 257 + rng() % 8000;
  if (r < 995) return 8192 + rng() % 120000;
  return (1u << 20) + rng() % (1u << 20);
}

Block Make(std::mt19937& rng) {
  Block b{nullptr, PickSize(rng), static_cast<Kind>(rng() % 4), static_cast<uint8_t>(rng())};
  switch (b.kind) {
    case Kind::kMalloc:
      b.data = static_cast<unsigned char*>(std::malloc(b.size));
      break;
    case Kind::kNewArray:
      b.data = new unsigned char[b.size];
      break;
    case Kind::kAligned:
      b.data = static_cast<unsigned char*>(std::aligned_alloc(64, b.size));
      break;
    case Kind::kRealloc:
      b.data = static_cast<unsigned char*>(std::realloc(std::malloc(b.size / 2 + 1), b.size));
      break;
  }
  if (b.data != nullptr) {
    std::memset(b.data, b.seed, b.size);
  }
  return b;
}

bool Intact(const Block& b) {
  if (b.data == nullptr) return false;
  if (b.kind == Kind::kAligned && (reinterpret_cast<std::uintptr_t>(b.data) & 63) != 0) {
    return false;
  }
  return b.data[0] == b.seed && b.data[b.size / 2] == b.seed && b.data[b.size - 1] == b.seed;
}

void Release(const Block& b) {
  if (b.kind == Kind::kNewArray) {
    delete[] b.data;
  } else {
    std::free(b.data);
  }
}

// ---- 1. cross-thread frees ---------------------------------------------------------
class Queue {
 public:
  void Push(Block b) {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return items_.size() < 256; });
    items_.push_back(b);
    not_empty_.notify_one();
  }
  bool Pop(Block* out) {
    std::unique_lock<std::mutex> lock(mu_);
    not_empty_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return false;
    *out = items_.front();
    items_.pop_front();
    not_full_.notify_one();
    return true;
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<Block> items_;
  bool closed_ = false;
};

void TestCrossThreadFrees() {
  constexpr int kProducers = 3, kConsumers = 3, kPerProducer = 40000;
  Queue queue;
  std::atomic<int> bad{0}, consumed{0}, null_blocks{0};
  std::vector<std::thread> consumers, producers;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&] {
      Block b;
      while (queue.Pop(&b)) {
        if (!Intact(b)) bad.fetch_add(1);
        Release(b);
        consumed.fetch_add(1);
      }
    });
  }
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      std::mt19937 rng(1234 + p);
      for (int i = 0; i < kPerProducer; ++i) {
        Block b = Make(rng);
        if (b.data == nullptr) {
          null_blocks.fetch_add(1);
          continue;
        }
        queue.Push(b);
      }
    });
  }
  for (auto& t : producers) t.join();
  queue.Close();
  for (auto& t : consumers) t.join();
  CHECK(null_blocks.load() == 0, "%d allocations returned NULL", null_blocks.load());
  CHECK(bad.load() == 0, "%d blocks were damaged between threads", bad.load());
  CHECK(consumed.load() == kProducers * kPerProducer, "consumed %d of %d", consumed.load(),
        kProducers * kPerProducer);
}

// ---- execmem's own view, when preloaded ---------------------------------------------
struct Footprint {
  bool known;
  uint64_t used, footprint;
};

Footprint ReadFootprint() {
  using DefaultFn = execmem_executor_t* (*)();
  using StatsFn = int (*)(execmem_executor_t*, execmem_executor_stats_t*);
  using TrimFn = void (*)();
  auto default_executor =
      reinterpret_cast<DefaultFn>(dlsym(RTLD_DEFAULT, "execmem_default_executor"));
  auto stats = reinterpret_cast<StatsFn>(dlsym(RTLD_DEFAULT, "execmem_executor_stats"));
  auto trim = reinterpret_cast<TrimFn>(dlsym(RTLD_DEFAULT, "execmem_trim"));
  if (default_executor == nullptr || stats == nullptr || trim == nullptr) return {false, 0, 0};
  trim();
  execmem_executor_stats_t s = {};
  s.version = EXECMEM_STATS_VERSION;
  if (stats(default_executor(), &s) != 0) return {false, 0, 0};
  return {true, s.used, s.footprint};
}

// ---- 2. thread churn -------------------------------------------------------------------
void TestThreadChurn() {
  const Footprint before = ReadFootprint();
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> steady;
  for (int t = 0; t < 2; ++t) {
    steady.emplace_back([&, t] {
      std::mt19937 rng(99 + t);
      std::vector<Block> live;
      while (!stop.load(std::memory_order_relaxed)) {
        live.push_back(Make(rng));
        if (live.size() > 500) {
          for (const Block& b : live) {
            if (!Intact(b)) bad.fetch_add(1);
            Release(b);
          }
          live.clear();
        }
      }
      for (const Block& b : live) Release(b);
    });
  }

  std::mutex left_mu;
  std::vector<Block> left_behind;  // allocated by threads that have exited
  constexpr int kWaves = 40, kPerWave = 8;
  for (int wave = 0; wave < kWaves; ++wave) {
    std::vector<std::thread> churn;
    for (int t = 0; t < kPerWave; ++t) {
      churn.emplace_back([&, wave, t] {
        std::mt19937 rng(wave * 100 + t);
        std::vector<Block> mine;
        for (int i = 0; i < 300; ++i) mine.push_back(Make(rng));
        std::string s;
        for (int i = 0; i < 200; ++i) s += std::to_string(i);
        std::lock_guard<std::mutex> lock(left_mu);
        for (std::size_t i = 0; i < mine.size(); ++i) {
          if (i % 4 == 0) {
            left_behind.push_back(mine[i]);
          } else {
            if (!Intact(mine[i])) bad.fetch_add(1);
            Release(mine[i]);
          }
        }
      });
    }
    for (auto& t : churn) t.join();
  }
  stop.store(true);
  for (auto& t : steady) t.join();
  for (const Block& b : left_behind) {
    if (!Intact(b)) bad.fetch_add(1);
    Release(b);
  }
  CHECK(bad.load() == 0, "%d blocks damaged during thread churn", bad.load());

  // 320 exited threads each cached what it freed; those caches must have gone
  // back, so after a trim the footprint is about what it was before.
  const Footprint after = ReadFootprint();
  if (check_preloaded()) {
    CHECK(before.known && after.known, "execmem stats not reachable with dlsym");
    const uint64_t kSlack = 32u << 20;
    CHECK(after.footprint <= before.footprint + kSlack,
          "footprint %llu -> %llu bytes after thread churn: exited threads' caches kept?",
          static_cast<unsigned long long>(before.footprint),
          static_cast<unsigned long long>(after.footprint));
    CHECK(after.used <= before.used + (1u << 20), "used %llu -> %llu bytes: blocks leaked",
          static_cast<unsigned long long>(before.used),
          static_cast<unsigned long long>(after.used));
  }
}

// ---- 3. fork from a multi-threaded process ---------------------------------------------
// What a child does: everything must work although other threads of the
// parent were in the middle of allocating when it forked.
int ChildWork(int round) {
  std::mt19937 rng(777 + round);
  std::vector<Block> live;
  for (int i = 0; i < 500; ++i) {
    live.push_back(Make(rng));
    if (live.back().data == nullptr) return 3;
  }
  for (const Block& b : live) {
    if (!Intact(b)) return 4;
    Release(b);
  }
  std::atomic<bool> thread_ok{false};
  std::thread t([&] {
    std::vector<std::string> v;
    for (int i = 0; i < 1000; ++i) v.emplace_back(static_cast<std::size_t>(i % 200), 'c');
    thread_ok.store(v.size() == 1000);
  });
  t.join();
  if (!thread_ok.load()) return 5;
  if (round % 5 == 0) {  // a fork from the child, single-threaded again
    const pid_t grandchild = fork();
    if (grandchild == 0) {
      void* p = std::malloc(12345);
      _exit(p != nullptr ? 0 : 6);
    }
    int status = 0;
    if (grandchild < 0 || waitpid(grandchild, &status, 0) != grandchild) return 7;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 8;
  }
  return 0;
}

// The exit status of pid, or -1 if it has not exited within timeout (it is then killed).
int WaitWithTimeout(pid_t pid, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return -2;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

void TestFork() {
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int t = 0; t < 4; ++t) {
    busy.emplace_back([&, t] {
      std::mt19937 rng(5000 + t);
      std::vector<Block> live;
      while (!stop.load(std::memory_order_relaxed)) {
        live.push_back(Make(rng));
        if (live.size() > 200) {
          for (const Block& b : live) Release(b);
          live.clear();
          std::free(std::malloc(static_cast<std::size_t>(4) << 20));  // a large block too
        }
      }
      for (const Block& b : live) Release(b);
    });
  }
  constexpr int kForks = 30;
  int ok = 0;
  for (int round = 0; round < kForks; ++round) {
    const pid_t pid = fork();
    if (pid == 0) {
      const int rc = ChildWork(round);
      if (round % 2 == 0) std::exit(rc);  // runs atexit handlers in the child too
      _exit(rc);
    }
    CHECK(pid > 0, "fork failed in round %d", round);
    if (pid < 0) continue;
    const int status = WaitWithTimeout(pid, std::chrono::seconds(20));
    CHECK(status != -1, "fork round %d: child hung (killed after 20 s): a lock held across fork?",
          round);
    if (status >= 0) {
      CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork round %d: child %s %d", round,
            WIFEXITED(status) ? "exited with" : "killed by signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
      ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  stop.store(true);
  for (auto& t : busy) t.join();
  CHECK(ok == kForks, "%d of %d forked children succeeded", ok, kForks);
}

// ---- 4. dlopen / dlclose ----------------------------------------------------------------
void TestDlopen(const char* probe_path) {
  std::atomic<bool> stop{false};
  std::thread busy([&] {
    std::mt19937 rng(4242);
    while (!stop.load(std::memory_order_relaxed)) Release(Make(rng));
  });
  int ok = 0;
  constexpr int kRounds = 150;
  for (int i = 0; i < kRounds; ++i) {
    void* handle = dlopen(probe_path, RTLD_NOW | RTLD_LOCAL);
    CHECK(handle != nullptr, "dlopen(%s): %s", probe_path, dlerror());
    if (handle == nullptr) break;
    using BlockFn = void* (*)(std::size_t);
    using StringFn = std::string* (*)(int);
    using TlsFn = std::size_t (*)(std::size_t);
    auto block_fn = reinterpret_cast<BlockFn>(dlsym(handle, "probe_block"));
    auto string_fn = reinterpret_cast<StringFn>(dlsym(handle, "probe_string"));
    auto tls_fn = reinterpret_cast<TlsFn>(dlsym(handle, "probe_thread_local"));
    if (block_fn == nullptr || string_fn == nullptr || tls_fn == nullptr) {
      CHECK(false, "probe library lacks its functions");
      dlclose(handle);
      break;
    }
    auto* block = static_cast<unsigned char*>(block_fn(1000 + i));
    std::string* s = string_fn(i);
    std::size_t tls = 0;
    if (i % 10 == 0) {  // a thread_local of the library, on a thread that exits first
      std::thread t([&] { tls = tls_fn(5000); });
      t.join();
    } else {
      tls = 5000;
    }
    const bool good = block != nullptr && block[999 + i] == 0x3c &&
                      s->size() == static_cast<std::size_t>(i % 64) * 7 + 1 && tls == 5000;
    std::free(block);
    delete s;
    ok += good;
    CHECK(dlclose(handle) == 0, "dlclose: %s", dlerror());
  }
  // libm and libz-like system libraries: loaded, used, closed.
  for (int i = 0; i < 20; ++i) {
    void* libm = dlopen("libm.so.6", RTLD_NOW);
    CHECK(libm != nullptr, "dlopen(libm.so.6): %s", dlerror());
    if (libm != nullptr) {
      using CosFn = double (*)(double);
      auto cos_fn = reinterpret_cast<CosFn>(dlsym(libm, "cos"));
      CHECK(cos_fn != nullptr && cos_fn(0.0) == 1.0, "cos from libm");
      dlclose(libm);
    }
  }
  stop.store(true);
  busy.join();
  CHECK(ok == kRounds, "%d of %d dlopen rounds correct", ok, kRounds);
}

}  // namespace

int main(int argc, char** argv) {
  int arg = 1;
  if (arg < argc && std::strcmp(argv[arg], "--require-execmem") == 0) {
    ++arg;
    if (!check_preloaded()) {
      std::fprintf(stderr, "stress_fork: execmem is not the allocator of this process\n");
      return 1;
    }
  }
  if (arg >= argc) {
    std::fprintf(stderr, "usage: stress_fork [--require-execmem] PROBE_LIBRARY\n");
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  auto phase = [&](const char* name) {
    std::printf("%-22s done at %5.1f s\n", name,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    std::fflush(stdout);
  };
  TestCrossThreadFrees();
  phase("cross-thread frees");
  TestThreadChurn();
  phase("thread churn");
  TestFork();
  phase("fork");
  TestDlopen(argv[arg]);
  phase("dlopen/dlclose");
  return check_summary("stress_fork");
}
