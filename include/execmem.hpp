// execmem — C++ API (namespace execmem). See execmem.h for the shared contract.
//
// The C++ entry points differ from the C ones only in how they fail: an
// allocation that cannot be satisfied after spilling throws execmem::OutOfMemory
// (a std::bad_alloc) whose what() names the executor, the request, used / max /
// footprint and what each spill hook freed. Calls that can be refused for a
// reason (a bad setting, a busy executor) return a Status or a Result<T>.
//
// Like execmem.h, this header needs the standard library only: linking with
// -lexecmem (or execmem::execmem) is all a program needs.
#ifndef EXECMEM_HPP_
#define EXECMEM_HPP_

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory_resource>
#include <new>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "execmem.h"

// execmem::SpillLock, the lock spill hooks may try (C++20: atomic wait).
#if __cplusplus >= 202002L
#include "execmem_lock.hpp"
#endif

namespace execmem {

// ---- errors ---------------------------------------------------------------
// The outcome of a call: ok, or the errno value the C API returns for the same
// refusal (EINVAL, ENOMEM, EBUSY, EEXIST, ENOENT, EACCES) with its one-line message.
class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(int code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const noexcept { return code_ == 0; }
  int code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  // "ok", or the code's name and the message: "EBUSY: executor 'x' ...".
  std::string ToString() const {
    if (ok()) return "ok";
    return std::string(CodeName(code_)) + ": " + message_;
  }

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }
  friend std::ostream& operator<<(std::ostream& os, const Status& s) { return os << s.ToString(); }

 private:
  static const char* CodeName(int code) {
    switch (code) {
      case EINVAL:
        return "EINVAL";
      case ENOMEM:
        return "ENOMEM";
      case EBUSY:
        return "EBUSY";
      case EEXIST:
        return "EEXIST";
      case ENOENT:
        return "ENOENT";
      case ENOSPC:
        return "ENOSPC";
      case EACCES:
        return "EACCES";
      default:
        return "error";
    }
  }
  int code_ = 0;
  std::string message_;
};

// Thrown by Result<T>::value() of a Result that holds an error.
class BadResultAccess : public std::logic_error {
 public:
  explicit BadResultAccess(const Status& status)
      : std::logic_error("execmem: value() of a failed Result: " + status.ToString()) {}
};

// A T, or the Status saying why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit, as a return value
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit, as a return value
    if (status_.ok()) status_ = Status(EINVAL, "execmem: Result made from an ok Status");
  }

  bool ok() const noexcept { return value_.has_value(); }
  const Status& status() const noexcept { return status_; }

  T& value() & { return Checked(), *value_; }
  const T& value() const& { return Checked(), *value_; }
  T&& value() && { return Checked(), std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void Checked() const {
    if (!value_) throw BadResultAccess(status_);
  }
  Status status_;  // ok exactly when value_ holds a value
  std::optional<T> value_;
};

// ---- allocation -----------------------------------------------------------
EXECMEM_API void* allocate(std::size_t size);                           // throws OutOfMemory
EXECMEM_API void* allocate_aligned(std::size_t size, std::size_t alignment);  // throws
EXECMEM_API void* try_allocate(std::size_t size) noexcept;              // nullptr on failure
EXECMEM_API void* reallocate(void* ptr, std::size_t size);              // throws; ptr kept on failure
EXECMEM_API void deallocate(void* ptr) noexcept;
EXECMEM_API void deallocate(void* ptr, std::size_t size) noexcept;
EXECMEM_API std::size_t usable_size(const void* ptr) noexcept;

