// api/ — the entry points and every format. Contract of this layer (the only
// header of api/ that another layer includes; the shim's start-up uses it).
//
// Layer order: platform -> pool -> budget -> cache -> executor -> api -> shim.
// api/ includes the contract headers of every layer below it (platform/os.h,
// pool/pool.h, budget/budget.h, cache/cache.h, executor/executor.h) and is
// included only by shim/. Nothing below calls into it; the one value it
// hands down is whether secure mode was asked for (secure::g_requested,
// defined in options.cc for cache/secure.h).
//
// Map — which file holds what:
//   api.h                  this contract
//   api.cc                 the C API (include/execmem.h) and the C++ API
//                          (include/execmem.hpp): validation, error texts,
//                          handles; calls the executor and cache layers
//   options.h/.cc          the one table of EXECMEM_* options: parse, defaults, help
//   output_path.h/.cc      the paths of the files execmem writes (patterns per process)
//   snapshot.h             one consistent read of every executor's stats
//   stats_format.h/.cc     the stats report: JSON and text
//   prometheus_format.h/.cc  the Prometheus text format
//   timeline.h/.cc         the timeline sampler and its files
//   timeline_format.cc     the timeline's JSON line
//   version.cc             execmem_version
//
// Inner order — a .cc file calls functions of the files before it only
// (the layering test checks it from the object files):
//   output_path -> stats_format -> prometheus_format -> timeline_format
//   -> options -> api -> timeline -> version
//
// Invariants, and who keeps them:
//   * The formats are pure functions of snapshots (testable without an
//     allocator); only api.cc and timeline.cc take snapshots.
//   * Every error leaves its message in the thread's last-error buffer
//     (ThreadLastError, cache/heap.h) before a call returns nonzero.
//   * The options table is the only place an option's name, variable and
//     default are written (options.cc's static_asserts).
#ifndef EXECMEM_API_API_H_
#define EXECMEM_API_API_H_

#include "api/options.h"
#include "api/output_path.h"
#include "api/prometheus_format.h"
#include "api/snapshot.h"
#include "api/stats_format.h"
#include "api/timeline.h"

#endif  // EXECMEM_API_API_H_
