// Pointers execmem did not hand out: freeing (or asking about) one prints
// "execmem: <op>(): pointer 0x... not allocated by execmem" and aborts, whether
// the pointer is foreign, inside a block, inside the allocator's metadata, or
// a block already given back whose memory the allocator no longer uses.
// Double frees of every size print "execmem: free(): double free of 0x...
// (a N-byte block of executor "name")", and sized frees with a size the block
// cannot have been allocated for "... wrong size ..." (cache/check.h).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cache/cache.h"
#include "cache/heap.h"
#include "cache/size_class.h"
#include "cache/span.h"
#include "execmem.h"
#include "execmem.hpp"
#include "gtest/gtest.h"

namespace {

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * kKiB;
constexpr char kNotOurs[] = "not allocated by execmem";

class InvalidPointerDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

char* At(void* p, size_t offset) { return static_cast<char*>(p) + offset; }

// The block size execmem gives a request of `size` bytes.
size_t ClassSizeFor(size_t size) {
  void* p = execmem_malloc(size);
  const size_t n = execmem_usable_size(p);
  execmem_free(p);
  return n;
}

TEST_F(InvalidPointerDeathTest, TheMessageNamesTheOperationAndThePointer) {
  int on_stack = 0;
  EXPECT_DEATH(execmem_free(&on_stack),
               "execmem: free\\(\\): pointer 0x[0-9a-f]+ not allocated by execmem");
}

TEST_F(InvalidPointerDeathTest, FreeOfAStackAddress) {
  char buf[64];
  EXPECT_DEATH(execmem_free(buf + 16), kNotOurs);
}

TEST_F(InvalidPointerDeathTest, FreeOfALibcPointer) {
  void* small = malloc(32);
  void* big = malloc(4 * kMiB);  // glibc mmaps this one
  EXPECT_DEATH(execmem_free(small), kNotOurs);
  EXPECT_DEATH(execmem_free(big), kNotOurs);
  free(small);
  free(big);
}

TEST_F(InvalidPointerDeathTest, AnInteriorPointerIsReportedWithItsBlock) {
  void* p = execmem_malloc(48);
  ASSERT_NE(p, nullptr);
  EXPECT_DEATH(execmem_free(At(p, 8)),
               "^execmem: free\\(\\): pointer 0x[0-9a-f]+ not allocated by execmem \\(it is 8 "
               "bytes into a 48-byte block of executor \"default\"\\)\n$");
  void* big = execmem_malloc(1 * kMiB);
  ASSERT_NE(big, nullptr);
  EXPECT_DEATH(execmem_free(At(big, 100)), "it is 100 bytes into a 1048576-byte block");
  execmem_free(big);
  execmem_free(p);
}

TEST_F(InvalidPointerDeathTest, FreeOfAnInteriorPointerOfASmallBlock) {
  void* p = execmem_malloc(48);  // in this thread's current span: the fast path sees it
  ASSERT_NE(p, nullptr);
  EXPECT_DEATH(execmem_free(At(p, 8)), kNotOurs);
  EXPECT_DEATH(execmem_free(At(p, 1)), kNotOurs);
  // A span that is not current (the slow path), and a block whose class spans
  // two pages, pointed into past its first page.
  std::vector<void*> fill;
  for (int i = 0; i < 3000; ++i) fill.push_back(execmem_malloc(48));
  EXPECT_DEATH(execmem_free(At(fill[0], 16)), kNotOurs);
  std::vector<void*> wide;
  void* past_first_page = nullptr;
  for (int i = 0; i < 11 && past_first_page == nullptr; ++i) {
    wide.push_back(execmem_malloc(11 * kKiB));  // class 11264: two-page spans
    ASSERT_NE(wide.back(), nullptr);
    if (reinterpret_cast<uintptr_t>(wide.back()) % (64 * kKiB) > 64 * kKiB - 11 * kKiB) {
      past_first_page = At(wide.back(), 11 * kKiB - 16);
    }
  }
  ASSERT_NE(past_first_page, nullptr);
  EXPECT_DEATH(execmem_free(past_first_page), kNotOurs);
  for (void* q : fill) execmem_free(q);
  for (void* q : wide) execmem_free(q);
  execmem_free(p);
}

TEST_F(InvalidPointerDeathTest, FreeOfAnInteriorPointerOfALargeBlock) {
  void* p = execmem_malloc(1 * kMiB);
  ASSERT_NE(p, nullptr);
  EXPECT_DEATH(execmem_free(At(p, 16)), kNotOurs);
  EXPECT_DEATH(execmem_free(At(p, 4096)), kNotOurs);
  EXPECT_DEATH(execmem_free(At(p, 512 * kKiB)), kNotOurs);  // a tail page
  void* aligned = execmem_aligned_alloc(1 * kMiB, 600 * kKiB);
  ASSERT_NE(aligned, nullptr);
  EXPECT_DEATH(execmem_free(At(aligned, 64 * kKiB)), kNotOurs);
  execmem_free(aligned);
  execmem_free(p);
}

TEST_F(InvalidPointerDeathTest, FreeOfAnInteriorPointerOfAHugeBlock) {
  void* p = execmem_malloc(80 * kMiB);
  ASSERT_NE(p, nullptr);
  EXPECT_DEATH(execmem_free(At(p, 64)), kNotOurs);
  EXPECT_DEATH(execmem_free(At(p, 70 * kMiB)), kNotOurs);
  EXPECT_DEATH(execmem_free(At(p, -4096)), kNotOurs);  // the mapping's header
  execmem_free(p);
}

// The fast free path takes a huge block's mapping for an arena and reads
// the descriptor an arena would have for the pointer's page: in the mapping's
// header region (cache/large.h: kHugeLead), which sends it to the slow path,
// and that reports the interior pointer, whatever the block holds.
TEST_F(InvalidPointerDeathTest, FreeOfAnInteriorPointerOfAHugeBlockOnTheFastPath) {
  const size_t size = 100 * kMiB;
  void* p = execmem_malloc(size);
  ASSERT_NE(p, nullptr);
  for (const int fill : {0x00, 0xa5, 0xff}) {
    memset(p, fill, 1 * kMiB);
    for (const size_t off : {size_t{4096}, 64 * kMiB + 4096, size - 16}) {
      EXPECT_DEATH(execmem_free(At(p, off)),
                   "^execmem: free\\(\\): pointer 0x[0-9a-f]+ not allocated by execmem \\(it is " +
                       std::to_string(off) + " bytes into a [0-9]+-byte block of executor "
                                             "\"default\"\\)\n$")
          << fill << " + " << off;
    }
  }
  execmem_free(p);
}

// The same with the block's first 512 KiB holding, every 128 bytes, what the
// fast path takes for a span of this thread (its heap as the owner word, a
// bump past the pointer): the place the fast path reads is the mapping's
// header now, never the block, so the pointer is still reported. Before,
// with 256 MiB arenas (4096 descriptors, 512 KiB) and a header region of 128
// KiB (what 64 MiB arenas' 1024 descriptors took), the fast path read these
// bytes for pointers 64 MiB and more into the block, and took the free:
// nothing reported, the block's bytes written as a free list.
TEST_F(InvalidPointerDeathTest, AHugeBlocksBytesAreNeverTakenForADescriptor) {
  const size_t size = 100 * kMiB;
  char* p = static_cast<char*>(execmem_malloc(size));
  ASSERT_NE(p, nullptr);
  for (size_t off = 0; off < 512 * kKiB; off += execmem::kDescriptorSize) {
    auto* fake = reinterpret_cast<execmem::Page*>(p + off);
    fake->fast_owner.store(reinterpret_cast<uintptr_t>(execmem::tls_heap));
    fake->bump = p + size;
    fake->used = 2;
  }
  for (const size_t off : {64 * kMiB + 4096, 64 * kMiB + 512 * kKiB, size - 16}) {
    EXPECT_DEATH(execmem_free(p + off), "it is " + std::to_string(off) + " bytes into a") << off;
  }
  memset(p, 0, 512 * kKiB);
  execmem_free(p);
}

TEST_F(InvalidPointerDeathTest, FreeOfASmallBlockWhoseSpanWentBackToThePool) {
  void* p = execmem_malloc(5000);
  ASSERT_NE(p, nullptr);
  execmem_free(p);
  execmem_trim();  // the empty span goes back to the pool
  EXPECT_DEATH(execmem_free(p), kNotOurs);
}

TEST_F(InvalidPointerDeathTest, FreeOfABlockNeverHandedOut) {
  // A fresh span carves blocks as they are needed: the far end of it has not
  // been handed out yet.
  void* p = execmem_malloc(16);
  ASSERT_NE(p, nullptr);
  void* far = At(p, 16 * 3000);
  EXPECT_FALSE(execmem_owns(far));
  EXPECT_DEATH(execmem_free(far), kNotOurs);
  execmem_free(p);
}

// A block start past its span's `bump` (never carved) of this thread's span,
// freed by another thread: it went onto the span's remote list (classes below
// 512 B) or the freeing thread's foreign list (64 KiB and up) unchecked, and
// was handed out twice (once from the free list, once carved).
TEST_F(InvalidPointerDeathTest, FreeFromAnotherThreadOfABlockNeverHandedOut) {
  for (const size_t size : {size_t{16}, 72 * kKiB}) {
    void* p = execmem_malloc(size);  // the first block of a fresh span of its class
    ASSERT_NE(p, nullptr);
    const size_t block = execmem_usable_size(p);
    ASSERT_GE(execmem::kSizeClasses.capacity[execmem::SizeClassOf(size)], 3u);
    // Past the blocks carved with p (about one OS page of them, at least
    // two), inside the span.
    char* far = At(p, block * (size == 16 ? 3000 : 2));
    // A thread with a heap (foreign lists), and one that never allocated.
    EXPECT_DEATH(std::thread([far, size] {
                   execmem_free(execmem_malloc(size));
                   execmem_free(far);
                 }).join(),
                 kNotOurs)
        << size;
    EXPECT_DEATH(std::thread([far] { execmem_free(far); }).join(), kNotOurs) << size;
    execmem_free(p);
  }
}

// realloc and malloc_usable_size of a block start past its span's `bump`
// (never carved, so never handed out), with a size in the block's class: the
// inline paths (SmallBlockAt) and the general one (ResolveBlock) tested the
// span's `limit`, not `bump`, so realloc returned the pointer and
// malloc_usable_size gave its class's size, from the owner's thread and from
// any other. The span's last block: past `bump` while the span is fresh
// (checked), for a thread's own span (16 B, 72 KiB) and a shared one (1 KiB).
TEST_F(InvalidPointerDeathTest, ReallocAndUsableSizeOfABlockNeverHandedOut) {
  for (const size_t size : {size_t{16}, size_t{1024}, 72 * kKiB}) {
    void* p = execmem_malloc(size);
    ASSERT_NE(p, nullptr);
    const size_t block = execmem_usable_size(p);
    const execmem::Page* pg = execmem::SpanHeadOf(p);
    ASSERT_NE(pg, nullptr);
    char* far = pg->limit - block;
    ASSERT_GE(far, pg->bump) << size << ": the span's last block is carved already";
    const std::string realloc_msg = "realloc\\(\\): pointer 0x[0-9a-f]+ not allocated by execmem";
    const std::string usable_msg =
        "malloc_usable_size\\(\\): pointer 0x[0-9a-f]+ not allocated by execmem";
    // The owner's thread: the inline paths (execmem_realloc is ReallocFast,
    // as the shim's realloc; UsableSizeFast is the shim's
    // malloc_usable_size) and the general one (execmem_usable_size).
    EXPECT_DEATH(execmem_realloc(far, block), realloc_msg) << size;
    EXPECT_DEATH(execmem::UsableSizeFast(far), usable_msg) << size;
    EXPECT_DEATH(execmem_usable_size(far), usable_msg) << size;
    // Another thread, with a heap of the executor and without one.
    EXPECT_DEATH(std::thread([far, size, block] {
                   execmem_free(execmem_malloc(size));
                   execmem_realloc(far, block);
                 }).join(),
                 realloc_msg)
        << size;
    EXPECT_DEATH(std::thread([far, block] { execmem_realloc(far, block); }).join(), realloc_msg)
        << size;
    EXPECT_DEATH(std::thread([far] { execmem::UsableSizeFast(far); }).join(), usable_msg) << size;
    EXPECT_DEATH(std::thread([far] { execmem_usable_size(far); }).join(), usable_msg) << size;
    execmem_free(p);
  }
}

// Interior pointers of another thread's span, one class in 7 and the last:
// reported (the general path's block-start test, ResolveBlock).
TEST_F(InvalidPointerDeathTest, FreeFromAnotherThreadOfAnInteriorPointer) {
  std::vector<size_t> classes;
  for (size_t c = 0; c < execmem::kNumClasses; c += 7) classes.push_back(c);
  if (classes.back() != execmem::kNumClasses - 1) classes.push_back(execmem::kNumClasses - 1);
  for (const size_t c : classes) {
    const size_t size = execmem::kSizeClasses.size[c];
    std::vector<void*> blocks;
    for (int i = 0; i < 3; ++i) blocks.push_back(execmem_malloc(size));
    for (const size_t off : {size_t{8}, size - 8}) {
      char* inside = At(blocks[1], off);
      EXPECT_DEATH(std::thread([inside, size] {
                     execmem_free(execmem_malloc(size));
                     execmem_free(inside);
                   }).join(),
                   "not allocated by execmem \\(it is [0-9]+ bytes into a")
          << size << " + " << off;
    }
    for (void* q : blocks) execmem_free(q);
  }
}

TEST_F(InvalidPointerDeathTest, FreeOfArenaMetadata) {
  void* p = execmem_malloc(64);
  ASSERT_NE(p, nullptr);
  const uintptr_t arena = reinterpret_cast<uintptr_t>(p) & ~((uintptr_t{64} << 20) - 1);
  EXPECT_DEATH(execmem_free(reinterpret_cast<void*>(arena)), kNotOurs);
  EXPECT_DEATH(execmem_free(reinterpret_cast<void*>(arena + 128 * 5)), kNotOurs);
  EXPECT_DEATH(execmem_free(reinterpret_cast<void*>(arena + 64 * kKiB + 16)), kNotOurs);
  execmem_free(p);
}

TEST_F(InvalidPointerDeathTest, FreeFromAThreadThatNeverAllocated) {
  void* p = execmem_malloc(256);
  ASSERT_NE(p, nullptr);
  EXPECT_DEATH(std::thread([p] { execmem_free(At(p, 8)); }).join(), kNotOurs);
  execmem_free(p);
}

TEST_F(InvalidPointerDeathTest, UsableSizeAndReallocOfAForeignPointer) {
  void* foreign = malloc(64);
  EXPECT_DEATH(execmem_usable_size(foreign),
               "malloc_usable_size\\(\\): pointer 0x[0-9a-f]+ not allocated by execmem");
  EXPECT_DEATH(execmem_realloc(foreign, 128), "realloc\\(\\): .*not allocated by execmem");
  void* p = execmem_malloc(300 * kKiB);
  EXPECT_DEATH(execmem_usable_size(At(p, 32)), kNotOurs);
  EXPECT_DEATH(execmem_realloc(At(p, 32), 10), kNotOurs);
  execmem_free(p);
  free(foreign);
}

// ---- double frees ----

constexpr char kDoubleFree[] = "execmem: free\\(\\): double free of 0x[0-9a-f]+";

std::string DoubleFreeOf(size_t block_size, const char* executor = "default") {
  return std::string("^") + kDoubleFree + " \\(a " + std::to_string(block_size) +
         "-byte block of executor \"" + executor + "\"\\)\n$";
}

class DoubleFreeDeathTest : public InvalidPointerDeathTest {};

TEST_F(DoubleFreeDeathTest, Plain) {
  void* p = execmem_malloc(48);
  ASSERT_NE(p, nullptr);
  execmem_free(p);
  EXPECT_DEATH(execmem_free(p), DoubleFreeOf(48));
}

TEST_F(DoubleFreeDeathTest, ThePlainMessageIsOneLineNamingTheExecutor) {
  execmem_executor_options_t o{};
  o.name = "q42";
  o.initial = "0";
  o.max = "64m";
  execmem_executor_t* e = nullptr;
  ASSERT_EQ(execmem_executor_create(&o, &e), 0) << execmem_last_error();
  execmem_executor_t* prev = execmem_bind(e);
  void* p = execmem_malloc(40);
  execmem_free(p);
  EXPECT_DEATH(execmem_free(p), DoubleFreeOf(48, "q42"));
  execmem_bind(prev);
  // Freed again from a thread bound elsewhere: still the span's executor.
  EXPECT_DEATH(execmem_free(p), DoubleFreeOf(48, "q42"));
  EXPECT_EQ(execmem_executor_destroy(e), 0) << execmem_last_error();
}

// realloc of a freed small block is a double free (realloc frees its
// argument), reported as one whether the block would be kept (in its class:
// the inline path) or moved, on the owner's thread or another's. Until
// 2026-12-08 a realloc in the class returned the pointer as live while the
// span's free list held it (the next malloc handed it out a second time).
TEST_F(DoubleFreeDeathTest, ReallocOfAFreedBlock) {
  void* p = execmem_malloc(48);
  ASSERT_NE(p, nullptr);
  execmem_free(p);
  const std::string report =
      "^execmem: realloc\\(\\): double free of 0x[0-9a-f]+ \\(a 48-byte block of executor "
      "\"default\"\\)\n$";
  EXPECT_DEATH(execmem_realloc(p, 40), report);    // kept in its class
  EXPECT_DEATH(execmem_realloc(p, 4000), report);  // moved
  EXPECT_DEATH(std::thread([p] { execmem_realloc(p, 48); }).join(), report);
}

// The free key is a word a live block may hold too: a realloc that finds it
// confirms the block is free before reporting (as free does).
TEST(DoubleFree, AReallocOfALiveBlockHoldingTheKeyIsNotReported) {
  void* p = execmem_malloc(48);
  ASSERT_NE(p, nullptr);
  const auto key = reinterpret_cast<uintptr_t>(execmem::SpanHeadOf(p));
  std::memcpy(static_cast<char*>(p) + sizeof(uintptr_t), &key, sizeof key);
  EXPECT_EQ(execmem_realloc(p, 40), p);
  void* q = execmem_realloc(p, 4000);
  ASSERT_NE(q, nullptr);
  uintptr_t moved;
  std::memcpy(&moved, static_cast<char*>(q) + sizeof(uintptr_t), sizeof moved);
  EXPECT_EQ(moved, key);
  execmem_free(q);
}

TEST_F(DoubleFreeDeathTest, DelayedAfterOtherFreesAndAllocations) {
  void* p = execmem_malloc(48);
  ASSERT_NE(p, nullptr);
  execmem_free(p);
  // Fewer than a span holds (p among them, once): an emptied span other than
  // the current one goes back to the pool, and a free into memory the pool
  // handed out again is reported as a bad pointer, not a double free.
  const size_t n = execmem::kSizeClasses.capacity[execmem::SizeClassOf(48)] / 2;
  std::vector<void*> others;
  for (size_t i = 0; i < n; ++i) others.push_back(execmem_malloc(48));
  for (void* q : others) execmem_free(q);
  void* keep = execmem_malloc(48);  // some block, maybe p: not freed twice yet
  for (int i = 0; i < 100; ++i) execmem_free(execmem_malloc(200));
  execmem_free(keep);
  EXPECT_DEATH(execmem_free(keep), DoubleFreeOf(48));
  EXPECT_DEATH(execmem_free(others[n / 2]), DoubleFreeOf(48));
}

TEST_F(DoubleFreeDeathTest, Interleaved) {
  void* a = execmem_malloc(64);
  void* b = execmem_malloc(64);
  execmem_free(a);
  execmem_free(b);
  EXPECT_DEATH(execmem_free(a), DoubleFreeOf(64));
}

// A block freed, handed out again and freed again is a legitimate free.
TEST(DoubleFree, AFreeOfABlockHandedOutAgainIsNotReported) {
  for (size_t size : {16, 48, 100, 5000, 200000}) {
    void* p = execmem_malloc(size);
    ASSERT_NE(p, nullptr);
    execmem_free(p);
    void* q = execmem_malloc(size);
    EXPECT_EQ(q, p) << size << ": the block freed last is handed out first";
    execmem_free(q);  // no report
    void* r = execmem_malloc(size);
    memset(r, 0, size);
    execmem_free(r);
  }
  // Blocks whose second word the program set to anything at all.
  std::vector<uint64_t*> blocks;
  for (int i = 0; i < 64; ++i) {
    auto* b = static_cast<uint64_t*>(execmem_malloc(32));
    b[0] = b[1] = reinterpret_cast<uintptr_t>(b) ^ static_cast<uint64_t>(i);
    blocks.push_back(b);
  }
  for (uint64_t* b : blocks) execmem_free(b);
}

TEST_F(DoubleFreeDeathTest, OfAMediumBlock) {
  void* p = execmem_malloc(5000);
  void* keep = execmem_malloc(5000);  // the span stays
  execmem_free(p);
  EXPECT_DEATH(execmem_free(p), DoubleFreeOf(ClassSizeFor(5000)));
  execmem_free(keep);
}

TEST_F(DoubleFreeDeathTest, OfALargeBlockInTheThreadsCache) {
  void* p = execmem_malloc(1 * kMiB);
  ASSERT_NE(p, nullptr);
  execmem_free(p);  // kept in this thread's cache of large spans
  EXPECT_DEATH(execmem_free(p), DoubleFreeOf(1 * kMiB));
}

TEST_F(DoubleFreeDeathTest, OfALargeBlockBackInThePool) {
  void* p = execmem_malloc(5 * kMiB);  // too long for the thread's cache
  ASSERT_NE(p, nullptr);
  execmem_free(p);
  EXPECT_DEATH(execmem_free(p), std::string("^") + kDoubleFree + " \\(a 5242880-byte block\\)\n$");
  void* aligned = execmem_aligned_alloc(1 * kMiB, 3 * kMiB);  // starts past its span's first page
  ASSERT_NE(aligned, nullptr);
  execmem_free(aligned);
  EXPECT_DEATH(execmem_free(aligned), kDoubleFree);
}

TEST_F(DoubleFreeDeathTest, OfAHugeBlock) {
  void* p = execmem_malloc(100 * kMiB);
  ASSERT_NE(p, nullptr);
  execmem_free(p);  // unmapped
  EXPECT_DEATH(execmem_free(p), DoubleFreeOf(100 * kMiB));
}

TEST_F(DoubleFreeDeathTest, FromAnotherThread) {
  void* p = execmem_malloc(48);
  void* keep = execmem_malloc(48);
  execmem_free(p);  // on this thread's free list
  EXPECT_DEATH(std::thread([p] { execmem_free(p); }).join(), DoubleFreeOf(48));
  // Freed by another thread (onto this thread's remote list), then here.
  void* q = execmem_malloc(48);
  std::thread([q] { execmem_free(q); }).join();
  EXPECT_DEATH(execmem_free(q), DoubleFreeOf(48));
  execmem_free(keep);
}

TEST_F(DoubleFreeDeathTest, OnTheFreeingThreadsForeignList) {
  // A block of 1 KiB freed by another thread of the executor waits on that
  // thread's foreign list (cache/heap.h) for its next allocation; a second
  // free there is found on the list. (The thread allocates first: a thread
  // that never allocated has no heap, and its frees all go home.)
  void* p = execmem_malloc(1024);
  ASSERT_NE(p, nullptr);
  EXPECT_DEATH(std::thread([p] {
                 void* mine = execmem_malloc(16);
                 execmem_free(p);
                 execmem_free(p);
                 execmem_free(mine);
               }).join(),
               DoubleFreeOf(1024));
  execmem_free(p);
}

TEST_F(DoubleFreeDeathTest, OfABlockOfAThreadThatExited) {
  void* p = nullptr;
  void* keep = nullptr;
  std::thread([&] {
    p = execmem_malloc(48);
    keep = execmem_malloc(48);  // the span outlives the thread: the orphanage takes it
    execmem_free(p);
  }).join();
  EXPECT_DEATH(execmem_free(p), DoubleFreeOf(48));
  execmem_free(keep);
}

TEST_F(DoubleFreeDeathTest, OfABlockCarvedButNeverHandedOut) {
  void* p = execmem_malloc(16);
  // A fresh span carves about one OS page of blocks at a time: the block
  // after p is carved, free, and was never handed out.
  void* next = execmem_malloc(16);
  execmem_free(next);
  EXPECT_DEATH(execmem_free(next), DoubleFreeOf(16));
  execmem_free(p);
}

// ---- sized frees ----

TEST_F(DoubleFreeDeathTest, SizedFreesWithTheWrongSize) {
  void* p = execmem_malloc(48);
  EXPECT_DEATH(execmem_free_sized(p, 100),
               "^execmem: free_sized\\(\\): wrong size 100 for 0x[0-9a-f]+ \\(a 48-byte block "
               "of executor \"default\"\\)\n$");
  EXPECT_DEATH(execmem_free_sized(p, 8), "wrong size 8 for");
  EXPECT_DEATH(execmem::deallocate(p, 1000), "wrong size 1000 for");
  void* big = execmem_malloc(1 * kMiB);
  EXPECT_DEATH(execmem_free_sized(big, 100),
               "wrong size 100 for 0x[0-9a-f]+ \\(a 1048576-byte block");
  EXPECT_DEATH(execmem_free_sized(big, 2 * kMiB), "wrong size");
  void* aligned = execmem_aligned_alloc(4096, 100);
  EXPECT_DEATH(execmem_free_aligned_sized(aligned, 4096, 5000),
               "free_aligned_sized\\(\\): wrong size 5000");
  execmem_free_aligned_sized(aligned, 4096, 100);
  execmem_free_sized(big, 1 * kMiB);
  execmem_free_sized(p, 48);
}

TEST_F(DoubleFreeDeathTest, ADoubleSizedFreeIsADoubleFree) {
  void* p = execmem_malloc(48);
  execmem_free_sized(p, 48);
  EXPECT_DEATH(execmem_free_sized(p, 48), "execmem: free_sized\\(\\): double free of");
  EXPECT_DEATH(execmem_free_sized(p, 4000), "execmem: free_sized\\(\\): double free of");
}

TEST(SizedFree, EverySizeABlockCanHaveBeenAllocatedForIsAccepted) {
  for (size_t size = 0; size <= 70000; size += (size < 1024 ? 1 : 97)) {
    void* p = execmem_malloc(size);
    ASSERT_NE(p, nullptr);
    execmem_free_sized(p, size);
  }
  // A block realloc kept for a smaller size, freed with that size.
  void* p = execmem_malloc(100);
  void* q = execmem_realloc(p, 60);
  ASSERT_EQ(q, p);
  execmem_free_sized(q, 60);
  void* big = execmem_malloc(2 * kMiB);
  execmem::deallocate(big, 2 * kMiB);
  for (size_t a : {16, 64, 4096, 65536}) {
    void* r = execmem_aligned_alloc(a, 24);
    execmem_free_aligned_sized(r, a, 24);
  }
}

// A write after free that reaches a free block's second word (its free key)
// is reported by the malloc that would hand the block out again (check.h).
TEST_F(DoubleFreeDeathTest, AWriteAfterFreeIsReportedByTheNextMallocOfTheBlock) {
  for (size_t size : {16, 48, 4096, 200000}) {
    char* p = static_cast<char*>(execmem_malloc(size));
    ASSERT_NE(p, nullptr);
    const std::string block = std::to_string(execmem_usable_size(p));
    EXPECT_DEATH(
        {
          execmem_free(p);
          memset(p, 'A', size);
          execmem_malloc(size);
        },
        "^execmem: malloc\\(\\): write after free of 0x[0-9a-f]+ \\(a " + block +
            "-byte block of executor \"default\"\\): its free key was overwritten\n$");
    execmem_free(p);
  }
}

// malloc(0) hands out a pointer that faults on any access, and a second free
// of it is a double free (allocator/zero_size.h).
TEST_F(DoubleFreeDeathTest, AZeroSizeBlockFaultsOnAccessAndOnASecondFree) {
  char* p = static_cast<char*>(execmem_malloc(0));
  ASSERT_NE(p, nullptr);
  EXPECT_DEATH(*static_cast<volatile char*>(p) = 'A', "");
  EXPECT_DEATH(static_cast<void>(*static_cast<volatile char*>(p)), "");
  execmem_free(p);
  EXPECT_DEATH(execmem_free(p),
               "^execmem: free\\(\\): double free of 0x[0-9a-f]+ \\(a 0-byte block\\)\n$");
  EXPECT_DEATH(execmem_free(p + 8), kNotOurs);
}

// The non-aborting query says no to all of the above.
TEST(InvalidPointer, OwnsAnswersWithoutAborting) {
  char buf[64];
  void* libc = malloc(32);
  void* small = execmem_malloc(48);
  void* large = execmem_malloc(1 * kMiB);
  EXPECT_FALSE(execmem_owns(buf));
  EXPECT_FALSE(execmem_owns(libc));
  EXPECT_FALSE(execmem_owns(At(small, 8)));
  EXPECT_FALSE(execmem_owns(At(large, 4096)));
  execmem_free(large);
  EXPECT_FALSE(execmem_owns(large));
  execmem_free(small);
  free(libc);
}

}  // namespace
