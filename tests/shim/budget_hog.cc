// Allocates 1 MiB blocks, touching each, until the allocator refuses; run by
// budget.sh under the preload with EXECMEM_MAX set.
//
//   budget_hog malloc MIN MAX   malloc until NULL; passes when errno is ENOMEM
//                               and the refusal came after MIN and at most
//                               MAX blocks; then frees everything and checks
//                               that the budget is available again
//   budget_hog new MIN MAX      the same with new char[], expecting
//                               std::bad_alloc
//
// With EXECMEM_OOM=abort the first refusal aborts the process instead; the
// script checks the signal and the report.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kBlock = std::size_t{1} << 20;
constexpr int kGiveUp = 100000;  // 100 GiB: no budget in the test is that large

void* Allocate(bool use_new, std::string* failure) {
  if (!use_new) {
    errno = 0;
    void* p = std::malloc(kBlock);
    if (p == nullptr) {
      *failure = errno == ENOMEM ? "NULL with ENOMEM" : "NULL with errno " + std::to_string(errno);
    }
    return p;
  }
  try {
    return new char[kBlock];
  } catch (const std::bad_alloc& e) {
    *failure = std::string("std::bad_alloc: ") + e.what();
    return nullptr;
  }
}

void Release(bool use_new, void* p) {
  if (use_new) {
    delete[] static_cast<char*>(p);
  } else {
    std::free(p);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 || (std::strcmp(argv[1], "malloc") != 0 && std::strcmp(argv[1], "new") != 0)) {
    std::fprintf(stderr, "usage: budget_hog malloc|new MIN_BLOCKS MAX_BLOCKS\n");
    return 2;
  }
  const bool use_new = std::strcmp(argv[1], "new") == 0;
  const int min_blocks = std::atoi(argv[2]);
  const int max_blocks = std::atoi(argv[3]);

  std::vector<void*> blocks;
  blocks.reserve(kGiveUp);
  std::string failure;
  for (int i = 0; i < kGiveUp; ++i) {
    void* p = Allocate(use_new, &failure);
    if (p == nullptr) break;
    std::memset(p, i & 0xff, kBlock);
    blocks.push_back(p);
  }
  const int got = static_cast<int>(blocks.size());
  std::printf("%s: %d blocks of 1 MiB, then %s\n", argv[1], got,
              failure.empty() ? "no refusal" : failure.c_str());

  bool ok = true;
  const bool right_failure =
      use_new ? failure.rfind("std::bad_alloc", 0) == 0 : failure == "NULL with ENOMEM";
  if (!right_failure) {
    std::printf("FAIL: expected %s\n", use_new ? "std::bad_alloc" : "NULL with ENOMEM");
    ok = false;
  }
  if (got < min_blocks || got > max_blocks) {
    std::printf("FAIL: refused after %d blocks, expected between %d and %d\n", got, min_blocks,
                max_blocks);
    ok = false;
  }
  for (int i = 0; i < got; ++i) {
    if (static_cast<unsigned char*>(blocks[i])[kBlock - 1] != (i & 0xff)) {
      std::printf("FAIL: block %d damaged\n", i);
      ok = false;
      break;
    }
  }
  for (void* p : blocks) Release(use_new, p);
  blocks.clear();

  // What was freed is available again: the budget tracks live bytes.
  for (int i = 0; i < min_blocks; ++i) {
    void* p = Allocate(use_new, &failure);
    if (p == nullptr) {
      std::printf("FAIL: after freeing everything, block %d refused: %s\n", i, failure.c_str());
      ok = false;
      break;
    }
    blocks.push_back(p);
  }
  for (void* p : blocks) Release(use_new, p);
  std::printf("%s\n", ok ? "PASS" : "FAILED");
  return ok ? 0 : 1;
}
