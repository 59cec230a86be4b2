// The Prometheus text exposition format (version 0.0.4) of the stats, as a
// pure function of snapshots, for execmem_stats_prometheus and the
// EXECMEM_PROMETHEUS file (node_exporter's textfile collector).
//
// Every metric has one "# HELP" and one "# TYPE" line before its samples;
// gauges are named by unit (execmem_executor_used_bytes), counters end in
// _total. Every sample is labelled with the process (pid, program), and
// executors' with executor="name"; label values are escaped (\\, \", \n) and
// bytes that are not UTF-8 become U+FFFD. A member of a shared pool
// (EXECMEM_SHARED) adds pool="NAME" to every sample's labels and the
// execmem_shared_* metrics: the pool's figures and its own slot's.
#ifndef EXECMEM_API_PROMETHEUS_FORMAT_H_
#define EXECMEM_API_PROMETHEUS_FORMAT_H_

#include <string>

#include "absl/types/span.h"
#include "api/stats_format.h"
#include "execmem.h"

namespace execmem {

std::string FormatStatsPrometheus(const execmem_pool_stats_t& pool,
                                  absl::Span<const execmem_executor_stats_t> executors,
                                  const ProcessInfo& process);

}  // namespace execmem

#endif  // EXECMEM_API_PROMETHEUS_FORMAT_H_
