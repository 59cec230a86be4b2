// A shared pool's member, the executor layer's side (issue 18; the ledger is
// budget/shared_ledger.h; design and figures: docs/shared-pool.md).
//
//   JoinSharedPool (EXECMEM_SHARED at start-up, execmem_shared_join)
//     ├ budget::shared::JoinProcess: a slot in /dev/shm/execmem.NAME
//     ├ what the process held before joining moves into its slot
//     ├ the answering thread (os::StartDetachedThread) ── every request,
//     │   and every kMemberTickMs (the dead: in turns, see shared.cc):
//     │     request: trim this thread's cache and the pool's, give back the
//     │       grants no executor's footprint needs, then call the spill hooks
//     │       flagged callable from any thread (largest excess first),
//     │       give back again; Answered
//     │     tick:    reclaim dead members, return stale asked bytes, publish
//     │              the process's used / footprint in its slot
//     └ atexit: give back everything the slot holds (DepartProcess)
//   ReclaimLoop::Charge (reclaim.cc), a grant refused by the pool, after
//     trim, own spill hooks, the tree's levels and arbitration:
//     AskSharedPool ─> budget::shared::AskOthers (GrantOrAsk, waiting at
//     most the wait set at join) ─> retry; else the out-of-memory report
//     names the pool, its capacity and its largest holders
//     (AddSharedPoolReport).
//
// Calls go down only: budget/ gives verdicts and asks; this layer decides
// to ask and acts on a request. Nothing here is on the allocation fast path.
#ifndef EXECMEM_EXECUTOR_SHARED_H_
#define EXECMEM_EXECUTOR_SHARED_H_

#include <cstdint>
#include <string>

#include "execmem.hpp"  // Status
#include "executor/report.h"

namespace execmem {
namespace internal {

// How often the answering thread publishes and may reclaim dead members: a
// member killed with SIGKILL is given back within a tick or two (+ /proc
// reads) by the kReclaimersPerTick members whose turn the tick is.
inline constexpr uint64_t kMemberTickMs = 250;
inline constexpr uint32_t kReclaimersPerTick = 2;
// The longest EXECMEM_SHARED_WAIT_MS (and execmem_shared_join's wait) accepted.
inline constexpr uint64_t kMaxSharedWaitMs = 600'000;

struct SharedJoinSettings {
  const char* name = nullptr;  // the pool NAME
  uint64_t capacity = 0;       // asked for; 0: the creator's cgroup limit, else the machine's
  uint32_t mode = 0600;        // of a new segment: 0600 or 0660
  uint64_t wait_ms = 0;        // how long a refused grant waits for the others
};

// Makes the process a member of pool `settings.name` and starts its
// answering thread. Errors (one line, naming the segment when it is about
// it): EINVAL a bad name or wait; EBUSY the process is a member already, or
// an executor other than the default one exists; EACCES the segment was
// refused (corrupt, another version or size, another user's, full) and the
// process keeps a pool of its own. ok: *note may hold a line for stderr (the
// capacity that holds, a thread that could not start).
Status JoinSharedPool(const SharedJoinSettings& settings, std::string* note);
// Registers the fork handler that gives a forked child a slot and an
// answering thread of its own. Call once the allocator's own fork handlers
// are registered (the child's must run after theirs); later calls do nothing.
// 0 or an errno value.
int RegisterSharedForkHandler();

}  // namespace internal

// The reclaim loop's step for a grant the shared pool refused: asks the
// other members for `bytes` and waits at most the join's wait_ms. True: the
// bytes are held for this process's next grant (retry the charge). False:
// not a member, asked from a spill hook or the answering thread, or nobody
// gave back in time. Notes what happened in `notes`.
bool AskSharedPool(uint64_t bytes, ReportBuffer* notes);
// When the process is a member and the pool (not the process's own
// capacity) refused `bytes`: appends the pool's part of an out-of-memory
// report (name, capacity, free, its largest holders: pid, program, granted)
// and returns true.
bool AddSharedPoolReport(ReportBuffer* r, uint64_t bytes);

}  // namespace execmem

#endif  // EXECMEM_EXECUTOR_SHARED_H_
