#include "platform/process.h"

#include <cerrno>
#include <filesystem>
#include <sstream>

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "platform/file_io.h"
#include "platform/init_protocol.h"
#include "platform/pidfd.h"

namespace slate::platform {
namespace {

// waitid that retries on EINTR. si_pid stays 0 when nothing was waitable.
int Waitid(idtype_t type, id_t id, siginfo_t* info, int options) {
  int rc;
  do {
    *info = siginfo_t{};
    rc = ::waitid(type, id, info, options);
  } while (rc != 0 && errno == EINTR);
  return rc;
}

// Reaps `pid` if it has exited. Only called for pids that are not tracked.
Result<std::optional<ReapedChild>> ReapPid(pid_t pid) {
  siginfo_t info;
  if (Waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | __WALL) != 0) {
    return errno == ECHILD ? Result<std::optional<ReapedChild>>(std::nullopt)
                           : ErrnoError("waitid " + std::to_string(pid), errno);
  }
  if (info.si_pid == 0) {
    return std::optional<ReapedChild>();
  }
  return std::optional<ReapedChild>(ReapedChild{info.si_pid, ExitStatus::FromSiginfo(info)});
}

// Our children, from every thread's /proc/self/task/TID/children (an orphan
// is re-parented to some live thread of the subreaper). Each file is read in
// one go, which the kernel produces under one lock.
Result<std::vector<pid_t>> ListChildren() {
  std::error_code error;
  std::filesystem::directory_iterator tasks("/proc/self/task", error);
  std::vector<pid_t> children;
  for (; !error && tasks != std::filesystem::directory_iterator(); tasks.increment(error)) {
    auto text = ReadFile(tasks->path().string() + "/children");
    std::istringstream numbers(text ? *text : std::string());
    for (pid_t pid = 0; numbers >> pid;) {
      children.push_back(pid);
    }
  }
  if (error) {
    return ErrnoError("list /proc/self/task", error.value());
  }
  return children;
}

Status ReapUntrackedChildren(const std::function<bool(pid_t)>& is_tracked,
                             std::vector<ReapedChild>& reaped) {
  auto children = ListChildren();
  if (!children) {
    return children.error();
  }
  for (pid_t pid : *children) {
    if (is_tracked(pid)) {
      continue;
    }
    auto child = ReapPid(pid);
    if (!child) {
      return child.error();
    }
    if (*child) {
      reaped.push_back(**child);
    }
  }
  return OkStatus();
}

}  // namespace

ExitStatus ExitStatus::FromSiginfo(const siginfo_t& info) {
  switch (info.si_code) {
    case CLD_KILLED: return Killed(info.si_status, false);
    case CLD_DUMPED: return Killed(info.si_status, true);
    default: return Exited(info.si_status);
  }
}

std::string ExitStatus::Describe() const {
  if (exited()) {
    return "exited with code " + std::to_string(code);
  }
  const char* abbrev = ::sigabbrev_np(code);
  std::string text = "killed by ";
  text += abbrev != nullptr ? std::string("SIG") + abbrev + " (" + std::to_string(code) + ")"
                            : "signal " + std::to_string(code);
  if (core_dumped) {
    text += ", core dumped";
  }
  return text;
}

namespace {

// waitid on child `pid`'s pidfd, never blocking, with `flags` beside
// WEXITED: its siginfo once it has exited, nullopt while it runs.
Result<std::optional<siginfo_t>> WaitExited(pid_t pid, int pidfd, int flags) {
  siginfo_t info;
  if (Waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG | flags) != 0) {
    return ErrnoError("waitid pidfd of " + std::to_string(pid), errno);
  }
  if (info.si_pid == 0) return std::optional<siginfo_t>();
  return std::optional<siginfo_t>(info);
}

}  // namespace

