#include "platform/spawn.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>

#include "platform/init_protocol.h"
#include "platform/spawn_child.h"

namespace slate::platform {
namespace {

using internal::ChildBind;
using internal::ChildCreate;
using internal::ChildPlan;
using internal::ChildStep;
using internal::FdMove;
using internal::FdRange;
using internal::Launch;
using internal::SpawnMethod;

// Set once clone3 turns out to be unavailable (ENOSYS, e.g. filtered by a
// container's seccomp profile) so later spawns go straight to clone().
std::atomic<bool> g_clone3_unavailable{false};

// Enough for ChildMain and lazy PLT binding of syscall(); the lowest page is
// a guard so an overflow faults instead of scribbling on our heap.
constexpr size_t kStackSize = size_t{64} * 1024;

class ChildStack {
 public:
  ChildStack() {
    void* p = ::mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED && ::mprotect(p, static_cast<size_t>(::getpagesize()), PROT_NONE) == 0) {
      base_ = p;
    } else if (p != MAP_FAILED) {
      ::munmap(p, kStackSize);
    }
  }
  ChildStack(const ChildStack&) = delete;
  ChildStack& operator=(const ChildStack&) = delete;
  ~ChildStack() {
    if (base_ != nullptr) {
      ::munmap(base_, kStackSize);
    }
  }
  void* base() const { return base_; }

 private:
  void* base_ = nullptr;
};

// Blocks every signal in this thread for its lifetime, so that the child
// starts with all of them blocked and no handler of ours runs in it before
// it has reset the dispositions.
class AllSignalsBlocked {
 public:
  AllSignalsBlocked() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved_);
  }
  AllSignalsBlocked(const AllSignalsBlocked&) = delete;
  AllSignalsBlocked& operator=(const AllSignalsBlocked&) = delete;
  ~AllSignalsBlocked() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }

 private:
  sigset_t saved_;
};

bool HasNul(const std::string& s) {
  return s.find('\0') != std::string::npos;
}

Status Validate(const SpawnRequest& request) {
  if (request.argv.empty()) {
    return MakeError("spawn: empty argv");
  }
  const std::string& program = request.argv[0];
  if (program.empty() || program[0] != '/') {
    return MakeError("spawn " + program + ": argv[0] must be an absolute path");
  }
  const auto bad_string = [](const std::vector<std::string>& v) {
    return std::any_of(v.begin(), v.end(), HasNul);
  };
  if (bad_string(request.argv) || bad_string(request.env) || HasNul(request.cwd)) {
    return MakeError("spawn " + program + ": NUL byte in argv, env or cwd");
  }
  std::vector<int> targets;
  for (const FdGrant& grant : request.fds) {
    if (grant.source < 0 || grant.target < 0) {
      return MakeError("spawn " + program + ": negative descriptor in fds");
    }
    targets.push_back(grant.target);
  }
  std::sort(targets.begin(), targets.end());
  if (std::adjacent_find(targets.begin(), targets.end()) != targets.end()) {
    return MakeError("spawn " + program + ": two grants for the same target descriptor");
  }
  if (!request.pid_init.empty() && request.pid_init[0] != '/') {
    return MakeError("spawn " + program + ": pid_init must be an absolute path");
  }
  return OkStatus();
}

std::vector<char*> PointerArray(const std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (const std::string& s : strings) {
    pointers.push_back(const_cast<char*>(s.c_str()));
  }
  pointers.push_back(nullptr);
  return pointers;
}

