// A grant through the shared ledger against one through the in-process
// ledger, in the same run (issue 18: at most twice). Each iteration is one
// budget::Grant of a quantum and its budget::Ungrant — what an executor's
// Account::Grow / MaybeReleaseGrant pay per quantum. First the process has a
// pool of its own; then it joins a shared pool (made for the run, removed
// after) and the same loop goes through the segment's ledger too.
//
//   execmem-bench-shared-ledger [ITERATIONS]
//
// Prints ns per grant + give-back for both and their ratio. Wall-clock
// figures move with the machine's load; for a load-free figure run it under
// valgrind --tool=callgrind and compare the inclusive instruction counts of
// GrantLoop<kInProcess> and GrantLoop<kShared> (docs/shared-pool.md).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "budget/budget.h"
#include "budget/shared_ledger.h"
#include "platform/os.h"
#include "platform/shm.h"

namespace {

constexpr uint64_t kQuantum = uint64_t{1} << 20;

enum class Ledger { kInProcess, kShared };

// One loop for both phases; the template argument only names them apart, so
// that callgrind reports GrantLoop<kInProcess> and GrantLoop<kShared>.
template <Ledger>
__attribute__((noinline)) uint64_t GrantLoop(uint64_t n) {
  uint64_t granted = 0;
  for (uint64_t i = 0; i < n; ++i) {
    if (execmem::budget::Grant(kQuantum)) {
      ++granted;
      execmem::budget::Ungrant(kQuantum);
    }
  }
  return granted;
}

double NsPer(uint64_t (*loop)(uint64_t), uint64_t n, uint64_t* granted) {
  const uint64_t start = execmem::os::NowNs();
  *granted = loop(n);
  return static_cast<double>(execmem::os::NowNs() - start) / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  namespace shared = execmem::budget::shared;
  const uint64_t n = argc > 1 ? strtoull(argv[1], nullptr, 10) : 2'000'000;
  if (n == 0) {
    fprintf(stderr, "usage: execmem-bench-shared-ledger [ITERATIONS > 0]\n");
    return 2;
  }
  uint64_t g1 = 0, g2 = 0;
  GrantLoop<Ledger::kInProcess>(n / 10 + 1);  // warm up
  const double private_ns = NsPer(&GrantLoop<Ledger::kInProcess>, n, &g1);

  const std::string pool = "bench-" + std::to_string(getpid());
  shared::JoinOptions join;
  join.pool = pool.c_str();
  join.capacity = uint64_t{1} << 40;
  char message[512];
  if (shared::JoinProcess(join, message, sizeof message) == shared::JoinStatus::kRefused) {
    fprintf(stderr, "%s\n", message);
    return 1;
  }
  GrantLoop<Ledger::kShared>(n / 10 + 1);
  const double shared_ns = NsPer(&GrantLoop<Ledger::kShared>, n, &g2);
  shared::ProcessMember()->Leave();
  char segment[256];
  shared::SegmentName(pool.c_str(), segment, sizeof segment);
  execmem::os::ShmUnlink(segment);

  if (g1 != n || g2 != n) {
    fprintf(stderr, "refused grants: %llu / %llu of %llu\n", static_cast<unsigned long long>(g1),
            static_cast<unsigned long long>(g2), static_cast<unsigned long long>(n));
    return 1;
  }
  printf(
      "iterations %llu  in-process %.1f ns  shared %.1f ns  ratio %.2f  "
      "(one grant + give-back of a 1 MiB quantum)\n",
      static_cast<unsigned long long>(n), private_ns, shared_ns, shared_ns / private_ns);
  return 0;
}
