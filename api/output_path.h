// Paths of the files execmem writes (EXECMEM_STATS, EXECMEM_TIMELINE,
// EXECMEM_PROMETHEUS, execmem_timeline_start), as patterns that give every
// process its own file:
//   %p  the process id            (as jemalloc names its heap profiles)
//   %t  the process's start time, UTC, as 20261201T104512Z
//   %%  a literal %
// Any other %, or a % at the end, is refused: a typo would otherwise write
// one shared file. A pattern is expanded when the file is written, so that a
// forked child expands it with its own pid.
#ifndef EXECMEM_API_OUTPUT_PATH_H_
#define EXECMEM_API_OUTPUT_PATH_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "execmem.hpp"  // Status, Result

namespace execmem::output_path {

// What a path setting accepts, for messages and the options table.
inline constexpr std::string_view kPatternAccepted =
    "a file path, in which %p is the process id, %t its start time and %% a %";

// Validates a pattern: every % starts %p, %t or %%; not empty, not a
// directory (ending in /), and not a report format's name (json, text, ...:
// what a user who meant a format wrote; ./json is a file of that name).
// Messages are InvalidSetting's one line, naming `setting`.
Status Check(std::string_view setting, std::string_view pattern,
             std::string_view accepted = kPatternAccepted);

// Whether the pattern holds %p or %t.
bool IsPerProcess(std::string_view pattern);

// The path of a valid pattern for process `pid` started at `start_unix`
// (Unix seconds; 0 writes 0).
std::string Expand(std::string_view pattern, int pid, uint64_t start_unix);

// Expand for the calling process (os::ProcessId, os::ProcessStartTime).
std::string ExpandForThisProcess(std::string_view pattern);

// The pattern made absolute against the current directory (the program may
// change directory before the file is written). Fails when the current
// directory cannot be read.
Result<std::string> Absolute(std::string_view setting, std::string_view pattern,
                             std::string_view accepted = kPatternAccepted);

}  // namespace execmem::output_path

#endif  // EXECMEM_API_OUTPUT_PATH_H_
