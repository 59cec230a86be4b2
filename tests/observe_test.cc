// Observability (issue 11): path patterns (api/output_path.h), the
// observability options, and the timeline through the C API.
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "api/options.h"
#include "api/output_path.h"
#include "execmem.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace execmem {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// ---- path patterns ----------------------------------------------------------------

TEST(OutputPath, ExpandsPidStartTimeAndPercent) {
  EXPECT_EQ(output_path::Expand("/tmp/s.%p.json", 123, 0), "/tmp/s.123.json");
  EXPECT_EQ(output_path::Expand("a%%b", 1, 0), "a%b");
  EXPECT_EQ(output_path::Expand("%p-%p", 7, 0), "7-7");
  // 2026-12-01 10:45:12 UTC.
  EXPECT_EQ(output_path::Expand("t.%t", 1, 1796121912), "t.20261201T104512Z");
  EXPECT_EQ(output_path::Expand(" plain ", 1, 0), "plain");
  EXPECT_TRUE(output_path::IsPerProcess("x.%p"));
  EXPECT_TRUE(output_path::IsPerProcess("x.%t"));
  EXPECT_FALSE(output_path::IsPerProcess("x.%%p"));
  EXPECT_FALSE(output_path::IsPerProcess("x"));
  const std::string here = output_path::ExpandForThisProcess("s.%p");
  EXPECT_EQ(here, "s." + std::to_string(getpid()));
}

