// execmem-demo: several executors in one process, each running task threads
// that aggregate and sort generated rows whose working set exceeds the
// executor's initial budget. The starved executor must spill its sort
// buffers to disk through its spill hook and still get the right answers.
//
// Exit status: 0 all results right, 1 a task failed or a result was wrong,
// 2 bad flags or configuration.
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "demo/executor_group.h"
#include "demo/executor_spec.h"
#include "demo/report.h"
#include "demo/spill_dir.h"
#include "execmem.h"
#include "execmem.hpp"

ABSL_FLAG(std::string, executors, "",
          "comma-separated executors, each name:initial:max[:overhead[:threads]]; empty means " +
              std::string(execmem_demo::kDefaultExecutors));
ABSL_FLAG(std::string, config, "",
          "file with one executor per line (same fields as --executors, '#' comments); "
          "instead of --executors");
ABSL_FLAG(uint64_t, rows, 5'000'000,
          "rows each task generates, aggregates and sorts (16 bytes each)");
ABSL_FLAG(uint64_t, seed, 42, "seed of the generated rows");
ABSL_FLAG(
    std::string, spill_dir, "",
    "existing directory for spill files; empty means a fresh directory under $TMPDIR or /tmp, "
    "removed at exit");
ABSL_FLAG(bool, quiet, false, "no progress lines");
ABSL_FLAG(double, progress_interval, 1.0, "seconds between progress lines");
ABSL_FLAG(std::string, json, "", "also write execmem's stats as JSON to this file at the end");
ABSL_FLAG(bool, stats_text, false, "also print execmem's own stats report at the end");
ABSL_FLAG(std::string, timeline, "",
          "write execmem's timeline (a JSON line per sample, execmem_timeline_start) to this "
          "file; read it with execmem-advise and execmem-plot");
ABSL_FLAG(int, timeline_ms, 100, "milliseconds between two samples of --timeline");

namespace execmem_demo {
namespace {

constexpr int kExitWrong = 1;
constexpr int kExitUsage = 2;
constexpr uint64_t kMaxRows = uint64_t{1} << 32;

absl::StatusOr<std::vector<ExecutorSpec>> ExecutorSpecs() {
  const std::string list = absl::GetFlag(FLAGS_executors);
  const std::string config = absl::GetFlag(FLAGS_config);
  if (!list.empty() && !config.empty()) {
    return absl::InvalidArgumentError("give either --executors or --config, not both");
  }
  if (!config.empty()) return ReadExecutorConfig(config);
  return ParseExecutorList(list.empty() ? kDefaultExecutors : list);
}

void ShowProgress(const Groups& groups, std::chrono::steady_clock::time_point start) {
  using Clock = std::chrono::steady_clock;
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(absl::GetFlag(FLAGS_progress_interval)));
  auto line_now = [&] {
    return ProgressLine(groups, std::chrono::duration<double>(Clock::now() - start).count());
  };
  auto all_done = [&] {
    for (const auto& g : groups) {
      if (!g->done()) return false;
    }
    return true;
  };
  for (auto next = start + interval; !all_done();) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (Clock::now() < next) continue;
    next += interval;
    // Redraw in place on a terminal; one line per report in a log.
    std::printf(tty ? "\r%s\x1b[K" : "%s\n", line_now().c_str());
    std::fflush(stdout);
  }
  if (tty) std::printf("\r%s\x1b[K\n", line_now().c_str());
}

