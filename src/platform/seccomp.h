// Seccomp filters for components: an allow-list of system calls, compiled
// to a BPF program in the runtime (libseccomp) and loaded by the spawned
// child as its last step before execve (SpawnRequest::seccomp). The child
// shares our memory and may not allocate, so it only hands the kernel the
// program built here.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <linux/filter.h>

#include "base/result.h"

namespace slate::platform {

// What a filter allows: the default profile plus `allow`.
struct SeccompPolicy {
  enum class OnViolation {
    kKill,   // the whole process dies of SIGSYS (SECCOMP_RET_KILL_PROCESS)
    kErrno,  // the call fails with EPERM and the process goes on
  };
  // System call names as libseccomp knows them ("ptrace", "mount"), allowed
  // with any arguments on top of the profile. A name the architecture we
  // run on lacks is skipped (nothing can call it here).
  std::vector<std::string> allow;
  OnViolation on_violation = OnViolation::kKill;

  friend bool operator==(const SeccompPolicy&, const SeccompPolicy&) = default;
  friend bool operator<(const SeccompPolicy& a, const SeccompPolicy& b) {
    return std::tie(a.allow, a.on_violation) < std::tie(b.allow, b.on_violation);
  }
};

// The default profile: what libslate and ordinary C and C++ programs
// (the C library, the dynamic loader, shells, coreutils, threads, sockets,
// LMDB) call. Left out on purpose: what reconfigures the machine or reaches
// past the process (mount, namespaces, ptrace, modules, bpf, perf, keyrings,
// clocks, reboot, swap, io_uring, userfaultfd, open_by_handle_at). Two calls
// get a rule of their own, unless `allow` names them: clone is allowed only
// without CLONE_NEW* flags (no namespaces through the back door), and clone3
// fails with ENOSYS (its flags sit in memory a filter cannot read; the C
// library then falls back to clone). Whatever the profile, execve, exit and
// exit_group are allowed: the child must be able to start its program.
std::span<const std::string_view> DefaultSeccompProfile();

// A compiled filter. Immutable; safe to share between threads.
class SeccompFilter {
 public:
  // The filter of `policy`, built once per distinct policy and shared after
  // that (thread-safe). Fails on a name libseccomp does not know, or when
  // libseccomp fails (the message says which step).
  static Result<std::shared_ptr<const SeccompFilter>> For(const SeccompPolicy& policy);

  // What seccomp(SECCOMP_SET_MODE_FILTER) takes; valid as long as this is.
  const sock_fprog* program() const { return &program_; }
  std::size_t instructions() const { return code_.size(); }

  explicit SeccompFilter(std::vector<sock_filter> code);
  SeccompFilter(const SeccompFilter&) = delete;
  SeccompFilter& operator=(const SeccompFilter&) = delete;

 private:
  std::vector<sock_filter> code_;
  sock_fprog program_{};
};

// Why filters cannot be loaded here (a kernel without seccomp filters or
// without SECCOMP_RET_KILL_PROCESS, Linux < 4.14; or a seccomp(2) that an
// outer filter refuses); nullopt when they can. Asks the kernel once.
std::optional<std::string> SeccompUnavailable();

}  // namespace slate::platform
