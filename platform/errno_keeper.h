// Part of the platform/os.h contract: errno kept across a scope.
#ifndef EXECMEM_PLATFORM_ERRNO_KEEPER_H_
#define EXECMEM_PLATFORM_ERRNO_KEEPER_H_

#include <cerrno>

namespace execmem::os {

// Restores errno, as it was at construction, when the scope ends, on every
// return. The seam's functions report failure by their return values and
// leave the caller's errno alone (malloc must not change errno when it
// succeeds, and its own system calls fail harmlessly: a madvise refused, a
// cgroup file missing); so do the exit handlers that call them. (Abseil has
// one, but in an internal header: base/internal/errno_saver.h.)
class ErrnoKeeper {
 public:
  ErrnoKeeper() : saved_(errno) {}
  ~ErrnoKeeper() { errno = saved_; }
  ErrnoKeeper(const ErrnoKeeper&) = delete;
  ErrnoKeeper& operator=(const ErrnoKeeper&) = delete;

 private:
  const int saved_;
};

}  // namespace execmem::os

#endif  // EXECMEM_PLATFORM_ERRNO_KEEPER_H_
