// The stats report (api/stats_format.h).
//
// Each struct's fields are listed once (kPoolFields, kExecutorFields): the
// JSON writes all of them, so a field added to the list cannot be left out.
#include "api/stats_format.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "executor/executor.h"
#include "platform/os.h"

namespace execmem {
namespace {

// Not "Executor": that is the allocator's class in this namespace.
using ExecutorStats = execmem_executor_stats_t;
using PoolStats = execmem_pool_stats_t;

constexpr PoolField kPoolFields[] = {
    {"capacity", &PoolStats::capacity},   {"reserved", &PoolStats::reserved},
    {"granted", &PoolStats::granted},     {"held", &PoolStats::held},
    {"cached", &PoolStats::cached},       {"returned_to_os", &PoolStats::returned_to_os},
    {"arenas", &PoolStats::arenas},       {"mapped", &PoolStats::mapped},
    {"resident", &PoolStats::resident},   {"peak_resident", &PoolStats::peak_resident},
    {"metadata", &PoolStats::metadata},   {"tracked", &PoolStats::tracked},
    {"untracked", &PoolStats::untracked},
};

// Version 4: the shared pool's figures, written (after shared_name) only
// when the process is a member of one.
constexpr PoolField kSharedFields[] = {
    {"shared_capacity", &PoolStats::shared_capacity},
    {"shared_reserved", &PoolStats::shared_reserved},
    {"shared_granted", &PoolStats::shared_granted},
    {"shared_peak", &PoolStats::shared_peak},
    {"shared_members", &PoolStats::shared_members},
    {"shared_refusals", &PoolStats::shared_refusals},
    {"shared_reclaimed_members", &PoolStats::shared_reclaimed_members},
    {"shared_reclaimed_bytes", &PoolStats::shared_reclaimed_bytes},
    {"member_reserved", &PoolStats::member_reserved},
    {"member_granted", &PoolStats::member_granted},
    {"member_used", &PoolStats::member_used},
    {"member_asked", &PoolStats::member_asked},
    {"member_answered", &PoolStats::member_answered},
};

constexpr ExecutorField kExecutorFields[] = {
    {"initial", &ExecutorStats::initial},
    {"max", &ExecutorStats::max},
    {"overhead", &ExecutorStats::overhead},
    {"used", &ExecutorStats::used},
    {"peak_used", &ExecutorStats::peak_used},
    {"footprint", &ExecutorStats::footprint},
    {"peak_footprint", &ExecutorStats::peak_footprint},
    {"overhead_in_use", &ExecutorStats::overhead_in_use},
    {"allocations", &ExecutorStats::allocations},
    {"frees", &ExecutorStats::frees},
    {"spill_calls", &ExecutorStats::spill_calls},
    {"spill_failures", &ExecutorStats::spill_failures},
    {"bytes_spilled", &ExecutorStats::bytes_spilled},
    {"oom_count", &ExecutorStats::oom_count},
    {"ns_above_initial", &ExecutorStats::ns_above_initial},
    {"emergency_uses", &ExecutorStats::emergency_uses},
    {"emergency_bytes", &ExecutorStats::emergency_bytes},
    {"emergency_active", &ExecutorStats::emergency_active},
};

constexpr size_t kNameColumns = 24;  // longer names are cut in the text report

// The name, which fills all 64 bytes when it has no terminating NUL.
std::string_view NameOf(const ExecutorStats& e) {
  return std::string_view(e.name, strnlen(e.name, sizeof(e.name)));
}

// A name as the text report shows it: control characters and broken UTF-8
// as "?", at most kNameColumns code points. Sets `columns` to its width.
std::string DisplayName(std::string_view s, size_t& columns) {
  std::string out;
  columns = 0;
  for (size_t i = 0; i < s.size();) {
    if (columns == kNameColumns) {  // cut: the last column becomes "~"
      size_t last = out.size() - 1;
      while (last > 0 && (static_cast<unsigned char>(out[last]) & 0xC0) == 0x80) --last;
      out.resize(last);
      out += '~';
      return out;
    }
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = Utf8SequenceLength(s.substr(i));
    if (n == 0 || c < 0x20 || c == 0x7F) {
      out += '?';
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
    ++columns;
  }
  return out;
}

// Counts as digits up to 12 of them, beyond that with an SI suffix, so that
// a column never grows wider than 12.
std::string FormatCount(uint64_t n) {
  if (n < 1'000'000'000'000) return std::to_string(n);
  constexpr std::string_view kSuffixes = "TPE";
  uint64_t scale = 1'000'000'000'000;
  size_t suffix = 0;
  while (suffix + 1 < kSuffixes.size() && n / scale >= 1000) {
    scale *= 1000;
    ++suffix;
  }
  return std::to_string(n / scale) + "." + std::to_string(n % scale / (scale / 10)) +
         kSuffixes[suffix];
}

// "0 s", "850 ns", "12.5 ms", "3.2 min", "1.5 h", rounded down.
std::string FormatNanoseconds(uint64_t ns) {
  if (ns == 0) return "0 s";
  if (ns < 1000) return std::to_string(ns) + " ns";
  struct Unit {
    uint64_t ns;
    std::string_view name;
  };
  constexpr Unit kUnits[] = {{3'600'000'000'000, "h"},
                             {60'000'000'000, "min"},
                             {1'000'000'000, "s"},
                             {1'000'000, "ms"},
                             {1'000, "us"}};
  for (const Unit& u : kUnits) {
    if (ns >= u.ns) {
      return std::to_string(ns / u.ns) + "." + std::to_string(ns % u.ns * 10 / u.ns) + " " +
             std::string(u.name);
    }
  }
  return std::to_string(ns) + " ns";  // not reached
}

// One aligned table: the first column left-aligned (names), the others right.
struct Cell {
  std::string text;
  size_t columns;  // display width
};

void AppendTable(std::string& out, const std::vector<std::vector<Cell>>& rows) {
  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].columns);
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      const std::string pad(widths[i] - row[i].columns, ' ');
      if (i == 0) {
        line += row[i].text + pad;
      } else {
        line += "  " + pad + row[i].text;
      }
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out += line + "\n";
  }
}

Cell Ascii(std::string text) {
  const size_t columns = text.size();
  return {std::move(text), columns};
}

Cell Bytes(uint64_t bytes) { return Ascii(config::FormatBytes(bytes)); }

Cell Name(const ExecutorStats& e) {
  size_t columns = 0;
  std::string text = DisplayName(NameOf(e), columns);
  return {std::move(text), columns};
}

}  // namespace

// RFC 3629: no overlong forms, surrogates or code points above U+10FFFF.
size_t Utf8SequenceLength(std::string_view s) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  size_t n = 0;
  unsigned char low = 0x80, high = 0xBF;  // range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n || byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 2; i < n; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return n;
}

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      char escape[8];
      snprintf(escape, sizeof escape, "\\u%04x", c);
      out += escape;
      ++i;
    } else if (const size_t n = Utf8SequenceLength(s.substr(i)); n == 0) {
      out += "\\ufffd";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  out += '"';
}

std::string_view SharedName(const execmem_pool_stats_t& pool) {
  return std::string_view(pool.shared_name, strnlen(pool.shared_name, sizeof(pool.shared_name)));
}

void AppendSharedJson(std::string& out, const execmem_pool_stats_t& pool) {
  const std::string_view name = SharedName(pool);
  if (name.empty()) return;
  out += ",\"shared_name\":";
  AppendJsonString(out, name);
  for (const PoolField& field : kSharedFields) {
    out += ",\"" + std::string(field.key) + "\":" + std::to_string(pool.*field.member);
  }
}

ProcessInfo ThisProcess() { return {os::ProcessId(), os::ProgramName(), os::ProcessStartTime()}; }

std::string FormatStatsJson(const execmem_pool_stats_t& pool,
                            absl::Span<const execmem_executor_stats_t> executors,
                            const ProcessInfo& process) {
  std::string out = "{\"version\":" + std::to_string(EXECMEM_STATS_VERSION);
  if (process.pid != 0) {
    out += ",\"pid\":" + std::to_string(process.pid) + ",\"program\":";
    AppendJsonString(out, process.program);
    out += ",\"start\":" + std::to_string(process.start_unix);
  }
  out += ",\"pool\":{";
  for (size_t i = 0; i < std::size(kPoolFields); ++i) {
    out += (i == 0 ? "\"" : ",\"") + std::string(kPoolFields[i].key) +
           "\":" + std::to_string(pool.*kPoolFields[i].member);
  }
  AppendSharedJson(out, pool);
  out += "},\"executors\":[";
  for (size_t e = 0; e < executors.size(); ++e) {
    out += e == 0 ? "{\"name\":" : ",{\"name\":";
    AppendJsonString(out, NameOf(executors[e]));
    for (const ExecutorField& field : kExecutorFields) {
      out += ",\"" + std::string(field.key) + "\":" + std::to_string(executors[e].*field.member);
    }
    out += '}';
  }
  out += "]}";
  return out;
}

std::string FormatStatsText(const execmem_pool_stats_t& pool,
                            absl::Span<const execmem_executor_stats_t> executors,
                            const ProcessInfo& process) {
  const auto B = [](uint64_t bytes) { return config::FormatBytes(bytes); };
  std::string out = "execmem stats (version " + std::to_string(EXECMEM_STATS_VERSION) + ")";
  if (process.pid != 0) {
    size_t columns = 0;
    out += " of pid " + std::to_string(process.pid) + " (" + DisplayName(process.program, columns) +
           ")";
  }
  out += '\n';
  if (executors.empty()) {
    out += "executors: none\n";
  } else {
    std::vector<std::vector<Cell>> memory = {{Ascii("executor"), Ascii("used"), Ascii("peak used"),
                                              Ascii("footprint"), Ascii("peak footprint"),
                                              Ascii("overhead used"), Ascii("initial"),
                                              Ascii("max"), Ascii("overhead")}};
    std::vector<std::vector<Cell>> activity = {
        {Ascii("executor"), Ascii("allocations"), Ascii("frees"), Ascii("spill calls"),
         Ascii("spill failures"), Ascii("spilled"), Ascii("OOMs"), Ascii("above initial")}};
    for (const ExecutorStats& e : executors) {
      memory.push_back({Name(e), Bytes(e.used), Bytes(e.peak_used), Bytes(e.footprint),
                        Bytes(e.peak_footprint), Bytes(e.overhead_in_use), Bytes(e.initial),
                        Bytes(e.max), Bytes(e.overhead)});
      activity.push_back({Name(e), Ascii(FormatCount(e.allocations)), Ascii(FormatCount(e.frees)),
                          Ascii(FormatCount(e.spill_calls)), Ascii(FormatCount(e.spill_failures)),
                          Bytes(e.bytes_spilled), Ascii(FormatCount(e.oom_count)),
                          Ascii(FormatNanoseconds(e.ns_above_initial))});
    }
    AppendTable(out, memory);
    out += '\n';
    AppendTable(out, activity);
    // Only executors whose emergency reserve served something (or that are
    // in the emergency state) get a line: the common case stays two tables.
    for (const ExecutorStats& e : executors) {
      if (e.emergency_uses == 0 && e.emergency_active == 0) continue;
      out += "emergency reserve of " + Name(e).text + ": served " + FormatCount(e.emergency_uses) +
             " request(s), " + config::FormatBytes(e.emergency_bytes) + " after a refusal" +
             (e.emergency_active != 0 ? " (in the emergency state now)" : "") + "\n";
    }
  }
  out += '\n';
  out += "pool: capacity " + B(pool.capacity) + ", reserved " + B(pool.reserved) +
         " for executors, granted " + B(pool.granted) + " above their reservations\n";
  out += "pool: held " + B(pool.held) + " (cached " + B(pool.cached) + "), returned to OS " +
         B(pool.returned_to_os) + ", arenas " + FormatCount(pool.arenas) + ", mapped " +
         B(pool.mapped) + "\n";
  // held - cached: what the executors' footprints add up to (execmem.h).
  const uint64_t footprints = pool.held > pool.cached ? pool.held - pool.cached : 0;
  out += "pool: resident " + B(pool.resident) + " (peak " + B(pool.peak_resident) + "), tracked " +
         B(pool.tracked) + ", untracked " + B(pool.untracked) + "\n";
  out += "pool: tracked = footprints " + B(footprints) + " + cached " + B(pool.cached) +
         " + metadata " + B(pool.metadata) + "\n";
  out +=
      "(resident: the process's RSS from the OS; tracked: what execmem manages; untracked: the "
      "rest: code, stacks, other mmaps)\n";
  if (const std::string_view name = SharedName(pool); !name.empty()) {
    size_t columns = 0;
    const uint64_t total = pool.shared_reserved + pool.shared_granted;
    out += "shared pool " + DisplayName(name, columns) + ": capacity " + B(pool.shared_capacity) +
           ", reserved " + B(pool.shared_reserved) + ", granted " + B(pool.shared_granted) +
           ", peak " + B(pool.shared_peak) + ", " + FormatCount(pool.shared_members) +
           " member(s)\n";
    out += "shared pool: free " +
           B(pool.shared_capacity > total ? pool.shared_capacity - total : 0) + "; refused " +
           FormatCount(pool.shared_refusals) + " request(s); reclaimed " +
           FormatCount(pool.shared_reclaimed_members) + " dead member(s) (" +
           B(pool.shared_reclaimed_bytes) + ")\n";
    out += "shared pool: this process reserved " + B(pool.member_reserved) + ", granted " +
           B(pool.member_granted) + ", used " + B(pool.member_used) + "; asked to give back " +
           FormatCount(pool.member_asked) + " time(s), answered " +
           FormatCount(pool.member_answered) + "\n";
  }
  return out;
}

}  // namespace execmem
