#include "demo/executor_group.h"

#include <array>
#include <cerrno>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "demo/rows.h"

namespace execmem_demo {
namespace {

// execmem's refusals (errno values) as the demo's Abseil statuses.
absl::Status FromExecmem(const execmem::Status& s, absl::string_view context) {
  const std::string message = absl::StrCat(context, s.message());
  switch (s.code()) {
    case EINVAL:
      return absl::InvalidArgumentError(message);
    case ENOMEM:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::FailedPreconditionError(message);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<ExecutorGroup>> ExecutorGroup::Create(const ExecutorSpec& spec,
                                                                     int index,
                                                                     const Workload& workload) {
  execmem::ExecutorConfig config;
  config.name = spec.name;
  config.initial = spec.initial;
  config.max = spec.max;
  config.overhead = spec.overhead;
  execmem::Result<execmem::Executor> executor = execmem::Executor::Create(config);
  if (!executor.ok()) {
    return FromExecmem(executor.status(), absl::StrCat("creating executor '", spec.name, "': "));
  }
  std::unique_ptr<ExecutorGroup> group(
      new ExecutorGroup(spec, *std::move(executor), workload.rows_per_task));

  for (int t = 0; t < spec.threads; ++t) {
    auto task = std::make_unique<Task>();
    task->input.rows = workload.rows_per_task;
    task->input.seed =
        Mix(workload.seed ^ Mix((static_cast<uint64_t>(index) << 16) + static_cast<uint64_t>(t)));
    absl::StatusOr<std::unique_ptr<ExternalSorter>> sorter =
        ExternalSorter::Create(workload.spill_dir, absl::StrCat(spec.name, ".", t),
                               workload.rows_per_task, group->executor_.get());
    if (!sorter.ok()) {
      return absl::Status(sorter.status().code(), absl::StrCat("executor '", spec.name, "', task ",
                                                               t, ": ", sorter.status().message()));
    }
    task->sorter = *std::move(sorter);
    group->tasks_.push_back(std::move(task));
  }

  ExecutorGroup* raw = group.get();
  if (execmem::Status s = group->executor_.AddSpillHook(
          kHookName, 0, [raw](std::size_t bytes) { return raw->Spill(bytes); });
      !s.ok()) {
    return FromExecmem(s, absl::StrCat("adding a spill hook to executor '", spec.name, "': "));
  }
  group->hook_added_ = true;
  return group;
}

ExecutorGroup::ExecutorGroup(ExecutorSpec spec, execmem::Executor executor, uint64_t rows_per_task)
    : spec_(std::move(spec)), executor_(std::move(executor)), rows_per_task_(rows_per_task) {}

ExecutorGroup::~ExecutorGroup() {
  Join();
  // The hook points at the tasks, which go first.
  if (hook_added_) (void)executor_.RemoveSpillHook(kHookName);
  tasks_.clear();
}

void ExecutorGroup::Start() {
  started_ = std::chrono::steady_clock::now();
  for (const std::unique_ptr<Task>& task : tasks_) {
    task->thread = std::thread([this, t = task.get()] { RunTaskThread(*t); });
  }
}

void ExecutorGroup::Join() {
  for (const std::unique_ptr<Task>& task : tasks_) {
    if (task->thread.joinable()) task->thread.join();
  }
}

void ExecutorGroup::RunTaskThread(Task& task) {
  {
    // Unbound before the thread ends, so the executor can be destroyed later.
    execmem::ExecutorScope scope(executor_);
    task.report = RunTask(task.input, *task.sorter, &task.progress);
  }
  const auto elapsed = std::chrono::steady_clock::now() - started_;
  int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
  int64_t previous = finished_ns_.load(std::memory_order_relaxed);
  while (previous < ns &&
         !finished_ns_.compare_exchange_weak(previous, ns, std::memory_order_relaxed)) {
  }
  tasks_done_.fetch_add(1, std::memory_order_release);
}

std::size_t ExecutorGroup::Spill(std::size_t bytes) noexcept {
  // Largest buffer first (whoever's it is, the caller's included): fewer,
  // longer runs make the final merges cheaper.
  std::array<bool, kMaxThreadsPerExecutor> tried{};
  std::size_t freed = 0;
  while (freed < bytes) {
    std::size_t best = tasks_.size();
    std::size_t best_bytes = 0;
    for (std::size_t i = 0; i < tasks_.size(); ++i) {
      const std::size_t b = tasks_[i]->sorter->spillable_bytes();
      if (!tried[i] && b > best_bytes) {
        best = i;
        best_bytes = b;
      }
    }
    if (best == tasks_.size()) break;
    tried[best] = true;
    freed += tasks_[best]->sorter->TrySpill();
  }
  return freed;
}

double ExecutorGroup::fraction_done() const {
  uint64_t done = 0;
  for (const std::unique_ptr<Task>& task : tasks_)
    done += task->progress.load(std::memory_order_relaxed);
  const uint64_t total = TaskWork(rows_per_task_) * tasks_.size();
  return total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
}

absl::Status ExecutorGroup::result() const {
  for (std::size_t t = 0; t < tasks_.size(); ++t) {
    const absl::Status& s = tasks_[t]->report.status;
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat("task ", t, ": ", s.message()));
  }
  return absl::OkStatus();
}

uint64_t ExecutorGroup::groups() const {
  uint64_t n = 0;
  for (const std::unique_ptr<Task>& task : tasks_) n += task->report.groups;
  return n;
}

uint64_t ExecutorGroup::rows_sorted() const {
  uint64_t n = 0;
  for (const std::unique_ptr<Task>& task : tasks_) n += task->report.rows_sorted;
  return n;
}

uint64_t ExecutorGroup::runs_written() const {
  uint64_t n = 0;
  for (const std::unique_ptr<Task>& task : tasks_) n += task->sorter->runs_written();
  return n;
}

uint64_t ExecutorGroup::bytes_written() const {
  uint64_t n = 0;
  for (const std::unique_ptr<Task>& task : tasks_) n += task->sorter->bytes_written();
  return n;
}

double ExecutorGroup::seconds() const { return static_cast<double>(finished_ns_.load()) / 1e9; }

}  // namespace execmem_demo
