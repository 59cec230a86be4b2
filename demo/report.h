// What the demo prints: the progress line and the final tables.
#ifndef EXECMEM_DEMO_REPORT_H_
#define EXECMEM_DEMO_REPORT_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "demo/executor_group.h"

namespace execmem_demo {

using Groups = std::vector<std::unique_ptr<ExecutorGroup>>;

// Binary units, one decimal: "512B", "1.5K", "152.3M", "4.0G".
std::string FormatBytes(uint64_t bytes);
// Counts: "950", "10.0K", "5.0M".
std::string FormatCount(uint64_t n);

// "[ 2.0s] etl 45% 120.0M/512.0M | starved 30% 47.9M/48.0M 12 spills | ..."
std::string ProgressLine(const Groups& groups, double seconds);

// One row per executor from execmem's stats, then the pool. Call after the
// tasks ended and before the executors are destroyed.
void PrintExecutorTable(std::FILE* out, const Groups& groups);
void PrintPool(std::FILE* out);
// "results: OK  <name>  ..." or "results: FAILED  <name>  <why>" per executor;
// returns whether every executor's results were right.
bool PrintResults(std::FILE* out, const Groups& groups);

}  // namespace execmem_demo

#endif  // EXECMEM_DEMO_REPORT_H_