Result<std::optional<ExitStatus>> TryReap(Process& process) {
  if (process.reaped_) {
    return MakeError("process " + std::to_string(process.pid_) + " was already reaped");
  }
  auto ended = WaitExited(process.pid_, process.pidfd_.get(), 0);
  if (!ended) return ended.error();
  if (!ended->has_value()) return std::optional<ExitStatus>();
  const siginfo_t& info = **ended;
  process.reaped_ = true;
  if (process.init_status_.valid()) {
    // Its records after kInitStarted (read by Spawn): kInitEnded, if the
    // init lived to write it.
    InitRecord record{0, 0};
    const ssize_t n = ::read(process.init_status_.get(), &record, sizeof record);
    process.init_status_.Reset();
    const int status = record.value;
    if (n == static_cast<ssize_t>(sizeof record) && record.kind == kInitEnded) {
      if (WIFSIGNALED(status)) {
        return std::optional<ExitStatus>(ExitStatus::Killed(WTERMSIG(status), WCOREDUMP(status)));
      }
      if (WIFEXITED(status)) {
        return std::optional<ExitStatus>(ExitStatus::Exited(WEXITSTATUS(status)));
      }
    }
  }
  return std::optional<ExitStatus>(ExitStatus::FromSiginfo(info));
}

Result<std::optional<ExitStatus>> PeekExit(const Process& process) {
  if (process.reaped_ || process.has_init_) {
    return MakeError("process " + std::to_string(process.pid_) + " cannot be looked at unreaped");
  }
  auto ended = WaitExited(process.pid_, process.pidfd_.get(), WNOWAIT);
  if (!ended) return ended.error();
  if (!ended->has_value()) return std::optional<ExitStatus>();
  return std::optional<ExitStatus>(ExitStatus::FromSiginfo(**ended));
}

Status KillTree(const Process& process, int sig) {
  Status first = OkStatus();
  const auto note = [&first](Status status) {
    if (!status && first) {
      first = std::move(status);
    }
  };
  if (const CgroupHandle* cgroup = process.cgroup()) {
    note(sig == SIGKILL ? cgroup->Kill() : cgroup->Signal(sig));
  }
  const std::string pid = std::to_string(process.pid());
  // A reaped leader is no longer there to signal (ESRCH); skip the call.
  if (!process.reaped() && PidfdSendSignal(process.pidfd(), sig) != 0 && errno != ESRCH) {
    note(ErrnoError("pidfd_send_signal " + pid, errno));
  }
  if (::kill(-process.pid(), sig) != 0 && errno != ESRCH) {
    note(ErrnoError("kill process group " + pid, errno));
  }
  return first;
}

Result<pid_t> ProcessGroupOf(pid_t pid) {
  const pid_t group = ::getpgid(pid);
  if (group < 0) {
    return ErrnoError("getpgid " + std::to_string(pid), errno);
  }
  return group;
}

Status SetChildSubreaper() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL) != 0) {
    return ErrnoError("prctl PR_SET_CHILD_SUBREAPER", errno);
  }
  return OkStatus();
}

Result<std::vector<ReapedChild>> ReapOrphans(const std::function<bool(pid_t)>& is_tracked) {
  std::vector<ReapedChild> reaped;
  for (;;) {
    // WNOWAIT: look at the first exited child without taking its status.
    siginfo_t info;
    if (Waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT | __WALL) != 0) {
      if (errno == ECHILD) {
        return reaped;  // no children at all
      }
      return ErrnoError("waitid P_ALL", errno);
    }
    if (info.si_pid == 0) {
      return reaped;
    }
    if (is_tracked(info.si_pid)) {
      // waitid(P_ALL) would show this child again and again; go around it.
      if (auto status = ReapUntrackedChildren(is_tracked, reaped); !status) {
        return status.error();
      }
      return reaped;
    }
    auto child = ReapPid(info.si_pid);
    if (!child) {
      return child.error();
    }
    if (!*child) {
      return reaped;  // it vanished (reaped elsewhere): do not spin on it
    }
    reaped.push_back(**child);
  }
}

}  // namespace slate::platform
