// Secure mode's policies (EXECMEM_SECURE=1), in one place: what a secure heap
// stores in and around its blocks, and how it orders and holds them back.
//
// The span and free-list code is one (span.cc, orphanage.cc, heap.cc's
// SmallMalloc and FreeSmall): templates on a policy, instantiated twice,
// DefaultPolicy (cache/heap_internal.h: the free key, hooks that compile to
// the default mode's code) and SecurePolicy (below). The policy is chosen
// once per process (secure::Enabled) and fixed per heap (Heap::secure); the
// slow-path entry points (heap.cc) pick the instantiation. A policy gives:
//
//   Head(pg), HasFree(pg)     the span's free list (secure: Page::secure_free,
//                             so that the inline fast paths, which pop
//                             Page::free, never see a secure block)
//   kSpanBits, kThreadFree,   how a span is set up: Page::secure, the initial
//   kFastFrees                Page::thread_free (secure spans stay in heap
//                             mode), whether the owner's frees and a current
//                             span's allocations may take the inline fast paths
//   Push(pg, b), Pop(pg)      a free-list link written and read (secure:
//                             encoded, checked on the way out)
//   Carve(h, pg)              blocks never handed out onto the free list
//                             (secure: in random order, each zero with its
//                             free mark)
//   Handout(h, pg, b, n, z)   a block leaving malloc (secure: slack, canary)
//   CheckFree(...)            a block entering free (default: the free key's
//                             double-free check; secure: canary, slack, the
//                             word before, the neighbours; then zeroed)
//   Hold(h, b), Evict(h)      what free does with the block: give it back now
//                             (default), or hold it in the quarantine and give
//                             back what leaves it (secure)
//
// A small block of a secure span:
//
//   | word 0 | bytes 8 .. n | slack [n, size - 8): 0xAB | tail word |
//
//   live:  word 0 and the bytes up to n are the program's; the tail word is
//          the canary, LiveCanary(b, n) (n <= size - 8 decodes back).
//   free:  every byte is zero but the tail word, FreeMark(b), and, on a
//          span's free list, word 0, the encoded link (EncodeLink). A block
//          in the quarantine ring has no link: it reads all zero.
//
// Every tail word is a live canary or a free mark: a free checks its block's
// and the word before it (the block before's tail), the next secure malloc
// the block handed out last, and a reuse (Pop) that the block is still free
// and zero. Each is a single aligned 8-byte store, so another thread's free
// or realloc of a neighbour never shows a torn value.
#ifndef EXECMEM_CACHE_SECURE_POLICY_H_
#define EXECMEM_CACHE_SECURE_POLICY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cache/size_class.h"
#include "cache/span.h"

namespace execmem {
class Heap;
}  // namespace execmem

