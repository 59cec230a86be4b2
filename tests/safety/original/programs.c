// The 37 C programs of mimalloc-bench's security suite (bench/security/*.c in
// daanx/mimalloc-bench), re-created: each function below does what the
// program of the same name does — the same sizes, offsets, calls and
// checks, and it prints NOT_CAUGHT where the program does. Written anew for
// execmem (the behaviour is the reference, not the text).
//
// mimalloc-bench builds every .c file three times, with ALLOCATION_SIZE 8
// ("_small"), 4096 ("_medium") and 256 KiB ("_large"), as a Release build
// (-O3) with -fno-inline -fno-builtin-inline -fno-inline-small-functions;
// tests/safety/CMakeLists.txt builds this file the same three ways, one
// executable per size that runs the program named on its command line:
//
//   execmem-safety-original-SIZE --list    the program names, one a line
//   execmem-safety-original-SIZE NAME      runs that program (NAME without
//                                          the size suffix)
//
// Each program runs alone in its own process, as the originals do; nothing
// is allocated or printed before it starts. The helpers are out of line
// (noinline), as the originals' common.h makes its malloc, free and memcpy
// wrappers, and each also hides what it does behind an empty asm that may
// read and write all memory. Out of line is not enough for GCC 11+ at -O3:
// its IPA passes see through a noinline wrapper (ipa-pure-const finds that
// it returns malloc's result, ipa-modref that the other only frees), prove
// that nothing reads the byte a program corrupts before freeing the block,
// and delete the write — built so, the overflow and underflow programs
// commit no error and no allocator can catch them (docs/safety.md).
#include <alloca.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ALLOCATION_SIZE
#error "build with -DALLOCATION_SIZE=8, 4096 or 262144"
#endif

#define MIB (1024 * 1024)

// ---- what the originals' common.h provides ----------------------------------
// What the compiler may not look through: p may be read, written or kept.
static inline void* escape(void* p) {
  __asm__ volatile("" : "+r"(p) : : "memory");
  return p;
}
__attribute__((noinline)) void* safety_malloc(size_t size) { return escape(malloc(size)); }
__attribute__((noinline)) void safety_free(void* ptr) { free(escape(ptr)); }
__attribute__((noinline)) void* safety_memcpy(void* dst, const void* src, size_t n) {
  return escape(memcpy(escape(dst), src, n));
}
// The error went unnoticed: said on stdout, flushed at once (the process may
// still die later, e.g. at exit, and the runner must see the line).
static void not_caught(void) {
  puts("NOT_CAUGHT");
  fflush(stdout);
}

// ---- overflows and underflows: a write past either end, then free() ----------
// (XOR rather than a store, so the byte always changes.)
static int one_byte_overflow(void) {
  char* p = safety_malloc(ALLOCATION_SIZE);
  p[ALLOCATION_SIZE] ^= 'A';
  safety_free(p);
  not_caught();
  return 0;
}
static int one_byte_underflow(void) {
  char* p = safety_malloc(ALLOCATION_SIZE);
  p[-1] ^= 'A';
  safety_free(p);
  not_caught();
  return 0;
}
static int thirty_two_byte_overflow(void) {  // the byte 32 past the last one
  char* p = safety_malloc(ALLOCATION_SIZE);
  p[ALLOCATION_SIZE - 1 + 32] ^= 'A';
  safety_free(p);
  not_caught();
  return 0;
}
static int thirty_two_byte_underflow(void) {
  char* p = safety_malloc(ALLOCATION_SIZE);
  p[-32] ^= 'A';
  safety_free(p);
  not_caught();
  return 0;
}
static int one_mbyte_overflow(void) {
  char* p = safety_malloc(ALLOCATION_SIZE);
  p[ALLOCATION_SIZE - 1 + MIB] ^= 'A';
  safety_free(p);
  not_caught();
  return 0;
}
static int one_mbyte_underflow(void) {
  char* p = safety_malloc(ALLOCATION_SIZE);
  p[-MIB] ^= 'A';
  safety_free(p);
  not_caught();
  return 0;
}

