#include "demo/spill_dir.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace execmem_demo {
namespace {

// The owned directory, for the signal handler: a fixed buffer, since a
// handler may not allocate or read a std::string being destroyed.
char g_owned_path[4096];
volatile sig_atomic_t g_owned = 0;

constexpr int kCleanupSignals[] = {SIGINT, SIGTERM, SIGHUP};

void RemoveAndReraise(int signal_number) {
  if (g_owned != 0) ::rmdir(g_owned_path);
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

void RegisterForSignals(const std::string& path) {
  if (path.size() >= sizeof(g_owned_path)) return;  // left behind on a signal, then
  std::memcpy(g_owned_path, path.c_str(), path.size() + 1);
  g_owned = 1;
  for (const int s : kCleanupSignals) ::signal(s, RemoveAndReraise);
}

}  // namespace

absl::StatusOr<SpillDir> SpillDir::Make(const std::string& requested) {
  if (!requested.empty()) {
    struct stat st;
    if (::stat(requested.c_str(), &st) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--spill_dir=", requested, ": ", std::strerror(errno)));
    }
    if (!S_ISDIR(st.st_mode) || ::access(requested.c_str(), W_OK | X_OK) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--spill_dir=", requested, ": not a writable directory"));
    }
    return SpillDir(requested, false);
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/execmem-demo-XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create a spill directory ", pattern, ": ", std::strerror(errno)));
  }
  RegisterForSignals(pattern);
  return SpillDir(pattern, true);
}

SpillDir::SpillDir(SpillDir&& other) noexcept
    : path_(std::move(other.path_)), owned_(other.owned_) {
  other.owned_ = false;
}

SpillDir::~SpillDir() {
  if (!owned_) return;
  g_owned = 0;
  ::rmdir(path_.c_str());
}

}  // namespace execmem_demo
