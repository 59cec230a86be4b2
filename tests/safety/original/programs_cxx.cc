// The 5 C++ programs of mimalloc-bench's security suite (bench/security/*.cc
// in daanx/mimalloc-bench), re-created as tests/safety/original/programs.c
// re-creates the C ones: same types, sizes and calls, NOT_CAUGHT where the
// originals print it. mimalloc-bench builds each once, as a Release build
// (-O3) with -std=c++17 -fsized-deallocation and ALLOCATION_SIZE 4096;
// tests/safety/CMakeLists.txt builds this file so.
//
//   execmem-safety-original-cxx --list | NAME
//
// Every pointer passes through Escape() between its new and its delete: at
// -O3, GCC 10+ removes a new/delete pair whose pointer is used for nothing
// else (-fallocation-dce), so delete_type_size_mismatch as written would
// reach no allocator at all (docs/safety.md). Note that with sized
// deallocation, `delete` of a char array becomes operator delete(p, 1).
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

#ifndef ALLOCATION_SIZE
#error "build with -DALLOCATION_SIZE=4096"
#endif

namespace {

// The compiler may not assume anything about p past this point.
template <typename T>
T* Escape(T* p) {
  asm volatile("" : "+r"(p) : : "memory");
  return p;
}

void NotCaught() {
  std::puts("NOT_CAUGHT");
  std::fflush(stdout);
}

// A 1-byte `new char` deleted as a 72-byte struct (a sized delete of 72).
struct Nine {
  size_t a, b, c, d, e, f, g, h, i;
};
int DeleteTypeSizeMismatch() {
  void* p = Escape(new char);
  Nine* as_nine = static_cast<Nine*>(p);
  delete as_nine;
  NotCaught();
  return 0;
}

// `new T` released with delete[] (for std::string, delete[] reads an array
// cookie in front of the object, runs that many destructors and frees the
// cookie's address).
int InvalidArrayDeleteChar() {
  char* a = Escape(new char);
  delete[] a;
  NotCaught();
  return 0;
}
int InvalidArrayDeleteString() {
  std::string* a = Escape(new std::string);
  delete[] a;
  NotCaught();
  return 0;
}

// `new T[n]` released with delete (for std::string, the pointer is 8 bytes
// past the block, after the cookie).
int InvalidDeleteArrayChar() {
  char* a = Escape(new char[ALLOCATION_SIZE]);
  delete a;
  NotCaught();
  return 0;
}
int InvalidDeleteArrayString() {
  std::string* a = Escape(new std::string[ALLOCATION_SIZE]);
  delete a;
  NotCaught();
  return 0;
}

struct Program {
  const char* name;
  int (*run)();
};
constexpr Program kPrograms[] = {
    {"delete_type_size_mismatch", DeleteTypeSizeMismatch},
    {"invalid_array_delete_char", InvalidArrayDeleteChar},
    {"invalid_array_delete_string", InvalidArrayDeleteString},
    {"invalid_delete_array_char", InvalidDeleteArrayChar},
    {"invalid_delete_array_string", InvalidDeleteArrayString},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    for (const Program& p : kPrograms) std::printf("%s\n", p.name);
    return 0;
  }
  if (argc == 2) {
    for (const Program& p : kPrograms) {
      if (std::strcmp(argv[1], p.name) == 0) return p.run();
    }
  }
  std::fprintf(stderr, "usage: %s --list | PROGRAM (one of the names --list prints)\n", argv[0]);
  return 2;
}
