#include "platform/cgroup.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "platform/os.h"
#include "platform/os_internal.h"

namespace execmem::os {
namespace {

constexpr size_t kMaxLine = kMaxCgroupLine;  // a mountinfo line
constexpr size_t kMaxPath = kMaxCgroupPath;  // a cgroup path, a directory
// v1 writes "no limit" as the page counter's maximum (~2^63, page-rounded).
constexpr uint64_t kV1Unlimited = uint64_t{1} << 62;

// Reads a file line by line through a fixed buffer; lines longer than the
// caller's buffer are skipped whole.
class LineReader {
 public:
  explicit LineReader(const char* path)
      : fd_(internal::InjectReadFault() ? -1 : open(path, O_RDONLY | O_CLOEXEC)) {}
  ~LineReader() {
    if (fd_ >= 0) close(fd_);
  }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line without its '\n', NUL-terminated; false at the end.
  bool Next(char* line, size_t cap) {
    size_t n = 0;
    bool overlong = false;
    bool any = false;
    for (;;) {
      if (pos_ == len_ && !Fill()) {
        if (!any || overlong) return false;
        line[n] = '\0';
        return true;
      }
      const char c = buf_[pos_++];
      any = true;
      if (c == '\n') {
        if (!overlong) {
          line[n] = '\0';
          return true;
        }
        n = 0;  // skip the overlong line, start the next
        overlong = false;
        any = false;
        continue;
      }
      if (n + 1 < cap) {
        line[n++] = c;
      } else {
        overlong = true;
      }
    }
  }

 private:
  bool Fill() {
    if (fd_ < 0) return false;
    ssize_t r;
    do {
      r = read(fd_, buf_, sizeof buf_);
    } while (r < 0 && errno == EINTR);
    if (r <= 0) return false;
    pos_ = 0;
    len_ = static_cast<size_t>(r);
    return true;
  }