int Run() {
  absl::StatusOr<std::vector<ExecutorSpec>> specs = ExecutorSpecs();
  if (!specs.ok()) {
    std::fprintf(stderr, "execmem-demo: %s\n", std::string(specs.status().message()).c_str());
    return kExitUsage;
  }
  const uint64_t rows = absl::GetFlag(FLAGS_rows);
  if (rows == 0 || rows > kMaxRows) {
    std::fprintf(stderr, "execmem-demo: --rows=%llu: must be from 1 to %llu\n",
                 static_cast<unsigned long long>(rows), static_cast<unsigned long long>(kMaxRows));
    return kExitUsage;
  }
  const double interval = absl::GetFlag(FLAGS_progress_interval);
  if (!(interval >= 0.05 && interval <= 3600)) {
    std::fprintf(stderr,
                 "execmem-demo: --progress_interval=%g: must be from 0.05 to 3600 seconds\n",
                 interval);
    return kExitUsage;
  }
  absl::StatusOr<SpillDir> spill_dir = SpillDir::Make(absl::GetFlag(FLAGS_spill_dir));
  if (!spill_dir.ok()) {
    std::fprintf(stderr, "execmem-demo: %s\n", std::string(spill_dir.status().message()).c_str());
    return kExitUsage;
  }

  const Workload workload{rows, absl::GetFlag(FLAGS_seed), spill_dir->path()};
  std::printf(
      "execmem-demo: %zu executor(s); each task aggregates and sorts %s rows (%s of sort buffer); "
      "spilling to %s\n",
      specs->size(), FormatCount(rows).c_str(), FormatBytes(rows * sizeof(Row)).c_str(),
      spill_dir->path().c_str());
  Groups groups;
  for (std::size_t i = 0; i < specs->size(); ++i) {
    const ExecutorSpec& s = (*specs)[i];
    std::printf("  %-8s initial %-6s max %-6s overhead %-8s %d task(s)\n", s.name.c_str(),
                s.initial.empty() ? "default" : s.initial.c_str(),
                s.max.empty() ? "default" : s.max.c_str(),
                s.overhead.empty() ? "default" : s.overhead.c_str(), s.threads);
    absl::StatusOr<std::unique_ptr<ExecutorGroup>> group =
        ExecutorGroup::Create(s, static_cast<int>(i), workload);
    if (!group.ok()) {
      std::fprintf(stderr, "execmem-demo: %s\n", std::string(group.status().message()).c_str());
      return kExitUsage;
    }
    groups.push_back(*std::move(group));
  }
  std::fflush(stdout);

  const std::string timeline = absl::GetFlag(FLAGS_timeline);
  if (!timeline.empty() &&
      execmem_timeline_start(timeline.c_str(), absl::GetFlag(FLAGS_timeline_ms)) != 0) {
    std::fprintf(stderr, "execmem-demo: --timeline: %s\n", execmem_last_error());
    return kExitUsage;
  }
  const auto start = std::chrono::steady_clock::now();
  for (const auto& g : groups) g->Start();
  if (!absl::GetFlag(FLAGS_quiet)) ShowProgress(groups, start);
  for (const auto& g : groups) g->Join();
  // The final sample, while the executors still exist.
  if (!timeline.empty()) execmem_timeline_stop();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::printf("\n");
  PrintExecutorTable(stdout, groups);
  PrintPool(stdout);
  std::printf("\n");
  const bool all_ok = PrintResults(stdout, groups);
  std::printf("total %.1fs\n", seconds);
  if (absl::GetFlag(FLAGS_stats_text)) std::printf("\n%s", execmem::StatsText().c_str());

  int exit_code = all_ok ? 0 : kExitWrong;
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    std::ofstream json(path);
    json << execmem::StatsJson() << "\n";
    json.close();
    if (!json) {
      std::fprintf(stderr, "execmem-demo: cannot write --json=%s: %s\n", path.c_str(),
                   std::strerror(errno));
      exit_code = kExitWrong;
    }
  }
  std::fflush(stdout);
  return exit_code;
}

}  // namespace
}  // namespace execmem_demo

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "several execmem executors aggregating and sorting generated rows; the starved one spills.\n"
      "  execmem-demo [--executors=name:initial:max[:overhead[:threads]],... | --config=FILE]\n"
      "               [--rows=N] [--seed=N] [--spill_dir=DIR] [--quiet] [--json=PATH]\n"
      "               [--timeline=PATH [--timeline_ms=N]]");
  // --help lists the flags of the file named like the program by default;
  // ours live in demo/main.cc.
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "demo/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  const std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    std::fprintf(stderr, "execmem-demo: unexpected argument '%s' (see --help)\n", positional[1]);
    return execmem_demo::kExitUsage;
  }
  return execmem_demo::Run();
}
