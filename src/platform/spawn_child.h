// Internal to Spawn: the code that runs in the child between clone and
// execve, and the two ways of starting it.
//
// The child shares our memory (CLONE_VM) and runs on its own small stack
// while the parent is suspended (CLONE_VFORK). So it may not allocate, take a
// lock or run sanitizer instrumentation; it only reads the ChildPlan the
// parent prepared and makes raw system calls. A failure is written back into
// the plan, which the parent reads once the child has exited.
#pragma once

#include <stddef.h>
#include <sys/types.h>

namespace slate::platform::internal {

enum class ChildStep : int {
  kNone = 0,
  kJoinCgroup,
  kSetpgid,
  kDupFd,
  kCloseFds,
  kSignals,
  kChdir,
  kExec,
  kMountNamespace,
  kMountHide,
  kMountCreate,
  kMountKeep,
  kMountSeal,
  kMountReadOnly,
  kMountWritable,
  kCapabilities,
  kSetGroups,
  kSetGid,
  kSetUid,
  kAmbient,
  kNoNewPrivs,
  kParentDeath,
  kLimits,
  kUnshare,
  kLoopback,
  kSeccomp,
  kMountProc,
  kPidNumber,
  kLandlock
};

// What a step was doing, for the parent's Error message.
const char* DescribeStep(ChildStep step);

struct FdMove {
  int source;
  int target;
};

struct FdRange {
  unsigned first;
  unsigned last;  // inclusive; ~0U for "to the end"
};

// A MountView as raw steps, after the child has its own namespace: open
// each kept path (O_PATH, in the new namespace: a bind source must be in
// the caller's), hide (tmpfs), create (mount points inside the tmpfs: a
// directory, or an empty file for a file), bind (from /proc/self/fd/N of
// the opened path), then seal (the tmpfs read-only).
struct ChildCreate {
  const char* path;
  bool directory;
};
struct ChildBind {
  const char* path;  // opened before the hide, bound back onto itself after it
  bool read_only;
  int fd;         // set by the child
  char from[32];  // "/proc/self/fd/N", written by the child
};

struct ChildPlan {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr;  // nullptr: keep ours
  // Each source is first duplicated to a number >= first_free_fd (above every
  // target), then onto its target, so that no move clobbers a later source.
  const FdMove* moves = nullptr;
  size_t move_count = 0;
  int* scratch = nullptr;  // move_count slots for those duplicates
  int first_free_fd = 3;
  // Closed after the moves: every number that is not a target.
  const FdRange* close = nullptr;
  size_t close_count = 0;
  // For the clone() path only: cgroup.procs of the target cgroup; writing
  // "0" moves the writer (clone3 places the child with CLONE_INTO_CGROUP).
  int cgroup_procs_fd = -1;

