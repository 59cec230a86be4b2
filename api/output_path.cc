// Path patterns (api/output_path.h).
#include "api/output_path.h"

#include <time.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "executor/executor.h"
#include "platform/os.h"

namespace execmem::output_path {
namespace {

// Names of formats, which a user may write where a path is expected.
constexpr std::string_view kFormatNames[] = {"json",       "jsonl", "text", "txt",
                                             "prometheus", "prom",  "csv"};

}  // namespace

Status Check(std::string_view setting, std::string_view pattern, std::string_view accepted) {
  const std::string_view v = config::StripBlanks(pattern);
  if (v.empty()) return config::InvalidSetting(setting, pattern, "empty", accepted);
  if (v.back() == '/') {
    return config::InvalidSetting(setting, pattern, "a directory, not a file", accepted);
  }
  const std::string lower = config::AsciiLower(v);
  for (std::string_view name : kFormatNames) {
    if (lower == name) {
      return config::InvalidSetting(
          setting, pattern,
          "a format's name, not a path (write ./" + std::string(v) + " for a file of that name)",
          accepted);
    }
  }
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] != '%') continue;
    if (i + 1 == v.size()) {
      return config::InvalidSetting(setting, pattern, "a % at the end (write %% for a %)",
                                    accepted);
    }
    const char c = v[++i];
    if (c != 'p' && c != 't' && c != '%') {
      return config::InvalidSetting(
          setting, pattern, "unknown %" + std::string(1, c) + " (write %% for a %)", accepted);
    }
  }
  return Status();
}

bool IsPerProcess(std::string_view pattern) {
  for (size_t i = 0; i + 1 < pattern.size(); ++i) {
    if (pattern[i] != '%') continue;
    if (pattern[i + 1] == 'p' || pattern[i + 1] == 't') return true;
    ++i;  // %%
  }
  return false;
}

std::string Expand(std::string_view pattern, int pid, uint64_t start_unix) {
  const std::string_view v = config::StripBlanks(pattern);
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] != '%' || i + 1 == v.size()) {
      out += v[i];
      continue;
    }
    switch (v[++i]) {
      case 'p':
        out += std::to_string(pid);
        break;
      case 't': {
        const time_t t = static_cast<time_t>(start_unix);
        struct tm tm;
        char buf[32];
        if (gmtime_r(&t, &tm) != nullptr && strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm) > 0) {
          out += buf;
        } else {
          out += std::to_string(start_unix);
        }
        break;
      }
      default:  // %% (Check refused every other)
        out += v[i];
    }
  }
  return out;
}

std::string ExpandForThisProcess(std::string_view pattern) {
  return Expand(pattern, os::ProcessId(), IsPerProcess(pattern) ? os::ProcessStartTime() : 0);
}

Result<std::string> Absolute(std::string_view setting, std::string_view pattern,
                             std::string_view accepted) {
  const std::string_view v = config::StripBlanks(pattern);
  if (!v.empty() && v.front() == '/') return std::string(v);
  char cwd[4096];
  if (!os::CurrentDirectory(cwd, sizeof cwd)) {
    return config::InvalidSetting(
        setting, pattern, std::string("cannot resolve the relative path: ") + strerror(errno),
        accepted);
  }
  return std::string(cwd) + "/" + std::string(v);
}

}  // namespace execmem::output_path
