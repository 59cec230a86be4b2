// One scenario per secure-mode feature (cache/secure.h), run by
// secure_features_test.sh under LD_PRELOAD with EXECMEM_SECURE=1 (and some
// without, to show the feature is the mode's). A scenario that checks a
// property prints "ok" and exits 0, or prints what it saw and exits 1; one
// that commits an error expects the allocator to stop it (the script checks
// the signal and the report).
#include <malloc.h>
#include <pthread.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace {

[[gnu::noinline]] void* Opaque(void* p) {
  asm volatile("" : "+r"(p) : : "memory");
  return p;
}
char* M(size_t n) { return static_cast<char*>(Opaque(malloc(n))); }

int Fail(const char* what) {
  printf("FAIL: %s\n", what);
  return 1;
}

// Frees enough other blocks that everything freed before has left the quarantine.
void Churn(size_t size = 64) {
  for (int i = 0; i < 32768; ++i) free(M(size));
}

int Canary() {       // overflow by one byte, caught at free
  char* p = M(200);  // above 128: the shim rounds smaller requests up to 16
  memset(p, 'x', 201);
  free(p);
  return Fail("overflow by 1 not reported");
}

int Underflow() {
  char* q = M(200);
  char* p = M(200);
  p[-1] = 'x';
  free(p);
  free(q);
  return Fail("underflow by 1 not reported");
}

// Freed blocks read zero (all of them: the quarantine keeps no link in the
// block); a write after free into a block's head is reported when the block
// is handed out again (blocks of its size churn until it is).
// An underflow that spares the word before the block (the canary of the
// block before) but lands in the block before: its slack if it is live, its
// zeroed bytes if it is free. Block 0 of a span of 4608-byte blocks is
// never handed out, so p always has a block before it.
int Neighbour() {
  char* p = M(4096);
  p[-32] ^= 'A';
  free(p);
  return Fail("underflow into the block before not reported");
}

// An overflow by memcpy of a block never freed: the next malloc checks the
// block handed out before it (its slack and canary).
int NextMalloc() {
  char* p = M(4096);
  memset(p, 0, 4097);
  char* q = M(64);
  free(q);
  return Fail("overflow of the block handed out last not reported at the next malloc");
}

int ZeroedAndChecked() {
  char* p = M(200);
  memset(p, 'x', 200);
  free(p);
  for (int i = 0; i < 200; ++i) {
    if (p[i] != 0) return Fail("a freed block is not zeroed");
  }
  p[150] = 'y';
  Churn(200);
  return Fail("write after free not reported");
}

int MallocIsZero() {  // secure malloc hands out zeroed memory, even reused blocks
  for (int round = 0; round < 4; ++round) {
    char* ps[512];
    for (char*& p : ps) {
      p = M(200);
      for (int i = 0; i < 200; ++i) {
        if (p[i] != 0) return Fail("malloc returned non-zero bytes");
      }
      memset(p, 0x5a, 200);
    }
    for (char* p : ps) free(p);
    Churn();
  }
  puts("ok");
  return 0;
}

int GuardAfter() {  // a large block ends at a guard page
  char* p = M(300 * 4096);
  p[300 * 4096] = 'x';
  return Fail("write past a large block did not fault");
}

int GuardBefore() {
  char* p = M(300 * 4096);
  p[-1] = 'x';
  return Fail("write before a large block did not fault");
}

int GuardHuge() {
  char* p = M(size_t{80} << 20);
  p[size_t{80} << 20] = 'x';
  return Fail("write past a huge block did not fault");
}

// An interior pointer 64 MiB into a huge block, freed: the fast free path
// reads a descriptor at (p >> 16) mod 4096 of the mapping, which lay in the
// no-access page before the block while the header's region was 128 KiB: a
// fault instead of the report (cache/large.h: kHugeLead).
int HugeInterior() {
  char* p = M(size_t{100} << 20);
  free(p + (size_t{64} << 20) + 4096);
  return Fail("free of a pointer inside a huge block was not reported");
}

