// The 20 replaceable global operator new / delete of the LD_PRELOAD shim.
//
//   new (plain, array, aligned)  -> execmem_malloc / execmem_aligned_alloc
//        on failure (noinline)   -> loop on std::get_new_handler(), then
//                                   execmem::allocate*, which throws
//                                   execmem::OutOfMemory (a std::bad_alloc)
//                                   naming the executor and its budgets
//   new (nothrow forms)          -> the same loop; nullptr instead of a throw
//   delete (sized forms)         -> execmem_free_sized / _aligned_sized, with
//                                   the size as it was passed to execmem
//   delete (other forms)         -> execmem::Free (inlined fast path)
//
// [new.delete.single]: the throwing forms call the installed new-handler
// until the allocation succeeds or no handler is left; the nothrow forms
// behave as if calling the throwing form inside try/catch, so they honour the
// handler too and never throw or abort (mimalloc's abort on an impossible
// nothrow size is what this file must not do). With EXECMEM_OOM=abort the
// core aborts with its report before any of this is reached.
#include <cstddef>
#include <new>

#include "allocator/heap-inl.h"
#include "execmem.h"
#include "execmem.hpp"
#include "shim/request.h"

namespace {

// alignment 0 means __STDCPP_DEFAULT_NEW_ALIGNMENT__, which the rounded
// request gives (shim/request.h); the malloc fast path is inlined.
inline void* TryAllocate(std::size_t size, std::size_t alignment) {
  return alignment == 0 ? execmem::Malloc(execmem::shim::GlibcRequest(size))
                        : execmem_aligned_alloc(alignment, execmem::shim::NonEmpty(size));
}

[[gnu::noinline]] void* NewSlow(std::size_t size, std::size_t alignment) {
  for (;;) {
    const std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      // One more attempt through the throwing API: its exception carries the
      // out-of-memory report, which a bare std::bad_alloc would not. The same
      // request as TryAllocate's, rounded alike: the raw size could pick an
      // 8-aligned class (72, 88, ...).
      return alignment == 0
                 ? execmem::allocate(execmem::shim::GlibcRequest(size))
                 : execmem::allocate_aligned(execmem::shim::NonEmpty(size), alignment);
    }
    handler();
    if (void* block = TryAllocate(size, alignment)) return block;
  }
}

[[gnu::noinline]] void* NewNothrowSlow(std::size_t size, std::size_t alignment) noexcept {
  for (;;) {
    const std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) return nullptr;
    try {
      handler();
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
    if (void* block = TryAllocate(size, alignment)) return block;
  }
}

inline void* New(std::size_t size, std::size_t alignment) {
  if (void* block = TryAllocate(size, alignment)) [[likely]]
    return block;
  return NewSlow(size, alignment);
}

inline void* NewNothrow(std::size_t size, std::size_t alignment) noexcept {
  if (void* block = TryAllocate(size, alignment)) [[likely]]
    return block;
  return NewNothrowSlow(size, alignment);
}

inline std::size_t Alignment(std::align_val_t alignment) {
  return static_cast<std::size_t>(alignment);
}

}  // namespace

// ---- new ----------------------------------------------------------------------
EXECMEM_API void* operator new(std::size_t size) { return New(size, 0); }
EXECMEM_API void* operator new[](std::size_t size) { return New(size, 0); }
EXECMEM_API void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return NewNothrow(size, 0);
}
EXECMEM_API void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return NewNothrow(size, 0);
}
EXECMEM_API void* operator new(std::size_t size, std::align_val_t alignment) {
  return New(size, Alignment(alignment));
}
EXECMEM_API void* operator new[](std::size_t size, std::align_val_t alignment) {
  return New(size, Alignment(alignment));
}
EXECMEM_API void* operator new(std::size_t size, std::align_val_t alignment,
                               const std::nothrow_t&) noexcept {
  return NewNothrow(size, Alignment(alignment));
}
EXECMEM_API void* operator new[](std::size_t size, std::align_val_t alignment,
                                 const std::nothrow_t&) noexcept {
  return NewNothrow(size, Alignment(alignment));
}

// ---- delete -------------------------------------------------------------------
EXECMEM_API void operator delete(void* ptr) noexcept { execmem::Free(ptr); }
EXECMEM_API void operator delete[](void* ptr) noexcept { execmem::Free(ptr); }
EXECMEM_API void operator delete(void* ptr, const std::nothrow_t&) noexcept { execmem_free(ptr); }
EXECMEM_API void operator delete[](void* ptr, const std::nothrow_t&) noexcept { execmem_free(ptr); }
EXECMEM_API void operator delete(void* ptr, std::size_t size) noexcept {
  execmem_free_sized(ptr, execmem::shim::GlibcRequest(size));
}
EXECMEM_API void operator delete[](void* ptr, std::size_t size) noexcept {
  execmem_free_sized(ptr, execmem::shim::GlibcRequest(size));
}
EXECMEM_API void operator delete(void* ptr, std::align_val_t) noexcept { execmem_free(ptr); }
EXECMEM_API void operator delete[](void* ptr, std::align_val_t) noexcept { execmem_free(ptr); }
EXECMEM_API void operator delete(void* ptr, std::align_val_t, const std::nothrow_t&) noexcept {
  execmem_free(ptr);
}
EXECMEM_API void operator delete[](void* ptr, std::align_val_t, const std::nothrow_t&) noexcept {
  execmem_free(ptr);
}
EXECMEM_API void operator delete(void* ptr, std::size_t size, std::align_val_t alignment) noexcept {
  execmem_free_aligned_sized(ptr, Alignment(alignment), execmem::shim::NonEmpty(size));
}
EXECMEM_API void operator delete[](void* ptr, std::size_t size,
                                   std::align_val_t alignment) noexcept {
  execmem_free_aligned_sized(ptr, Alignment(alignment), execmem::shim::NonEmpty(size));
}
