/* The C malloc family's contract, checked through the names programs call.
 *
 * Run under LD_PRELOAD=libexecmem_preload.so with --require-execmem (ctest),
 * or without it against glibc / another allocator: checks whose answer is
 * execmem's choice (or glibc >= 2.38's) are then skipped, the rest must hold
 * for any conforming malloc. Debian's jemalloc dies in the pvalloc check. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

/* glibc's internal names, reached with glibc's versions when not preloaded. */
extern void* __libc_malloc(size_t size);
extern void* __libc_calloc(size_t count, size_t size);
extern void* __libc_realloc(void* ptr, size_t size);
extern void __libc_free(void* ptr);
extern void* __libc_memalign(size_t alignment, size_t size);
extern void* __libc_valloc(size_t size);
extern void* __libc_pvalloc(size_t size);

static const size_t kSizes[] = {0,        1,
                                7,        8,
                                15,       16,
                                17,       24,
                                31,       32,
                                48,       64,
                                100,      128,
                                255,      256,
                                513,      1000,
                                4095,     4096,
                                4097,     10000,
                                65536,    65537,
                                1u << 20, (1u << 20) + 1,
                                3u << 20, 17u << 20};
#define NSIZES (sizeof(kSizes) / sizeof(kSizes[0]))

/* A value the compiler cannot see, so that impossible sizes reach the call
 * instead of a -Walloc-size-larger-than error. */
static size_t opaque(size_t value) {
  volatile size_t hidden = value;
  return hidden;
}

static int aligned(const void* p, size_t alignment) {
  return ((uintptr_t)p & (alignment - 1)) == 0;
}

/* What any malloc of n bytes must be aligned to: max_align_t, or less for
 * blocks too small to hold a type that needs it. */
static size_t malloc_alignment(size_t n) {
  size_t a = _Alignof(max_align_t);
  while (a > 1 && a > n) a >>= 1;
  return a;
}

static int all_zero(const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return 0;
  }
  return 1;
}

static void check_block(const char* fn, void* p, size_t n, size_t alignment) {
  CHECK(p != NULL, "%s(%zu) returned NULL", fn, n);
  if (p == NULL) return;
  CHECK(aligned(p, alignment), "%s(%zu) = %p not aligned to %zu", fn, n, p, alignment);
  CHECK(malloc_usable_size(p) >= n, "%s(%zu): usable size %zu", fn, n, malloc_usable_size(p));
  if (check_preloaded()) CHECK(check_owned(p), "%s(%zu) = %p is not execmem's", fn, n, p);
  if (n > 0) {
    memset(p, 0x5a, n);
    CHECK(((unsigned char*)p)[n - 1] == 0x5a, "%s(%zu): last byte not writable", fn, n);
  }
}

static void test_malloc(void) {
  for (size_t i = 0; i < NSIZES; ++i) {
    void* p = malloc(kSizes[i]);
    check_block("malloc", p, kSizes[i], malloc_alignment(kSizes[i]));
    free(p);
  }
  void* a = malloc(0);
  void* b = malloc(0);
  CHECK(a != NULL && b != NULL && a != b, "malloc(0) must give unique pointers: %p %p", a, b);
  free(a);
  free(b);

  errno = 0;
  void* huge = malloc(opaque(SIZE_MAX));
  CHECK(huge == NULL && errno == ENOMEM, "malloc(opaque(SIZE_MAX)) = %p errno %d", huge, errno);
  errno = 0;
  huge = malloc(opaque((size_t)PTRDIFF_MAX + 1));
  CHECK(huge == NULL && errno == ENOMEM, "malloc(PTRDIFF_MAX+1) = %p errno %d", huge, errno);
  CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu", malloc_usable_size(NULL));
}

/* glibc gives every block 16-byte alignment, and code compiled by GCC and
 * Clang relies on it (Debian's clang 14 crashes on an 8-aligned new(88)).
 * Several live blocks per size, so that a block other than a span's first
 * is seen. */
