// The timeline sampler and the C API of the observability outputs
// (api/timeline.h; execmem_timeline_start / _stop,
// execmem_stats_prometheus in include/execmem.h).
//
// Lock rule: g_state->mu guards every field of State and every write of the
// two files; it is taken before any allocator lock (the fork handlers
// registered here run before the allocator's: registered later, prepared
// first) and never from an allocation path.
#include "api/timeline.h"

#include <pthread.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "api/output_path.h"
#include "api/prometheus_format.h"
#include "api/snapshot.h"
#include "api/stats_format.h"
#include "cache/cache.h"
#include "execmem.h"
#include "executor/executor.h"
#include "platform/os.h"

namespace execmem::timeline {
namespace {

// One output file of the sampler.
struct Output {
  std::string pattern;      // absolute, unexpanded; "" for none
  std::string path;         // expanded for this process; "" until its first write here
  bool suffix_pid = false;  // a forked child of a pattern without %p
  bool failed = false;      // a write failed: reported once, then skipped

  std::string ExpandHere() const {
    std::string p = output_path::ExpandForThisProcess(pattern);
    if (suffix_pid) p += "." + std::to_string(os::ProcessId());
    return p;
  }
};

struct State {
  std::mutex mu;
  uint64_t generation = 0;  // bumped by start, stop and fork: older threads end
  bool active = false;
  Output timeline, prometheus;
  uint64_t interval_ms = kDefaultIntervalMs;
  uint64_t max_bytes = kDefaultMaxBytes;
  uint64_t written = 0;   // bytes of this process's timeline file
  bool full = false;      // max_bytes reached: periodic samples ended
  uint64_t first_ms = 0;  // os::NowMs() of the first sample; 0 before it
  bool hooks_registered = false;
};

// Leaked on purpose: the sampler thread and the at-exit writer may run
// after static destructors.
State& S() {
  static State* state = new State;
  return *state;
}

void Complain(std::string_view what, const std::string& path) {
  const std::string line = "execmem: " + std::string(what) + ": cannot write " + path + ": " +
                           strerror(errno) + " (no more writes to it)\n";
  os::WriteStderr(line.data(), line.size());
}

// Writes one sample to each output. Returns the first failure as an errno
// value (0: written), for Start to report; later failures go to stderr once.
int WriteLocked(State& s, bool final, bool quiet = false) {
  execmem_pool_stats_t pool;
  execmem_pool_stats(&pool);
  const std::vector<execmem_executor_stats_t> executors = AllStats();
  const uint64_t now = os::NowMs();
  if (s.first_ms == 0) s.first_ms = now == 0 ? 1 : now;
  const uint64_t t = now - s.first_ms;
  int error = 0;
  if (!s.timeline.pattern.empty() && !s.timeline.failed) {
    Output& o = s.timeline;
    bool ok = true;
    if (o.path.empty()) {
      o.path = o.ExpandHere();
      const std::string header = FormatHeader(ThisProcess(), s.interval_ms, s.max_bytes);
      ok = os::ReplaceFile(o.path.c_str(), header.data(), header.size());
      s.written = header.size();
    }
    if (ok) {
      std::string line =
          FormatSample(t, os::WallClockMs(), os::ProcessId(), final, pool, executors);
      if (!final && s.full) {
        line.clear();
      } else if (!final && s.written + line.size() > s.max_bytes) {
        line = FormatNote("EXECMEM_TIMELINE_MAX (" + std::to_string(s.max_bytes) +
                              " bytes) reached: periodic samples end; the last "
                              "sample follows at exit",
                          t);
        s.full = true;
      }
      if (!line.empty()) {
        ok = os::AppendToFile(o.path.c_str(), line.data(), line.size());
        s.written += line.size();
      }
    }
    if (!ok) {
      error = errno;
      o.failed = true;
      if (!quiet) Complain("EXECMEM_TIMELINE", o.path);
    }
  }
  if (!s.prometheus.pattern.empty() && !s.prometheus.failed) {
    Output& o = s.prometheus;
    if (o.path.empty()) o.path = o.ExpandHere();
    const std::string text = FormatStatsPrometheus(pool, executors, ThisProcess());
    if (!os::ReplaceFile(o.path.c_str(), text.data(), text.size())) {
      if (error == 0) error = errno;
      o.failed = true;
      if (!quiet) Complain("EXECMEM_PROMETHEUS", o.path);
    }
  }
  return error;
}

void* SamplerMain(void* arg) {
  const uint64_t generation = reinterpret_cast<uintptr_t>(arg);
  State& s = S();
  uint64_t next = os::NowMs();
  for (;;) {
    uint64_t interval;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      if (s.generation != generation || !s.active) return nullptr;
      interval = s.interval_ms;
    }
    // Late samples are not made up for: a loaded machine gets fewer.
    next += interval;
    const uint64_t now = os::NowMs();
    if (next > now) {
      os::SleepMs(next - now);
    } else {
      next = now;
    }
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.generation != generation || !s.active) return nullptr;
    WriteLocked(s, /*final=*/false);
  }
}

bool StartThreadLocked(State& s) {
  return os::StartDetachedThread(&SamplerMain,
                                 reinterpret_cast<void*>(static_cast<uintptr_t>(s.generation)));
}

bool StopLocked(State& s) {
  if (!s.active) return false;
  WriteLocked(s, /*final=*/true);
  s.active = false;
  ++s.generation;
  return true;
}

void AtExit() {
  const os::ErrnoKeeper keep_errno;
  Stop();
}