// Everything the child will read, kept alive across the launch.
struct PreparedChild {
  std::vector<int> limit_resources;
  std::vector<unsigned long long> limit_values;
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::vector<FdMove> moves;
  std::vector<int> scratch;
  std::vector<FdRange> close;
  UniqueFd dev_null;
  UniqueFd cgroup_procs;
  // The mount view: strings the child's steps point into.
  std::vector<std::string> hide;
  std::vector<const char*> hide_ptrs;
  std::vector<std::string> create_paths;
  std::vector<ChildCreate> creates;
  std::vector<std::string> bind_paths;
  std::vector<bool> bind_read_only;
  std::vector<ChildBind> binds;
  std::vector<std::string> writable;
  std::vector<const char*> writable_ptrs;
  std::vector<int> writable_fds;
  std::vector<std::string> read_only_mounts;
  std::vector<const char*> read_only_mount_ptrs;
  ChildPlan plan;
};

// "a/b/c" below "a": the directories "a/b" (and "a/b/c" itself when it is
// one) to create in the tmpfs, outermost first.
void MountPoints(const std::string& hide, const std::string& keep, bool directory,
                 std::vector<std::pair<std::string, bool>>& out) {
  std::size_t at = hide.size();
  while ((at = keep.find('/', at + 1)) != std::string::npos)
    out.emplace_back(keep.substr(0, at), true);
  out.emplace_back(keep, directory);
}

Status PrepareView(const std::string& program, const MountView& view, PreparedChild& child) {
  auto Refuse = [&](std::string_view what, const std::string& path, std::string_view why) {
    std::string message = "spawn ";
    message.append(program).append(": ").append(what).append(path).append(why);
    return MakeError(message);
  };
  // "/a//b/./c/" -> "/a/b/c"; empty when not absolute or not below "/".
  auto normal = [](const std::string& p) -> std::string {
    if (p.empty() || p[0] != '/') return "";
    std::string n = std::filesystem::path(p).lexically_normal().string();
    while (n.size() > 1 && n.back() == '/') n.pop_back();
    return n == "/" ? "" : n;
  };
  for (const std::string& h : view.hide) {
    std::string n = normal(h);
    if (n.empty()) return Refuse("hide path ", h, " is not an absolute path below /");
    child.hide.push_back(n);
  }
  std::vector<std::pair<std::string, bool>> points;
  // Outer paths first: a path kept inside another kept one (read-only
  // checkpoints inside a writable store) must be bound after it.
  std::vector<MountView::Keep> keeps;
  for (const MountView::Keep& k : view.keep) {
    std::string n = normal(k.path);
    if (n.empty()) return Refuse("keep path ", k.path, " is not an absolute path below /");
    keeps.push_back({n, k.read_only});
  }
  std::stable_sort(keeps.begin(), keeps.end(), [](const auto& a, const auto& b) {
    return std::count(a.path.begin(), a.path.end(), '/') <
           std::count(b.path.begin(), b.path.end(), '/');
  });
  for (const MountView::Keep& k : keeps) {
    auto under = std::find_if(child.hide.begin(), child.hide.end(), [&](const std::string& h) {
      return k.path.size() > h.size() && k.path.compare(0, h.size(), h) == 0 &&
             k.path[h.size()] == '/';
    });
    if (under == child.hide.end()) {
      return Refuse("keep path ", k.path, " is under no hidden one");
    }
    struct stat st {};
    if (::stat(k.path.c_str(), &st) != 0) {
      return ErrnoError("spawn " + program + ": keep " + k.path, errno);
    }
    MountPoints(*under, k.path, S_ISDIR(st.st_mode), points);
    child.bind_paths.push_back(k.path);
    child.bind_read_only.push_back(k.read_only);
  }
  std::set<std::string> seen;
  for (auto& [path, directory] : points) {
    if (seen.insert(path).second) child.create_paths.push_back(path);
  }
  // Pointers only once no vector grows any more.
  for (const std::string& h : child.hide) child.hide_ptrs.push_back(h.c_str());
  for (const std::string& p : child.create_paths) {
    bool directory = true;
    for (const auto& [path, dir] : points) {
      if (path == p) directory = directory && dir;
    }
    child.creates.push_back({p.c_str(), directory});
  }
  for (std::size_t i = 0; i < child.bind_paths.size(); ++i) {
    child.binds.push_back({child.bind_paths[i].c_str(), child.bind_read_only[i], -1, {}});
  }
  if (view.read_only_root) {
    // Outer paths first, as the keeps; each tree as it was, put back after
    // the whole view is made read-only.
    std::vector<std::string> writable{"/dev", "/proc"};
    for (const std::string& w : view.writable) {
      std::string n = normal(w);
      if (n.empty()) return Refuse("writable path ", w, " is not an absolute path below /");
      writable.push_back(n);
    }
    for (const MountView::Keep& k : keeps) {
      if (!k.read_only) writable.push_back(k.path);
    }
    std::stable_sort(writable.begin(), writable.end(), [](const auto& a, const auto& b) {
      return std::count(a.begin(), a.end(), '/') < std::count(b.begin(), b.end(), '/');
    });
    for (std::string& w : writable) {
      if (std::find(child.writable.begin(), child.writable.end(), w) == child.writable.end()) {
        child.writable.push_back(std::move(w));
      }
    }
    for (const std::string& w : child.writable) child.writable_ptrs.push_back(w.c_str());
    child.writable_fds.assign(child.writable.size(), -1);
    child.plan.read_only_root = true;
    child.plan.writable = child.writable_ptrs.data();
    child.plan.writable_fds = child.writable_fds.data();
    child.plan.writable_count = child.writable.size();
  }
  for (const std::string& m : view.read_only_mounts) {
    std::string n = normal(m);
    if (n.empty()) return Refuse("read-only mount ", m, " is not an absolute path below /");
    child.read_only_mounts.push_back(std::move(n));
  }
  for (const std::string& m : child.read_only_mounts)
    child.read_only_mount_ptrs.push_back(m.c_str());
  child.plan.read_only_mounts = child.read_only_mount_ptrs.data();
  child.plan.read_only_mount_count = child.read_only_mount_ptrs.size();
  child.plan.view = true;
  child.plan.hide = child.hide_ptrs.data();
  child.plan.hide_count = child.hide_ptrs.size();
  child.plan.creates = child.creates.data();
  child.plan.create_count = child.creates.size();
  child.plan.binds = child.binds.data();
  child.plan.bind_count = child.binds.size();
  return OkStatus();
}

