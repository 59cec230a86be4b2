// Start-up of the LD_PRELOAD shim: the EXECMEM_* environment, read once.
//
// Before this constructor runs (the dynamic loader, libstdc++'s emergency
// pool, constructors of libraries loaded before us) the allocator already
// works with its default budgets: it needs no initialisation. Priority 101 is
// the first a program may use, so the budgets apply before any constructor of
// the program itself allocates.
//
//   ShimStart ─ ReadProcessOptions(getenv)      api/options.h
//             ├ EXECMEM_POOL_CAPACITY ─> SetPoolCapacity
//             ├ ResolveBudgets ─> ConfigureDefaultExecutor
//             ├ SetOomPolicy, SetDecayMilliseconds
//             ├ pthread_atfork(ForkPrepare, ForkParent, ForkChild)
//             ├ atexit(WriteStatsAtExit) when EXECMEM_STATS is set
//             └ timeline::Start when EXECMEM_TIMELINE or EXECMEM_PROMETHEUS is
//               set (its own atexit and fork handlers, registered after ours)
//
// Every process that exits through exit() writes its own report, a forked
// child or an exec'd program (which inherits EXECMEM_STATS) included; with
// %p in the path (api/output_path.h) each into its own file.
//
// A value that cannot be honoured stops the program before main with one line
// on stderr and exit status 2: running with a budget other than the one asked
// for would be worse than not running.
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <string_view>

#include "api/api.h"
#include "execmem.h"
#include "executor/executor.h"
#include "platform/os.h"

namespace execmem::shim {
namespace {

using options::ProcessOptions;

// Set once by the constructor, read by the at-exit writer. The path is made
// absolute at start-up, because the program may chdir before it exits.
ProcessOptions::StatsSink g_stats_sink = ProcessOptions::StatsSink::kNone;
const char* g_stats_path = nullptr;  // leaked on purpose: must outlive static destructors

void WriteStderr(std::string_view text) { os::WriteStderr(text.data(), text.size()); }

[[noreturn]] void RefuseToStart(std::string_view message) {
  std::string line = "execmem: " + std::string(message);
  for (char& c : line) {
    if (c == '\n') c = ' ';
  }
  line.push_back('\n');
  WriteStderr(line);
  _exit(2);
}

void WriteStatsAtExit() {
  const int saved_errno = errno;
  const bool to_file = g_stats_sink == ProcessOptions::StatsSink::kFile;
  char* report = to_file ? execmem_stats_json() : execmem_stats_text();
  if (report == nullptr) {
    WriteStderr("execmem: EXECMEM_STATS: cannot build the report (out of memory)\n");
  } else if (!to_file) {
    std::string_view text(report);
    WriteStderr(text);
    if (!text.empty() && text.back() != '\n') WriteStderr("\n");
  } else {
    // Expanded now, so that a forked child names its own file (%p). Several
    // processes may share a path without %p: the file is replaced whole
    // (os::ReplaceFile), so a reader never sees two reports interleaved.
    const std::string path = output_path::ExpandForThisProcess(g_stats_path);
    if (!os::ReplaceFile(path.c_str(), report, strlen(report))) {
      WriteStderr("execmem: EXECMEM_STATS: cannot write " + path + ": " + strerror(errno) + "\n");
    }
  }
  execmem_free(report);
  errno = saved_errno;
}

Status Configure(const ProcessOptions& options) {
  if (!options.pool_capacity.empty()) {
    Result<uint64_t> capacity = config::ParseSize("EXECMEM_POOL_CAPACITY", options.pool_capacity);
    if (!capacity.ok()) return capacity.status();
    if (Status status = internal::SetPoolCapacity(*capacity); !status.ok()) {
      return config::InvalidSetting("EXECMEM_POOL_CAPACITY", options.pool_capacity,
                                    status.message(), config::kSizeAccepted);
    }
  }
  Result<config::Budgets> budgets = config::ResolveBudgets(
      options.initial, options.max, options.overhead, internal::PoolCapacity(), "EXECMEM_");
  if (!budgets.ok()) return budgets.status();
  if (Status status =
          internal::ConfigureDefaultExecutor(budgets->initial, budgets->max, budgets->overhead);
      !status.ok()) {
    // ResolveBudgets accepted them, so what failed is the reservation itself.
    return config::InvalidArgument("cannot reserve EXECMEM_INITIAL=\"" + options.initial +
                                   "\" + EXECMEM_OVERHEAD=\"" + options.overhead +
                                   "\" (\"\" is the default): " + status.message());
  }
  internal::SetOomPolicy(options.oom == ProcessOptions::Oom::kAbort
                             ? internal::OomPolicy::kAbort
                             : internal::OomPolicy::kReturnNull);
  internal::SetDecayMilliseconds(options.decay_ms);
  internal::SetEmergencyReserve(options.emergency_reserve);
  return Status();
}

// The stats path pattern made absolute, checked now rather than at exit:
// the directory of this process's file must exist and be writable. Leaked
// on purpose (see g_stats_path).
Result<const char*> ResolveStatsPath(const std::string& pattern) {
  const std::string_view accepted = options::FindOption("stats")->accepted;
  Result<std::string> absolute = output_path::Absolute("EXECMEM_STATS", pattern, accepted);
  if (!absolute.ok()) return absolute.status();
  const std::string path = output_path::ExpandForThisProcess(*absolute);
  if (!os::CanCreateFile(path.c_str())) {
    return config::InvalidSetting("EXECMEM_STATS", pattern,
                                  "cannot create " + path + ": " + strerror(errno), accepted);
  }
  return strdup(absolute->c_str());
}

// EXECMEM_TIMELINE / EXECMEM_PROMETHEUS: the sampler (api/timeline.h)
// writes its first sample now, so an unwritable file stops the program here.
Status StartTimeline(const ProcessOptions& options) {
  if (options.timeline_path.empty() && options.prometheus_path.empty()) return Status();
  timeline::Settings settings;
  settings.timeline_pattern = options.timeline_path;
  settings.prometheus_pattern = options.prometheus_path;
  settings.interval_ms = options.timeline_ms;
  settings.max_bytes = options.timeline_max;
  return timeline::Start(settings);
}

__attribute__((constructor(101))) void ShimStart() {
  Result<ProcessOptions> options =
      options::ReadProcessOptions([](const char* name) -> const char* { return os::GetEnv(name); });
  if (!options.ok()) RefuseToStart(options.status().message());
  if (Status status = Configure(*options); !status.ok()) {
    RefuseToStart(status.message());
  }

  // Registered after everything that may allocate in libraries loaded before
  // us, so that our prepare handler runs last and our child handler first.
  if (const int rc = os::AtFork(internal::ForkPrepare, internal::ForkParent, internal::ForkChild);
      rc != 0) {
    RefuseToStart(std::string("pthread_atfork failed: ") + strerror(rc));
  }

  if (options->stats != ProcessOptions::StatsSink::kNone) {
    if (options->stats == ProcessOptions::StatsSink::kFile) {
      Result<const char*> path = ResolveStatsPath(options->stats_path);
      if (!path.ok()) RefuseToStart(std::string(path.status().message()));
      g_stats_path = *path;
    }
    g_stats_sink = options->stats;
    // Registered before main, so it runs after the program's own atexit
    // handlers and static destructors: the report sees the final state.
    if (atexit(WriteStatsAtExit) != 0) RefuseToStart("atexit failed for EXECMEM_STATS");
  }
  if (Status status = StartTimeline(*options); !status.ok()) {
    RefuseToStart(std::string(status.message()));
  }
}

}  // namespace
}  // namespace execmem::shim