namespace execmem::secure {

// Page::secure bits.
inline constexpr uint8_t kSpan = 1;         // a small span carved in secure mode
inline constexpr uint8_t kQuarantined = 2;  // a large block in the quarantine

// ---- the quarantine ----
// Freed small blocks wait in a ring of pointers per heap (FIFO) until
// kQuarantineSlots newer frees or kQuarantineBytes pushed them out: a block
// freed is not handed out again at once (use after free lands in a zero
// block, not in the next object; a double free finds the free mark). Small,
// so that the blocks it holds stay in cache (a 256 KiB list through the
// blocks cost 2-3 x the default mode's CPU: docs/safety.md).
inline constexpr uint32_t kQuarantineSlots = 64;
inline constexpr size_t kQuarantineBytes = size_t{64} << 10;
// Large blocks (PROT_NONE meanwhile): a list through Page::next.
inline constexpr size_t kLargeQuarantineBytes = size_t{8} << 20;
inline constexpr uint32_t kLargeQuarantineBlocks = 8;

// A block free holds back or gives back, with its span (a quarantined block
// is counted in its span's `used`, so the span stays; keeping it saves a page
// map lookup at every eviction).
struct Held {
  Block* b;
  Page* pg;
};

// A secure heap's own state (Heap::sec), owner thread only.
struct HeapState {
  uint64_t rng = 0;  // xorshift64*, seeded per heap
  Held ring[kQuarantineSlots] = {};
  uint32_t ring_head = 0;  // the oldest entry
  uint32_t ring_count = 0;
  size_t ring_bytes = 0;
  // The small block handed out last (checked at the next secure malloc) and
  // its span, a span of this heap: ReleaseSmallSpan forgets it when the span
  // goes (only the owner releases a span), a free of it by this thread at
  // once (Hold), so that the check needs no page map lookup.
  char* last_alloc = nullptr;
  Page* last_alloc_page = nullptr;
  Page* large_head = nullptr;  // oldest first
  Page* large_tail = nullptr;
  size_t large_bytes = 0;
  uint32_t large_count = 0;
};

// ---- per-process secrets (secure.cc sets them once, in Decide) ----
extern uint64_t g_canary_key;
extern uint64_t g_link_key;

// ---- the optional protections (EXECMEM_SECURE_CHECKS; all by default) ----
// Always on in secure mode: tail words (canary, slack and the word before
// checked at free; the free mark: double free), encoded links, block 0 never
// handed out, guard pages, faulting zero-size blocks. Each of these can be
// left out, for its price (docs/secure-mode.md):
enum Check : uint32_t {
  kZeroing = 1,     // freed blocks zeroed, checked when they leave the
                    // quarantine, when reused and (the newest) at malloc
  kQuarantine = 2,  // the ring of freed blocks
  kNeighbours = 4,  // a free checks the blocks either side
  kNewest = 8,      // each malloc checks the block handed out and freed last
  kShuffle = 16,    // carving in random order
};
inline constexpr uint32_t kAllChecks = kZeroing | kQuarantine | kNeighbours | kNewest | kShuffle;
extern uint32_t g_checks;  // set once, in Decide
[[gnu::always_inline]] inline bool On(Check c) { return (g_checks & c) != 0; }

[[gnu::always_inline]] inline uintptr_t Addr(const void* p) {
  return reinterpret_cast<uintptr_t>(p);
}
[[gnu::always_inline]] inline uint64_t Load64(const char* p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
[[gnu::always_inline]] inline void Store64(char* p, uint64_t v) { memcpy(p, &v, sizeof v); }

// ---- encoded free-list links (glibc's safe-linking, mimalloc's MI_SECURE) ----
[[gnu::always_inline]] inline uint64_t EncodeLink(const void* next, const void* slot) {
  return Addr(next) ^ g_link_key ^ (Addr(slot) >> 4);
}
[[gnu::always_inline]] inline char* DecodeLink(uint64_t v, const void* slot) {
  return reinterpret_cast<char*>(v ^ g_link_key ^ (Addr(slot) >> 4));
}

// ---- tail words ----
// Bit 63 is always set and the first byte (the one right after the slack,
// little-endian) is always kTailByte: a zero or an ASCII byte written over
// either end of a tail word always shows, whatever the secret (the rest is
// keyed, so it cannot be forged without it).
// The mask is the address moved above the size field, xor the secret: bits
// 3..39 of the address go to bits 26..62 (a shift left by 24 drops the bits
// above 39, a shift right by 1 leaves bit 63 clear), where a size below
// 256 KiB (bits 8..25 once shifted) never reaches; g_canary_key has bit 63
// set and kTailByte as its low byte (Decide). So a tail word of another
// block (blocks are 8-aligned, within 2^39 bytes of each other) decodes to a
// size of 2^18 or more: never valid, and an overflow that copies a whole
// neighbour shows. Three instructions; a multiply to mix the address cost 5
// more at each of the ~11 tail words a malloc/free pair reads or writes, and
// bought no secrecy (both are invertible given one tail word and its address).
inline constexpr uint64_t kTailByte = 0xA5;
[[gnu::always_inline]] inline uint64_t CanaryMask(const void* b) {
  return ((Addr(b) << 24) >> 1) ^ g_canary_key;
}
inline constexpr uint64_t kFreeTag = uint64_t{1} << 54;  // as a size: no block is that large
// A live block being resized in place by realloc (its slack is changing):
// valid, but its neighbours' checks skip it.
inline constexpr uint64_t kBusyTag = uint64_t{1} << 53;
[[gnu::always_inline]] inline uint64_t LiveCanary(const void* b, size_t n) {
  return CanaryMask(b) ^ (uint64_t{n} << 8);
}
[[gnu::always_inline]] inline uint64_t FreeMark(const void* b) {
  return CanaryMask(b) ^ (kFreeTag << 8);
}
[[gnu::always_inline]] inline uint64_t BusyMark(const void* b) {
  return CanaryMask(b) ^ (kBusyTag << 8);
}
// The requested size a live canary holds, kFreeTag for a free mark, or a
// value above every block size for anything else.
[[gnu::always_inline]] inline uint64_t CanarySize(uint64_t tail, const void* b) {
  const uint64_t x = tail ^ CanaryMask(b);
  return (x & 0xFF) != 0 ? ~uint64_t{0} : x >> 8;
}
// Whether `tail` is a tail word block b (of `size` bytes) may hold.
[[gnu::always_inline]] inline bool ValidTail(uint64_t tail, const void* b, uint32_t size) {
  const uint64_t n = CanarySize(tail, b);
  return n <= size - 8 || n == kFreeTag || n == kBusyTag;
}
// Tail words are written by whoever frees or reallocates the block and read
// by its neighbours' checks on other threads: one relaxed 8-byte access each.
[[gnu::always_inline]] inline uint64_t LoadTail(const char* b, uint32_t size) {
  return std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(const_cast<char*>(b) + size - 8))
      .load(std::memory_order_relaxed);
}
[[gnu::always_inline]] inline void StoreTail(char* b, uint32_t size, uint64_t v) {
  std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(b + size - 8))
      .store(v, std::memory_order_relaxed);
}

