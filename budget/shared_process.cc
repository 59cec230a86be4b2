// The process's membership of a shared pool: see shared_ledger.h.
#include <atomic>

#include "budget/shared_ledger.h"
#include "platform/os.h"

namespace execmem::budget::shared {
namespace {

// Constant-initialised and never destroyed: the ledger's give-backs may run
// from static destructors and at-exit handlers, after which the kernel's exit
// frees the slot's holdings through the survivors' reclaim.
union Storage {
  constexpr Storage() : member() {}
  ~Storage() {}
  Member member;
};
constinit Storage g_storage;
std::atomic<uint64_t> g_last_reclaim_ms{0};

}  // namespace

namespace internal {
constinit std::atomic<Member*> g_process_member{nullptr};
}  // namespace internal
using internal::g_process_member;

JoinStatus JoinProcess(const JoinOptions& options, char* message, size_t cap) {
  const JoinStatus s = g_storage.member.Join(options, message, cap);
  if (s != JoinStatus::kRefused)
    g_process_member.store(&g_storage.member, std::memory_order_release);
  return s;
}

void ProcessAfterForkInChild() {
  Member* m = ProcessMember();
  if (m == nullptr) return;
  m->AfterForkInChild();
  if (!m->joined()) g_process_member.store(nullptr, std::memory_order_release);
}

uint64_t ReclaimDeadThrottled(Member* m) {
  const uint64_t now = os::NowMs();
  uint64_t last = g_last_reclaim_ms.load(std::memory_order_relaxed);
  if (now - last < kReclaimEveryMs ||
      !g_last_reclaim_ms.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    return 0;
  }
  return m->ReclaimDead();
}

}  // namespace execmem::budget::shared

namespace execmem::budget {

bool ReadSharedPool(SharedPoolFigures* out) {
  shared::Member* m = shared::ProcessMember();
  if (m == nullptr) return false;
  PublishShared();
  return m->Read(out);
}

}  // namespace execmem::budget
