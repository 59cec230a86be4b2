/* execmem-startup: what LD_PRELOAD=libexecmem_preload.so adds to a program's
 * start-up and exit.
 *
 *   execmem-startup [-n RUNS] PRELOAD [PROGRAM [ARGS...]]   (PROGRAM: /bin/true)
 *
 * Runs PROGRAM 2 x RUNS times with posix_spawn, alternating a plain run and a
 * run with LD_PRELOAD=PRELOAD (so that a change in the machine's load hits
 * both alike), times each from spawn to exit, and prints the medians and
 * their difference in milliseconds:
 *
 *   runs 1000  plain 0.612 ms  preloaded 0.701 ms  cost +0.089 ms  (medians; p25-p75 ...)
 *
 * Exit status 1 on bad usage or when a run fails. */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char** environ;

static double NowMs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int CompareDoubles(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

/* The environment without LD_PRELOAD, plus `extra` when not NULL. */
static char** Environment(const char* extra) {
  size_t n = 0;
  while (environ[n] != NULL) ++n;
  char** env = calloc(n + 2, sizeof(char*));
  if (env == NULL) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; ++i) {
    if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0) env[k++] = environ[i];
  }
  if (extra != NULL) env[k++] = (char*)extra;
  return env;
}

/* Milliseconds from spawn to exit, or -1 when the run fails. */
static double TimeOneRun(char** argv, char** env) {
  const double start = NowMs();
  pid_t pid;
  const int rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, env);
  if (rc != 0) {
    fprintf(stderr, "execmem-startup: cannot run %s: %s\n", argv[0], strerror(rc));
    return -1;
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  const double elapsed = NowMs() - start;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "execmem-startup: %s failed (status 0x%x)\n", argv[0], status);
    return -1;
  }
  return elapsed;
}

static double Quantile(const double* sorted, size_t n, double q) {
  return sorted[(size_t)(q * (double)(n - 1))];
}

int main(int argc, char** argv) {
  long runs = 1000;
  int arg = 1;
  if (arg + 1 < argc && strcmp(argv[arg], "-n") == 0) {
    char* end;
    runs = strtol(argv[arg + 1], &end, 10);
    if (*end != '\0' || runs < 1 || runs > 1000000) {
      fprintf(stderr, "execmem-startup: -n '%s': expected a number of runs from 1 to 1000000\n",
              argv[arg + 1]);
      return 1;
    }
    arg += 2;
  }
  if (arg >= argc) {
    fprintf(stderr, "usage: execmem-startup [-n RUNS] PRELOAD [PROGRAM [ARGS...]]\n");
    return 1;
  }
  const char* preload = argv[arg++];
  char* default_argv[] = {"/bin/true", NULL};
  char** program = arg < argc ? argv + arg : default_argv;

  const size_t preload_len = strlen("LD_PRELOAD=") + strlen(preload) + 1;
  char* preload_var = malloc(preload_len);
  double* plain = calloc((size_t)runs, sizeof(double));
  double* preloaded = calloc((size_t)runs, sizeof(double));
  char** plain_env = Environment(NULL);
  char** preload_env = NULL;
  if (preload_var != NULL) {
    snprintf(preload_var, preload_len, "LD_PRELOAD=%s", preload);
    preload_env = Environment(preload_var);
  }
  if (plain == NULL || preloaded == NULL || plain_env == NULL || preload_env == NULL) {
    fprintf(stderr, "execmem-startup: out of memory\n");
    return 1;
  }
  /* One of each first, unmeasured: page cache and dynamic loader caches warm. */
  if (TimeOneRun(program, plain_env) < 0 || TimeOneRun(program, preload_env) < 0) return 1;
  for (long i = 0; i < runs; ++i) {
    plain[i] = TimeOneRun(program, plain_env);
    preloaded[i] = TimeOneRun(program, preload_env);
    if (plain[i] < 0 || preloaded[i] < 0) return 1;
  }
  qsort(plain, (size_t)runs, sizeof(double), CompareDoubles);
  qsort(preloaded, (size_t)runs, sizeof(double), CompareDoubles);
  const size_t n = (size_t)runs;
  const double p50 = Quantile(plain, n, 0.5), l50 = Quantile(preloaded, n, 0.5);
  printf(
      "runs %ld  plain %.3f ms  preloaded %.3f ms  cost %+.3f ms  (medians; p25-p75: plain "
      "%.3f-%.3f, preloaded %.3f-%.3f)\n",
      runs, p50, l50, l50 - p50, Quantile(plain, n, 0.25), Quantile(plain, n, 0.75),
      Quantile(preloaded, n, 0.25), Quantile(preloaded, n, 0.75));
  return 0;
}
