// Block devices kept from a cgroup's processes: a cgroup v2 device program
// (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the cgroup.
#pragma once

#include "base/result.h"
#include "platform/cgroup.h"
#include "platform/status.h"
#include "platform/unique_fd.h"

namespace slate::platform {

// Refuses every access to a block device (open for reading or writing,
// mknod) by a process in a cgroup it is attached to, or below; allows every
// character device (/dev/null, ttys, ...) and everything else. The kernel
// checks it at open(2), whatever the process's user and capabilities, so a
// root process cannot read a disk raw (and with it another's files). Needs
// CAP_SYS_ADMIN (or CAP_BPF) to load and attach, and cgroup v2; Linux
// >= 4.15. A descriptor opened before is not affected.
class BlockDeviceFilter {
 public:
  // Loads the program (a few instructions, checked by the kernel's
  // verifier). The Error says why it cannot be had here.
  static Result<BlockDeviceFilter> Load();

  // Attaches it to `cgroup` (BPF_F_ALLOW_MULTI: with whatever else is
  // attached there or above; an access passes only if every program lets
  // it). It stays attached until the cgroup is removed.
  Status AttachTo(const CgroupHandle& cgroup) const;

 private:
  explicit BlockDeviceFilter(UniqueFd program) : program_(std::move(program)) {}
  UniqueFd program_;
};

}  // namespace slate::platform
