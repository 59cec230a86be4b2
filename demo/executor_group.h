// One executor of the demo: the execmem executor, its spill hook, and the
// task threads bound to it.
#ifndef EXECMEM_DEMO_EXECUTOR_GROUP_H_
#define EXECMEM_DEMO_EXECUTOR_GROUP_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "demo/executor_spec.h"
#include "demo/external_sort.h"
#include "demo/task.h"
#include "execmem.hpp"

namespace execmem_demo {

struct Workload {
  uint64_t rows_per_task = 0;
  uint64_t seed = 0;
  std::string spill_dir;
};

class ExecutorGroup {
 public:
  // index makes each executor's data distinct for the same seed.
  static absl::StatusOr<std::unique_ptr<ExecutorGroup>> Create(const ExecutorSpec& spec, int index,
                                                               const Workload& workload);
  ~ExecutorGroup();
  ExecutorGroup(const ExecutorGroup&) = delete;
  ExecutorGroup& operator=(const ExecutorGroup&) = delete;

  void Start();
  void Join();

  // Thread-safe, for progress reports.
  bool done() const { return tasks_done_.load(std::memory_order_acquire) == tasks_.size(); }
  double fraction_done() const;
  execmem_executor_stats_t stats() const { return executor_.Stats(); }

  // After Join.
  const ExecutorSpec& spec() const { return spec_; }
  // OK, or the first task's failure prefixed with its number.
  absl::Status result() const;
  uint64_t groups() const;
  uint64_t rows_sorted() const;
  uint64_t runs_written() const;
  uint64_t bytes_written() const;
  double seconds() const;

 private:
  struct Task {
    std::unique_ptr<ExternalSorter> sorter;
    TaskInput input;
    std::atomic<uint64_t> progress{0};
    TaskReport report;
    std::thread thread;
  };

  ExecutorGroup(ExecutorSpec spec, execmem::Executor executor, uint64_t rows_per_task);
  // The spill hook: frees sort buffers, largest first, until `bytes` are freed.
  std::size_t Spill(std::size_t bytes) noexcept;
  void RunTaskThread(Task& task);

  static constexpr const char* kHookName = "external-sort";

  const ExecutorSpec spec_;
  // Declared first, destroyed last: the tasks' memory belongs to it.
  execmem::Executor executor_;
  const uint64_t rows_per_task_;
  std::vector<std::unique_ptr<Task>> tasks_;  // fixed before Start, so the hook may read it
  bool hook_added_ = false;
  std::atomic<std::size_t> tasks_done_{0};
  std::chrono::steady_clock::time_point started_;
  std::atomic<int64_t> finished_ns_{0};  // since started_, of the last task to end
};

}  // namespace execmem_demo

#endif  // EXECMEM_DEMO_EXECUTOR_GROUP_H_
