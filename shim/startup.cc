// Start-up of the LD_PRELOAD shim: the EXECMEM_* environment, read once.
//
// Before this constructor runs (the dynamic loader, libstdc++'s emergency
// pool, constructors of libraries loaded before us) the allocator already
// works with its default budgets: it needs no initialisation. Priority 101 is
// the first a program may use, so the budgets apply before any constructor of
// the program itself allocates.
//
//   ShimStart ─ KeepStderr (a dup of fd 2 for reports at exit)
//             ├ ReadProcessOptions(getenv)      api/options.h
//             ├ EXECMEM_SHARED ─> JoinSharedPool  executor/shared.h (and its
//             │   answering thread)
//             ├ UnknownVariableWarnings(environ): a warning per misspelt EXECMEM_*
//             ├ EXECMEM_POOL_CAPACITY ─> SetPoolCapacity
//             ├ ResolveBudgets ─> ConfigureDefaultExecutor
//             ├ SetOomPolicy, SetDecayMilliseconds, SetHugePages
//             ├ pthread_atfork(ForkPrepare, ForkParent, ForkChild)
//             ├ on_exit(WriteStatsAtExit) when EXECMEM_STATS is set
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
#include "budget/budget.h"
#include "execmem.h"
#include "executor/executor.h"
#include "platform/os.h"
#include "pool/pool.h"

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
  os::ExitNow(2);
}

// The JSON report with the status the program passed to exit() (on_exit
// gives it; atexit does not), so that execmem-advise can tell a program that
// was refused memory and failed from one that adapted and exited 0.
char* StatsJsonWithExitStatus(int status) {
  char* report = execmem_stats_json();
  if (report == nullptr) return nullptr;
  std::string_view json(report);
  const size_t end = json.rfind('}');
  if (end == std::string_view::npos) return report;
  const std::string field = ",\"exit_status\":" + std::to_string(status);
  char* out = static_cast<char*>(execmem_malloc(json.size() + field.size() + 1));
  if (out == nullptr) return report;
  memcpy(out, report, end);
  memcpy(out + end, field.data(), field.size());
  memcpy(out + end + field.size(), report + end, json.size() - end + 1);
  execmem_free(report);
  return out;
}

void WriteStatsAtExit(int status, void*) {
  const os::ErrnoKeeper keep_errno;
  const bool to_file = g_stats_sink == ProcessOptions::StatsSink::kFile;
  char* report = to_file ? StatsJsonWithExitStatus(status) : execmem_stats_text();
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
}

// The reports (EXECMEM_STATS, EXECMEM_TIMELINE, EXECMEM_PROMETHEUS) are built
// with the program's allocator, in its budget: a max below this cannot hold
// them beside the smallest program, and a refused allocation inside the
// shim's own C++ code at start-up or exit ends in std::terminate. Measured
// with /bin/true on main 441b5f6: with a timeline, EXECMEM_MAX=600k aborted
// and 700k ran; here 1m ran 20 times of 20 with stats, timeline and
// Prometheus file at once.
constexpr uint64_t kMinMaxWithReports = 1 << 20;

// The first report variable set, or nullptr.
const char* ReportVariable(const ProcessOptions& options) {
  if (options.stats != ProcessOptions::StatsSink::kNone) return "EXECMEM_STATS";
  if (!options.timeline_path.empty()) return "EXECMEM_TIMELINE";
  if (!options.prometheus_path.empty()) return "EXECMEM_PROMETHEUS";
  return nullptr;
}

// EXECMEM_SHARED: joins the shared pool before the default executor reserves
// its initial + overhead, so that the reservation is the pool's. A refused
// pool is one line on stderr; the process then runs with a pool of its own,
// or exits with status 1 under EXECMEM_SHARED_REQUIRED=1.
Status JoinSharedPool(const ProcessOptions& options) {
  if (options.shared.empty()) return Status();
  internal::SharedJoinSettings join;
  join.name = options.shared.c_str();
  join.mode = options.shared_mode;
  join.wait_ms = options.shared_wait_ms;
  if (!options.shared_capacity.empty()) {
    Result<uint64_t> capacity =
        config::ParseSize("EXECMEM_SHARED_CAPACITY", options.shared_capacity);
    if (!capacity.ok()) return capacity.status();
    join.capacity = *capacity;
  }
  std::string note;
  const Status status = internal::JoinSharedPool(join, &note);
  const bool refused = !status.ok();
  const std::string message = refused ? status.message() : note;
  if (!message.empty()) {
    WriteStderr(message +
                (refused && !options.shared_required ? "; running with a pool of its own" : "") +
                "\n");
  }
  if (refused && options.shared_required) os::ExitNow(1);
  return Status();
}

