// The process's membership of a shared pool: see shared_ledger.h.
#include <algorithm>
#include <atomic>

#include "budget/shared_ledger.h"
#include "platform/os.h"
#include "pool/pool.h"

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
std::atomic<uint64_t> g_asked_ms{0};  // when the last ask was answered

}  // namespace

namespace internal {
constinit std::atomic<Member*> g_process_member{nullptr};
constinit std::atomic<uint64_t> g_asked{0};
}  // namespace internal
using internal::g_asked;
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
  g_asked.store(0, std::memory_order_relaxed);  // the parent's slot holds them
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

bool AskOthers(Member* m, uint64_t bytes, uint64_t wait_ms) {
  if (!m->GrantOrAsk(bytes, wait_ms)) return false;
  g_asked_ms.store(os::NowMs(), std::memory_order_relaxed);
  g_asked.fetch_add(bytes, std::memory_order_relaxed);
  return true;
}

bool GrantFromAsked(Member* m, uint64_t bytes) {
  uint64_t have = g_asked.load(std::memory_order_relaxed);
  uint64_t use = 0;
  while (have != 0) {
    use = std::min(have, bytes);
    if (g_asked.compare_exchange_weak(have, have - use, std::memory_order_relaxed)) break;
    use = 0;
  }
  if (use == bytes || m->Grant(bytes - use)) return true;
  if (use != 0) g_asked.fetch_add(use, std::memory_order_relaxed);
  return false;
}

uint64_t ReturnAsked(Member* m, uint64_t older_than_ms) {
  if (g_asked.load(std::memory_order_relaxed) == 0) return 0;
  if (os::NowMs() - g_asked_ms.load(std::memory_order_relaxed) < older_than_ms) return 0;
  const uint64_t b = g_asked.exchange(0, std::memory_order_relaxed);
  m->Ungrant(b);
  return b;
}

void PublishProcess(Member* m) {
  const PoolCounters c = pool::Counters();
  m->Publish(c.held - std::min(c.cached, c.held), c.held);
}

void DepartProcess() {
  Member* m = g_process_member.exchange(nullptr, std::memory_order_acq_rel);
  if (m == nullptr) return;
  g_asked.store(0, std::memory_order_relaxed);
  // Bounded by what the slot holds (Give): a take racing this one stays.
  m->Unreserve(m->Reserved());
  m->Ungrant(m->Granted());
  m->Publish(0, 0);
}

}  // namespace execmem::budget::shared
