// Thread caches (allocator/heap*.h, large.*) through the C API: LIFO reuse,
// frees from other threads, threads that exit with live blocks, large and
// huge blocks, calloc, realloc, running out of pool.
//
// Accounting is checked on the default executor. execmem_executor_stats()
// first syncs the calling thread's cache (and takes back what other threads
// freed into it), so after a sync `used` is exact for every block allocated
// by this thread or by threads that have exited. Each test compares against
// what it saw at its start.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "cache/size_class.h"
#include "execmem.h"
#include "platform/os.h"
#include "pool/page.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace {

using execmem::test_support::kSanitized;

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * kKiB;
constexpr uintptr_t kSpanMask = ~uintptr_t{64 * kKiB - 1};

execmem_executor_stats_t Stats() {
  execmem_executor_stats_t s;
  EXPECT_EQ(execmem_executor_stats(execmem_default_executor(), &s), 0);
  return s;
}

using execmem::test_support::PoolStats;

// A block that knows its size and checks its contents.
struct Tagged {
  void* p;
  size_t size;
};

uint8_t PatternByte(const void* p, size_t i) {
  return static_cast<uint8_t>((reinterpret_cast<uintptr_t>(p) >> 4) * 31 + i * 7);
}

void Fill(const Tagged& b) {
  auto* m = static_cast<uint8_t*>(b.p);
  const size_t n = std::min<size_t>(b.size, 256);
  for (size_t i = 0; i < n; ++i) m[i] = PatternByte(b.p, i);
  for (size_t i = b.size - n; i < b.size; ++i) m[i] = PatternByte(b.p, i);
}

bool Intact(const Tagged& b) {
  const auto* m = static_cast<const uint8_t*>(b.p);
  const size_t n = std::min<size_t>(b.size, 256);
  for (size_t i = 0; i < n; ++i) {
    if (m[i] != PatternByte(b.p, i)) return false;
  }
  for (size_t i = b.size - n; i < b.size; ++i) {
    if (m[i] != PatternByte(b.p, i)) return false;
  }
  return true;
}

Tagged NewTagged(size_t size) {
  Tagged b{execmem_malloc(size), size};
  if (b.p != nullptr) Fill(b);
  return b;
}

// ---- reuse -------------------------------------------------------------------------

TEST(Heap, AFreedSmallBlockIsTheNextOneHandedOut) {
  for (size_t size : {1ul, 8ul, 16ul, 24ul, 48ul, 100ul, 128ul, 1000ul, 4096ul, 20000ul, 100000ul,
                      execmem::kMaxSmallSize}) {
    void* keep = execmem_malloc(size);  // the span stays in use either way
    void* p = execmem_malloc(size);
    ASSERT_NE(p, nullptr);
    execmem_free(p);
    void* q = execmem_malloc(size);
    EXPECT_EQ(q, p) << "size " << size;
    // Any request of the same class gets it too.
    execmem_free(q);
    const size_t cls = execmem::ClassSize(execmem::SizeClassOf(size));
    void* r = execmem_malloc(cls);
    EXPECT_EQ(r, p) << "size " << size << " class " << cls;
    execmem_free(r);
    execmem_free(keep);
  }
}

TEST(Heap, ANewSpanIsResidentOnlyUpToTheSecondBlocksKey) {
  // A block carved onto a span's free list is written (its free key), so
  // carving ahead makes pages resident that no block handed out uses: an
  // idle process's hundreds of spans, one partly used per class and thread,
  // would carry them. Only the first block's pages and the page of the
  // second block's key (which catches an overflow of the first) may be.
  constexpr size_t kOsPage = 4096;
  for (size_t size : {1100ul, 1536ul, 2560ul, 5120ul, 9216ul, 16384ul, 20480ul, 40960ul}) {
    std::thread([size] {
      execmem_trim();  // the pool's free pages decommitted: a new span is not resident
      void* p = execmem_malloc(size);
      ASSERT_NE(p, nullptr);
      const size_t cls = execmem::SizeClassOf(size);
      const uintptr_t start = reinterpret_cast<uintptr_t>(p);
      ASSERT_EQ(start & ~kSpanMask, 0u) << "the first block of a new span, size " << size;
      const uintptr_t second_key_end = start + execmem::ClassSize(cls) + 2 * sizeof(void*);
      const uintptr_t after = (second_key_end + kOsPage - 1) & ~(kOsPage - 1);
      const uintptr_t end = start + execmem::kSizeClasses.span_pages[cls] * 64 * kKiB;
      EXPECT_EQ(execmem::os::ResidentBytesIn(reinterpret_cast<void*>(after), end - after), 0u)
          << "pages past the second block's key of a new span of size " << size
          << " are resident";
      execmem_free(p);
    }).join();
  }
}

