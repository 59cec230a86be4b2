// The timeline's lines (allocator/timeline.h).
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "allocator/config.h"
#include "allocator/timeline.h"

namespace execmem::timeline {
namespace {

using E = execmem_executor_stats_t;
using P = execmem_pool_stats_t;

constexpr PoolField kPoolKeys[] = {
    {"capacity", &P::capacity},   {"reserved", &P::reserved}, {"granted", &P::granted},
    {"held", &P::held},           {"cached", &P::cached},     {"tracked", &P::tracked},
    {"untracked", &P::untracked},
};

constexpr ExecutorField kExecutorKeys[] = {
    {"used", &E::used},
    {"peak_used", &E::peak_used},
    {"footprint", &E::footprint},
    {"peak_footprint", &E::peak_footprint},
    {"initial", &E::initial},
    {"max", &E::max},
    {"overhead", &E::overhead},
    {"spill_calls", &E::spill_calls},
    {"bytes_spilled", &E::bytes_spilled},
    {"oom_count", &E::oom_count},
    {"ns_above_initial", &E::ns_above_initial},
};

}  // namespace

absl::StatusOr<uint64_t> ParseIntervalMs(std::string_view setting, std::string_view value) {
  std::string_view v = config::StripBlanks(value);
  if (v.empty()) return kDefaultIntervalMs;
  uint64_t ms = 0;
  // SimpleAtoi alone would take "+5"; only digits are milliseconds.
  if (v.find_first_not_of("0123456789") != std::string_view::npos ||
      !absl::SimpleAtoi(config::ToAbsl(v), &ms)) {
    return config::InvalidSetting(setting, value, "not a whole number of milliseconds",
                                  kIntervalAccepted);
  }
  if (ms == 0) return config::InvalidSetting(setting, value, "zero", kIntervalAccepted);
  if (ms > kMaxIntervalMs) {
    return config::InvalidSetting(setting, value, "too long", kIntervalAccepted);
  }
  return ms;
}

std::string FormatHeader(const ProcessInfo& process, uint64_t interval_ms, uint64_t max_bytes) {
  std::string out = absl::StrCat("{\"timeline\":1,\"pid\":", process.pid, ",\"program\":");
  AppendJsonString(out, process.program);
  absl::StrAppend(&out, ",\"start\":", process.start_unix, ",\"interval_ms\":", interval_ms,
                  ",\"max_bytes\":", max_bytes, "}\n");
  return out;
}

std::string FormatSample(uint64_t t_ms, uint64_t time_ms, int pid, bool final,
                         const execmem_pool_stats_t& pool,
                         absl::Span<const execmem_executor_stats_t> executors) {
  std::string out = absl::StrCat("{\"t_ms\":", t_ms, ",\"time_ms\":", time_ms, ",\"pid\":", pid,
                                 ",\"final\":", final ? "true" : "false",
                                 ",\"rss\":", pool.resident, ",\"pool\":{");
  for (size_t i = 0; i < std::size(kPoolKeys); ++i) {
    absl::StrAppend(&out, i == 0 ? "\"" : ",\"", config::ToAbsl(kPoolKeys[i].key),
                    "\":", pool.*kPoolKeys[i].member);
  }
  out += "},\"executors\":[";
  for (size_t i = 0; i < executors.size(); ++i) {
    out += i == 0 ? "{\"name\":" : ",{\"name\":";
    const E& e = executors[i];
    AppendJsonString(out, std::string_view(e.name, strnlen(e.name, sizeof(e.name))));
    for (const ExecutorField& k : kExecutorKeys) {
      absl::StrAppend(&out, ",\"", config::ToAbsl(k.key), "\":", e.*k.member);
    }
    out += '}';
  }
  out += "]}\n";
  return out;
}

std::string FormatNote(std::string_view note, uint64_t t_ms) {
  std::string out = "{\"note\":";
  AppendJsonString(out, note);
  absl::StrAppend(&out, ",\"t_ms\":", t_ms, "}\n");
  return out;
}

}  // namespace execmem::timeline
