// Multi-threaded stress: resident threads allocate and free in their own
// executors while churn threads create executors, allocate, hand blocks to
// other threads and destroy them again; every thread frees blocks that other
// threads (and other executors) allocated; spill hooks are called by whichever
// thread is short, arbitration included (the pool is kept tight on purpose).
//
// At the end every counter must be back to exactly zero: each executor's used
// and footprint, the pool's reservations and grants, and no span may be held
// outside the pool's cache. Blocks carry a tag checked when they are freed, so
// a block handed out twice shows up as corruption.
//
// A few seconds on two cores; shorter under sanitizers.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "execmem.h"
#include "execmem.hpp"
#include "executor/runtime.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace {

using execmem::test_support::kSanitized;

constexpr auto kRunFor =
    kSanitized ? std::chrono::milliseconds(1200) : std::chrono::milliseconds(3000);
constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uintptr_t kMagic = 0x5eedf00dcafe1234;

struct Block {
  void* p;
  size_t size;
};

// Tags a fresh block with its own address, at both ends.
void Tag(const Block& b) {
  const uintptr_t tag = reinterpret_cast<uintptr_t>(b.p) ^ kMagic;
  memcpy(b.p, &tag, sizeof tag);
  memcpy(static_cast<char*>(b.p) + b.size - sizeof tag, &tag, sizeof tag);
}

std::atomic<uint64_t> g_corrupt{0};

void CheckAndFree(const Block& b) {
  const uintptr_t want = reinterpret_cast<uintptr_t>(b.p) ^ kMagic;
  uintptr_t head, tail;
  memcpy(&head, b.p, sizeof head);
  memcpy(&tail, static_cast<char*>(b.p) + b.size - sizeof tail, sizeof tail);
  if (head != want || tail != want) g_corrupt.fetch_add(1, std::memory_order_relaxed);
  execmem_free(b.p);
}

// Blocks owned by one executor's user; its spill hook may free them from any
// thread. Nothing is allocated under the lock (a hook could run inside).
std::atomic<uint64_t> g_hook_calls{0};
std::atomic<uint64_t> g_foreign_hook_calls{0};  // on another thread: arbitration

struct Owned {
  std::mutex mu;
  std::vector<Block> blocks;
  std::atomic<std::thread::id> owner{};
  // Frees large blocks (charged at once, whoever frees them) until `bytes`.
  size_t Spill(size_t bytes) {
    g_hook_calls.fetch_add(1, std::memory_order_relaxed);
    if (owner.load() != std::this_thread::get_id()) {
      g_foreign_hook_calls.fetch_add(1, std::memory_order_relaxed);
    }
    std::lock_guard<std::mutex> lock(mu);
    size_t freed = 0;
    for (size_t i = 0; i < blocks.size() && freed < bytes;) {
      if (blocks[i].size > 256 * kKiB) {
        freed += blocks[i].size;
        CheckAndFree(blocks[i]);
        blocks[i] = blocks.back();
        blocks.pop_back();
      } else {
        ++i;
      }
    }
    return freed;
  }
  void FreeAll() {
    std::lock_guard<std::mutex> lock(mu);
    for (const Block& b : blocks) CheckAndFree(b);
    blocks.clear();
  }
};

// Blocks in transit between threads; freed by whoever takes them.
class Mailbox {
 public:
  bool Put(const Block& b) {
    std::lock_guard<std::mutex> lock(mu_);
    if (blocks_.size() >= 4096) return false;
    blocks_.push_back(b);
    return true;
  }
  void FreeSome(size_t n) {
    std::vector<Block> taken;
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (n-- > 0 && !blocks_.empty()) {
        taken.push_back(blocks_.back());
        blocks_.pop_back();
      }
    }
    for (const Block& b : taken) CheckAndFree(b);
  }
  void FreeAll() { FreeSome(SIZE_MAX); }

 private:
  std::mutex mu_;
  std::vector<Block> blocks_;
};

struct Counts {
  std::atomic<uint64_t> ops{0}, allocs{0}, ooms{0}, rounds{0}, create_failures{0};
  std::atomic<uint64_t> destroy_failures{0}, private_rounds_nonzero{0};
};

