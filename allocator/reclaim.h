// The reclaim loop: charging an executor for a span or large block, acting
// on the account's verdicts (budget/budget.h).
//
//   ChargeOrReclaim -> budget::Account::Charge -> verdict
//     granted     -> take a reference, done
//     trim first  -> heap->TrimEmpty() (this thread's empty spans), retry
//     spill N     -> the executor's spill hooks (not from inside a hook),
//                    ThreadHeapsSync, TrimEmpty, retry
//     pool short  -> arbitration: executors above their reservation spill,
//                    largest excess first, never below it; retry
//     otherwise   -> the emergency reserve (budget/emergency.h) serves a
//                    small request when an earlier refusal started the
//                    emergency state; else out of memory: the report is
//                    stored for the thread (and printed before abort() under
//                    OomPolicy::kAbort) and the emergency state begins
// Each step is taken at most once per charge.
#ifndef EXECMEM_ALLOCATOR_RECLAIM_H_
#define EXECMEM_ALLOCATOR_RECLAIM_H_

#include <cstdint>

namespace execmem {

class ExecutorImpl;
class Heap;

// Charges `bytes` of footprint for a request of `request` bytes to e. heap:
// the calling thread's heap for e (trimmed under pressure), or null. True:
// charged, with a reference on e that ExecutorImpl::Uncharge drops. False:
// out of memory, with the report in OomReportBuffer().
bool ChargeOrReclaim(ExecutorImpl* e, uint64_t bytes, uint64_t request, Heap* heap);

}  // namespace execmem

#endif  // EXECMEM_ALLOCATOR_RECLAIM_H_