static void test_alignment_every_size(void) {
  enum { kLive = 8 };
  int misaligned_malloc = 0, misaligned_calloc = 0, misaligned_realloc = 0;
  size_t first_bad = 0;
  for (size_t n = 1; n <= 1100; ++n) {
    void* m[kLive];
    void* c[kLive];
    void* r[kLive];
    for (int i = 0; i < kLive; ++i) {
      m[i] = malloc(n);
      c[i] = calloc(1, n);
      r[i] = realloc(malloc(n > 40 ? n - 40 : 1), n);
      if (!aligned(m[i], 16)) misaligned_malloc++, first_bad = first_bad ? first_bad : n;
      if (!aligned(c[i], 16)) misaligned_calloc++, first_bad = first_bad ? first_bad : n;
      if (!aligned(r[i], 16)) misaligned_realloc++, first_bad = first_bad ? first_bad : n;
    }
    for (int i = 0; i < kLive; ++i) {
      free(m[i]);
      free(c[i]);
      free(r[i]);
    }
  }
  CHECK(misaligned_malloc + misaligned_calloc + misaligned_realloc == 0,
        "blocks not 16-byte aligned: %d from malloc, %d from calloc, %d from realloc "
        "(first at %zu bytes)",
        misaligned_malloc, misaligned_calloc, misaligned_realloc, first_bad);
}

static void test_free(void) {
  free(NULL);
  CHECK(1, "free(NULL) returned");
  const size_t sizes[] = {16, 5000, 1u << 20, 32u << 20};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); ++i) {
    void* p = malloc(sizes[i]);
    memset(p, 1, sizes[i]);
    errno = EDOM;
    free(p);
    CHECK(errno == EDOM, "free of %zu bytes changed errno to %d", sizes[i], errno);
  }
  errno = ERANGE;
  free(NULL);
  CHECK(errno == ERANGE, "free(NULL) changed errno to %d", errno);
}

static void test_calloc(void) {
  for (size_t i = 0; i < NSIZES; ++i) {
    /* Dirty a block of the same size first, so that reuse must be zeroed. */
    void* dirty = malloc(kSizes[i]);
    if (dirty != NULL && kSizes[i] > 0) memset(dirty, 0xff, kSizes[i]);
    free(dirty);
    unsigned char* p = calloc(1, kSizes[i]);
    CHECK(p != NULL, "calloc(1, %zu) returned NULL", kSizes[i]);
    if (p == NULL) continue;
    CHECK(all_zero(p, kSizes[i]), "calloc(1, %zu) not zeroed", kSizes[i]);
    check_block("calloc", p, kSizes[i], malloc_alignment(kSizes[i]));
    free(p);
  }
  unsigned char* arr = calloc(1000, 24);
  CHECK(arr != NULL && all_zero(arr, 24000), "calloc(1000, 24)");
  free(arr);
  void* z = calloc(0, 100);
  CHECK(z != NULL, "calloc(0, 100) returned NULL");
  free(z);
  errno = 0;
  void* overflow = calloc(opaque(SIZE_MAX / 2), 3);
  CHECK(overflow == NULL && errno == ENOMEM, "calloc(SIZE_MAX/2, 3) = %p errno %d", overflow,
        errno);
  errno = 0;
  overflow = calloc(opaque((size_t)1 << 33), (size_t)1 << 33);
  CHECK(overflow == NULL && errno == ENOMEM, "calloc(2^33, 2^33) = %p errno %d", overflow, errno);
}

static void fill(unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; ++i) p[i] = (unsigned char)(i * 31 + seed);
}

static int filled(const unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != (unsigned char)(i * 31 + seed)) return 0;
  }
  return 1;
}

