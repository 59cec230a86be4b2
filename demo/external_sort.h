// External sort of one task's rows, spillable by the executor's spill hook.
//
// Rows go into 1 MiB chunks allocated from the executor. A full chunk is
// sorted and sealed. A spill merges every sealed chunk into one sorted run,
// appends it to the task's spill file and frees the chunks. Finish() streams
// the rows in order: merged from the runs if the task ever spilled (after
// spilling what is left), else merged straight from the chunks in memory.
//
// Threads: the owner calls Add and Finish; any thread may call TrySpill, which
// never blocks and never allocates, so it is safe inside a spill hook — even
// one running on the owner's thread in the middle of the owner's own
// allocation, because Add seals the full chunk before it allocates the next
// one and only sealed chunks are spilled. Finish pins the buffer: TrySpill
// returns 0 from then on.
#ifndef EXECMEM_DEMO_EXTERNAL_SORT_H_
#define EXECMEM_DEMO_EXTERNAL_SORT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <string>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "demo/rows.h"
#include "execmem.hpp"

namespace execmem_demo {

class ExternalSorter {
 public:
  static constexpr std::size_t kChunkBytes = std::size_t{1} << 20;
  static constexpr std::size_t kChunkRows = kChunkBytes / sizeof(Row);

  // Opens an (already unlinked) spill file in spill_dir. Bookkeeping for up
  // to max_rows rows is allocated here, from executor, so that spilling
  // never has to allocate.
  static absl::StatusOr<std::unique_ptr<ExternalSorter>> Create(const std::string& spill_dir,
                                                                const std::string& label,
                                                                uint64_t max_rows,
                                                                execmem_executor_t* executor);
  ~ExternalSorter();
  ExternalSorter(const ExternalSorter&) = delete;
  ExternalSorter& operator=(const ExternalSorter&) = delete;

  // Owner only. Fails when no chunk can be had even after spilling, or when
  // a spill could not write its run.
  absl::Status Add(const Row& row) {
    if (ABSL_PREDICT_FALSE(current_rows_ == kChunkRows)) {
      if (absl::Status s = NextChunk(); !s.ok()) return s;
    }
    current_[current_rows_++] = row;
    return absl::OkStatus();
  }

  // Any thread. Writes every sealed chunk as one run and frees them; returns
  // the bytes freed, 0 when the buffer is busy, pinned or empty.
  std::size_t TrySpill() noexcept;

  // Owner only, when an allocation failed: seals the chunk being filled too
  // (unless this task already did that too often) and spills, waiting for
  // the lock if a neighbour holds it.
  void SpillOwn();

  // Owner only, once, after the last Add: calls consume for every row in
  // order, adding 1 to *progress for each row.
  absl::Status Finish(absl::FunctionRef<void(const Row&)> consume, std::atomic<uint64_t>* progress);

  // Bytes a TrySpill would free now (a hint for choosing whom to spill).
  std::size_t spillable_bytes() const { return spillable_bytes_.load(std::memory_order_relaxed); }
  uint64_t runs_written() const { return runs_written_.load(std::memory_order_relaxed); }
  uint64_t bytes_written() const { return bytes_written_.load(std::memory_order_relaxed); }

 private:
  struct Chunk {
    Row* rows;
    std::size_t count;
  };
  struct Run {
    uint64_t offset;  // in the spill file, in bytes
    uint64_t rows;
  };
  // A position in a sorted sequence: a chunk in memory, or a run read
  // through a buffer (file_rows_left > 0 while there is more to read).
  struct Cursor {
    const Row* next;
    const Row* end;
    Row* buffer;
    uint64_t file_offset;
    uint64_t file_rows_left;
  };

  ExternalSorter(int fd, std::string spill_dir, execmem_executor_t* executor,
                 std::size_t full_chunks);

  absl::Status NextChunk();
  // *Locked: called with lock_ held.
  std::size_t SpillLocked();
  absl::Status MergeInMemoryLocked(absl::FunctionRef<void(const Row&)> consume,
                                   std::atomic<uint64_t>* progress);
  absl::Status MergeFromDiskLocked(absl::FunctionRef<void(const Row&)> consume,
                                   std::atomic<uint64_t>* progress);
  absl::Status Refill(Cursor& cursor, std::size_t buffer_rows);
  absl::Status IoError(const char* what, int error) const;

  const int fd_;
  const std::string spill_dir_;
  // The bookkeeping vectors below are charged to the executor too.
  execmem::MemoryResource resource_;

  // Owner only: the chunk being filled (current_rows_ == kChunkRows when
  // there is none, so that Add has a single check).
  Row* current_ = nullptr;
  std::size_t current_rows_ = kChunkRows;
  // Partly filled chunks SpillOwn may still seal: bounded so that the
  // reserved capacities below hold every chunk and run there can be.
  std::size_t partial_seals_left_;

  // execmem's lock for spill hooks (execmem_lock.hpp): a hook on the owner's
  // own thread tries it and fails rather than deadlock; Lock waits in the
  // kernel, since the holder may be writing a run to disk.
  execmem::SpillLock lock_;
  // Under lock_. Capacities are reserved at creation: nothing below
  // allocates later.
  std::pmr::vector<Chunk> sealed_;
  std::pmr::vector<Run> runs_;
  std::pmr::vector<Cursor> heap_;  // scratch for merges
  uint64_t file_end_ = 0;
  bool pinned_ = false;
  // The first failed write; spilling stops and the owner reports it.
  absl::Status io_error_;

  std::atomic<std::size_t> spillable_bytes_{0};
  std::atomic<uint64_t> runs_written_{0};
  std::atomic<uint64_t> bytes_written_{0};
};

}  // namespace execmem_demo

#endif  // EXECMEM_DEMO_EXTERNAL_SORT_H_
