// The stats report of execmem_stats_json / execmem_stats_text, as pure
// functions of snapshots so that they can be tested without an allocator.
//
// JSON (version EXECMEM_STATS_VERSION; keys are the struct fields' names,
// values bytes, counts or nanoseconds):
//   {"version":4,
//    "pool":{"capacity":..,"reserved":..,"granted":..,"held":..,"cached":..,
//            "returned_to_os":..,"arenas":..,"mapped":..,"resident":..,
//            "peak_resident":..,"metadata":..,"tracked":..,"untracked":..
//            [,"shared_name":"..","shared_capacity":..,"shared_reserved":..,
//             "shared_granted":..,"shared_peak":..,"shared_members":..,
//             "shared_refusals":..,"shared_reclaimed_members":..,
//             "shared_reclaimed_bytes":..,"member_reserved":..,
//             "member_granted":..,"member_used":..,"member_asked":..,
//             "member_answered":..]},   (the shared_* keys: only in a shared pool)
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
// untracked; tracked's parts) with a line explaining the third, then, in a
// shared pool, three "shared pool" lines (its name, capacity and holdings;
// free, refusals and reclaimed dead members; this process's slot); sizes as
// FormatBytes writes them; lines stay under 130 columns (names longer than 24
// columns are cut, "~" marking the cut).
#ifndef EXECMEM_API_STATS_FORMAT_H_
#define EXECMEM_API_STATS_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/types/span.h"  // header-only
#include "execmem.h"

namespace execmem {

// Which process a report describes; every report names it (a program that
// runs others leaves one report per process). pid 0: not named (tests).
//   JSON: "pid":1234,"program":"python3","start":1764585912 after "version";
//   text: the first line ends "of pid 1234 (python3)".
struct ProcessInfo {
  int pid = 0;
  std::string program;
  uint64_t start_unix = 0;  // the process's start time, Unix seconds
};
// The calling process (platform/os.h).
ProcessInfo ThisProcess();

// A numeric field of a stats struct and its key in the reports (each
// report lists its fields once, in a table of these).
struct PoolField {
  std::string_view key;
  uint64_t execmem_pool_stats_t::*member;
};
struct ExecutorField {
  std::string_view key;
  uint64_t execmem_executor_stats_t::*member;
};

// The shared pool's NAME ("" when the process is a member of none).
// AppendSharedJson appends its figures (version 4: shared_*, member_*) as
// ,"shared_name":"..","shared_capacity":.. (nothing when not a member), to go
// inside a "pool" object.
std::string_view SharedName(const execmem_pool_stats_t& pool);
void AppendSharedJson(std::string& out, const execmem_pool_stats_t& pool);

// Appends s as a JSON string: escaped, bytes that are not UTF-8 as U+FFFD.
void AppendJsonString(std::string& out, std::string_view s);
// Length of the well-formed UTF-8 sequence at the start of s, or 0.
size_t Utf8SequenceLength(std::string_view s);

std::string FormatStatsJson(const execmem_pool_stats_t& pool,
                            absl::Span<const execmem_executor_stats_t> executors,
                            const ProcessInfo& process = {});

std::string FormatStatsText(const execmem_pool_stats_t& pool,
                            absl::Span<const execmem_executor_stats_t> executors,
                            const ProcessInfo& process = {});

}  // namespace execmem

#endif  // EXECMEM_API_STATS_FORMAT_H_