static void test_realloc(void) {
  /* Grow through every size class boundary, then shrink, keeping content. */
  unsigned char* p = realloc(NULL, 10);
  CHECK(p != NULL, "realloc(NULL, 10)");
  fill(p, 10, 7);
  size_t kept = 10;
  for (size_t i = 0; i < NSIZES; ++i) {
    if (kSizes[i] <= kept) continue;
    unsigned char* q = realloc(p, kSizes[i]);
    CHECK(q != NULL, "realloc grow to %zu", kSizes[i]);
    if (q == NULL) break;
    CHECK(filled(q, kept, 7), "realloc grow to %zu lost content", kSizes[i]);
    check_block("realloc", q, kSizes[i], malloc_alignment(kSizes[i]));
    fill(q, kSizes[i], 7);
    p = q;
    kept = kSizes[i];
  }
  for (size_t i = NSIZES; i-- > 1;) {
    if (kSizes[i] >= kept) continue;
    unsigned char* q = realloc(p, kSizes[i]);
    CHECK(q != NULL, "realloc shrink to %zu", kSizes[i]);
    if (q == NULL) break;
    CHECK(filled(q, kSizes[i], 7), "realloc shrink to %zu lost content", kSizes[i]);
    p = q;
    kept = kSizes[i];
  }

  /* Failure leaves the block as it was. */
  errno = 0;
  unsigned char* fail = realloc(p, opaque(SIZE_MAX - 4096));
  CHECK(fail == NULL && errno == ENOMEM, "realloc(p, huge) = %p errno %d", (void*)fail, errno);
  CHECK(filled(p, kept, 7), "failed realloc damaged the block");
  CHECK_EXECMEM(check_owned(p), "failed realloc freed the block");

  /* glibc: realloc(p, 0) frees p and returns NULL. That the block was freed
   * shows in execmem's live bytes (mallinfo2's uordblks). */
  void* gone = realloc(p, 0);
  CHECK_EXECMEM(gone == NULL, "realloc(p, 0) = %p, glibc returns NULL", gone);
  if (gone != NULL) free(gone);
  void* big = malloc((size_t)1 << 20);
  const size_t live = mallinfo2().uordblks;
  gone = realloc(big, 0);
  const size_t after = mallinfo2().uordblks;
  CHECK_EXECMEM(gone == NULL && after + ((size_t)1 << 20) <= live,
                "realloc(1 MiB block, 0) = %p, live bytes %zu -> %zu: not freed", gone, live,
                after);
  if (gone != NULL) free(gone);
  void* fresh = realloc(NULL, 0);
  CHECK(fresh != NULL, "realloc(NULL, 0) must be malloc(0)");
  free(fresh);
}

