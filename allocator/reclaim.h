// The reclaim loop: charging an executor for a span or large block, acting
// on the account's verdicts (budget/budget.h).
//
//   ChargeOrReclaim -> budget::Account::Charge -> verdict
//     granted     -> take a reference, done
//     trim first  -> heap->TrimEmpty() (this thread's empty spans), retry
//     spill N     -> the executor's spill hooks (not from inside a hook),
//                    ThreadHeapsSync, TrimEmpty, retry
//     an ancestor short (its max, its footprint cap, or the pool behind the
//                 root) -> climbing one level at a time up to that ancestor:
//                    the siblings above their fair share, then above their
//                    reservation, spill (largest excess first, each its own
//                    hooks then its children's); then the parent's own
//                    hooks; retry
//     pool short  -> arbitration: other roots above their reservation spill,
//                    largest excess first, never below it; retry
//     refused     -> (a request that can never fit) no hook is asked
//     otherwise   -> the emergency reserve (budget/emergency.h) serves a
//                    small allocation when an earlier refusal started the
//                    emergency state; else out of memory: the report is
//                    stored for the thread (execmem_last_error) and printed
//                    before abort() under OomPolicy::kAbort (allocations
//                    only), and the emergency state begins
// Each step is taken at most once per charge.
#ifndef EXECMEM_ALLOCATOR_RECLAIM_H_
#define EXECMEM_ALLOCATOR_RECLAIM_H_

#include <cstddef>
#include <cstdint>

namespace execmem {

class ExecutorImpl;
class Heap;

// Charges `bytes` of footprint for a request of `request` bytes to e. heap:
// the calling thread's heap for e (trimmed under pressure), or null. True:
// charged, with a reference on e that ExecutorImpl::Uncharge drops. False:
// out of memory, with the report in OomReportBuffer().
enum class ChargeFor : uint8_t {
  kAllocation,   // a span or block: OomPolicy::kAbort applies
  kReservation,  // execmem_reserve, a child's reservation: the caller reports
};
bool ChargeOrReclaim(ExecutorImpl* e, uint64_t bytes, uint64_t request, Heap* heap,
                     ChargeFor what = ChargeFor::kAllocation);

// Asks e's hooks, then its children's (most used first), to free `need`
// bytes; returns what they freed by execmem's accounting. Notes go to
// `notes` when it is not null. Not from inside a spill hook.
uint64_t SpillSubtree(ExecutorImpl* e, uint64_t need, char* notes, size_t notes_cap);

}  // namespace execmem

#endif  // EXECMEM_ALLOCATOR_RECLAIM_H_
