#include "demo/allocate_or_spill.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "execmem.hpp"

namespace execmem_demo {
namespace {

constexpr std::chrono::microseconds kFirstBackoff{100};
constexpr std::chrono::microseconds kMaxBackoff{20'000};
// Long enough for a neighbour to finish writing a run of a few hundred MiB
// from the page cache; short enough that a hopeless budget fails promptly.
constexpr std::chrono::milliseconds kPatience{2'000};

}  // namespace

absl::StatusOr<void*> AllocateOrSpill(std::size_t bytes, absl::FunctionRef<void()> relieve) {
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  auto backoff = kFirstBackoff;
  std::string last_error;
  while (true) {
    try {
      return execmem::allocate(bytes);
    } catch (const execmem::OutOfMemory& e) {
      last_error = e.what();
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    relieve();
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
  return absl::ResourceExhaustedError("out of memory after spilling and retrying for " +
                                      std::to_string(kPatience.count()) + " ms: " + last_error);
}

}  // namespace execmem_demo
