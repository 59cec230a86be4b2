// Start-up of the LD_PRELOAD shim: the EXECMEM_* environment, read once.
//
// Before this constructor runs (the dynamic loader, libstdc++'s emergency
// pool, constructors of libraries loaded before us) the allocator already
// works with its default budgets: it needs no initialisation. Priority 101 is
// the first a program may use, so the budgets apply before any constructor of
// the program itself allocates.
//
//   ShimStart ─ ReadProcessOptions(getenv)      allocator/options.h
//             ├ EXECMEM_POOL_CAPACITY ─> SetPoolCapacity
//             ├ ResolveBudgets ─> ConfigureDefaultExecutor
//             ├ SetOomPolicy, SetDecayMilliseconds
//             ├ pthread_atfork(ForkPrepare, ForkParent, ForkChild)
//             └ atexit(WriteStatsAtExit) when EXECMEM_STATS is set
//
// Every process that exits through exit() writes its own report, a forked
// child or an exec'd program (which inherits EXECMEM_STATS) included.
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

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "allocator/config.h"
#include "allocator/options.h"
#include "allocator/runtime.h"
#include "execmem.h"
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

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Several processes may share one EXECMEM_STATS path (a driver and the
// programs it runs, a forked child): a regular file is replaced whole with
// rename(2), so a reader never sees two reports interleaved. Anything else
// (a FIFO, /dev/stderr) is written in place.
bool WriteStatsFile(const char* path, std::string_view text) {
  struct stat st;
  const bool in_place = stat(path, &st) == 0 && !S_ISREG(st.st_mode);
  const std::string target = in_place ? std::string(path) : absl::StrCat(path, ".tmp.", getpid());
  const int fd = open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool written = WriteAll(fd, text.data(), text.size());
  const bool closed = close(fd) == 0;
  if (in_place) return written && closed;
  if (written && closed && rename(target.c_str(), path) == 0) return true;
  const int saved = errno;
  unlink(target.c_str());
  errno = saved;
  return false;
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
  } else if (!WriteStatsFile(g_stats_path, report)) {
    WriteStderr(std::string("execmem: EXECMEM_STATS: cannot write ") + g_stats_path + ": " +
                strerror(errno) + "\n");
  }
  execmem_free(report);
  errno = saved_errno;
}

absl::Status Configure(const ProcessOptions& options) {
  if (!options.pool_capacity.empty()) {
    absl::StatusOr<uint64_t> capacity =
        config::ParseSize("EXECMEM_POOL_CAPACITY", options.pool_capacity);
    if (!capacity.ok()) return capacity.status();
    if (absl::Status status = internal::SetPoolCapacity(*capacity); !status.ok()) {
      return config::InvalidSetting("EXECMEM_POOL_CAPACITY", options.pool_capacity,
                                    config::FromAbsl(status.message()), config::kSizeAccepted);
    }
  }
  absl::StatusOr<config::Budgets> budgets = config::ResolveBudgets(
      options.initial, options.max, options.overhead, internal::PoolCapacity(), "EXECMEM_");
  if (!budgets.ok()) return budgets.status();
  if (absl::Status status =
          internal::ConfigureDefaultExecutor(budgets->initial, budgets->max, budgets->overhead);
      !status.ok()) {
    // ResolveBudgets accepted them, so what failed is the reservation itself.
    return absl::InvalidArgumentError(
        "cannot reserve EXECMEM_INITIAL=\"" + options.initial + "\" + EXECMEM_OVERHEAD=\"" +
        options.overhead +
        "\" (\"\" is the default): " + std::string(config::FromAbsl(status.message())));
  }
  internal::SetOomPolicy(options.oom == ProcessOptions::Oom::kAbort
                             ? internal::OomPolicy::kAbort
                             : internal::OomPolicy::kReturnNull);
  internal::SetDecayMilliseconds(options.decay_ms);
  internal::SetEmergencyReserve(options.emergency_reserve);
  return absl::OkStatus();
}

// The stats path made absolute, checked now rather than at exit: its
// directory must exist and be writable. Leaked on purpose (see g_stats_path).
absl::StatusOr<const char*> ResolveStatsPath(const std::string& path) {
  const auto invalid = [&](const std::string& reason) {
    return config::InvalidSetting("EXECMEM_STATS", path, reason,
                                  "off (or 0), stderr (or 1), or a file path");
  };
  std::string absolute = path;
  if (path.front() != '/') {
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) == nullptr) {
      return invalid(std::string("cannot resolve the relative path: ") + strerror(errno));
    }
    absolute = std::string(cwd) + "/" + path;
  }
  // A FIFO or device (/dev/stderr) is written in place; a file is replaced
  // with rename(2), which needs its directory.
  struct stat st;
  if (stat(absolute.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    if (access(absolute.c_str(), W_OK) != 0) {
      return invalid(std::string("not writable: ") + strerror(errno));
    }
    return strdup(absolute.c_str());
  }
  const std::string dir = absolute.substr(0, absolute.rfind('/') + 1);
  if (access(dir.c_str(), W_OK | X_OK) != 0) {
    return invalid("directory " + dir + " is not writable: " + strerror(errno));
  }
  return strdup(absolute.c_str());
}

__attribute__((constructor(101))) void ShimStart() {
  absl::StatusOr<ProcessOptions> options =
      options::ReadProcessOptions([](const char* name) -> const char* { return getenv(name); });
  if (!options.ok()) RefuseToStart(config::FromAbsl(options.status().message()));
  if (absl::Status status = Configure(*options); !status.ok()) {
    RefuseToStart(config::FromAbsl(status.message()));
  }

  // Registered after everything that may allocate in libraries loaded before
  // us, so that our prepare handler runs last and our child handler first.
  if (const int rc =
          pthread_atfork(internal::ForkPrepare, internal::ForkParent, internal::ForkChild);
      rc != 0) {
    RefuseToStart(std::string("pthread_atfork failed: ") + strerror(rc));
  }

  if (options->stats == ProcessOptions::StatsSink::kNone) return;
  if (options->stats == ProcessOptions::StatsSink::kFile) {
    absl::StatusOr<const char*> path = ResolveStatsPath(options->stats_path);
    if (!path.ok()) RefuseToStart(config::FromAbsl(path.status().message()));
    g_stats_path = *path;
  }
  g_stats_sink = options->stats;
  // Registered before main, so it runs after the program's own atexit
  // handlers and static destructors: the report sees the final state.
  if (atexit(WriteStatsAtExit) != 0) RefuseToStart("atexit failed for EXECMEM_STATS");
}

}  // namespace
}  // namespace execmem::shim
