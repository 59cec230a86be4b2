// The Prometheus text format (api/prometheus_format.h).
//
// Each metric is listed once (kPoolMetrics, kExecutorMetrics) with its type
// and help, so a metric cannot lose its TYPE line.
#include "api/prometheus_format.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "executor/executor.h"

namespace execmem {
namespace {

enum class Kind { kGauge, kCounter };

template <typename Stats>
struct Metric {
  std::string_view name;  // without the execmem_pool_ / execmem_executor_ prefix
  Kind kind;
  uint64_t Stats::*member;
  std::string_view help;
  uint64_t divisor = 1;  // ns_above_initial is written in seconds
};

using PoolMetric = Metric<execmem_pool_stats_t>;
using ExecutorMetric = Metric<execmem_executor_stats_t>;
using P = execmem_pool_stats_t;
using E = execmem_executor_stats_t;

constexpr PoolMetric kPoolMetrics[] = {
    {"capacity_bytes", Kind::kGauge, &P::capacity, "Bytes the pool may hold at once."},
    {"reserved_bytes", Kind::kGauge, &P::reserved, "Executors' reservations (initial + overhead)."},
    {"granted_bytes", Kind::kGauge, &P::granted, "Growth above the reservations now granted."},
    {"held_bytes", Kind::kGauge, &P::held, "Committed bytes: executors' footprints and the cache."},
    {"cached_bytes", Kind::kGauge, &P::cached, "Of held: free pages kept committed for reuse."},
    {"returned_to_os_bytes_total", Kind::kCounter, &P::returned_to_os,
     "Bytes given back to the OS."},
    {"arenas", Kind::kGauge, &P::arenas, "Arenas mapped."},
    {"mapped_bytes", Kind::kGauge, &P::mapped, "Address space mapped by the pool."},
    {"resident_bytes", Kind::kGauge, &P::resident, "The process's resident set size (RSS)."},
    {"peak_resident_bytes", Kind::kGauge, &P::peak_resident, "The process's peak RSS (VmHWM)."},
    {"metadata_bytes", Kind::kGauge, &P::metadata, "execmem's own metadata (an upper bound)."},
    {"tracked_bytes", Kind::kGauge, &P::tracked, "held + metadata: what execmem manages."},
    {"untracked_bytes", Kind::kGauge, &P::untracked,
     "resident - tracked: memory execmem does not manage."},
};

// The shared pool (version 4's fields), written only by a member of one:
// the pool's figures (each member reports the same: aggregate with max by
// (pool)) and the member's own.
constexpr PoolMetric kSharedMetrics[] = {
    {"capacity_bytes", Kind::kGauge, &P::shared_capacity,
     "The shared pool's capacity, fixed by its creator."},
    {"reserved_bytes", Kind::kGauge, &P::shared_reserved, "The members' reservations together."},
    {"granted_bytes", Kind::kGauge, &P::shared_granted, "The members' grants together."},
    {"peak_bytes", Kind::kGauge, &P::shared_peak,
     "The highest reserved + granted since the pool was made."},
    {"members", Kind::kGauge, &P::shared_members, "Processes in the pool."},
    {"refusals_total", Kind::kCounter, &P::shared_refusals,
     "Reservations and grants the pool refused."},
    {"reclaimed_members_total", Kind::kCounter, &P::shared_reclaimed_members,
     "Dead members whose holdings were taken back."},
    {"reclaimed_bytes_total", Kind::kCounter, &P::shared_reclaimed_bytes,
     "Bytes dead members held when taken back."},
    {"member_reserved_bytes", Kind::kGauge, &P::member_reserved,
     "This process's reservations in the pool."},
    {"member_granted_bytes", Kind::kGauge, &P::member_granted,
     "This process's grants from the pool."},
    {"member_used_bytes", Kind::kGauge, &P::member_used,
     "This process's executors' footprints, as published to the pool."},
    {"member_asked_total", Kind::kCounter, &P::member_asked,
     "Requests of other members that this process give back."},
    {"member_answered_total", Kind::kCounter, &P::member_answered, "Of those requests, answered."},
};

constexpr ExecutorMetric kExecutorMetrics[] = {
    {"used_bytes", Kind::kGauge, &E::used, "Live bytes (size-class rounded)."},
    {"peak_used_bytes", Kind::kGauge, &E::peak_used, "Highest used."},
    {"footprint_bytes", Kind::kGauge, &E::footprint,
     "Bytes of spans and blocks held, allocator cost included."},
    {"peak_footprint_bytes", Kind::kGauge, &E::peak_footprint, "Highest footprint."},
    {"overhead_in_use_bytes", Kind::kGauge, &E::overhead_in_use, "footprint - used."},
    {"initial_bytes", Kind::kGauge, &E::initial, "Budget: the initial reservation."},
    {"max_bytes", Kind::kGauge, &E::max, "Budget: the most live bytes allowed."},
    {"overhead_bytes", Kind::kGauge, &E::overhead, "Budget: the overhead reservation."},
    {"allocations_total", Kind::kCounter, &E::allocations, "Allocations counted at span refills."},
    {"frees_total", Kind::kCounter, &E::frees, "Frees counted at span refills."},
    {"spill_calls_total", Kind::kCounter, &E::spill_calls, "Spill hook calls."},
    {"spill_failures_total", Kind::kCounter, &E::spill_failures, "Spill hook calls that failed."},
    {"spilled_bytes_total", Kind::kCounter, &E::bytes_spilled,
     "Drop in used while spill hooks ran."},
    {"ooms_total", Kind::kCounter, &E::oom_count, "Allocations refused (out of memory)."},
    {"above_initial_seconds_total", Kind::kCounter, &E::ns_above_initial,
     "Time spent with used above initial.", 1'000'000'000},
};

// A label value: \ " and newline escaped, bytes that are not UTF-8 as U+FFFD.
void AppendLabelValue(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
      ++i;
    } else if (c == '\n') {
      out += "\\n";
      ++i;
    } else if (const size_t n = Utf8SequenceLength(s.substr(i)); n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  out += '"';
}

void AppendHeader(std::string& out, std::string_view prefix, std::string_view name, Kind kind,
                  std::string_view help) {
  out += "# HELP ";
  out += prefix;
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += prefix;
  out += name;
  out += kind == Kind::kGauge ? " gauge\n" : " counter\n";
}

std::string_view NameOf(const execmem_executor_stats_t& e) {
  return std::string_view(e.name, strnlen(e.name, sizeof(e.name)));
}

void AppendValue(std::string& out, uint64_t value, uint64_t divisor) {
  if (divisor == 1) {
    out += " " + std::to_string(value) + "\n";
  } else {
    // Fixed point with 9 decimals, in integers: snprintf's %f would follow
    // the program's LC_NUMERIC (a decimal comma).
    const uint64_t frac = static_cast<uint64_t>(
        (static_cast<unsigned __int128>(value % divisor) * 1'000'000'000 + divisor / 2) / divisor);
    uint64_t whole = value / divisor;
    uint64_t nanos = frac;
    if (nanos >= 1'000'000'000) {  // rounded up to the next whole
      ++whole;
      nanos -= 1'000'000'000;
    }
    char buf[48];
    snprintf(buf, sizeof buf, " %llu.%09llu\n", static_cast<unsigned long long>(whole),
             static_cast<unsigned long long>(nanos));
    out += buf;
  }
}

}  // namespace

std::string FormatStatsPrometheus(const execmem_pool_stats_t& pool,
                                  absl::Span<const execmem_executor_stats_t> executors,
                                  const ProcessInfo& process) {
  std::string process_labels = "pid=\"" + std::to_string(process.pid) + "\",program=";
  AppendLabelValue(process_labels, process.program);
  // A member of a shared pool labels every series with it: the members'
  // series sum by (pool).
  const std::string_view shared = SharedName(pool);
  if (!shared.empty()) {
    process_labels += ",pool=";
    AppendLabelValue(process_labels, shared);
  }
  std::string out;
  for (const PoolMetric& m : kPoolMetrics) {
    AppendHeader(out, "execmem_pool_", m.name, m.kind, m.help);
    out += "execmem_pool_" + std::string(m.name) + "{" + process_labels + "}";
    AppendValue(out, pool.*m.member, m.divisor);
  }
  for (const PoolMetric& m : kSharedMetrics) {
    if (shared.empty()) break;
    AppendHeader(out, "execmem_shared_", m.name, m.kind, m.help);
    out += "execmem_shared_" + std::string(m.name) + "{" + process_labels + "}";
    AppendValue(out, pool.*m.member, m.divisor);
  }
  for (const ExecutorMetric& m : kExecutorMetrics) {
    AppendHeader(out, "execmem_executor_", m.name, m.kind, m.help);
    for (const execmem_executor_stats_t& e : executors) {
      out += "execmem_executor_" + std::string(m.name) + "{executor=";
      AppendLabelValue(out, NameOf(e));
      out += "," + process_labels + "}";
      AppendValue(out, e.*m.member, m.divisor);
    }
  }
  return out;
}

}  // namespace execmem