  int fd_;
  char buf_[4096];
  size_t pos_ = 0;
  size_t len_ = 0;
};

// Whether the comma-separated `list` holds `word`.
bool HasToken(const char* list, const char* word) {
  const size_t wlen = strlen(word);
  for (const char* at = list; *at != '\0';) {
    const char* end = strchr(at, ',');
    const size_t len = end == nullptr ? strlen(at) : static_cast<size_t>(end - at);
    if (len == wlen && memcmp(at, word, len) == 0) return true;
    if (end == nullptr) break;
    at = end + 1;
  }
  return false;
}

// mountinfo escapes blanks and backslashes as \ooo: decodes in place.
void Unescape(char* s) {
  char* out = s;
  for (const char* in = s; *in != '\0';) {
    if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' &&
        in[3] >= '0' && in[3] <= '7') {
      *out++ = static_cast<char>((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
      in += 4;
    } else {
      *out++ = *in++;
    }
  }
  *out = '\0';
}

bool Append(char* dst, size_t cap, const char* a, const char* b = "", const char* c = "") {
  const size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
  if (la + lb + lc + 1 > cap) return false;
  memcpy(dst, a, la);
  memcpy(dst + la, b, lb);
  memcpy(dst + la + lb, c, lc);
  dst[la + lb + lc] = '\0';
  return true;
}

// The process's cgroup path of one hierarchy, from /proc/self/cgroup.
struct Membership {
  bool v1 = false, v2 = false;
  char v1_path[kMaxPath];
  char v2_path[kMaxPath];
};

void ReadMembership(const char* root, Membership* m) {
  char path[kMaxPath];
  if (!Append(path, sizeof path, root, "/proc/self/cgroup")) return;
  LineReader in(path);
  char line[kMaxPath + 64];
  while (in.Next(line, sizeof line)) {
    char* c1 = strchr(line, ':');
    if (c1 == nullptr) continue;
    char* c2 = strchr(c1 + 1, ':');
    if (c2 == nullptr) continue;
    *c1 = '\0';
    *c2 = '\0';
    const char* controllers = c1 + 1;
    const char* cg = c2 + 1;
    if (strcmp(line, "0") == 0 && *controllers == '\0') {
      m->v2 = Append(m->v2_path, sizeof m->v2_path, cg);
    } else if (HasToken(controllers, "memory")) {
      m->v1 = Append(m->v1_path, sizeof m->v1_path, cg);
    }
  }
}

// Where a hierarchy is mounted: the mount's root within the hierarchy and
// its mount point.
struct Mount {
  bool found = false;
  char root[kMaxPath];
  char point[kMaxPath];
};

void ReadMounts(const char* root, Mount* v1, Mount* v2) {
  char path[kMaxPath];
  if (!Append(path, sizeof path, root, "/proc/self/mountinfo")) return;
  LineReader in(path);
  char line[kMaxLine];
  while (in.Next(line, sizeof line)) {
    // id parent major:minor root point options [optional...] - type source super
    constexpr int kMaxFields = 64;
    char* field[kMaxFields];
    int n = 0;
    for (char* at = line; *at != '\0' && n < kMaxFields;) {
      while (*at == ' ') *at++ = '\0';
      if (*at == '\0') break;
      field[n++] = at;
      while (*at != '\0' && *at != ' ') ++at;
    }
    int dash = 6;
    while (dash < n && strcmp(field[dash], "-") != 0) ++dash;
    if (dash + 3 >= n) continue;  // no type, source and super options
    const char* type = field[dash + 1];
    const char* super = field[dash + 3];
    Mount* m = nullptr;
    if (strcmp(type, "cgroup") == 0 && HasToken(super, "memory")) {
      m = v1;
    } else if (strcmp(type, "cgroup2") == 0) {
      m = v2;
    }
    if (m == nullptr || m->found) continue;
    Unescape(field[3]);
    Unescape(field[4]);
    m->found = Append(m->root, sizeof m->root, field[3]) &&
               Append(m->point, sizeof m->point, root, field[4]);
  }
}

// The limit in one cgroup directory's file; 0 when unlimited or unreadable.
uint64_t ReadLimitFile(const char* dir, const char* file, bool v1) {
  char path[kMaxPath + 32];
  if (!Append(path, sizeof path, dir, "/", file)) return 0;
  LineReader in(path);
  char line[64];
  if (!in.Next(line, sizeof line)) return 0;
  uint64_t v = 0;
  const char* at = line;
  if (*at < '0' || *at > '9') return 0;  // "max", garbage
  for (; *at >= '0' && *at <= '9'; ++at) {
    if (v > (UINT64_MAX - 9) / 10) return 0;
    v = v * 10 + static_cast<uint64_t>(*at - '0');
  }
  if (v1 && v >= kV1Unlimited) return 0;
  return v;
}

// The tightest limit from the process's directory up to the mount point.
uint64_t TightestUpTo(const Mount& m, const char* cg_path, const char* file, bool v1) {
  // The part of the cgroup path below the mount's root. A root of "/" is the
  // whole hierarchy; a container sees its own cgroup as root (and its
  // /proc/self/cgroup may name a path outside it: then the mount point is the
  // process's cgroup, as the JVM takes it).
  const char* rel = "";
  const size_t rlen = strlen(m.root);
  if (strcmp(m.root, "/") == 0) {
    rel = cg_path;
  } else if (strncmp(cg_path, m.root, rlen) == 0 &&
             (cg_path[rlen] == '/' || cg_path[rlen] == '\0')) {
    rel = cg_path + rlen;
  }
  char dir[kMaxPath];
  if (!Append(dir, sizeof dir, m.point, strcmp(rel, "/") == 0 ? "" : rel)) return 0;
  size_t floor = strlen(m.point);
  while (floor > 1 && m.point[floor - 1] == '/') --floor;  // "/sys/fs/cgroup/" as point
  uint64_t tightest = 0;
  for (;;) {
    const uint64_t v = ReadLimitFile(dir, file, v1);
    if (v != 0 && (tightest == 0 || v < tightest)) tightest = v;
    size_t len = strlen(dir);
    if (len <= floor) break;
    while (len > floor && dir[len - 1] != '/') --len;  // drop the last part
    while (len > floor && dir[len - 1] == '/') --len;  // and its slash(es)
    dir[len] = '\0';
  }
  return tightest;
}

}  // namespace

CgroupLimit ReadCgroupLimit(const char* root) {
  const ErrnoKeeper keep_errno;
  CgroupLimit out;
  if (root == nullptr) root = "";
  if (strlen(root) >= kMaxPath / 2) return out;
  // ~16 KiB of buffers: on the stack of the caller's thread, as the callers
  // (pool default capacity, joining a shared pool) run rarely, never deep.
  Membership membership;
  Mount v1, v2;
  ReadMembership(root, &membership);
  ReadMounts(root, &v1, &v2);
  if (membership.v1 && v1.found) {
    out.version = CgroupVersion::kV1;
    out.bytes = TightestUpTo(v1, membership.v1_path, "memory.limit_in_bytes", true);
  } else if (membership.v2 && v2.found) {
    out.version = CgroupVersion::kV2;
    out.bytes = TightestUpTo(v2, membership.v2_path, "memory.max", false);
  }
  return out;
}

// os.h: here rather than in os.cc, so that os.cc never calls this file (which
// calls os.cc's fault seam): the files of platform/ call one way.
uint64_t CgroupMemoryLimit() { return ReadCgroupLimit("").bytes; }

}  // namespace execmem::os