int LargeUseAfterFree() {  // freed large blocks are no-access while quarantined
  char* p = M(1 << 20);
  free(p);
  p[10] = 'x';
  return Fail("write to a freed large block did not fault");
}

int EncodedLinks() {
  // Blocks that left the quarantine sit on their span's free list: none of
  // their first words may be a plain pointer to another block of the span.
  constexpr int kN = 256;
  char* ps[kN];
  for (char*& p : ps) p = M(48);
  for (char* p : ps) free(p);
  Churn();
  int plain = 0, nonzero = 0;
  for (char* p : ps) {
    uintptr_t w;
    memcpy(&w, p, sizeof w);
    nonzero += w != 0;
    for (char* q : ps) plain += w == reinterpret_cast<uintptr_t>(q);
  }
  if (nonzero == 0) return Fail("no free-list links seen");
  if (plain != 0) return Fail("free-list links are plain pointers");
  puts("ok");
  return 0;
}

int RandomOrder() {  // blocks of a fresh span do not come out in address order
  constexpr int kN = 64;
  char* ps[kN];
  for (char*& p : ps) p = M(48);
  int ascending = 0;
  for (int i = 1; i < kN; ++i) ascending += ps[i] > ps[i - 1];
  if (ascending == kN - 1) return Fail("blocks handed out in address order");
  puts("ok");
  return 0;
}

int ZeroSize() {  // malloc(0): distinct pointers that fault on access
  char* a = M(0);
  char* b = M(0);
  if (a == nullptr || a == b) return Fail("malloc(0) pointers not distinct");
  if (malloc_usable_size(a) != 0) return Fail("malloc(0) has usable bytes");
  free(b);
  a[0] = 'x';
  return Fail("write to malloc(0) did not fault");
}

int Quarantine() {  // a freed block is not handed out again at once
  char* p = M(48);
  free(p);
  for (int i = 0; i < 1000; ++i) {
    char* q = M(48);
    if (q == p) return Fail("a freed block was reused within 1000 allocations");
  }
  puts("ok");
  return 0;
}

int DoubleFree() {
  char* p = M(48);
  free(p);
  free(Opaque(p));
  return Fail("double free not reported");
}

int Realloc() {  // realloc keeps the data and the checks
  char* p = M(300);
  memcpy(p, "0123456789", 10);
  char* q = static_cast<char*>(Opaque(realloc(p, 310)));  // the same 320-byte block
  if (memcmp(q, "0123456789", 10) != 0) return Fail("realloc in place lost the data");
  const char* secure = getenv("EXECMEM_SECURE");
  if (secure != nullptr && secure[0] == '1' && malloc_usable_size(q) != 310) {
    return Fail("usable size is not the request");
  }
  memset(q + 10, 'z', 300);  // all of it is the program's
  p = q;
  p = static_cast<char*>(Opaque(realloc(p, 5000)));  // moved
  if (memcmp(p, "0123456789", 10) != 0) return Fail("realloc lost the data");
  p = static_cast<char*>(Opaque(realloc(p, 3 << 20)));
  if (memcmp(p, "0123456789", 10) != 0) return Fail("realloc to large lost the data");
  p[(3 << 20) - 1] = 1;
  free(p);
  puts("ok");
  return 0;
}

// Frees from another thread take the same checks (the common free path's
// other-heap case): the thread gets a heap of its own first (a thread that
// never allocated frees through the general path).
void* OverflowThenFreeElsewhere(void* arg) {
  free(M(64));
  char* p = static_cast<char*>(arg);
  p[200] = 'x';  // one byte into the slack (200 is above the shim's rounding)
  free(p);
  return nullptr;
}
int RemoteCanary() {
  char* p = M(200);
  pthread_t t;
  pthread_create(&t, nullptr, OverflowThenFreeElsewhere, p);
  pthread_join(t, nullptr);
  return Fail("overflow by 1 freed on another thread not reported");
}
void* FreeElsewhere(void* arg) {
  free(M(64));
  char* p = static_cast<char*>(arg);
  free(p);
  for (int i = 0; i < 200; ++i) {
    if (p[i] != 0) return Opaque(const_cast<char*>("a block freed on another thread is not zeroed"));
  }
  return nullptr;
}
int RemoteZeroed() {
  char* p = M(200);
  memset(p, 'x', 200);
  pthread_t t;
  void* what = nullptr;
  pthread_create(&t, nullptr, FreeElsewhere, p);
  pthread_join(t, &what);
  if (what != nullptr) return Fail(static_cast<const char*>(what));
  puts("ok");
  return 0;
}

