#include "platform/seccomp.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include <linux/seccomp.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include "platform/status.h"
#include "platform/unique_fd.h"

namespace slate::platform {
namespace {

// Found by tracing (strace -f) the components the repository runs under
// `slate run`: the testee (notify, fd:N, heartbeats, grandchildren),
// slate_peer in its modes (channels, request/reply, the store and its
// checkpoints, sanitize, standby activation), the example components, and
// sh, bash and python3 scripts running coreutils, tar, gzip and threads;
// then completed with the neighbours of each call that a program may pick
// instead (open / openat, the *at and 64 variants, epoll / poll / select,
// the timers). One category a paragraph, not a call a line:
// clang-format off
constexpr auto kDefaultProfile = std::to_array<std::string_view>({
    // Starting, ending and waiting for processes and threads.
    "execve", "execveat", "exit", "exit_group", "clone", "clone3", "fork", "vfork", "wait4",
    "waitid", "set_tid_address", "set_robust_list", "get_robust_list", "rseq", "arch_prctl",
    "prctl", "membarrier",
    // Who and where it is.
    "getpid", "getppid", "gettid", "getpgid", "getpgrp", "setpgid", "getsid", "setsid", "getuid",
    "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "setuid", "setgid",
    "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "setfsuid", "setfsgid",
    "capget", "capset", "uname", "sysinfo", "umask", "getcpu", "getrandom",
    // Scheduling and resources.
    "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
    "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
    "sched_get_priority_min", "sched_rr_get_interval", "sched_getattr", "sched_setattr",
    "getpriority", "setpriority", "ioprio_get", "ioprio_set", "getrlimit", "setrlimit",
    "prlimit64", "getrusage", "times",
    // Memory.
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync", "mlock",
    "mlock2", "munlock", "mlockall", "munlockall", "memfd_create", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "get_mempolicy", "set_mempolicy", "mbind",
    // Futexes (libslate's channels wait on them).
    "futex", "futex_waitv",
    // Signals.
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending",
    "rt_sigtimedwait", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack", "signalfd",
    "signalfd4", "kill", "tkill", "tgkill", "pause", "restart_syscall", "pidfd_open",
    "pidfd_send_signal",
    // Time and timers.
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
    "alarm", "getitimer", "setitimer", "timer_create", "timer_settime", "timer_gettime",
    "timer_getoverrun", "timer_delete", "timerfd_create", "timerfd_settime", "timerfd_gettime",
    // Descriptors and I/O.
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
    "pwritev2", "close", "close_range", "dup", "dup2", "dup3", "fcntl", "ioctl", "lseek", "pipe",
    "pipe2", "sendfile", "splice", "tee", "vmsplice", "copy_file_range", "eventfd", "eventfd2",
    "select", "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "inotify_init", "inotify_init1",
    "inotify_add_watch", "inotify_rm_watch", "io_setup", "io_destroy", "io_submit", "io_cancel",
    "io_getevents", "io_pgetevents",
    // Files (LMDB: flock or fcntl locks, fdatasync, msync; its lock file).
    "open", "openat", "openat2", "creat", "stat", "fstat", "lstat", "newfstatat", "statx",
    "statfs", "fstatfs", "access", "faccessat", "faccessat2", "readlink", "readlinkat",
    "getdents", "getdents64", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir", "unlink",
    "unlinkat", "rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat",
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "truncate", "ftruncate", "fallocate", "fadvise64", "readahead", "flock", "fsync",
    "fdatasync", "sync_file_range", "syncfs", "sync", "utime", "utimes", "utimensat",
    "futimesat", "mknod", "mknodat", "getxattr", "lgetxattr", "fgetxattr", "listxattr",
    "llistxattr", "flistxattr", "setxattr", "lsetxattr", "fsetxattr", "removexattr",
    "lremovexattr", "fremovexattr",
    // Sockets (sd_notify, SCM_RIGHTS for standby activation, networking).
    "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
    "getpeername", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown",
    "setsockopt", "getsockopt",
    // System V and POSIX message queues, semaphores, shared memory.
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget",
    "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
    "mq_notify", "mq_getsetattr",
    // Sandboxing itself further.
    "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
});
// clang-format on

// The CLONE_NEW* flags clone() takes (CLONE_NEWTIME exists only for clone3
// and unshare, which the profile refuses anyway).
constexpr std::uint64_t kNamespaceFlags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
                                          CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                                          CLONE_NEWNET;

// clone's flags are its first argument, but on s390 its second.
#if defined(__s390__) || defined(__s390x__)
constexpr unsigned kCloneFlagsArg = 1;
#else
constexpr unsigned kCloneFlagsArg = 0;
#endif

struct ContextDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};

Error LibError(std::string_view what, int rc) {
  return ErrnoError(std::string("seccomp filter: ") + std::string(what), -rc);
}

// The compiled program, written by libseccomp into a memory file and read
// back (libseccomp 2.5 exports only to a descriptor).
Result<std::vector<sock_filter>> Export(void* ctx) {
  UniqueFd fd(::memfd_create("slate-seccomp", MFD_CLOEXEC));
  if (!fd.valid()) return ErrnoError("seccomp filter: memfd_create", errno);
  if (const int rc = seccomp_export_bpf(ctx, fd.get()); rc < 0) {
    return LibError("seccomp_export_bpf", rc);
  }
  const off_t size = ::lseek(fd.get(), 0, SEEK_END);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0) {
    return MakeError("seccomp filter: the exported program has a size of " + std::to_string(size) +
                     " bytes");
  }
  std::vector<sock_filter> code(static_cast<std::size_t>(size) / sizeof(sock_filter));
  auto* bytes = reinterpret_cast<char*>(code.data());
  for (off_t at = 0; at < size;) {
    const ssize_t n = ::pread(fd.get(), bytes + at, static_cast<std::size_t>(size - at), at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoError("seccomp filter: read the exported program", n < 0 ? errno : EIO);
    at += n;
  }
  return code;
}

Result<std::shared_ptr<const SeccompFilter>> Build(const SeccompPolicy& policy) {
  const std::uint32_t violation = policy.on_violation == SeccompPolicy::OnViolation::kKill
                                      ? SCMP_ACT_KILL_PROCESS
                                      : SCMP_ACT_ERRNO(EPERM);
  std::unique_ptr<void, ContextDeleter> ctx(seccomp_init(violation));
  if (!ctx) return MakeError("seccomp filter: seccomp_init failed");
  // A call through another architecture's entry (int 0x80 on x86-64, x32)
  // is a violation whatever its number.
  if (const int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
      rc < 0) {
    return LibError("set the bad-architecture action", rc);
  }
  // A binary tree instead of a list: a few comparisons per call, not
  // hundreds. Older libseccomp lacks it; the list is correct too.
  (void)seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);