// Grants plus /dev/null for unset 0..2, and the complement of the targets as
// ranges to close.
Status PrepareFds(const SpawnRequest& request, PreparedChild& child) {
  for (const FdGrant& grant : request.fds) {
    child.moves.push_back({grant.source, grant.target});
  }
  for (int std_fd = 0; std_fd <= 2; ++std_fd) {
    const bool granted = std::any_of(request.fds.begin(), request.fds.end(),
                                     [&](const FdGrant& g) { return g.target == std_fd; });
    if (granted) {
      continue;
    }
    if (!child.dev_null.valid()) {
      child.dev_null.Reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
      if (!child.dev_null.valid()) {
        return ErrnoError("spawn " + request.argv[0] + ": open /dev/null", errno);
      }
    }
    child.moves.push_back({child.dev_null.get(), std_fd});
  }
  std::vector<int> targets;
  for (const FdMove& move : child.moves) {
    targets.push_back(move.target);
  }
  std::sort(targets.begin(), targets.end());
  unsigned next = 0;
  for (int target : targets) {
    if (static_cast<unsigned>(target) > next) {
      child.close.push_back({next, static_cast<unsigned>(target) - 1});
    }
    next = static_cast<unsigned>(target) + 1;
  }
  child.close.push_back({next, UINT_MAX});
  child.scratch.resize(child.moves.size());
  child.plan.moves = child.moves.data();
  child.plan.move_count = child.moves.size();
  child.plan.scratch = child.scratch.data();
  child.plan.first_free_fd = targets.back() + 1;
  child.plan.close = child.close.data();
  child.plan.close_count = child.close.size();
  return OkStatus();
}