// A pattern checked and made absolute; "" stays "".
Result<std::string> Resolve(std::string_view setting, const std::string& pattern) {
  if (pattern.empty()) return std::string();
  if (Status bad = output_path::Check(setting, pattern); !bad.ok()) return bad;
  Result<std::string> absolute = output_path::Absolute(setting, pattern);
  if (!absolute.ok()) return absolute.status();
  const std::string path = output_path::ExpandForThisProcess(*absolute);
  if (!os::CanCreateFile(path.c_str())) {
    return config::InvalidSetting(setting, pattern,
                                  "cannot create " + path + ": " + strerror(errno),
                                  output_path::kPatternAccepted);
  }
  return absolute;
}

}  // namespace

Status Start(const Settings& settings) {
  const std::string_view timeline_setting = settings.timeline_setting;
  const std::string_view prometheus_setting = settings.prometheus_setting;
  if (settings.timeline_pattern.empty() && settings.prometheus_pattern.empty()) {
    return config::InvalidArgument("invalid " + std::string(timeline_setting) +
                                   ": no file to write");
  }
  if (settings.interval_ms == 0 || settings.interval_ms > kMaxIntervalMs) {
    return config::InvalidSetting(settings.interval_setting, std::to_string(settings.interval_ms),
                                  "out of range", kIntervalAccepted);
  }
  Result<std::string> timeline = Resolve(timeline_setting, settings.timeline_pattern);
  if (!timeline.ok()) return timeline.status();
  Result<std::string> prometheus = Resolve(prometheus_setting, settings.prometheus_pattern);
  if (!prometheus.ok()) return prometheus.status();

  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  StopLocked(s);
  ++s.generation;
  s.timeline = Output();
  s.timeline.pattern = *timeline;
  s.prometheus = Output();
  s.prometheus.pattern = *prometheus;
  s.interval_ms = settings.interval_ms;
  s.max_bytes = std::max(settings.max_bytes, kMinMaxBytes);
  s.written = 0;
  s.full = false;
  s.first_ms = 0;
  if (const int error = WriteLocked(s, /*final=*/false, /*quiet=*/true); error != 0) {
    const bool timeline_failed = s.timeline.failed;
    const std::string& failed = timeline_failed ? s.timeline.path : s.prometheus.path;
    ++s.generation;
    return config::InvalidSetting(
        timeline_failed ? timeline_setting : prometheus_setting,
        timeline_failed ? settings.timeline_pattern : settings.prometheus_pattern,
        "cannot write " + std::string(failed) + ": " + strerror(error),
        output_path::kPatternAccepted);
  }
  s.active = true;
  if (!s.hooks_registered) {
    s.hooks_registered = true;
    os::AtExit(&AtExit);
    os::AtFork(&ForkPrepare, &ForkParent, &ForkChild);
  }
  if (!StartThreadLocked(s)) {
    // Without the thread the first and last samples are still written.
    constexpr std::string_view kNote =
        "execmem: timeline: cannot start the sampler thread; only the first and the last "
        "samples are written\n";
    os::WriteStderr(kNote.data(), kNote.size());
  }
  return Status();
}

std::string RunningPrometheusPattern() {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.active ? s.prometheus.pattern : std::string();
}

bool Stop() {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  return StopLocked(s);
}

bool Running() {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.active;
}

void ForkPrepare() ABSL_NO_THREAD_SAFETY_ANALYSIS { S().mu.lock(); }

void ForkParent() ABSL_NO_THREAD_SAFETY_ANALYSIS { S().mu.unlock(); }

void ForkChild() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  State& s = S();
  s.mu.unlock();  // held by this thread, the child's only one
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.active) return;
  // The parent's thread does not exist here; its files are the parent's.
  ++s.generation;
  for (Output* o : {&s.timeline, &s.prometheus}) {
    o->path.clear();
    o->failed = false;
    o->suffix_pid = !output_path::IsPerProcess(o->pattern);
  }
  s.written = 0;
  s.full = false;
  s.first_ms = 0;
  StartThreadLocked(s);
}

}  // namespace execmem::timeline

using namespace execmem;

namespace {

int SetLastError(int err, std::string_view message) {
  snprintf(ThreadLastError(), kLastErrorSize, "%.*s", static_cast<int>(message.size()),
           message.data());
  return err;
}

}  // namespace

extern "C" {

int execmem_timeline_start(const char* path, int interval_ms) {
  if (path == nullptr) return SetLastError(EINVAL, "execmem_timeline_start: null path");
  if (interval_ms <= 0) {
    return SetLastError(EINVAL, "invalid execmem_timeline_start interval_ms " +
                                    std::to_string(interval_ms) + ": expected " +
                                    std::string(timeline::kIntervalAccepted));
  }
  timeline::Settings settings;
  settings.timeline_pattern = path;
  settings.interval_ms = static_cast<uint64_t>(interval_ms);
  settings.prometheus_pattern = timeline::RunningPrometheusPattern();  // EXECMEM_PROMETHEUS stays
  settings.timeline_setting = "execmem_timeline_start path";
  settings.interval_setting = "execmem_timeline_start interval_ms";
  const Status status = timeline::Start(settings);
  if (!status.ok()) return SetLastError(EINVAL, std::string(status.message()));
  return 0;
}

int execmem_timeline_stop(void) {
  if (!timeline::Stop()) return SetLastError(EINVAL, "execmem_timeline_stop: no timeline running");
  return 0;
}

char* execmem_stats_prometheus(void) {
  execmem_pool_stats_t pool;
  execmem_pool_stats(&pool);
  const std::string text = FormatStatsPrometheus(pool, AllStats(), ThisProcess());
  char* out = static_cast<char*>(execmem_malloc(text.size() + 1));
  if (out != nullptr) memcpy(out, text.c_str(), text.size() + 1);
  return out;
}

}  // extern "C"
