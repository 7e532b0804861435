#include "platform/device_filter.h"

#include <array>
#include <cerrno>
#include <cstdint>

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

Result<BlockDeviceFilter> BlockDeviceFilter::Load() {
  // r1 points at struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
  // u32 minor; }, whose access_type is (access << 16) | device type.
  //   r2 = ctx->access_type; r2 &= 0xffff
  //   r0 = 1 (allow)
  //   if r2 != BPF_DEVCG_DEV_BLOCK goto out
  //   r0 = 0 (refuse)
  //   out: exit
  const std::array<bpf_insn, 6> program{
      Instruction(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0),
      Instruction(BPF_ALU | BPF_AND | BPF_K, 2, 0, 0, 0xffff),
      Instruction(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1),
      Instruction(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 1, BPF_DEVCG_DEV_BLOCK),
      Instruction(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),
      Instruction(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  static constexpr char kLicense[] = "GPL";
  bpf_attr attr{};
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = reinterpret_cast<std::uintptr_t>(program.data());
  attr.insn_cnt = static_cast<std::uint32_t>(program.size());
  attr.license = reinterpret_cast<std::uintptr_t>(kLicense);
  const long fd = Bpf(BPF_PROG_LOAD, &attr);
  if (fd < 0) {
    const int error = errno;
    return ErrnoError(error == EPERM ? "load the block-device filter (bpf; the runtime needs "
                                       "CAP_SYS_ADMIN or CAP_BPF)"
                                     : "load the block-device filter (bpf)",
                      error);
  }
  return BlockDeviceFilter(UniqueFd(static_cast<int>(fd)));
}

Status BlockDeviceFilter::AttachTo(const CgroupHandle& cgroup) const {
  bpf_attr attr{};
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