Launch LaunchChild(const SpawnRequest& request, PreparedChild& child, const ChildStack& stack) {
  const SpawnMethod method = internal::CurrentSpawnMethod();
  const int cgroup_fd = request.cgroup != nullptr ? request.cgroup->dir_fd() : -1;
  if (method == SpawnMethod::kClone3 ||
      (method == SpawnMethod::kAuto && !g_clone3_unavailable.load(std::memory_order_relaxed))) {
    AllSignalsBlocked blocked;
    const Launch launch =
        internal::LaunchWithClone3(child.plan, stack.base(), kStackSize, cgroup_fd);
    if (launch.error != ENOSYS || method == SpawnMethod::kClone3) {
      return launch;
    }
    g_clone3_unavailable.store(true, std::memory_order_relaxed);
  }
  if (cgroup_fd >= 0) {
    child.cgroup_procs.Reset(::openat(cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC));
    if (!child.cgroup_procs.valid()) {
      return Launch{-1, -1, errno};
    }
    child.plan.cgroup_procs_fd = child.cgroup_procs.get();
  }
  AllSignalsBlocked blocked;
  return internal::LaunchWithClone(child.plan, stack.base(), kStackSize);
}

// The child wrote why it failed and exited; collect it so no zombie stays.
Error ReapFailedChild(const std::string& program, const Launch& launch, const ChildPlan& plan) {
  siginfo_t info{};
  while (::waitid(P_PIDFD, static_cast<id_t>(launch.pidfd), &info, WEXITED) != 0 &&
         errno == EINTR) {
  }
  ::close(launch.pidfd);
  const auto step = static_cast<ChildStep>(__atomic_load_n(&plan.failed_step, __ATOMIC_ACQUIRE));
  std::string what = "spawn " + program + ": " + internal::DescribeStep(step);
  if (step == ChildStep::kChdir) {
    what += std::string(" ") + plan.cwd;
  } else {
    // (snprintf, not string concatenation: GCC 12 at -O3 flags the latter.)
    char detail[48] = "";
    if (step == ChildStep::kSetUid) {
      (void)std::snprintf(detail, sizeof detail, " %u", static_cast<unsigned>(plan.uid));
    } else if (step == ChildStep::kSetGid) {
      (void)std::snprintf(detail, sizeof detail, " %u", static_cast<unsigned>(plan.gid));
    } else if (step == ChildStep::kSetGroups) {
      (void)std::snprintf(detail, sizeof detail, " (%zu groups)", plan.group_count);
    } else if (step == ChildStep::kCapabilities || step == ChildStep::kAmbient) {
      (void)std::snprintf(detail, sizeof detail, " (keep 0x%llx)", plan.keep_caps);
    }
    what.append(detail);
  }
  if (plan.failed_path != nullptr) {
    what += std::string(" ") + plan.failed_path;
  }
  return ErrnoError(what, plan.error);
}

// Waits for the init's first record: the program was executed, or why not.
// On failure the init is reaped (it exits right after saying so, or is
// killed here when it says nothing in time).
Status AwaitInit(const std::string& program, const std::string& init, const Launch& launch,
                 int status_fd) {
  constexpr int kTimeoutMs = 5000;
  InitRecord record{0, 0};
  pollfd readable{status_fd, POLLIN, 0};
  int ready = 0;
  while ((ready = ::poll(&readable, 1, kTimeoutMs)) < 0 && errno == EINTR) {
  }
  ssize_t got = -1;
  if (ready > 0) {
    while ((got = ::read(status_fd, &record, sizeof record)) < 0 && errno == EINTR) {
    }
  }
  if (got == static_cast<ssize_t>(sizeof record) && record.kind == kInitStarted) {
    return OkStatus();
  }
  if (ready == 0) (void)::syscall(SYS_pidfd_send_signal, launch.pidfd, SIGKILL, nullptr, 0U);
  siginfo_t info{};
  while (::waitid(P_PIDFD, static_cast<id_t>(launch.pidfd), &info, WEXITED) != 0 &&
         errno == EINTR) {
  }
  ::close(launch.pidfd);
  if (got == static_cast<ssize_t>(sizeof record) && record.kind == kInitExecFailed) {
    return ErrnoError("spawn " + program + ": exec", record.value);
  }
  if (got == static_cast<ssize_t>(sizeof record) && record.kind == kInitForkFailed) {
    return ErrnoError("spawn " + program + ": its init could not start it: fork", record.value);
  }
  if (ready == 0) {
    return MakeError("spawn " + program + ": its init " + init + " did not start it within " +
                     std::to_string(kTimeoutMs / 1000) + " s");
  }
  return MakeError("spawn " + program + ": its init " + init + " ended before starting it (" +
                   ExitStatus::FromSiginfo(info).Describe() + ")");
}