static void test_reallocarray(void) {
  unsigned char* p = reallocarray(NULL, 10, 10);
  CHECK(p != NULL, "reallocarray(NULL, 10, 10)");
  fill(p, 100, 3);
  errno = 0;
  void* fail = reallocarray(p, opaque(SIZE_MAX / 2), 4);
  CHECK(fail == NULL && errno == ENOMEM, "reallocarray overflow = %p errno %d", fail, errno);
  CHECK(filled(p, 100, 3), "reallocarray overflow damaged the block");
  /* A failed reallocarray keeps p; GCC's -Wuse-after-free cannot know it failed. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuse-after-free"
  unsigned char* q = reallocarray(p, 1000, 100);
#pragma GCC diagnostic pop
  CHECK(q != NULL && filled(q, 100, 3), "reallocarray grow");
  check_block("reallocarray", q, 100000, malloc_alignment(100000));
  free(q);
}

static void test_posix_memalign(void) {
  for (size_t a = sizeof(void*); a <= ((size_t)1 << 22); a <<= 1) {
    for (size_t i = 0; i < NSIZES; i += 3) {
      void* p = (void*)0x1;
      int rc = posix_memalign(&p, a, kSizes[i]);
      CHECK(rc == 0, "posix_memalign(%zu, %zu) = %d", a, kSizes[i], rc);
      if (rc != 0) continue;
      check_block("posix_memalign", p, kSizes[i], a);
      free(p);
    }
  }
  const size_t bad[] = {0, 1, 2, 4, 12, 24, 100, sizeof(void*) * 3, SIZE_MAX};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
    void* sentinel = (void*)0x1234;
    void* p = sentinel;
    int rc = posix_memalign(&p, bad[i], 64);
    CHECK(rc == EINVAL, "posix_memalign(alignment %zu) = %d, want EINVAL", bad[i], rc);
    CHECK(p == sentinel, "posix_memalign(alignment %zu) wrote *memptr on error", bad[i]);
  }
  void* sentinel = (void*)0x5678;
  void* p = sentinel;
  int rc = posix_memalign(&p, 64, opaque(SIZE_MAX - 4096));
  CHECK(rc == ENOMEM, "posix_memalign(64, huge) = %d, want ENOMEM", rc);
  CHECK(p == sentinel, "posix_memalign(64, huge) wrote *memptr on error");
}

static void test_aligned_alloc(void) {
  for (size_t a = 1; a <= ((size_t)1 << 22); a <<= 1) {
    void* p = aligned_alloc(a, 3 * a + 1); /* C17: size need not be a multiple */
    check_block("aligned_alloc", p, 3 * a + 1, a);
    free(p);
  }
  /* Empty requests with large alignments, after a page-aligned block was
   * freed: each must be a real block that free and malloc_usable_size know. */
  for (size_t a = 4096; a <= ((size_t)1 << 22); a <<= 1) {
    free(aligned_alloc(4096, 1));
    void* empty = aligned_alloc(a, 0);
    check_block("aligned_alloc(empty)", empty, 0, a);
    free(empty);
    free(aligned_alloc(4096, 1));
    void* q = NULL;
    CHECK(posix_memalign(&q, a, 0) == 0, "posix_memalign(%zu, 0)", a);
    check_block("posix_memalign(empty)", q, 0, a);
    free(q);
  }
  const size_t bad[] = {0, 3, 24, 100, 4097};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
    errno = 0;
    void* p = aligned_alloc(bad[i], 64);
    /* glibc < 2.38 rounds up instead (C17 DR 460 asks for EINVAL). */
    CHECK_EXECMEM(p == NULL && errno == EINVAL, "aligned_alloc(%zu, 64) = %p errno %d", bad[i], p,
                  errno);
    if (p != NULL) free(p);
  }
  errno = 0;
  void* p = aligned_alloc(64, opaque(SIZE_MAX - 4096));
  CHECK(p == NULL && errno == ENOMEM, "aligned_alloc(64, huge) = %p errno %d", p, errno);
}

static void test_memalign(void) {
  struct {
    size_t asked, expect;
  } cases[] = {
      {0, 1},     {1, 1},       {8, 8},       {16, 16},           {24, 32},
      {100, 128}, {4096, 4096}, {5000, 8192}, {1 << 20, 1 << 20}, {(1 << 20) + 1, 2 << 20}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
    void* p = memalign(cases[i].asked, 1000);
    check_block("memalign", p, 1000, cases[i].expect);
    free(p);
  }
  errno = 0;
  void* p = memalign(opaque(SIZE_MAX), 16);
  CHECK(p == NULL && errno == EINVAL, "memalign(opaque(SIZE_MAX), 16) = %p errno %d", p, errno);
}

static void test_valloc_pvalloc(void) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t sizes[] = {1, 100, page - 1, page, page + 1, 10 * page + 3};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); ++i) {
    void* v = valloc(sizes[i]);
    check_block("valloc", v, sizes[i], page);
    free(v);
    /* Debian's jemalloc has no pvalloc: glibc's block then reaches jemalloc's free. */
    void* pv = pvalloc(sizes[i]);
    size_t rounded = (sizes[i] + page - 1) / page * page;
    check_block("pvalloc", pv, rounded, page);
    free(pv);
  }
  void* one = pvalloc(0);
  CHECK(one != NULL && aligned(one, page), "pvalloc(0) = %p", one);
  CHECK_EXECMEM(one != NULL && malloc_usable_size(one) >= page, "pvalloc(0) usable %zu < page",
                one ? malloc_usable_size(one) : 0);
  free(one);
  errno = 0;
  void* huge = pvalloc(opaque(SIZE_MAX - 10));
  CHECK(huge == NULL && errno == ENOMEM, "pvalloc(huge) = %p errno %d", huge, errno);
}

typedef void (*free_fn)(void*);
typedef void (*free_sized_fn)(void*, size_t);
typedef void (*free_aligned_sized_fn)(void*, size_t, size_t);
typedef int (*posix_memalign_fn)(void**, size_t, size_t);

