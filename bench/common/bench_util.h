// What the benchmark drivers share: the clock, statistics, the machine
// description, starting and stopping local processes, /proc readers, and
// waiting on a file with inotify. Nothing here links libslate: the drivers
// see Clean Slate only as a user does (the `slate` binary and its files).
//
// Every wait is bounded by a deadline and every process started here is
// stopped by its owner (see ChildGuard), also on failure paths.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <nlohmann/json.hpp>

namespace slate::bench {

using Json = nlohmann::json;

// CLOCK_MONOTONIC in nanoseconds; the clock the probe and the runtime read.
std::int64_t MonoNs();

// Median (mean of the two middle values for an even count) and nearest-rank
// percentile of `samples`; 0 for an empty set.
double Median(std::vector<double> samples);
double Percentile(std::vector<double> samples, double p);

// {"nproc", "kernel", "cpu", "date", "loadavg_1min_at_start"} of this
// machine (the load says whether others were using it), and as one line.
Json Machine();
std::string MachineLine(const Json& machine);

// Writes `j` (indented) to `path`, creating its directory. False on failure.
bool WriteJson(const std::string& path, const Json& j);

// A fresh directory under `base` (default: $TMPDIR, else /tmp), e.g.
// "/tmp/slate-bench-recovery-XXXXXX"; "" on failure.
std::string MakeTempDir(const std::string& prefix, const std::string& base = "");

// The type of the file system holding `path`: "ext4", "tmpfs", ... or its magic in hex.
std::string FileSystemType(const std::string& path);

// Starts argv[0] (an absolute path) with our environment plus `extra_env`
// ("KEY=VALUE" each), stdout and stderr appended to `log` ("" = /dev/null).
// Returns the pid, or -1 with a message on stderr.
pid_t StartProcess(const std::vector<std::string>& argv,
                   const std::vector<std::string>& extra_env = {}, const std::string& log = "");

// Waits up to `timeout` for `pid` (our child) to end; its wait status.
std::optional<int> WaitExit(pid_t pid, std::chrono::milliseconds timeout);

// SIGTERM, wait up to `grace`, then SIGKILL and reap. Safe on pid <= 0.
// Returns how long the process took to end after SIGTERM.
std::chrono::nanoseconds StopProcess(pid_t pid, std::chrono::milliseconds grace);

// Owns a child process: SIGKILLs and reaps it on destruction unless
// released or stopped first.
class ChildGuard {
 public:
  ChildGuard() = default;
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;
  ~ChildGuard();
  pid_t pid() const { return pid_; }
  std::chrono::nanoseconds Stop(std::chrono::milliseconds grace);

 private:
  pid_t pid_ = -1;
};

// Runs argv to completion with stdout captured (stderr to /dev/null); wall
// time from just before spawning to the reaping. Killed after `timeout`.
struct RunResult {
  int status = -1;  // wait status; -1 if it could not start
  std::int64_t wall_ns = 0;
  std::string out;
};
RunResult RunToEnd(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// A field of /proc/PID/status as a number ("VmRSS" -> kB); nullopt if absent.
std::optional<long> ProcStatus(pid_t pid, const std::string& field);
// voluntary + nonvoluntary context switches summed over every thread of pid.
std::optional<long> ContextSwitches(pid_t pid);

// On SIGINT, SIGTERM, SIGHUP or SIGPIPE, stops every process started
// through this file that is not reaped yet (SIGTERM, up to 3 s, then
// SIGKILL), then dies of the signal: a driver interrupted mid-run leaves no
// `slate run` (nor its cgroups) behind.
void KillChildrenOnFatalSignals();

// Makes this process the reaper of its descendants' orphans
// (PR_SET_CHILD_SUBREAPER), so that nothing it starts can escape to init.
void BecomeSubreaper();
// SIGKILLs every child process we still have (orphans that came to us
// included) and reaps them all, within a few seconds. Returns how many.
int KillAllChildren();

// Whether `pid` is alive and not a zombie.
bool Alive(pid_t pid);

// Reads the complete lines appended to a file, waking on inotify instead of
// polling. The file (or, with watch_dir, its directory) must exist.
class LineFollower {
 public:
  explicit LineFollower(std::string path, bool watch_dir = false);
  ~LineFollower();
  LineFollower(const LineFollower&) = delete;
  LineFollower& operator=(const LineFollower&) = delete;

  // The next complete line (without '\n'), or nullopt at the deadline.
  std::optional<std::string> Next(std::chrono::steady_clock::time_point deadline);

 private:
  bool ReadMore();

  std::string path_;
  int inotify_ = -1;
  std::uint64_t offset_ = 0;
  std::string buffer_;
};

// A command is on PATH (as `command -v` would say); its absolute path.
std::optional<std::string> FindOnPath(const std::string& name);

// Formats nanoseconds as microseconds or milliseconds with 3 significant-ish digits.
std::string FormatNs(double ns);

}  // namespace slate::bench