// Runs `attempt` in a throwaway child (forked: it may do anything) and
// returns the errno it failed with, 0 if it succeeded, or -1 if no child
// could be made.
int ProbeInChild(bool (*attempt)()) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(attempt() ? 0 : (errno & 0x7f));
  if (pid < 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status)) return EPERM;
  return WEXITSTATUS(status);
}

// What a child with a network namespace gets: the namespace, and its
// loopback brought up.
bool TryNetworkNamespace() {
  if (::unshare(CLONE_NEWNET) != 0) return false;
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq request{};
  std::memcpy(request.ifr_name, "lo", 3);
  if (fd < 0 || ::ioctl(fd, SIOCGIFFLAGS, &request) != 0) return false;
  request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
  return ::ioctl(fd, SIOCSIFFLAGS, &request) == 0;
}

bool TryIpcNamespace() {
  return ::unshare(CLONE_NEWIPC) == 0;
}

// What a child with a PID namespace gets: the namespace (its first child is
// the PID 1), and a /proc of its own in a mount namespace of its own.
bool TryPidNamespace() {
  if (::unshare(CLONE_NEWPID | CLONE_NEWNS) != 0 ||
      ::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    return false;
  }
  const pid_t init = ::fork();
  if (init == 0) {
    if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
      ::_exit(errno & 0x7f);
    }
    // The program's pid is numbered (ChildPlan::new_pid).
    const int fd = ::open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
    ::_exit(fd >= 0 && ::write(fd, "100", 3) == 3 ? 0 : (errno & 0x7f));
  }
  if (init < 0) return false;
  int status = 0;
  while (::waitpid(init, &status, 0) < 0 && errno == EINTR) {
  }
  errno = WIFEXITED(status) ? WEXITSTATUS(status) : EPERM;
  return errno == 0;
}

// What a read-only view takes besides the view: a tree cloned, the rest
// made read-only, the tree put back.
bool TryReadOnlyRoot() {
  if (::unshare(CLONE_NEWNS) != 0 ||
      ::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    return false;
  }
  const auto tree = static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, "/dev",
                                               OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
  if (tree < 0) return false;
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  return ::syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &attr, sizeof attr) == 0 &&
         ::syscall(SYS_move_mount, tree, "", AT_FDCWD, "/dev", MOVE_MOUNT_F_EMPTY_PATH) == 0;
}

// What an own domain handles: only REFER (Linux >= 5.19), which it grants
// beneath "/". Landlock takes every domain to handle REFER, refusing all
// renames and links across directories unless a rule grants it; a ruleset
// must name it for a rule to.
constexpr unsigned long long kOwnDomainAccess = LANDLOCK_ACCESS_FS_REFER;

// What a child with an own domain does (ChildOwnDomain), but for the rule.
template <bool kNoNewPrivs>
bool TryOwnDomain() {
  if (kNoNewPrivs && ::prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) != 0) return false;
  landlock_ruleset_attr attr{};
  attr.handled_access_fs = kOwnDomainAccess;
  const auto ruleset =
      static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0U));
  return ruleset >= 0 && ::syscall(SYS_landlock_restrict_self, ruleset, 0U) == 0;
}

}  // namespace

