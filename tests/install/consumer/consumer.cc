// A C++ program using an installed execmem (see consumer.c): the C++ API,
// built as C++17, with nothing but what the package provides on its link line.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <execmem.hpp>
#include <memory_resource>
#include <string>
#include <vector>

#define CHECK(cond, what)                                                   \
  do {                                                                      \
    if (!(cond)) {                                                          \
      std::fprintf(stderr, "consumer.cc: %s\n", std::string(what).c_str()); \
      return 1;                                                             \
    }                                                                       \
  } while (0)

int main() {
  CHECK(std::string(execmem_version()) == EXECMEM_VERSION_STRING, "version mismatch");

  execmem::Result<std::size_t> bad = execmem::ParseSize("max", "lots");
  CHECK(!bad.ok() && bad.status().code() == EINVAL, "ParseSize(lots): " + bad.status().ToString());
  bool thrown = false;
  try {
    (void)bad.value();
  } catch (const execmem::BadResultAccess&) {
    thrown = true;
  }
  CHECK(thrown, "value() of a failed Result did not throw");
  CHECK(*execmem::ParseSize("max", "2k") == 2048, "ParseSize(2k)");

  execmem::ExecutorConfig config;
  config.name = "consumer-cc";
  config.initial = "1m";
  config.max = "8m";
  config.overhead = "512k";
  execmem::Result<execmem::Executor> e = execmem::Executor::Create(config);
  CHECK(e.ok(), "create: " + e.status().ToString());
  {
    execmem::ExecutorScope scope(*e);
    execmem::MemoryResource resource;
    std::pmr::vector<int> v(&resource);
    v.resize(100000);
    CHECK(execmem_owns(v.data()), "pmr vector not from execmem");
    std::string report;
    try {
      void* p = execmem::allocate(std::size_t{64} << 20);
      execmem::deallocate(p);
    } catch (const execmem::OutOfMemory& oom) {
      report = oom.what();
    }
    CHECK(report.find("consumer-cc") != std::string::npos, "OutOfMemory report: '" + report + "'");
  }
  execmem::Status st = e->Destroy();
  CHECK(st.ok(), "destroy: " + st.ToString());
  std::printf("consumer.cc: execmem %s ok\n", execmem_version());
  return 0;
}
