#include "demo/external_sort.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

#include "demo/allocate_or_spill.h"

namespace execmem_demo {
namespace {

// Rows staged on the stack per write while merging chunks into a run: a hook
// may run deep in someone's stack, so this stays modest.
constexpr std::size_t kWriteRows = 2048;
// Rows read per refill of a run during the final merge (64 KiB per run).
constexpr std::size_t kReadRows = 4096;
constexpr uint64_t kProgressBatch = 1 << 16;

// Min-heap order for std::*_heap, which build max-heaps.
constexpr auto kCursorAfter = [](const auto& a, const auto& b) {
  return RowLess(*b.next, *a.next);
};

// Returns 0 or an errno value.
int WriteAll(int fd, const void* data, std::size_t bytes, uint64_t offset) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::pwrite(fd, p, bytes, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += n;
    bytes -= static_cast<std::size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return 0;
}

// Returns 0, an errno value, or -1 when the file ends early.
int ReadAll(int fd, void* data, std::size_t bytes, uint64_t offset) {
  char* p = static_cast<char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::pread(fd, p, bytes, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return -1;
    p += n;
    bytes -= static_cast<std::size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ExternalSorter>> ExternalSorter::Create(
    const std::string& spill_dir, const std::string& label, uint64_t max_rows,
    execmem_executor_t* executor) {
  std::string path = spill_dir + "/execmem-demo-" + label + "-XXXXXX";
  const int fd = ::mkstemp(path.data());
  if (fd < 0) {
    return absl::FailedPreconditionError("cannot create a spill file in " + spill_dir + ": " +
                                         std::strerror(errno));
  }
  // Unlinked at once: the runs vanish with the process, however it ends.
  ::unlink(path.c_str());
  const std::size_t full_chunks = static_cast<std::size_t>(max_rows / kChunkRows);
  try {
    return std::unique_ptr<ExternalSorter>(
        new ExternalSorter(fd, spill_dir, executor, full_chunks));
  } catch (const std::bad_alloc& e) {  // execmem::OutOfMemory included
    ::close(fd);
    return absl::ResourceExhaustedError(std::string("allocating the sort's bookkeeping: ") +
                                        e.what());
  }
}

ExternalSorter::ExternalSorter(int fd, std::string spill_dir, execmem_executor_t* executor,
                               std::size_t full_chunks)
    : fd_(fd),
      spill_dir_(std::move(spill_dir)),
      resource_(executor),
      partial_seals_left_(full_chunks + 1),
      sealed_(&resource_),
      runs_(&resource_),
      heap_(&resource_) {
  // Chunks: the full ones, the partial ones SpillOwn seals, and the last
  // one Finish seals. Each run consumes at least one chunk, so this bounds
  // all three vectors.
  const std::size_t max_chunks = full_chunks + partial_seals_left_ + 1;
  execmem::SpillLockGuard guard(lock_);
  sealed_.reserve(max_chunks);
  runs_.reserve(max_chunks);
  heap_.reserve(max_chunks);
}

ExternalSorter::~ExternalSorter() {
  if (current_ != nullptr) execmem::deallocate(current_, kChunkBytes);
  {
    execmem::SpillLockGuard guard(lock_);
    for (const Chunk& c : sealed_) execmem::deallocate(c.rows, kChunkBytes);
    sealed_.clear();
  }
  ::close(fd_);
}

absl::Status ExternalSorter::IoError(const char* what, int error) const {
  return absl::InternalError(std::string(what) + " the spill file in " + spill_dir_ + ": " +
                             (error < 0 ? "file ends early" : std::strerror(error)));
}

absl::Status ExternalSorter::NextChunk() {
  if (current_ != nullptr) {
    std::sort(current_, current_ + current_rows_, RowLess);
    execmem::SpillLockGuard guard(lock_);
    if (!io_error_.ok()) return io_error_;
    sealed_.push_back(Chunk{current_, current_rows_});
    spillable_bytes_.fetch_add(kChunkBytes, std::memory_order_relaxed);
    // Cleared before allocating: a hook running inside the allocation below
    // may now spill (and free) the chunk just sealed.
    current_ = nullptr;
  }
  absl::StatusOr<void*> chunk = AllocateOrSpill(kChunkBytes, [this] { SpillOwn(); });
  if (!chunk.ok()) {
    return absl::Status(chunk.status().code(),
                        "allocating a sort buffer chunk: " + std::string(chunk.status().message()));
  }
  current_ = static_cast<Row*>(*chunk);
  current_rows_ = 0;
  return absl::OkStatus();
}

void ExternalSorter::SpillOwn() {
  const bool seal = current_ != nullptr && current_rows_ > 0 && partial_seals_left_ > 0;
  if (seal) {
    std::sort(current_, current_ + current_rows_, RowLess);
    --partial_seals_left_;
  }
  execmem::SpillLockGuard guard(lock_);
  if (seal) {
    sealed_.push_back(Chunk{current_, current_rows_});
    spillable_bytes_.fetch_add(kChunkBytes, std::memory_order_relaxed);
    current_ = nullptr;
    current_rows_ = kChunkRows;
  }
  SpillLocked();
}

std::size_t ExternalSorter::TrySpill() noexcept {
  if (!lock_.TryLock()) return 0;
  const std::size_t freed = SpillLocked();
  lock_.Unlock();
  return freed;
}

std::size_t ExternalSorter::SpillLocked() {
  if (pinned_ || sealed_.empty() || !io_error_.ok()) return 0;
  heap_.clear();
  uint64_t rows = 0;
  for (const Chunk& c : sealed_) {
    if (c.count > 0) heap_.push_back(Cursor{c.rows, c.rows + c.count, nullptr, 0, 0});
    rows += c.count;
  }
  std::make_heap(heap_.begin(), heap_.end(), kCursorAfter);

  Row out[kWriteRows];
  std::size_t staged = 0;
  uint64_t offset = file_end_;
  while (!heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), kCursorAfter);
    Cursor& c = heap_.back();
    out[staged++] = *c.next++;
    if (c.next == c.end) {
      heap_.pop_back();
    } else {
      std::push_heap(heap_.begin(), heap_.end(), kCursorAfter);
    }
    if (staged == kWriteRows || heap_.empty()) {
      if (const int error = WriteAll(fd_, out, staged * sizeof(Row), offset); error != 0) {
        // The chunks stay in memory; the half-written run is never referenced.
        io_error_ = IoError("writing", error);
        return 0;
      }
      offset += staged * sizeof(Row);
      staged = 0;
    }
  }
  if (rows > 0) {
    runs_.push_back(Run{file_end_, rows});
    file_end_ = offset;
    runs_written_.fetch_add(1, std::memory_order_relaxed);
    bytes_written_.fetch_add(rows * sizeof(Row), std::memory_order_relaxed);
  }

  std::size_t freed = 0;
  for (const Chunk& c : sealed_) {
    execmem::deallocate(c.rows, kChunkBytes);
    freed += kChunkBytes;
  }
  sealed_.clear();
  spillable_bytes_.store(0, std::memory_order_relaxed);
  return freed;
}

absl::Status ExternalSorter::Finish(absl::FunctionRef<void(const Row&)> consume,
                                    std::atomic<uint64_t>* progress) {
  if (current_ != nullptr) {
    std::sort(current_, current_ + current_rows_, RowLess);
  }
  execmem::SpillLockGuard guard(lock_);
  if (current_ != nullptr) {
    sealed_.push_back(Chunk{current_, current_rows_});
    current_ = nullptr;
    current_rows_ = kChunkRows;
  }
  // Once a task has runs on disk, the rest joins them: the merge then needs
  // only small read buffers, however tight the executor is.
  if (!runs_.empty()) SpillLocked();
  if (!io_error_.ok()) return io_error_;
  pinned_ = true;
  spillable_bytes_.store(0, std::memory_order_relaxed);
  return runs_.empty() ? MergeInMemoryLocked(consume, progress)
                       : MergeFromDiskLocked(consume, progress);
}

absl::Status ExternalSorter::MergeInMemoryLocked(absl::FunctionRef<void(const Row&)> consume,
                                                 std::atomic<uint64_t>* progress) {
  heap_.clear();
  for (const Chunk& c : sealed_) {
    if (c.count > 0) heap_.push_back(Cursor{c.rows, c.rows + c.count, nullptr, 0, 0});
  }
  std::make_heap(heap_.begin(), heap_.end(), kCursorAfter);
  uint64_t done = 0;
  while (!heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), kCursorAfter);
    Cursor& c = heap_.back();
    consume(*c.next++);
    if (c.next == c.end) {
      heap_.pop_back();
    } else {
      std::push_heap(heap_.begin(), heap_.end(), kCursorAfter);
    }
    if (++done == kProgressBatch) {
      progress->fetch_add(done, std::memory_order_relaxed);
      done = 0;
    }
  }
  progress->fetch_add(done, std::memory_order_relaxed);
  for (const Chunk& c : sealed_) execmem::deallocate(c.rows, kChunkBytes);
  sealed_.clear();
  return absl::OkStatus();
}