std::optional<std::string> OwnDomainUnavailable(bool no_new_privs) {
  static std::once_flag once[2];
  static std::optional<std::string> why[2];
  const std::size_t index = no_new_privs ? 1 : 0;
  std::call_once(once[index], [&] {
    const long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0U,
                               static_cast<unsigned>(LANDLOCK_CREATE_RULESET_VERSION));
    if (abi < 0) {
      const int error = errno;
      why[index] = error == EOPNOTSUPP
                       ? std::string(
                             "Landlock is off in this kernel (add landlock to its lsm= boot "
                             "parameter)")
                       : std::string("the kernel has no Landlock (") + std::strerror(error) + ")";
      return;
    }
    if (abi < 2) {
      why[index] =
          "the kernel's Landlock is its first version (Linux < 5.19), which would refuse "
          "every rename across directories";
      return;
    }
    const int error = ProbeInChild(no_new_privs ? &TryOwnDomain<true> : &TryOwnDomain<false>);
    if (error < 0) {
      // No child to probe in (short of processes): taken as unavailable
      // for this run, and said so.
      why[index] = std::string("cannot probe for Landlock: fork: ") + std::strerror(errno);
    } else if (error != 0) {
      why[index] = std::string("no Landlock domain for components (") + std::strerror(error) +
                   (error == EPERM && !no_new_privs
                        ? "; without no_new_privs the runtime needs CAP_SYS_ADMIN)"
                        : ")");
    }
  });
  return why[index];
}

std::optional<std::string> CapabilityDropUnavailable() {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) {
    return "capget: " + std::string(std::strerror(errno));
  }
  if ((data[CAP_TO_INDEX(CAP_SETPCAP)].effective & CAP_TO_MASK(CAP_SETPCAP)) == 0) {
    return "the runtime lacks CAP_SETPCAP";
  }
  return std::nullopt;
}

std::optional<std::string> MountViewsUnavailable() {
  static std::once_flag once;
  static std::optional<std::string> why;
  std::call_once(once, [] {
    // What a view takes: a namespace of its own, then joining one with
    // setns (which also needs CAP_SYS_CHROOT): back to the one it came from.
    const int error = ProbeInChild([] {
      const int origin = ::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
      return origin >= 0 && ::unshare(CLONE_NEWNS) == 0 &&
             ::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) == 0 &&
             ::setns(origin, CLONE_NEWNS) == 0;
    });
    if (error < 0) {
      why = std::string("cannot probe for mount namespaces: fork: ") + std::strerror(errno);
    } else if (error != 0) {
      why = std::string("no mount namespaces for components (") + std::strerror(error) +
            (error == EPERM ? "; the runtime needs CAP_SYS_ADMIN and CAP_SYS_CHROOT)" : ")");
    }
  });
  return why;
}

std::optional<std::string> NamespaceUnavailable(Namespace kind) {
  static std::once_flag once[3];
  static std::optional<std::string> why[3];
  const auto index = static_cast<std::size_t>(kind);
  std::call_once(once[index], [kind, index] {
    const int error = ProbeInChild(kind == Namespace::kIpc   ? &TryIpcNamespace
                                   : kind == Namespace::kPid ? &TryPidNamespace
                                                             : &TryNetworkNamespace);
    const char* what = kind == Namespace::kIpc   ? "IPC"
                       : kind == Namespace::kPid ? "PID"
                                                 : "network";
    if (error < 0) {
      why[index] =
          std::string("cannot probe for ") + what + " namespaces: fork: " + std::strerror(errno);
    } else if (error != 0) {
      why[index] = std::string("no ") + what + " namespaces for components (" +
                   std::strerror(error) +
                   (error == EPERM ? "; the runtime needs CAP_SYS_ADMIN)" : ")");
    }
  });
  return why[index];
}