size_t RandomSize(std::minstd_rand& rng) {
  const uint32_t r = rng() % 100;
  if (r < 70) return 16 + rng() % 1024;
  if (r < 92) return 1024 + rng() % (64 * kKiB);
  return 256 * kKiB + 4096 + rng() % (768 * kKiB);  // large
}

// One step of allocation work on `owned`; returns false on out of memory.
bool Step(std::minstd_rand& rng, Owned& owned, Mailbox& mailbox, size_t max_blocks, bool may_share,
          Counts& counts) {
  counts.ops.fetch_add(1, std::memory_order_relaxed);
  const uint32_t op = rng() % 100;
  if (op < 60) {
    const size_t size = RandomSize(rng);
    void* p = execmem_malloc(size);
    if (p == nullptr) return false;
    counts.allocs.fetch_add(1, std::memory_order_relaxed);
    const Block b{p, size};
    Tag(b);
    std::lock_guard<std::mutex> lock(owned.mu);
    owned.blocks.push_back(b);
    if (owned.blocks.size() > max_blocks) {
      const size_t i = rng() % owned.blocks.size();
      CheckAndFree(owned.blocks[i]);
      owned.blocks[i] = owned.blocks.back();
      owned.blocks.pop_back();
    }
    return true;
  }
  if (op < 85 || (op < 93 && !may_share)) {
    std::lock_guard<std::mutex> lock(owned.mu);
    if (owned.blocks.empty()) return true;
    const size_t i = rng() % owned.blocks.size();
    CheckAndFree(owned.blocks[i]);
    owned.blocks[i] = owned.blocks.back();
    owned.blocks.pop_back();
    return true;
  }
  if (op < 93) {
    std::lock_guard<std::mutex> lock(owned.mu);
    if (owned.blocks.empty()) return true;
    const size_t i = rng() % owned.blocks.size();
    if (!mailbox.Put(owned.blocks[i])) return true;
    owned.blocks[i] = owned.blocks.back();
    owned.blocks.pop_back();
    return true;
  }
  mailbox.FreeSome(1 + rng() % 8);
  return true;
}

// On out of memory: let go of half of what is held, as a real user would.
void Shed(Owned& owned) {
  std::lock_guard<std::mutex> lock(owned.mu);
  const size_t keep = owned.blocks.size() / 2;
  while (owned.blocks.size() > keep) {
    CheckAndFree(owned.blocks.back());
    owned.blocks.pop_back();
  }
}

using execmem::test_support::PoolStats;

