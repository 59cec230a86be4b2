// A shared pool's member: joining, the answering thread, asking from the
// reclaim loop, giving back at exit. See shared.h.
#include "executor/shared.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "budget/budget.h"
#include "cache/cache.h"
#include "executor/config.h"
#include "executor/executor.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {
namespace {

using budget::shared::Member;
using budget::shared::MemberView;

constexpr auto kRelaxed = std::memory_order_relaxed;
// Holders named in an out-of-memory report.
constexpr uint32_t kReportHolders = 4;
// Executors the answering thread asks to spill per request (the registry's
// walk is bounded the same way: executor.cc, ForEachExecutor).
constexpr int kMaxAsked = 256;

std::atomic<uint64_t> g_wait_ms{0};
std::atomic<bool> g_departed{false};
std::atomic<bool> g_exit_registered{false};
std::atomic<bool> g_fork_registered{false};
// The pool's name, written once at join (before the member is published).
char g_name[256] = {};

// The answering thread: it never asks (its allocations, if any, must not
// wait on another member that may be waiting on this one).
thread_local bool tls_answering [[gnu::tls_model("initial-exec")]] = false;

// Grants above what the executors' footprints need go back: children's to
// their parents first, then the roots' to the ledger.
void ReleaseGrants() {
  ForEachExecutor([](ExecutorImpl* e) {
    if (e->Parent() != nullptr) e->account.MaybeReleaseGrant(true);
  });
  ForEachExecutor([](ExecutorImpl* e) {
    if (e->Parent() == nullptr) e->account.MaybeReleaseGrant(true);
  });
}

// The executors' hooks flagged callable from any thread, largest footprint
// above the reservation first, until `need` bytes are freed.
uint64_t SpillAnyThread(uint64_t need) {
  struct Asked {
    ExecutorImpl* e;
    uint64_t excess;
  };
  Asked asked[kMaxAsked];
  int n = 0;
  ForEachExecutor([&](ExecutorImpl* e) {
    if (n == kMaxAsked || e->NumHooksUnlocked() == 0) return;
    const uint64_t fp = e->account.footprint.load(kRelaxed);
    const uint64_t base = e->account.Reservation();
    e->Ref();
    asked[n++] = {e, fp > base ? fp - base : 0};
  });
  std::sort(asked, asked + n, [](const Asked& a, const Asked& b) { return a.excess > b.excess; });
  uint64_t got = 0;
  for (int i = 0; i < n; ++i) {
    if (got < need) got += asked[i].e->Spill(need - got, nullptr, 0, /*any_thread_only=*/true);
    asked[i].e->Unref();
  }
  return got;
}

// Another member asked for `wanted` bytes.
void Answer(Member* m, uint64_t wanted) {
  const uint64_t before = m->Granted();
  budget::shared::ReturnAsked(m, internal::kMemberTickMs);
  TrimThreadAndPool();
  ReleaseGrants();
  const uint64_t after = m->Granted();
  const uint64_t given = before > after ? before - after : 0;
  if (given < wanted && SpillAnyThread(wanted - given) != 0) {
    // Large blocks a hook freed are back at once; small ones once their
    // owner thread takes its slow path (remote frees).
    TrimThreadAndPool();
    ReleaseGrants();
  }
  budget::shared::PublishProcess(m);
  m->Answered();
}

// Every tick, a few members look for dead ones. Ticks are numbered on the
// machine's monotonic clock, which every member shares; the members are
// split into groups of about kReclaimersPerTick by slot index, and a group
// looks on the ticks of its number. A reclaim reads /proc for every other
// member, so a pool of N members reads about kReclaimersPerTick * N files a
// tick (not N * N).
bool MyTickToReclaim(const Member* m, uint64_t tick) {
  const uint32_t groups = std::max<uint32_t>(
      1, (m->Members() + internal::kReclaimersPerTick - 1) / internal::kReclaimersPerTick);
  return tick % groups == m->SlotIndex() % groups;
}

void* MemberMain(void*) {
  tls_answering = true;
  uint64_t last_tick = 0;
  for (;;) {
    Member* m = budget::shared::ProcessMember();
    if (m == nullptr || g_departed.load(std::memory_order_acquire)) return nullptr;
    // Until the next tick's start (at least 1 ms).
    const uint64_t wait = internal::kMemberTickMs - os::NowMs() % internal::kMemberTickMs + 1;
    const uint64_t wanted = m->WaitForRequest(wait);
    if (g_departed.load(std::memory_order_acquire)) return nullptr;
    if (wanted != 0) Answer(m, wanted);
    const uint64_t tick = os::NowMs() / internal::kMemberTickMs;
    if (tick != last_tick) {
      last_tick = tick;
      if (MyTickToReclaim(m, tick)) m->ReclaimDead();
      budget::shared::ReturnAsked(m, internal::kMemberTickMs);
      budget::shared::PublishProcess(m);
    }
  }
}

bool StartMemberThread() { return os::StartDetachedThread(&MemberMain, nullptr); }

// atexit: give back what the slot holds while the process can still say so
// (a process killed, or ending with _exit, is reclaimed by the others).
void DepartAtExit() {
  g_departed.store(true, std::memory_order_release);
  budget::shared::DepartProcess();
}

void MemberForkChild() {
  budget::shared::ProcessAfterForkInChild();
  if (budget::shared::ProcessMember() != nullptr && !g_departed.load(kRelaxed)) {
    StartMemberThread();
  }
}

}  // namespace

