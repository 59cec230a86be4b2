// Allocation for a task that can give memory back.
//
// execmem already runs the executor's spill hooks before an allocation fails,
// but a hook cannot always free what it is asked for: another task may be
// holding its buffer while it writes a run. So a task that gets
// execmem::OutOfMemory spills what it owns itself, waits a little for its
// neighbours, and retries — the executor's OOM counter records each miss —
// until a deadline, and only then reports the failure.
#ifndef EXECMEM_DEMO_ALLOCATE_OR_SPILL_H_
#define EXECMEM_DEMO_ALLOCATE_OR_SPILL_H_

#include <cstddef>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"

namespace execmem_demo {

// Allocates `bytes` for the executor the calling thread is bound to. On
// execmem::OutOfMemory calls relieve() and retries with backoff; after about
// two seconds of failures returns ResourceExhausted carrying execmem's message.
absl::StatusOr<void*> AllocateOrSpill(std::size_t bytes, absl::FunctionRef<void()> relieve);

}  // namespace execmem_demo

#endif  // EXECMEM_DEMO_ALLOCATE_OR_SPILL_H_
