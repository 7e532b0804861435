// Block devices kept from a cgroup's processes: a cgroup v2 device program
// (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the cgroup.
#pragma once

#include <vector>

#include "base/result.h"
#include "platform/cgroup.h"
#include "platform/status.h"
#include "platform/unique_fd.h"

namespace slate::platform {

// Refuses every access to a block device (open for reading or writing,
// mknod) by a process in a cgroup it is attached to, or below, and to the
// character devices that read disks too: SCSI generic (sg, major 21), bsg,
// NVMe generic (ng), MTD (90) and UBI flash, and raw; allows every other
// character device (/dev/null, ttys, serial ports, ...). The kernel checks
// it at open(2) whatever the process's user (capabilities aside: one with
// CAP_SYS_ADMIN can detach it), so a root process cannot read a disk raw,
// and with it another's files. The dynamic majors (bsg, ng, ubi) are those
// of /proc/devices at Load(): a driver loaded later is not covered. Needs
// cgroup v2, and CAP_SYS_ADMIN (or CAP_BPF with CAP_NET_ADMIN, Linux >= 5.8)
// to load and attach. A descriptor opened before is not affected.
class BlockDeviceFilter {
 public:
  // Loads the program (a dozen instructions, checked by the kernel's
  // verifier). The Error says why it cannot be had here.
  static Result<BlockDeviceFilter> Load();

  // The character-device majors it refuses, as Load() reads them.
  static std::vector<unsigned> DiskCharacterMajors();

  // Attaches it to `cgroup` (BPF_F_ALLOW_MULTI: with whatever else is
  // attached there or above; an access passes only if every program lets
  // it). It stays attached until the cgroup is removed.
  Status AttachTo(const CgroupHandle& cgroup) const;

 private:
  explicit BlockDeviceFilter(UniqueFd program) : program_(std::move(program)) {}
  UniqueFd program_;
};

}  // namespace slate::platform