std::optional<std::string> ReadOnlyRootUnavailable() {
  static std::once_flag once;
  static std::optional<std::string> why;
  std::call_once(once, [] {
    if (auto views = MountViewsUnavailable()) {
      why = *views;
      return;
    }
    const int error = ProbeInChild(&TryReadOnlyRoot);
    if (error < 0) {
      why = std::string("cannot probe for read-only mount views: fork: ") + std::strerror(errno);
    } else if (error != 0) {
      why = std::string("no read-only mount views for components (") + std::strerror(error) +
            (error == ENOSYS ? "; mount_setattr and open_tree need Linux >= 5.12)" : ")");
    }
  });
  return why;
}

Result<MountNamespace> MountNamespace::Make(const MountView& view) {
  const std::string what = "mount view";
  PreparedChild child;
  if (auto prepared = PrepareView(what, view, child); !prepared) {
    return prepared.error();
  }
  child.plan.make_namespace = true;
  const ChildStack stack;
  if (stack.base() == nullptr) {
    return ErrnoError("spawn " + what + ": mmap child stack", errno);
  }
  Launch launch;
  {
    AllSignalsBlocked blocked;
    launch = internal::LaunchSharingFiles(child.plan, stack.base(), kStackSize);
  }
  if (launch.error != 0) {
    return ErrnoError("spawn " + what + ": clone", launch.error);
  }
  // CLONE_VFORK: the child has exited by now; it is ours to reap.
  int status = 0;
  while (::waitpid(launch.pid, &status, __WALL) < 0 && errno == EINTR) {
  }
  // Whatever a failed child left open in our (shared) table.
  for (const ChildBind& b : child.binds) {
    if (b.fd >= 0) ::close(b.fd);
  }
  for (const int fd : child.writable_fds) {
    if (fd >= 0) ::close(fd);
  }
  const auto step =
      static_cast<ChildStep>(__atomic_load_n(&child.plan.failed_step, __ATOMIC_ACQUIRE));
  if (step != ChildStep::kNone || child.plan.made_namespace < 0) {
    std::string message = "spawn " + what + ": " + internal::DescribeStep(step);
    if (child.plan.failed_path != nullptr) message += std::string(" ") + child.plan.failed_path;
    return ErrnoError(message, child.plan.error);
  }
  return MountNamespace(UniqueFd(child.plan.made_namespace));
}

