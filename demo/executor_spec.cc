#include "demo/executor_spec.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "execmem.hpp"

namespace execmem_demo {
namespace {

constexpr char kForm[] = "name:initial:max[:overhead[:threads]]";
// Fits execmem's stats name field and spill file names.
constexpr std::size_t kMaxNameLength = 32;

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

absl::Status CheckNames(const std::vector<ExecutorSpec>& specs) {
  if (specs.empty()) return absl::InvalidArgumentError("no executors given");
  if (specs.size() > static_cast<std::size_t>(kMaxExecutors)) {
    return absl::InvalidArgumentError(
        absl::StrCat(specs.size(), " executors given; at most ", kMaxExecutors, " are accepted"));
  }
  std::set<std::string> seen;
  for (const ExecutorSpec& s : specs) {
    if (!seen.insert(s.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("executor name '", s.name, "' is given twice"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ExecutorSpec> ParseExecutorSpec(absl::string_view item) {
  const std::vector<absl::string_view> fields = absl::StrSplit(item, ':');
  if (fields.size() < 3 || fields.size() > 5) {
    return absl::InvalidArgumentError(absl::StrCat("executor '", item, "': expected ", kForm,
                                                   ", got ", fields.size(), " fields"));
  }
  ExecutorSpec spec;
  spec.name = std::string(absl::StripAsciiWhitespace(fields[0]));
  spec.initial = std::string(absl::StripAsciiWhitespace(fields[1]));
  spec.max = std::string(absl::StripAsciiWhitespace(fields[2]));
  if (fields.size() > 3) spec.overhead = std::string(absl::StripAsciiWhitespace(fields[3]));

  if (spec.name.empty() || spec.name.size() > kMaxNameLength ||
      !std::all_of(spec.name.begin(), spec.name.end(), IsNameChar)) {
    return absl::InvalidArgumentError(absl::StrCat("executor '", item, "': name '", spec.name,
                                                   "' must be 1-", kMaxNameLength,
                                                   " characters of A-Z a-z 0-9 _ -"));
  }
  for (const auto& [setting, value] :
       {std::pair{"initial", &spec.initial}, std::pair{"max", &spec.max}}) {
    if (value->empty()) continue;  // execmem's default
    if (execmem::Result<std::size_t> bytes = execmem::ParseSize(setting, std::string_view(*value));
        !bytes.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("executor '", spec.name, "': ", bytes.status().message()));
    }
  }
  if (fields.size() > 4) {
    const absl::string_view threads = absl::StripAsciiWhitespace(fields[4]);
    if (!threads.empty() && (!absl::SimpleAtoi(threads, &spec.threads) || spec.threads < 1 ||
                             spec.threads > kMaxThreadsPerExecutor)) {
      return absl::InvalidArgumentError(absl::StrCat("executor '", spec.name, "': threads '",
                                                     threads, "' must be a whole number from 1 to ",
                                                     kMaxThreadsPerExecutor));
    }
  }
  return spec;
}

absl::StatusOr<std::vector<ExecutorSpec>> ParseExecutorList(absl::string_view list) {
  std::vector<ExecutorSpec> specs;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty()) continue;
    absl::StatusOr<ExecutorSpec> spec = ParseExecutorSpec(item);
    if (!spec.ok()) return spec.status();
    specs.push_back(*std::move(spec));
  }
  if (absl::Status s = CheckNames(specs); !s.ok()) return s;
  return specs;
}

absl::StatusOr<std::vector<ExecutorSpec>> ReadExecutorConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read config file ", path, ": ", std::strerror(errno)));
  }
  std::vector<ExecutorSpec> specs;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    absl::string_view text = line;
    if (const std::size_t hash = text.find('#'); hash != absl::string_view::npos)
      text = text.substr(0, hash);
    text = absl::StripAsciiWhitespace(text);
    if (text.empty()) continue;
    absl::StatusOr<ExecutorSpec> spec = ParseExecutorSpec(text);
    if (!spec.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", number, ": ", spec.status().message()));
    }
    specs.push_back(*std::move(spec));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading config file ", path));
  if (absl::Status s = CheckNames(specs); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  return specs;
}

}  // namespace execmem_demo
