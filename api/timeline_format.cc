// The timeline's lines (api/timeline.h).
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "api/timeline.h"
#include "executor/executor.h"

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

Result<uint64_t> ParseIntervalMs(std::string_view setting, std::string_view value) {
  std::string_view v = config::StripBlanks(value);
  if (v.empty()) return kDefaultIntervalMs;
  uint64_t ms = 0;
  // Only digits are milliseconds (no sign); from_chars fails on overflow,
  // which is a whole number too long.
  if (v.find_first_not_of("0123456789") != std::string_view::npos) {
    return config::InvalidSetting(setting, value, "not a whole number of milliseconds",
                                  kIntervalAccepted);
  }
  const bool fits = std::from_chars(v.data(), v.data() + v.size(), ms).ec == std::errc();
  if (fits && ms == 0) return config::InvalidSetting(setting, value, "zero", kIntervalAccepted);
  if (!fits || ms > kMaxIntervalMs) {
    return config::InvalidSetting(setting, value, "too long", kIntervalAccepted);
  }
  return ms;
}

std::string FormatHeader(const ProcessInfo& process, uint64_t interval_ms, uint64_t max_bytes) {
  std::string out = "{\"timeline\":1,\"pid\":" + std::to_string(process.pid) + ",\"program\":";
  AppendJsonString(out, process.program);
  out += ",\"start\":" + std::to_string(process.start_unix) +
         ",\"interval_ms\":" + std::to_string(interval_ms) +
         ",\"max_bytes\":" + std::to_string(max_bytes) + "}\n";
  return out;
}

std::string FormatSample(uint64_t t_ms, uint64_t time_ms, int pid, bool final,
                         const execmem_pool_stats_t& pool,
                         absl::Span<const execmem_executor_stats_t> executors) {
  std::string out = "{\"t_ms\":" + std::to_string(t_ms) +
                    ",\"time_ms\":" + std::to_string(time_ms) + ",\"pid\":" + std::to_string(pid) +
                    ",\"final\":" + (final ? "true" : "false") +
                    ",\"rss\":" + std::to_string(pool.resident) + ",\"pool\":{";
  for (size_t i = 0; i < std::size(kPoolKeys); ++i) {
    out += (i == 0 ? "\"" : ",\"") + std::string(kPoolKeys[i].key) +
           "\":" + std::to_string(pool.*kPoolKeys[i].member);
  }
  AppendSharedJson(out, pool);  // in a shared pool: its figures, named as in the stats
  out += "},\"executors\":[";
  for (size_t i = 0; i < executors.size(); ++i) {
    out += i == 0 ? "{\"name\":" : ",{\"name\":";
    const E& e = executors[i];
    AppendJsonString(out, std::string_view(e.name, strnlen(e.name, sizeof(e.name))));
    for (const ExecutorField& k : kExecutorKeys) {
      out += ",\"" + std::string(k.key) + "\":" + std::to_string(e.*k.member);
    }
    out += '}';
  }
  out += "]}\n";
  return out;
}

std::string FormatNote(std::string_view note, uint64_t t_ms) {
  std::string out = "{\"note\":";
  AppendJsonString(out, note);
  out += ",\"t_ms\":" + std::to_string(t_ms) + "}\n";
  return out;
}

}  // namespace execmem::timeline