// ---- random carving: a per-heap xorshift64*, no division ----
[[gnu::always_inline]] inline uint64_t NextRandom(HeapState* s) {
  uint64_t x = s->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  s->rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}
// Uniform enough in [0, n) (Lemire's multiply-shift).
[[gnu::always_inline]] inline uint32_t RandomBelow(HeapState* s, uint32_t n) {
  return static_cast<uint32_t>(((NextRandom(s) >> 32) * n) >> 32);
}

// Guard pages and carving batches: os::PageSize() on x86-64 / aarch64 Linux.
inline constexpr size_t kOsPage = 4096;

// ---- what is watched in a free block ----
// The bytes between the end of a request and the canary (or guard page):
// not zero, so that the classic off-by-one (a string's NUL) shows.
inline constexpr unsigned char kSlack = 0xAB;
// Bytes of a free block checked when it is reused: its head, where a
// dangling pointer's fields are: one or two cache lines, the first of which
// Pop loads for the link anyway. A block is checked in full (its watched bytes) when it leaves the
// quarantine, while still in cache; the reuse check covers the time after
// that, on a block that is usually cold by then: each further line checked
// was a cache miss the default mode does not have (larson's blocks are
// touched at their head and last byte only). Checking all of it (up to
// kWatchBytes) doubled the bytes secure mode touches per call (larson: 14 %
// of its time in the scan); 256 bytes cost larson about 3 % of its secure
// instructions (docs/secure-mode.md).
inline constexpr size_t kReuseCheckBytes = 64;
// A freed block's first kWatchBytes (all of most blocks) are zeroed, and
// checked when the block is reused (write after free); the rest of a larger
// block keeps its stale bytes (the cost of zeroing and checking grows with
// the block, the value of it does not: a dangling object's fields are at its
// head).
inline constexpr size_t kWatchBytes = 16384;
// The zeroed and checked bytes of a free block of `size` bytes: all but the
// tail word, up to kWatchBytes.
[[gnu::always_inline]] inline size_t Watched(size_t size) {
  return size - 8 < kWatchBytes ? size - 8 : kWatchBytes;
}

