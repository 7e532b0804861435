// Spawn: start a component's program as a child process.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "base/result.h"
#include "platform/cgroup.h"
#include "platform/process.h"
#include "platform/seccomp.h"
#include "platform/unique_fd.h"

namespace slate::platform {

// Installs our descriptor `source` as descriptor `target` in the child.
// `source` may be close-on-exec (it usually is); the child's copy is not.
// Sources and targets may collide in any way (e.g. {4 -> 3} and {3 -> 4}).
struct FdGrant {
  int source;
  int target;
};

// The child's own view of the file system, made in a mount namespace of its
// own before it executes the program: each directory of `hide` is covered by
// an empty, read-only tmpfs, and each `keep` path (a directory or a file
// below one of them) is bind-mounted back there as it is in ours, read-only
// if asked. Nothing the child mounts reaches ours (its mounts are slaves of
// ours). Needs CAP_SYS_ADMIN: see MountViewsUnavailable.
struct MountView {
  struct Keep {
    std::string path;
    bool read_only = false;
  };
  std::vector<std::string> hide;
  std::vector<Keep> keep;
  // Then, with read_only_root, every mount of the view is made read-only
  // (mount_setattr(2), MOUNT_ATTR_RDONLY, recursively from "/") but for
  // these, kept as they were before, their mounts below included: each
  // `writable` path (absolute; it must exist), each kept path not read_only,
  // /dev (/dev/null, /dev/shm) and /proc (/proc/self/... files a program
  // writes, e.g. thread names). /sys and the rest become read-only. A path
  // the host has read-only stays so. Needs Linux >= 5.12: see
  // ReadOnlyRootUnavailable.
  bool read_only_root = false;
  std::vector<std::string> writable = {};  // (an initializer: {hide, keep} stays complete)
  // Mount points (absolute) made read-only in the view, before the rest:
  // a bind remount of that one mount (mounts below it keep their flags).
  // E.g. the cgroup2 mount, whose cgroup.procs files its owner could
  // otherwise write to move itself out of its cgroup.
  std::vector<std::string> read_only_mounts = {};
};

// A mount namespace made once from a MountView and joined by many children
// (SpawnRequest::mounts): joining costs a setns, a few microseconds, where
// making the view costs a namespace, a tmpfs and a mount per kept path
// (about 140 us on a 2-CPU VM, bench in spawn_bench_test.cc). The kept
// paths are bound as they were when it was made: a kept directory that is
// later replaced (not its contents) is not seen again.
class MountNamespace {
 public:
  static Result<MountNamespace> Make(const MountView& view);
  int fd() const { return fd_.get(); }