// ---- the same by memcpy from a zeroed stack array; nothing is freed ----------
// (What a guarded memcpy, as snmalloc's, catches; an allocator whose next
// malloc — stdout's buffer, taken by puts — checks its neighbours may too.)
static int one_byte_memcpy_overflow(void) {
  const char zeros[ALLOCATION_SIZE + 1] = {0};
  char* p = safety_malloc(ALLOCATION_SIZE);
  safety_memcpy(p, zeros, sizeof(zeros));
  not_caught();
  return 0;
}
static int one_byte_memcpy_underflow(void) {
  const char zeros[ALLOCATION_SIZE] = {0};
  char* p = safety_malloc(ALLOCATION_SIZE);
  safety_memcpy(p - 1, zeros, sizeof(zeros));
  not_caught();
  return 0;
}
static int thirty_two_byte_memcpy_overflow(void) {
  const char zeros[ALLOCATION_SIZE + 32] = {0};
  char* p = safety_malloc(ALLOCATION_SIZE);
  safety_memcpy(p, zeros, sizeof(zeros));
  not_caught();
  return 0;
}
static int thirty_two_byte_memcpy_underflow(void) {
  const char zeros[ALLOCATION_SIZE] = {0};
  char* p = safety_malloc(ALLOCATION_SIZE);
  safety_memcpy(p - 32, zeros, sizeof(zeros));
  not_caught();
  return 0;
}
static int one_mbyte_memcpy_overflow(void) {
  const char zeros[ALLOCATION_SIZE + MIB] = {0};
  char* p = safety_malloc(ALLOCATION_SIZE);
  safety_memcpy(p, zeros, sizeof(zeros));
  not_caught();
  return 0;
}
static int one_mbyte_memcpy_underflow(void) {
  const char zeros[ALLOCATION_SIZE] = {0};
  char* p = safety_malloc(ALLOCATION_SIZE);
  safety_memcpy(p - MIB, zeros, sizeof(zeros));
  not_caught();
  return 0;
}

// ---- double frees ----------------------------------------------------------
static int double_free(void) {
  void* p = safety_malloc(ALLOCATION_SIZE);
  safety_free(p);
  safety_free(p);
  not_caught();
  return 0;
}
static int double_free_delayed(void) {  // 1024 blocks of the size in between
  void* p = safety_malloc(ALLOCATION_SIZE);
  safety_free(p);
  for (int i = 0; i < 1024; i++) safety_free(safety_malloc(ALLOCATION_SIZE));
  safety_free(p);
  not_caught();
  return 0;
}
static int double_free_interleaved(void) {  // free(p), free(q), free(p)
  void* p = safety_malloc(ALLOCATION_SIZE);
  void* q = safety_malloc(ALLOCATION_SIZE);
  safety_free(p);
  safety_free(q);
  safety_free(p);
  not_caught();
  return 0;
}
// The double free, then 256 Ki more mallocs and frees of the size, each
// pointer printed (no newline) as the original prints them.
static int double_free_reuse(void) {
  void* p = safety_malloc(ALLOCATION_SIZE);
  printf("p = %p", p);
  safety_free(p);
  safety_free(p);
  for (size_t i = 0; i < 1024 * 256; i++) {
    void* q = safety_malloc(ALLOCATION_SIZE);
    printf("q = %p", q);
    safety_free(q);
  }
  not_caught();
  return 0;
}
// p freed, a block of the size taken (often p itself), p freed again, then
// that block.
static int double_free_single_reuse(void) {
  void* p = safety_malloc(ALLOCATION_SIZE);
  safety_free(p);
  void* q = safety_malloc(ALLOCATION_SIZE);
  safety_free(p);
  safety_free(q);
  not_caught();
  return 0;
}