static void test_other_names(void) {
  void* p = __libc_malloc(100);
  check_block("__libc_malloc", p, 100, malloc_alignment(100));
  p = __libc_realloc(p, 5000);
  check_block("__libc_realloc", p, 5000, 16);
  __libc_free(p);
  unsigned char* z = __libc_calloc(10, 10);
  CHECK(z != NULL && all_zero(z, 100), "__libc_calloc");
  check_block("__libc_calloc", z, 100, 16);
  free(z);
  p = __libc_memalign(256, 10);
  check_block("__libc_memalign", p, 10, 256);
  free(p);
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  p = __libc_valloc(10);
  check_block("__libc_valloc", p, 10, page);
  free(p);
  p = __libc_pvalloc(10);
  check_block("__libc_pvalloc", p, page, page);
  free(p);

  /* Names this glibc does not export (or only as old versions): the shim must. */
  posix_memalign_fn pm = (posix_memalign_fn)dlsym(RTLD_DEFAULT, "__posix_memalign");
  CHECK_EXECMEM(pm != NULL, "__posix_memalign not exported");
  if (pm != NULL) {
    void* q = NULL;
    CHECK(pm(&q, 128, 10) == 0, "__posix_memalign(128, 10)");
    check_block("__posix_memalign", q, 10, 128);
    free(q);
  }
  free_fn cfree_ = (free_fn)dlsym(RTLD_DEFAULT, "cfree");
  CHECK_EXECMEM(cfree_ != NULL, "cfree not exported");
  if (cfree_ != NULL) {
    void* q = malloc(10);
    errno = EDOM;
    cfree_(q);
    CHECK(errno == EDOM, "cfree changed errno");
  }
  free_sized_fn fs = (free_sized_fn)dlsym(RTLD_DEFAULT, "free_sized");
  CHECK_EXECMEM(fs != NULL, "free_sized not exported");
  free_aligned_sized_fn fas = (free_aligned_sized_fn)dlsym(RTLD_DEFAULT, "free_aligned_sized");
  CHECK_EXECMEM(fas != NULL, "free_aligned_sized not exported");
  if (fs != NULL && fas != NULL) {
    for (size_t i = 0; i < NSIZES; ++i) {
      void* q = malloc(kSizes[i]);
      errno = EDOM;
      fs(q, kSizes[i]);
      CHECK(errno == EDOM, "free_sized changed errno");
      q = calloc(1, kSizes[i]);
      fs(q, kSizes[i]);
      q = aligned_alloc(4096, kSizes[i]);
      fas(q, 4096, kSizes[i]);
    }
    fs(NULL, 10);
    fas(NULL, 64, 10);
    CHECK(1, "free_sized / free_aligned_sized of NULL returned");
  }
}

/* Runs fn with stderr sent to a temporary file; returns what it wrote (caller frees). */
static char* capture_stderr(void (*fn)(void)) {
  char path[] = "/tmp/execmem-contract-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return NULL;
  unlink(path);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  fn();
  dup2(saved, 2);
  close(saved);
  off_t size = lseek(fd, 0, SEEK_END);
  char* text = malloc((size_t)size + 1);
  if (pread(fd, text, (size_t)size, 0) != size) size = 0;
  text[size] = '\0';
  close(fd);
  return text;
}

static void call_malloc_stats(void) { malloc_stats(); }

