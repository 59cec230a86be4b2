/* execmem-measure: runs a program and reports its wall time and peak RSS.
 *
 *   execmem-measure [--preload LIB] [--timeout SECONDS] --out FILE -- PROGRAM [ARGS...]
 *
 * The child gets LD_PRELOAD=LIB (or no LD_PRELOAD at all), so that this
 * process itself always runs on glibc and only the measured program sees the
 * allocator under test. FILE receives one JSON object:
 *   {"wall_s":..,"user_s":..,"sys_s":..,"maxrss_kb":..,"minflt":..,"majflt":..,
 *    "exit_code":..,"signal":..}
 * Peak RSS and the page faults (minor: a page the process touched first, which
 * the kernel had to zero and map; a count that load does not move) come from
 * wait4()'s rusage (the child's own high-water mark and totals), wall
 * time from CLOCK_MONOTONIC around fork and wait. The exit status is the
 * child's, 128+N when it died of signal N, 124 on timeout and 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t timed_out = 0;
static volatile pid_t child_pid = 0;

static void on_alarm(int sig) {
  (void)sig;
  timed_out = 1;
  if (child_pid > 0) kill(child_pid, SIGKILL);
}

static int usage(const char* why) {
  fprintf(stderr,
          "execmem-measure: %s\n"
          "usage: execmem-measure [--preload LIB] [--timeout SECONDS] --out FILE -- PROGRAM "
          "[ARGS...]\n",
          why);
  return 2;
}

static double seconds(const struct timeval* tv) { return (double)tv->tv_sec + tv->tv_usec / 1e6; }

int main(int argc, char** argv) {
  const char* preload = NULL;
  const char* out_path = NULL;
  unsigned timeout = 0;
  int i = 1;
  for (; i < argc; ++i) {
    if (strcmp(argv[i], "--") == 0) {
      ++i;
      break;
    }
    if (i + 1 >= argc) return usage("option without a value");
    if (strcmp(argv[i], "--preload") == 0) {
      preload = argv[++i];
    } else if (strcmp(argv[i], "--out") == 0) {
      out_path = argv[++i];
    } else if (strcmp(argv[i], "--timeout") == 0) {
      char* end = NULL;
      const unsigned long t = strtoul(argv[++i], &end, 10);
      if (*argv[i] == '\0' || *end != '\0' || t == 0 || t > 86400) {
        return usage("--timeout takes whole seconds from 1 to 86400");
      }
      timeout = (unsigned)t;
    } else {
      return usage("unknown option");
    }
  }
  if (out_path == NULL) return usage("--out FILE is required");
  if (i >= argc) return usage("no program given after --");
  if (preload != NULL && access(preload, R_OK) != 0) {
    fprintf(stderr, "execmem-measure: cannot read preload library %s: %s\n", preload,
            strerror(errno));
    return 2;
  }
  FILE* out = fopen(out_path, "w");
  if (out == NULL) {
    fprintf(stderr, "execmem-measure: cannot write %s: %s\n", out_path, strerror(errno));
    return 2;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);

  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  const pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "execmem-measure: fork: %s\n", strerror(errno));
    return 2;
  }
  if (pid == 0) {
    if (preload != NULL) {
      setenv("LD_PRELOAD", preload, 1);
    } else {
      unsetenv("LD_PRELOAD");
    }
    execvp(argv[i], argv + i);
    fprintf(stderr, "execmem-measure: cannot run %s: %s\n", argv[i], strerror(errno));
    _exit(127);
  }
  child_pid = pid;
  if (timeout != 0) alarm(timeout);

  int status = 0;
  struct rusage usage_info;
  pid_t got;
  do {
    got = wait4(pid, &status, 0, &usage_info);
  } while (got < 0 && errno == EINTR);
  clock_gettime(CLOCK_MONOTONIC, &end);
  alarm(0);
  if (got < 0) {
    fprintf(stderr, "execmem-measure: wait4: %s\n", strerror(errno));
    return 2;
  }

  const double wall = (double)(end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
  const int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const int signal_no = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  fprintf(out,
          "{\"wall_s\":%.6f,\"user_s\":%.6f,\"sys_s\":%.6f,\"maxrss_kb\":%ld,"
          "\"minflt\":%ld,\"majflt\":%ld,\"exit_code\":%d,\"signal\":%d,\"timed_out\":%s}\n",
          wall, seconds(&usage_info.ru_utime), seconds(&usage_info.ru_stime), usage_info.ru_maxrss,
          usage_info.ru_minflt, usage_info.ru_majflt, exit_code, signal_no,
          timed_out ? "true" : "false");
  if (fclose(out) != 0) {
    fprintf(stderr, "execmem-measure: cannot write %s\n", out_path);
    return 2;
  }
  if (timed_out) return 124;
  if (signal_no != 0) return 128 + signal_no;
  return exit_code;
}
