#include "spec/syscalls.h"

#include <cstdlib>
#include <memory>

#include <seccomp.h>

namespace slate::spec {

bool IsSyscallName(std::string_view name) {
  const std::string s(name);
  return !s.empty() && seccomp_syscall_resolve_name(s.c_str()) != __NR_SCMP_ERROR;
}

const std::vector<std::string>& SyscallNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    // Numbers run from 0 to a few hundred on every architecture (x32's
    // and MIPS's offsets aside, which only narrow the suggestions).
    for (int nr = 0; nr < 1024; ++nr) {
      std::unique_ptr<char, decltype(&std::free)> name(
          seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr), &std::free);
      if (name) out.emplace_back(name.get());
    }
    return out;
  }();
  return names;
}

}  // namespace slate::spec
