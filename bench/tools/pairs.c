/* execmem-pairs: the fast-path probe run under callgrind by bench/run.sh.
 *
 *   execmem-pairs N [usable]
 *
 * Does N malloc+free pairs, each freed right after it is allocated (LIFO),
 * with sizes cycling through a fixed table of mixed sizes from 16 to 512 bytes.
 * run.sh counts instructions inside run_pairs() only (callgrind
 * --toggle-collect) for two values of N and divides the difference by the
 * difference of N, which cancels start-up and first-touch costs and leaves
 * the steady-state cost of one pair.
 *
 * With "usable", each pair also asks malloc_usable_size of the block after
 * malloc and before free, as Redis's zmalloc and zfree do (run_usable_pairs;
 * tests/usable_size_golden_test.sh counts what the two calls add to a pair).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kSizes = 64 };
static size_t sizes[kSizes];

/* noinline and visible: callgrind finds it by name. */
__attribute__((noinline)) void run_pairs(unsigned long n) {
  for (unsigned long i = 0; i < n; ++i) {
    char* p = malloc(sizes[i % kSizes]);
    if (p == NULL) {
      fprintf(stderr, "execmem-pairs: malloc failed\n");
      exit(1);
    }
    p[0] = (char)i;
    /* The empty asm keeps the compiler from pairing malloc with free away. */
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
  }
}

size_t malloc_usable_size(void* p);

/* The same pairs, each block's usable size asked after malloc and before
 * free. */
__attribute__((noinline)) void run_usable_pairs(unsigned long n) {
  size_t total = 0;
  for (unsigned long i = 0; i < n; ++i) {
    char* p = malloc(sizes[i % kSizes]);
    if (p == NULL) {
      fprintf(stderr, "execmem-pairs: malloc failed\n");
      exit(1);
    }
    total += malloc_usable_size(p);
    p[0] = (char)i;
    __asm__ volatile("" : : "r"(p) : "memory");
    total -= malloc_usable_size(p);
    free(p);
  }
  if (total != 0) {
    fprintf(stderr, "execmem-pairs: malloc_usable_size changed while a block was live\n");
    exit(1);
  }
}

int main(int argc, char** argv) {
  const int usable = argc == 3 && strcmp(argv[2], "usable") == 0;
  if (argc != 2 && !usable) {
    fprintf(stderr,
            "usage: execmem-pairs N [usable]   (N: number of malloc+free pairs, 1 to 1e9)\n");
    return 2;
  }
  char* end = NULL;
  errno = 0;
  const unsigned long n = strtoul(argv[1], &end, 10);
  if (errno != 0 || *argv[1] == '\0' || *argv[1] == '-' || *end != '\0' || n == 0 ||
      n > 1000000000UL) {
    fprintf(stderr, "execmem-pairs: bad N '%s': expected a whole number from 1 to 1e9\n", argv[1]);
    return 2;
  }
  /* Sizes: a fixed pseudo-random mix in [16, 512], the same on every run. */
  uint32_t x = 12345;
  for (int i = 0; i < kSizes; ++i) {
    x = x * 1103515245u + 12345u;
    sizes[i] = 16 + (x >> 8) % 497;
  }
  if (usable) {
    run_usable_pairs(n);
  } else {
    run_pairs(n);
  }
  printf("pairs=%lu\n", n);
  return 0;
}
