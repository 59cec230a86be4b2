// libexecmem_bench_glibc.so: glibc's malloc for a program that links another
// allocator. Debian's redis-server links libjemalloc, so run without a preload
// it measures jemalloc, not glibc; preloaded, this library defines the malloc
// family and the C++ operators that libjemalloc exports and forwards each to
// glibc's own entry points (__libc_malloc, ...), so that bench/redis/run.sh
// measures glibc where it says glibc. Nothing here is execmem.
#include <dlfcn.h>
#include <errno.h>

#include <atomic>
#include <cstddef>
#include <new>

extern "C" {
void* __libc_malloc(size_t size);
void __libc_free(void* p);
void* __libc_calloc(size_t n, size_t size);
void* __libc_realloc(void* p, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void* __libc_valloc(size_t size);
void* __libc_pvalloc(size_t size);
}

namespace {

bool PowerOfTwo(size_t v) { return v != 0 && (v & (v - 1)) == 0; }

// glibc exports malloc_usable_size under no __libc_ name: take libc.so.6's own
// symbol (a lookup in that object, not the global one that finds ours).
size_t GlibcUsableSize(void* p) {
  using Fn = size_t (*)(void*);
  static std::atomic<Fn> fn{nullptr};
  Fn f = fn.load(std::memory_order_acquire);
  if (f == nullptr) {
    void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    f = libc != nullptr ? reinterpret_cast<Fn>(dlsym(libc, "malloc_usable_size")) : nullptr;
    if (f == nullptr) return 0;
    fn.store(f, std::memory_order_release);
  }
  return f(p);
}

void* New(size_t size, size_t alignment) {
  for (;;) {
    void* p = alignment != 0 ? __libc_memalign(alignment, size) : __libc_malloc(size);
    if (p != nullptr) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

void* NewNothrow(size_t size, size_t alignment) noexcept {
  try {
    return New(size, alignment);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace

extern "C" {
void* malloc(size_t size) { return __libc_malloc(size); }
void free(void* p) { __libc_free(p); }
void* calloc(size_t n, size_t size) { return __libc_calloc(n, size); }
void* realloc(void* p, size_t size) { return __libc_realloc(p, size); }
void* memalign(size_t alignment, size_t size) { return __libc_memalign(alignment, size); }
void* valloc(size_t size) { return __libc_valloc(size); }
void* pvalloc(size_t size) { return __libc_pvalloc(size); }
void* aligned_alloc(size_t alignment, size_t size) {
  if (!PowerOfTwo(alignment)) {
    errno = EINVAL;
    return nullptr;
  }
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, size_t alignment, size_t size) {
  if (!PowerOfTwo(alignment) || alignment % sizeof(void*) != 0) return EINVAL;
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
size_t malloc_usable_size(void* p) { return p != nullptr ? GlibcUsableSize(p) : 0; }
}

// The 20 replaceable forms of operator new and delete.
void* operator new(size_t n) { return New(n, 0); }
void* operator new[](size_t n) { return New(n, 0); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return NewNothrow(n, 0); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return NewNothrow(n, 0); }
void* operator new(size_t n, std::align_val_t a) { return New(n, static_cast<size_t>(a)); }
void* operator new[](size_t n, std::align_val_t a) { return New(n, static_cast<size_t>(a)); }
void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return NewNothrow(n, static_cast<size_t>(a));
}
void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return NewNothrow(n, static_cast<size_t>(a));
}
void operator delete(void* p) noexcept { __libc_free(p); }
void operator delete[](void* p) noexcept { __libc_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { __libc_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { __libc_free(p); }
void operator delete(void* p, size_t) noexcept { __libc_free(p); }
void operator delete[](void* p, size_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { __libc_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  __libc_free(p);
}
void operator delete(void* p, size_t, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { __libc_free(p); }
