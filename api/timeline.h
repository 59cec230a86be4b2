// The timeline: a JSON line per sample of every executor, the pool and the
// process's RSS, written every interval to a file (EXECMEM_TIMELINE,
// execmem_timeline_start), and the Prometheus file (EXECMEM_PROMETHEUS)
// rewritten at the same interval. Read by tools/execmem-advise and
// tools/execmem-plot.
//
// File format (one JSON object per line):
//   {"timeline":1,"pid":..,"program":"..","start":<unix s>,"interval_ms":..,"max_bytes":..}
//   {"t_ms":..,"time_ms":<unix ms>,"pid":..,"final":false,"rss":..,
//    "pool":{"capacity":..,"reserved":..,"granted":..,"held":..,"cached":..,
//            "tracked":..,"untracked":..
//            [,"shared_name":"..","shared_capacity":..,... "member_answered":..]},
//            (in a shared pool: its figures, keys as in the stats report)
//    "executors":[{"name":"..","used":..,"peak_used":..,"footprint":..,
//                  "peak_footprint":..,"initial":..,"max":..,"overhead":..,
//                  "spill_calls":..,"bytes_spilled":..,"oom_count":..,
//                  "ns_above_initial":..}, ...]}
//   {"note":"..","t_ms":..}            (the size bound was reached)
// t_ms counts from the first sample; the last sample, written at exit or by
// execmem_timeline_stop, has "final":true.
//
// How samples are taken: by a detached background thread
// (os::StartDetachedThread, like the pool's purger), started with the
// timeline, sleeping the interval between samples. Not from the allocation
// slow path: an executor that holds memory without allocating (a long sort,
// an idle server, a program blocked on I/O) is exactly what a timeline must
// show, and a sample builds strings and writes a file, which an allocation
// must never wait for. The thread keeps the normal priority: it holds
// g_state->mu while it samples, and exit and fork wait for that lock, so a
// thread at nice 19 would be a priority inversion (a forked child of a
// loaded machine was seen waiting seconds at exit); a sample costs
// microseconds once per interval. The thread checks a generation number
// under the lock before each sample, so stop / restart / fork need no
// condition variable (nothing to re-initialise in a forked child): a stale
// thread wakes, sees a newer generation and ends.
//
// Files are opened and closed at every write (a daemon closing every
// descriptor does not break them), by absolute path (a chdir does not move
// them). A sample whose line would take the file past max_bytes is replaced
// by one note line and the periodic samples end; the final sample is still
// written. In a forked child the sampler starts again with a new file named
// by the pattern for the child's pid (a pattern without %p gets ".<pid>"
// appended, so the child never writes into its parent's file).
#ifndef EXECMEM_API_TIMELINE_H_
#define EXECMEM_API_TIMELINE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/types/span.h"
#include "api/stats_format.h"
#include "execmem.h"
#include "execmem.hpp"  // Status, Result

namespace execmem::timeline {

inline constexpr uint64_t kDefaultIntervalMs = 1000;
inline constexpr uint64_t kMaxIntervalMs = 3'600'000;  // an hour
inline constexpr uint64_t kMinMaxBytes = uint64_t{64} << 10;
inline constexpr uint64_t kDefaultMaxBytes = uint64_t{64} << 20;
inline constexpr std::string_view kIntervalAccepted =
    "milliseconds, a whole number from 1 to 3600000 (one hour)";

// A sample interval as written ("1000"; blank: the default): a whole number
// of milliseconds from 1 to kMaxIntervalMs; anything else (0, -5, "1s") is
// InvalidSetting's one line naming `setting`.
Result<uint64_t> ParseIntervalMs(std::string_view setting, std::string_view value);

struct Settings {
  std::string timeline_pattern;    // "" for none; output_path.h patterns
  std::string prometheus_pattern;  // "" for none
  uint64_t interval_ms = kDefaultIntervalMs;
  uint64_t max_bytes = kDefaultMaxBytes;
  // How messages name the settings.
  std::string_view timeline_setting = "EXECMEM_TIMELINE";
  std::string_view prometheus_setting = "EXECMEM_PROMETHEUS";
  std::string_view interval_setting = "EXECMEM_TIMELINE_MS";
};

// Starts the sampler with these outputs, replacing any running one (which
// first writes its final sample). Patterns are checked and made absolute,
// and the first sample is written before returning, so a bad or unwritable
// path is an error here (InvalidArgument, one line naming the setting), not
// a silent loss later. Registers the at-exit writer and fork handlers once.
Status Start(const Settings& settings);
// The Prometheus pattern of the running sampler ("" when none).
std::string RunningPrometheusPattern();
// Writes the final sample and stops; false when no sampler was running.
bool Stop();
bool Running();

// pthread_atfork handlers (the shim registers them; harmless when unused).
void ForkPrepare();
void ForkParent();
void ForkChild();

// ---- the lines, as pure functions (tested without a sampler) ---------------
std::string FormatHeader(const ProcessInfo& process, uint64_t interval_ms, uint64_t max_bytes);
std::string FormatSample(uint64_t t_ms, uint64_t time_ms, int pid, bool final,
                         const execmem_pool_stats_t& pool,
                         absl::Span<const execmem_executor_stats_t> executors);
std::string FormatNote(std::string_view note, uint64_t t_ms);

}  // namespace execmem::timeline

#endif  // EXECMEM_API_TIMELINE_H_
