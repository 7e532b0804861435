// Helpers for the platform tests: real processes, bounded waits, fd counts.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <gtest/gtest.h>

#include "platform/process.h"
#include "platform/spawn.h"
#include "platform/spawn_child.h"

namespace slate::platform::testing {

using namespace std::chrono_literals;

// Upper bound for anything a test waits for; reached only when it fails.
inline constexpr std::chrono::milliseconds kPatience = 10s;

// Entries of /proc/self/fd, not counting the one used to list them.
int CountOpenFds();

// Polls `done` (every 200 us) until it is true or `timeout` passes.
bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = kPatience);

// Waits for the pidfd to become readable, then reaps. nullopt on timeout.
std::optional<ExitStatus> WaitForExit(Process& process,
                                      std::chrono::milliseconds timeout = kPatience);

// Reads `fd` until EOF (or `timeout`), polling, so it works on blocking and
// non-blocking descriptors alike.
std::string ReadAll(int fd, std::chrono::milliseconds timeout = kPatience);

// Reads `fd` up to and including the first '\n' (or EOF / timeout).
std::string ReadLine(int fd, std::chrono::milliseconds timeout = kPatience);

// The state letter from /proc/PID/stat ('R', 'S', 'Z', ...), or 0 if there
// is no such process (anymore).
char ProcessState(pid_t pid);

// Value of "Key:" in /proc/PID/status, e.g. StatusField(pid, "SigBlk").
std::string StatusField(pid_t pid, const std::string& key);

// /bin/sh -c `script`, PATH=/usr/bin:/bin, with these descriptors.
SpawnRequest ShellRequest(const std::string& script, std::vector<FdGrant> fds = {});

// Names the instances of tests run with each launcher: "clone3", "clone".
std::string LauncherName(const ::testing::TestParamInfo<internal::SpawnMethod>& info);

// Every test checks that it leaves no descriptor open behind it.
class PlatformTest : public ::testing::Test {
 protected:
  void SetUp() override { fds_at_start_ = CountOpenFds(); }
  void TearDown() override { EXPECT_EQ(CountOpenFds(), fds_at_start_) << "descriptor leak"; }

 private:
  int fds_at_start_ = 0;
};

}  // namespace slate::platform::testing