TEST(StressTest, ExecutorsComeAndGoWhileOthersAllocateAndAllCountersEndAtZero) {
  execmem_trim();
  ASSERT_EQ(execmem_set_pool_capacity("96m"), 0) << execmem_last_error();
  const execmem_pool_stats_t start = PoolStats();

  constexpr int kResidents = 2;
  constexpr int kChurners = 2;
  Mailbox mailbox;
  Counts counts;
  std::atomic<bool> stop{false};

  // Long-lived executors, one per resident thread, with hooks that any
  // short thread may call through arbitration.
  std::vector<std::unique_ptr<execmem::Executor>> residents;
  std::vector<std::unique_ptr<Owned>> resident_blocks;
  for (int i = 0; i < kResidents; ++i) {
    execmem::ExecutorConfig c;
    c.name = "resident-" + std::to_string(i);
    c.initial = "8m";
    c.max = "36m";
    c.overhead = "10%";
    auto e = execmem::Executor::Create(c);
    ASSERT_TRUE(e.ok()) << e.status();
    residents.push_back(std::make_unique<execmem::Executor>(std::move(*e)));
    resident_blocks.push_back(std::make_unique<Owned>());
    Owned* owned = resident_blocks.back().get();
    ASSERT_TRUE(residents.back()
                    ->AddSpillHook("resident-spill", 0,
                                   [owned](size_t bytes) { return owned->Spill(bytes); })
                    .ok());
  }

  std::vector<std::thread> threads;
  for (int i = 0; i < kResidents; ++i) {
    threads.emplace_back([&, i] {
      std::minstd_rand rng(1000 + i);
      execmem::ExecutorScope scope(*residents[i]);
      Owned& owned = *resident_blocks[i];
      owned.owner = std::this_thread::get_id();
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        if (!Step(rng, owned, mailbox, 2000, true, counts)) {
          counts.ooms.fetch_add(1, std::memory_order_relaxed);
          Shed(owned);
        }
        if (++n % 4096 == 0) {
          const execmem_executor_stats_t s = residents[i]->Stats();
          EXPECT_LE(s.footprint, s.max + s.overhead) << s.name;
        }
      }
      owned.FreeAll();
    });
  }
  for (int j = 0; j < kChurners; ++j) {
    threads.emplace_back([&, j] {
      std::minstd_rand rng(2000 + j);
      for (uint64_t round = 0; !stop.load(std::memory_order_relaxed); ++round) {
        execmem::ExecutorConfig c;
        c.name = "churn-" + std::to_string(j) + "-" + std::to_string(round);
        c.initial = "1m";
        c.max = "12m";
        c.overhead = "25%";
        auto e = execmem::Executor::Create(c);
        if (!e.ok()) {
          counts.create_failures.fetch_add(1, std::memory_order_relaxed);
          std::this_thread::yield();
          continue;
        }
        // The hook keeps its blocks alive by itself: arbitration may still
        // call it from another thread while (or after) the round ends.
        auto owned = std::make_shared<Owned>();
        owned->owner = std::this_thread::get_id();
        EXPECT_TRUE(e->AddSpillHook("churn-spill", 0, [owned](size_t bytes) {
                       return owned->Spill(bytes);
                     }).ok());
        // Odd rounds hand blocks to other threads, which may free them after
        // the executor is gone; even rounds must end at exactly zero.
        const bool shared_round = round % 2 == 1;
        {
          execmem::ExecutorScope scope(*e);
          const int steps = 200 + static_cast<int>(rng() % 800);
          for (int s = 0; s < steps && !stop.load(std::memory_order_relaxed); ++s) {
            if (!Step(rng, *owned, mailbox, 400, shared_round, counts)) {
              counts.ooms.fetch_add(1, std::memory_order_relaxed);
              Shed(*owned);
            }
          }
          owned->FreeAll();
          if (!shared_round) {
            execmem_trim();
            const execmem_executor_stats_t s = e->Stats();
            if (s.used != 0 || s.footprint != 0 || s.allocations != s.frees) {
              counts.private_rounds_nonzero.fetch_add(1, std::memory_order_relaxed);
              ADD_FAILURE() << s.name << ": used " << s.used << " footprint " << s.footprint
                            << " allocations " << s.allocations << " frees " << s.frees;
            }
          }
        }
        const execmem::Status st = e->Destroy();
        if (!st.ok()) {
          counts.destroy_failures.fetch_add(1, std::memory_order_relaxed);
          ADD_FAILURE() << st;
        }
        counts.rounds.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }

  // Meanwhile: stats of every executor, read while they come and go.
  const auto deadline = std::chrono::steady_clock::now() + kRunFor;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string json = execmem::StatsJson();
    EXPECT_NE(json.find("resident-0"), std::string::npos);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop.store(true);
  for (std::thread& t : threads) t.join();
  mailbox.FreeAll();

  EXPECT_EQ(g_corrupt.load(), 0u) << "blocks were overwritten: handed out twice?";
  EXPECT_GT(counts.ops.load(), 2000u);
  EXPECT_GE(counts.rounds.load(), 4u);
  EXPECT_EQ(counts.destroy_failures.load(), 0u);
  EXPECT_EQ(counts.private_rounds_nonzero.load(), 0u);

  for (auto& e : residents) {
    const execmem_executor_stats_t s = e->Stats();
    SCOPED_TRACE(s.name);
    EXPECT_EQ(s.used, 0u);
    EXPECT_EQ(s.footprint, 0u);
    EXPECT_EQ(s.overhead_in_use, 0u);
    EXPECT_GT(s.allocations, 0u);
    EXPECT_EQ(s.allocations, s.frees);
    EXPECT_LE(s.peak_footprint, s.max + s.overhead);
    ASSERT_TRUE(e->Destroy().ok());
  }
  residents.clear();
  execmem_trim();
  const execmem_pool_stats_t end = PoolStats();
  EXPECT_EQ(end.reserved, start.reserved);
  EXPECT_EQ(end.granted, start.granted);
  EXPECT_EQ(end.held - end.cached, start.held - start.cached) << "spans held outside the pool";
  EXPECT_TRUE(execmem::internal::SetPoolCapacity(0).ok());
  std::printf(
      "stress: %llu ops, %llu allocations, %llu out-of-memory, %llu executor rounds, "
      "%llu creations refused, %llu spill hook calls (%llu from other threads)\n",
      static_cast<unsigned long long>(counts.ops.load()),
      static_cast<unsigned long long>(counts.allocs.load()),
      static_cast<unsigned long long>(counts.ooms.load()),
      static_cast<unsigned long long>(counts.rounds.load()),
      static_cast<unsigned long long>(counts.create_failures.load()),
      static_cast<unsigned long long>(g_hook_calls.load()),
      static_cast<unsigned long long>(g_foreign_hook_calls.load()));
  // The pool is tight on purpose: the run must have needed the hooks.
  EXPECT_GT(g_hook_calls.load(), 0u);
}

// Threads bind to an executor and unbind in a tight loop while this thread
// keeps trying to destroy it: destroy succeeds only when no thread is bound
// (EBUSY otherwise), and nothing is lost either way. A binder binds only under
// a shared lock, while the executor is known to exist; once bound, the
// executor cannot be destroyed under it, so the unbind is safe.
TEST(StressTest, DestroyRacesWithBindingAndUnbinding) {
  execmem_trim();
  const execmem_pool_stats_t start = PoolStats();
  const int kRounds = kSanitized ? 30 : 150;
  std::atomic<uint64_t> busy{0}, bound_ok{0};
  for (int round = 0; round < kRounds; ++round) {
    execmem::ExecutorConfig c;
    c.name = "contended";
    c.initial = "1m";
    c.max = "16m";
    c.overhead = "1m";
    auto created = execmem::Executor::Create(c);
    ASSERT_TRUE(created.ok()) << created.status();
    execmem_executor_t* e = created->get();
    std::shared_mutex exists;  // shared: may bind; exclusive: may destroy
    bool destroyed = false;
    std::atomic<int> binds_this_round{0};
    std::vector<std::thread> binders;
    for (int t = 0; t < 2; ++t) {
      binders.emplace_back([&] {
        for (;;) {
          execmem_executor_t* prev;
          {
            std::shared_lock<std::shared_mutex> lock(exists);
            if (destroyed) return;
            prev = execmem_bind(e);
          }
          if (execmem_current_executor() == e) {
            binds_this_round.fetch_add(1);
            for (int k = 0; k < 8; ++k) {
              void* p = execmem_malloc(100 + (bound_ok.fetch_add(1) % 5000));
              if (p != nullptr) execmem_free(p);
              void* q = execmem_malloc(300 * kKiB);
              if (q != nullptr) execmem_free(q);
            }
          }
          execmem_bind(prev);
          std::this_thread::yield();
        }
      });
    }
    // Let the binders get going first, so that destroy meets them mid-flight.
    while (binds_this_round.load() < 20) std::this_thread::yield();
    for (int attempt = 0;; ++attempt) {
      std::this_thread::sleep_for(std::chrono::microseconds(20 * (attempt % 4)));
      std::unique_lock<std::shared_mutex> lock(exists);
      const execmem::Status st = created->Destroy();
      if (st.ok()) {
        destroyed = true;
        break;
      }
      if (st.code() != EBUSY) {
        ADD_FAILURE() << st;
        destroyed = true;  // stop the binders; the handle destroys it later
        break;
      }
      busy.fetch_add(1);
    }
    for (std::thread& t : binders) t.join();
  }
  execmem_trim();
  const execmem_pool_stats_t end = PoolStats();
  EXPECT_EQ(end.reserved, start.reserved);
  EXPECT_EQ(end.granted, start.granted);
  EXPECT_EQ(end.held - end.cached, start.held - start.cached) << "spans held outside the pool";
  EXPECT_GE(bound_ok.load(), 20u * kRounds);
  std::printf("destroy race: %llu refused while bound, %llu bound allocations\n",
              static_cast<unsigned long long>(busy.load()),
              static_cast<unsigned long long>(bound_ok.load()));
}

}  // namespace