// ---- invalid frees ---------------------------------------------------------
static int invalid_free(void) {
  safety_free((void*)1);
  not_caught();
  return 0;
}
static int invalid_free_alloca(void) {
  safety_free(alloca(ALLOCATION_SIZE));
  not_caught();
  return 0;
}
static int invalid_free_stack(void) {
  char local[ALLOCATION_SIZE];
  safety_free(local);
  not_caught();
  return 0;
}
static int invalid_free_close(void) {  // 4 KiB past the block's start
  char* p = safety_malloc(ALLOCATION_SIZE);
  safety_free(p + 4 * 1024);
  not_caught();
  return 0;
}
static int invalid_free_far(void) {  // 1 GiB past it
  char* p = safety_malloc(ALLOCATION_SIZE);
  safety_free(p + 1024 * 1024 * 1024);
  not_caught();
  return 0;
}
static int invalid_free_unaligned(void) {
  char* p = safety_malloc(ALLOCATION_SIZE);
  safety_free(p + 1);
  not_caught();
  return 0;
}
static int invalid_free_unaligned_multiple(void) {  // off by a multiple of 8
  char* p = safety_malloc(ALLOCATION_SIZE);
  safety_free(p + 8);
  not_caught();
  return 0;
}

// ---- use after free --------------------------------------------------------
static int write_after_free(void) {
  char* p = safety_malloc(ALLOCATION_SIZE);
  safety_free(p);
  memset(p, 'A', ALLOCATION_SIZE);
  not_caught();
  return 0;
}
static int write_after_free_reuse(void) {  // then 256 Ki mallocs and frees
  char* p = safety_malloc(ALLOCATION_SIZE);
  safety_free(p);
  memset(p, 'A', ALLOCATION_SIZE);
  for (size_t i = 0; i < 1024 * 256; i++) safety_free(safety_malloc(ALLOCATION_SIZE));
  not_caught();
  return 0;
}
// Caught when every byte of the freed block reads 0 (or reading it faults).
static int zero_after_free(void) {
  char* p = safety_malloc(ALLOCATION_SIZE);
  memset(p, 'A', ALLOCATION_SIZE);
  safety_free(p);
  for (int i = 0; i < ALLOCATION_SIZE; i++) {
    if (p[i] != 0) {
      not_caught();
      return 0;
    }
  }
  return 0;
}
// 4096 blocks filled with 'A' and freed; a new block must read all 0.
static int zero_on_malloc(void) {
  enum { kBlocks = 4096 };
  char* blocks[kBlocks] = {0};
  for (int i = 0; i < kBlocks; i++) {
    char* b = safety_malloc(ALLOCATION_SIZE);
    memset(b, 'A', ALLOCATION_SIZE);
    blocks[i] = b;
  }
  for (int i = 0; i < kBlocks; i++) safety_free(blocks[i]);
  char* p = safety_malloc(ALLOCATION_SIZE);
  for (int i = 0; i < ALLOCATION_SIZE; i++) {
    if (p[i] != 0) {
      not_caught();
      return 0;
    }
  }
  return 0;
}

// ---- reuse of addresses ----------------------------------------------------
static int malloc_reuse(void) {  // the next block of the size is not the freed one
  void* p = safety_malloc(ALLOCATION_SIZE);
  void* freed = p;
  safety_free(p);
  p = safety_malloc(ALLOCATION_SIZE);
  if (p == freed) not_caught();
  return 0;
}
static int malloc_reuse_downsize(void) {  // nor a block of half the size
  void* p = safety_malloc(ALLOCATION_SIZE);
  void* freed = p;
  safety_free(p);
  p = safety_malloc(ALLOCATION_SIZE / 2);
  if (p == freed) not_caught();
  return 0;
}
// As the original: 8 bytes whatever the size, realloc's result dropped and p
// compared with itself, so NOT_CAUGHT is printed unless realloc dies.
static int realloc_reuse(void) {
  char* p = safety_malloc(8);
  char* before = p;
  realloc(p, 1024);
  if (p == before) not_caught();
  return 0;
}

// ---- zero-size blocks (malloc(0) whatever the size) ----------------------------
// A NULL from malloc(0) exits 1 without NOT_CAUGHT.
static int read_zero_size(void) {
  char* p = safety_malloc(0);
  if (!p) return 1;
  putchar(*p);
  not_caught();
  return 0;
}
static int read_zero_size_free(void) {
  char* p = safety_malloc(0);
  if (!p) return 1;
  putchar(*p);
  safety_free(p);
  not_caught();
  return 0;
}
static int write_zero_size(void) {
  char* p = safety_malloc(0);
  if (!p) return 1;
  *p = 'A';
  not_caught();
  return 0;
}
static int write_zero_size_free(void) {
  char* p = safety_malloc(0);
  if (!p) return 1;
  *p = 'A';
  safety_free(p);
  not_caught();
  return 0;
}