namespace internal {

Status JoinSharedPool(const SharedJoinSettings& settings, std::string* note) {
  note->clear();
  char segment[256];
  if (!budget::shared::SegmentName(settings.name, segment, sizeof segment)) {
    char line[160];
    snprintf(line, sizeof line,
             "execmem: shared pool name \"%.64s\" refused: 1 to 190 characters of A-Z a-z 0-9 . "
             "_ - expected",
             settings.name == nullptr ? "" : settings.name);
    return Status(EINVAL, line);
  }
  const std::string file = std::string("/dev/shm/") + segment;
  if (settings.wait_ms > kMaxSharedWaitMs) {
    return Status(EINVAL, "execmem: " + file + ": wait " + std::to_string(settings.wait_ms) +
                              " ms refused: 0 to 600000 expected");
  }
  if (budget::shared::ProcessMember() != nullptr) {
    return Status(
        EBUSY, "execmem: " + file + ": this process is a member of pool '" + g_name + "' already");
  }
  std::string first;
  ForEachExecutor([&](ExecutorImpl* e) {
    if (!e->account.is_default && first.empty()) first = e->name;
  });
  if (!first.empty()) {
    return Status(EBUSY, "execmem: " + file + ": join before the first executor is created ('" +
                             first + "' exists; its reservation would not be the pool's)");
  }
  budget::shared::JoinOptions join;
  join.pool = settings.name;
  join.capacity = settings.capacity;
  join.default_capacity = pool::DefaultCapacity();
  join.mode = settings.mode;
  // Set before the member is published (reports and asks read them then).
  snprintf(g_name, sizeof g_name, "%s", settings.name);
  g_wait_ms.store(settings.wait_ms, kRelaxed);
  char message[512];
  const budget::shared::JoinStatus status =
      budget::shared::JoinProcess(join, message, sizeof message);
  if (status == budget::shared::JoinStatus::kRefused) return Status(EACCES, message);
  *note = message;
  Member* m = budget::shared::ProcessMember();
  // What the process holds already (allocations made before it joined) is
  // the pool's too: its give-backs will come out of the slot.
  const budget::LedgerCounters held = budget::Counters();
  if ((held.reserved != 0 && !m->Reserve(held.reserved)) ||
      (held.granted != 0 && !m->Grant(held.granted))) {
    if (!note->empty()) *note += "\n";
    *note += "execmem: " + file + ": no room for the " + config::FormatBytes(held.granted) +
             " this process held before joining; they are not counted in the pool";
  }
  budget::shared::PublishProcess(m);
  if (!StartMemberThread()) {
    if (!note->empty()) *note += "\n";
    *note += "execmem: " + file +
             ": cannot start the thread that answers other members; they will not be given "
             "back what this process does not need";
  }
  // on_exit, not atexit: from a shared library atexit runs at the library's
  // finalisation, before the shim's EXECMEM_STATS report (also on_exit,
  // registered after the join, so it runs first and still sees the slot).
  if (!g_exit_registered.exchange(true)) os::OnExit([](int, void*) { DepartAtExit(); }, nullptr);
  return Status();
}

int RegisterSharedForkHandler() {
  if (g_fork_registered.exchange(true)) return 0;
  return os::AtFork(nullptr, nullptr, &MemberForkChild);
}

}  // namespace internal

bool AskSharedPool(uint64_t bytes, ReportBuffer* notes) {
  Member* m = budget::shared::ProcessMember();
  if (m == nullptr || tls_answering || InSpillHook()) return false;
  // The process's own capacity is short, or the request can never fit the pool.
  if (budget::Unallocated() < bytes || bytes > m->capacity()) return false;
  const uint64_t wait = g_wait_ms.load(kRelaxed);
  const bool given = budget::shared::AskOthers(m, bytes, wait);
  notes->len = strlen(notes->buf);
  notes->Add("%sasked shared pool '%s' for %s: %s", notes->len ? "; " : "", g_name,
             FormatSize(bytes).c_str(), given ? "given" : "not given back in time");
  if (!given) notes->Add(" (%" PRIu64 " ms)", wait);
  return given;
}

bool AddSharedPoolReport(ReportBuffer* r, uint64_t bytes) {
  Member* m = budget::shared::ProcessMember();
  // Not a member, or the process's own capacity is what is short.
  if (m == nullptr || budget::Unallocated() < bytes) return false;
  const uint64_t cap = m->capacity();
  const uint64_t total = m->Total();
  r->Add("shared pool '%s' (capacity %s, free %s) is full; largest holders:", g_name,
         FormatSize(cap).c_str(), FormatSize(total < cap ? cap - total : 0).c_str());
  MemberView top[kReportHolders];
  const uint32_t n = m->LargestHolders(top, kReportHolders);
  const int me = os::ProcessId();
  for (uint32_t i = 0; i < n; ++i) {
    r->Add("%s pid %d (%s%s) granted %s reserved %s", i ? "," : "", top[i].pid, top[i].program,
           top[i].pid == me ? ", this process" : "", FormatSize(top[i].granted).c_str(),
           FormatSize(top[i].reserved).c_str());
  }
  return true;
}

}  // namespace execmem
