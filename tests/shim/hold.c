/* Holds memory for a while, for the observability tests (observe.sh):
 *
 *   hold MIB MS [CHILDREN]
 *
 * allocates MIB blocks of 1 MiB, touching every page, until done or until
 * malloc refuses (an OOM under a small EXECMEM_MAX), sleeps MS milliseconds
 * and exits through exit() without freeing, so that the at-exit reports see
 * the memory held. With CHILDREN, forks that many children first, which do
 * the same (each its own process, its own stats file and timeline) and exit
 * through exit(); the parent waits for them and fails if one failed.
 * Prints "held N MiB" (and "refused" when malloc returned NULL). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static int hold(long mib, long ms) {
  long held = 0;
  int refused = 0;
  for (; held < mib; ++held) {
    char* p = malloc(1 << 20);
    if (p == NULL) {
      refused = errno == ENOMEM;
      if (!refused) {
        fprintf(stderr, "hold: malloc failed with errno %d, want ENOMEM\n", errno);
        return 1;
      }
      break;
    }
    memset(p, 1, 1 << 20);
  }
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  printf("held %ld MiB%s\n", held, refused ? " refused" : "");
  fflush(stdout);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: hold MIB MS [CHILDREN]\n");
    return 2;
  }
  if (!check_preloaded()) {
    fprintf(stderr, "hold: execmem is not preloaded\n");
    return 1;
  }
  const long mib = atol(argv[1]);
  const long ms = atol(argv[2]);
  const int children = argc == 4 ? atoi(argv[3]) : 0;
  for (int i = 0; i < children; ++i) {
    const pid_t pid = fork();
    if (pid < 0) {
      perror("hold: fork");
      return 1;
    }
    if (pid == 0) exit(hold(mib, ms));
  }
  int rc = hold(mib, ms);
  for (int i = 0; i < children; ++i) {
    int status = 0;
    if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
  }
  exit(rc);
}
