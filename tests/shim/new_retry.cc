// operator new's last attempt (issue 12, found item 4): when the first try
// fails and no new-handler is installed, new tries once more through
// execmem::allocate. That retry must ask for the same rounded request as the
// first try (shim/request.h): it asked for the raw size, so a retried
// `new char[88]` got an 8-aligned block of the 88-byte class.
//
// Deterministic set-up, under EXECMEM_MAX (ctest sets 32m): the budget is
// filled with 1 MiB blocks and the 96-byte class (88 rounded) has no free
// block, while the 88-byte class's next block is one at an odd multiple of 8.
// A spill hook frees nothing for as many calls as one failed attempt makes
// (counted first), then frees a 1 MiB block: the first try fails, the retry
// succeeds.
//
// Run under LD_PRELOAD=libexecmem_preload.so with --require-execmem.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "check.h"
#include "execmem.h"

namespace {

using malloc_fn = void* (*)(size_t);
using free_fn = void (*)(void*);
using default_fn = execmem_executor_t* (*)();
using add_hook_fn = int (*)(execmem_executor_t*, const char*, int, execmem_spill_fn, void*);

malloc_fn em_malloc;
free_fn em_free;
std::vector<void*>* g_big;  // the 1 MiB blocks that fill the budget
int g_calls = 0;
int g_free_from_call = 1 << 30;  // the hook frees from this call on

size_t Hook(void*, size_t) {
  ++g_calls;
  if (g_calls < g_free_from_call || g_big->empty()) return 0;
  em_free(g_big->back());
  g_big->pop_back();
  return size_t{1} << 20;
}

uintptr_t Addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

}  // namespace

int main(int argc, char** argv) {
  const bool require = argc > 1 && std::strcmp(argv[1], "--require-execmem") == 0;
  if (!check_preloaded()) {
    CHECK(!require, "execmem is not preloaded");
    return check_summary("new_retry");
  }
  em_malloc = reinterpret_cast<malloc_fn>(dlsym(RTLD_DEFAULT, "execmem_malloc"));
  em_free = reinterpret_cast<free_fn>(dlsym(RTLD_DEFAULT, "execmem_free"));
  auto default_executor = reinterpret_cast<default_fn>(dlsym(RTLD_DEFAULT, "execmem_default_executor"));
  auto add_hook = reinterpret_cast<add_hook_fn>(dlsym(RTLD_DEFAULT, "execmem_executor_add_spill_hook"));
  std::vector<void*> big, small, odd;
  big.reserve(1024);
  small.reserve(1 << 16);
  odd.reserve(4096);
  g_big = &big;

  // The 88-byte class's next block: one at an odd multiple of 8 (freed last,
  // so handed out first). A block of the class is kept before it, so that
  // freeing it never empties its span (an empty span would go back and make
  // room in the budget): spans are coloured, so the first block of a span may
  // be the one at an odd multiple of 8 (cache/span.h).
  odd.push_back(em_malloc(88));
  CHECK(odd.back() != nullptr, "no 88-byte block");
  void* eight = nullptr;
  while (eight == nullptr && odd.size() < 4096) {
    void* p = em_malloc(88);
    if (p == nullptr) break;
    if (Addr(p) % 16 == 8) {
      eight = p;
    } else {
      odd.push_back(p);
    }
  }
  CHECK(eight != nullptr, "no 88-byte block at an odd multiple of 8");
  // Registered first: registering allocates. It frees nothing until armed.
  CHECK(add_hook(default_executor(), "new-retry", 0, Hook, nullptr) == 0, "cannot add the hook");
  // Fill the budget, then exhaust the 96-byte class.
  while (big.size() < 1024) {
    void* p = em_malloc(size_t{1} << 20);
    if (p == nullptr) break;
    big.push_back(p);
  }
  CHECK(big.size() < 1024, "EXECMEM_MAX did not stop 1 MiB blocks (run with EXECMEM_MAX=32m)");
  while (small.size() < small.capacity()) {
    void* p = em_malloc(96);
    if (p == nullptr) break;
    small.push_back(p);
  }
  em_free(eight);  // the 88-byte class's current span: first on its free list

  // How many hook calls one failed attempt makes.
  g_calls = 0;
  CHECK(em_malloc(96) == nullptr, "a 96-byte block was still available");
  const int per_attempt = g_calls;
  CHECK(per_attempt > 0, "the spill hook was not called");

  g_free_from_call = per_attempt * 2 + 1;  // after new's first try has failed
  void* p = nullptr;
  try {
    p = ::operator new(88);
  } catch (const std::bad_alloc&) {
    CHECK(false, "operator new(88) threw although the retry could succeed");
  }
  CHECK(g_calls > per_attempt * 2, "new's first try did not fail (hook calls %d, %d per attempt)",
        g_calls, per_attempt);
  CHECK(p != nullptr && Addr(p) % 16 == 0, "retried operator new(88) = %p: not 16-aligned", p);
  ::operator delete(p);

  for (void* q : small) em_free(q);
  for (void* q : big) em_free(q);
  for (void* q : odd) em_free(q);
  return check_summary("new_retry");
}