static void test_introspection(void) {
  /* mallinfo2: a 32 MiB block shows in uordblks and goes when freed. */
  struct mallinfo2 before = mallinfo2();
  const size_t big = (size_t)32 << 20;
  unsigned char* p = malloc(big);
  memset(p, 7, big);
  struct mallinfo2 during = mallinfo2();
  free(p);
  struct mallinfo2 after = mallinfo2();
  CHECK_EXECMEM(during.uordblks >= before.uordblks + big &&
                    during.uordblks <= before.uordblks + big + ((size_t)4 << 20),
                "mallinfo2 uordblks %zu -> %zu after a 32 MiB malloc", before.uordblks,
                during.uordblks);
  CHECK_EXECMEM(after.uordblks + big <= during.uordblks,
                "mallinfo2 uordblks %zu -> %zu after freeing 32 MiB", during.uordblks,
                after.uordblks);
  CHECK_EXECMEM(during.arena == during.uordblks + during.fordblks && during.arena >= big,
                "mallinfo2 arena %zu != uordblks %zu + fordblks %zu", during.arena, during.uordblks,
                during.fordblks);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  struct mallinfo old = mallinfo();
#pragma GCC diagnostic pop
  CHECK(old.arena >= 0 && old.uordblks >= 0 && old.fordblks >= 0, "mallinfo: negative fields");

  /* malloc_trim: freed pages are cached; trimming returns them (1), and a
   * second trim right after has nothing left to return (0). */
  void* blocks[16];
  for (int i = 0; i < 16; ++i) {
    blocks[i] = malloc((size_t)1 << 20);
    memset(blocks[i], 1, (size_t)1 << 20);
  }
  for (int i = 0; i < 16; ++i) free(blocks[i]);
  int first = malloc_trim(0);
  CHECK_EXECMEM(first == 1, "malloc_trim after freeing 16 MiB = %d, want 1", first);
  int second = malloc_trim(0);
  CHECK_EXECMEM(second == 0, "malloc_trim with nothing cached = %d, want 0", second);

  /* mallopt: no glibc parameter means anything to execmem, and it says so. */
  CHECK_EXECMEM(mallopt(M_ARENA_MAX, 2) == 0, "mallopt(M_ARENA_MAX) claims to apply");
  CHECK_EXECMEM(mallopt(M_MMAP_THRESHOLD, 1 << 20) == 0, "mallopt(M_MMAP_THRESHOLD)");
  CHECK_EXECMEM(mallopt(M_TRIM_THRESHOLD, 1 << 20) == 0, "mallopt(M_TRIM_THRESHOLD)");

  char* report = capture_stderr(call_malloc_stats);
  CHECK(report != NULL && strlen(report) > 0, "malloc_stats printed nothing to stderr");
  CHECK_EXECMEM(report != NULL && strstr(report, "default") != NULL,
                "malloc_stats report does not name the default executor: %s", report ? report : "");
  free(report);
}

/* The earliest code a program can run: .preinit_array functions run before
 * the constructors of every shared library, the shim's included. Allocation
 * must already work there, with the default budgets. */
static void* preinit_block;
static int preinit_ok;
static void allocate_before_constructors(void) {
  preinit_block = malloc(1000);
  void* temp = calloc(10, 100);
  char* grown = realloc(NULL, 10);
  grown = realloc(grown, 100000);
  preinit_ok = preinit_block != NULL && temp != NULL && grown != NULL;
  free(temp);
  free(grown);
}
__attribute__((section(".preinit_array"),
               used)) static void (*preinit_entry)(void) = allocate_before_constructors;

int main(int argc, char** argv) {
  int require = argc > 1 && strcmp(argv[1], "--require-execmem") == 0;
  if (require && !check_preloaded()) {
    fprintf(stderr, "contract: execmem is not the malloc of this process (LD_PRELOAD=%s)\n",
            getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "");
    return 1;
  }
  CHECK_EXECMEM(!check_owned((void*)&check_summary),
                "sanity: execmem_owns accepted a function address");
  CHECK(preinit_ok, "allocation before the shim's constructor failed");
  CHECK_EXECMEM(check_owned(preinit_block), "a block from before the constructor is not execmem's");
  free(preinit_block);
  void* probe = malloc(10);
  CHECK_EXECMEM(check_owned(probe), "malloc(10) is not execmem's");
  free(probe);
  test_malloc();
  test_alignment_every_size();
  test_free();
  test_calloc();
  test_realloc();
  test_reallocarray();
  test_posix_memalign();
  test_aligned_alloc();
  test_memalign();
  test_valloc_pvalloc();
  test_other_names();
  test_introspection();
  return check_summary("contract");
}
