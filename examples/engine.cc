// An engine's memory with execmem, the way Spark and Velox arrange it:
//
//   executor "engine" (max 48 MiB, fair shares among its queries)
//     ├── query "q1" ── scan (a Reservation for its read-ahead buffer,
//     │                       which execmem did not allocate) + sort (rows
//     │                       in blocks execmem allocates)
//     └── query "q2" ── the same
//
// Each operator registers one spill hook on its query. The two queries run
// at once, each on its own thread bound to its query; each sorts 7 M rows
// (56 MiB), more than the engine may hold, and while both run each is capped
// at its fair share (24 MiB), so their sorts spill sorted runs to temporary
// files. The program checks every row came out, every run
// is sorted, and no level passed its max; it exits 1 otherwise.
//
// Hooks may run on either query's thread (a query short of memory asks its
// sibling above its share to spill), so each operator guards its state with
// a recursive mutex: its own thread re-enters it from inside an allocation,
// another thread only try-locks it and skips a busy operator.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "execmem.hpp"

namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kRowsPerBlock = 64 * 1024;  // 512 KiB blocks of uint64_t rows
constexpr size_t kRows = 7 * 1024 * 1024;    // 56 MiB: more than the engine's max
constexpr size_t kBatch = 16 * 1024;

// The scan: reads batches into a read-ahead buffer that execmem did not
// allocate (a std::vector from the C library's malloc, standing in for an
// mmap'd file), accounted to the query through a Reservation. Its hook
// drops the read-ahead, which it refills later.
class Scan {
 public:
  Scan(execmem::Executor& query, uint64_t seed) : reservation_(query), state_(seed) {}

  // The next batch of rows; false at the end.
  bool Next(std::vector<uint64_t>* batch) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (produced_ == kRows) return false;
    if (pos_ == buffer_.size()) Refill();
    const size_t n = std::min(kBatch, buffer_.size() - pos_);
    batch->assign(buffer_.begin() + static_cast<ptrdiff_t>(pos_),
                  buffer_.begin() + static_cast<ptrdiff_t>(pos_ + n));
    pos_ += n;
    produced_ += n;
    return true;
  }

  size_t DropReadAhead(size_t) {
    std::unique_lock<std::recursive_mutex> lock(mu_, std::try_to_lock);
    if (!lock.owns_lock()) return 0;
    const size_t held = reservation_.size();
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(pos_));
    buffer_.shrink_to_fit();
    pos_ = 0;
    reservation_.Resize(buffer_.size() * sizeof(uint64_t));
    return held - reservation_.size();
  }

 private:
  void Refill() {
    // Read ahead up to 2 MiB when the query has room, else one batch.
    size_t want = std::min<size_t>(2 * kMiB / sizeof(uint64_t), kRows - produced_);
    buffer_.clear();
    reservation_.Free();
    if (!reservation_.TryGrow(want * sizeof(uint64_t))) {
      want = std::min(kBatch, kRows - produced_);
      if (!reservation_.TryGrow(want * sizeof(uint64_t))) {
        std::fprintf(stderr, "scan: %s\n", execmem_last_error());
        std::exit(1);
      }
    }
    buffer_.resize(want);
    for (auto& v : buffer_) v = state_ = state_ * 6364136223846793005u + 1442695040888963407u;
    pos_ = 0;
  }

  std::recursive_mutex mu_;
  execmem::Reservation reservation_;
  std::vector<uint64_t> buffer_;
  size_t pos_ = 0, produced_ = 0;
  uint64_t state_;
};

