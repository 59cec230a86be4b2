// The memory-safety error suite: each case commits ONE error, then carries on
// as a program would (it frees what it holds, churns the allocator so that
// quarantines and delayed checks get their chance, and exits 0). Run under an
// allocator with LD_PRELOAD; the error counts as caught when the process does
// not exit 0 (a report and abort, or a fault). tests/safety/run.sh runs them.
//
//   execmem-safety-errors --list     one line per case: name kind
//   execmem-safety-errors NAME       runs one case
//
// Built without optimisation and with warnings off: the errors are the point.
// Every pointer passes through Opaque() so that the compiler cannot see (or
// remove) what the program does with it.
#include <pthread.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>

namespace {

constexpr size_t kSmall = 48;
constexpr size_t kMedium = 20000;           // a small class of a multi-page span
constexpr size_t kLarge = 300000;           // one span of its own
constexpr size_t kHuge = size_t{80} << 20;  // a mapping of its own (more than an arena)
constexpr size_t kMiB = size_t{1} << 20;

[[gnu::noinline]] void* Opaque(void* p) {
  asm volatile("" : "+r"(p) : : "memory");
  return p;
}
char* M(size_t n) { return static_cast<char*>(Opaque(malloc(n))); }
void F(void* p) { free(Opaque(p)); }

// What a program does after the error: more allocations and frees of small
// and large blocks (about 4 MiB small, 24 large), so that delayed checks run.
void Churn() {
  for (int i = 0; i < 65536; ++i) {
    char* p = M(16 + (i % 4) * 16);
    p[0] = 1;
    F(p);
  }
  for (int i = 0; i < 24; ++i) {
    char* p = M(kMiB + 4096 * (i % 3));
    p[0] = 1;
    F(p);
  }
}

void Fill(char* p, size_t n) { memset(Opaque(p), 'A', n); }

// ---- double frees ----
void DfPlain(size_t n) {
  char* p = M(n);
  Fill(p, 8);
  F(p);
  F(p);
}
void DfDelayed(size_t n) {
  char* p = M(n);
  F(p);
  for (int i = 0; i < 100; ++i) F(M(16 + 8 * (i % 10)));
  F(p);
}
void DfInterleaved(size_t n) {
  char* a = M(n);
  char* b = M(n);
  F(a);
  F(b);
  F(a);
}
void DfAfterReuse(size_t n) {
  char* p = M(n);
  F(p);
  char* q = M(n);  // often p again
  F(p);
  F(q);
}
void* FreeIt(void* p) {
  F(p);
  return nullptr;
}
void DfThread(size_t n) {
  char* p = M(n);
  F(p);
  pthread_t t;
  pthread_create(&t, nullptr, FreeIt, p);
  pthread_join(t, nullptr);
}
void DfDeleteArray(size_t n) {
  char* p = static_cast<char*>(Opaque(new char[n]));
  delete[] p;
  delete[] static_cast<char*>(Opaque(p));
}
void DfCalloc(size_t n) {
  char* p = static_cast<char*>(Opaque(calloc(1, n)));
  F(p);
  F(p);
}
void DfAligned(size_t n) {
  void* p = nullptr;
  if (posix_memalign(&p, n > kMiB ? kMiB : 64, n) != 0) return;
  F(p);
  F(p);
}
void DfReallocMoved(size_t n) {
  char* p = M(n);
  char* q = static_cast<char*>(Opaque(realloc(p, 4 * n)));
  F(p);
  F(q);
}

// ---- invalid frees ----
char g_global[64];
thread_local char t_local[64];
void IfStack(size_t) {
  char local[64];
  F(local);
}
void IfGlobal(size_t) { F(g_global); }
void IfRodata(size_t) { F(const_cast<char*>("a string literal")); }
void IfTls(size_t) { F(t_local); }
void IfWild(size_t n) { F(reinterpret_cast<void*>(n)); }
void IfMmap(size_t) {
  void* p = mmap(nullptr, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  F(static_cast<char*>(p) + 4096);
}
void IfInterior(size_t n) {
  // n encodes block size and offset: size in the high bits, offset in the low 24.
  const size_t size = n >> 24, off = n & ((size_t{1} << 24) - 1);
  char* p = M(size);
  F(p + off);
  F(p);
}
void IfArenaMeta(size_t) {
  char* p = M(kSmall);
  // The start of the 64 MiB-aligned region holding p: execmem's arena header.
  F(reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(p) & ~((uintptr_t{1} << 26) - 1)) + 256);
  F(p);
}

// ---- overflows and underflows (linear: a loop runs past the block) ----
void Overflow(size_t n) {
  const size_t size = n >> 24, by = n & ((size_t{1} << 24) - 1);
  char* p = M(size);
  Fill(p, size);
  Fill(p + size, by);
  F(p);
  Churn();
}
void Underflow(size_t n) {
  const size_t size = n >> 24, by = n & ((size_t{1} << 24) - 1);
  char* before = M(size);  // so that the block below is someone's
  char* p = M(size);
  Fill(p, size);
  Fill(p - by, by);
  F(p);
  F(before);
  Churn();
}
void OverflowStrcpy(size_t) {
  const char* s = "forty-eight characters of text, then its NUL!!!!";
  char* p = M(strlen(s));
  strcpy(static_cast<char*>(Opaque(p)), s);
  F(p);
  Churn();
}
void OverflowCalloc(size_t n) {
  char* p = static_cast<char*>(Opaque(calloc(1, n)));
  Fill(p, n + 1);
  F(p);
  Churn();
}
void UnderflowCalloc(size_t n) {
  char* q = static_cast<char*>(Opaque(calloc(1, n)));
  char* p = static_cast<char*>(Opaque(calloc(1, n)));
  Fill(p - 1, 1);
  F(p);
  F(q);
  Churn();
}
void OverflowRealloc(size_t n) {
  char* p = M(n / 2);
  p = static_cast<char*>(Opaque(realloc(p, n)));
  Fill(p, n + 1);
  F(p);
  Churn();
}
void OverflowAligned(size_t n) {
  void* p = nullptr;
  if (posix_memalign(&p, 64, n) != 0) return;
  Fill(static_cast<char*>(p), n + 8);
  F(p);
  Churn();
}
void UnderflowAligned(size_t n) {
  void* q = nullptr;
  void* p = nullptr;
  if (posix_memalign(&q, 64, n) != 0 || posix_memalign(&p, 64, n) != 0) return;
  Fill(static_cast<char*>(p) - 8, 8);
  F(p);
  F(q);
  Churn();
}

// ---- writes after free ----
void UafImmediate(size_t n) {
  char* p = M(n);
  F(p);
  Fill(p + n / 2, 1);
  Churn();
}
void UafAfterAllocs(size_t n) {
  char* p = M(n);
  F(p);
  char* keep[32];
  for (int i = 0; i < 32; ++i) keep[i] = M(16 + 16 * (i % 8));
  Fill(p + 8, 8);
  for (char* k : keep) F(k);
  Churn();
}
void UafFirstWord(size_t n) {
  char* p = M(n);
  F(p);
  Fill(p, 8);
  Churn();
}
char g_target[256];
void UafPoison(size_t n) {
  char* p = M(n);
  F(p);
  void* target = g_target;
  memcpy(Opaque(p), &target, sizeof target);  // a forged free-list link
  char* a = M(n);
  char* b = M(n);
  Fill(b, n);
  F(a);
  F(b);
  Churn();
}
void UafRealloc(size_t n) {
  char* p = M(n);
  char* q = static_cast<char*>(Opaque(realloc(p, 8 * n)));
  if (q == p) {  // grown in place: the old pointer dangles once the block is freed
    F(q);
    Fill(p + 8, 1);
  } else {
    Fill(p + 8, 1);  // through the old pointer
    F(q);
  }
  Churn();
}
struct Obj {
  long x[6];
};
void UafDelete(size_t) {
  Obj* o = static_cast<Obj*>(Opaque(new Obj()));
  delete o;
  static_cast<Obj*>(Opaque(o))->x[3] = 42;
  Churn();
}
void UafCalloc(size_t n) {
  char* p = static_cast<char*>(Opaque(calloc(1, n)));
  F(p);
  Fill(p + 16, 1);
  Churn();
}
void RafLarge(size_t n) {
  char* p = M(n);
  Fill(p, n);
  F(p);
  volatile char c = static_cast<char*>(Opaque(p))[100];
  (void)c;
  Churn();
}

// ---- zero-size blocks ----
void ZeroWrite(size_t at) {
  char* p = M(0);
  Fill(p + at, 1);
  F(p);
  Churn();
}
void ZeroRead(size_t) {
  char* p = M(0);
  volatile char c = p[0];
  (void)c;
  F(p);
  Churn();
}
void ZeroMemset(size_t n) {
  char* p = M(0);
  Fill(p, n);
  F(p);
  Churn();
}
void ZeroStrcpy(size_t) {
  char* p = M(0);
  strcpy(static_cast<char*>(Opaque(p)), "x");
  F(p);
  Churn();
}
void ZeroCalloc(size_t) {
  char* p = static_cast<char*>(Opaque(calloc(0, 16)));
  Fill(p, 1);
  F(p);
  Churn();
}
void ZeroNew(size_t) {
  char* p = static_cast<char*>(Opaque(new char[0]));
  Fill(p, 1);
  delete[] p;
  Churn();
}
void ZeroAligned(size_t) {
  char* p = static_cast<char*>(Opaque(aligned_alloc(16, 0)));
  Fill(p, 1);
  F(p);
  Churn();
}
void ZeroDoubleFree(size_t) {
  char* p = M(0);
  F(p);
  F(p);
}

// ---- mismatched allocation and deallocation ----
struct WithDtor {
  long v = 7;
  ~WithDtor() { v = 0; }
};
void MmNewArrayDelete(size_t) {
  char* p = static_cast<char*>(Opaque(new char[64]));
  delete static_cast<char*>(Opaque(p));
  Churn();
}
void MmNewArrayDeleteDtor(size_t) {
  WithDtor* p = static_cast<WithDtor*>(Opaque(new WithDtor[4]));
  delete static_cast<WithDtor*>(Opaque(p));
  Churn();
}
void MmNewDeleteArrayDtor(size_t) {
  WithDtor* p = static_cast<WithDtor*>(Opaque(new WithDtor));
  delete[] static_cast<WithDtor*>(Opaque(p));
  Churn();
}
void MmNewFree(size_t) {
  Obj* o = static_cast<Obj*>(Opaque(new Obj()));
  F(o);
  Churn();
}
void MmMallocDelete(size_t) {
  Obj* o = static_cast<Obj*>(Opaque(malloc(sizeof(Obj))));
  delete o;
  Churn();
}
void MmNewArrayFreeDtor(size_t) {
  WithDtor* p = static_cast<WithDtor*>(Opaque(new WithDtor[4]));
  F(p);
  Churn();
}
void MmMallocDeleteArrayDtor(size_t) {
  WithDtor* p = static_cast<WithDtor*>(Opaque(malloc(4 * sizeof(WithDtor))));
  delete[] static_cast<WithDtor*>(Opaque(p));
  Churn();
}
void MmAlignedNewPlainDelete(size_t) {
  void* p = Opaque(::operator new(256, std::align_val_t(64)));
  ::operator delete(p);
  Churn();
}
void MmSizedDeleteWrong(size_t n) {
  void* p = Opaque(::operator new(n));
  ::operator delete(p, n / 3);
  Churn();
}

// ---- realloc of what is not a live block ----
void ReallocFreed(size_t n) {
  char* p = M(n);
  F(p);
  char* q = static_cast<char*>(Opaque(realloc(p, 2 * n)));
  F(q);
  Churn();
}
void ReallocStack(size_t) {
  char local[64];
  F(Opaque(realloc(local, 128)));
}
void ReallocInterior(size_t) {
  char* p = M(kSmall);
  F(Opaque(realloc(p + 16, 128)));
}

struct Case {
  const char* name;
  const char* kind;
  void (*fn)(size_t);
  size_t arg;
};

constexpr size_t Pack(size_t size, size_t low) { return size << 24 | low; }

constexpr Case kCases[] = {
    // double_free: every size × plain, delayed, interleaved, after reuse, another thread, delete[]
    {"df_plain_small", "double_free", DfPlain, kSmall},
    {"df_plain_medium", "double_free", DfPlain, kMedium},
    {"df_plain_large", "double_free", DfPlain, kLarge},
    {"df_plain_huge", "double_free", DfPlain, kHuge},
    {"df_delayed_small", "double_free", DfDelayed, kSmall},
    {"df_delayed_medium", "double_free", DfDelayed, kMedium},
    {"df_delayed_large", "double_free", DfDelayed, kLarge},
    {"df_delayed_huge", "double_free", DfDelayed, kHuge},
    {"df_interleaved_small", "double_free", DfInterleaved, kSmall},
    {"df_interleaved_medium", "double_free", DfInterleaved, kMedium},
    {"df_interleaved_large", "double_free", DfInterleaved, kLarge},
    {"df_interleaved_huge", "double_free", DfInterleaved, kHuge},
    {"df_after_reuse_small", "double_free", DfAfterReuse, kSmall},
    {"df_after_reuse_medium", "double_free", DfAfterReuse, kMedium},
    {"df_after_reuse_large", "double_free", DfAfterReuse, kLarge},
    {"df_after_reuse_huge", "double_free", DfAfterReuse, kHuge},
    {"df_thread_small", "double_free", DfThread, kSmall},
    {"df_thread_medium", "double_free", DfThread, kMedium},
    {"df_thread_large", "double_free", DfThread, kLarge},
    {"df_thread_huge", "double_free", DfThread, kHuge},
    {"df_delete_array_small", "double_free", DfDeleteArray, kSmall},
    {"df_delete_array_medium", "double_free", DfDeleteArray, kMedium},
    {"df_delete_array_large", "double_free", DfDeleteArray, kLarge},
    {"df_delete_array_huge", "double_free", DfDeleteArray, kHuge},
    {"df_calloc_small", "double_free", DfCalloc, kSmall},
    {"df_aligned_small", "double_free", DfAligned, 100},
    {"df_aligned_large", "double_free", DfAligned, kLarge},
    {"df_realloc_moved_small", "double_free", DfReallocMoved, kSmall},
    {"df_realloc_moved_large", "double_free", DfReallocMoved, kLarge},
    {"df_zero_size", "double_free", ZeroDoubleFree, 0},
    // invalid_free: not a block of the heap, or not the start of one
    {"if_stack", "invalid_free", IfStack, 0},
    {"if_global", "invalid_free", IfGlobal, 0},
    {"if_rodata", "invalid_free", IfRodata, 0},
    {"if_wild_low", "invalid_free", IfWild, 0x10},
    {"if_wild_high", "invalid_free", IfWild, size_t{0x100000000000}},
    {"if_mmap", "invalid_free", IfMmap, 0},
    {"if_arena_metadata", "invalid_free", IfArenaMeta, 0},
    {"if_interior_small_16", "invalid_free", IfInterior, Pack(kSmall, 16)},
    {"if_interior_small_1", "invalid_free", IfInterior, Pack(kSmall, 1)},
    {"if_interior_medium_64", "invalid_free", IfInterior, Pack(kMedium, 64)},
    {"if_interior_large_8", "invalid_free", IfInterior, Pack(kLarge, 8)},
    {"if_interior_large_4096", "invalid_free", IfInterior, Pack(kLarge, 4096)},
    {"if_interior_large_64k", "invalid_free", IfInterior, Pack(kLarge, 65536)},
    {"if_interior_huge_4096", "invalid_free", IfInterior, Pack(kHuge, 4096)},
    {"if_interior_huge_2m", "invalid_free", IfInterior, Pack(kHuge, 2 * kMiB)},
    // overflow: a write loop runs 1, 32 or 1 MiB bytes past the end, then free
    {"of_small_1", "overflow", Overflow, Pack(kSmall, 1)},
    {"of_small_32", "overflow", Overflow, Pack(kSmall, 32)},
    {"of_small_1m", "overflow", Overflow, Pack(kSmall, kMiB)},
    {"of_medium_1", "overflow", Overflow, Pack(kMedium, 1)},
    {"of_medium_32", "overflow", Overflow, Pack(kMedium, 32)},
    {"of_medium_1m", "overflow", Overflow, Pack(kMedium, kMiB)},
    {"of_large_1", "overflow", Overflow, Pack(kLarge, 1)},
    {"of_large_32", "overflow", Overflow, Pack(kLarge, 32)},
    {"of_large_1m", "overflow", Overflow, Pack(kLarge, kMiB)},
    {"of_huge_1", "overflow", Overflow, Pack(kHuge, 1)},
    {"of_huge_32", "overflow", Overflow, Pack(kHuge, 32)},
    {"of_huge_1m", "overflow", Overflow, Pack(kHuge, kMiB)},
    {"of_odd_size_1", "overflow", Overflow, Pack(37, 1)},
    {"of_strcpy_nul", "overflow", OverflowStrcpy, 0},
    {"of_calloc_1", "overflow", OverflowCalloc, kSmall},
    {"of_realloc_1", "overflow", OverflowRealloc, kSmall},
    {"of_aligned_8", "overflow", OverflowAligned, 64},
    // underflow: a write loop runs 1, 32 or 1 MiB bytes before the start, then free
    {"uf_small_1", "underflow", Underflow, Pack(kSmall, 1)},
    {"uf_small_32", "underflow", Underflow, Pack(kSmall, 32)},
    {"uf_small_1m", "underflow", Underflow, Pack(kSmall, kMiB)},
    {"uf_medium_1", "underflow", Underflow, Pack(kMedium, 1)},
    {"uf_medium_32", "underflow", Underflow, Pack(kMedium, 32)},
    {"uf_medium_1m", "underflow", Underflow, Pack(kMedium, kMiB)},
    {"uf_large_1", "underflow", Underflow, Pack(kLarge, 1)},
    {"uf_large_32", "underflow", Underflow, Pack(kLarge, 32)},
    {"uf_large_1m", "underflow", Underflow, Pack(kLarge, kMiB)},
    {"uf_huge_1", "underflow", Underflow, Pack(kHuge, 1)},
    {"uf_huge_32", "underflow", Underflow, Pack(kHuge, 32)},
    {"uf_huge_1m", "underflow", Underflow, Pack(kHuge, kMiB)},
    {"uf_calloc_1", "underflow", UnderflowCalloc, kSmall},
    {"uf_aligned_8", "underflow", UnderflowAligned, 64},
    // use_after_free: writes (and a read) through a freed pointer
    {"uaf_immediate_small", "use_after_free", UafImmediate, kSmall},
    {"uaf_immediate_medium", "use_after_free", UafImmediate, kMedium},
    {"uaf_immediate_large", "use_after_free", UafImmediate, kLarge},
    {"uaf_immediate_huge", "use_after_free", UafImmediate, kHuge},
    {"uaf_after_allocs_small", "use_after_free", UafAfterAllocs, kSmall},
    {"uaf_after_allocs_medium", "use_after_free", UafAfterAllocs, kMedium},
    {"uaf_after_allocs_large", "use_after_free", UafAfterAllocs, kLarge},
    {"uaf_after_allocs_huge", "use_after_free", UafAfterAllocs, kHuge},
    {"uaf_first_word_small", "use_after_free", UafFirstWord, kSmall},
    {"uaf_first_word_large", "use_after_free", UafFirstWord, kLarge},
    {"uaf_poison_link_small", "use_after_free", UafPoison, kSmall},
    {"uaf_realloc_old_small", "use_after_free", UafRealloc, kSmall},
    {"uaf_realloc_old_large", "use_after_free", UafRealloc, kLarge},
    {"uaf_delete_object", "use_after_free", UafDelete, 0},
    {"uaf_calloc_small", "use_after_free", UafCalloc, kSmall},
    {"uaf_read_large", "use_after_free", RafLarge, kLarge},
    // zero_size: touching the bytes of malloc(0) and its kin
    {"zero_write_0", "zero_size", ZeroWrite, 0},
    {"zero_write_8", "zero_size", ZeroWrite, 8},
    {"zero_read_0", "zero_size", ZeroRead, 0},
    {"zero_memset_16", "zero_size", ZeroMemset, 16},
    {"zero_strcpy", "zero_size", ZeroStrcpy, 0},
    {"zero_calloc", "zero_size", ZeroCalloc, 0},
    {"zero_new_array", "zero_size", ZeroNew, 0},
    {"zero_aligned_alloc", "zero_size", ZeroAligned, 0},
    // mismatched: the wrong function frees the block
    {"mm_new_array_delete", "mismatched", MmNewArrayDelete, 0},
    {"mm_new_array_delete_dtor", "mismatched", MmNewArrayDeleteDtor, 0},
    {"mm_new_delete_array_dtor", "mismatched", MmNewDeleteArrayDtor, 0},
    {"mm_new_free", "mismatched", MmNewFree, 0},
    {"mm_malloc_delete", "mismatched", MmMallocDelete, 0},
    {"mm_new_array_free_dtor", "mismatched", MmNewArrayFreeDtor, 0},
    {"mm_malloc_delete_array_dtor", "mismatched", MmMallocDeleteArrayDtor, 0},
    {"mm_aligned_new_plain_delete", "mismatched", MmAlignedNewPlainDelete, 0},
    {"mm_sized_delete_small", "mismatched", MmSizedDeleteWrong, 3000},
    {"mm_sized_delete_large", "mismatched", MmSizedDeleteWrong, kLarge},
    // realloc: of a freed block, of what is not a block
    {"realloc_freed_small", "realloc", ReallocFreed, kSmall},
    {"realloc_freed_medium", "realloc", ReallocFreed, kMedium},
    {"realloc_freed_large", "realloc", ReallocFreed, kLarge},
    {"realloc_freed_huge", "realloc", ReallocFreed, kHuge},
    {"realloc_stack", "realloc", ReallocStack, 0},
    {"realloc_interior", "realloc", ReallocInterior, 0},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string_view(argv[1]) == "--list") {
    for (const Case& c : kCases) printf("%s %s\n", c.name, c.kind);
    return 0;
  }
  if (argc != 2) {
    fprintf(stderr, "usage: %s --list | CASE\n", argv[0]);
    return 2;
  }
  for (const Case& c : kCases) {
    if (std::string_view(argv[1]) == c.name) {
      c.fn(c.arg);
      printf("survived %s\n", c.name);
      return 0;
    }
  }
  fprintf(stderr, "%s: no case named '%s' (--list shows them)\n", argv[0], argv[1]);
  return 2;
}