  // The mount view; no namespace at all when `view` is false.
  bool view = false;
  const char* const* hide = nullptr;
  size_t hide_count = 0;
  const ChildCreate* creates = nullptr;
  size_t create_count = 0;
  ChildBind* binds = nullptr;
  size_t bind_count = 0;
  // Then, with read_only_root: clone each `writable` path's tree as it is
  // (open_tree(OPEN_TREE_CLONE | AT_RECURSIVE) into writable_fds), make
  // every mount read-only (mount_setattr from "/", AT_RECURSIVE), and put
  // each clone back on its path (move_mount), outermost first.
  // Before the hides: remount each of these mount points read-only (a bind
  // remount: this mount only, in this namespace).
  const char* const* read_only_mounts = nullptr;
  size_t read_only_mount_count = 0;
  bool read_only_root = false;
  const char* const* writable = nullptr;
  int* writable_fds = nullptr;  // writable_count slots, set by the child
  size_t writable_count = 0;
  const char* failed_path = nullptr;  // the path a mount step failed on
  // Join this mount namespace (setns) instead of making `view`; -1: none.
  int join_namespace = -1;
  // MountNamespace::Make: make `view`, open /proc/self/ns/mnt into
  // made_namespace (the descriptor table is shared) and exit; run nothing.
  bool make_namespace = false;
  int made_namespace = -1;
  // After the view and chdir, before execve: drop from the bounding set every
  // capability not in `keep_caps` (when drop_caps), take the identity (when
  // set_identity), raise `keep_caps` as ambient capabilities (when drop_caps
  // and the uid is not 0), then no_new_privs.
  bool drop_caps = false;
  unsigned long long keep_caps = 0;
  bool set_identity = false;
  uid_t uid = 0;
  gid_t gid = 0;
  const gid_t* groups = nullptr;
  size_t group_count = 0;
  bool no_new_privs = false;
  // PR_SET_PDEATHSIG(SIGKILL) last before execve; then, if our parent is no
  // longer `parent` (it died before that took effect), fail.
  bool die_with_parent = false;
  // With new_pid (where getppid() is 0): a pidfd of the parent, installed as
  // this descriptor; after the prctl, the child fails if it is readable
  // (the parent has died), then closes it.
  int parent_pidfd = -1;
  // setrlimit each, first of the privilege steps.
  const int* limit_resources = nullptr;
  const unsigned long long* limit_values = nullptr;
  size_t limit_count = 0;
  // After the mount view, before the descriptors: unshare(these CLONE_NEW*
  // flags); then, with loopback_up, set IFF_UP on "lo" of the new network
  // namespace.
  int unshare_flags = 0;
  bool loopback_up = false;
  // A PID namespace of its own (CLONE_NEWPID at clone: the child is its
  // PID 1). After the view, the child takes a mount namespace of its own if
  // it has none yet (it joined a shared one, or has no view) and mounts the
  // namespace's own /proc on /proc, and sets its ns_last_pid so that the
  // init's first child (the program) gets the child's pid on the host as
  // its pid in the namespace. Its signals stay blocked through
  // execve: the init it executes takes them with sigwaitinfo, where PID 1
  // would lose any it has no handler for yet. No parent-death check by pid:
  // getppid() is 0 in the new namespace.
  bool new_pid = false;
  // A Landlock domain of its own, after the descriptors and chdir, before
  // the privilege steps (while it still has our CAP_SYS_ADMIN; no_new_privs
  // is set first when asked for, which makes it possible without): a
  // ruleset handling `landlock_access` (LANDLOCK_ACCESS_FS_* bits), one rule
  // granting all of them beneath "/", landlock_restrict_self. 0: none.
  unsigned long long landlock_access = 0;
  // A struct sock_fprog, loaded with seccomp(SECCOMP_SET_MODE_FILTER) after
  // the signals are reset: the last step before execve. nullptr: none.
  const void* seccomp_program = nullptr;
  pid_t parent = 0;
  // Written by the child before it exits on failure.
  int failed_step = 0;  // a ChildStep
  int error = 0;        // errno
};

struct Launch {
  pid_t pid = -1;
  int pidfd = -1;
  int error = 0;  // errno of clone itself; 0 on success
};

// clone3(CLONE_VM | CLONE_VFORK | CLONE_PIDFD [| CLONE_INTO_CGROUP]).
// Returns ENOSYS where it is not implemented (other CPUs, seccomp filters).
Launch LaunchWithClone3(ChildPlan& plan, void* stack, size_t stack_size, int cgroup_dir_fd);

// glibc clone() with CLONE_VM | CLONE_VFORK | CLONE_PIDFD; for a cgroup, set
// plan.cgroup_procs_fd.
Launch LaunchWithClone(ChildPlan& plan, void* stack, size_t stack_size);

// glibc clone() with CLONE_VM | CLONE_VFORK | CLONE_FILES, for
// plan.make_namespace: what the child opens is ours. No pidfd: reap the pid.
Launch LaunchSharingFiles(ChildPlan& plan, void* stack, size_t stack_size);

// Lets tests exercise both launchers and benchmarks compare them.
enum class SpawnMethod { kAuto, kClone3, kClone };
void SetSpawnMethodForTesting(SpawnMethod method);
SpawnMethod CurrentSpawnMethod();

}  // namespace slate::platform::internal