// Offset of the first byte in [from, to) that is not `byte`, or -1. The
// common answer is -1, so it is found first with whole loads, overlapping
// rather than looping over a short range: 16-byte vectors, two for up to 32
// bytes, four for up to 64, 128 bytes a step above that and the rest in two
// 64-byte steps at most, the last ending at `to`; 8-byte words below 16 (no byte loop for an unaligned start
// or end). The exact place is looked for byte by byte (FirstNotAt) only once
// a difference showed. The byte is a template argument: for zero, the
// comparison folds away. The 8 bytes before `to` must be readable (every
// range checked ends at least 8 bytes into a block), so that a range shorter
// than a word is one load too.
template <unsigned char byte>
[[gnu::noinline, gnu::cold]] ptrdiff_t FirstNotAt(const char* from, const char* to) {
  for (const char* p = from; p < to; ++p) {
    if (static_cast<unsigned char>(*p) != byte) return p - from;
  }
  return -1;
}
// Inline: its callers are the free and malloc paths of every secure call.
template <unsigned char byte = 0>
[[gnu::always_inline]] inline ptrdiff_t FirstNot(const char* from, const char* to) {
  using V = uint64_t __attribute__((vector_size(16)));
  constexpr uint64_t word = 0x0101010101010101ull * byte;
  constexpr V pattern = {word, word};
  const auto x = [&](const char* q) {
    V v;
    memcpy(&v, q, sizeof v);
    return v ^ pattern;
  };
  const size_t len = static_cast<size_t>(to - from);
  bool differs;
  if (len >= 64) {
    // 128 bytes a test (the test is 5 of the 13 instructions a 64-byte step
    // took: 20 % fewer on the eviction's full scans).
    V d = {0, 0};
    const char* p = from;
    for (; p + 128 <= to; p += 128) {
      d = x(p) | x(p + 16) | x(p + 32) | x(p + 48) | x(p + 64) | x(p + 80) | x(p + 96) |
          x(p + 112);
      if ((d[0] | d[1]) != 0) break;
    }
    if ((d[0] | d[1]) == 0) {
      // Under 128 bytes left from p: one step from p if 64 fit, one ending at `to`.
      if (p + 64 <= to) d = x(p) | x(p + 16) | x(p + 32) | x(p + 48);
      d |= x(to - 64) | x(to - 48) | x(to - 32) | x(to - 16);
    }
    differs = (d[0] | d[1]) != 0;
  } else if (len >= 32) {
    const V d = x(from) | x(from + 16) | x(to - 32) | x(to - 16);
    differs = (d[0] | d[1]) != 0;
  } else if (len >= 16) {
    const V d = x(from) | x(to - 16);
    differs = (d[0] | d[1]) != 0;
  } else if (len >= 8) {
    differs = ((Load64(from) ^ word) | (Load64(to - 8) ^ word)) != 0;
  } else {
    // The last len bytes of the word ending at `to` (little-endian: its
    // high bytes).
    const uint64_t mask = len == 0 ? 0 : ~uint64_t{0} << (8 * (8 - len));
    differs = ((Load64(to - 8) ^ word) & mask) != 0;
  }
  if (!differs) [[likely]]
    return -1;
  return FirstNotAt<byte>(from, to);
}

// Fills [from, to) with `byte`: words, the last one overlapping (a call to
// memset only for long ranges). The 8 bytes before `to` are the block's, which
// is being handed out or freed (nobody else reads or writes them).
// Overlapping 16-byte stores below 64 bytes, as FirstNot loads (a loop of
// word stores was turned into a call to memset by the compiler).
template <unsigned char byte>
[[gnu::always_inline]] inline void Fill(char* from, char* to) {
  using V = uint64_t __attribute__((vector_size(16)));
  constexpr uint64_t word = 0x0101010101010101ull * byte;
  constexpr V pattern = {word, word};
  const auto put = [&](char* q) { memcpy(q, &pattern, sizeof pattern); };
  const size_t len = static_cast<size_t>(to - from);
  if (len >= 64) {
    memset(from, byte, len);
  } else if (len >= 32) {
    put(from);
    put(from + 16);
    put(to - 32);
    put(to - 16);
  } else if (len >= 16) {
    put(from);
    put(to - 16);
  } else if (len >= 8) {
    Store64(from, word);
    Store64(to - 8, word);
  } else if (len != 0) {
    const uint64_t mask = ~uint64_t{0} << (8 * (8 - len));
    Store64(to - 8, (Load64(to - 8) & ~mask) | (word & mask));
  }
}
[[gnu::always_inline]] inline void FillSlack(char* from, char* to) { Fill<kSlack>(from, to); }

// Block 0 of a span of three blocks or more is never handed out, so that
// every block has a checked word before it; in spans of one or two blocks
// (above 28 KiB) that would waste too much, and block 0 has no check before it.
[[gnu::always_inline]] inline bool ReservesBlock0(const Page* pg) {
  return kSizeClasses.capacity[pg->size_class] >= 3;
}
[[gnu::always_inline]] inline bool IsBlockOf(const Page* pg, const char* start, const char* p) {
  return IsBlockOffset(static_cast<uint32_t>(p - start), BlockMagic(pg));
}
// A free-list link a block of pg may hold: null or a free block of the span.
[[gnu::always_inline]] inline bool LinkOk(const Page* pg, const char* start, const char* next) {
  return next == nullptr || (next >= start && next < pg->bump && IsBlockOf(pg, start, next) &&
                             !(next == start && ReservesBlock0(pg)));
}

// ---- the out-of-line pieces (secure.cc) ----
// Reports (one line on stderr, then abort).
[[noreturn]] void Report(const char* op, const char* what, const void* p, size_t block,
                         const char* detail);
