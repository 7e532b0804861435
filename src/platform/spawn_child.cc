#include "platform/spawn_child.h"

#include <atomic>
#include <cerrno>
#include <cstdint>

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <linux/prctl.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// No instrumentation in code that runs in the child: it shares the parent's
// memory, including the sanitizers' shadow and state, on a foreign stack.
#define SLATE_CHILD_CODE __attribute__((noinline, no_sanitize("address", "undefined")))

namespace slate::platform::internal {
namespace {

// The kernel's struct clone_args (linux/sched.h, CLONE_ARGS_SIZE_VER2),
// declared here because that header clashes with glibc's <sched.h>.
struct CloneArgs {
  std::uint64_t flags;
  std::uint64_t pidfd;
  std::uint64_t child_tid;
  std::uint64_t parent_tid;
  std::uint64_t exit_signal;
  std::uint64_t stack;
  std::uint64_t stack_size;
  std::uint64_t tls;
  std::uint64_t set_tid;
  std::uint64_t set_tid_size;
  std::uint64_t cgroup;
};
static_assert(sizeof(CloneArgs) == 88);

constexpr std::uint64_t kCloneIntoCgroup = 0x200000000ULL;

[[noreturn]] SLATE_CHILD_CODE void ChildFail(ChildPlan* plan, ChildStep step, int error) {
  __atomic_store_n(&plan->error, error, __ATOMIC_RELAXED);
  __atomic_store_n(&plan->failed_step, static_cast<int>(step), __ATOMIC_RELEASE);
  syscall(SYS_exit_group, 127);
  __builtin_unreachable();
}

SLATE_CHILD_CODE void ChildInstallFds(ChildPlan* plan) {
  for (size_t i = 0; i < plan->move_count; ++i) {
    const long fd = syscall(SYS_fcntl, plan->moves[i].source, F_DUPFD_CLOEXEC, plan->first_free_fd);
    if (fd < 0) {
      ChildFail(plan, ChildStep::kDupFd, errno);
    }
    plan->scratch[i] = static_cast<int>(fd);
  }
  for (size_t i = 0; i < plan->move_count; ++i) {
    if (syscall(SYS_dup3, plan->scratch[i], plan->moves[i].target, 0) < 0) {
      ChildFail(plan, ChildStep::kDupFd, errno);
    }
  }
  for (size_t i = 0; i < plan->close_count; ++i) {
    if (syscall(SYS_close_range, plan->close[i].first, plan->close[i].last, 0) != 0) {
      ChildFail(plan, ChildStep::kCloseFds, errno);
    }
  }
}

// Signals arrive blocked (the parent blocked them all around clone). Each
// disposition goes back to SIG_DFL before the mask is emptied, so no handler
// of the parent can run in the child, and SIG_IGN does not survive execve.
SLATE_CHILD_CODE void ChildResetSignals(ChildPlan* plan) {
  // All zeros is SIG_DFL, no flags, empty mask in every kernel sigaction layout.
  const std::uint64_t default_action[4] = {0, 0, 0, 0};
  for (int sig = 1; sig < 65; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) {
      syscall(SYS_rt_sigaction, sig, default_action, nullptr, sizeof(std::uint64_t));
    }
  }
  if (plan->new_pid) return;  // all blocked, as they arrived (see ChildPlan::new_pid)
  const std::uint64_t empty = 0;
  if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, nullptr, sizeof empty) != 0) {
    ChildFail(plan, ChildStep::kSignals, errno);
  }
}

[[noreturn]] SLATE_CHILD_CODE void ChildMountFail(ChildPlan* plan, ChildStep step, const char* path,
                                                  int error) {
  plan->failed_path = path;
  ChildFail(plan, step, error);
}

