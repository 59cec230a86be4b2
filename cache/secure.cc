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

namespace {

constexpr int kDeciding = -2;     // negative: Enabled() waits in Decide()
constexpr size_t kOsPage = 4096;  // guard pages; os::PageSize() on x86-64 / aarch64 Linux

// Per-process secrets: one keys canaries, one free-list and quarantine links.
uint64_t g_canary_key = 0;
uint64_t g_link_key = 0;

inline uintptr_t Addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }
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
// Bytes of a block checked again when it is reused (all of its watched
// bytes were checked when it left the quarantine).
constexpr size_t kReuseCheckBytes = 256;
// A freed block's first kWatchBytes (all of most blocks) are zeroed and
// watched for writes after free; the rest of a larger block keeps its stale
// bytes (the cost of zeroing and checking grows with the block, the value of
// it does not: a dangling object's fields are at its head).
constexpr size_t kWatchBytes = 16384;
inline size_t Watched(size_t block_size) {
  return block_size < kWatchBytes ? block_size : kWatchBytes;
}

// The canary of an allocated small block at b holding n bytes: never 0 (0
// marks a free block), and n < 2^18 decodes back only with the right key.
inline uint64_t CanaryMask(const char* b) {
  return (Addr(b) * 0x9E3779B97F4A7C15ull) ^ g_canary_key;
}
inline uint64_t EncodeLink(const void* next, const void* slot) {
  return Addr(next) ^ g_link_key ^ (Addr(slot) >> 4);
}
inline char* DecodeLink(uint64_t v, const void* slot) {
  return reinterpret_cast<char*>(v ^ g_link_key ^ (Addr(slot) >> 4));
}

