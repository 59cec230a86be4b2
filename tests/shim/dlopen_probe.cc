// A library that stress_fork loads and unloads in a loop: it allocates in its
// constructor and destructor, hands blocks to its caller (freed there), and
// keeps a thread_local with a destructor, whose registration holds the
// library loaded until the thread exits.
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

std::vector<std::string> g_table = [] {
  std::vector<std::string> table;
  for (int i = 0; i < 64; ++i) table.push_back(std::string(static_cast<size_t>(i) * 7 + 1, 'p'));
  return table;
}();

thread_local std::vector<int> t_data;

}  // namespace

extern "C" __attribute__((visibility("default"))) void* probe_block(std::size_t size) {
  void* block = std::malloc(size);
  if (block != nullptr) std::memset(block, 0x3c, size);
  return block;
}

extern "C" __attribute__((visibility("default"))) std::string* probe_string(int i) {
  return new std::string(g_table[static_cast<std::size_t>(i) % g_table.size()]);
}

extern "C" __attribute__((visibility("default"))) std::size_t probe_thread_local(std::size_t n) {
  t_data.resize(n, 7);
  return t_data.size();
}