// "/proc/self/fd/N" into out (32 bytes), without the C library.
SLATE_CHILD_CODE void ChildFdPath(int fd, char* out) {
  const char prefix[] = "/proc/self/fd/";
  size_t n = 0;
  for (; prefix[n] != '\0'; ++n) out[n] = prefix[n];
  char digits[12];
  size_t d = 0;
  unsigned v = static_cast<unsigned>(fd);
  do {
    digits[d++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && d < sizeof digits);
  while (d > 0) out[n++] = digits[--d];
  out[n] = '\0';
}

// The view read-only but for the writable trees: each is cloned first, as
// it is (with its flags and the mounts below it), and put back on top after.
// A clone not yet put back is closed with the rest should a step fail.
SLATE_CHILD_CODE void ChildMakeReadOnly(ChildPlan* plan) {
  for (size_t i = 0; i < plan->writable_count; ++i) {
    const long fd = syscall(SYS_open_tree, AT_FDCWD, plan->writable[i],
                            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd < 0) {
      ChildMountFail(plan, ChildStep::kMountWritable, plan->writable[i], errno);
    }
    plan->writable_fds[i] = static_cast<int>(fd);
  }
  // Field by field: zeroing the whole could become a call to memset.
  mount_attr attr;
  attr.attr_set = MOUNT_ATTR_RDONLY;
  attr.attr_clr = 0;
  attr.propagation = 0;
  attr.userns_fd = 0;
  if (syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &attr, sizeof attr) != 0) {
    ChildMountFail(plan, ChildStep::kMountReadOnly, "/", errno);
  }
  for (size_t i = 0; i < plan->writable_count; ++i) {
    if (syscall(SYS_move_mount, plan->writable_fds[i], "", AT_FDCWD, plan->writable[i],
                MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      ChildMountFail(plan, ChildStep::kMountWritable, plan->writable[i], errno);
    }
    syscall(SYS_close, plan->writable_fds[i]);
    plan->writable_fds[i] = -1;
  }
}

// A mount namespace of the child's own, a copy of the one it is in: its
// mounts stay its own; the parent's later ones still reach it.
SLATE_CHILD_CODE void ChildOwnMountNamespace(ChildPlan* plan) {
  if (syscall(SYS_unshare, CLONE_NEWNS) != 0) {
    ChildFail(plan, ChildStep::kMountNamespace, errno);
  }
  if (syscall(SYS_mount, nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    ChildMountFail(plan, ChildStep::kMountNamespace, "/", errno);
  }
}

// Runs before the descriptors are installed, so that what it opens is
// closed with the rest should a step fail midway.
SLATE_CHILD_CODE void ChildMakeView(ChildPlan* plan) {
  ChildOwnMountNamespace(plan);
  for (size_t i = 0; i < plan->read_only_mount_count; ++i) {
    if (syscall(SYS_mount, nullptr, plan->read_only_mounts[i], nullptr,
                MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                nullptr) != 0) {
      ChildMountFail(plan, ChildStep::kMountSeal, plan->read_only_mounts[i], errno);
    }
  }
  for (size_t i = 0; i < plan->bind_count; ++i) {
    ChildBind& b = plan->binds[i];
    const long fd = syscall(SYS_openat, AT_FDCWD, b.path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
      ChildMountFail(plan, ChildStep::kMountKeep, b.path, errno);
    }
    b.fd = static_cast<int>(fd);
    ChildFdPath(b.fd, b.from);
  }
  for (size_t i = 0; i < plan->hide_count; ++i) {
    if (syscall(SYS_mount, "slate-hidden", plan->hide[i], "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "mode=0755,size=64k") != 0) {
      ChildMountFail(plan, ChildStep::kMountHide, plan->hide[i], errno);
    }
  }
  for (size_t i = 0; i < plan->create_count; ++i) {
    const ChildCreate& c = plan->creates[i];
    if (c.directory) {
      if (syscall(SYS_mkdir, c.path, 0755) != 0 && errno != EEXIST) {
        ChildMountFail(plan, ChildStep::kMountCreate, c.path, errno);
      }
      continue;
    }
    const long fd = syscall(SYS_openat, AT_FDCWD, c.path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      ChildMountFail(plan, ChildStep::kMountCreate, c.path, errno);
    }
    syscall(SYS_close, fd);
  }
  for (size_t i = 0; i < plan->bind_count; ++i) {
    const ChildBind& b = plan->binds[i];
    if (syscall(SYS_mount, b.from, b.path, nullptr, MS_BIND, nullptr) != 0) {
      ChildMountFail(plan, ChildStep::kMountKeep, b.path, errno);
    }
    if (b.read_only &&
        syscall(SYS_mount, nullptr, b.path, nullptr,
                MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
      ChildMountFail(plan, ChildStep::kMountKeep, b.path, errno);
    }
    syscall(SYS_close, b.fd);
    plan->binds[i].fd = -1;
  }
  for (size_t i = 0; i < plan->hide_count; ++i) {
    if (syscall(SYS_mount, nullptr, plan->hide[i], nullptr,
                MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
      ChildMountFail(plan, ChildStep::kMountSeal, plan->hide[i], errno);
    }
  }
  if (plan->read_only_root) ChildMakeReadOnly(plan);
}

// The PID namespace's own /proc, in a mount namespace of the child's own:
// one made for its view already, else a copy of the one it joined (shared
// by other children, which must not see this /proc) or of ours. Then the
// number of the init's first child, the program: our own pid on the host
// (read from the host's /proc before it is covered), by setting the
// namespace's ns_last_pid one below it. So the program's pid is unique on
// the host, as in no namespace, and what it records under its pid (LMDB's
// reader table, shared with the runtime and its own next incarnation) is
// never taken for another process's.
SLATE_CHILD_CODE void ChildMountProc(ChildPlan* plan) {
  char link[24];
  const long length = syscall(SYS_readlinkat, AT_FDCWD, "/proc/self", link, sizeof link - 1);
  long host_pid = 0;
  for (long i = 0; i < length && link[i] >= '0' && link[i] <= '9'; ++i) {
    host_pid = host_pid * 10 + (link[i] - '0');
  }
  if (host_pid < 2) ChildMountFail(plan, ChildStep::kPidNumber, "/proc/self", ENOENT);
  if (!plan->view || plan->join_namespace >= 0) ChildOwnMountNamespace(plan);
  if (syscall(SYS_mount, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    ChildMountFail(plan, ChildStep::kMountProc, "/proc", errno);
  }
  // host_pid - 1 in decimal, backwards into the end of `link`.
  char* digits = link + sizeof link;
  for (long rest = host_pid - 1; digits == link + sizeof link || rest > 0; rest /= 10) {
    *--digits = static_cast<char>('0' + rest % 10);
  }
  const auto count = static_cast<size_t>(link + sizeof link - digits);
  const long fd =
      syscall(SYS_openat, AT_FDCWD, "/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
  if (fd < 0) ChildMountFail(plan, ChildStep::kPidNumber, "/proc/sys/kernel/ns_last_pid", errno);
  const long written = syscall(SYS_write, fd, digits, count);
  const int error = errno;
  syscall(SYS_close, fd);
  if (written != static_cast<long>(count)) {
    ChildMountFail(plan, ChildStep::kPidNumber, "/proc/sys/kernel/ns_last_pid",
                   written < 0 ? error : EIO);
  }
}

// Runs before the descriptors are installed, like the view, so that the
// socket it opens for the ioctl is closed with the rest should it fail.
SLATE_CHILD_CODE void ChildUnshare(ChildPlan* plan) {
  if (syscall(SYS_unshare, plan->unshare_flags) != 0) {
    ChildFail(plan, ChildStep::kUnshare, errno);
  }
  if (!plan->loopback_up) return;
  const long fd = syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ChildFail(plan, ChildStep::kLoopback, errno);
  }
  // Only the name is read, up to its NUL; SIOCGIFFLAGS fills in the flags.
  // (No zeroing: the compiler could make that a call to memset.)
  ifreq request;
  request.ifr_name[0] = 'l';
  request.ifr_name[1] = 'o';
  request.ifr_name[2] = '\0';
  int error = 0;
  if (syscall(SYS_ioctl, fd, SIOCGIFFLAGS, &request) != 0) {
    error = errno;
  } else {
    request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
    if (syscall(SYS_ioctl, fd, SIOCSIFFLAGS, &request) != 0) error = errno;
  }
  syscall(SYS_close, fd);
  if (error != 0) {
    ChildFail(plan, ChildStep::kLoopback, error);
  }
}

// Bits 0..63 of a capability mask as the two 32-bit words capset takes.
SLATE_CHILD_CODE void ChildSetCapabilities(ChildPlan* plan, unsigned long long caps) {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  __user_cap_data_struct data[2] = {};
  for (int i = 0; i < 2; ++i) {
    const auto word = static_cast<__u32>(caps >> (32 * i));
    data[i].effective = word;
    data[i].permitted = word;
    data[i].inheritable = word;
  }
  if (syscall(SYS_capset, &header, data) != 0) {
    ChildFail(plan, ChildStep::kCapabilities, errno);
  }
}

SLATE_CHILD_CODE void ChildDropPrivileges(ChildPlan* plan) {
  for (size_t i = 0; i < plan->limit_count; ++i) {
    struct {
      unsigned long long cur;
      unsigned long long max;
    } limit = {plan->limit_values[i], plan->limit_values[i]};
    if (syscall(SYS_prlimit64, 0, plan->limit_resources[i], &limit, nullptr) != 0) {
      ChildFail(plan, ChildStep::kLimits, errno);
    }
  }
  if (plan->drop_caps) {
    // Bits the kernel does not know end the loop with EINVAL.
    for (unsigned long cap = 0; cap < 64; ++cap) {
      if ((plan->keep_caps >> cap) & 1ULL) continue;
      if (syscall(SYS_prctl, PR_CAPBSET_DROP, cap, 0UL, 0UL, 0UL) != 0) {
        if (errno == EINVAL) break;
        ChildFail(plan, ChildStep::kCapabilities, errno);
      }
    }
    if (syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0UL, 0UL, 0UL) != 0 &&
        errno != EINVAL) {
      ChildFail(plan, ChildStep::kAmbient, errno);
    }
  }
  const bool to_other_user = plan->set_identity && plan->uid != 0;
  if (plan->set_identity) {
    // Keep the permitted set across setresuid, to raise the kept ones below.
    if (to_other_user && plan->drop_caps && plan->keep_caps != 0 &&
        syscall(SYS_prctl, PR_SET_KEEPCAPS, 1UL, 0UL, 0UL, 0UL) != 0) {
      ChildFail(plan, ChildStep::kCapabilities, errno);
    }
    // Raw system calls: glibc's wrappers would signal every thread of the
    // process that shares our memory, the parent's.
    if (syscall(SYS_setgroups, plan->group_count, plan->groups) != 0) {
      ChildFail(plan, ChildStep::kSetGroups, errno);
    }
    if (syscall(SYS_setresgid, plan->gid, plan->gid, plan->gid) != 0) {
      ChildFail(plan, ChildStep::kSetGid, errno);
    }
    if (syscall(SYS_setresuid, plan->uid, plan->uid, plan->uid) != 0) {
      ChildFail(plan, ChildStep::kSetUid, errno);
    }
  }
  if (plan->drop_caps) {
    if (to_other_user) {
      // Exactly the kept ones, inheritable ones included (an inheritable
      // capability left over from us would be gained back from a file's).
      ChildSetCapabilities(plan, plan->keep_caps);
      if (plan->keep_caps != 0) {
        // Ambient capabilities survive execve of a program without file
        // capabilities; each must be permitted and inheritable first.
        for (unsigned long cap = 0; cap < 64; ++cap) {
          if (((plan->keep_caps >> cap) & 1ULL) == 0) continue;
          if (syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0UL, 0UL) != 0) {
            ChildFail(plan, ChildStep::kAmbient, errno);
          }
        }
      }
    } else {
      // Root: execve gives it the bounding set (and whatever is inheritable);
      // keep nothing else inheritable.
      __user_cap_header_struct header{};
      header.version = _LINUX_CAPABILITY_VERSION_3;
      __user_cap_data_struct data[2] = {};
      if (syscall(SYS_capget, &header, data) != 0) {
        ChildFail(plan, ChildStep::kCapabilities, errno);
      }
      for (int i = 0; i < 2; ++i) data[i].inheritable = 0;
      if (syscall(SYS_capset, &header, data) != 0) {
        ChildFail(plan, ChildStep::kCapabilities, errno);
      }
    }
  }
  if (plan->no_new_privs && syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) != 0) {
    ChildFail(plan, ChildStep::kNoNewPrivs, errno);
  }
}

// A Landlock domain of the child's own, that restricts no file access: the
// one rule grants everything the ruleset handles beneath "/". What it is
// for is Landlock's ptrace rule: a process in a domain may trace, or open
// /proc/PID/{root,cwd,fd,mem,environ,...} of, only processes in the same
// domain or one nested in it. Its own children inherit the domain.
SLATE_CHILD_CODE void ChildOwnDomain(ChildPlan* plan) {
  if (plan->no_new_privs && syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) != 0) {
    ChildFail(plan, ChildStep::kNoNewPrivs, errno);
  }
  landlock_ruleset_attr ruleset{};
  ruleset.handled_access_fs = plan->landlock_access;
  const long ruleset_fd = syscall(SYS_landlock_create_ruleset, &ruleset, sizeof ruleset, 0U);
  if (ruleset_fd < 0) ChildFail(plan, ChildStep::kLandlock, errno);
  const long root = syscall(SYS_openat, AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) ChildFail(plan, ChildStep::kLandlock, errno);
  landlock_path_beneath_attr rule{};
  rule.allowed_access = plan->landlock_access;
  rule.parent_fd = static_cast<__s32>(root);
  if (syscall(SYS_landlock_add_rule, ruleset_fd, LANDLOCK_RULE_PATH_BENEATH, &rule, 0U) != 0 ||
      syscall(SYS_landlock_restrict_self, ruleset_fd, 0U) != 0) {
    ChildFail(plan, ChildStep::kLandlock, errno);
  }
  syscall(SYS_close, root);
  syscall(SYS_close, ruleset_fd);
}

SLATE_CHILD_CODE int ChildMain(void* arg) {
  auto* plan = static_cast<ChildPlan*>(arg);
  if (plan->make_namespace) {
    ChildMakeView(plan);
    const long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      ChildMountFail(plan, ChildStep::kMountNamespace, "/proc/self/ns/mnt", errno);
    }
    plan->made_namespace = static_cast<int>(fd);
    syscall(SYS_exit, 0);
  }
  if (plan->cgroup_procs_fd >= 0 && syscall(SYS_write, plan->cgroup_procs_fd, "0", 1) != 1) {
    ChildFail(plan, ChildStep::kJoinCgroup, errno);
  }
  if (syscall(SYS_setpgid, 0, 0) != 0) {
    ChildFail(plan, ChildStep::kSetpgid, errno);
  }
  if (plan->join_namespace >= 0) {
    if (syscall(SYS_setns, plan->join_namespace, CLONE_NEWNS) != 0) {
      ChildFail(plan, ChildStep::kMountNamespace, errno);
    }
  } else if (plan->view) {
    ChildMakeView(plan);
  }
  if (plan->new_pid) ChildMountProc(plan);
  if (plan->unshare_flags != 0) ChildUnshare(plan);
  ChildInstallFds(plan);
  if (plan->cwd != nullptr && syscall(SYS_chdir, plan->cwd) != 0) {
    ChildFail(plan, ChildStep::kChdir, errno);
  }
  if (plan->landlock_access != 0) ChildOwnDomain(plan);
  ChildDropPrivileges(plan);
  if (plan->die_with_parent) {
    if (syscall(SYS_prctl, PR_SET_PDEATHSIG, static_cast<unsigned long>(SIGKILL), 0UL, 0UL, 0UL) !=
        0) {
      ChildFail(plan, ChildStep::kParentDeath, errno);
    }
    if (!plan->new_pid && syscall(SYS_getppid) != plan->parent) {
      ChildFail(plan, ChildStep::kParentDeath, ESRCH);
    }
    if (plan->parent_pidfd >= 0) {
      pollfd parent{plan->parent_pidfd, POLLIN, 0};
      const timespec now{0, 0};
      if (syscall(SYS_ppoll, &parent, 1UL, &now, nullptr, 0UL) != 0) {
        ChildFail(plan, ChildStep::kParentDeath, ESRCH);
      }
      syscall(SYS_close, plan->parent_pidfd);
    }
  }
  ChildResetSignals(plan);
  // Last: every call above is the runtime's, not the component's, and need
  // not be in its filter. Only execve (and exit_group, should it fail) follow.
  if (plan->seccomp_program != nullptr &&
      syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0U, plan->seccomp_program) != 0) {
    ChildFail(plan, ChildStep::kSeccomp, errno);
  }
  syscall(SYS_execve, plan->path, plan->argv, plan->envp);
  ChildFail(plan, ChildStep::kExec, errno);
}