 private:
  explicit MountNamespace(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// Why children cannot be given a MountView here (no CAP_SYS_ADMIN, or mount
// namespaces refused); nullopt when they can. Probes once, by making a
// namespace in a throwaway child, and remembers.
std::optional<std::string> MountViewsUnavailable();

// Why a MountView cannot have read_only_root here (no mount views at all,
// or no mount_setattr(2) and open_tree(2): Linux < 5.12, or an outer
// sandbox refuses them); nullopt when it can. Probes once and remembers.
std::optional<std::string> ReadOnlyRootUnavailable();

// Who a child runs as: set in the child, after its mount view and chdir
// and before execve, with setgroups, setresgid and setresuid.
struct Identity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups; empty: none
};

// Namespaces a child can be given besides its mount view.
enum class Namespace {
  kNetwork,  // CLONE_NEWNET, and bringing its loopback up (SIOCSIFFLAGS)
  kIpc,      // CLONE_NEWIPC
  kPid,      // CLONE_NEWPID, with a mount namespace for its own /proc
};

// Why children cannot be given a namespace of this kind here (the runtime
// lacks CAP_SYS_ADMIN, or the kernel or an outer sandbox refuses); nullopt
// when they can. Probes once per kind, by making one in a throwaway child,
// and remembers.
std::optional<std::string> NamespaceUnavailable(Namespace kind);

// Why SpawnRequest::capabilities cannot be honoured here (we lack
// CAP_SETPCAP, so the bounding set cannot be changed); nullopt when it can.
std::optional<std::string> CapabilityDropUnavailable();

// Why a child cannot have a Landlock domain of its own
// (SpawnRequest::own_domain) here: the kernel has no Landlock, or has it
// off (not in its lsm= list), or only its first version (Linux < 5.19,
// which would refuse the child every rename across directories); or,
// unless the child sets `no_new_privs`, we lack CAP_SYS_ADMIN. nullopt when
// it can. Probes once each way, in a throwaway child, and remembers.
std::optional<std::string> OwnDomainUnavailable(bool no_new_privs);

struct SpawnRequest {
  // argv[0] is the absolute path of the program, executed as is (no PATH
  // search) and passed to it as its argv[0].
  std::vector<std::string> argv;
  // The child's whole environment, "KEY=VALUE" each. Nothing is inherited.
  std::vector<std::string> env;
  // Working directory of the child; empty keeps ours.
  std::string cwd;
  // Descriptors the child gets, e.g. {out.write, 1}, {err.write, 2},
  // {ready.write_fd(), 5}. Targets must be distinct and >= 0.
  std::vector<FdGrant> fds;
  // Start the child inside this cgroup (it is in it before its first
  // instruction, so nothing it forks can escape). nullptr: stay in ours.
  // Only needs to outlive the call: the Process keeps its own handle.
  const CgroupHandle* cgroup = nullptr;
  // A private view of the file system (see MountView); none: share ours.
  std::optional<MountView> view;
  // Or join this namespace, made from a view before (wins over `view`).
  const MountNamespace* mounts = nullptr;
  // Run as this user and groups; none: as we are.
  std::optional<Identity> identity;
  // The capabilities the program may hold, as a mask of bits 1 << CAP_*;
  // none: no change (it inherits what execve gives it). Every other one is
  // dropped from the bounding set (so no execve can regain it). A root child
  // then holds exactly these; a child of another `identity` gets them as
  // ambient capabilities. Dropping needs CAP_SETPCAP.
  std::optional<std::uint64_t> capabilities;
  // prctl(PR_SET_NO_NEW_PRIVS): no execve can grant privileges (set-user-ID
  // bits and file capabilities are ignored), in the child or its children.
  bool no_new_privs = false;
  // SIGKILL the child when we die (PR_SET_PDEATHSIG, set last before
  // execve, after the identity change that would clear it): a runtime killed
  // with SIGKILL leaves no component running. Its own children are not
  // covered; the next runtime kills what is left in its cgroups.
  bool die_with_us = false;
  // setrlimit in the child (soft = hard = value), before its identity
  // changes (raising a hard limit needs CAP_SYS_RESOURCE, which it may then
  // no longer have). RLIMIT_* resource numbers.
  struct Limit {
    int resource;
    std::uint64_t value;
  };
  std::vector<Limit> limits;
  // A network namespace of its own (unshare, after the mount view, before
  // the identity changes): kNone has only a loopback interface, down, so no
  // address at all can be reached; kLoopback brings it up, so the child can
  // talk to itself on 127.0.0.1 and ::1 but to no one else. kHost: ours.
  // Needs CAP_SYS_ADMIN: see NamespaceUnavailable.
  enum class Network { kHost, kNone, kLoopback };
  Network network = Network::kHost;
  // An IPC namespace of its own (System V IPC and POSIX message queues):
  // no segment, semaphore or queue of ours is visible to it, nor its to us.
  bool private_ipc = false;
  // A PID namespace of its own, with its own /proc (mounted over /proc in a
  // mount namespace of the child's: a copy of its view, or of ours), so it
  // sees no process but its own tree. The child executes `pid_init` (an
  // absolute path: slate-init) as the namespace's PID 1, with all signals
  // blocked, and the arguments
  //   --status-fd N -- argv...
  // It starts argv in its process group, as the pid the child had on our
  // side (ChildPlan::new_pid), forwards every signal it gets to it, reaps
  // the namespace's orphans and, once the program has ended, says how on
  // descriptor N (init_protocol.h) and exits (ending every process left in
  // the namespace). Descriptor N, one more than the highest granted, is only
  // the init's. Spawn returns once the init has executed the program (an
  // exec failure is Spawn's error, "spawn PROGRAM: exec: ...", as without
  // an init), waiting up to 5 s. The Process knows it has an init
  // (has_init) and TryReap reports the program's end. Empty: our PID
  // namespace. Needs CAP_SYS_ADMIN: see NamespaceUnavailable.
  std::string pid_init;
  // A Landlock domain of its own (landlock_restrict_self, after its mount
  // view and namespaces, before its identity changes), which its children
  // inherit. It restricts no file access; what it does is Landlock's ptrace
  // rule: the child may trace, or open /proc/PID/{root,cwd,fd,mem,environ,
  // maps,...} of, only processes of its domain (itself and what it forks),
  // whoever they run as; so it cannot reach into another child's mount view,
  // or ours. We, outside every domain, still reach it. Landlock also takes
  // mount(2) from it. See OwnDomainUnavailable.
  bool own_domain = false;
  // Loaded last, after the signals are reset, right before execve: the
  // program runs under it and cannot shed it. The kernel takes a filter
  // only under no_new_privs or from a child that still holds CAP_SYS_ADMIN
  // at that point (otherwise the Error says "load the seccomp filter:
  // Permission denied"). nullptr: none.
  std::shared_ptr<const SeccompFilter> seccomp;
};

// Starts request.argv[0] as a child and returns once it has executed the
// program, or with an Error naming the program and the reason when it could
// not (e.g. "spawn /bin/nope: exec: No such file or directory",
// "spawn /bin/x: chdir /gone: ..."); a failed child is reaped before return.
//
// The child: leads its own new process group (setpgid(0, 0)); has exactly
// the granted descriptors open, plus /dev/null on those of 0, 1 and 2 not
// granted (so its own open() never lands on its stdout); default dispositions
// for every signal and an empty signal mask whatever ours are; exit signal
// SIGCHLD; a parent-death signal only if asked (die_with_us).
//
// Cost: one clone3(CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP) on x86-64,
// glibc clone() with the same flags elsewhere or where clone3 is filtered
// (the child then joins its cgroup by writing cgroup.procs, which is slower).
// No page tables are copied, so the cost does not grow with our memory. The
// calling thread is suspended until the child has called execve (about
// 0.1 ms, most of it execve itself; longer if `cwd` or the program is on a
// slow file system), with all signals blocked meanwhile. Callable from any
// thread; stray descriptors without close-on-exec do not leak into the child.
// Needs Linux >= 5.9 (close_range).
Result<Process> Spawn(const SpawnRequest& request);

}  // namespace slate::platform
