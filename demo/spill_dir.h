// The directory the sorts spill their runs to.
#ifndef EXECMEM_DEMO_SPILL_DIR_H_
#define EXECMEM_DEMO_SPILL_DIR_H_

#include <string>
#include <utility>

#include "absl/status/statusor.h"

namespace execmem_demo {

// Either a directory the user named (kept), or a fresh one under $TMPDIR or
// /tmp (removed by the destructor, or on SIGINT / SIGTERM / SIGHUP). Spill
// files are unlinked as soon as they are created, so the directory is empty
// whenever it is removed.
class SpillDir {
 public:
  // requested: "" for a fresh directory.
  static absl::StatusOr<SpillDir> Make(const std::string& requested);
  SpillDir(SpillDir&& other) noexcept;
  SpillDir& operator=(SpillDir&&) = delete;
  ~SpillDir();

  const std::string& path() const { return path_; }

 private:
  SpillDir(std::string path, bool owned) : path_(std::move(path)), owned_(owned) {}
  std::string path_;
  bool owned_;
};

}  // namespace execmem_demo

#endif  // EXECMEM_DEMO_SPILL_DIR_H_