TEST(OutputPath, RefusesBadPatternsAndFormatNames) {
  EXPECT_TRUE(output_path::Check("X", "/tmp/a.%p.%t.%%.json").ok());
  EXPECT_TRUE(output_path::Check("X", "./json").ok());
  const std::map<std::string, std::string> bad = {
      {"/tmp/a.%q", "unknown %q (write %% for a %)"},
      {"/tmp/a%", "a % at the end"},
      {"%d", "unknown %d"},
      {"json", "a format's name, not a path (write ./json for a file of that name)"},
      {"TEXT", "a format's name"},
      {"prometheus", "a format's name"},
      {"/tmp/", "a directory"},
      {"  ", "empty"},
  };
  for (const auto& [pattern, reason] : bad) {
    const Status status = output_path::Check("EXECMEM_TIMELINE", pattern);
    ASSERT_FALSE(status.ok()) << pattern;
    const std::string message(status.message());
    EXPECT_THAT(message, StartsWith("invalid EXECMEM_TIMELINE \"")) << pattern;
    EXPECT_THAT(message, HasSubstr(reason)) << pattern;
    EXPECT_THAT(message, HasSubstr("%p is the process id")) << pattern;  // the hint
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

// ---- the options ------------------------------------------------------------------

Result<options::ProcessOptions> Read(const std::map<std::string, std::string>& env) {
  return options::ReadProcessOptions([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

std::string Error(const std::map<std::string, std::string>& env) {
  Result<options::ProcessOptions> o = Read(env);
  if (o.ok()) {
    ADD_FAILURE() << "accepted: " << env.begin()->first << "=" << env.begin()->second;
    return "";
  }
  return std::string(o.status().message());
}

TEST(ObserveOptions, DefaultsAndValues) {
  Result<options::ProcessOptions> o = Read({});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->timeline_path, "");
  EXPECT_EQ(o->prometheus_path, "");
  EXPECT_EQ(o->timeline_ms, 1000u);
  EXPECT_EQ(o->timeline_max, uint64_t{64} << 20);
  o = Read({{"EXECMEM_TIMELINE", "tl.%p.jsonl"},
            {"EXECMEM_TIMELINE_MS", "250"},
            {"EXECMEM_TIMELINE_MAX", "1m"},
            {"EXECMEM_PROMETHEUS", "/var/lib/node_exporter/execmem.%p.prom"},
            {"EXECMEM_STATS", "stats.%p.%t.json"}});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->timeline_path, "tl.%p.jsonl");
  EXPECT_EQ(o->timeline_ms, 250u);
  EXPECT_EQ(o->timeline_max, uint64_t{1} << 20);
  EXPECT_EQ(o->prometheus_path, "/var/lib/node_exporter/execmem.%p.prom");
  EXPECT_EQ(o->stats_path, "stats.%p.%t.json");
  // What EXECMEM_STATS accepted before still works.
  for (const char* v : {"off", "0", "stderr", "1", "./json", "out/report.json"}) {
    EXPECT_TRUE(Read({{"EXECMEM_STATS", v}}).ok()) << v;
  }
}

TEST(ObserveOptions, BadValuesAreRefusedWithAHint) {
  EXPECT_THAT(Error({{"EXECMEM_STATS", "json"}}),
              HasSubstr("invalid EXECMEM_STATS \"json\": a format's name, not a path (write "
                        "./json for a file of that name); expected off (or 0), stderr (or 1), "
                        "or a file path"));
  EXPECT_THAT(Error({{"EXECMEM_STATS", "text"}}), HasSubstr("write ./text"));
  EXPECT_THAT(Error({{"EXECMEM_STATS", "s.%x.json"}}), HasSubstr("unknown %x"));
  EXPECT_THAT(Error({{"EXECMEM_TIMELINE", "t.%"}}), HasSubstr("a % at the end"));
  EXPECT_THAT(Error({{"EXECMEM_PROMETHEUS", "prom"}}), HasSubstr("a format's name"));
  EXPECT_THAT(Error({{"EXECMEM_TIMELINE_MS", "0"}}),
              HasSubstr("invalid EXECMEM_TIMELINE_MS \"0\": zero; expected milliseconds"));
  EXPECT_THAT(Error({{"EXECMEM_TIMELINE_MS", "-5"}}), HasSubstr("not a whole number"));
  EXPECT_THAT(Error({{"EXECMEM_TIMELINE_MS", "soon"}}), HasSubstr("not a whole number"));
  EXPECT_THAT(Error({{"EXECMEM_TIMELINE_MAX", "1k"}}), HasSubstr("below 64k"));
  EXPECT_THAT(Error({{"EXECMEM_TIMELINE_MAX", "lots"}}),
              HasSubstr("invalid EXECMEM_TIMELINE_MAX \"lots\""));
}

// ---- the timeline through the C API -------------------------------------------------

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string TempPattern(const std::string& name) {
  return ::testing::TempDir() + "/execmem-observe-" + std::to_string(getpid()) + "-" + name;
}

TEST(TimelineApi, StartWritesAFirstSampleAndStopTheFinalOne) {
  const std::string pattern = TempPattern("tl.%p.jsonl");
  const std::string path = output_path::ExpandForThisProcess(pattern);
  unlink(path.c_str());
  ASSERT_EQ(execmem_timeline_start(pattern.c_str(), 3600000), 0) << execmem_last_error();
  void* block = execmem_malloc(3 << 20);  // in the final sample
  ASSERT_NE(block, nullptr);
  ASSERT_EQ(execmem_timeline_stop(), 0);
  execmem_free(block);
  const std::vector<std::string> lines = ReadLines(path);
  // The header, the first sample, the final sample: the hour-long interval
  // leaves no room for another.
  ASSERT_EQ(lines.size(), 3u) << path;
  EXPECT_THAT(lines[0], StartsWith("{\"timeline\":1,\"pid\":" + std::to_string(getpid()) + ","));
  EXPECT_THAT(lines[0], HasSubstr("\"interval_ms\":3600000"));
  EXPECT_THAT(lines[1], HasSubstr("\"final\":false"));
  EXPECT_THAT(lines[2], HasSubstr("\"final\":true"));
  EXPECT_THAT(lines[2], HasSubstr("{\"name\":\"default\",\"used\":"));
  // Stopped: nothing more is written, and a second stop says so.
  EXPECT_EQ(execmem_timeline_stop(), EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("no timeline running"));
  EXPECT_EQ(ReadLines(path).size(), 3u);
  unlink(path.c_str());
}

TEST(TimelineApi, RestartReplacesTheRunningTimeline) {
  const std::string first = TempPattern("first.jsonl");
  const std::string second = TempPattern("second.jsonl");
  ASSERT_EQ(execmem_timeline_start(first.c_str(), 3600000), 0) << execmem_last_error();
  ASSERT_EQ(execmem_timeline_start(second.c_str(), 3600000), 0) << execmem_last_error();
  // The first got its final sample when the second started.
  std::vector<std::string> lines = ReadLines(first);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[2], HasSubstr("\"final\":true"));
  ASSERT_EQ(execmem_timeline_stop(), 0);
  EXPECT_EQ(ReadLines(second).size(), 3u);
  unlink(first.c_str());
  unlink(second.c_str());
}

TEST(TimelineApi, BadArgumentsAreRefused) {
  const std::string ok = TempPattern("never.jsonl");
  EXPECT_EQ(execmem_timeline_start(ok.c_str(), 0), EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("interval_ms 0: expected milliseconds"));
  EXPECT_EQ(execmem_timeline_start(ok.c_str(), -5), EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("interval_ms -5"));
  EXPECT_EQ(execmem_timeline_start(nullptr, 100), EINVAL);
  EXPECT_EQ(execmem_timeline_start("/nonexistent-dir/t.jsonl", 100), EINVAL);
  EXPECT_THAT(execmem_last_error(),
              HasSubstr("cannot create /nonexistent-dir/t.jsonl: No such file or directory"));
  EXPECT_EQ(execmem_timeline_start("json", 100), EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("a format's name"));
  EXPECT_EQ(execmem_timeline_start(TempPattern("t.%y").c_str(), 100), EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("unknown %y"));
  EXPECT_EQ(access(ok.c_str(), F_OK), -1);     // nothing written
  EXPECT_EQ(execmem_timeline_stop(), EINVAL);  // nothing started
}

}  // namespace
}  // namespace execmem
