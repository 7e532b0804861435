// A child process as the runtime sees it: pid + pidfd, how it ended, how to
// tear down its whole tree, and reaping of orphans for PID 1 / subreaper duty.
//
// Wait discipline: the runtime polls each Process's pidfd and calls TryReap
// when it becomes readable; everything else that exits (grandchildren
// re-parented to us, processes whose Process object is gone) is collected by
// ReapOrphans on SIGCHLD. Nothing else in the program may call wait*().
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <signal.h>
#include <sys/types.h>

#include "base/result.h"
#include "platform/cgroup.h"
#include "platform/status.h"
#include "platform/unique_fd.h"

namespace slate::platform {

struct SpawnRequest;  // spawn.h

// How a process ended.
struct ExitStatus {
  enum class Kind { kExited, kKilled };

  Kind kind = Kind::kExited;
  int code = 0;  // exit code for kExited, signal number for kKilled
  bool core_dumped = false;

  static ExitStatus Exited(int code) { return {Kind::kExited, code, false}; }
  static ExitStatus Killed(int signal, bool core) { return {Kind::kKilled, signal, core}; }
  // From waitid(2)'s siginfo of an exited child (si_code CLD_*).
  static ExitStatus FromSiginfo(const siginfo_t& info);

  bool exited() const { return kind == Kind::kExited; }
  bool killed() const { return kind == Kind::kKilled; }

  // "exited with code 7", "killed by SIGKILL (9)", "killed by SIGSEGV (11), core dumped".
  std::string Describe() const;

  friend bool operator==(const ExitStatus&, const ExitStatus&) = default;
};

// A child started by Spawn. Move-only; the destructor closes the pidfd but
// neither kills nor reaps: a child dropped before TryReap is left running and
// is later collected as an orphan by ReapOrphans.
class Process {
 public:
  Process(Process&&) noexcept = default;
  Process& operator=(Process&&) noexcept = default;
  ~Process() = default;

  pid_t pid() const { return pid_; }

  // Pollable (EPOLLIN once the process has exited). Owned by this object.
  int pidfd() const { return pidfd_.get(); }

  // The process was reaped by TryReap; its pid may already be reused.
  bool reaped() const { return reaped_; }

  // The cgroup the process was started in, if any.
  const CgroupHandle* cgroup() const { return cgroup_ ? &*cgroup_ : nullptr; }

  // The process is an init (SpawnRequest::pid_init) that runs the program
  // in a PID namespace of its own, in its process group. TryReap then tells
  // how the program ended, as the init reported it.
  bool has_init() const { return has_init_; }
  // Opens its cgroup's cgroup.kill now (CgroupHandle::OpenKillFile), so
  // that KillTree's SIGKILL at its end is one write: for a process whose
  // end is on a restart's path (a standby spare), at one descriptor more.
  void PrepareTreeKill() {
    if (cgroup_) cgroup_->OpenKillFile();
  }

 private:
  friend Result<Process> Spawn(const SpawnRequest& request);
  friend Result<std::optional<ExitStatus>> TryReap(Process& process);
  friend Result<std::optional<ExitStatus>> PeekExit(const Process& process);

  // `pidfd` refers to child `pid`, which leads process group `pid`.
  Process(pid_t pid, UniqueFd pidfd, std::optional<CgroupHandle> cgroup, UniqueFd init_status)
      : pid_(pid),
        pidfd_(std::move(pidfd)),
        cgroup_(std::move(cgroup)),
        init_status_(std::move(init_status)),
        has_init_(init_status_.valid()) {}

  pid_t pid_;
  UniqueFd pidfd_;
  std::optional<CgroupHandle> cgroup_;
  // Non-blocking read end of the pipe on which the init writes the
  // program's wait status (an int, as waitpid gives it) before it exits.
  UniqueFd init_status_;
  bool has_init_;
  bool reaped_ = false;
};

// Reaps `process` if it has exited: nullopt while it runs. Never blocks.
// Fails if it was already reaped, or if somebody else reaped it (ECHILD).
// For a process with an init, how its program ended: the init's report, or
// the init's own end when it made none (it was killed, e.g. by SIGKILL,
// which ends the whole PID namespace).
Result<std::optional<ExitStatus>> TryReap(Process& process);

// How `process` ended, if it has, without reaping it (waitid WNOWAIT): it
// stays a zombie, its pid and process group id reserved, until TryReap.
// Lets a caller act on the end first and leave the kernel's release of the
// process until after. Not for a process with an init (use TryReap).
Result<std::optional<ExitStatus>> PeekExit(const Process& process);

// Sends `sig` to the whole tree of `process`: the leader (through its pidfd,
// so never to a pid reuser), its process group, and, if it runs in a cgroup,
// every process of that cgroup (SIGKILL through cgroup.kill, which also gets
// processes that left the group with setsid or forked meanwhile). Processes
// already gone are not an error. Returns the first failure, after trying
// every method.
// Without a cgroup, a process that called setsid() or joined another group
// escapes. After the leader is reaped its group id stays reserved only while
// members are alive; kill the tree right after reaping, never much later.
// (SignalProcess in signal_process.h signals the leader alone.)
Status KillTree(const Process& process, int sig);

// getpgid(2): the process group of `pid`, e.g. to attribute an sd_notify
// datagram to a component (each component leads its own group).
Result<pid_t> ProcessGroupOf(pid_t pid);

// prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are re-parented to us
// instead of to PID 1, so ReapOrphans can collect them. Implied for PID 1.
Status SetChildSubreaper();

struct ReapedChild {
  pid_t pid;
  ExitStatus status;
};

// Reaps every exited child for which `is_tracked(pid)` is false, and returns
// them. Tracked children (those with a live Process) are never reaped here,
// so their status stays for TryReap. Never blocks and always terminates,
// also when only tracked children are waiting. Call it on SIGCHLD, after
// handling readable pidfds: a waiting tracked child forces a slower path
// (scanning /proc/self/task/*/children) to reach the orphans behind it.
Result<std::vector<ReapedChild>> ReapOrphans(const std::function<bool(pid_t)>& is_tracked);

}  // namespace slate::platform
