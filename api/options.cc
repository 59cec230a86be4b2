// The table of process options (api/options.h).
#include "api/options.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "api/output_path.h"
#include "api/timeline.h"
#include "budget/budget.h"
#include "cache/cache.h"
#include "executor/executor.h"
#include "platform/os.h"

namespace execmem::options {
namespace {

#ifndef EXECMEM_SECURE_DEFAULT
#define EXECMEM_SECURE_DEFAULT 0
#endif
// The CMake option EXECMEM_SECURE_DEFAULT=ON builds secure mode in as the default.
constexpr bool kSecureDefault = EXECMEM_SECURE_DEFAULT != 0;

constexpr uint64_t kMaxDecayMs = 3'600'000;  // an hour: longer is a typo, not a policy

// Budgets and the pool capacity: validated now so that a typo stops the
// program at once, kept as written so that ResolveBudgets can tell an
// explicit value (checked) from a default (capped).
template <std::string ProcessOptions::*kField>
Status ApplySize(const OptionSpec& spec, std::string_view value, ProcessOptions& out) {
  const std::string_view v = config::StripBlanks(value);
  if (!v.empty()) {
    if (Result<uint64_t> bytes = config::ParseSize(spec.env, value); !bytes.ok()) {
      return bytes.status();
    }
  }
  out.*kField = std::string(v);
  return Status();
}

// Below this the pool cannot hold the shim's own allocations: its start-up
// (strings, the first spans of a few classes: EXECMEM_POOL_CAPACITY=64k
// ended in std::terminate, "terminate called without an active exception")
// and its reports at exit (1m: the initial then takes the whole pool, no
// overhead is left, and EXECMEM_STATS=stderr ended in std::terminate at
// exit). Both until 2026-12-08; 2m ran 3 of 3 with stats, timeline and
// Prometheus file at once.
constexpr uint64_t kMinPoolCapacity = uint64_t{2} << 20;

Status ApplyPoolCapacity(const OptionSpec& spec, std::string_view value, ProcessOptions& out) {
  if (Status status = ApplySize<&ProcessOptions::pool_capacity>(spec, value, out); !status.ok()) {
    return status;
  }
  if (out.pool_capacity.empty()) return Status();
  Result<uint64_t> bytes = config::ParseSize(spec.env, value);
  if (*bytes != 0 && *bytes < kMinPoolCapacity) {
    return config::InvalidSetting(spec.env, value, "below 2m, the least the shim's own start-up and reports need",
                                  spec.accepted);
  }
  return Status();
}

Status ApplyOverhead(const OptionSpec& spec, std::string_view value, ProcessOptions& out) {
  const std::string_view v = config::StripBlanks(value);
  if (!v.empty()) {
    if (Result<config::Overhead> o = config::ParseOverhead(spec.env, value); !o.ok()) {
      return o.status();
    }
  }
  out.overhead = std::string(v);
  return Status();
}

// The value with blanks trimmed, or the table's default when that is empty.
std::string_view ValueOrDefault(const OptionSpec& spec, std::string_view value) {
  const std::string_view v = config::StripBlanks(value);
  return v.empty() ? spec.default_value : v;
}

Status ApplyOom(const OptionSpec& spec, std::string_view value, ProcessOptions& out) {
  const std::string v = config::AsciiLower(ValueOrDefault(spec, value));
  if (v == "null") {
    out.oom = ProcessOptions::Oom::kNull;
  } else if (v == "report") {
    out.oom = ProcessOptions::Oom::kReport;
  } else if (v == "abort") {
    out.oom = ProcessOptions::Oom::kAbort;
  } else {
    return config::InvalidSetting(spec.env, value, "", spec.accepted);
  }
  return Status();
}

Status ApplyStats(const OptionSpec& spec, std::string_view value, ProcessOptions& out) {
  const std::string_view v = ValueOrDefault(spec, value);
  const std::string lower = config::AsciiLower(v);
  out.stats_path.clear();
  if (lower == "off" || lower == "0") {
    out.stats = ProcessOptions::StatsSink::kNone;
  } else if (lower == "stderr" || lower == "1") {
    out.stats = ProcessOptions::StatsSink::kStderr;
  } else if (lower == "stdout") {
    // The program's stdout is its own output (often a pipe of data).
    return config::InvalidSetting(spec.env, value,
                                  "the report never goes to stdout (write ./stdout for a file of "
                                  "that name)",
                                  spec.accepted);
  } else if (Status bad = output_path::Check(spec.env, value, spec.accepted); !bad.ok()) {
    return bad;
  } else {
    out.stats = ProcessOptions::StatsSink::kFile;
    out.stats_path = std::string(v);
  }
  return Status();
}

Status ApplyDecay(const OptionSpec& spec, std::string_view value, ProcessOptions& out) {
  const std::string_view v = ValueOrDefault(spec, value);
  uint64_t ms = 0;
  // Only digits are milliseconds (no sign, no blank); from_chars fails on
  // overflow, which is a whole number too long.
  if (v.empty() || v.find_first_not_of("0123456789") != std::string_view::npos) {
    return config::InvalidSetting(spec.env, value, "not a whole number of milliseconds",
                                  spec.accepted);
  }
  if (std::from_chars(v.data(), v.data() + v.size(), ms).ec != std::errc() || ms > kMaxDecayMs) {
    return config::InvalidSetting(spec.env, value, "too long", spec.accepted);
  }
  out.decay_ms = ms;
  return Status();
}

// "0"/"off" or "1"/"on" (any case, blanks trimmed); "" is the default.
// False when the value is none of these. Allocates nothing.
bool ParseSwitch(std::string_view value, bool* out) {
  const std::string_view v = config::StripBlanks(value);
  if (v.empty()) {
    *out = kSecureDefault;
    return true;
  }
  auto is = [&](std::string_view word) {
    if (v.size() != word.size()) return false;
    for (size_t i = 0; i < v.size(); ++i) {
      const char c = v[i] >= 'A' && v[i] <= 'Z' ? static_cast<char>(v[i] - 'A' + 'a') : v[i];
      if (c != word[i]) return false;
    }
    return true;
  };
  if (is("1") || is("on")) {
    *out = true;
    return true;
  }
  if (is("0") || is("off")) {
    *out = false;
    return true;
  }
  return false;
}

// EXECMEM_SECURE_CHECKS: "all" (or ""), "none", or a comma list of the
// optional protections' names (cache/secure_policy.h). False when a name is
// not one of them. Allocates nothing.
constexpr struct {
  std::string_view name;
  uint32_t bit;
} kSecureChecks[] = {{"zero", secure::kZeroing},
                     {"quarantine", secure::kQuarantine},
                     {"neighbours", secure::kNeighbours},
                     {"newest", secure::kNewest},
                     {"shuffle", secure::kShuffle}};
bool ParseSecureChecks(std::string_view value, uint32_t* out) {
  std::string_view v = config::StripBlanks(value);
  if (v.empty() || v == "all") {
    *out = secure::kAllChecks;
    return true;
  }
  if (v == "none") {
    *out = 0;
    return true;
  }
  uint32_t bits = 0;
  for (;;) {
    const size_t comma = v.find(',');
    const std::string_view name = config::StripBlanks(v.substr(0, comma));
    const auto* it = std::find_if(std::begin(kSecureChecks), std::end(kSecureChecks),
                                  [&](const auto& c) { return c.name == name; });
    if (it == std::end(kSecureChecks)) return false;  // an empty name too
    bits |= it->bit;
    if (comma == std::string_view::npos) break;
    v = v.substr(comma + 1);
  }
  *out = bits;
  return true;
}

Status ApplySecureChecks(const OptionSpec& spec, std::string_view value, ProcessOptions& out) {
  if (!ParseSecureChecks(value, &out.secure_checks)) {
    return config::InvalidSetting(spec.env, value, "", spec.accepted);
  }
  return Status();
}

Status ApplySecure(const OptionSpec& spec, std::string_view value, ProcessOptions& out) {
  if (!ParseSwitch(value, &out.secure)) {
    return config::InvalidSetting(spec.env, value, "", spec.accepted);
  }
  return Status();
}

Status ApplyEmergencyReserve(const OptionSpec& spec, std::string_view value, ProcessOptions& out) {
  Result<uint64_t> bytes = config::ParseSize(spec.env, ValueOrDefault(spec, value));
  if (!bytes.ok()) return bytes.status();
  if (*bytes > budget::kMaxEmergencyReserve) {
    return config::InvalidSetting(spec.env, value, "above the largest reserve, 16m", spec.accepted);
  }
  out.emergency_reserve = *bytes;
  return Status();
}

// ---- observability (issue 11) ----------------------------------------------------

// A path pattern (api/output_path.h), or "" for none.
template <std::string ProcessOptions::*kField>
Status ApplyPathPattern(const OptionSpec& spec, std::string_view value, ProcessOptions& out) {
  const std::string_view v = config::StripBlanks(value);
  out.*kField = "";
  if (v.empty()) return Status();
  if (Status bad = output_path::Check(spec.env, value, spec.accepted); !bad.ok()) return bad;
  out.*kField = std::string(v);
  return Status();
}

Status ApplyTimelineMs(const OptionSpec& spec, std::string_view value, ProcessOptions& out) {
  Result<uint64_t> ms = timeline::ParseIntervalMs(spec.env, value);
  if (!ms.ok()) return ms.status();
  out.timeline_ms = *ms;
  return Status();
}

Status ApplyTimelineMax(const OptionSpec& spec, std::string_view value, ProcessOptions& out) {
  Result<uint64_t> bytes = config::ParseSize(spec.env, ValueOrDefault(spec, value));
  if (!bytes.ok()) {
    return config::InvalidSetting(spec.env, value, "not a size", spec.accepted);
  }
  if (*bytes < timeline::kMinMaxBytes) {
    return config::InvalidSetting(spec.env, value, "below 64k", spec.accepted);
  }
  out.timeline_max = *bytes;
  return Status();
}

// ---- the shared pool (issue 18) ---------------------------------------------------

Status ApplySharedName(const OptionSpec& spec, std::string_view value, ProcessOptions& out) {
  const std::string v(config::StripBlanks(value));
  char segment[256];
  if (!v.empty() && !budget::shared::SegmentName(v.c_str(), segment, sizeof segment)) {
    return config::InvalidSetting(spec.env, value, "not a pool name", spec.accepted);
  }
  out.shared = v;
  return Status();
}

Status ApplySharedMode(const OptionSpec& spec, std::string_view value, ProcessOptions& out) {
  const std::string_view v = ValueOrDefault(spec, value);
  if (v == "0600" || v == "600") {
    out.shared_mode = 0600;
  } else if (v == "0660" || v == "660") {
    out.shared_mode = 0660;
  } else {
    return config::InvalidSetting(spec.env, value, "", spec.accepted);
  }
  return Status();
}

// "1"/"on" or "0"/"off" (any case), "" the table's default.
template <bool ProcessOptions::*kField>
Status ApplyOnOff(const OptionSpec& spec, std::string_view value, ProcessOptions& out) {
  const std::string v = config::AsciiLower(ValueOrDefault(spec, value));
  if (v == "1" || v == "on") {
    out.*kField = true;
  } else if (v == "0" || v == "off") {
    out.*kField = false;
  } else {
    return config::InvalidSetting(spec.env, value, "", spec.accepted);
  }
  return Status();
}

Status ApplySharedWaitMs(const OptionSpec& spec, std::string_view value, ProcessOptions& out) {
  constexpr uint64_t kMaxWaitMs = internal::kMaxSharedWaitMs;  // ten minutes: longer is a typo
  const std::string_view v = ValueOrDefault(spec, value);
  uint64_t ms = 0;
  if (v.find_first_not_of("0123456789") != std::string_view::npos ||
      std::from_chars(v.data(), v.data() + v.size(), ms).ec != std::errc() || ms > kMaxWaitMs) {
    return config::InvalidSetting(spec.env, value, "", spec.accepted);
  }
  out.shared_wait_ms = ms;
  return Status();
}

constexpr OptionSpec kOptions[] = {
    {"initial", "EXECMEM_INITIAL", config::kDefaultInitial, "capped by max and the pool capacity",
     config::kSizeAccepted,
     "Bytes reserved for the program when it starts; it can grow past them, up to max, while "
     "the pool has room.",
     &ApplySize<&ProcessOptions::initial>},
    {"max", "EXECMEM_MAX", config::kDefaultMax,
     "capped by the pool capacity, raised to an explicit initial", config::kSizeAccepted,
     "Hard cap on the program's live bytes: an allocation that would pass it fails, after the "
     "spill hooks were asked to free memory (see EXECMEM_OOM).",
     &ApplySize<&ProcessOptions::max>},
    {"overhead", "EXECMEM_OVERHEAD", config::kDefaultOverhead,
     "of initial, capped so that initial + overhead fits the pool", config::kOverheadAccepted,
     "Reserved on top of initial for the allocator's own cost (cached free blocks, partly used "
     "pages); the program may hold up to max + overhead.",
     &ApplyOverhead},
    {"oom", "EXECMEM_OOM", "null", "", "null, report or abort",
     "What an allocation that fails does: null returns NULL with errno ENOMEM (operator new "
     "throws std::bad_alloc); report does the same and prints the first refusal's "
     "out-of-memory report (why, and which variable to change) once on stderr; abort prints "
     "the report and aborts.",
     &ApplyOom},
    {"stats", "EXECMEM_STATS", "off", "",
     "off (or 0), stderr (or 1), or a file path, in which %p is the process id, %t its start "
     "time and %% a %",
     "Writes a report when the program exits: text to stderr, or JSON to the file (replaced "
     "whole; a relative path is taken from the starting directory). Every report names the pid "
     "and the program; with %p each process of a forking program writes its own file.",
     &ApplyStats},
    {"decay_ms", "EXECMEM_DECAY_MS", "5000", "",
     "milliseconds, a whole number from 0 to 3600000 (one hour)",
     "How long freed pages stay cached (committed, for reuse without a page fault): a page "
     "freed t ms ago is kept with weight 1 - smoothstep(t / decay), oldest given back to the "
     "OS first, by a background thread; 0 gives them back at once.",
     &ApplyDecay},
    {"huge_pages", "EXECMEM_HUGE_PAGES", "0", "", "0 (or off), 1 (or on)",
     "Large blocks (from 2 MiB up to an arena, 64 MiB) ask the kernel for transparent huge "
     "pages behind the 2 MiB chunks they cover whole (MADV_HUGEPAGE): a first touch then "
     "faults in 2 MiB at once. Worth it where a 4 KiB page fault is dear; where a fresh huge "
     "page is the dear part (some virtual machines) it costs CPU. Off, the system's THP "
     "setting decides. Blocks larger than an arena always ask (they grow by mremap).",
     &ApplyOnOff<&ProcessOptions::huge_pages>},
    {"pool_capacity", "EXECMEM_POOL_CAPACITY", "",
     "the cgroup's memory limit, else the machine's memory", config::kSizeAccepted,
     "Bytes the pool may hold at once, for all executors together; max, and initial + overhead, "
     "must fit in it. At least 2m (0: the default).",
     &ApplyPoolCapacity},
    {"emergency_reserve", "EXECMEM_EMERGENCY_RESERVE", "64k", "per executor; 0 turns it off",
     config::kSizeAccepted,
     "After a refusal, small requests are still served, up to this many bytes in all (at most "
     "16m), from the overhead reservation, so that the program can log the failure and exit "
     "cleanly; the refused request still fails. Refilled when used is back under max by this "
     "much.",
     &ApplyEmergencyReserve},
    {"secure", "EXECMEM_SECURE", kSecureDefault ? "1" : "0",
     "1 when built with -DEXECMEM_SECURE_DEFAULT=ON", "0 (or off), 1 (or on)",
     "Secure mode: canaries after small blocks checked at free, freed blocks zeroed and checked "
     "when reused, a quarantine that delays reuse, encoded free lists, random order within a "
     "span, guard pages around large and huge blocks, zero-size blocks that fault on access. "
     "Every allocation takes the slow path (see README, Safety). Read at the first allocation.",
     &ApplySecure},
    {"secure_checks", "EXECMEM_SECURE_CHECKS", "all", "",
     "all, none, or a comma list of zero, quarantine, neighbours, newest, shuffle",
     "Secure mode's optional protections (with EXECMEM_SECURE=1): zero (freed blocks zeroed and "
     "checked when reused), quarantine (freed blocks wait before reuse), neighbours (a free "
     "checks the blocks either side), newest (each malloc checks the blocks handed out and freed "
     "last), shuffle (random order within a span). The canaries, encoded free lists, guard "
     "pages and faulting zero-size blocks are always on. all is secure mode as docs/safety.md "
     "counts it; fewer cost less and catch less (docs/secure-mode.md has each one's price). "
     "Read at the first allocation.",
     &ApplySecureChecks},
    {"timeline", "EXECMEM_TIMELINE", "", "off", output_path::kPatternAccepted,
     "Writes a sample of every executor (used, footprint, budgets, spills, OOMs), the pool and "
     "the RSS as a JSON line every EXECMEM_TIMELINE_MS, and a last one at exit; a forked child "
     "starts its own file (use %p). Read by execmem-advise and execmem-plot.",
     &ApplyPathPattern<&ProcessOptions::timeline_path>},
    {"timeline_ms", "EXECMEM_TIMELINE_MS", "1000", "", timeline::kIntervalAccepted,
     "Milliseconds between two samples of EXECMEM_TIMELINE and two rewrites of "
     "EXECMEM_PROMETHEUS.",
     &ApplyTimelineMs},
    {"timeline_max", "EXECMEM_TIMELINE_MAX", "64m", "", "a size of at least 64k such as 64m",
     "Bytes of samples a timeline file may hold: then a note line ends the periodic samples and "
     "only the last sample, at exit, follows.",
     &ApplyTimelineMax},
    {"prometheus", "EXECMEM_PROMETHEUS", "", "off", output_path::kPatternAccepted,
     "Rewrites the file atomically (temporary file + rename) with the Prometheus text format of "
     "execmem_stats_prometheus every EXECMEM_TIMELINE_MS, for node_exporter's textfile "
     "collector (name it *.prom).",
     &ApplyPathPattern<&ProcessOptions::prometheus_path>},
    {"shared", "EXECMEM_SHARED", "", "off: a pool of its own",
     "a pool name: 1 to 190 characters of A-Z a-z 0-9 . _ -",
     "Makes the process a member of the shared pool NAME (/dev/shm/execmem.NAME, created by "
     "the first member): its executors reserve initial + overhead and borrow growth from the "
     "pool, together with every other member's (see docs/shared-pool.md). Children inherit it.",
     &ApplySharedName},
    {"shared_capacity", "EXECMEM_SHARED_CAPACITY", "",
     "the creator's cgroup memory limit, else the machine's memory", config::kSizeAccepted,
     "The shared pool's capacity, fixed by the process that creates it; a later member asking "
     "for another one is told which holds.",
     &ApplySize<&ProcessOptions::shared_capacity>},
    {"shared_mode", "EXECMEM_SHARED_MODE", "0600", "", "0600 or 0660",
     "Permissions of a new shared pool's segment: 0660 lets members of the owner's group join.",
     &ApplySharedMode},
    {"shared_required", "EXECMEM_SHARED_REQUIRED", "0", "", "0 (or off), 1 (or on)",
     "1: a process whose shared pool is refused (corrupt, other version, another user's) "
     "exits with status 1 instead of running with a pool of its own.",
     &ApplyOnOff<&ProcessOptions::shared_required>},
    {"shared_wait_ms", "EXECMEM_SHARED_WAIT_MS", "1000", "",
     "milliseconds, a whole number from 0 to 600000",
     "How long an allocation whose grant the shared pool refused waits, after its own trim and "
     "spill hooks, for the other members to give back (docs/shared-pool.md, asking the "
     "others); then it fails with an out-of-memory report naming the pool and its largest "
     "holders.",
     &ApplySharedWaitMs},
};

// The variable must be EXECMEM_ + the upper-case name, so that users and
// the docs can derive one from the other.
constexpr bool EnvMatchesName(const OptionSpec& spec) {
  constexpr std::string_view kPrefix = "EXECMEM_";
  const std::string_view env(spec.env);
  if (!env.starts_with(kPrefix) || env.size() != kPrefix.size() + spec.name.size()) return false;
  for (size_t i = 0; i < spec.name.size(); ++i) {
    const char c = spec.name[i];
    const char upper = c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
    if (env[kPrefix.size() + i] != upper) return false;
  }
  return true;
}

constexpr bool TableIsWellFormed() {
  for (const OptionSpec& spec : kOptions) {
    if (!EnvMatchesName(spec) || spec.accepted.empty() || spec.description.empty() ||
        (spec.default_value.empty() && spec.default_note.empty())) {
      return false;
    }
    int same_name = 0;
    for (const OptionSpec& other : kOptions) same_name += other.name == spec.name;
    if (same_name != 1) return false;
  }
  return true;
}
static_assert(TableIsWellFormed(), "kOptions: names, variables, texts or parsers are wrong");

// A Markdown table cell: "|" would end it and a newline the row.
std::string Cell(std::string_view text) {
  std::string cell;
  for (const char c : text) {
    if (c == '|') {
      cell += "\\|";
    } else {
      cell += c == '\n' ? ' ' : c;
    }
  }
  return cell;
}

// Edit distance (insertions, deletions, substitutions) between two short names.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// EXECMEM_* variables that are not options of the shim but are read by
// other parts of execmem (EXECMEM_ARENA_EXT: execmem_dask/_arena.py, which
// launch.py sets in every worker's environment).
constexpr std::string_view kOtherVariables[] = {"EXECMEM_PRELOAD", "EXECMEM_DASK",
                                                "EXECMEM_ARENA_EXT"};
constexpr std::string_view kOtherPrefixes[] = {"EXECMEM_DASK_"};

}  // namespace

std::span<const OptionSpec> AllOptions() { return kOptions; }

const OptionSpec* FindOption(std::string_view name_or_env) {
  for (const OptionSpec& spec : kOptions) {
    if (spec.name == name_or_env || std::string_view(spec.env) == name_or_env) return &spec;
  }
  return nullptr;
}

Result<ProcessOptions> ReadProcessOptions(absl::FunctionRef<const char*(const char*)> getenv_fn) {
  ProcessOptions out;
  for (const OptionSpec& spec : kOptions) {
    const char* value = getenv_fn(spec.env);
    if (Status status = spec.apply(spec, value == nullptr ? "" : value, out); !status.ok()) {
      return status;
    }
  }
  return out;
}

bool SecureModeRequested(absl::FunctionRef<const char*(const char*)> getenv_fn) {
  const char* value = getenv_fn(FindOption("secure")->env);
  bool on = kSecureDefault;
  if (!ParseSwitch(value == nullptr ? "" : value, &on)) return kSecureDefault;
  return on;
}

uint32_t SecureChecksRequested(absl::FunctionRef<const char*(const char*)> getenv_fn) {
  const char* value = getenv_fn(FindOption("secure_checks")->env);
  uint32_t checks = secure::kAllChecks;
  if (!ParseSecureChecks(value == nullptr ? "" : value, &checks)) return secure::kAllChecks;
  return checks;
}

std::string UnknownVariableWarnings(const char* const* variables) {
  std::string out;
  for (const char* const* entry = variables; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view assignment(*entry);
    const std::string_view name = assignment.substr(0, assignment.find('='));
    if (!name.starts_with("EXECMEM_") || FindOption(name) != nullptr) continue;
    if (std::find(std::begin(kOtherVariables), std::end(kOtherVariables), name) !=
            std::end(kOtherVariables) ||
        std::any_of(std::begin(kOtherPrefixes), std::end(kOtherPrefixes),
                    [&](std::string_view prefix) { return name.starts_with(prefix); })) {
      continue;
    }
    const OptionSpec* nearest = nullptr;
    size_t best = 3;  // a typo is at most two edits away
    for (const OptionSpec& spec : kOptions) {
      const size_t d = EditDistance(config::AsciiLower(name), config::AsciiLower(spec.env));
      if (d < best) {
        best = d;
        nearest = &spec;
      }
    }
    out += "execmem: warning: " + std::string(name) + " is not an execmem variable, ignored";
    if (nearest != nullptr) out += " (did you mean " + std::string(nearest->env) + "?)";
    out += "\n";
  }
  return out;
}

std::string OptionsHelp() {
  std::string out =
      "| Variable | Default | Accepted | Description |\n"
      "|---|---|---|---|\n";
  for (const OptionSpec& spec : kOptions) {
    std::string default_cell;
    if (!spec.default_value.empty()) default_cell = "`" + std::string(spec.default_value) + "`";
    if (spec.default_value.empty()) {
      default_cell = std::string(spec.default_note);
    } else if (!spec.default_note.empty()) {
      default_cell += " (" + std::string(spec.default_note) + ")";
    }
    out += "| `" + std::string(spec.env) + "` | " + Cell(default_cell) + " | " +
           Cell(spec.accepted) + " | " + Cell(spec.description) + " |\n";
  }
  return out;
}

}  // namespace execmem::options

namespace execmem::secure {
// The cache asks this when it first decides the mode (cache/secure.h).
constinit const RequestedFn g_requested = [] {
  return options::SecureModeRequested(
      [](const char* name) -> const char* { return os::GetEnv(name); });
};
constinit const ChecksFn g_requested_checks = [] {
  return options::SecureChecksRequested(
      [](const char* name) -> const char* { return os::GetEnv(name); });
};
}  // namespace execmem::secure