// realloc (in the block's class) and malloc_usable_size of the last block of
// a fresh 16-byte span: a block start the span never handed out (it carves
// blocks as they are needed). Reported as not execmem's, in both modes, from
// the owner's thread and from another; the default mode returned the pointer
// and its size (docs/safety.md), secure mode took it for an overflow.
char* g_never;
void* NeverHandedOutRealloc(void*) { return Opaque(realloc(g_never, 16)); }
void* NeverHandedOutUsable(void*) {
  return Opaque(reinterpret_cast<void*>(malloc_usable_size(g_never)));
}
int NeverHandedOut(void* (*fn)(void*), bool elsewhere) {
  char* p = M(16);
  g_never = p + 16 * 3000;  // inside the span (4096 blocks), far past what it carved
  if (elsewhere) {
    pthread_t t;
    pthread_create(&t, nullptr, fn, nullptr);
    pthread_join(t, nullptr);
  } else {
    fn(nullptr);
  }
  free(p);
  return Fail("a block never handed out was taken");
}
int NeverHandedOutReallocHere() { return NeverHandedOut(NeverHandedOutRealloc, false); }
int NeverHandedOutReallocElsewhere() { return NeverHandedOut(NeverHandedOutRealloc, true); }
int NeverHandedOutUsableHere() { return NeverHandedOut(NeverHandedOutUsable, false); }
int NeverHandedOutUsableElsewhere() { return NeverHandedOut(NeverHandedOutUsable, true); }

// malloc_usable_size of a freed block: reported by secure mode (the block's
// free mark); the default mode answers its size (docs/checks.md: the check
// would cost malloc_usable_size's inline path two instructions, past its
// golden).
int FreedUsable() {
  char* p = M(48);
  free(p);
  printf("usable %zu\n", malloc_usable_size(Opaque(p)));
  return Fail("malloc_usable_size of a freed block answered");
}

struct Scenario {
  const char* name;
  int (*fn)();
};
constexpr Scenario kScenarios[] = {
    {"canary", Canary},           {"underflow", Underflow},
    {"zeroed", ZeroedAndChecked}, {"malloc_zero", MallocIsZero},
    {"guard_after", GuardAfter},  {"guard_before", GuardBefore},
    {"guard_huge", GuardHuge},    {"large_uaf", LargeUseAfterFree},
    {"encoded", EncodedLinks},    {"random", RandomOrder},
    {"zero_size", ZeroSize},      {"quarantine", Quarantine},
    {"double_free", DoubleFree},  {"realloc", Realloc},
    {"neighbour", Neighbour},     {"next_malloc", NextMalloc},
    {"remote_canary", RemoteCanary}, {"remote_zeroed", RemoteZeroed},
    {"huge_interior", HugeInterior},
    {"never_realloc", NeverHandedOutReallocHere},
    {"never_realloc_remote", NeverHandedOutReallocElsewhere},
    {"never_usable", NeverHandedOutUsableHere},
    {"never_usable_remote", NeverHandedOutUsableElsewhere},
    {"freed_usable", FreedUsable},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2) {
    for (const Scenario& s : kScenarios) {
      if (std::string_view(argv[1]) == s.name) return s.fn();
    }
  }
  fprintf(stderr, "usage: %s SCENARIO\n", argv[0]);
  return 2;
}
