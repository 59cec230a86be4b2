// Hash aggregation, the shape of a query engine's GROUP BY: each task builds a
// hash table of small nodes (map nodes, label strings, growing sample
// vectors), a second table keyed by heap strings, ranks the groups and drops
// everything at the end of the task. Task sizes vary, so the allocator sees the
// footprint rise and fall the way an executor's does.
#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "workload_common.h"

namespace {

struct Agg {
  int64_t sum = 0;
  int64_t count = 0;
  std::string label;              // longer than the small-string buffer: a heap block
  std::vector<uint32_t> samples;  // grows 1, 2, 4, 8: several reallocations per group
};

constexpr uint64_t kRowsPerTask = 400000;
constexpr uint64_t kTasksPerScale = 2;
constexpr size_t kMaxSamples = 8;
constexpr size_t kTopGroups = 100;

std::string MakeLabel(bench::Rng& rng, uint64_t key) {
  std::string label = "group-" + std::to_string(key) + "-";
  const size_t pad = rng.Range(12, 48);
  for (size_t i = 0; i < pad; ++i) label.push_back(static_cast<char>('a' + rng.Next() % 26));
  return label;
}

uint64_t RunTask(uint64_t task) {
  bench::Rng rng(0x5eed0000 + task);
  const uint64_t rows = kRowsPerTask / 2 + rng.Next() % kRowsPerTask;
  const uint64_t distinct = rows / 4 + 1;

  std::unordered_map<uint64_t, Agg> by_key;
  std::unordered_map<std::string, int64_t> by_name;
  static const char* const kRegions[] = {"north-america", "south-america", "europe-west",
                                         "europe-east",   "asia-pacific",  "middle-east"};
  for (uint64_t r = 0; r < rows; ++r) {
    const uint64_t key = rng.Skewed(distinct);
    const int64_t value = static_cast<int64_t>(rng.Next() % 1000);
    auto [it, inserted] = by_key.try_emplace(key);
    Agg& agg = it->second;
    if (inserted) agg.label = MakeLabel(rng, key);
    agg.sum += value;
    ++agg.count;
    if (agg.samples.size() < kMaxSamples) agg.samples.push_back(static_cast<uint32_t>(value));

    if ((r & 3) == 0) {
      std::string name = "customer-" + std::to_string(key % 50000) + "/" + kRegions[key % 6];
      by_name[std::move(name)] += value;
    }
  }

  std::vector<std::pair<int64_t, const Agg*>> ranked;
  ranked.reserve(by_key.size());
  for (const auto& [key, agg] : by_key) ranked.emplace_back(agg.sum, &agg);
  const size_t top = std::min(kTopGroups, ranked.size());
  std::partial_sort(
      ranked.begin(), ranked.begin() + top, ranked.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second->label < b.second->label;
      });

  uint64_t h = bench::Mix(by_key.size(), by_name.size());
  for (size_t i = 0; i < top; ++i) {
    h = bench::Mix(h, static_cast<uint64_t>(ranked[i].first));
    h = bench::Mix(h, std::hash<std::string>{}(ranked[i].second->label));
    for (uint32_t s : ranked[i].second->samples) h = bench::Mix(h, s);
  }
  int64_t name_total = 0;
  for (const auto& [name, total] : by_name) name_total += total + static_cast<int64_t>(name.size());
  return bench::Mix(h, static_cast<uint64_t>(name_total));
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::ParseArgs(argc, argv, "hashagg");
  uint64_t checksum = 0;
  for (uint64_t task = 0; task < args.scale * kTasksPerScale; ++task) {
    checksum = bench::Mix(checksum, RunTask(task));
  }
  bench::PrintChecksum(checksum);
  return 0;
}
