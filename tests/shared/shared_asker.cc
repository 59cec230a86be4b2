// A member of a shared pool that links execmem (tests/shared/shared_ask_test.py
// drives it): commands on stdin, one answer line each on stdout.
//
//   join NAME CAPACITY WAIT_MS      execmem_shared_join ("-" for no capacity)
//   cxxjoin NAME CAPACITY WAIT_MS   execmem::SharedJoin
//   create NAME                     an executor (initial 0, max 1g); the
//                                   main thread binds to it
//   hook any|alloc                  a spill hook freeing held blocks, flagged
//                                   EXECMEM_SPILL_ANY_THREAD or not
//   alloc MIB BLOCK_KIB             takes MIB MiB in blocks of BLOCK_KIB KiB,
//                                   touching each: "held BYTES", or
//                                   "refused BYTES <report>" at the first refusal
//   free                            frees every held block on this thread
//   hookinfo                        "calls N off_main N freed BYTES"
//   forkhold MIB                    forks a child that takes MIB MiB in 1 MiB
//                                   blocks and then waits to be killed:
//                                   "child PID held BYTES"
//   exit                            returns from main (exit: atexit handlers)
//
//   shared_asker --view NAME        one JSON line: the pool read without joining
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "budget/shared_ledger.h"
#include "execmem.h"
#include "execmem.hpp"

namespace {

std::mutex g_mu;
std::vector<void*> g_blocks;  // under g_mu
size_t g_block_bytes = 0;
execmem_executor_t* g_exec = nullptr;
pthread_t g_main;
std::atomic<uint64_t> g_hook_calls{0}, g_hook_off_main{0}, g_hook_freed{0};

size_t FreeHeld(void*, size_t bytes) {
  g_hook_calls.fetch_add(1);
  if (!pthread_equal(pthread_self(), g_main)) g_hook_off_main.fetch_add(1);
  size_t freed = 0;
  std::lock_guard<std::mutex> lock(g_mu);
  while (freed < bytes && !g_blocks.empty()) {
    execmem_free(g_blocks.back());
    g_blocks.pop_back();
    freed += g_block_bytes;
  }
  g_hook_freed.fetch_add(freed);
  return freed;
}

std::string OneLine(const char* text) {
  std::string s(text == nullptr ? "" : text);
  for (char& c : s) {
    if (c == '\n') c = ' ';
  }
  return s;
}

int View(const char* pool) {
  static execmem::budget::shared::PoolView v;
  char msg[512];
  if (execmem::budget::shared::ReadPool(pool, &v, msg, sizeof msg) != 0) {
    fprintf(stderr, "%s\n", msg);
    return 1;
  }
  printf(
      "{\"capacity\": %llu, \"total\": %llu, \"refusals\": %llu, \"reclaimed_members\": %llu, "
      "\"reclaimed_bytes\": %llu, \"members\": [",
      static_cast<unsigned long long>(v.capacity), static_cast<unsigned long long>(v.total),
      static_cast<unsigned long long>(v.refusals),
      static_cast<unsigned long long>(v.reclaimed_members),
      static_cast<unsigned long long>(v.reclaimed_bytes));
  for (uint32_t i = 0; i < v.members; ++i) {
    const auto& m = v.member[i];
    printf(
        "%s{\"pid\": %d, \"reserved\": %llu, \"granted\": %llu, \"asked\": %llu, "
        "\"answered\": %llu}",
        i ? ", " : "", m.pid, static_cast<unsigned long long>(m.reserved),
        static_cast<unsigned long long>(m.granted), static_cast<unsigned long long>(m.asked),
        static_cast<unsigned long long>(m.answered));
  }
  printf("]}\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "--view") == 0) return View(argv[2]);
  g_main = pthread_self();
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd == "join" || cmd == "cxxjoin") {
      std::string name, capacity;
      int wait = -1;
      in >> name >> capacity >> wait;
      if (capacity == "-") capacity.clear();
      int rc;
      std::string message;
      if (cmd == "join") {
        rc = execmem_shared_join(name.c_str(), capacity.c_str(), 0, wait);
        message = execmem_last_error();
      } else {
        execmem::SharedPoolOptions o;
        o.capacity = capacity;
        o.wait_ms = wait;
        const execmem::Status st = execmem::SharedJoin(name, o);
        rc = st.code();
        message = st.message();
      }
      printf("%s %d %s\n", rc == 0 ? "ok" : "err", rc, OneLine(message.c_str()).c_str());
    } else if (cmd == "create") {
      std::string name;
      in >> name;
      execmem_executor_options_t o = {name.c_str(), "0", "1g", "0", 0};
      const int rc = execmem_executor_create(&o, &g_exec);
      if (rc == 0) execmem_bind(g_exec);
      printf("%s %d %s\n", rc == 0 ? "ok" : "err", rc,
             rc ? OneLine(execmem_last_error()).c_str() : "");
    } else if (cmd == "hook") {
      std::string kind;
      in >> kind;
      const int rc = execmem_executor_add_spill_hook_flags(
          g_exec, "free-held", 0, &FreeHeld, nullptr, kind == "any" ? EXECMEM_SPILL_ANY_THREAD : 0);
      printf("%s %d\n", rc == 0 ? "ok" : "err", rc);
    } else if (cmd == "alloc") {
      size_t mib = 0, kib = 0;
      in >> mib >> kib;
      const size_t block = kib << 10;
      size_t held = 0;
      bool refused = false;
      while (held < (mib << 20)) {
        void* p = execmem_malloc(block);
        if (p == nullptr) {
          refused = true;
          break;
        }
        memset(p, 1, block);
        std::lock_guard<std::mutex> lock(g_mu);
        g_block_bytes = block;
        g_blocks.push_back(p);
        held += block;
      }
      if (refused) {
        printf("refused %zu %s\n", held, OneLine(execmem_last_error()).c_str());
      } else {
        printf("held %zu\n", held);
      }
    } else if (cmd == "free") {
      std::lock_guard<std::mutex> lock(g_mu);
      for (void* p : g_blocks) execmem_free(p);
      g_blocks.clear();
      printf("freed\n");
    } else if (cmd == "hookinfo") {
      printf("calls %llu off_main %llu freed %llu\n",
             static_cast<unsigned long long>(g_hook_calls.load()),
             static_cast<unsigned long long>(g_hook_off_main.load()),
             static_cast<unsigned long long>(g_hook_freed.load()));
    } else if (cmd == "forkhold") {
      size_t mib = 0;
      in >> mib;
      fflush(stdout);
      int fds[2];
      if (pipe(fds) != 0) return 3;
      const pid_t pid = fork();
      if (pid < 0) return 3;
      if (pid == 0) {
        close(fds[0]);
        size_t held = 0;
        for (; held < (mib << 20); held += 1 << 20) {
          void* p = execmem_malloc(1 << 20);
          if (p == nullptr) break;
          memset(p, 1, 1 << 20);
          std::lock_guard<std::mutex> lock(g_mu);
          g_block_bytes = 1 << 20;
          g_blocks.push_back(p);
        }
        if (write(fds[1], &held, sizeof held) != sizeof held) _exit(3);
        for (;;) pause();
      }
      close(fds[1]);
      size_t held = 0;
      if (read(fds[0], &held, sizeof held) != sizeof held) return 3;
      close(fds[0]);
      printf("child %d held %zu\n", pid, held);
    } else if (cmd == "exit") {
      printf("bye\n");
      fflush(stdout);
      return 0;
    } else {
      printf("err unknown command \"%s\"\n", cmd.c_str());
    }
    fflush(stdout);
  }
  return 0;
}
