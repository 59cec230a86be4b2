// Run-time budgets and reservations of executors:
//   SetLimits  execmem_executor_set_limits — new initial / max / overhead
//   Reserve    execmem_reserve — accounted bytes execmem did not allocate
//   Unreserve  execmem_unreserve
//
// SetLimits: raising takes effect at once. Lowering max below used asks the
// executor's hooks (then its children's) to spill first, with max unchanged;
// if used still does not fit, EBUSY and nothing changed. A new reservation
// (initial, and overhead for a root) is borrowed from the ledger or the
// parent before it is applied (ENOMEM, nothing changed, if it does not fit);
// a smaller one is given back. The tree's rule (a child's max <= its
// parent's) is checked under the registry lock with the new max stored, so
// two concurrent changes (or a new child) cannot both pass it; two
// concurrent SetLimits of the
// same executor: the second returns EBUSY. Lowering max does not shrink
// what is already cached: footprint above the new max + overhead makes the
// next charges trim and spill until it fits.
#ifndef EXECMEM_EXECUTOR_LIMITS_H_
#define EXECMEM_EXECUTOR_LIMITS_H_

#include <cstdint>
#include <optional>
#include <string>

namespace execmem {

class ExecutorImpl;

struct NewLimits {
  std::optional<uint64_t> initial, max, overhead;  // nullopt: keep
};

// 0, or EINVAL / EBUSY / ENOMEM with the reason in *message.
int SetLimits(ExecutorImpl* e, const NewLimits& limits, std::string* message);

// 0; ENOMEM after the spill and arbitration path, the report in
// ThreadLastError(); EINVAL when e is being destroyed.
int Reserve(ExecutorImpl* e, uint64_t bytes);
// 0; EINVAL (nothing changed) when bytes is more than e holds reserved.
int Unreserve(ExecutorImpl* e, uint64_t bytes);

}  // namespace execmem

#endif  // EXECMEM_EXECUTOR_LIMITS_H_