#if defined(__x86_64__)
struct ChildEntry {
  int (*fn)(void*);
  void* arg;
};

// clone3 with CLONE_VM needs the child to start on its own stack, which no C
// wrapper can return onto; hence assembly. Registers other than rax, rcx and
// r11 reach the child unchanged, so rdx still points at `entry` there. The
// kernel sets the child's rsp to stack + stack_size (16-byte aligned), so
// after `call` the callee sees the ABI's alignment.
SLATE_CHILD_CODE long Clone3WithEntry(CloneArgs* args, ChildEntry* entry) {
  long ret;
  asm volatile(
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "xor %%ebp, %%ebp\n\t"
      "mov 8(%%rdx), %%rdi\n\t"
      "call *(%%rdx)\n\t"
      "mov %%eax, %%edi\n\t"
      "mov %[exit_nr], %%eax\n\t"
      "syscall\n\t"
      "hlt\n"
      "1:"
      : "=a"(ret)
      : "a"(static_cast<long>(SYS_clone3)), "D"(args), "S"(sizeof(CloneArgs)),
        "d"(entry), [exit_nr] "i"(SYS_exit)
      : "rcx", "r11", "memory", "cc");
  return ret;
}
#endif

std::atomic<SpawnMethod> g_method{SpawnMethod::kAuto};

}  // namespace

