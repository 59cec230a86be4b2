/* A process of a shared pool under the preload (shared_shim_test.sh):
 *
 *   shared_hog MIB
 *
 * mallocs 1 MiB blocks, touching each, until MIB or until malloc refuses;
 * prints "held N" (and " refused" when malloc returned NULL with ENOMEM),
 * then keeps them until stdin closes, frees them and prints "freed".
 * Not linked to execmem: it reaches it only through the preload. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: shared_hog MIB\n");
    return 2;
  }
  const long mib = atol(argv[1]);
  void** blocks = calloc((size_t)mib + 1, sizeof *blocks);
  if (blocks == NULL) return 3;
  long held = 0;
  int refused = 0;
  for (; held < mib; ++held) {
    errno = 0;
    char* p = malloc(1 << 20);
    if (p == NULL) {
      refused = 1;
      if (errno != ENOMEM) {
        fprintf(stderr, "shared_hog: malloc failed with errno %d, want ENOMEM\n", errno);
        return 1;
      }
      break;
    }
    memset(p, 1, 1 << 20);
    blocks[held] = p;
  }
  printf("held %ld%s\n", held, refused ? " refused" : "");
  fflush(stdout);
  char buf[64];
  while (read(0, buf, sizeof buf) > 0) {
  }
  for (long i = 0; i < held; ++i) free(blocks[i]);
  free(blocks);
  printf("freed\n");
  return 0;
}
