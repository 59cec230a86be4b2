// Secure mode's guard pages (cache/secure.h): large and huge blocks between
// two PROT_NONE pages, the slack after the request checked at free, freed
// large blocks no-access in a quarantine. Large blocks are large.cc's; this
// file wraps them (in the cache's order, right after large.cc).
#include <cstdio>
#include <cstring>

#include "cache/heap.h"
#include "cache/large.h"
#include "cache/secure.h"
#include "cache/secure_policy.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem::secure {
namespace {

inline size_t RoundPage(size_t n) { return (n + kOsPage - 1) & ~(kOsPage - 1); }

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

}  // namespace

void* GuardedAlloc(Heap* h, size_t n, size_t alignment, bool zero, bool headroom) {
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
    Page* head = SpanHeadOf(p0);
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

void GuardedFree(Heap* h, ArenaHeader* huge, Page* pg, char* user) {
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
    HugeFree(huge, /*keep=*/false);  // unmapped: a later access faults
    return;
  }
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

size_t GuardedSize(ArenaHeader* huge, Page* pg, const void* user) {
  if (huge != nullptr) return huge->huge_requested;
  if ((pg->secure & kQuarantined) != 0) {
    Report("malloc_usable_size", "use after free of", user, pg->large_size, "");
  }
  return static_cast<size_t>(pg->limit - static_cast<const char*>(user));
}

bool ResizeLargeGuarded(Heap* h, Page* pg, char* user, size_t size) {
  if (size <= kMaxSmallSize) return false;
  const size_t old = static_cast<size_t>(pg->limit - user);
  // Within its OS pages: only the slack moves.
  if (RoundPage(size) == RoundPage(old == 0 ? 1 : old)) {
    if (size > old) memset(user + old, 0, size - old);
    memset(user + size, kSlack, RoundPage(size) - size);
    pg->limit = user + size;
    return true;
  }
  char* start = PageStart(pg);
  if (user != start + kOsPage) return false;  // aligned blocks move
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

void* ResizeHugeGuarded(Heap* h, void* p, size_t size) {
  const uintptr_t base = SlotLookup(p);
  if (base == 0 || size > kMaxRequest) return nullptr;
  ArenaHeader* ah = ArenaOf(base);
  if (!ah->huge || ah->huge_user != Addr(p) || Addr(p) - base != kHugeLead + kOsPage) {
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

void FlushLargeQuarantine(Heap* h) {
  while (h->sec.large_head != nullptr) EvictLarge(h);
}

}  // namespace execmem::secure