class EXECMEM_API OutOfMemory : public std::bad_alloc {
 public:
  explicit OutOfMemory(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// ---- executors ----------------------------------------------------------------
// Settings as users write them; empty strings take the defaults
// (initial 1g, max 4g, overhead 10%, each capped by the pool's capacity).
// Names are unique among live executors; an empty one gets "executor-N".
struct ExecutorConfig {
  std::string name;
  std::string initial;
  std::string max;
  std::string overhead;
  bool prefault = false;
};

// A spill hook: asked to free `bytes`, returns what it freed. It runs on the
// allocating thread, which may hold the lock of the very buffer the hook would
// spill: a hook may only try a lock (execmem::SpillLock::TryLock fails for
// the holder, execmem_lock.hpp) and returns 0 when it cannot have it.
using SpillFn = std::function<std::size_t(std::size_t bytes)>;

// An owning handle. Destroying a handle destroys the executor (all threads
// must have unbound from it first).
class EXECMEM_API Executor {
 public:
  static Result<Executor> Create(const ExecutorConfig& config);
  Executor(Executor&& other) noexcept : e_(other.e_) { other.e_ = nullptr; }
  Executor& operator=(Executor&& other) noexcept;
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  ~Executor();

  // A child inside this executor's budget (execmem_executor_create_child):
  // empty settings take initial 0, the parent's max and overhead. The child
  // must be destroyed before its parent.
  Result<Executor> CreateChild(const ExecutorConfig& config) const;
  Status Destroy();  // explicit destroy that reports EBUSY as a status
  // EINVAL without a function, EEXIST for a name in use, ENOSPC past the limit.
  Status AddSpillHook(std::string name, int priority, SpillFn fn);
  // With SpillThread::kAny the hook may also be called from a shared pool
  // member's background thread (EXECMEM_SPILL_ANY_THREAD in execmem.h).
  enum class SpillThread { kAllocating, kAny };
  Status AddSpillHook(std::string name, int priority, SpillFn fn, SpillThread thread);
  Status RemoveSpillHook(std::string_view name);  // ENOENT for an unknown name
  // New budgets while running (execmem_executor_set_limits); empty strings
  // keep their value; name and prefault are ignored.
  Status SetLimits(const ExecutorConfig& limits);
  // Fair shares among this executor's active children.
  void SetFairShares(bool on) { execmem_executor_set_fair_shares(e_, on ? 1 : 0); }
  execmem_executor_stats_t Stats() const;
  std::string_view name() const { return execmem_executor_name(e_); }
  execmem_executor_t* get() const { return e_; }

 private:
  explicit Executor(execmem_executor_t* e) : e_(e) {}
  execmem_executor_t* e_;
};

// Bytes accounted to an executor that execmem did not allocate (an mmap'd
// file, another allocator's buffers), like DataFusion's MemoryReservation:
// it starts empty, grows and shrinks, and gives everything back when
// destroyed (which must happen before its executor is destroyed).
// TryGrow goes through the executor's spill and arbitration path; on
// failure it returns false, the size is unchanged and execmem_last_error()
// holds the report. Not thread-safe: one owner at a time (it may move).
class Reservation {
 public:
  explicit Reservation(execmem_executor_t* executor) : e_(executor) {}
  explicit Reservation(const Executor& executor) : e_(executor.get()) {}
  Reservation(Reservation&& other) noexcept : e_(other.e_), size_(other.size_) { other.size_ = 0; }
  Reservation& operator=(Reservation&& other) noexcept {
    if (this != &other) {
      Free();
      e_ = other.e_;
      size_ = other.size_;
      other.size_ = 0;
    }
    return *this;
  }
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;
  ~Reservation() { Free(); }

  // Grows by `bytes`; false (nothing changed) if the executor cannot hold
  // them, or if size() + bytes would overflow.
  bool TryGrow(std::size_t bytes) {
    if (bytes > SIZE_MAX - size_) return execmem_reserve(e_, SIZE_MAX) == 0;  // the report
    if (execmem_reserve(e_, bytes) != 0) return false;
    size_ += bytes;
    return true;
  }
  // Shrinks by `bytes`; false (nothing changed) if that is more than size().
  bool Shrink(std::size_t bytes) {
    if (bytes > size_) {
      execmem_unreserve(e_, SIZE_MAX);  // leaves the reason in execmem_last_error()
      return false;
    }
    execmem_unreserve(e_, bytes);
    size_ -= bytes;
    return true;
  }
  // Grows or shrinks to exactly `bytes`.
  bool Resize(std::size_t bytes) {
    return bytes >= size_ ? TryGrow(bytes - size_) : Shrink(size_ - bytes);
  }
  // Gives everything back.
  void Free() {
    if (size_ != 0) execmem_unreserve(e_, size_);
    size_ = 0;
  }
  std::size_t size() const { return size_; }
  execmem_executor_t* executor() const { return e_; }

 private:
  execmem_executor_t* e_;
  std::size_t size_ = 0;
};

// Binds the current thread to an executor for the scope's lifetime.
class ExecutorScope {
 public:
  explicit ExecutorScope(const Executor& e) : prev_(execmem_bind(e.get())) {}
  explicit ExecutorScope(execmem_executor_t* e) : prev_(execmem_bind(e)) {}
  ~ExecutorScope() { execmem_bind(prev_); }
  ExecutorScope(const ExecutorScope&) = delete;
  ExecutorScope& operator=(const ExecutorScope&) = delete;

 private:
  execmem_executor_t* prev_;
};

// ---- std::pmr adapter -------------------------------------------------------
// Allocates for a fixed executor (or the thread's current one when null),
// whichever thread calls it. Throws OutOfMemory.
class EXECMEM_API MemoryResource : public std::pmr::memory_resource {
 public:
  explicit MemoryResource(execmem_executor_t* executor = nullptr) : executor_(executor) {}

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override;
  execmem_executor_t* executor_;
};

// ---- shared pools (execmem_shared_join) --------------------------------------
struct SharedPoolOptions {
  std::string capacity;  // "" : the creator's cgroup limit, else the machine's memory
  bool group = false;    // a new pool's segment: mode 0660 instead of 0600
  int wait_ms = -1;      // -1: EXECMEM_SHARED_WAIT_MS (default 1000)
};
// Joins the shared pool `name` before the first executor is created; the
// Status says why not (EINVAL, EBUSY, EACCES as execmem_shared_join). An ok
// Status may carry a note (the capacity that holds) in its message.
EXECMEM_API Status SharedJoin(std::string_view name, const SharedPoolOptions& options = {});

// ---- config and stats ---------------------------------------------------------
// Parses "512m", "4g", "1.5GiB", "1073741824" (suffixes k m g t, optional "b"/"ib",
// case-insensitive; binary multiples). Errors name the setting and the value.
EXECMEM_API Result<std::size_t> ParseSize(std::string_view setting, std::string_view value);
EXECMEM_API std::string StatsJson();
EXECMEM_API std::string StatsText();

}  // namespace execmem

#endif  // EXECMEM_HPP_
