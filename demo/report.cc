#include "demo/report.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "execmem.h"

namespace execmem_demo {
namespace {

std::string Scaled(double value, const char* const* units, int count, double base) {
  int unit = 0;
  while (value >= base && unit + 1 < count) {
    value /= base;
    ++unit;
  }
  return unit == 0 ? absl::StrFormat("%.0f%s", value, units[0])
                   : absl::StrFormat("%.1f%s", value, units[unit]);
}

std::size_t NameWidth(const Groups& groups) {
  std::size_t width = 8;
  for (const auto& g : groups) width = std::max(width, g->spec().name.size());
  return width;
}

}  // namespace

std::string FormatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "K", "M", "G", "T", "P"};
  return Scaled(static_cast<double>(bytes), kUnits, 6, 1024.0);
}

std::string FormatCount(uint64_t n) {
  static constexpr const char* kUnits[] = {"", "K", "M", "G"};
  return Scaled(static_cast<double>(n), kUnits, 4, 1000.0);
}

std::string ProgressLine(const Groups& groups, double seconds) {
  std::string line = absl::StrFormat("[%5.1fs]", seconds);
  const char* separator = " ";
  for (const auto& g : groups) {
    const execmem_executor_stats_t s = g->stats();
    absl::StrAppend(&line, separator, g->spec().name, " ",
                    absl::StrFormat("%3.0f%%", 100.0 * g->fraction_done()), " ",
                    FormatBytes(s.used), "/", FormatBytes(s.max));
    if (s.spill_calls > 0) absl::StrAppend(&line, " ", s.spill_calls, " spills");
    if (s.oom_count > 0) absl::StrAppend(&line, " ", s.oom_count, " OOMs");
    separator = " | ";
  }
  return line;
}

void PrintExecutorTable(std::FILE* out, const Groups& groups) {
  const int w = static_cast<int>(NameWidth(groups));
  std::fprintf(out, "%-*s %8s %8s %9s %8s %8s %8s %7s %8s %5s\n", w, "executor", "used", "peak",
               "footprint", "initial", "max", "overhead", "spills", "spilled", "OOMs");
  for (const auto& g : groups) {
    const execmem_executor_stats_t s = g->stats();
    std::fprintf(out, "%-*s %8s %8s %9s %8s %8s %8s %7llu %8s %5llu\n", w, g->spec().name.c_str(),
                 FormatBytes(s.used).c_str(), FormatBytes(s.peak_used).c_str(),
                 FormatBytes(s.footprint).c_str(), FormatBytes(s.initial).c_str(),
                 FormatBytes(s.max).c_str(), FormatBytes(s.overhead).c_str(),
                 static_cast<unsigned long long>(s.spill_calls),
                 FormatBytes(s.bytes_spilled).c_str(),
                 static_cast<unsigned long long>(s.oom_count));
  }
  std::fprintf(
      out,
      "(peak = highest used; footprint = memory the executor holds now, allocator cost included;\n"
      " spills = spill hook calls, spilled = drop in used while they ran;\n"
      " sizes in K/M/G = KiB/MiB/GiB)\n");
}

void PrintPool(std::FILE* out) {
  execmem_pool_stats_t p{};
  p.version = EXECMEM_STATS_VERSION;
  execmem_pool_stats(&p);
  std::fprintf(
      out,
      "pool: capacity %s, reserved %s, granted %s, held %s (cached %s), returned to OS %s, "
      "arenas %llu, mapped %s, resident %s, untracked %s\n",
      FormatBytes(p.capacity).c_str(), FormatBytes(p.reserved).c_str(),
      FormatBytes(p.granted).c_str(), FormatBytes(p.held).c_str(), FormatBytes(p.cached).c_str(),
      FormatBytes(p.returned_to_os).c_str(), static_cast<unsigned long long>(p.arenas),
      FormatBytes(p.mapped).c_str(), FormatBytes(p.resident).c_str(),
      FormatBytes(p.untracked).c_str());
}

bool PrintResults(std::FILE* out, const Groups& groups) {
  const int w = static_cast<int>(NameWidth(groups));
  bool all_ok = true;
  for (const auto& g : groups) {
    const absl::Status status = g->result();
    if (!status.ok()) {
      all_ok = false;
      std::fprintf(out, "results: FAILED %-*s %s\n", w, g->spec().name.c_str(),
                   std::string(status.message()).c_str());
      continue;
    }
    std::fprintf(out,
                 "results: OK     %-*s %d task(s) in %.1fs: %s rows sorted, %s groups aggregated, "
                 "%llu runs (%s) spilled to disk\n",
                 w, g->spec().name.c_str(), g->spec().threads, g->seconds(),
                 FormatCount(g->rows_sorted()).c_str(), FormatCount(g->groups()).c_str(),
                 static_cast<unsigned long long>(g->runs_written()),
                 FormatBytes(g->bytes_written()).c_str());
  }
  return all_ok;
}

}  // namespace execmem_demo