const char* DescribeStep(ChildStep step) {
  switch (step) {
    case ChildStep::kNone: return "no failure";
    case ChildStep::kJoinCgroup: return "join cgroup";
    case ChildStep::kSetpgid: return "setpgid";
    case ChildStep::kDupFd: return "install descriptor";
    case ChildStep::kCloseFds: return "close descriptors";
    case ChildStep::kSignals: return "reset signal mask";
    case ChildStep::kChdir: return "chdir";
    case ChildStep::kExec: return "exec";
    case ChildStep::kMountNamespace: return "make a mount namespace";
    case ChildStep::kMountHide: return "hide (mount a tmpfs over)";
    case ChildStep::kMountCreate: return "make a mount point";
    case ChildStep::kMountKeep: return "bind-mount back";
    case ChildStep::kMountSeal: return "make read-only";
    case ChildStep::kMountReadOnly: return "make the root read-only (mount_setattr)";
    case ChildStep::kMountWritable: return "keep writable (open_tree, move_mount)";
    case ChildStep::kCapabilities: return "drop capabilities";
    case ChildStep::kSetGroups: return "setgroups";
    case ChildStep::kSetGid: return "setresgid";
    case ChildStep::kSetUid: return "setresuid";
    case ChildStep::kAmbient: return "raise ambient capabilities";
    case ChildStep::kNoNewPrivs: return "set no_new_privs";
    case ChildStep::kParentDeath: return "set the parent-death signal";
    case ChildStep::kLimits: return "setrlimit";
    case ChildStep::kUnshare: return "make namespaces (unshare)";
    case ChildStep::kLoopback: return "bring up lo in its network namespace";
    case ChildStep::kSeccomp: return "load the seccomp filter";
    case ChildStep::kMountProc: return "mount the PID namespace's /proc";
    case ChildStep::kPidNumber: return "number the program's pid";
    case ChildStep::kLandlock: return "take a Landlock domain of its own";
  }
  return "unknown step";
}

