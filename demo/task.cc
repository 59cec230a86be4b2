#include "demo/task.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "demo/hash_agg.h"
#include "demo/rows.h"

namespace execmem_demo {
namespace {

constexpr uint64_t kProgressMask = (uint64_t{1} << 16) - 1;

absl::Status Annotate(const absl::Status& s, const char* during) {
  return absl::Status(s.code(), absl::StrCat(during, ": ", s.message()));
}

absl::Status CheckAggregation(const AggTable& table, const RowGenerator& input,
                              const AggChecksum& expected) {
  AggChecksum got;
  uint64_t bad_groups = 0;
  table.ForEachGroup([&](uint64_t key, uint64_t sum, uint64_t count) {
    got.AddGroup(key, sum, count);
    if (count < input.MinCountPerKey() || count > input.MaxCountPerKey()) ++bad_groups;
  });
  if (table.groups() != input.keys() || bad_groups != 0 || !(got == expected)) {
    return absl::DataLossError(
        absl::StrCat("aggregation is wrong: ", table.groups(), " groups (expected ", input.keys(),
                     "), ", bad_groups, " with a count outside [", input.MinCountPerKey(), ", ",
                     input.MaxCountPerKey(), "], ", got.rows, " rows (expected ", expected.rows,
                     "), weighted sums ", got == expected ? "match" : "differ"));
  }
  return absl::OkStatus();
}

}  // namespace

TaskReport RunTask(const TaskInput& input, ExternalSorter& sorter,
                   std::atomic<uint64_t>* progress) {
  TaskReport report;
  const RowGenerator rows(input.seed, input.rows, std::max<uint64_t>(1, input.rows / kRowsPerKey));
  RowChecksum expected_rows;
  AggChecksum expected_agg;
  // The table cannot spill, but the sort buffer next to it can.
  auto relieve = [&sorter] { sorter.SpillOwn(); };
  {
    AggTable table;
    for (uint64_t i = 0; i < rows.rows(); ++i) {
      const Row r = rows.At(i);
      expected_rows.Add(r);
      expected_agg.AddRow(r);
      if (absl::Status s = table.Add(r.key, r.value, relieve); !s.ok()) {
        report.status = Annotate(s, "hash aggregation");
        return report;
      }
      if (absl::Status s = sorter.Add(r); !s.ok()) {
        report.status = Annotate(s, "sort");
        return report;
      }
      if ((i & kProgressMask) == kProgressMask)
        progress->fetch_add(kProgressMask + 1, std::memory_order_relaxed);
    }
    progress->fetch_add(rows.rows() & kProgressMask, std::memory_order_relaxed);
    report.groups = table.groups();
    report.status = CheckAggregation(table, rows, expected_agg);
    if (!report.status.ok()) return report;
  }  // the table's memory goes back to the executor before the merge

  RowChecksum got_rows;
  uint64_t out_of_order = 0;
  Row previous{0, 0};
  absl::Status s = sorter.Finish(
      [&](const Row& r) {
        if (got_rows.count > 0 && RowLess(r, previous)) ++out_of_order;
        previous = r;
        got_rows.Add(r);
      },
      progress);
  report.rows_sorted = got_rows.count;
  if (!s.ok()) {
    report.status = Annotate(s, "sort merge");
  } else if (out_of_order != 0 || !(got_rows == expected_rows)) {
    report.status = absl::DataLossError(absl::StrCat(
        "sort is wrong: ", got_rows.count, " rows out (", expected_rows.count, " in), ",
        out_of_order, " out of order, checksums ", got_rows == expected_rows ? "match" : "differ"));
  }
  return report;
}

}  // namespace execmem_demo