// Pop found the block at the head of pg's free list not free and zero.
[[noreturn, gnu::cold]] void ReportBadFreeBlock(Page* pg, const char* b);
// Carves the next batch of blocks (about an OS page) onto pg's free list in
// random order, each zero with its free mark.
void CarveShuffled(HeapState* s, Page* pg);
// Checks a block entering free (h the calling thread's heap, owner its
// span's): a live block start with its canary, slack and the word before it
// intact, and, when h owns the span, its neighbours; then marks it free and
// zeroes it. Reports otherwise.
// live_checked: CheckLive has run (a sized free's size check).
void CheckFree(const char* op, const Heap* h, const Heap* owner, Page* pg, char* b,
               bool live_checked);
// The requested size of the live small block b, checking it as free does.
size_t CheckLive(const char* op, Page* pg, char* b);
// At each secure malloc: the block handed out last and the block freed last.
void CheckNewest(HeapState* s, const char* op);
// The quarantine: Quarantine takes a freed block (checked, zeroed) and gives
// back the block that leaves the ring to make room, or nullptr; Evict, while
// the ring holds more than its bytes allow (or, `all`, while it holds any),
// the oldest. A block leaving is checked: still zero with its free mark.
Held Quarantine(HeapState* s, Block* b, Page* pg);
Held Evict(HeapState* s, bool all);
// realloc of a small block in place: moves the canary and the slack.
bool ResizeSmallInPlace(Page* pg, char* b, size_t old, size_t size);

// ---- large and huge blocks: guard pages (secure_large.cc) ----
// Layout inside the block LargeAlloc returns at p0 (lead = max(4 KiB, alignment)):
//   p0 .. user-4K   unused | user-4K .. user  guard | user .. user+n  the block
//   user+n .. user+RoundPage(n)  kSlack, checked at free | then a guard page.
// Large: Page::large_user = user, Page::limit = user + n. Huge:
// ArenaHeader::huge_user = user, huge_requested = n.
// headroom: a block that grows by realloc gets a quarter more span to grow into.
void* GuardedAlloc(Heap* h, size_t n, size_t alignment, bool zero, bool headroom = false);
// Frees a guarded large (pg) or huge (huge) block at user: checks the slack,
// then quarantines a large block with no access (h a secure heap) or gives
// it back.
void GuardedFree(Heap* h, ArenaHeader* huge, Page* pg, char* user);
// The requested size of a guarded block; reports a quarantined one.
size_t GuardedSize(ArenaHeader* huge, Page* pg, const void* user);
// realloc in place: a large block within its OS pages, within its span or
// over the free pages after it (the end guard redone); false when it must move.
bool ResizeLargeGuarded(Heap* h, Page* pg, char* user, size_t size);
// A huge block by remapping its pages; nullptr when it must move.
void* ResizeHugeGuarded(Heap* h, void* p, size_t size);
// Every quarantined large block back to the pool.
void FlushLargeQuarantine(Heap* h);

// ---- the policy (cache/heap_internal.h's DefaultPolicy is the other one) ----
struct SecurePolicy {
  static constexpr bool kSecure = true;
  static constexpr uint8_t kSpanBits = kSpan;
  static constexpr uintptr_t kThreadFree = kHeapMode;  // remote frees via the heap (heap.h)
  static constexpr bool kFastFrees = false;

