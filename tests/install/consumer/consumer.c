/* A C program using an installed execmem: built by install_test.sh with
 * find_package(execmem) and with pkg-config, against libexecmem.so and
 * libexecmem.a. Exit status 0 when everything checked holds. */
#include <errno.h>
#include <execmem.h>
#include <stdio.h>
#include <string.h>

#define CHECK(cond, ...)                           \
  do {                                             \
    if (!(cond)) {                                 \
      fprintf(stderr, "consumer.c: " __VA_ARGS__); \
      fprintf(stderr, "\n");                       \
      return 1;                                    \
    }                                              \
  } while (0)

int main(void) {
  CHECK(strcmp(execmem_version(), EXECMEM_VERSION_STRING) == 0, "library version %s, headers %s",
        execmem_version(), EXECMEM_VERSION_STRING);

  execmem_executor_options_t bad = {.name = "consumer-c-bad", .max = "lots"};
  execmem_executor_t* none = NULL;
  CHECK(execmem_executor_create(&bad, &none) == EINVAL, "max=lots accepted");
  CHECK(strstr(execmem_last_error(), "lots") != NULL, "error does not name the value: '%s'",
        execmem_last_error());

  execmem_executor_options_t o = {
      .name = "consumer-c", .initial = "1m", .max = "8m", .overhead = "512k"};
  execmem_executor_t* e = NULL;
  CHECK(execmem_executor_create(&o, &e) == 0, "create: %s", execmem_last_error());
  execmem_executor_t* prev = execmem_bind(e);
  void* p = execmem_malloc((size_t)1 << 20);
  CHECK(p != NULL && execmem_owns(p), "1 MiB allocation");
  memset(p, 1, (size_t)1 << 20);
  execmem_executor_stats_t s = {.version = EXECMEM_STATS_VERSION};
  CHECK(execmem_executor_stats(e, &s) == 0 && s.used >= ((size_t)1 << 20), "used %llu",
        (unsigned long long)s.used);
  CHECK(execmem_malloc((size_t)64 << 20) == NULL && errno == ENOMEM, "64 MiB above max 8m");
  execmem_free(p);
  execmem_bind(prev);
  CHECK(execmem_executor_destroy(e) == 0, "destroy: %s", execmem_last_error());
  printf("consumer.c: execmem %s ok\n", execmem_version());
  return 0;
}
