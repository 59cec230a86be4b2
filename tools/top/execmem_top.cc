// execmem-top: the members of a shared pool (budget/shared_ledger.h).
//
//   execmem-top [-d SECONDS] [-n COUNT] NAME   live view, refreshed in place
//   execmem-top --json NAME                    one snapshot as one JSON object
//
// Reads /dev/shm/execmem.NAME read-only: it never joins the pool nor changes
// it. A member that exited keeps its slot (and what it held) until a member
// that needs room reclaims it: shown "(exited)", and "alive": false in JSON.
// Exit status 0, 1 when the pool cannot be read (one line on stderr naming
// the file and why), 2 on a usage error.
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "budget/shared_ledger.h"
#include "platform/shm.h"

namespace {

using execmem::budget::shared::MemberView;
using execmem::budget::shared::PoolView;

constexpr char kUsage[] =
    "usage: execmem-top [-d SECONDS] [-n COUNT] NAME | execmem-top --json NAME\n";

std::string Escaped(const char* s) {
  std::string out;
  for (; *s != '\0'; ++s) {
    const unsigned char c = static_cast<unsigned char>(*s);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Sizes as top prints them: 1023, 12.3K, 512.0M, 1.5G.
std::string Human(uint64_t b) {
  const char* units = "BKMGTP";
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(b));
  } else {
    snprintf(buf, sizeof buf, "%.1f%c", v, units[u]);
  }
  return buf;
}

int Read(const char* name, PoolView* v) {
  char msg[512];
  if (execmem::budget::shared::ReadPool(name, v, msg, sizeof msg) != 0) {
    fprintf(stderr, "%s\n", msg);
    return 1;
  }
  return 0;
}

int Json(const char* name) {
  auto v = std::make_unique<PoolView>();
  if (Read(name, v.get()) != 0) return 1;
  printf(
      "{\"name\": \"%s\", \"capacity\": %llu, \"reserved\": %llu, \"granted\": %llu, "
      "\"members\": [",
      Escaped(name).c_str(), static_cast<unsigned long long>(v->capacity),
      static_cast<unsigned long long>(v->reserved), static_cast<unsigned long long>(v->granted));
  for (uint32_t i = 0; i < v->members; ++i) {
    const MemberView& m = v->member[i];
    printf(
        "%s{\"pid\": %d, \"program\": \"%s\", \"reserved\": %llu, \"granted\": %llu, "
        "\"used\": %llu, \"footprint\": %llu, \"resident\": %llu, \"asked\": %llu, "
        "\"answered\": %llu, \"alive\": %s}",
        i == 0 ? "" : ", ", m.pid, Escaped(m.program).c_str(),
        static_cast<unsigned long long>(m.reserved), static_cast<unsigned long long>(m.granted),
        static_cast<unsigned long long>(m.used), static_cast<unsigned long long>(m.footprint),
        static_cast<unsigned long long>(execmem::os::ProcessResidentBytes(m.pid)),
        static_cast<unsigned long long>(m.asked), static_cast<unsigned long long>(m.answered),
        execmem::os::ProcessAlive(m.pid, m.start_ticks) ? "true" : "false");
  }
  printf("]}\n");
  return fflush(stdout) == 0 ? 0 : 1;
}

int Live(const char* name, double seconds, long count) {
  auto v = std::make_unique<PoolView>();
  const bool tty = isatty(1) != 0;
  for (long n = 0; count <= 0 || n < count; ++n) {
    if (n > 0) usleep(static_cast<useconds_t>(seconds * 1e6));
    if (Read(name, v.get()) != 0) return 1;
    std::string out = tty ? "\x1b[H\x1b[2J" : "";  // home, clear: refreshed in place
    char line[512];
    const uint64_t held = v->reserved + v->granted;
    snprintf(line, sizeof line,
             "pool %s  capacity %s  reserved %s  granted %s  free %s  members %u\n"
             "joins %llu  refusals %llu  dead reclaimed %llu (%s)  lock repairs %llu\n\n",
             name, Human(v->capacity).c_str(), Human(v->reserved).c_str(),
             Human(v->granted).c_str(), Human(held >= v->capacity ? 0 : v->capacity - held).c_str(),
             v->members, static_cast<unsigned long long>(v->joins),
             static_cast<unsigned long long>(v->refusals),
             static_cast<unsigned long long>(v->reclaimed_members),
             Human(v->reclaimed_bytes).c_str(), static_cast<unsigned long long>(v->repairs));
    out += line;
    snprintf(line, sizeof line, "%8s %-16s %9s %9s %9s %9s %9s %7s %8s\n", "PID", "PROGRAM",
             "RESERVED", "GRANTED", "USED", "FOOTPRINT", "RSS", "ASKED", "ANSWERED");
    out += line;
    for (uint32_t i = 0; i < v->members; ++i) {
      const MemberView& m = v->member[i];
      // An exited member keeps its slot until a member needing room reclaims it.
      const bool alive = execmem::os::ProcessAlive(m.pid, m.start_ticks);
      snprintf(line, sizeof line, "%8d %-16s %9s %9s %9s %9s %9s %7llu %8llu%s\n", m.pid, m.program,
               Human(m.reserved).c_str(), Human(m.granted).c_str(), Human(m.used).c_str(),
               Human(m.footprint).c_str(), Human(execmem::os::ProcessResidentBytes(m.pid)).c_str(),
               static_cast<unsigned long long>(m.asked),
               static_cast<unsigned long long>(m.answered), alive ? "" : "  (exited)");
      out += line;
    }
    fwrite(out.data(), 1, out.size(), stdout);
    fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.0;
  long count = 0;
  bool json = false;
  const char* name = nullptr;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") {
      json = true;
    } else if ((a == "-d" || a == "-n") && i + 1 < argc) {
      char* end = nullptr;
      const double x = strtod(argv[++i], &end);
      if (end == argv[i] || *end != '\0' || !(x > 0) || x > 86400) {
        fprintf(stderr, "execmem-top: %s %s: a positive number expected\n", a.c_str(), argv[i]);
        return 2;
      }
      if (a == "-d") {
        seconds = x;
      } else {
        count = static_cast<long>(x);
      }
    } else if (a == "-h" || a == "--help") {
      fputs(kUsage, stdout);
      return 0;
    } else if (name == nullptr && !a.empty() && a[0] != '-') {
      name = argv[i];
    } else {
      fprintf(stderr, "execmem-top: unexpected argument \"%s\"\n%s", argv[i], kUsage);
      return 2;
    }
  }
  if (name == nullptr) {
    fputs(kUsage, stderr);
    return 2;
  }
  return json ? Json(name) : Live(name, seconds, count);
}
