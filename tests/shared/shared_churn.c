/* A member of a shared pool under the preload that churns (shared_rss_test.sh):
 *
 *   shared_churn MIB SEED
 *
 * mallocs blocks of mixed sizes (64 B to 2 MiB, most small), touching every
 * page, until MIB are live or malloc refuses; frees a random half and fills
 * up again, 20 times, so that freed memory is cached, reused and returned
 * as a long-running process does. Then prints "held N" (live MiB, and
 * " refused" when malloc ever returned NULL with ENOMEM), keeps its blocks
 * until stdin closes, frees them and prints "freed". Not linked to execmem:
 * it reaches it only through the preload. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { kRounds = 20, kMaxBlocks = 1 << 20 };

static uint64_t g_state;
static uint64_t Next(void) { /* xorshift64* */
  g_state ^= g_state >> 12;
  g_state ^= g_state << 25;
  g_state ^= g_state >> 27;
  return g_state * 2685821657736338717ULL;
}

static size_t RandomSize(void) {
  const uint64_t r = Next() % 100;
  if (r < 80) return 64 + Next() % 4032;           /* small: 64 B - 4 KiB */
  if (r < 97) return 4096 + Next() % (252 * 1024); /* medium: up to 256 KiB */
  return (256 << 10) + Next() % (1792 << 10);      /* large: up to 2 MiB */
}

int main(int argc, char** argv) {
  if (argc != 3 || atol(argv[1]) <= 0) {
    fprintf(stderr, "usage: shared_churn MIB SEED\n");
    return 2;
  }
  const size_t limit = (size_t)atol(argv[1]) << 20;
  g_state = (uint64_t)atoll(argv[2]) * 0x9E3779B97F4A7C15ULL + 1;
  char** blocks = calloc(kMaxBlocks, sizeof *blocks);
  size_t* sizes = calloc(kMaxBlocks, sizeof *sizes);
  if (blocks == NULL || sizes == NULL) return 3;
  size_t n = 0, live = 0;
  int refused = 0;
  for (int round = 0; round < kRounds; ++round) {
    while (live < limit && n < kMaxBlocks) {
      const size_t size = RandomSize();
      errno = 0;
      char* p = malloc(size);
      if (p == NULL) {
        if (errno != ENOMEM) {
          fprintf(stderr, "shared_churn: malloc failed with errno %d, want ENOMEM\n", errno);
          return 1;
        }
        refused = 1;
        break;
      }
      memset(p, (int)(n & 0xff) | 1, size);
      blocks[n] = p;
      sizes[n] = size;
      ++n;
      live += size;
    }
    /* Free a random half (swap-remove), checking each block's fill. */
    for (size_t k = n / 2; k > 0 && n > 0; --k) {
      const size_t i = Next() % n;
      if (blocks[i][sizes[i] - 1] == 0) {
        fprintf(stderr, "shared_churn: block %zu lost its content\n", i);
        return 1;
      }
      free(blocks[i]);
      live -= sizes[i];
      blocks[i] = blocks[n - 1];
      sizes[i] = sizes[n - 1];
      --n;
    }
  }
  /* Fill up once more and hold. */
  while (live < limit && n < kMaxBlocks) {
    const size_t size = RandomSize();
    char* p = malloc(size);
    if (p == NULL) {
      refused = 1;
      break;
    }
    memset(p, 1, size);
    blocks[n] = p;
    sizes[n++] = size;
    live += size;
  }
  printf("held %zu%s\n", live >> 20, refused ? " refused" : "");
  fflush(stdout);
  char buf[64];
  while (read(0, buf, sizeof buf) > 0) {
  }
  for (size_t i = 0; i < n; ++i) free(blocks[i]);
  free(blocks);
  free(sizes);
  printf("freed\n");
  return 0;
}