absl::Status ExternalSorter::Refill(Cursor& cursor, std::size_t buffer_rows) {
  const std::size_t rows =
      static_cast<std::size_t>(std::min<uint64_t>(cursor.file_rows_left, buffer_rows));
  if (const int error = ReadAll(fd_, cursor.buffer, rows * sizeof(Row), cursor.file_offset);
      error != 0) {
    return IoError("reading", error);
  }
  cursor.next = cursor.buffer;
  cursor.end = cursor.buffer + rows;
  cursor.file_offset += rows * sizeof(Row);
  cursor.file_rows_left -= rows;
  return absl::OkStatus();
}

absl::Status ExternalSorter::MergeFromDiskLocked(absl::FunctionRef<void(const Row&)> consume,
                                                 std::atomic<uint64_t>* progress) {
  const std::size_t buffers_bytes = runs_.size() * kReadRows * sizeof(Row);
  // Nothing of ours is left to spill; the executor's hook may still make
  // room by spilling the other tasks.
  absl::StatusOr<void*> buffers = AllocateOrSpill(buffers_bytes, [] {});
  if (!buffers.ok()) {
    return absl::Status(buffers.status().code(),
                        "allocating merge buffers for " + std::to_string(runs_.size()) +
                            " runs: " + std::string(buffers.status().message()));
  }
  Row* buffer = static_cast<Row*>(*buffers);
  absl::Status status;
  heap_.clear();
  for (const Run& run : runs_) {
    Cursor c{nullptr, nullptr, buffer, run.offset, run.rows};
    buffer += kReadRows;
    if (status = Refill(c, kReadRows); !status.ok()) break;
    if (c.next != c.end) heap_.push_back(c);
  }
  if (status.ok()) {
    std::make_heap(heap_.begin(), heap_.end(), kCursorAfter);
    uint64_t done = 0;
    while (!heap_.empty()) {
      std::pop_heap(heap_.begin(), heap_.end(), kCursorAfter);
      Cursor& c = heap_.back();
      consume(*c.next++);
      if (c.next == c.end && c.file_rows_left > 0) {
        if (status = Refill(c, kReadRows); !status.ok()) break;
      }
      if (c.next == c.end) {
        heap_.pop_back();
      } else {
        std::push_heap(heap_.begin(), heap_.end(), kCursorAfter);
      }
      if (++done == kProgressBatch) {
        progress->fetch_add(done, std::memory_order_relaxed);
        done = 0;
      }
    }
    progress->fetch_add(done, std::memory_order_relaxed);
  }
  execmem::deallocate(*buffers, buffers_bytes);
  return status;
}

}  // namespace execmem_demo
