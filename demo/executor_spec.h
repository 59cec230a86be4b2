// The executors the demo runs, as written on the command line or in a config
// file: one executor per item, "name:initial:max[:overhead[:threads]]".
//
//   --executors=etl:64m:512m,adhoc:32m:256m:10%:2,starved:16m:48m::2
//
// A config file holds one item per line; '#' starts a comment, blank lines
// are skipped. Empty overhead takes execmem's default (10% of initial);
// empty threads takes 2.
#ifndef EXECMEM_DEMO_EXECUTOR_SPEC_H_
#define EXECMEM_DEMO_EXECUTOR_SPEC_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace execmem_demo {

struct ExecutorSpec {
  std::string name;
  std::string initial;
  std::string max;
  std::string overhead;  // "" = execmem's default
  int threads = 2;
};

// Roomy, balanced, starved: the starved one must spill to finish.
inline constexpr char kDefaultExecutors[] = "etl:64m:512m::2,adhoc:32m:256m::2,starved:16m:48m::2";
inline constexpr int kMaxThreadsPerExecutor = 64;
inline constexpr int kMaxExecutors = 32;

absl::StatusOr<ExecutorSpec> ParseExecutorSpec(absl::string_view item);
// Comma-separated items.
absl::StatusOr<std::vector<ExecutorSpec>> ParseExecutorList(absl::string_view list);
// Errors name the file and line.
absl::StatusOr<std::vector<ExecutorSpec>> ReadExecutorConfig(const std::string& path);

}  // namespace execmem_demo

#endif  // EXECMEM_DEMO_EXECUTOR_SPEC_H_
