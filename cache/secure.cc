// Secure mode (cache/secure.h): the slow-path allocator with canaries,
// zeroing, a quarantine, encoded free lists, random carving and guard pages.
//
// Call graph (all reached from heap.cc's slow paths when Enabled()):
//   Malloc ─ ZeroBlock (zero_size.cc)       malloc(0)
//          ├ SmallAlloc ─ Pop / Carve / NewSpan / AdoptOrphan / DrainRemote
//          └ GuardedAlloc ─ LargeAlloc (large.cc) + two guard pages
//   Free   ─ SmallFree ─ checks ─ Quarantine ─ Evict ─ ReleaseBlock
//          ├ GuardedFree (large) ─ PROT_NONE ─ large quarantine ─ LargeFree
//          └ GuardedFree (huge)  ─ HugeFree
// Ownership: a heap's quarantine is its owner thread's, like the rest of it.
#include "cache/secure.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cache/heap-inl.h"  // and, through it, the reports (check.h once merged)
#include "cache/heap.h"
#include "cache/heap_internal.h"
#include "cache/large.h"
#include "cache/size_class.h"
#include "cache/zero_size.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem::secure {

std::atomic<int> g_mode{-1};
uint64_t g_canary_key = 0;
uint64_t g_link_key = 0;

namespace {

constexpr int kDeciding = -2;     // negative: Enabled() waits in Decide()
constexpr size_t kOsPage = 4096;  // guard pages; os::PageSize() on x86-64 / aarch64 Linux

inline uint64_t Load64(const char* p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
inline void Store64(char* p, uint64_t v) { memcpy(p, &v, sizeof v); }
inline size_t RoundPage(size_t n) { return (n + kOsPage - 1) & ~(kOsPage - 1); }

// The bytes between the end of a request and the canary (or guard page):
// not zero, so that the classic off-by-one (a string's NUL) shows.
constexpr unsigned char kSlack = 0xAB;
// Bytes of the block freed last checked again at each secure malloc.
constexpr size_t kNewestCheckBytes = 64;
// Bytes of a free block checked when it is reused: its head, where a
// dangling pointer's fields are. Checking all of it (up to kWatchBytes)
// doubled the bytes secure mode touches per call (larson: 14 % of its time
// in the scan).
constexpr size_t kReuseCheckBytes = 256;
// A freed block's first kWatchBytes (all of most blocks) are zeroed, and
// checked when the block is reused (write after free); the rest of a larger
// block keeps its stale bytes (the cost of zeroing and checking grows with
// the block, the value of it does not: a dangling object's fields are at its
// head).
constexpr size_t kWatchBytes = 16384;
// The zeroed and checked bytes of a free block of `size` bytes: all but the
// tail word, up to kWatchBytes.
inline size_t Watched(size_t size) { return size - 8 < kWatchBytes ? size - 8 : kWatchBytes; }
// Large blocks up to this size come out of malloc zeroed (a reused span is
// cleared); larger ones only when fresh from the OS. Clearing a reused 3-30
// MiB buffer cost 1.7 x the default mode's CPU on largebuf, for blocks the
// program fills anyway (docs/safety.md).
constexpr size_t kZeroLargeBytes = size_t{1} << 20;
// A freed large block is no-access while it is quarantined, up to this many
// bytes from its start (where a dangling pointer's fields are). Making all
// of a 3-30 MiB buffer no-access and then accessible again cost 2 x the
// default mode's CPU on largebuf (the page tables rewritten twice per block,
// then refaulted); its first MiB costs nothing measurable.
constexpr size_t kProtectOnFreeBytes = size_t{1} << 20;

// Offset of the first byte in [from, to) that is not `byte`, or -1. Scans
// 64 bytes a step in 16-byte vectors (the common answer is -1, so the exact
// place is looked for only once a step differs), then words, then bytes.
// The byte is a template argument: for zero, the comparison folds away and
// a step is four loads ORed together.
template <unsigned char byte = 0>
ptrdiff_t FirstNot(const char* from, const char* to) {
  using V = uint64_t __attribute__((vector_size(16)));
  constexpr uint64_t word = 0x0101010101010101ull * byte;
  const V pattern = {word, word};
  const char* p = from;
  for (; p < to && (Addr(p) & 7) != 0; ++p) {
    if (static_cast<unsigned char>(*p) != byte) return p - from;
  }
  for (; p + 64 <= to; p += 64) {
    V v[4];
    memcpy(v, p, sizeof v);
    const V diff = (v[0] ^ pattern) | (v[1] ^ pattern) | (v[2] ^ pattern) | (v[3] ^ pattern);
    if ((diff[0] | diff[1]) != 0) break;
  }
  for (; p + 8 <= to && Load64(p) == word; p += 8) {
  }
  for (; p < to; ++p) {
    if (static_cast<unsigned char>(*p) != byte) return p - from;
  }
  return -1;
}

[[noreturn]] void Report(const char* op, const char* what, const void* p, size_t block,
                         const char* detail) {
  char buf[320];
  const int n = snprintf(buf, sizeof buf, "execmem: %s(): %s %p (a %zu-byte block)%s%s\n", op, what,
                         p, block, detail[0] != '\0' ? ": " : "", detail);
  os::WriteStderr(buf, n > 0 ? static_cast<size_t>(n) : 0);
  os::Abort();
}

[[noreturn]] void ReportChangedByte(const char* op, const char* b, size_t size, ptrdiff_t at) {
  char detail[64];
  snprintf(detail, sizeof detail, "byte %td changed after it was freed", at);
  Report(op, "write after free of", b, size, detail);
}

// ---- small blocks ----

// Block 0 of a span of three blocks or more is never handed out, so that
// every block has a checked word before it; in spans of one or two blocks
// (above 28 KiB) that would waste too much, and block 0 has no check before it.
bool ReservesBlock0(const Page* pg) { return kSizeClasses.capacity[pg->size_class] >= 3; }

inline bool IsBlockOf(const Page* pg, const char* start, const char* p) {
  return IsBlockOffset(static_cast<uint32_t>(p - start), pg->div_inv, pg->div_shift, pg->div_limit);
}

// Checks that the tail word before b (the block before's) is a canary or a
// free mark; b is not block 0.
void CheckBefore(const char* op, Page* pg, const char* b) {
  const uint32_t size = pg->block_size;
  if (!ValidTail(LoadTail(b - size, size), b - size, size)) {
    Report(op, "heap underflow before", b, size,
           "the word before the block (the canary of the block before) is overwritten");
  }
}

// A free-list link a block of pg may hold: null or a free block of the span.
bool LinkOk(const Page* pg, const char* start, const char* next) {
  return next == nullptr || (next >= start && next < pg->bump && IsBlockOf(pg, start, next) &&
                             !(next == start && ReservesBlock0(pg)));
}

// Checks nb, a neighbour of a block of pg, which this heap owns (so only this
// thread hands its blocks out): a free neighbour's word 0 must be zero (in a
// quarantine), an encoded link of its span or, in transit between threads, a
// plain one, and the 32 bytes before its tail zero; a live neighbour's slack
// must be intact. An overflow or underflow that spared the tail words lands
// there. A live neighbour's slack may be changing under another thread's
// free (the free mark is stored before the block is zeroed) or realloc (the
// busy mark first): the tail word is read again after the scan, and a report
// made only if it did not change.
void CheckNeighbour(const char* op, Page* pg, const char* nb, const char* b) {
  const uint32_t size = pg->block_size;
  const char* start = PageStart(pg);
  if (nb < start || nb >= pg->bump) return;  // never carved
  const uint64_t t1 = LoadTail(nb, size);
  const uint64_t n = CanarySize(t1, nb);
  if (n == kFreeTag) {
    const uint64_t w = Load64(nb);
    if (w != 0 && !LinkOk(pg, start, DecodeLink(w, nb)) &&
        !LooksLikeLink(reinterpret_cast<const Block*>(w))) {
      Report(op, nb > b ? "heap overflow past the end of" : "heap underflow before", b, size,
             "the first word of the free block next to it is overwritten");
    }
    if (size - 8 <= kWatchBytes) {
      const char* end = nb + size - 8;
      const char* from = end - 32 > nb + 16 ? end - 32 : nb + 16;
      if (from < end && FirstNot(from, end) >= 0) {
        Report(op, nb > b ? "heap overflow past the end of" : "heap underflow before", b, size,
               "the free block next to it is written");
      }
    }
    return;
  }
  if (n > size - 8) return;  // busy, or a broken tail (CheckBefore's, or its own free's)
  const ptrdiff_t at = FirstNot<kSlack>(nb + n, nb + size - 8);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (at >= 0 && LoadTail(nb, size) == t1) {
    Report(op, nb > b ? "heap overflow past the end of" : "heap underflow before", b, size,
           "the slack of the block next to it is written");
  }
}

// Both neighbours of b, a block of a span this heap owns.
void CheckNeighbours(const char* op, Page* pg, const char* b) {
  const uint32_t size = pg->block_size;
  if (b != PageStart(pg)) CheckNeighbour(op, pg, b - size, b);
  if (b + size < pg->limit) CheckNeighbour(op, pg, b + size, b);
}

// Takes the head of pg's free list: its link must lead to a free block of
// the span, its tail word be the free mark and its first kReuseCheckBytes
// zero (all of its watched bytes are: they were zeroed at free).
char* Pop(Page* pg) {
  char* b = reinterpret_cast<char*>(pg->free);
  const uint32_t size = pg->block_size;
  char* next = DecodeLink(Load64(b), b);
  const char* start = PageStart(pg);
  if (!LinkOk(pg, start, next)) {
    Report("malloc", "write after free: the free-list link of", b, size,
           "it no longer points at a free block of its span");
  }
  if (LoadTail(b, size) != FreeMark(b)) {
    Report("malloc", "write after free of", b, size,
           "its last word (the free mark) changed after it was freed");
  }
  const size_t w = Watched(size);
  if (const ptrdiff_t at = FirstNot(b + 8, b + (w < kReuseCheckBytes ? w : kReuseCheckBytes));
      at >= 0) {
    ReportChangedByte("malloc", b, size, at + 8);
  }
  pg->free = reinterpret_cast<Block*>(next);
  Store64(b, 0);
  return b;
}

// Carves the next batch of blocks (about an OS page) into the free list in
// random order, each zero with its free mark.
void Carve(Heap* h, Page* pg) {
  const uint32_t size = pg->block_size;
  char* start = PageStart(pg);
  if (pg->bump == start && ReservesBlock0(pg)) {
    if (!pg->zeroed) memset(start, 0, size);
    StoreTail(start, size, FreeMark(start));
    pg->bump += size;
    --pg->capacity;
  }
  constexpr uint32_t kMaxBatch = 256;
  uint32_t n = static_cast<uint32_t>(kOsPage / size);
  if (n < 4) n = 4;
  if (n > kMaxBatch) n = kMaxBatch;
  const uint32_t left = static_cast<uint32_t>((pg->limit - pg->bump) / size);
  if (n > left) n = left;
  char* first = pg->bump;
  if (!pg->zeroed) memset(first, 0, size_t{n} * size);
  uint16_t order[kMaxBatch];
  for (uint32_t i = 0; i < n; ++i) order[i] = static_cast<uint16_t>(i);
  for (uint32_t i = n; i > 1; --i) {
    const uint32_t j = RandomBelow(&h->sec, i);
    const uint16_t t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  pg->bump = first + size_t{n} * size;  // before the pushes: Pop checks links against it
  for (uint32_t i = 0; i < n; ++i) {
    char* b = first + size_t{order[i]} * size;
    StoreTail(b, size, FreeMark(b));
    Store64(b, EncodeLink(pg->free, b));
    pg->free = reinterpret_cast<Block*>(b);
  }
}

void MoveToFull(Heap* h, Page* pg) {
  ListRemove(&h->partial[pg->size_class], pg);
  pg->in_full = 1;
  ListPush(&h->full, pg);
}

// A secure heap's active span for class c is the head of partial[c].
void* SmallAlloc(Heap* h, size_t c, size_t n, bool zero) {
  for (;;) {
    Page* pg = h->partial[c];
    if (pg != nullptr) {
      if (pg->free != nullptr) {
        char* b = Pop(pg);
        ++pg->used;
        ++h->allocs;
        if (!HasFree(pg)) MoveToFull(h, pg);
        const uint32_t size = pg->block_size;
        if (zero && n > kWatchBytes) memset(b + kWatchBytes, 0, n - kWatchBytes);
        memset(b + n, kSlack, size - 8 - n);
        StoreTail(b, size, LiveCanary(b, n));
        h->sec.last_alloc = b;
        return b;
      }
      if (pg->bump < pg->limit) {
        Carve(h, pg);
        continue;
      }
      MoveToFull(h, pg);
      continue;
    }
    if (h->remote.load(std::memory_order_relaxed) != 0) {
      h->DrainRemote();
      if (h->partial[c] != nullptr) continue;
    }
    if (AdoptOrphan(h, c)) continue;
    if (!NewSpan(h, c, n)) {
      errno = ENOMEM;
      return nullptr;
    }
  }
}

// The requested size of the live small block b, checking its canary, the
// slack after the request and the word before b; reports otherwise.
size_t CheckSmall(const char* op, Page* pg, char* b) {
  const uint32_t size = pg->block_size;
  const bool first = b == PageStart(pg);
  if (first && ReservesBlock0(pg)) ReportInvalidPointer(op, b);  // never handed out
  const uint64_t n = CanarySize(LoadTail(b, size), b);
  if (n == kFreeTag) {
    Report(op, "double free (or a block never allocated):", b, size, "");
  }
  if (n > size - 8) {
    Report(op, "heap overflow past the end of", b, size,
           "the canary after the block is overwritten");
  }
  if (const ptrdiff_t at = FirstNot<kSlack>(b + n, b + size - 8); at >= 0) {
    char detail[80];
    snprintf(detail, sizeof detail, "byte %td past the %zu bytes asked for was written", at,
             static_cast<size_t>(n));
    Report(op, "heap overflow past the end of", b, size, detail);
  }
  if (!first) CheckBefore(op, pg, b);
  return static_cast<size_t>(n);
}

// At each secure malloc, the block handed out last and the block freed
// last are checked again, not only at their next free or reuse: an overflow
// by memcpy or a write through a pointer just freed (the commonest errors)
// is reported before the program goes on. O(1): their tail words (and the
// one before the block handed out last), and the first bytes of the freed
// one. The block handed out last is checked only while its span is still
// this heap's (only this thread can change that); its neighbours' tail words
// may change under the check, but only from one valid value to another.
void CheckNewest(Heap* h, const char* op) {
  if (char* b = h->sec.last_alloc) {
    Page* pg = SpanHeadOf(b);
    if (pg != nullptr && pg->kind == PageKind::kSmall && OwnerHeap(pg) == h && b < pg->bump &&
        (pg->secure & kSpan) != 0 && IsBlockOf(pg, PageStart(pg), b)) {
      const uint32_t size = pg->block_size;
      const uint64_t t1 = LoadTail(b, size);
      if (!ValidTail(t1, b, size)) {
        Report(op, "heap overflow past the end of", b, size,
               "the canary after the block is overwritten (found at the next malloc)");
      }
      if (b != PageStart(pg)) CheckBefore(op, pg, b);
      // Its slack, re-reading the tail word (another thread may be freeing
      // or resizing the block: see CheckNeighbour).
      if (const uint64_t n = CanarySize(t1, b); n <= size - 8) {
        const ptrdiff_t at = FirstNot<kSlack>(b + n, b + size - 8);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (at >= 0 && LoadTail(b, size) == t1) {
          Report(op, "heap overflow past the end of", b, size,
                 "the bytes past the request are written (found at the next malloc)");
        }
      }
    } else {
      h->sec.last_alloc = nullptr;
    }
  }
  secure::HeapState& s = h->sec;
  if (s.ring_count == 0) return;
  char* newest =
      reinterpret_cast<char*>(s.ring[(s.ring_head + s.ring_count - 1) % kQuarantineSlots]);
  const uint32_t size = SmallPageOf(newest)->block_size;
  const size_t w = Watched(size);
  if (const ptrdiff_t at =
          FirstNot(newest, newest + (w < kNewestCheckBytes ? w : kNewestCheckBytes));
      at >= 0) {
    ReportChangedByte(op, newest, size, at);
  }
  if (LoadTail(newest, size) != FreeMark(newest)) {
    Report(op, "write after free of", newest, size,
           "its last word (the free mark) changed after it was freed");
  }
}

// Gives a block that left the quarantine back to its span.
void ReleaseBlock(Heap* h, char* b) {
  Page* pg = SmallPageOf(b);
  Block* blk = reinterpret_cast<Block*>(b);
  if (OwnerHeap(pg) != h) {
    RemoteFree(pg, blk);
    return;
  }
  PushFree(pg, blk);
  --pg->used;
  SyncPage(h, pg);
  const size_t c = pg->size_class;
  if (pg->in_full) {
    ListRemove(&h->full, pg);
    pg->in_full = 0;
    ListPush(&h->partial[c], pg);
  } else if (pg->used == 0 && h->partial[c] != pg) {
    ListRemove(&h->partial[c], pg);
    ReleaseSmallSpan(h, pg);
  }
}

// The oldest block of the quarantine goes back to its span, checked: still
// all zero (its watched bytes) with its free mark. The ring is small, so the
// block is usually still in cache.
void Evict(Heap* h) {
  secure::HeapState& s = h->sec;
  char* b = reinterpret_cast<char*>(s.ring[s.ring_head]);
  s.ring_head = (s.ring_head + 1) % kQuarantineSlots;
  --s.ring_count;
  const uint32_t size = SmallPageOf(b)->block_size;
  if (const ptrdiff_t at = FirstNot(b, b + Watched(size)); at >= 0) {
    ReportChangedByte("free", b, size, at);
  }
  if (LoadTail(b, size) != FreeMark(b)) {
    Report("free", "write after free of", b, size,
           "its last word (the free mark) changed after it was freed");
  }
  s.ring_bytes -= size;
  ReleaseBlock(h, b);
}

void SmallFree(Page* pg, char* b) {
  Heap* h = tls_heap;
  const bool mine = OwnerHeap(pg) == h;
  if (mine && b >= pg->bump) ReportInvalidPointer("free", b);  // never handed out
  CheckSmall("free", pg, b);
  if (mine) CheckNeighbours("free", pg, b);
  const uint32_t size = pg->block_size;
  // The mark first: a neighbour's check on the owner's thread must not take
  // the zeroing for an overflow into a live block (CheckNeighbour).
  StoreTail(b, size, FreeMark(b));
  std::atomic_thread_fence(std::memory_order_release);
  memset(b, 0, Watched(size));
  if (h == &g_bootstrap_heap || !h->secure) {  // a thread's last frees, after its heap went
    RemoteFree(pg, reinterpret_cast<Block*>(b));
    return;
  }
  if (h->sec.last_alloc == b) h->sec.last_alloc = nullptr;
  secure::HeapState& s = h->sec;
  if (s.ring_count == kQuarantineSlots) Evict(h);
  s.ring[(s.ring_head + s.ring_count) % kQuarantineSlots] = reinterpret_cast<Block*>(b);
  ++s.ring_count;
  s.ring_bytes += size;
  while (s.ring_bytes > kQuarantineBytes && s.ring_count > 1) Evict(h);
}

// ---- large and huge blocks: guard pages ----
//
// Layout inside the block LargeAlloc returns at p0 (lead = max(4 KiB, alignment)):
//   p0 .. user-4K   unused | user-4K .. user  guard | user .. user+n  the block
//   user+n .. user+RoundPage(n)  zero, checked at free | then a guard page.
// Large: Page::large_user = user, Page::limit = user + n. Huge:
// ArenaHeader::huge_user = user, huge_requested = n.

// headroom: a block that grows by realloc gets a quarter more span to grow into.
void* GuardedAlloc(Heap* h, size_t n, size_t alignment, bool zero, bool headroom = false) {
  const size_t lead = alignment > kOsPage ? alignment : kOsPage;
  const size_t body = RoundPage(n == 0 ? 1 : n);
  if (n > kMaxRequest) return LargeAlloc(h, n, alignment, zero);  // refuses with its report
  // Zeroed whatever `zero` says up to kZeroLargeBytes: a reused span must
  // not hand the last owner's data to the next (fresh spans cost nothing,
  // LargeAlloc knows).
  char* p0 = static_cast<char*>(LargeAlloc(h, lead + body + kOsPage,
                                           alignment > kPageSize ? alignment : kMinAlign,
                                           zero || n <= kZeroLargeBytes, headroom));
  if (p0 == nullptr) return nullptr;
  char* user = p0 + lead;
  const uintptr_t base = SlotLookup(p0);
  ArenaHeader* ah = ArenaOf(base);
  if (ah->huge) {
    ah->huge_user = Addr(user);
    ah->huge_requested = n;
  } else {
    Page* head = SmallPageOf(p0);
    head->large_user = Addr(user);
    head->limit = user + n;
    head->secure = 0;
  }
  memset(user + n, kSlack, body - n);
  // Best effort: past the process's mapping limit the block goes unguarded.
  os::Protect(user - kOsPage, kOsPage, false);
  os::Protect(user + body, kOsPage, false);
  return user;
}

void EvictLarge(Heap* h) {
  Page* pg = h->sec.large_head;
  h->sec.large_head = pg->next;
  if (pg->next == nullptr) h->sec.large_tail = nullptr;
  pg->next = nullptr;
  h->sec.large_bytes -= pg->large_size;
  --h->sec.large_count;
  char* start = PageStart(pg);
  const size_t body =
      RoundPage(pg->limit == reinterpret_cast<char*>(pg->large_user)
                    ? 1
                    : static_cast<size_t>(pg->limit - reinterpret_cast<char*>(pg->large_user)));
  char* user = reinterpret_cast<char*>(pg->large_user);
  if (body <= kProtectOnFreeBytes) {
    os::Protect(user - kOsPage, kOsPage + body + kOsPage, true);
  } else {
    os::Protect(user - kOsPage, kOsPage + kProtectOnFreeBytes, true);
    os::Protect(user + body, kOsPage, true);
  }
  pg->large_user = Addr(start);
  pg->secure = 0;
  LargeFree(h, pg);
}

void GuardedFree(ArenaHeader* huge, Page* pg, char* user) {
  const size_t n = huge != nullptr ? huge->huge_requested : static_cast<size_t>(pg->limit - user);
  if (pg != nullptr && (pg->secure & kQuarantined) != 0) {
    Report("free", "double free of", user, pg->large_size, "");
  }
  const size_t body = RoundPage(n == 0 ? 1 : n);
  if (const ptrdiff_t at = FirstNot<kSlack>(user + n, user + body); at >= 0) {
    char detail[80];
    snprintf(detail, sizeof detail, "byte %td past the %zu bytes asked for was written", at, n);
    Report("free", "heap overflow past the end of", user, n, detail);
  }
  if (huge != nullptr) {
    HugeFree(huge);  // unmapped: a later access faults
    return;
  }
  Heap* h = tls_heap;
  char* start = PageStart(pg);
  if (h == &g_bootstrap_heap || !h->secure) {
    os::Protect(user + body, kOsPage, true);
    os::Protect(user - kOsPage, kOsPage, true);
    pg->large_user = Addr(start);
    LargeFree(h, pg);
    return;
  }
  // Quarantined with no access (its first kProtectOnFreeBytes): a use after
  // free there faults.
  os::Protect(user, body < kProtectOnFreeBytes ? body : kProtectOnFreeBytes, false);
  pg->secure = kQuarantined;
  pg->next = nullptr;
  if (h->sec.large_tail != nullptr) {
    h->sec.large_tail->next = pg;
  } else {
    h->sec.large_head = pg;
  }
  h->sec.large_tail = pg;
  h->sec.large_bytes += pg->large_size;
  ++h->sec.large_count;
  while (h->sec.large_bytes > kLargeQuarantineBytes ||
         h->sec.large_count > kLargeQuarantineBlocks) {
    EvictLarge(h);
  }
}

// Keeps p where it is when `size` fits its block about as well as a new one
// would: the same small block (more than half used), or the same OS pages of
// a large block. Moves the canary or the slack to the new end.
bool ResizeInPlace(void* p, size_t old, size_t size) {
  char* b = static_cast<char*>(p);
  ArenaHeader* huge;
  Page* pg = ResolveBlock(p, &huge, "realloc");
  if (huge != nullptr || size == 0) return false;
  if (pg->kind == PageKind::kLarge) {
    if (size <= kMaxSmallSize || RoundPage(size) != RoundPage(old == 0 ? 1 : old)) return false;
    if (size > old) memset(b + old, 0, size - old);
    memset(b + size, kSlack, RoundPage(size) - size);
    pg->limit = b + size;
    return true;
  }
  const uint32_t bs = pg->block_size;
  if (size + 8 > bs || size + 8 <= bs / 2) return false;
  // Busy while the slack moves (CheckNeighbour on the owner's thread).
  StoreTail(b, bs, BusyMark(b));
  std::atomic_thread_fence(std::memory_order_release);
  if (size > old) memset(b + old, 0, size - old);
  memset(b + size, kSlack, bs - 8 - size);
  std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(b + bs - 8))
      .store(LiveCanary(b, size), std::memory_order_release);
  return true;
}

// Resizes a large block in place (within its span, or over the free pages
// after it, as the default mode does): the end guard is lifted and redone.
// False when it must move.
bool ResizeLargeGuarded(Heap* h, void* p, size_t size) {
  ArenaHeader* huge;
  Page* pg = ResolveBlock(p, &huge, "realloc");
  char* user = static_cast<char*>(p);
  if (huge != nullptr || pg->kind != PageKind::kLarge || size <= kMaxSmallSize) return false;
  char* start = PageStart(pg);
  if (user != start + kOsPage) return false;  // aligned blocks move
  const size_t old = static_cast<size_t>(pg->limit - user);
  const size_t old_body = RoundPage(old == 0 ? 1 : old);
  const size_t body = RoundPage(size);
  const size_t total = kOsPage + body + kOsPage;
  if (LargeClassPages(total) > kMaxSpanPages) return false;
  os::Protect(user + old_body, kOsPage, true);
  pg->large_user = Addr(start);
  if (!LargeResizeInPlace(h, pg, total)) {
    pg->large_user = Addr(user);
    os::Protect(user + old_body, kOsPage, false);
    return false;
  }
  pg->large_user = Addr(user);
  pg->limit = user + size;
  if (size > old) memset(user + old, 0, (size < old_body ? size : old_body) - old);
  memset(user + size, kSlack, body - size);
  os::Protect(user + body, kOsPage, false);
  return true;
}

// Resizes a huge block by remapping its pages (no copy), as the default mode
// does: the front guard moves with the mapping, the end guard is redone.
// nullptr when the new size is not huge, or the remap failed (p unchanged).
void* ResizeHugeGuarded(Heap* h, void* p, size_t size) {
  const uintptr_t base = SlotLookup(p);
  if (base == 0 || size > kMaxRequest) return nullptr;
  ArenaHeader* ah = ArenaOf(base);
  if (!ah->huge || ah->huge_user != Addr(p) || Addr(p) - base != 2 * kPageSize + kOsPage) {
    return nullptr;  // not a huge block with the default lead (aligned ones move)
  }
  const size_t body = RoundPage(size == 0 ? 1 : size);
  const size_t total = kOsPage + body + kOsPage;
  if (LargeClassPages(total) <= kMaxSpanPages) return nullptr;
  char* user = static_cast<char*>(p);
  const size_t old_body = RoundPage(ah->huge_requested == 0 ? 1 : ah->huge_requested);
  // mremap moves one mapping (VMA) only: lift both guards first.
  os::Protect(user + old_body, kOsPage, true);
  os::Protect(user - kOsPage, kOsPage, true);
  ah->huge_user = Addr(user - kOsPage);  // what pool::ResizeHuge expects
  char* p0 = static_cast<char*>(HugeResize(h, ah, total));
  if (p0 == nullptr) {
    ah->huge_user = Addr(user);
    os::Protect(user - kOsPage, kOsPage, false);
    os::Protect(user + old_body, kOsPage, false);
    return nullptr;
  }
  ArenaHeader* nh = ArenaOf(SlotLookup(p0));
  char* moved = p0 + kOsPage;
  const size_t old = nh->huge_requested;
  if (size > old) memset(moved + old, 0, (size < old_body ? size : old_body) - old);
  memset(moved + size, kSlack, body - size);
  nh->huge_user = Addr(moved);
  nh->huge_requested = size;
  os::Protect(p0, kOsPage, false);
  os::Protect(moved + body, kOsPage, false);
  return moved;
}

}  // namespace

int Decide() {
  int m = g_mode.load(std::memory_order_acquire);
  while (m < 0) {  // -1 undecided, kDeciding: another thread reads the setting
    if (m < 0) {
      int expected = -1;
      if (g_mode.compare_exchange_strong(expected, kDeciding, std::memory_order_acq_rel)) {
        const bool on = g_requested();
        if (on) {
          g_canary_key = os::RandomU64() | (uint64_t{1} << 63);
          g_link_key = os::RandomU64();
        }
        g_mode.store(on ? 1 : 0, std::memory_order_release);
        return on ? 1 : 0;
      }
    }
    m = g_mode.load(std::memory_order_acquire);
  }
  return m;
}

void* Malloc(Heap* h, size_t size, size_t alignment, bool zero) {
  CheckNewest(h, "malloc");
  const size_t a = alignment < kMinAlign ? kMinAlign : alignment;
  if (size == 0 && a == kMinAlign) {
    if (void* z = ZeroBlock()) return z;
  }
  if (size <= kMaxSmallSize - 8 && a <= kPageSize) {
    // At least 32 bytes: the tail word is never word 1, which a free block
    // in transit between threads uses (the default mode's free key).
    size_t c = SizeClassOf(size + 8 < 17 ? 17 : size + 8);
    while (c < kNumClasses && ClassSize(c) % a != 0) ++c;
    if (c < kNumClasses) return SmallAlloc(h, c, size, zero);
  }
  return GuardedAlloc(h, size, a, zero);
}

void Free(void* p) {
  if (p == nullptr) return;
  if (InZeroRegion(p)) {
    FreeZeroBlock("free", p);
    return;
  }
  ArenaHeader* huge;
  Page* pg = ResolveBlock(p, &huge, "free");
  if (huge != nullptr || pg->kind == PageKind::kLarge) {
    GuardedFree(huge, pg, static_cast<char*>(p));
    return;
  }
  SmallFree(pg, static_cast<char*>(p));
}

void FreeSized(void* p, size_t size, size_t alignment) {
  if (p != nullptr && !InZeroRegion(p)) {
    const size_t n = UsableSize(p);  // checks p
    // Requests up to 128 bytes reach the allocator rounded up to 16 (shim/request.h).
    const bool fits = alignment != 0 ? size <= n : size <= n && n - size < kMinAlign;
    if (!fits) {
      char detail[96];
      snprintf(detail, sizeof detail, "freed as %zu bytes, but %zu were asked for", size, n);
      Report(alignment != 0 ? "free_aligned_sized" : "free_sized", "wrong size for", p, n, detail);
    }
  }
  Free(p);
}

size_t UsableSize(const void* p) {
  if (p == nullptr || InZeroRegion(p)) return 0;
  ArenaHeader* huge;
  Page* pg = ResolveBlock(p, &huge, "malloc_usable_size");
  if (huge != nullptr) return huge->huge_requested;
  if (pg->kind == PageKind::kLarge) {
    if ((pg->secure & kQuarantined) != 0) {
      Report("malloc_usable_size", "use after free of", p, pg->large_size, "");
    }
    return static_cast<size_t>(pg->limit - static_cast<const char*>(p));
  }
  return CheckSmall("malloc_usable_size", pg, static_cast<char*>(const_cast<void*>(p)));
}

void* Realloc(void* p, size_t size) {
  Heap* h = CurrentHeapForSlowPath();
  if (h == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  if (p == nullptr) return Malloc(h, size, kMinAlign, false);
  const size_t old = UsableSize(p);  // checks p first
  if (ResizeInPlace(p, old, size)) return p;
  if (ResizeLargeGuarded(h, p, size)) return p;
  if (void* moved = ResizeHugeGuarded(h, p, size)) return moved;
  void* q = size > kMaxSmallSize - 8 && size > old
                ? GuardedAlloc(h, size, kMinAlign, false, /*headroom=*/true)
                : Malloc(h, size, kMinAlign, false);
  if (q == nullptr) return nullptr;
  memcpy(q, p, old < size ? old : size);
  Free(p);
  return q;
}

void FlushQuarantine(Heap* h) {
  while (h->sec.ring_count != 0) Evict(h);
  h->sec.ring_bytes = 0;
  h->sec.last_alloc = nullptr;
  while (h->sec.large_head != nullptr) EvictLarge(h);
}

void PushFree(Page* pg, Block* b) {
  // Word 1 may hold the default mode's free key (cache/check.h, written
  // by RemoteFree); a secure free block is zero but for its link.
  Store64(reinterpret_cast<char*>(b) + 8, 0);
  Store64(reinterpret_cast<char*>(b), EncodeLink(pg->free, b));
  pg->free = b;
}

}  // namespace execmem::secure