Status Configure(const ProcessOptions& given) {
  if (Status status = JoinSharedPool(given); !status.ok()) return status;
  ProcessOptions options = given;
  // A member of a shared pool borrows what it uses: its default executor
  // reserves no initial unless EXECMEM_INITIAL says so (the default, 1g per
  // process, would hold the pool's capacity for processes that may not use it).
  if (budget::shared::ProcessMember() != nullptr && options.initial.empty()) options.initial = "0";
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
  if (const char* report = ReportVariable(options);
      report != nullptr && budgets->max < kMinMaxWithReports) {
    return config::InvalidArgument(
        "EXECMEM_MAX=\"" + options.max + "\" is too small for " + report +
        ": the reports are built inside the program's budget and need 1m of it; raise "
        "EXECMEM_MAX to 1m or more, or turn " +
        report + " off");
  }
  if (Status status =
          internal::ConfigureDefaultExecutor(budgets->initial, budgets->max, budgets->overhead);
      !status.ok()) {
    // ResolveBudgets accepted them, so what failed is the reservation itself.
    return config::InvalidArgument("cannot reserve EXECMEM_INITIAL=\"" + options.initial +
                                   "\" + EXECMEM_OVERHEAD=\"" + options.overhead +
                                   "\" (\"\" is the default): " + status.message());
  }
  switch (options.oom) {
    case ProcessOptions::Oom::kNull:
      internal::SetOomPolicy(internal::OomPolicy::kReturnNull);
      break;
    case ProcessOptions::Oom::kReport:
      internal::SetOomPolicy(internal::OomPolicy::kReport);
      break;
    case ProcessOptions::Oom::kAbort:
      internal::SetOomPolicy(internal::OomPolicy::kAbort);
      break;
  }
  internal::SetDecayMilliseconds(options.decay_ms);
  internal::SetHugePages(options.huge_pages);
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

// The pool's first arena (256 MiB of address space), mapped now: when the
// process may not map it (an address-space limit: ulimit -v), say so in one
// line, without allocating, and stop; the set-up below builds strings, and an
// allocation failing there ended in std::terminate's bare "terminate called
// without an active exception" (until 2026-12-07). Only the arena: a probe
// malloc here would set up the thread's heap before the options are read.
void CheckFirstArena() {
  if (pool::EnsureFirstArena()) return;
  constexpr std::string_view kNoArena =
      "execmem: cannot map the first 256 MiB arena (out of address space: an address-space "
      "limit such as ulimit -v must leave at least 320 MiB)\n";
  os::WriteStderr(kNoArena.data(), kNoArena.size());
  os::ExitNow(2);
}

__attribute__((constructor(101))) void ShimStart() {
  os::KeepStderr();  // before the program can close fd 2 (see WriteStatsAtExit)
  CheckFirstArena();
  Result<ProcessOptions> options =
      options::ReadProcessOptions([](const char* name) -> const char* { return os::GetEnv(name); });
  if (!options.ok()) RefuseToStart(options.status().message());
  if (const std::string warnings = options::UnknownVariableWarnings(os::Environment());
      !warnings.empty()) {
    WriteStderr(warnings);
  }
  if (Status status = Configure(*options); !status.ok()) {
    RefuseToStart(status.message());
  }

  // Registered after everything that may allocate in libraries loaded before
  // us, so that our prepare handler runs last and our child handler first.
  if (const int rc = os::AtFork(internal::ForkPrepare, internal::ForkParent, internal::ForkChild);
      rc != 0) {
    RefuseToStart(std::string("pthread_atfork failed: ") + strerror(rc));
  }
  // A forked child of a shared pool's member takes a slot and an answering
  // thread of its own (after the allocator's child handler: registered
  // later, run later).
  if (budget::shared::ProcessMember() != nullptr) {
    if (const int rc = internal::RegisterSharedForkHandler(); rc != 0) {
      RefuseToStart(std::string("pthread_atfork failed: ") + strerror(rc));
    }
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
    if (os::OnExit(WriteStatsAtExit, nullptr) != 0)
      RefuseToStart("on_exit failed for EXECMEM_STATS");
  }
  if (Status status = StartTimeline(*options); !status.ok()) {
    RefuseToStart(std::string(status.message()));
  }
}

}  // namespace
}  // namespace execmem::shim
