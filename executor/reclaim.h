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
#ifndef EXECMEM_EXECUTOR_RECLAIM_H_
#define EXECMEM_EXECUTOR_RECLAIM_H_

#include <cstddef>
#include <cstdint>

namespace execmem {

class ExecutorImpl;

// ChargeOrReclaim (cache/tenant.h) reaches the loop through the cache's
// Reclaimer, which reclaim.cc implements and installs (g_reclaimer): the
// cache charges a Tenant; every Tenant is an ExecutorImpl. Under
// OomPolicy::kAbort (runtime.h) a refused allocation (ChargeFor::kAllocation)
// prints its report and aborts.

// Asks e's hooks, then its children's (most used first), to free `need`
// bytes; returns what they freed by execmem's accounting. Notes go to
// `notes` when it is not null. Not from inside a spill hook.
uint64_t SpillSubtree(ExecutorImpl* e, uint64_t need, char* notes, size_t notes_cap);

}  // namespace execmem

#endif  // EXECMEM_EXECUTOR_RECLAIM_H_
