// The 20 replaceable global operator new / delete of the LD_PRELOAD shim.
//
//   new (plain, array, aligned)  -> execmem_malloc / execmem_aligned_alloc
//        on failure (noinline)   -> loop on the program's new-handler, then
//                                   throw execmem::OutOfMemory (a
//                                   std::bad_alloc) naming the executor and
//                                   its budgets
//   new (nothrow forms)          -> nullptr, or with a new-handler installed
//                                   the C++ runtime's own nothrow form, which
//                                   calls the throwing one in try/catch
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
//
// The program's C++ runtime, not ours. This library carries its own hidden
// copy of libstdc++ and the unwinder (it needs libc alone), but the
// new-handler is the one the program set (std::set_new_handler in its
// libstdc++.so) and the exception must be thrown by the runtime that catches
// it: a personality routine of one runtime cannot drive the unwinder of
// another. So the slow paths look the program's runtime up (dlsym, once),
// throw through its __cxa_throw, and leave catching a handler's exception to
// its own nothrow operator new. No frame of this file between a throw and the
// program may need a cleanup (no local with a destructor, no try): the
// program's unwinder passes through them on their call frame information
// alone. Without a C++ runtime in the process (nothing can catch then) our
// own is used.
#include <cstddef>
#include <new>
#include <typeinfo>

#include "cache/heap-inl.h"
#include "execmem.h"
#include "execmem.hpp"
#include "platform/os.h"
#include "shim/request.h"

namespace {

// alignment 0 means __STDCPP_DEFAULT_NEW_ALIGNMENT__, which the rounded
// request gives (shim/request.h); the malloc fast path is inlined.
inline void* TryAllocate(std::size_t size, std::size_t alignment) {
  return alignment == 0 ? execmem::shim::GlibcMalloc(size)
                        : execmem_aligned_alloc(alignment, execmem::shim::NonEmpty(size));
}

// The program's C++ runtime (libstdc++.so), every member null without one.
struct ProgramRuntime {
  std::new_handler (*get_new_handler)() noexcept;
  void* (*allocate_exception)(std::size_t) noexcept;
  void (*free_exception)(void*) noexcept;
  [[noreturn]] void (*throw_exception)(void*, std::type_info*, void (*)(void*));
  void* (*nothrow_new)(std::size_t, const std::nothrow_t&) noexcept;
  void* (*nothrow_aligned_new)(std::size_t, std::align_val_t, const std::nothrow_t&) noexcept;
};

template <typename Fn>
void Find(Fn& fn, const char* name, bool next = false) {
  fn = reinterpret_cast<Fn>(next ? execmem::os::FindNextSymbol(name)
                                 : execmem::os::FindSymbol(name));
}

const ProgramRuntime& Program() {
  static const ProgramRuntime runtime = [] {
    ProgramRuntime r;
    // Our own copies are hidden, so these find the program's.
    Find(r.get_new_handler, "_ZSt15get_new_handlerv");
    Find(r.allocate_exception, "__cxa_allocate_exception");
    Find(r.free_exception, "__cxa_free_exception");
    Find(r.throw_exception, "__cxa_throw");
    // The definitions after ours (RTLD_NEXT): the runtime's own.
    Find(r.nothrow_new, "_ZnwmRKSt9nothrow_t", true);
    Find(r.nothrow_aligned_new, "_ZnwmSt11align_val_tRKSt9nothrow_t", true);
    if (!r.allocate_exception || !r.free_exception || !r.throw_exception) {
      r.allocate_exception = nullptr;
    }
    return r;
  }();
  return runtime;
}

std::new_handler ProgramNewHandler() {
  const ProgramRuntime& rt = Program();
  return rt.get_new_handler != nullptr ? rt.get_new_handler() : std::get_new_handler();
}

void DestroyOutOfMemory(void* e) { static_cast<execmem::OutOfMemory*>(e)->~OutOfMemory(); }

// A last attempt through the throwing API, whose exception carries the
// out-of-memory report: the block, or nullptr with an OutOfMemory holding
// that report constructed at `exception`. Our exception starts and ends here.
void* AllocateOrReport(std::size_t size, std::size_t alignment, void* exception) noexcept {
  try {
    // The same request as TryAllocate's, rounded alike: the raw size could
    // pick an 8-aligned class (72, 88, ...).
    return alignment == 0 ? execmem::allocate(execmem::shim::GlibcRequest(size))
                          : execmem::allocate_aligned(execmem::shim::NonEmpty(size), alignment);
  } catch (const std::bad_alloc& e) {
    try {
      new (exception) execmem::OutOfMemory(e.what());
    } catch (...) {
      new (exception) execmem::OutOfMemory(std::string());  // no room for the report
    }
  }
  return nullptr;
}

[[gnu::noinline]] void* NewSlow(std::size_t size, std::size_t alignment) {
  for (std::new_handler handler = ProgramNewHandler(); handler != nullptr;
       handler = ProgramNewHandler()) {
    handler();  // may throw (the program's runtime): nothing here to clean up
    if (void* block = TryAllocate(size, alignment)) return block;
  }
  const ProgramRuntime& rt = Program();
  if (rt.allocate_exception == nullptr) {  // no C++ runtime but ours
    return alignment == 0 ? execmem::allocate(execmem::shim::GlibcRequest(size))
                          : execmem::allocate_aligned(execmem::shim::NonEmpty(size), alignment);
  }
  void* exception = rt.allocate_exception(sizeof(execmem::OutOfMemory));
  if (void* block = AllocateOrReport(size, alignment, exception)) {
    rt.free_exception(exception);
    return block;
  }
  rt.throw_exception(exception, const_cast<std::type_info*>(&typeid(execmem::OutOfMemory)),
                     &DestroyOutOfMemory);
}

[[gnu::noinline]] void* NewNothrowSlow(std::size_t size, std::size_t alignment) noexcept {
  if (ProgramNewHandler() == nullptr) return nullptr;
  // The handler may throw std::bad_alloc; the runtime's nothrow new calls our
  // throwing one (which loops on the handler) and catches it.
  const ProgramRuntime& rt = Program();
  if (alignment == 0) {
    return rt.nothrow_new != nullptr ? rt.nothrow_new(size, std::nothrow) : nullptr;
  }
  return rt.nothrow_aligned_new != nullptr
             ? rt.nothrow_aligned_new(size, static_cast<std::align_val_t>(alignment), std::nothrow)
             : nullptr;
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
