// Sort, the shape of an executor's external sort: rows with heap payloads are
// sorted in runs, the runs are merged into a fresh output (copying every
// payload: a wave of allocations while the runs are still live) and then the
// runs are dropped. Strings of many lengths exercise many size classes.
#include <algorithm>
#include <cstdint>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "workload_common.h"

namespace {

struct Row {
  uint64_t key;
  std::string payload;
  std::vector<int32_t> columns;
};

constexpr uint64_t kRowsPerPass = 150000;
constexpr uint64_t kPassesPerScale = 1;
constexpr size_t kRunRows = 8192;

std::string MakePayload(bench::Rng& rng) {
  // Mostly short strings with a long tail, as text columns tend to be.
  const uint64_t r = rng.Next() % 100;
  const size_t len = r < 60   ? rng.Range(16, 64)
                     : r < 95 ? rng.Range(65, 400)
                              : rng.Range(401, 3000);
  std::string s(len, 'x');
  for (size_t i = 0; i < len; i += 8) s[i] = static_cast<char>('a' + rng.Next() % 26);
  return s;
}

uint64_t RunPass(uint64_t pass) {
  bench::Rng rng(0x50f7 + pass);
  const auto by_key = [](const Row& a, const Row& b) {
    return a.key != b.key ? a.key < b.key : a.payload < b.payload;
  };

  // Sorted runs, each its own vector of rows.
  std::vector<std::vector<Row>> runs;
  for (uint64_t done = 0; done < kRowsPerPass; done += kRunRows) {
    std::vector<Row> run;
    for (size_t i = 0; i < kRunRows && done + i < kRowsPerPass; ++i) {
      Row row{rng.Next() % (kRowsPerPass * 4), MakePayload(rng), {}};
      row.columns.resize(rng.Range(1, 24));
      for (auto& c : row.columns) c = static_cast<int32_t>(rng.Next());
      run.push_back(std::move(row));
    }
    std::sort(run.begin(), run.end(), by_key);
    runs.push_back(std::move(run));
  }

  // k-way merge into copies, so the output is allocated while the input lives.
  using Cursor = std::pair<size_t, size_t>;  // run, index
  auto greater = [&](const Cursor& a, const Cursor& b) {
    return by_key(runs[b.first][b.second], runs[a.first][a.second]);
  };
  std::priority_queue<Cursor, std::vector<Cursor>, decltype(greater)> heap(greater);
  for (size_t r = 0; r < runs.size(); ++r) heap.emplace(r, 0);
  std::vector<Row> merged;
  while (!heap.empty()) {
    auto [r, i] = heap.top();
    heap.pop();
    merged.push_back(runs[r][i]);
    if (i + 1 < runs[r].size()) heap.emplace(r, i + 1);
  }
  runs.clear();
  runs.shrink_to_fit();

  // A plain string sort of the payloads too: the other half of ORDER BY on text.
  std::vector<std::string> names;
  names.reserve(merged.size());
  for (const Row& row : merged) names.push_back(row.payload.substr(0, 16 + row.key % 200));
  std::sort(names.begin(), names.end());

  uint64_t h = merged.size();
  for (size_t i = 0; i < merged.size(); i += 97) {
    h = bench::Mix(h, merged[i].key);
    h = bench::Mix(h, merged[i].payload.size());
    h = bench::Mix(h, static_cast<uint32_t>(merged[i].columns.front()));
    h = bench::Mix(h, std::hash<std::string>{}(names[i]));
  }
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::ParseArgs(argc, argv, "sort");
  uint64_t checksum = 0;
  for (uint64_t pass = 0; pass < args.scale * kPassesPerScale; ++pass) {
    checksum = bench::Mix(checksum, RunPass(pass));
  }
  bench::PrintChecksum(checksum);
  return 0;
}