Result<Process> Spawn(const SpawnRequest& request) {
  if (auto valid = Validate(request); !valid) {
    return valid.error();
  }
  const std::string& program = request.argv[0];
  std::optional<CgroupHandle> cgroup;
  if (request.cgroup != nullptr) {
    auto copy = request.cgroup->Duplicate();
    if (!copy) {
      return MakeError("spawn " + program + ": " + copy.error().message);
    }
    cgroup = std::move(copy).value();
  }
  PreparedChild child;
  // With an init: its status pipe granted one above the highest target, and
  // the init's arguments before the program's.
  UniqueFd status_read;
  UniqueFd status_write;
  UniqueFd parent_pidfd;
  std::vector<std::string> init_argv;
  const SpawnRequest* effective = &request;
  SpawnRequest with_init;
  if (!request.pid_init.empty()) {
    int ends[2];
    if (::pipe2(ends, O_CLOEXEC) != 0) {
      return ErrnoError("spawn " + program + ": pipe for the init's status", errno);
    }
    status_read.Reset(ends[0]);
    status_write.Reset(ends[1]);
    (void)::fcntl(status_read.get(), F_SETFL, O_NONBLOCK);
    int status_fd = 3;
    for (const FdGrant& g : request.fds) status_fd = std::max(status_fd, g.target + 1);
    with_init.argv = {program};  // (PrepareFds names it in its errors)
    with_init.fds = request.fds;
    with_init.fds.push_back({status_write.get(), status_fd});
    if (request.die_with_us) {
      // getppid() is 0 in the new namespace: the child checks a pidfd of us.
      parent_pidfd.Reset(static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0U)));
      if (!parent_pidfd.valid()) {
        return ErrnoError("spawn " + program + ": pidfd_open of the runtime", errno);
      }
      with_init.fds.push_back({parent_pidfd.get(), status_fd + 1});
      child.plan.parent_pidfd = status_fd + 1;
    }
    init_argv = {request.pid_init, "--status-fd", std::to_string(status_fd), "--"};
    init_argv.insert(init_argv.end(), request.argv.begin(), request.argv.end());
    child.plan.new_pid = true;
    effective = &with_init;
  }
  const std::vector<std::string>& argv = init_argv.empty() ? request.argv : init_argv;
  child.argv = PointerArray(argv);
  child.envp = PointerArray(request.env);
  child.plan.path = argv[0].c_str();
  child.plan.argv = child.argv.data();
  child.plan.envp = child.envp.data();
  child.plan.cwd = request.cwd.empty() ? nullptr : request.cwd.c_str();
  if (auto fds = PrepareFds(*effective, child); !fds) {
    return fds.error();
  }
  if (request.capabilities) {
    child.plan.drop_caps = true;
    child.plan.keep_caps = *request.capabilities;
  }
  if (request.identity) {
    child.plan.set_identity = true;
    child.plan.uid = request.identity->uid;
    child.plan.gid = request.identity->gid;
    child.plan.groups = request.identity->groups.data();
    child.plan.group_count = request.identity->groups.size();
  }
  child.plan.no_new_privs = request.no_new_privs;
  child.plan.die_with_parent = request.die_with_us;
  for (const SpawnRequest::Limit& l : request.limits) {
    child.limit_resources.push_back(l.resource);
    child.limit_values.push_back(l.value);
  }
  child.plan.limit_resources = child.limit_resources.data();
  child.plan.limit_values = child.limit_values.data();
  child.plan.limit_count = child.limit_resources.size();
  if (request.network != SpawnRequest::Network::kHost) {
    child.plan.unshare_flags |= CLONE_NEWNET;
    child.plan.loopback_up = request.network == SpawnRequest::Network::kLoopback;
  }
  if (request.private_ipc) child.plan.unshare_flags |= CLONE_NEWIPC;
  if (request.seccomp) child.plan.seccomp_program = request.seccomp->program();
  if (request.own_domain) child.plan.landlock_access = kOwnDomainAccess;
  child.plan.parent = ::getpid();
  if (request.mounts != nullptr) {
    child.plan.join_namespace = request.mounts->fd();
  } else if (request.view) {
    if (auto view = PrepareView(request.argv[0], *request.view, child); !view) {
      return view.error();
    }
  }
  const ChildStack stack;
  if (stack.base() == nullptr) {
    return ErrnoError("spawn " + program + ": mmap child stack", errno);
  }
  const Launch launch = LaunchChild(request, child, stack);
  if (launch.error != 0) {
    const std::string into = cgroup ? " into cgroup " + cgroup->name() : "";
    return ErrnoError("spawn " + program + ": clone" + into, launch.error);
  }
  if (__atomic_load_n(&child.plan.failed_step, __ATOMIC_ACQUIRE) != 0) {
    Error error = ReapFailedChild(program, launch, child.plan);
    if (child.plan.new_pid && static_cast<ChildStep>(child.plan.failed_step) == ChildStep::kExec) {
      // What failed to execute was the init, not the program.
      return ErrnoError("spawn " + program + ": exec its init " + request.pid_init,
                        child.plan.error);
    }
    return error;
  }
  if (status_read.valid()) {
    status_write.Reset();
    if (auto started = AwaitInit(program, request.pid_init, launch, status_read.get()); !started) {
      return started.error();
    }
  }
  return Process(launch.pid, UniqueFd(launch.pidfd), std::move(cgroup), std::move(status_read));
}

}  // namespace slate::platform
