// Fuzz target: the EXECMEM_* environment as the LD_PRELOAD shim reads it
// before main (api/options.h), then the default executor's budgets
// resolved from it as the shim does (config::ResolveBudgets).
//
// Input: lines "NAME=value" or bare values; a bare value goes to the next
// option of the table in order, a NAME may be an option's name or variable
// (or anything else, which is then never looked up).
#include <cerrno>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "api/options.h"
#include "executor/config.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using execmem::fuzz::Input;
using execmem::fuzz::OneLine;
using execmem::fuzz::Require;
using execmem::options::ProcessOptions;

constexpr uint64_t kMaxDecayMs = 3'600'000;

void RequireSizeOrEmpty(const std::string& value, const char* what) {
  if (value.empty()) return;
  Require(execmem::config::ParseSize(what, value).ok(), "%s \"%s\" was accepted but does not parse",
          what, value.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  const auto options = execmem::options::AllOptions();
  std::map<std::string, std::string> env;
  size_t next = 0;
  while (!in.empty()) {
    const std::string_view line = in.Until('\n');
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      if (next < options.size()) env[options[next++].env] = std::string(line);
      continue;
    }
    const std::string_view name = line.substr(0, eq);
    const execmem::options::OptionSpec* spec = execmem::options::FindOption(name);
    Require(spec == nullptr || spec->name == name || std::string_view(spec->env) == name,
            "FindOption(\"%.*s\") found %s", static_cast<int>(name.size()), name.data(),
            spec != nullptr ? spec->env : "");
    env[spec != nullptr ? spec->env : std::string(name)] = std::string(line.substr(eq + 1));
  }

  int lookups = 0;
  const execmem::Result<ProcessOptions> o =
      execmem::options::ReadProcessOptions([&](const char* name) -> const char* {
        ++lookups;
        const auto it = env.find(name);
        // getenv gives C strings: a value ends at its first NUL.
        return it == env.end() ? nullptr : it->second.c_str();
      });
  if (!o.ok()) {
    const std::string message(o.status().message());
    Require(o.status().code() == EINVAL, "code %d for %s", static_cast<int>(o.status().code()),
            message.c_str());
    Require(OneLine(message) && message.starts_with("invalid EXECMEM_"),
            "not a one-line message naming the variable: %s", message.c_str());
    return 0;
  }
  Require(lookups == static_cast<int>(options.size()), "%d lookups for %zu options", lookups,
          options.size());
  RequireSizeOrEmpty(o->initial, "initial");
  RequireSizeOrEmpty(o->max, "max");
  RequireSizeOrEmpty(o->pool_capacity, "pool_capacity");
  if (!o->overhead.empty()) {
    Require(execmem::config::ParseOverhead("overhead", o->overhead).ok(),
            "overhead \"%s\" was accepted but does not parse", o->overhead.c_str());
  }
  Require(o->decay_ms <= kMaxDecayMs, "decay %llu ms",
          static_cast<unsigned long long>(o->decay_ms));
  Require((o->stats == ProcessOptions::StatsSink::kFile) == !o->stats_path.empty(),
          "stats sink and path disagree");

  // The shim's next step: the default executor's budgets within the pool.
  uint64_t capacity = uint64_t{16} << 30;
  if (!o->pool_capacity.empty()) {
    capacity = *execmem::config::ParseSize("EXECMEM_POOL_CAPACITY", o->pool_capacity);
    if (capacity == 0) capacity = uint64_t{16} << 30;  // 0: the default
  }
  const execmem::Result<execmem::config::Budgets> b =
      execmem::config::ResolveBudgets(o->initial, o->max, o->overhead, capacity, "EXECMEM_");
  if (!b.ok()) {
    Require(OneLine(b.status().message()), "budgets: message not one line");
    return 0;
  }
  Require(b->initial <= b->max && b->max <= capacity && b->initial + b->overhead <= capacity,
          "budgets %llu / %llu / %llu do not fit %llu", static_cast<unsigned long long>(b->initial),
          static_cast<unsigned long long>(b->max), static_cast<unsigned long long>(b->overhead),
          static_cast<unsigned long long>(capacity));
  return 0;
}