// ---- others ----------------------------------------------------------------
static int impossibly_large_malloc(void) {  // malloc((size_t)-2) must fail
  char* p = safety_malloc((size_t)-2);
  if (p != NULL) not_caught();
  safety_free(p);
  return 0;
}
// Copies a pointer's worth (8 bytes) of "nop, nop, nop, nop, ret" into a block
// and calls it: caught when heap memory is not executable.
static const char* const kRetSled = "\x90\x90\x90\x90\xc3";
static int executable_heap(void) {
  char* p = safety_malloc(ALLOCATION_SIZE);
  memcpy(p, kRetSled, sizeof(kRetSled));
  void (*fn)(void) = (void (*)(void))p;
  fn();
  not_caught();
  return 0;
}

// ---- the table (names as the original files) --------------------------------
static const struct {
  const char* name;
  int (*run)(void);
} kPrograms[] = {
    {"32_byte_memcpy_overflow", thirty_two_byte_memcpy_overflow},
    {"32_byte_memcpy_underflow", thirty_two_byte_memcpy_underflow},
    {"32_byte_overflow", thirty_two_byte_overflow},
    {"32_byte_underflow", thirty_two_byte_underflow},
    {"double_free", double_free},
    {"double_free_delayed", double_free_delayed},
    {"double_free_interleaved", double_free_interleaved},
    {"double_free_reuse", double_free_reuse},
    {"double_free_single_reuse", double_free_single_reuse},
    {"executable_heap", executable_heap},
    {"impossibly_large_malloc", impossibly_large_malloc},
    {"invalid_free", invalid_free},
    {"invalid_free_alloca", invalid_free_alloca},
    {"invalid_free_close", invalid_free_close},
    {"invalid_free_far", invalid_free_far},
    {"invalid_free_stack", invalid_free_stack},
    {"invalid_free_unaligned", invalid_free_unaligned},
    {"invalid_free_unaligned_multiple", invalid_free_unaligned_multiple},
    {"malloc_reuse", malloc_reuse},
    {"malloc_reuse_downsize", malloc_reuse_downsize},
    {"one_byte_memcpy_overflow", one_byte_memcpy_overflow},
    {"one_byte_memcpy_underflow", one_byte_memcpy_underflow},
    {"one_byte_overflow", one_byte_overflow},
    {"one_byte_underflow", one_byte_underflow},
    {"one_mbyte_memcpy_overflow", one_mbyte_memcpy_overflow},
    {"one_mbyte_memcpy_underflow", one_mbyte_memcpy_underflow},
    {"one_mbyte_overflow", one_mbyte_overflow},
    {"one_mbyte_underflow", one_mbyte_underflow},
    {"read_zero_size", read_zero_size},
    {"read_zero_size_free", read_zero_size_free},
    {"realloc_reuse", realloc_reuse},
    {"write_after_free", write_after_free},
    {"write_after_free_reuse", write_after_free_reuse},
    {"write_zero_size", write_zero_size},
    {"write_zero_size_free", write_zero_size_free},
    {"zero_after_free", zero_after_free},
    {"zero_on_malloc", zero_on_malloc},
};

int main(int argc, char** argv) {
  const size_t count = sizeof(kPrograms) / sizeof(kPrograms[0]);
  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (size_t i = 0; i < count; i++) printf("%s\n", kPrograms[i].name);
    return 0;
  }
  if (argc == 2) {
    for (size_t i = 0; i < count; i++) {
      if (strcmp(argv[1], kPrograms[i].name) == 0) return kPrograms[i].run();
    }
  }
  fprintf(stderr, "usage: %s --list | PROGRAM (one of the names --list prints)\n", argv[0]);
  return 2;
}
