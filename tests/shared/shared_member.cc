// A member of a shared pool for the process tests (tests/shared/*.sh):
//
//   shared_member NAME [--capacity BYTES] [--mode 0600|0660] [--grant BYTES]
//                      [--reserve BYTES] [--hold]
//
// Joins (or creates) pool NAME, takes what it is told to, prints
// "created" / "joined" on stdout and any message on stderr; with --hold it
// then keeps what it holds until stdin closes. Exit 0 when a member, 1 when
// refused (the one-line message on stderr), 2 on bad arguments, 3 when a
// grant or reservation was refused.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "budget/shared_ledger.h"

int main(int argc, char** argv) {
  using namespace execmem::budget::shared;
  if (argc < 2) {
    fputs(
        "usage: shared_member NAME [--capacity B] [--mode M] [--grant B] [--reserve B] [--hold]\n",
        stderr);
    return 2;
  }
  JoinOptions o;
  o.pool = argv[1];
  o.default_capacity = uint64_t{1} << 30;
  uint64_t grant = 0, reserve = 0;
  bool hold = false;
  for (int i = 2; i < argc; ++i) {
    const bool has = i + 1 < argc;
    if (strcmp(argv[i], "--capacity") == 0 && has) {
      o.capacity = strtoull(argv[++i], nullptr, 0);
    } else if (strcmp(argv[i], "--mode") == 0 && has) {
      o.mode = static_cast<uint32_t>(strtoul(argv[++i], nullptr, 8));
    } else if (strcmp(argv[i], "--grant") == 0 && has) {
      grant = strtoull(argv[++i], nullptr, 0);
    } else if (strcmp(argv[i], "--reserve") == 0 && has) {
      reserve = strtoull(argv[++i], nullptr, 0);
    } else if (strcmp(argv[i], "--hold") == 0) {
      hold = true;
    } else {
      fprintf(stderr, "shared_member: unexpected argument \"%s\"\n", argv[i]);
      return 2;
    }
  }
  static Member m;
  char msg[512];
  const JoinStatus s = m.Join(o, msg, sizeof msg);
  if (msg[0] != '\0') fprintf(stderr, "%s\n", msg);
  if (s == JoinStatus::kRefused) return 1;
  printf("%s\n", s == JoinStatus::kCreated ? "created" : "joined");
  if ((reserve != 0 && !m.Reserve(reserve)) || (grant != 0 && !m.Grant(grant))) return 3;
  m.Publish(reserve + grant, reserve + grant);
  fflush(stdout);
  if (hold) {
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) {
    }
  }
  m.Leave();
  return 0;
}