// The sort: rows in blocks from execmem (charged to the query); its hook
// sorts what it holds and writes it to a temporary file as one run.
class Sort {
 public:
  void Add(const std::vector<uint64_t>& batch) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    for (uint64_t v : batch) {
      if (fill_ == kRowsPerBlock || blocks_.empty()) {
        // May run this operator's own hook (or a sibling's) before it returns.
        void* block = execmem::allocate(kRowsPerBlock * sizeof(uint64_t));
        blocks_.push_back(static_cast<uint64_t*>(block));
        fill_ = 0;
      }
      blocks_.back()[fill_++] = v;
      sum_ += v;
    }
  }

  size_t SpillRunToDisk(size_t) {
    std::unique_lock<std::recursive_mutex> lock(mu_, std::try_to_lock);
    if (!lock.owns_lock() || blocks_.empty()) return 0;
    std::vector<uint64_t> run;
    for (size_t i = 0; i < blocks_.size(); ++i) {
      const size_t n = i + 1 == blocks_.size() ? fill_ : kRowsPerBlock;
      run.insert(run.end(), blocks_[i], blocks_[i] + n);
      execmem::deallocate(blocks_[i]);
    }
    const size_t freed = blocks_.size() * kRowsPerBlock * sizeof(uint64_t);
    blocks_.clear();
    fill_ = 0;
    std::sort(run.begin(), run.end());
    std::FILE* f = std::tmpfile();
    if (f == nullptr || std::fwrite(run.data(), sizeof(uint64_t), run.size(), f) != run.size()) {
      std::fprintf(stderr, "sort: cannot write a run\n");
      std::exit(1);
    }
    runs_.push_back({f, run.size()});
    return freed;
  }

  // Checks every run is sorted and the rows add up to what was added; gives
  // everything back. Returns the rows seen.
  size_t Finish(bool* ok) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    SpillRunToDisk(0);  // the rows still in memory become the last run
    size_t rows = 0;
    uint64_t sum = 0;
    for (const Run& r : runs_) {
      std::vector<uint64_t> run(r.rows);
      std::rewind(r.file);
      if (std::fread(run.data(), sizeof(uint64_t), r.rows, r.file) != r.rows ||
          !std::is_sorted(run.begin(), run.end())) {
        *ok = false;
      }
      for (uint64_t v : run) sum += v;
      rows += r.rows;
      std::fclose(r.file);
    }
    if (sum != sum_) *ok = false;
    return rows;
  }
  size_t runs() const { return runs_.size(); }

 private:
  struct Run {
    std::FILE* file;
    size_t rows;
  };
  std::recursive_mutex mu_;
  std::vector<uint64_t*> blocks_;
  size_t fill_ = 0;
  uint64_t sum_ = 0;
  std::vector<Run> runs_;
};

struct Query {
  execmem::Executor executor;
  Scan scan;
  Sort sort;
  Query(execmem::Executor e, uint64_t seed) : executor(std::move(e)), scan(executor, seed) {
    // One hook per operator: the sort's runs are worth more than the scan's
    // read-ahead, so the scan is asked first.
    if (!executor
             .AddSpillHook("scan", 20, [this](size_t bytes) { return scan.DropReadAhead(bytes); })
             .ok() ||
        !executor
             .AddSpillHook("sort", 10, [this](size_t bytes) { return sort.SpillRunToDisk(bytes); })
             .ok()) {
      std::fprintf(stderr, "cannot add spill hooks\n");
      std::exit(1);
    }
  }
  void Run() {
    execmem::ExecutorScope bound(executor);  // this thread allocates for the query
    std::vector<uint64_t> batch;
    while (scan.Next(&batch)) sort.Add(batch);
  }
};

}  // namespace

int main() {
  auto engine = execmem::Executor::Create(
      {.name = "engine", .initial = "8m", .max = "48m", .overhead = "16m"});
  if (!engine.ok()) {
    std::fprintf(stderr, "engine: %s\n", std::string(engine.status().message()).c_str());
    return 1;
  }
  engine->SetFairShares(true);  // each query: at least 1/(2N), at most 1/N of 48 MiB
  std::vector<std::unique_ptr<Query>> queries;
  for (const char* name : {"q1", "q2"}) {
    execmem::ExecutorConfig config;  // initial 0, the parent's max and overhead
    config.name = name;
    auto child = engine->CreateChild(config);
    if (!child.ok()) {
      std::fprintf(stderr, "%s: %s\n", name, std::string(child.status().message()).c_str());
      return 1;
    }
    queries.push_back(std::make_unique<Query>(std::move(child).value(), queries.size() + 1));
  }
  std::vector<std::thread> threads;
  for (auto& q : queries) threads.emplace_back([&q] { q->Run(); });
  for (auto& t : threads) t.join();

  bool ok = true;
  const execmem_executor_stats_t es = engine->Stats();
  std::printf("%-7s %9s %9s %6s %6s %9s\n", "node", "peak used", "max", "spills", "runs", "rows");
  std::printf("%-7s %8.1fM %8.1fM %6llu\n", "engine", es.peak_used / 1048576.0, es.max / 1048576.0,
              static_cast<unsigned long long>(es.spill_calls));
  for (auto& q : queries) {
    const size_t runs = q->sort.runs();
    const size_t rows = q->sort.Finish(&ok);
    const execmem_executor_stats_t s = q->executor.Stats();
    std::printf("%-7s %8.1fM %8.1fM %6llu %6zu %9zu\n", s.name, s.peak_used / 1048576.0,
                s.max / 1048576.0, static_cast<unsigned long long>(s.spill_calls), runs, rows);
    if (rows != kRows || runs == 0 || s.peak_used > s.max) ok = false;
  }
  if (es.peak_used > es.max) ok = false;
  queries.clear();  // children before their parent
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
