/* execmem-rchain: realloc growth, 4 KiB to 1 MiB (docs/large-blocks.md).
 *
 *   execmem-rchain [CHAINS]
 *
 * Each chain does malloc(4096), then realloc to twice the size until 1 MiB
 * (8 reallocs), writing the last byte at every step, then free. Prints the
 * thread CPU time per realloc over CHAINS chains (default 100 000), after 100
 * chains of warm-up. Under callgrind, count run_chains() only
 * (--toggle-collect=run_chains) and divide by 8 x CHAINS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* noinline and visible: callgrind finds it by name. */
__attribute__((noinline)) long run_chains(long n) {
  long calls = 0;
  for (long i = 0; i < n; ++i) {
    size_t size = 4096;
    char* p = malloc(size);
    if (p == NULL) abort();
    p[0] = 1;
    while (size < (1u << 20)) {
      size *= 2;
      p = realloc(p, size);
      if (p == NULL) abort();
      p[size - 1] = 1;
      ++calls;
    }
    free(p);
  }
  return calls;
}

int main(int argc, char** argv) {
  char* end = NULL;
  const long n = argc > 1 ? strtol(argv[1], &end, 10) : 100000;
  if (argc > 1 && (*end != '\0' || n < 1)) {
    fprintf(stderr, "execmem-rchain: bad CHAINS '%s': expected a whole number above 0\n", argv[1]);
    return 2;
  }
  run_chains(100);
  struct timespec a, b;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
  const long calls = run_chains(n);
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
  const double ns =
      ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)calls;
  printf("%.1f ns per realloc (thread CPU time, %ld calls)\n", ns, calls);
  return 0;
}