TEST(Heap, AFreedLargeBlockIsTheNextOneHandedOut) {
  for (size_t size : {300 * kKiB, 1 * kMiB, 10 * kMiB}) {
    void* p = execmem_malloc(size);
    ASSERT_NE(p, nullptr);
    execmem_free(p);
    void* q = execmem_malloc(size);
    EXPECT_EQ(q, p) << "size " << size;
    execmem_free(q);
  }
}

TEST(Heap, LiveBlocksNeverOverlapAndKeepTheirContents) {
  std::vector<Tagged> blocks;
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    const size_t size = 1 + rng() % (rng() % 16 == 0 ? 64 * kKiB : 512);
    blocks.push_back(NewTagged(size));
    ASSERT_NE(blocks.back().p, nullptr);
  }
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
  for (const Tagged& b : blocks) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(b.p);
    ranges.emplace_back(a, a + execmem_usable_size(b.p));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    ASSERT_LE(ranges[i - 1].second, ranges[i].first) << "blocks overlap";
  }
  for (const Tagged& b : blocks) {
    EXPECT_TRUE(Intact(b));
    execmem_free(b.p);
  }
}

// ---- other threads ---------------------------------------------------------------------

TEST(Heap, BlocksFreedByOtherThreadsAreTakenBackAndReused) {
  const execmem_executor_stats_t start = Stats();
  constexpr size_t kSize = 64;
  const int n = kSanitized ? 5000 : 50000;
  std::vector<Tagged> blocks;
  std::set<uintptr_t> spans;
  for (int i = 0; i < n; ++i) {
    blocks.push_back(NewTagged(kSize));
    ASSERT_NE(blocks.back().p, nullptr);
    spans.insert(reinterpret_cast<uintptr_t>(blocks.back().p) & kSpanMask);
  }
  const execmem_executor_stats_t full = Stats();
  const execmem_pool_stats_t full_pool = PoolStats();
  EXPECT_EQ(full.used, start.used + n * kSize);

  std::atomic<int> corrupt{0};
  std::vector<std::thread> freers;
  for (int t = 0; t < 2; ++t) {
    freers.emplace_back([&, t] {
      for (size_t i = t; i < blocks.size(); i += 2) {
        if (!Intact(blocks[i])) corrupt.fetch_add(1);
        execmem_free(blocks[i].p);
      }
    });
  }
  for (auto& t : freers) t.join();
  EXPECT_EQ(corrupt.load(), 0);
  EXPECT_EQ(Stats().used, start.used) << "remote frees are credited once the owner syncs";

  // The owner allocates again: the memory other threads gave back is reused
  // rather than new spans taken.
  std::vector<void*> again;
  size_t reused = 0;
  for (int i = 0; i < n; ++i) {
    void* p = execmem_malloc(kSize);
    ASSERT_NE(p, nullptr);
    again.push_back(p);
    reused += spans.count(reinterpret_cast<uintptr_t>(p) & kSpanMask);
  }
  // Spans that emptied went back to the pool and may come back as other
  // cached pages (the pool hands out the lowest committed run first): most
  // blocks land in the same spans, and nothing new is committed.
  EXPECT_GE(reused, again.size() * 9 / 10) << "blocks outside the spans the freed blocks came from";
  EXPECT_LE(PoolStats().held, full_pool.held) << "memory given back was reused, not new pages";
  const execmem_executor_stats_t refill = Stats();
  EXPECT_LE(refill.footprint, full.footprint);
  for (void* p : again) execmem_free(p);
  EXPECT_EQ(Stats().used, start.used);
}

// A producer hands blocks of mixed sizes to a consumer through a queue while
// both run; both then exit and the accounts close at zero.
TEST(Heap, ProducerConsumerAcrossThreads) {
  const execmem_executor_stats_t start = Stats();
  const int n = kSanitized ? 20000 : 300000;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Tagged> queue;
  bool done = false;
  std::atomic<int> corrupt{0};
  std::atomic<int> failed{0};
  std::thread producer([&] {
    std::mt19937 rng(42);
    for (int i = 0; i < n; ++i) {
      const size_t size = rng() % 64 == 0 ? 256 * kKiB + rng() % (512 * kKiB) : 1 + rng() % 2048;
      Tagged b = NewTagged(size);
      if (b.p == nullptr) {
        failed.fetch_add(1);
        continue;
      }
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return queue.size() < 4096; });
      queue.push_back(b);
      cv.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_all();
  });
  std::thread consumer([&] {
    for (;;) {
      Tagged b;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return !queue.empty() || done; });
        if (queue.empty()) return;
        b = queue.front();
        queue.pop_front();
        cv.notify_all();
      }
      if (!Intact(b)) corrupt.fetch_add(1);
      execmem_free(b.p);
    }
  });
  producer.join();
  consumer.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(corrupt.load(), 0);
  const execmem_executor_stats_t end = Stats();
  EXPECT_EQ(end.used, start.used);
  EXPECT_EQ(end.footprint, start.footprint) << "the exited threads' spans went back";
}

