// Process options: the EXECMEM_* environment variables read by the LD_PRELOAD
// shim before main.
//
// One table (options.cc) holds each option's name, variable, default, what it
// accepts, its description and the function that parses it; the parser
// (ReadProcessOptions) and the documentation (OptionsHelp) both walk that
// table, so neither can miss an option or disagree about its default.
// The table is constexpr: reading options allocates only the strings returned.
#ifndef EXECMEM_API_OPTIONS_H_
#define EXECMEM_API_OPTIONS_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"  // header-only
#include "execmem.hpp"                     // Status, Result

namespace execmem::options {

// Validated settings. Budgets and the pool capacity stay strings ("" when
// unset) because they are resolved later against the pool's capacity
// (config::ResolveBudgets), which caps defaults but refuses explicit values.
struct ProcessOptions {
  enum class Oom { kNull, kReport, kAbort };       // NULL; NULL + one report; abort
  enum class StatsSink { kNone, kStderr, kFile };  // where the report goes at exit

  std::string initial, max, overhead;
  Oom oom = Oom::kNull;
  StatsSink stats = StatsSink::kNone;
  std::string stats_path;  // when stats == kFile; as given (maybe relative)
  uint64_t decay_ms = 0;   // ReadProcessOptions sets the table's default
  bool huge_pages = false;  // large blocks ask for transparent huge pages
  std::string pool_capacity;

  // Observability (api/output_path.h, api/timeline.h): path
  // patterns as given (validated, maybe relative, %p and %t unexpanded), ""
  // when unset; stats_path above is such a pattern too.
  std::string timeline_path;
  std::string prometheus_path;
  uint64_t timeline_ms = 0;        // sample interval; ReadProcessOptions sets the default
  uint64_t timeline_max = 0;       // bytes of samples a timeline file may hold
  uint64_t emergency_reserve = 0;  // bytes; ReadProcessOptions sets the table's default
  bool secure = false;             // ReadProcessOptions sets the table's default
  uint32_t secure_checks = 0;      // secure mode's optional protections (secure_policy.h)

  // The shared pool (budget/shared_ledger.h, docs/shared-pool.md): "" when
  // the process has a pool of its own.
  std::string shared;           // NAME of /dev/shm/execmem.NAME
  std::string shared_capacity;  // as given ("" : the cgroup limit, else the machine's)
  uint32_t shared_mode = 0600;  // of a new segment: 0600 or 0660
  bool shared_required = false;
  uint64_t shared_wait_ms = 0;  // ReadProcessOptions sets the table's default
};

struct OptionSpec {
  std::string_view name;  // "max"
  const char* env;        // "EXECMEM_MAX"
  // Used when the variable is unset or blank. Budgets and the pool capacity
  // store "" instead and leave the default to whoever resolves them, which
  // can cap it; the value here is what the docs show.
  std::string_view default_value;
  std::string_view default_note;  // added in the docs: "capped by the pool capacity"
  std::string_view accepted;      // "null or abort"
  std::string_view description;
  // Validates `value` ("" when the variable is unset) and stores it in `out`.
  Status (*apply)(const OptionSpec& spec, std::string_view value, ProcessOptions& out);
};

// Every option, in documentation order.
std::span<const OptionSpec> AllOptions();
// By name ("max") or variable ("EXECMEM_MAX"); nullptr if unknown.
const OptionSpec* FindOption(std::string_view name_or_env);

// Reads and validates every option through getenv_fn (getenv, or a fake in
// tests). An invalid value gives EINVAL with a one-line message
// naming the variable, its value and what it accepts.
Result<ProcessOptions> ReadProcessOptions(absl::FunctionRef<const char*(const char*)> getenv_fn);

// Secure mode (cache/secure.h), as the table's "secure" option gives it:
// EXECMEM_SECURE through getenv_fn, or the build's default when unset or
// invalid. Allocates nothing, so the allocator can ask before its first heap
// exists (the shim's start-up then refuses an invalid value with its message).
bool SecureModeRequested(absl::FunctionRef<const char*(const char*)> getenv_fn);
// Its optional protections (EXECMEM_SECURE_CHECKS: secure::Check bits), all
// when unset or invalid; allocates nothing either.
uint32_t SecureChecksRequested(absl::FunctionRef<const char*(const char*)> getenv_fn);

// One warning line per EXECMEM_* variable in `variables` (the environment: NAME=value strings,
// null-terminated) that no option reads — a misspelt EXECMEM_MAXX would
// otherwise be ignored without a word — naming the nearest option when one is
// close: "execmem: warning: EXECMEM_MAXX is not an execmem variable, ignored
// (did you mean EXECMEM_MAX?)\n". "" when there is none. Variables read by
// other parts of execmem (EXECMEM_PRELOAD, EXECMEM_DASK*) are not warned about.
std::string UnknownVariableWarnings(const char* const* variables);

// A Markdown table of the options (variable | default | accepted |
// description) for the README and --help texts.
std::string OptionsHelp();

}  // namespace execmem::options

#endif  // EXECMEM_API_OPTIONS_H_