Launch LaunchWithClone3(ChildPlan& plan, void* stack, size_t stack_size, int cgroup_dir_fd) {
#if defined(__x86_64__)
  int pidfd = -1;
  CloneArgs args{};
  args.flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD;
  if (plan.new_pid) args.flags |= CLONE_NEWPID;
  args.pidfd = reinterpret_cast<std::uintptr_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  args.stack = reinterpret_cast<std::uintptr_t>(stack);
  args.stack_size = stack_size;
  if (cgroup_dir_fd >= 0) {
    args.flags |= kCloneIntoCgroup;
    args.cgroup = static_cast<std::uint64_t>(cgroup_dir_fd);
  }
  ChildEntry entry{&ChildMain, &plan};
  const long ret = Clone3WithEntry(&args, &entry);
  if (ret < 0) {
    return Launch{-1, -1, static_cast<int>(-ret)};
  }
  return Launch{static_cast<pid_t>(ret), pidfd, 0};
#else
  (void)plan, (void)stack, (void)stack_size, (void)cgroup_dir_fd;
  return Launch{-1, -1, ENOSYS};
#endif
}

Launch LaunchWithClone(ChildPlan& plan, void* stack, size_t stack_size) {
  int pidfd = -1;
  // The stack grows down on every CPU Linux runs glibc on, save parisc.
  void* top = static_cast<char*>(stack) + stack_size;
  const int pid =
      ::clone(&ChildMain, top,
              CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD | (plan.new_pid ? CLONE_NEWPID : 0),
              &plan, &pidfd);
  if (pid < 0) {
    return Launch{-1, -1, errno};
  }
  return Launch{pid, pidfd, 0};
}

Launch LaunchSharingFiles(ChildPlan& plan, void* stack, size_t stack_size) {
  void* top = static_cast<char*>(stack) + stack_size;
  const int pid = ::clone(&ChildMain, top, CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &plan);
  if (pid < 0) {
    return Launch{-1, -1, errno};
  }
  return Launch{pid, -1, 0};
}

void SetSpawnMethodForTesting(SpawnMethod method) {
  g_method = method;
}

SpawnMethod CurrentSpawnMethod() {
  return g_method;
}

}  // namespace slate::platform::internal
