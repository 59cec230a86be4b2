// One task of an executor: generate rows, aggregate them by key, sort them,
// and check both results against checksums taken while generating.
#ifndef EXECMEM_DEMO_TASK_H_
#define EXECMEM_DEMO_TASK_H_

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "demo/external_sort.h"

namespace execmem_demo {

// Each key occurs this many times on average, which keeps the aggregation
// table (24 bytes a group) a small fraction of the sort buffer.
inline constexpr uint64_t kRowsPerKey = 32;

struct TaskInput {
  uint64_t seed = 0;
  uint64_t rows = 0;
};

struct TaskReport {
  absl::Status status;  // a failure to run, or a wrong result
  uint64_t groups = 0;
  uint64_t rows_sorted = 0;
};

// Progress units of a task: every row is generated once and merged once.
constexpr uint64_t TaskWork(uint64_t rows) { return 2 * rows; }

// Runs on a thread bound to the task's executor; sorter belongs to this task
// (its buffer may be spilled meanwhile by the executor's hook on any thread).
// Adds to *progress as it goes, up to TaskWork(input.rows).
TaskReport RunTask(const TaskInput& input, ExternalSorter& sorter, std::atomic<uint64_t>* progress);

}  // namespace execmem_demo

#endif  // EXECMEM_DEMO_TASK_H_