// Offset of the first byte in [from, to) that is not `byte`, or -1. Scans
// 64 bytes a step in 16-byte vectors (the common answer is -1, so the exact
// place is looked for only once a step differs), then words, then bytes.
ptrdiff_t FirstNot(const char* from, const char* to, unsigned char byte = 0) {
  using V = uint64_t __attribute__((vector_size(16)));
  const uint64_t word = 0x0101010101010101ull * byte;
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

// ---- small blocks ----

uint64_t NextRandom(Heap* h) {  // xorshift64*
  uint64_t x = h->secure_rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  h->secure_rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

// Block 0 of a span of three blocks or more is never handed out, so that
// every block has a checked word before it; in spans of one or two blocks
// (above 28 KiB) that would waste too much, and block 0 has no check before it.
bool ReservesBlock0(const Page* pg) { return kSizeClasses.capacity[pg->size_class] >= 3; }

// Takes the head of pg's free list, checking its link and that it is still zero.
char* Pop(Page* pg) {
  char* b = reinterpret_cast<char*>(pg->free);
  const uint32_t size = pg->block_size;
  char* next = DecodeLink(Load64(b), b);
  const char* start = PageStart(pg);
  if (next != nullptr && (next < start || next >= pg->bump || (next - start) % size != 0 ||
                          (next == start && ReservesBlock0(pg)))) {
    Report("malloc", "write after free: the free-list link of", b, size,
           "it no longer points at a free block of its span");
  }
  // The whole block was checked when it left the quarantine; here only its
  // head, where a stale pointer's fields are (the cost is per allocation).
  const char* checked_end = b + (size < kReuseCheckBytes ? size : kReuseCheckBytes);
  if (const ptrdiff_t at = FirstNot(b + 8, checked_end); at >= 0) {
    char detail[64];
    snprintf(detail, sizeof detail, "byte %td changed after it was freed", at + 8);
    Report("malloc", "write after free of", b, size, detail);
  }
  pg->free = reinterpret_cast<Block*>(next);
  Store64(b, 0);
  return b;
}

// Carves the next batch of blocks (about an OS page) into the free list in
// random order.
void Carve(Heap* h, Page* pg) {
  const uint32_t size = pg->block_size;
  char* start = PageStart(pg);
  if (pg->bump == start && ReservesBlock0(pg)) {
    if (!pg->zeroed) memset(start, 0, size);
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
    const uint32_t j = static_cast<uint32_t>(NextRandom(h) % i);
    const uint16_t t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  pg->bump = first + size_t{n} * size;  // before the pushes: Pop checks links against it
  for (uint32_t i = 0; i < n; ++i) {
    PushFree(pg, reinterpret_cast<Block*>(first + size_t{order[i]} * size));
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
        SyncPage(h, pg);
        if (!HasFree(pg)) MoveToFull(h, pg);
        if (zero && n > kWatchBytes) memset(b + kWatchBytes, 0, n - kWatchBytes);
        memset(b + n, kSlack, pg->block_size - 8 - n);
        Store64(b + pg->block_size - 8, CanaryMask(b) ^ n);
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
// zero bytes after the request and the word before b; reports otherwise.
size_t CheckSmall(const char* op, Page* pg, char* b) {
  const uint32_t size = pg->block_size;
  const bool first = b == PageStart(pg);
  if (first && ReservesBlock0(pg)) ReportInvalidPointer(op, b);  // never handed out
  const uint64_t tail = Load64(b + size - 8);
  if (tail == 0) {
    Report(op, "double free (or a block never allocated):", b, size, "");
  }
  const uint64_t n = tail ^ CanaryMask(b);
  if (n > size - 8) {
    Report(op, "heap overflow past the end of", b, size,
           "the canary after the block is overwritten");
  }
  if (const ptrdiff_t at = FirstNot(b + n, b + size - 8, kSlack); at >= 0) {
    char detail[80];
    snprintf(detail, sizeof detail, "byte %td past the %zu bytes asked for was written", at,
             static_cast<size_t>(n));
    Report(op, "heap overflow past the end of", b, size, detail);
  }
  const uint64_t before = first ? 0 : Load64(b - 8);
  if (before != 0 && (before ^ CanaryMask(b - size)) > size - 8) {
    Report(op, "heap underflow before", b, size,
           "the word before the block (the canary of the block before) is overwritten");
  }
  return static_cast<size_t>(n);
}

// The block freed last (the quarantine's tail) is checked again at each of
// the heap's secure mallocs and small frees, not only when it leaves the
// quarantine: a write through a pointer just freed (the commonest use after
// free) is reported before the program goes on. Its link and its head
// (kReuseCheckBytes): the cost is per call. Only this thread writes its
// quarantined blocks (anyone else writing one is the error looked for).
void CheckNewestFreed(Heap* h, const char* op) {
  char* tail = reinterpret_cast<char*>(h->quarantine_tail);
  if (tail == nullptr) return;
  const uint32_t size = SmallPageOf(tail)->block_size;
  if (Load64(tail) != EncodeLink(nullptr, tail)) {
    Report(op, "write after free: the quarantine link of", tail, size,
           "its first word changed after it was freed");
  }
  const char* head_end = tail + (size < kReuseCheckBytes ? size : kReuseCheckBytes);
  if (const ptrdiff_t at = FirstNot(tail + 8, head_end); at >= 0) {
    char detail[64];
    snprintf(detail, sizeof detail, "byte %td changed after it was freed", at + 8);
    Report(op, "write after free of", tail, size, detail);
  }
}

// Gives a block that left the quarantine back to its span.
void ReleaseBlock(Heap* h, Page* pg, char* b) {
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

void Evict(Heap* h) {
  char* b = reinterpret_cast<char*>(h->quarantine_head);
  char* next = DecodeLink(Load64(b), b);
  Page* pg = SmallPageOf(b);
  const uint32_t size = pg->block_size;
  if ((next == nullptr) != (b == reinterpret_cast<char*>(h->quarantine_tail)) ||
      (next != nullptr && SlotLookup(next) == 0)) {
    Report("free", "write after free: the quarantine link of", b, size,
           "its first word changed after it was freed");
  }
  if (const ptrdiff_t at = FirstNot(b + 8, b + Watched(size)); at >= 0) {
    char detail[64];
    snprintf(detail, sizeof detail, "byte %td changed after it was freed", at + 8);
    Report("free", "write after free of", b, size, detail);
  }
  h->quarantine_head = reinterpret_cast<Block*>(next);
  if (next == nullptr) h->quarantine_tail = nullptr;
  h->quarantine_bytes -= size;
  Store64(b, 0);
  ReleaseBlock(h, pg, b);
}

void SmallFree(Page* pg, char* b) {
  Heap* h = tls_heap;
  const bool mine = OwnerHeap(pg) == h;
  if (mine && b >= pg->bump) ReportInvalidPointer("free", b);  // never handed out
  CheckSmall("free", pg, b);
  const uint32_t size = pg->block_size;
  memset(b, 0, Watched(size));
  Store64(b + size - 8, 0);                    // the zero canary marks it free
  if (h == &g_bootstrap_heap || !h->secure) {  // a thread's last frees, after its heap went
    RemoteFree(pg, reinterpret_cast<Block*>(b));
    return;
  }
  Store64(b, EncodeLink(nullptr, b));
  if (char* tail = reinterpret_cast<char*>(h->quarantine_tail)) {
    CheckNewestFreed(h, "free");
    Store64(tail, EncodeLink(b, tail));
  } else {
    h->quarantine_head = reinterpret_cast<Block*>(b);
  }
  h->quarantine_tail = reinterpret_cast<Block*>(b);
  h->quarantine_bytes += size;
  while (h->quarantine_bytes > kQuarantineBytes) Evict(h);
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
  // Zeroed whatever `zero` says: a reused span must not hand the last
  // owner's data to the next (fresh spans cost nothing, LargeAlloc knows).
  char* p0 = static_cast<char*>(LargeAlloc(h, lead + body + kOsPage,
                                           alignment > kPageSize ? alignment : kMinAlign,
                                           /*zero=*/true, headroom));
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
  Page* pg = h->large_quarantine_head;
  h->large_quarantine_head = pg->next;
  if (pg->next == nullptr) h->large_quarantine_tail = nullptr;
  pg->next = nullptr;
  h->large_quarantine_bytes -= pg->large_size;
  --h->large_quarantine_count;
  char* start = PageStart(pg);
  const size_t body =
      RoundPage(pg->limit == reinterpret_cast<char*>(pg->large_user)
                    ? 1
                    : static_cast<size_t>(pg->limit - reinterpret_cast<char*>(pg->large_user)));
  os::Protect(start, pg->large_user + body + kOsPage - Addr(start), true);
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
  if (const ptrdiff_t at = FirstNot(user + n, user + body, kSlack); at >= 0) {
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
  // Quarantined with no access: any use after free faults.
  os::Protect(start, Addr(user) + body + kOsPage - Addr(start), false);
  pg->secure = kQuarantined;
  pg->next = nullptr;
  if (h->large_quarantine_tail != nullptr) {
    h->large_quarantine_tail->next = pg;
  } else {
    h->large_quarantine_head = pg;
  }
  h->large_quarantine_tail = pg;
  h->large_quarantine_bytes += pg->large_size;
  ++h->large_quarantine_count;
  while (h->large_quarantine_bytes > kLargeQuarantineBytes ||
         h->large_quarantine_count > kLargeQuarantineBlocks) {
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
  if (size > old) memset(b + old, 0, size - old);
  memset(b + size, kSlack, bs - 8 - size);
  Store64(b + bs - 8, CanaryMask(b) ^ size);
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
  CheckNewestFreed(h, "malloc");
  const size_t a = alignment < kMinAlign ? kMinAlign : alignment;
  if (size == 0 && a == kMinAlign) {
    if (void* z = ZeroBlock()) return z;
  }
  if (size <= kMaxSmallSize - 8 && a <= kPageSize) {
    size_t c = SizeClassOf(size + 8);
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
  while (h->quarantine_head != nullptr) Evict(h);
  while (h->large_quarantine_head != nullptr) EvictLarge(h);
}

void PushFree(Page* pg, Block* b) {
  // Word 1 may hold the default mode's free key (cache/check.h, written
  // by RemoteFree); a secure free block is zero but for its link.
  Store64(reinterpret_cast<char*>(b) + 8, 0);
  Store64(reinterpret_cast<char*>(b), EncodeLink(pg->free, b));
  pg->free = b;
}

}  // namespace execmem::secure
