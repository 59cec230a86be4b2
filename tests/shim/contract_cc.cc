// The contract of the 20 replaceable operator new / delete, checked through
// the operators themselves (explicit calls, so that every overload is
// reached) and through ordinary new-expressions and the standard library.
//
// Run under LD_PRELOAD=libexecmem_preload.so with --require-execmem (ctest),
// or without it against libstdc++ / another allocator. Debian's mimalloc
// aborts in the nothrow checks of an impossible size; libstdc++ alone fails
// the aligned forms of SIZE_MAX (see TestImpossibleSizes).
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include "check.h"

namespace {

// A size the compiler cannot see, so that impossible requests reach the call.
std::size_t Opaque(std::size_t value) {
  volatile std::size_t hidden = value;
  return hidden;
}

bool Aligned(const void* p, std::size_t alignment) {
  return (reinterpret_cast<std::uintptr_t>(p) & (alignment - 1)) == 0;
}

constexpr std::size_t kSizes[] = {0,   1,   8,    15,   16,    17,       64,
                                  100, 255, 1024, 4097, 65536, 1u << 20, 5u << 20};
constexpr std::size_t kAlignments[] = {1,   2,    8,    16,    32,       64,      128,
                                       256, 4096, 8192, 65536, 1u << 20, 4u << 20};

void CheckBlock(const char* form, void* p, std::size_t n, std::size_t alignment) {
  CHECK(p != nullptr, "%s(%zu) returned nullptr", form, n);
  if (p == nullptr) return;
  CHECK(Aligned(p, alignment), "%s(%zu) = %p not aligned to %zu", form, n, p, alignment);
  if (check_preloaded()) CHECK(check_owned(p), "%s(%zu) = %p is not execmem's", form, n, p);
  if (n > 0) {
    std::memset(p, 0x6b, n);
    CHECK(static_cast<unsigned char*>(p)[n - 1] == 0x6b, "%s(%zu) not writable", form, n);
  }
  check_escape(p);
}

void TestPlainForms() {
  const std::size_t kNewAlign = __STDCPP_DEFAULT_NEW_ALIGNMENT__;
  for (std::size_t n : kSizes) {
    const std::size_t expect =
        n >= kNewAlign ? kNewAlign : (n == 0 ? 1 : std::size_t{1} << (63 - __builtin_clzll(n)));
    void* p = ::operator new(n);
    CheckBlock("new", p, n, expect);
    ::operator delete(p);
    p = ::operator new[](n);
    CheckBlock("new[]", p, n, expect);
    ::operator delete[](p);
    p = ::operator new(n, std::nothrow);
    CheckBlock("new nothrow", p, n, expect);
    ::operator delete(p, std::nothrow);
    p = ::operator new[](n, std::nothrow);
    CheckBlock("new[] nothrow", p, n, expect);
    ::operator delete[](p, std::nothrow);
    p = ::operator new(n);
    ::operator delete(p, n);
    p = ::operator new[](n);
    ::operator delete[](p, n);
  }
  void* a = ::operator new(0);
  void* b = ::operator new(0);
  CHECK(a != b, "new(0) must give unique pointers");
  ::operator delete (a, std::size_t{0});
  ::operator delete(b);
}

// Every operator new result is aligned to __STDCPP_DEFAULT_NEW_ALIGNMENT__:
// GCC and Clang compile code that assumes it (Debian's clang 14 initialises
// a new(88) block with movaps). Several live blocks per size.
void TestDefaultNewAlignmentEverySize() {
  constexpr int kLive = 8;
  constexpr std::size_t kNewAlign = __STDCPP_DEFAULT_NEW_ALIGNMENT__;
  int misaligned = 0;
  std::size_t first_bad = 0;
  for (std::size_t n = 1; n <= 1100; ++n) {
    void* plain[kLive];
    void* array[kLive];
    void* nothrow[kLive];
    for (int i = 0; i < kLive; ++i) {
      plain[i] = ::operator new(n);
      array[i] = ::operator new[](n);
      nothrow[i] = ::operator new(n, std::nothrow);
      for (void* p : {plain[i], array[i], nothrow[i]}) {
        if (!Aligned(p, kNewAlign)) {
          ++misaligned;
          if (first_bad == 0) first_bad = n;
        }
      }
    }
    for (int i = 0; i < kLive; ++i) {
      ::operator delete(plain[i], n);
      ::operator delete[](array[i]);
      ::operator delete(nothrow[i], std::nothrow);
    }
  }
  CHECK(misaligned == 0, "%d operator new results not %zu-aligned (first at %zu bytes)", misaligned,
        kNewAlign, first_bad);
}

void TestAlignedForms() {
  for (std::size_t alignment : kAlignments) {
    const auto al = static_cast<std::align_val_t>(alignment);
    for (std::size_t n : {std::size_t{1}, std::size_t{100}, alignment, 3 * alignment + 5}) {
      void* p = ::operator new(n, al);
      CheckBlock("new aligned", p, n, alignment);
      ::operator delete(p, al);
      p = ::operator new[](n, al);
      CheckBlock("new[] aligned", p, n, alignment);
      ::operator delete[](p, al);
      p = ::operator new(n, al, std::nothrow);
      CheckBlock("new aligned nothrow", p, n, alignment);
      ::operator delete(p, al, std::nothrow);
      p = ::operator new[](n, al, std::nothrow);
      CheckBlock("new[] aligned nothrow", p, n, alignment);
      ::operator delete[](p, al, std::nothrow);
      p = ::operator new(n, al);
      ::operator delete(p, n, al);
      p = ::operator new[](n, al);
      ::operator delete[](p, n, al);
    }
  }
  struct alignas(256) Wide {
    char bytes[300];
  };
  auto* one = new Wide;
  CheckBlock("new Wide", one, sizeof(Wide), 256);
  delete one;
  auto* many = new Wide[7];
  CheckBlock("new Wide[7]", many, 7 * sizeof(Wide), 256);
  delete[] many;
}

void TestDeleteNull() {
  const auto al = static_cast<std::align_val_t>(64);
  ::operator delete(nullptr);
  ::operator delete[](nullptr);
  ::operator delete(nullptr, std::nothrow);
  ::operator delete[](nullptr, std::nothrow);
  ::operator delete (nullptr, std::size_t{16});
  ::operator delete[](nullptr, std::size_t{16});
  ::operator delete(nullptr, al);
  ::operator delete[](nullptr, al);
  ::operator delete(nullptr, al, std::nothrow);
  ::operator delete[](nullptr, al, std::nothrow);
  ::operator delete (nullptr, std::size_t{16}, al);
  ::operator delete[](nullptr, std::size_t{16}, al);
  CHECK(true, "every delete of nullptr returned");
}

template <typename Fn>
void ExpectBadAlloc(const char* form, Fn fn) {
  bool thrown = false;
  std::string type;
  try {
    void* p = fn();
    check_escape(p);
  } catch (const std::bad_alloc& e) {
    thrown = true;
    type = typeid(e).name();
  } catch (...) {
    CHECK(false, "%s of an impossible size threw something other than std::bad_alloc", form);
    return;
  }
  CHECK(thrown, "%s of an impossible size did not throw", form);
  // Under the shim the exception is execmem::OutOfMemory, whose what() is the report.
  if (thrown) {
    CHECK_EXECMEM(type.find("OutOfMemory") != std::string::npos,
                  "%s threw %s, not execmem::OutOfMemory", form, type.c_str());
  }
}

void TestImpossibleSizes() {
  for (std::size_t n : {SIZE_MAX, SIZE_MAX - 4096, std::size_t{PTRDIFF_MAX} + 1}) {
    const std::size_t size = Opaque(n);
    const auto al = static_cast<std::align_val_t>(Opaque(64));
    // Debian's mimalloc (2.0) aborts the process here instead of returning
    // nullptr (and on the throwing forms below instead of throwing). GCC 12's
    // libstdc++ rounds the size of an aligned new up to the alignment without
    // an overflow check: SIZE_MAX becomes 0 and a block comes back, so without
    // the preload the four aligned checks of SIZE_MAX fail on glibc.
    CHECK(::operator new(size, std::nothrow) == nullptr, "nothrow new(%zu)", size);
    CHECK(::operator new[](size, std::nothrow) == nullptr, "nothrow new[](%zu)", size);
    CHECK(::operator new(size, al, std::nothrow) == nullptr, "nothrow aligned new(%zu)", size);
    CHECK(::operator new[](size, al, std::nothrow) == nullptr, "nothrow aligned new[](%zu)", size);
    ExpectBadAlloc("new", [&] { return ::operator new(size); });
    ExpectBadAlloc("new[]", [&] { return ::operator new[](size); });
    ExpectBadAlloc("new aligned", [&] { return ::operator new(size, al); });
    ExpectBadAlloc("new[] aligned", [&] { return ::operator new[](size, al); });
  }
  // A new-expression whose array size overflows throws before any allocation.
  bool length_error = false;
  try {
    auto* p = new std::uint64_t[Opaque(SIZE_MAX / 4)];
    check_escape(p);
  } catch (const std::bad_array_new_length&) {
    length_error = true;
  } catch (const std::bad_alloc&) {
    length_error = true;
  }
  CHECK(length_error, "new uint64_t[SIZE_MAX/4] did not throw");
}

int g_handler_calls;
void CountingHandler() {
  // The third call gives up, as a handler may, by removing itself.
  if (++g_handler_calls == 3) std::set_new_handler(nullptr);
}
void ThrowingHandler() {
  ++g_handler_calls;
  throw std::bad_alloc();
}

void TestNewHandler() {
  const std::size_t size = Opaque(SIZE_MAX - 4096);
  g_handler_calls = 0;
  std::set_new_handler(CountingHandler);
  bool thrown = false;
  try {
    check_escape(::operator new(size));
  } catch (const std::bad_alloc&) {
    thrown = true;
  }
  CHECK(thrown && g_handler_calls == 3, "new with a handler: thrown %d, handler called %d times",
        thrown, g_handler_calls);

  // nothrow new calls the handler too, and turns its bad_alloc into nullptr.
  g_handler_calls = 0;
  std::set_new_handler(ThrowingHandler);
  void* p = ::operator new(size, std::nothrow);
  CHECK(p == nullptr && g_handler_calls == 1, "nothrow new with a throwing handler: %p, %d calls",
        p, g_handler_calls);
  g_handler_calls = 0;
  p = ::operator new(size, static_cast<std::align_val_t>(128), std::nothrow);
  CHECK(p == nullptr && g_handler_calls == 1, "aligned nothrow new with a throwing handler");
  std::set_new_handler(nullptr);
}

void TestLibrary() {
  std::map<std::string, std::vector<int>> m;
  for (int i = 0; i < 20000; ++i) m["key" + std::to_string(i % 997)].push_back(i);
  std::size_t total = 0;
  for (const auto& [key, values] : m) total += values.size();
  CHECK(total == 20000 && m.size() == 997, "map of vectors: %zu entries, %zu keys", total,
        m.size());

  auto shared = std::make_shared<std::vector<std::string>>(1000, std::string(100, 'x'));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([shared] {
      std::vector<std::unique_ptr<std::string>> mine;
      for (int i = 0; i < 5000; ++i) mine.push_back(std::make_unique<std::string>(i % 300, 'y'));
    });
  }
  for (auto& t : threads) t.join();
  CHECK(shared.use_count() == 1, "threads did not release the shared vector");

  // Exceptions are allocated through malloc (__cxa_allocate_exception).
  int caught = 0;
  for (int i = 0; i < 1000; ++i) {
    try {
      throw std::runtime_error(std::string(200, 'e'));
    } catch (const std::runtime_error& e) {
      caught += std::strlen(e.what()) == 200;
    }
  }
  CHECK(caught == 1000, "caught %d of 1000 exceptions", caught);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--require-execmem") == 0 && !check_preloaded()) {
    std::fprintf(stderr, "contract_cc: execmem is not the allocator of this process\n");
    return 1;
  }
  void* probe = ::operator new(10);
  CHECK_EXECMEM(check_owned(probe), "operator new(10) is not execmem's");
  ::operator delete (probe, std::size_t{10});
  TestPlainForms();
  TestDefaultNewAlignmentEverySize();
  TestAlignedForms();
  TestDeleteNull();
  TestImpossibleSizes();
  TestNewHandler();
  TestLibrary();
  return check_summary("contract_cc");
}