  [[gnu::always_inline]] static Block*& Head(Page* pg) { return pg->secure_free; }
  [[gnu::always_inline]] static bool HasFree(const Page* pg) {
    return pg->secure_free != nullptr || pg->bump < pg->limit;
  }
  // Word 1 may hold the default mode's free key (cache/check.h, written by
  // RemoteFree on the way through the heap's list); a secure free block is
  // zero but for its link and its tail.
  [[gnu::always_inline]] static void Push(Page* pg, Block* b) {
    char* c = reinterpret_cast<char*>(b);
    Store64(c + 8, 0);
    Store64(c, EncodeLink(pg->secure_free, c));
    pg->secure_free = b;
  }
  // The head of the free list: its link must lead to a free block of the
  // span, its tail word be the free mark and its first kReuseCheckBytes zero
  // (all of its watched bytes are: they were zeroed at free).
  [[gnu::always_inline]] static Block* Pop(Page* pg) {
    char* b = reinterpret_cast<char*>(pg->secure_free);
    const uint32_t size = pg->block_size;
    char* next = DecodeLink(Load64(b), b);
    const size_t w = Watched(size);
    if (!LinkOk(pg, PageStart(pg), next) || LoadTail(b, size) != FreeMark(b) ||
        (On(kZeroing) && FirstNot(b + 8, b + (w < kReuseCheckBytes ? w : kReuseCheckBytes)) >= 0))
        [[unlikely]] {
      ReportBadFreeBlock(pg, b);
    }
    pg->secure_free = reinterpret_cast<Block*>(next);
    Store64(b, 0);
    // The next malloc of the class pops `next` and reads its head and tail
    // word: blocks come back through the quarantine, so they are cold
    // (larson: the misses on them were 40 % of secure malloc's time).
    if (next != nullptr) {
      __builtin_prefetch(next, 1);
      __builtin_prefetch(next + size - 8, 1);
    }
    return reinterpret_cast<Block*>(b);
  }
  [[gnu::always_inline]] static void Carve(HeapState* s, Page* pg) { CarveShuffled(s, pg); }
  // Blocks come out zeroed (their first kWatchBytes: zeroed at free or
  // carving) when kZeroing is on; the slack after the request is kSlack,
  // the tail the canary.
  [[gnu::always_inline]] static void Handout(HeapState* s, Page* pg, Block* blk, size_t n,
                                             bool zero) {
    char* b = reinterpret_cast<char*>(blk);
    const uint32_t size = pg->block_size;
    if (zero) {
      const size_t zeroed = On(kZeroing) ? kWatchBytes : 8;  // word 0: Pop cleared it
      if (n > zeroed) memset(b + zeroed, 0, n - zeroed);
    }
    FillSlack(b + n, b + size - 8);
    StoreTail(b, size, LiveCanary(b, n));
    __builtin_prefetch(b - 8);  // the word before it: the next malloc's check
    s->last_alloc = b;
    s->last_alloc_page = pg;
  }
  // The block to give back now ({nullptr}: held); then, Evict, more.
  [[gnu::always_inline]] static Held Hold(bool secure_heap, HeapState* s, Page* pg, Block* b) {
    // A thread's last frees, after its heap went (the bootstrap heap): at once.
    if (s->last_alloc == reinterpret_cast<char*>(b)) s->last_alloc = nullptr;
    if (!secure_heap || !On(kQuarantine)) return {b, pg};
    return Quarantine(s, b, pg);
  }
  [[gnu::always_inline]] static Held Evict(bool secure_heap, HeapState* s) {
    return secure_heap && s->ring_bytes > kQuarantineBytes && s->ring_count > 1
               ? secure::Evict(s, false)
               : Held{nullptr, nullptr};
  }

  // The class of a request: room for the tail word, at least 32 bytes (the
  // tail word is then never word 1, which a block in transit between threads
  // uses: the default mode's free key); kNumClasses for a large block.
  [[gnu::always_inline]] static size_t ClassOf(size_t size, size_t alignment) {
    if (size > kMaxSmallSize - 8 || alignment > kPageSize) return kNumClasses;
    size_t c = SizeClassOf(size + 8 < 17 ? 17 : size + 8);
    // Alignments are powers of two (the shim refuses others): a mask, no division.
    while (c < kNumClasses && (ClassSize(c) & (alignment - 1)) != 0) ++c;
    return c;
  }
  // What free, free_sized and malloc_usable_size see of a block: the size
  // asked for, after its checks.
  [[gnu::always_inline]] static size_t SmallUsable(const char* op, Page* pg, const void* p) {
    return CheckLive(op, pg, static_cast<char*>(const_cast<void*>(p)));
  }
  [[gnu::always_inline]] static size_t LargeUsable(Page* pg, const void* p) {
    return GuardedSize(nullptr, pg, p);
  }
  [[gnu::always_inline]] static size_t HugeUsable(ArenaHeader* huge) {
    return GuardedSize(huge, nullptr, nullptr);
  }
  // A sized free names the size asked for (up to the shim's rounding of
  // requests up to 128 bytes to 16), or with an alignment at most that.
  [[gnu::always_inline]] static bool SizeFits(size_t size, size_t usable, bool aligned) {
    return aligned ? size <= usable : size <= usable && usable - size < kMinAlign;
  }
  [[gnu::always_inline]] static void CheckFree(const char* op, Heap* h, Heap* owner, Page* pg,
                                               Block* b, bool live_checked) {
    secure::CheckFree(op, h, owner, pg, reinterpret_cast<char*>(b), live_checked);
  }
  [[gnu::always_inline]] static void FreeLarge(Heap* h, ArenaHeader* huge, Page* pg, void* p) {
    GuardedFree(h, huge, pg, static_cast<char*>(p));
  }
};

}  // namespace execmem::secure

#endif  // EXECMEM_CACHE_SECURE_POLICY_H_
