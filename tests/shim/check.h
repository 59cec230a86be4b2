/* A minimal check harness for the shim's plain-program tests (C and C++).
 *
 * The shim's tests run before and around main under LD_PRELOAD, where a test
 * framework's own allocations would be part of what is tested, so they are
 * plain programs: CHECK counts, prints each failure with its line, and
 * check_summary() prints "N passed, M failed" and gives the exit status. */
#ifndef EXECMEM_TESTS_SHIM_CHECK_H_
#define EXECMEM_TESTS_SHIM_CHECK_H_

#include <dlfcn.h>
#include <stdio.h>

static int check_passed;
static int check_failed;
static int check_skipped;

#define CHECK(cond, ...)                                              \
  do {                                                                \
    if (cond) {                                                       \
      ++check_passed;                                                 \
    } else {                                                          \
      ++check_failed;                                                 \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                   \
      fputc('\n', stderr);                                            \
    }                                                                 \
  } while (0)

/* A check whose expected answer is the shim's (and newer glibc's), which the
 * allocator under test may not give when it is not execmem: counted as
 * skipped there instead of failed. */
#define CHECK_EXECMEM(cond, ...)                                                    \
  do {                                                                              \
    if (check_preloaded()) {                                                        \
      CHECK(cond, __VA_ARGS__);                                                     \
    } else if (!(cond)) {                                                           \
      ++check_skipped;                                                              \
      fprintf(stderr, "skip %s:%d (not execmem): %s\n", __FILE__, __LINE__, #cond); \
    }                                                                               \
  } while (0)

/* Whether execmem's shim is the process's malloc: it exports the C API. */
static inline int check_preloaded(void) {
  static int known = -1;
  if (known < 0) known = dlsym(RTLD_DEFAULT, "execmem_owns") != NULL;
  return known;
}

/* execmem_owns(ptr), looked up so that the tests need not link to execmem. */
static inline int check_owned(const void* ptr) {
  typedef int (*owns_fn)(const void*);
  static owns_fn owns;
  if (owns == NULL) owns = (owns_fn)dlsym(RTLD_DEFAULT, "execmem_owns");
  return owns != NULL && owns(ptr);
}

/* Keeps the optimiser from proving an allocation dead (with -fno-builtin too). */
static void* volatile check_sink;
static inline void check_escape(void* ptr) { check_sink = ptr; }

static inline int check_summary(const char* name) {
  printf("%s: %d passed, %d failed, %d skipped (%s)\n", name, check_passed, check_failed,
         check_skipped, check_preloaded() ? "execmem preloaded" : "NOT under execmem");
  return check_failed == 0 ? 0 : 1;
}

#endif /* EXECMEM_TESTS_SHIM_CHECK_H_ */