  const std::set<std::string> extra(policy.allow.begin(), policy.allow.end());
  std::set<std::string> names(extra);
  for (std::string_view n : kDefaultProfile) names.emplace(n);
  for (const char* n : {"execve", "exit", "exit_group"}) names.emplace(n);
  for (const std::string& name : names) {
    const int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      return MakeError("seccomp filter: unknown system call '" + name + "'");
    }
    if (nr < 0) continue;  // a pseudo number: not a call of this architecture
    int rc = 0;
    if (name == "clone" && !extra.contains(name)) {
      rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 1,
                            scmp_arg_cmp{kCloneFlagsArg, SCMP_CMP_MASKED_EQ, kNamespaceFlags, 0});
    } else if (name == "clone3" && !extra.contains(name)) {
      rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), nr, 0);
    } else {
      rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 0);
    }
    if (rc < 0) return LibError("allow " + name, rc);
  }
  auto code = Export(ctx.get());
  if (!code) return code.error();
  return std::make_shared<const SeccompFilter>(std::move(code).value());
}

}  // namespace

std::span<const std::string_view> DefaultSeccompProfile() {
  return kDefaultProfile;
}

SeccompFilter::SeccompFilter(std::vector<sock_filter> code) : code_(std::move(code)) {
  program_.len = static_cast<unsigned short>(code_.size());
  program_.filter = code_.data();
}

Result<std::shared_ptr<const SeccompFilter>> SeccompFilter::For(const SeccompPolicy& policy) {
  static std::mutex mutex;
  static std::map<SeccompPolicy, std::shared_ptr<const SeccompFilter>> built;
  const std::lock_guard lock(mutex);
  if (auto it = built.find(policy); it != built.end()) return it->second;
  auto filter = Build(policy);
  if (!filter) return filter.error();
  if ((*filter)->instructions() > BPF_MAXINSNS) {
    return MakeError("seccomp filter: " + std::to_string((*filter)->instructions()) +
                     " instructions, more than the kernel's " + std::to_string(BPF_MAXINSNS));
  }
  built.emplace(policy, *filter);
  return *filter;
}

std::optional<std::string> SeccompUnavailable() {
  static std::once_flag once;
  static std::optional<std::string> why;
  std::call_once(once, [] {
    if (::prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0) {
      why = std::string("the kernel has no seccomp (prctl PR_GET_SECCOMP: ") +
            std::strerror(errno) + ")";
      return;
    }
    std::uint32_t action = SECCOMP_RET_KILL_PROCESS;
    if (::syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) != 0) {
      why = std::string(
                "the kernel cannot kill a process that breaks a seccomp filter "
                "(SECCOMP_RET_KILL_PROCESS, Linux >= 4.14): ") +
            std::strerror(errno);
    }
  });
  return why;
}

}  // namespace slate::platform
