// One consistent read of every executor's stats (thread caches synced
// first), shared by the C API's reports and the timeline sampler.
#ifndef EXECMEM_API_SNAPSHOT_H_
#define EXECMEM_API_SNAPSHOT_H_

#include <vector>

#include "execmem.h"

namespace execmem {

// Every live executor's stats, in creation order (api/api.cc).
std::vector<execmem_executor_stats_t> AllStats();

}  // namespace execmem

#endif  // EXECMEM_API_SNAPSHOT_H_
