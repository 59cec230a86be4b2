/* execmem-pairs: the fast-path probe run under callgrind by bench/run.sh.
 *
 *   execmem-pairs N
 *
 * Does N malloc+free pairs, each freed right after it is allocated (LIFO),
 * with sizes cycling through a fixed table of mixed sizes from 16 to 512 bytes.
 * run.sh counts instructions inside run_pairs() only (callgrind
 * --toggle-collect) for two values of N and divides the difference by the
 * difference of N, which cancels start-up and first-touch costs and leaves
 * the steady-state cost of one pair.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: execmem-pairs N   (N: number of malloc+free pairs, 1 to 1e9)\n");
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
  run_pairs(n);
  printf("pairs=%lu\n", n);
  return 0;
}
