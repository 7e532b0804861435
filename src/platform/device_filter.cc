#include "platform/device_filter.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace slate::platform {
namespace {

long Bpf(int command, bpf_attr* attr) {
  return ::syscall(SYS_bpf, command, attr, sizeof *attr);
}

bpf_insn Instruction(std::uint8_t code, std::uint8_t dst, std::uint8_t src, std::int16_t off,
                     std::int32_t imm) {
  bpf_insn insn{};
  insn.code = code;
  insn.dst_reg = dst & 0xf;
  insn.src_reg = src & 0xf;
  insn.off = off;
  insn.imm = imm;
  return insn;
}

}  // namespace

std::vector<unsigned> BlockDeviceFilter::DiskCharacterMajors() {
  std::vector<unsigned> majors{21, 90};  // sg and mtd: fixed numbers
  std::ifstream devices("/proc/devices");
  bool character = false;
  for (std::string line; std::getline(devices, line);) {
    if (line == "Character devices:") {
      character = true;
      continue;
    }
    if (line.empty() || line.back() == ':') {
      character = false;
      continue;
    }
    if (!character) continue;
    unsigned major = 0;
    char name[64] = {};
    if (std::sscanf(line.c_str(), "%u %63s", &major, name) != 2) continue;
    const std::string n = name;
    const bool ubi =
        n.size() > 3 && n.starts_with("ubi") &&
        std::all_of(n.begin() + 3, n.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (n == "sg" || n == "bsg" || n == "nvme-generic" || n == "mtd" || n == "raw" || ubi) {
      majors.push_back(major);
    }
  }
  std::sort(majors.begin(), majors.end());
  majors.erase(std::unique(majors.begin(), majors.end()), majors.end());
  return majors;
}

Result<BlockDeviceFilter> BlockDeviceFilter::Load() {
  // r1 points at struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
  // u32 minor; }, whose access_type is (access << 16) | device type.
  //   r2 = ctx->access_type & 0xffff
  //   if r2 == BPF_DEVCG_DEV_BLOCK goto refuse
  //   if r2 != BPF_DEVCG_DEV_CHAR goto allow
  //   r3 = ctx->major
  //   if r3 == M goto refuse          (each disk character major M)
  //   allow: r0 = 1; exit
  //   refuse: r0 = 0; exit
  const std::vector<unsigned> majors = DiskCharacterMajors();
  const auto n = static_cast<int>(majors.size());
  // Instructions after the one at `at` up to `target`.
  auto to = [](int at, int target) { return static_cast<std::int16_t>(target - at - 1); };
  const int allow = 5 + n;
  const int refuse = allow + 2;
  std::vector<bpf_insn> program{
      Instruction(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0),
      Instruction(BPF_ALU | BPF_AND | BPF_K, 2, 0, 0, 0xffff),
      Instruction(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, to(2, refuse), BPF_DEVCG_DEV_BLOCK),
      Instruction(BPF_JMP | BPF_JNE | BPF_K, 2, 0, to(3, allow), BPF_DEVCG_DEV_CHAR),
      Instruction(BPF_LDX | BPF_MEM | BPF_W, 3, 1, 4, 0),
  };
  for (int i = 0; i < n; ++i) {
    program.push_back(Instruction(BPF_JMP | BPF_JEQ | BPF_K, 3, 0, to(5 + i, refuse),
                                  static_cast<std::int32_t>(majors[static_cast<std::size_t>(i)])));
  }
  program.push_back(Instruction(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1));
  program.push_back(Instruction(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  program.push_back(Instruction(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0));
  program.push_back(Instruction(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  static constexpr char kLicense[] = "GPL";
  bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);  // the whole union, not its first member
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = reinterpret_cast<std::uintptr_t>(program.data());
  attr.insn_cnt = static_cast<std::uint32_t>(program.size());
  attr.license = reinterpret_cast<std::uintptr_t>(kLicense);
  const long fd = Bpf(BPF_PROG_LOAD, &attr);
  if (fd < 0) {
    const int error = errno;
    return ErrnoError(error == EPERM ? "load the block-device filter (bpf; the runtime needs "
                                       "CAP_SYS_ADMIN, or CAP_BPF and CAP_NET_ADMIN)"
                                     : "load the block-device filter (bpf)",
                      error);
  }
  return BlockDeviceFilter(UniqueFd(static_cast<int>(fd)));
}

Status BlockDeviceFilter::AttachTo(const CgroupHandle& cgroup) const {
  bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.target_fd = static_cast<std::uint32_t>(cgroup.dir_fd());
  attr.attach_bpf_fd = static_cast<std::uint32_t>(program_.get());
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (Bpf(BPF_PROG_ATTACH, &attr) != 0) {
    return ErrnoError("attach the block-device filter to cgroup " + cgroup.name(), errno);
  }
  return OkStatus();
}

}  // namespace slate::platform
