// The stats report of execmem_stats_json / execmem_stats_text, as pure
// functions of snapshots so that they can be tested without an allocator.
//
// JSON (version EXECMEM_STATS_VERSION; keys are the struct fields' names,
// values bytes, counts or nanoseconds):
//   {"version":3,
//    "pool":{"capacity":..,"reserved":..,"granted":..,"held":..,"cached":..,
//            "returned_to_os":..,"arenas":..,"mapped":..,"resident":..,
//            "peak_resident":..,"metadata":..,"tracked":..,"untracked":..},
//    "executors":[{"name":"default","initial":..,"max":..,"overhead":..,
//                  "used":..,"peak_used":..,"footprint":..,"peak_footprint":..,
//                  "overhead_in_use":..,"allocations":..,"frees":..,
//                  "spill_calls":..,"spill_failures":..,"bytes_spilled":..,
//                  "oom_count":..,"ns_above_initial":..,"emergency_uses":..,
//                  "emergency_bytes":..,"emergency_active":..}, ...]}
// Names are escaped, and bytes that are not UTF-8 become U+FFFD, so the
// output is valid JSON whatever a name holds.
//
// Text: two aligned tables with a row per executor (memory, then activity),
// a line per executor whose emergency reserve was used,
// and four pool lines (capacity and ledger; held; resident, tracked and
// untracked; tracked's parts) with a line explaining the third; sizes as
// FormatBytes writes them; lines stay under 130 columns (names longer than 24
// columns are cut, "~" marking the cut).
#ifndef EXECMEM_ALLOCATOR_STATS_FORMAT_H_
#define EXECMEM_ALLOCATOR_STATS_FORMAT_H_

#include <string>

#include "absl/types/span.h"
#include "execmem.h"

namespace execmem {

std::string FormatStatsJson(const execmem_pool_stats_t& pool,
                            absl::Span<const execmem_executor_stats_t> executors);

std::string FormatStatsText(const execmem_pool_stats_t& pool,
                            absl::Span<const execmem_executor_stats_t> executors);

}  // namespace execmem

#endif  // EXECMEM_ALLOCATOR_STATS_FORMAT_H_