// Threads allocate and exit with their blocks alive; the blocks stay valid and
// other threads free them later (into the orphaned spans).
TEST(Heap, BlocksOutliveTheThreadThatAllocatedThem) {
  const execmem_executor_stats_t start = Stats();
  constexpr int kThreads = 4;
  const int per_thread = kSanitized ? 2000 : 20000;
  std::vector<std::vector<Tagged>> left(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<Tagged> mine;
      for (int i = 0; i < per_thread; ++i) {
        const size_t size = rng() % 100 == 0 ? 300 * kKiB : 1 + rng() % 1500;
        mine.push_back(NewTagged(size));
      }
      // Free half here (some spans empty out before the exit), keep the rest.
      for (size_t i = 0; i < mine.size(); ++i) {
        if (i % 2 == 0) {
          execmem_free(mine[i].p);
        } else {
          left[t].push_back(mine[i]);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const execmem_executor_stats_t orphaned = Stats();
  uint64_t live = 0;
  for (const auto& v : left) {
    for (const Tagged& b : v) {
      ASSERT_NE(b.p, nullptr);
      live += execmem_usable_size(b.p);
      EXPECT_TRUE(execmem_owns(b.p));
    }
  }
  EXPECT_EQ(orphaned.used, start.used + live) << "an exiting thread reports what it left";

  // Two threads free them, each the other's share of every dead thread's blocks.
  std::atomic<int> corrupt{0};
  std::vector<std::thread> freers;
  for (int f = 0; f < 2; ++f) {
    freers.emplace_back([&, f] {
      for (const auto& v : left) {
        for (size_t i = f; i < v.size(); i += 2) {
          if (!Intact(v[i])) corrupt.fetch_add(1);
          execmem_free(v[i].p);
        }
      }
    });
  }
  for (auto& t : freers) t.join();
  EXPECT_EQ(corrupt.load(), 0);
  const execmem_executor_stats_t end = Stats();
  EXPECT_EQ(end.used, start.used);
  EXPECT_EQ(end.footprint, start.footprint) << "orphaned spans went back once empty";
}

// A new thread of the same executor reuses spans an exited thread left
// half-full instead of taking fresh ones.
TEST(Heap, SpansLeftByAnExitedThreadAreReusedByTheNextOne) {
  const execmem_executor_stats_t start = Stats();
  constexpr size_t kSize = 96;
  constexpr int kBlocks = 4096;
  std::vector<void*> kept;
  std::set<uintptr_t> spans;
  std::thread([&] {
    std::vector<void*> all;
    for (int i = 0; i < kBlocks; ++i) all.push_back(execmem_malloc(kSize));
    for (int i = 0; i < kBlocks; ++i) {
      if (i % 4 == 0) {
        kept.push_back(all[i]);
        spans.insert(reinterpret_cast<uintptr_t>(all[i]) & kSpanMask);
      } else {
        execmem_free(all[i]);
      }
    }
  }).join();
  const execmem_executor_stats_t orphaned = Stats();
  size_t in_old_spans = 0;
  std::vector<void*> fresh;
  std::thread([&] {
    for (int i = 0; i < kBlocks / 2; ++i) {
      void* p = execmem_malloc(kSize);
      fresh.push_back(p);
      in_old_spans += spans.count(reinterpret_cast<uintptr_t>(p) & kSpanMask);
    }
  }).join();
  EXPECT_GT(in_old_spans, fresh.size() / 2) << "orphaned spans were not adopted";
  const execmem_executor_stats_t both = Stats();
  EXPECT_LE(both.footprint, orphaned.footprint + 64 * kKiB);
  for (void* p : kept) execmem_free(p);
  for (void* p : fresh) execmem_free(p);
  const execmem_executor_stats_t end = Stats();
  EXPECT_EQ(end.used, start.used);
  EXPECT_EQ(end.footprint, start.footprint);
}

// ---- large and huge ------------------------------------------------------------------

TEST(Heap, LargeAndHugeBlocksAreUsableAndAccountedExactly) {
  // Empty the thread's cache of large spans first: a cached span of a
  // matching class would serve a request without growing the footprint.
  execmem_trim();
  const execmem_executor_stats_t start = Stats();
  const execmem_pool_stats_t pool_start = PoolStats();
  for (size_t size : {256 * kKiB + 1, 300 * kKiB, 1 * kMiB, 10 * kMiB, 63 * kMiB, 100 * kMiB,
                      (kSanitized ? 200 : 700) * kMiB}) {
    char* p = static_cast<char*>(execmem_malloc(size));
    ASSERT_NE(p, nullptr) << size;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
    const size_t usable = execmem_usable_size(p);
    EXPECT_GE(usable, size);
    EXPECT_LE(usable, size + 64 * kKiB);
    EXPECT_TRUE(execmem_owns(p));
    for (size_t off = 0; off < usable; off += 4096) p[off] = static_cast<char>(off >> 12);
    p[usable - 1] = 'z';
    for (size_t off = 0; off < usable; off += 4096) {
      ASSERT_EQ(p[off], static_cast<char>(off >> 12)) << "size " << size << " offset " << off;
    }
    const execmem_executor_stats_t mid = Stats();
    EXPECT_EQ(mid.used, start.used + usable) << "size " << size;
    EXPECT_GE(mid.footprint, start.footprint + usable);
    execmem_free(p);
    const execmem_executor_stats_t after = Stats();
    EXPECT_EQ(after.used, start.used) << "size " << size;
    EXPECT_FALSE(execmem_owns(p));
  }
  execmem_trim();  // freed large spans stay in the thread's cache (and footprint) until trimmed
  EXPECT_EQ(Stats().footprint, start.footprint);
  const execmem_pool_stats_t pool_end = PoolStats();
  EXPECT_EQ(pool_end.held - pool_end.cached, pool_start.held - pool_start.cached)
      << "every span and mapping went back to the pool";
  EXPECT_LE(pool_end.mapped, pool_start.mapped + 2 * execmem::kArenaSize)
      << "huge mappings were unmapped";
}

TEST(Heap, AFreedHugeBlocksMappingServesTheNextUnchargedAndCallocReadsZero) {
  // The pool keeps a freed huge block's mapping for the next huge block
  // (docs/large-blocks.md, ninth step): charged to no executor while kept
  // (counted as the pool's cached bytes), charged again exactly when it
  // serves a block, zeroed for calloc, and given back by a trim.
  execmem_trim();
  const execmem_executor_stats_t start = Stats();
  const execmem_pool_stats_t pool_start = PoolStats();
  char* p = static_cast<char*>(execmem_malloc(100 * kMiB));
  ASSERT_NE(p, nullptr);
  const size_t usable = execmem_usable_size(p);
  memset(p, 0xab, usable);
  const uint64_t charged = Stats().footprint - start.footprint;
  EXPECT_GE(charged, usable);
  execmem_free(p);
  EXPECT_EQ(Stats().footprint, start.footprint) << "a kept mapping is charged to no executor";
  EXPECT_EQ(Stats().used, start.used);
  const execmem_pool_stats_t kept = PoolStats();
  EXPECT_EQ(kept.held - kept.cached, pool_start.held - pool_start.cached);
  EXPECT_GE(kept.cached, pool_start.cached + usable) << "kept, and counted as cached";
  char* q = static_cast<char*>(execmem_calloc(1, 90 * kMiB));
  ASSERT_EQ(q, p) << "the kept mapping serves the next huge block";
  for (size_t off = 0; off < 90 * kMiB; off += 4096) ASSERT_EQ(q[off], 0) << off;
  ASSERT_EQ(q[90 * kMiB - 1], 0);
  EXPECT_EQ(Stats().used, start.used + execmem_usable_size(q));
  EXPECT_GE(Stats().footprint, start.footprint + execmem_usable_size(q));
  EXPECT_LT(Stats().footprint, start.footprint + charged);
  execmem_free(q);
  EXPECT_EQ(Stats().footprint, start.footprint);
  execmem_trim();
  const execmem_pool_stats_t trimmed = PoolStats();
  EXPECT_EQ(trimmed.cached, 0u) << "a trim gives the kept mapping back";
  EXPECT_LE(trimmed.held + usable, kept.held);
}

TEST(Heap, TrimReturnsCachedMemoryToTheOs) {
  std::vector<void*> blocks;
  for (int i = 0; i < 2000; ++i) blocks.push_back(execmem_malloc(1000));
  void* big = execmem_malloc(8 * kMiB);
  for (void* p : blocks) execmem_free(p);
  execmem_free(big);
  const execmem_pool_stats_t before = PoolStats();
  execmem_trim();
  const execmem_pool_stats_t after = PoolStats();
  EXPECT_EQ(after.cached, 0u);
  EXPECT_GE(after.returned_to_os, before.returned_to_os + 8 * kMiB);
  EXPECT_LE(after.held, before.held - 8 * kMiB);
}

// ---- calloc ---------------------------------------------------------------------------

TEST(Heap, CallocZeroesMemoryThatWasDirty) {
  for (size_t size : {16ul, 200ul, 4000ul, 100000ul, 300 * kKiB, 3 * kMiB}) {
    // Dirty a batch of blocks of this size and free them, so calloc reuses them.
    std::vector<void*> dirty;
    for (int i = 0; i < 8; ++i) {
      void* p = execmem_malloc(size);
      ASSERT_NE(p, nullptr);
      memset(p, 0xee, execmem_usable_size(p));
      dirty.push_back(p);
    }
    for (void* p : dirty) execmem_free(p);
    bool reused = false;
    for (int i = 0; i < 8; ++i) {
      auto* p = static_cast<unsigned char*>(execmem_calloc(1, size));
      ASSERT_NE(p, nullptr);
      reused |= std::find(dirty.begin(), dirty.end(), p) != dirty.end();
      for (size_t j = 0; j < size; ++j) ASSERT_EQ(p[j], 0) << "size " << size << " byte " << j;
      dirty[i] = p;
    }
    EXPECT_TRUE(reused) << "size " << size << ": the test did not exercise dirty memory";
    for (void* p : dirty) execmem_free(p);
  }
  // count * size, neither a multiple of the other's class.
  auto* q = static_cast<unsigned char*>(execmem_calloc(37, 113));
  ASSERT_NE(q, nullptr);
  for (size_t j = 0; j < 37 * 113; ++j) ASSERT_EQ(q[j], 0);
  execmem_free(q);
}

// ---- realloc ----------------------------------------------------------------------------

TEST(Heap, ReallocKeepsContentsAcrossEveryKindOfMove) {
  const size_t steps[] = {1,          10,         100,      1000,      30000,
                          256 * kKiB, 300 * kKiB, 5 * kMiB, 70 * kMiB, 2 * kMiB,
                          200 * kKiB, 100,        8,        3 * kMiB,  17};
  size_t old = 0;
  unsigned char* p = nullptr;
  for (size_t size : steps) {
    auto* q = static_cast<unsigned char*>(execmem_realloc(p, size));
    ASSERT_NE(q, nullptr) << size;
    EXPECT_GE(execmem_usable_size(q), size);
    const size_t kept = std::min(old, size);
    for (size_t i = 0; i < kept; ++i) {
      ASSERT_EQ(q[i], static_cast<unsigned char>(i * 13 + 1)) << "from " << old << " to " << size;
    }
    for (size_t i = kept; i < size; ++i) q[i] = static_cast<unsigned char>(i * 13 + 1);
    p = q;
    old = size;
  }
  execmem_free(p);
}

TEST(Heap, ReallocStaysInPlaceWithinTheClassAndTheSpan) {
  // Within a small class, either way.
  void* p = execmem_malloc(100);
  const size_t cls = execmem_usable_size(p);
  EXPECT_EQ(execmem_realloc(p, cls), p);
  EXPECT_EQ(execmem_realloc(p, cls - 7), p);
  EXPECT_EQ(execmem_realloc(p, cls / 2 + 1), p);
  execmem_free(p);

  // A large block grows into the rest of its span: 300 KiB takes a 320 KiB span.
  char* l = static_cast<char*>(execmem_malloc(300 * kKiB));
  memset(l, 3, 300 * kKiB);
  EXPECT_EQ(execmem_realloc(l, 316 * kKiB), l);
  EXPECT_GE(execmem_usable_size(l), 316 * kKiB);
  EXPECT_EQ(l[300 * kKiB - 1], 3);
  // And shrinks in place while it still fills half of it.
  EXPECT_EQ(execmem_realloc(l, 260 * kKiB), l);
  EXPECT_EQ(execmem_usable_size(l), 260 * kKiB);
  execmem_free(l);

  // A block that moved to grow gets room to grow again without moving.
  void* g = execmem_malloc(1 * kMiB);
  void* g2 = execmem_realloc(g, 1 * kMiB + 4096);
  ASSERT_NE(g2, nullptr);
  EXPECT_EQ(execmem_realloc(g2, 1 * kMiB + 200 * kKiB), g2);
  execmem_free(g2);

  // A huge block shrinks in place by less than half.
  void* h = execmem_malloc(100 * kMiB);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(execmem_realloc(h, 80 * kMiB), h);
  execmem_free(h);
}

TEST(Heap, AGrowingBufferGrowsInPlaceOnceItLeavesTheSmallClasses) {
  // A small block of 4 KiB or more that grows becomes a large block with
  // headroom (one move), then grows in place across the small classes'
  // sizes, within its 64 KiB page.
  char* p = static_cast<char*>(execmem_malloc(4096));
  ASSERT_NE(p, nullptr);
  memset(p, 5, 4096);
  char* q = static_cast<char*>(execmem_realloc(p, 8192));
  ASSERT_NE(q, nullptr);
  for (size_t size = 16 * kKiB; size <= 64 * kKiB; size *= 2) {
    EXPECT_EQ(execmem_realloc(q, size), q) << "grows in place to " << size;
    EXPECT_GE(execmem_usable_size(q), size);
  }
  for (size_t i = 0; i < 4096; ++i) ASSERT_EQ(q[i], 5) << "byte " << i;
  // A shrink back to a small size still moves it to a small class.
  char* s = static_cast<char*>(execmem_realloc(q, 1000));
  ASSERT_NE(s, nullptr);
  EXPECT_LT(execmem_usable_size(s), 4096u);
  EXPECT_EQ(s[999], 5);
  execmem_free(s);
}

TEST(Heap, ABufferBuiltByReallocGrowsInTheSpanTheLastOneLeft) {
  // A buffer grown from 4 KiB to 1 MiB and freed leaves its span in the
  // thread's large cache; the next buffer that grows out of the small classes
  // takes that span (the shortest cached span that holds it) and grows to
  // 1 MiB in place, never claiming pages from the pool.
  execmem_trim();  // no cached span of another test's
  const execmem_executor_stats_t start = Stats();
  char* a = static_cast<char*>(execmem_malloc(4096));
  ASSERT_NE(a, nullptr);
  for (size_t size = 8 * kKiB; size <= 1 * kMiB; size *= 2) {
    a = static_cast<char*>(execmem_realloc(a, size));
    ASSERT_NE(a, nullptr);
  }
  execmem_free(a);

  char* b = static_cast<char*>(execmem_malloc(4096));
  ASSERT_NE(b, nullptr);
  memset(b, 7, 4096);
  char* q = static_cast<char*>(execmem_realloc(b, 8 * kKiB));
  EXPECT_EQ(q, a) << "the promoted block did not take the cached span";
  for (size_t size = 16 * kKiB; size <= 1 * kMiB; size *= 2) {
    EXPECT_EQ(execmem_realloc(q, size), q) << "grows in place to " << size;
    q[size - 1] = 1;
  }
  for (size_t i = 0; i < 4096; ++i) ASSERT_EQ(q[i], 7) << "byte " << i;
  // The resizes are reported through the thread's pending deltas: exact
  // after a sync, and given back by the free.
  EXPECT_EQ(Stats().used - start.used, execmem_usable_size(q));
  execmem_free(q);
  EXPECT_EQ(Stats().used, start.used);
}

TEST(Heap, ALargeBlockGrowsInItsSpanOnlyUnderItsExecutorsMax) {
  // realloc grows a large block of the thread's executor within its span
  // inline (ResizeLargeInSpan, cache/heap-inl.h); the used rule still
  // holds exactly, and a block of another executor is charged to its own.
  const execmem_executor_options_t o = {"grow-in-span", "4m", "16m", "4m", 0};
  execmem_executor_t* e = nullptr;
  ASSERT_EQ(execmem_executor_create(&o, &e), 0) << execmem_last_error();
  execmem_executor_t* prev = execmem_bind(e);
  auto used = [e] { return execmem::test_support::StatsOf(e).used; };
  // 1 MiB + 4 KiB takes a span of 18 pages (1152 KiB, a large class below
  // 2 MiB): room to grow by 124 KiB.
  const size_t a_size = 1 * kMiB + 4 * kKiB;
  char* a = static_cast<char*>(execmem_malloc(a_size));
  ASSERT_NE(a, nullptr);
  memset(a, 9, a_size);
  EXPECT_EQ(execmem_realloc(a, a_size + 4 * kKiB), a) << "grows within its span";
  EXPECT_EQ(used(), a_size + 4 * kKiB);
  // Another block leaves 100 KiB under max: a growth of 116 KiB within the
  // span would pass it, so realloc must neither grow in place nor move.
  const size_t b_size = 16 * kMiB - 100 * kKiB - (a_size + 4 * kKiB);
  char* b = static_cast<char*>(execmem_malloc(b_size));
  ASSERT_NE(b, nullptr) << execmem_last_error();
  ASSERT_EQ(used(), 16 * kMiB - 100 * kKiB);
  errno = 0;
  EXPECT_EQ(execmem_realloc(a, a_size + 120 * kKiB), nullptr) << "grew past max";
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(execmem_usable_size(a), a_size + 4 * kKiB);
  EXPECT_EQ(used(), 16 * kMiB - 100 * kKiB);
  // Within max it grows in place, to the last byte of its span.
  EXPECT_EQ(execmem_realloc(a, a_size + 96 * kKiB), a);
  EXPECT_EQ(used(), 16 * kMiB - 8 * kKiB);
  execmem_free(b);
  EXPECT_EQ(execmem_realloc(a, a_size + 124 * kKiB), a);
  EXPECT_EQ(used(), a_size + 124 * kKiB);
  // From a thread bound to another executor: still in place, charged to e.
  const execmem_executor_stats_t before = Stats();
  execmem_bind(prev);
  EXPECT_EQ(execmem_realloc(a, a_size + 4 * kKiB), a);
  EXPECT_EQ(execmem_realloc(a, a_size + 100 * kKiB), a);
  EXPECT_EQ(Stats().used, before.used) << "charged to the thread's executor, not the block's";
  EXPECT_EQ(used(), a_size + 100 * kKiB);
  for (size_t i = 0; i < a_size; i += 4096) ASSERT_EQ(a[i], 9) << "byte " << i;
  ASSERT_EQ(a[a_size - 1], 9);
  execmem_free(a);
  EXPECT_EQ(used(), 0u);
  EXPECT_EQ(execmem_executor_destroy(e), 0);
}

TEST(Heap, ASpanAPlainBlockLeftServesOnlyItsOwnLength) {
  // A 1 MiB block that never grew (a pymalloc arena, a NumPy buffer) leaves
  // its 16-page span in the thread's large cache. A buffer that grows out of
  // the small classes must not take it: if it stopped growing at 8 KiB it
  // would keep 1 MiB of resident pages while it lives. A request of the
  // span's own length still does.
  execmem_trim();  // no cached span of another test's
  void* arena = execmem_aligned_alloc(16 * kKiB, 1 * kMiB);
  ASSERT_NE(arena, nullptr);
  memset(arena, 1, 1 * kMiB);  // resident, as a used arena is
  execmem_free(arena);

  void* b = execmem_malloc(4096);
  ASSERT_NE(b, nullptr);
  void* q = execmem_realloc(b, 8 * kKiB);
  ASSERT_NE(q, nullptr);
  EXPECT_NE(q, arena) << "a promoted 8 KiB buffer took the span a 1 MiB block left";
  void* same = execmem_malloc(1 * kMiB);
  EXPECT_EQ(same, arena) << "a block of the cached span's length did not take it";
  execmem_free(same);
  execmem_free(q);
}

// A large span reused for a shorter block than it held keeps none of the
// pages past the new block's end resident: they were written by the block
// before, and would stay resident while the new one lives (the 64 KiB page's
// rounding; a fresh span or glibc's mmap'd block never has them). Both ways a
// span is reused: the thread's large cache and the pool's freed runs.
TEST(Heap, AReusedLargeSpanKeepsNoResidentPagePastTheBlock) {
  execmem_trim();  // no cached span of another test's
  const size_t held = 704 * kKiB;   // an 11-page span, all of it the block
  const size_t shorter = 660 * kKiB;  // an 11-page span too
  char* a = static_cast<char*>(execmem_malloc(held));
  ASSERT_NE(a, nullptr);
  memset(a, 1, held);
  execmem_free(a);  // into the thread's large cache
  char* b = static_cast<char*>(execmem_malloc(shorter));
  ASSERT_EQ(b, a) << "the cached span of the same length serves the block";
  EXPECT_EQ(execmem::os::ResidentBytesIn(b + shorter, held - shorter), 0u)
      << "the pages the longer block left past the shorter one's end stay resident";
  execmem_free(b);

  // The pool's freed run: a 4 MiB block (no thread caches a span that long)
  // written and freed leaves 64 dirty pages, from which the next span comes.
  execmem_trim();
  const size_t big = 4 * kMiB;
  char* c = static_cast<char*>(execmem_malloc(big));
  ASSERT_NE(c, nullptr);
  memset(c, 1, big);
  execmem_free(c);
  char* d = static_cast<char*>(execmem_malloc(shorter));
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(d >= c && d + held <= c + big) << "the span came from the freed run";
  EXPECT_EQ(execmem::os::ResidentBytesIn(d + shorter, held - shorter), 0u)
      << "the pages of the freed run past the block's end stay resident";
  execmem_free(d);

  // A plain block shrunk by realloc in its span gives the pages past its new
  // end back too (as glibc's mremap of an mmap'd block does).
  char* e = static_cast<char*>(execmem_malloc(held));
  ASSERT_NE(e, nullptr);
  memset(e, 1, held);
  ASSERT_EQ(execmem_realloc(e, shorter), e) << "shrinks in its span";
  EXPECT_EQ(execmem::os::ResidentBytesIn(e + shorter, held - shorter), 0u)
      << "the pages past the shrunk block's end stay resident";
  execmem_free(e);
}

TEST(Heap, ASpanWhoseBlockGrewInPlaceServesAGrowingBlock) {
  // A block that grew in its span by realloc (the shortcut of
  // ResizeLargeInSpan, not only LargeResizeInPlace) marks the span as a
  // growing block's (Page::grows): once freed, a buffer that grows out of the
  // small classes takes it and grows in place there.
  execmem_trim();  // no cached span of another test's
  const size_t size = 1 * kMiB + 4 * kKiB;  // an 18-page span: room to grow in it
  void* a = execmem_malloc(size);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(execmem_realloc(a, size + 4 * kKiB), a) << "grows within its span";
  execmem_free(a);

  void* b = execmem_malloc(4096);
  ASSERT_NE(b, nullptr);
  void* q = execmem_realloc(b, 8 * kKiB);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q, a) << "a promoted buffer did not take the span a block that grew left";
  execmem_free(q);
}

// A request that is a multiple of 16 may hold objects aligned to 16
// (size_class.h): realloc must not leave it in an 8-aligned block of one of
// the classes between 64 and 128 that are not multiples of 16.
TEST(Heap, ReallocToAMultipleOf16IsSixteenByteAligned) {
  std::vector<void*> others;
  void* p = nullptr;
  while (p == nullptr && others.size() < 4) {
    void* b = execmem_malloc(100);  // class 104: every other block is 8 mod 16
    if (reinterpret_cast<uintptr_t>(b) % 16 == 8) {
      p = b;
    } else {
      others.push_back(b);
    }
  }
  ASSERT_NE(p, nullptr);
  void* q = execmem_realloc(p, 96);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(q) % 16, 0u)
      << "realloc of an 8-aligned 104-byte block to 96";
  execmem_free(q);
  for (void* b : others) execmem_free(b);
}

TEST(Heap, ReallocOfNullAllocatesAndAFailedReallocKeepsTheBlock) {
  const execmem_executor_stats_t start = Stats();
  void* p = execmem_realloc(nullptr, 40);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(execmem_usable_size(p), 40u);
  memset(p, 0x42, 40);
  errno = 0;
  EXPECT_EQ(execmem_realloc(p, size_t{1} << 62), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_TRUE(execmem_owns(p));
  for (int i = 0; i < 40; ++i) ASSERT_EQ(static_cast<unsigned char*>(p)[i], 0x42);
  void* big = execmem_realloc(nullptr, 2 * kMiB);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(execmem_realloc(big, SIZE_MAX), nullptr);
  EXPECT_TRUE(execmem_owns(big));
  execmem_free(big);
  execmem_free(p);
  EXPECT_EQ(Stats().used, start.used);
}

// ---- out of pool ---------------------------------------------------------------------

TEST(Heap, AFullPoolFailsAllocationsCleanlyUntilItIsRaised) {
  execmem_trim();
  const execmem_pool_stats_t pool = PoolStats();
  // Room for what is held, reserved and granted, plus a little; a request
  // above the whole capacity cannot fit, whatever grant the default executor
  // still holds.
  const uint64_t small = std::max(pool.held, pool.reserved + pool.granted) + 4 * kMiB;
  const size_t too_big = small + 8 * kMiB;
  ASSERT_EQ(execmem_set_pool_capacity(std::to_string(small).c_str()), 0) << execmem_last_error();
  errno = 0;
  void* p = execmem_malloc(too_big);
  const int err = errno;
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(err, ENOMEM);
  errno = 0;
  EXPECT_EQ(execmem_aligned_alloc(1 << 20, too_big), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  void* out = nullptr;
  EXPECT_EQ(execmem_posix_memalign(&out, 4096, too_big), ENOMEM);
  EXPECT_EQ(out, nullptr);
  // Small blocks still come while there is room.
  void* s = execmem_malloc(100);
  EXPECT_NE(s, nullptr);
  execmem_free(s);
  ASSERT_EQ(execmem_set_pool_capacity(std::to_string(pool.capacity).c_str()), 0)
      << execmem_last_error();
  p = execmem_malloc(too_big);
  EXPECT_NE(p, nullptr);
  execmem_free(p);
}

}  // namespace
