// cgroup v2 support: one cgroup per component, so that a whole process tree
// can be killed even if some of it left the process group (setsid, double
// fork), and so that "is anything of it still alive" has an exact answer.
//
// Optional by design: the runtime calls CgroupTree::Create once at start; if
// it fails (no cgroup2 mount, pure v1 host, no delegation, read-only
// cgroupfs) the Error says why and the runtime falls back to process groups.
//
// Layout: OWN/TREE/COMPONENT, where OWN is the runtime's own cgroup (from
// /proc/self/cgroup), TREE is created by CgroupTree::Create and COMPONENT by
// CgroupTree::CreateChild. Works on pure v2 hosts (cgroup2 at /sys/fs/cgroup)
// and hybrid ones (cgroup2 at /sys/fs/cgroup/unified beside v1 hierarchies).
// Controllers (memory, pids) are enabled only on request, for components
// with cgroup limits: see CgroupTree::EnableControllers, which may move the
// runtime into TREE/runtime (cgroup v2's "no internal processes" rule).
//
// Not thread-safe: each object is used by one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "base/result.h"
#include "platform/status.h"
#include "platform/unique_fd.h"

namespace slate::platform {

// Where cgroup v2 is mounted and where this process sits in it.
struct Cgroup2Location {
  std::string mount;    // e.g. "/sys/fs/cgroup" or "/sys/fs/cgroup/unified"
  std::string own;      // our cgroup as /proc/self/cgroup names it ("0::OWN"), e.g. "/"
  std::string own_dir;  // its directory: mount + own
};

// Reads /proc/self/mountinfo and /proc/self/cgroup. Fails when no cgroup2 is
// mounted, or this process has no v2 cgroup, or it lies outside the mount.
Result<Cgroup2Location> LocateCgroup2();

// An open cgroup directory and the operations on it. Does not own the
// directory's existence (see Cgroup). Move-only; Duplicate() for a copy.
class CgroupHandle {
 public:
  // Opens the existing cgroup directory `path`; `name` is how /proc/PID/cgroup
  // names it (the part after "0::").
  static Result<CgroupHandle> Open(std::string path, std::string name);
  Result<CgroupHandle> Duplicate() const;

  int dir_fd() const { return dir_.get(); }  // for clone3(CLONE_INTO_CGROUP)
  const std::string& path() const { return path_; }
  const std::string& name() const { return name_; }
  bool has_kill_file() const;  // cgroup.kill exists (Linux >= 5.14)

  // SIGKILLs every process in this cgroup and below. With cgroup.kill the
  // kernel does it atomically, including processes forking meanwhile;
  // without it each member of cgroup.procs is signalled, in rounds while new
  // members appear. Asynchronous: wait for IsPopulated() to turn false.
  Status Kill() const;
  // Opens cgroup.kill ahead, off a restart's path, for Kill() to write to
  // without an open (one descriptor more; not passed on by Duplicate()).
  // Where it cannot be opened, Kill() opens it, or does without it, as
  // before.
  void OpenKillFile();

  // Sends `sig` to every process listed in cgroup.procs (not below). Safe
  // against pid reuse: each pid is pinned with a pidfd and re-checked to be a
  // member before it is signalled. A process forked meanwhile may be missed.
  Status Signal(int sig) const;

  // The "populated" key of cgroup.events: true while any live process is in
  // this cgroup or below (zombies do not count).
  Result<bool> IsPopulated() const;

  // Whether process `pid` is in this cgroup or below, from /proc/PID/cgroup.
  // false (not an Error) when the process no longer exists.
  Result<bool> Contains(pid_t pid) const;

  // Writes `value` to the control file `file` (e.g. "memory.max") in one
  // write(2). The Error names the file.
  Status Write(std::string_view file, std::string_view value) const;

  // The count of `key` in memory.events (e.g. "oom_kill"): events in this
  // cgroup and below. An Error where the memory controller is not enabled.
  Result<std::uint64_t> MemoryEvents(std::string_view key) const;

 private:
  CgroupHandle(UniqueFd dir, std::string path, std::string name)
      : dir_(std::move(dir)), path_(std::move(path)), name_(std::move(name)) {}

  UniqueFd dir_;
  UniqueFd kill_;  // cgroup.kill, once OpenKillFile() opened it
  std::string path_;
  std::string name_;
};

// A cgroup directory this process created (or adopted). The destructor
// removes it if it is empty; failures are ignored there (call Remove() to see
// them), so an object destroyed while processes remain leaves the directory.
class Cgroup {
 public:
  explicit Cgroup(CgroupHandle handle) : handle_(std::move(handle)), owned_(true) {}
  Cgroup(Cgroup&& other) noexcept;
  Cgroup& operator=(Cgroup&& other) noexcept;
  ~Cgroup();

  const CgroupHandle& handle() const { return handle_; }

  // rmdir. Fails with EBUSY while a live process or a child cgroup remains.
  // After success the object is inert.
  Status Remove();

 private:
  CgroupHandle handle_;
  bool owned_ = false;
};

// OWN/TREE, the parent of every component's cgroup.
class CgroupTree {
 public:
  // Creates OWN/`name` (adopts it if it exists, e.g. after a crash of the
  // previous runtime) after checking that this process may move processes
  // below OWN. `name` is one path component. The Error explains why cgroups
  // cannot be used.
  static Result<CgroupTree> Create(std::string_view name);

  // Creates (or adopts) OWN/TREE/`name`. An adopted cgroup may still hold
  // processes of a previous runtime: check IsPopulated() and Kill().
  Result<Cgroup> CreateChild(std::string_view name) const;

  // Makes `controllers` (e.g. {"memory", "pids"}) available in the
  // components' cgroups: enabled in cgroup.subtree_control of OWN and TREE.
  // cgroup v2 lets a cgroup other than the root pass controllers to its
  // children only while no process sits in it, so where OWN is not the root
  // this process moves itself into TREE/runtime first; then no other
  // process may share OWN. On failure it puts back what it changed, as far
  // as the kernel lets it, and the Error says why (not delegated, bound to
  // cgroup v1, shared cgroup). The destructor undoes it: controllers off
  // again (but in the root cgroup, whose are the host's), this process back.
  Status EnableControllers(const std::vector<std::string>& controllers);
  // The cgroup this process moved itself into, or nullptr.
  const CgroupHandle* own_leaf() const { return leaf_ ? &leaf_->handle() : nullptr; }

  CgroupTree(CgroupTree&& other) noexcept;
  CgroupTree& operator=(CgroupTree&&) = delete;
  ~CgroupTree();

  const Cgroup2Location& location() const { return location_; }
  const CgroupHandle& handle() const { return root_.handle(); }
  bool has_kill_file() const { return root_.handle().has_kill_file(); }

  // One line for the runtime's start-up banner, e.g.
  // "cgroup v2 at /sys/fs/cgroup/unified, components under /slate (cgroup.kill: yes)".
  std::string Describe() const;

 private:
  CgroupTree(Cgroup2Location location, Cgroup root)
      : location_(std::move(location)), root_(std::move(root)) {}

  // Undoes EnableControllers.
  void RestoreControllers();

  Cgroup2Location location_;
  Cgroup root_;
  std::optional<Cgroup> leaf_;             // TREE/runtime, while we sit in it
  std::vector<std::string> enabled_own_;   // what we enabled in OWN
  std::vector<std::string> enabled_tree_;  // and in TREE
};

}  // namespace slate::platform
