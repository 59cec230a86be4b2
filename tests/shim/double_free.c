/* One memory error per run, for tests/shim/double_free.sh: a C program under
 * the preload commits the error named by argv[1]; execmem must print one line
 * and abort (the script checks both). The "ok-" modes are legitimate and
 * must exit 0.
 *
 *   shim_double_free MODE */
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* C23's free_sized: the preload exports it (glibc 2.36 does not). */
static void free_sized(void* ptr, size_t size) {
  void (*fn)(void*, size_t) = (void (*)(void*, size_t))dlsym(RTLD_DEFAULT, "free_sized");
  if (fn == NULL) {
    fprintf(stderr, "shim_double_free: no free_sized (not under execmem?)\n");
    exit(3);
  }
  fn(ptr, size);
}

static void* volatile sink;
static void* keep(void* p) {
  sink = p;
  return p;
}

static void* free_it(void* p) {
  free(p);
  return NULL;
}

static void free_on_thread(void* p) {
  pthread_t t;
  pthread_create(&t, NULL, free_it, p);
  pthread_join(t, NULL);
}

enum { kUsableSizes = 12, kUsableBlocks = 300 };
static void* usable_blocks[kUsableSizes][kUsableBlocks];
static size_t usable_request(int i) {
  size_t n = 1;
  for (int k = 0; k < i; ++k) n = n * 3 + 1; /* 1, 4, 13, ..., 88573 */
  return n;
}
static void* fill_blocks(void* arg) {
  (void)arg;
  for (int i = 0; i < kUsableSizes; ++i) {
    for (int j = 0; j < kUsableBlocks; ++j) usable_blocks[i][j] = keep(malloc(usable_request(i)));
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: shim_double_free MODE\n");
    return 2;
  }
  const char* mode = argv[1];
  if (strcmp(mode, "plain") == 0) {
    char* p = keep(malloc(40));
    free(p);
    free(p);
  } else if (strcmp(mode, "delayed") == 0) {
    char* p = keep(malloc(24));
    free(p);
    for (int i = 0; i < 1000; ++i) free(keep(malloc(24 + i % 200)));
    char* q[100];
    for (int i = 0; i < 100; ++i) q[i] = keep(malloc(24));
    for (int i = 0; i < 100; ++i) free(q[i]);
    free(q[50]);
  } else if (strcmp(mode, "interleaved") == 0) {
    char* a = keep(malloc(64));
    char* b = keep(malloc(64));
    free(a);
    free(b);
    free(a);
  } else if (strcmp(mode, "ok-reuse") == 0) {
    for (size_t size = 1; size < 300000; size = size * 3 + 1) {
      char* p = keep(malloc(size));
      free(p);
      char* q = keep(malloc(size));
      if (q != p) fprintf(stderr, "note: %zu-byte block not reused\n", size);
      free(q);
    }
    return 0;
  } else if (strcmp(mode, "medium") == 0) {
    char* p = keep(malloc(20000));
    keep(malloc(20000));
    free(p);
    free(p);
  } else if (strcmp(mode, "large") == 0) {
    char* p = keep(malloc(3 << 20));
    free(p);
    free(p);
  } else if (strcmp(mode, "huge") == 0) {
    char* p = keep(malloc(90 << 20));
    free(p);
    free(p);
  } else if (strcmp(mode, "thread") == 0) {
    char* p = keep(malloc(48));
    keep(malloc(48));
    free(p);
    free_on_thread(p);
  } else if (strcmp(mode, "invalid") == 0) {
    char on_stack[32];
    free(keep(on_stack));
  } else if (strcmp(mode, "interior") == 0) {
    char* p = keep(malloc(100));
    free(p + 16);
  } else if (strcmp(mode, "usable-interior") == 0) {
    /* malloc_usable_size's inline path (cache/heap-inl.h) checks as free does. */
    char* p = keep(malloc(100));
    keep((void*)malloc_usable_size(p + 16));
  } else if (strcmp(mode, "usable-large-interior") == 0) {
    char* p = keep(malloc(200000));
    keep((void*)malloc_usable_size(p + 64));
  } else if (strcmp(mode, "usable-meta") == 0 || strcmp(mode, "realloc-meta") == 0) {
    /* A pointer into an arena's metadata (its header's descriptor, the
     * descriptor pages, the pool's page): the inline paths read the
     * descriptor of its page without testing the page's index (cache/
     * heap-inl.h, ArenaPageOf), so they must refuse it all the same. The
     * arena is the 64 MiB-aligned region of a small block. */
    char* base = (char*)((uintptr_t)keep(malloc(48)) & ~(((uintptr_t)1 << 26) - 1));
    const uintptr_t offsets[] = {0, 16, 48, 128, 65536, 2 * 65536 + 64};
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; ++i) {
      char* p = base + offsets[i];
      const char* which = getenv("SHIM_META_OFFSET");
      if (which != NULL && (uintptr_t)strtoull(which, NULL, 10) != offsets[i]) continue;
      if (mode[0] == 'u') keep((void*)malloc_usable_size(p));
      else keep(realloc(p, 32));
    }
  } else if (strcmp(mode, "realloc-interior") == 0) {
    /* realloc's inline path (a small block kept in its class) checks as free does. */
    char* p = keep(malloc(100));
    keep(realloc(p + 16, 90));
  } else if (strcmp(mode, "ok-usable") == 0) {
    /* Blocks of every size class range, allocated by a thread that has
     * exited (full spans of another heap, tail pages, large blocks): their
     * usable size fits their request. */
    pthread_t t;
    pthread_create(&t, NULL, fill_blocks, NULL);
    pthread_join(t, NULL);
    for (int i = 0; i < kUsableSizes; ++i) {
      for (int j = 0; j < kUsableBlocks; ++j) {
        const size_t n = usable_request(i), u = malloc_usable_size(usable_blocks[i][j]);
        if (u < n || u > n + n / 4 + 65536) {
          fprintf(stderr, "malloc_usable_size of a %zu-byte block: %zu\n", n, u);
          return 1;
        }
        free(usable_blocks[i][j]);
      }
    }
    return 0;
  } else if (strcmp(mode, "sized") == 0) {
    char* p = keep(malloc(48));
    free_sized(p, 480);
  } else if (strcmp(mode, "ok-sized") == 0) {
    for (size_t size = 0; size < 5000; ++size) free_sized(keep(malloc(size)), size);
    return 0;
  } else {
    fprintf(stderr, "shim_double_free: unknown mode '%s'\n", mode);
    return 2;
  }
  fprintf(stderr, "shim_double_free: %s: not caught\n", mode);
  return 1;
}
