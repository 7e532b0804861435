#include "spec/capabilities.h"

#include <algorithm>
#include <cctype>

#include <linux/capability.h>

namespace slate::spec {

namespace {

struct Known {
  const char* name;
  int number;
};

#define SLATE_CAP(c) \
  Known {            \
#c, c            \
  }
constexpr Known kKnown[] = {
    SLATE_CAP(CAP_CHOWN),
    SLATE_CAP(CAP_DAC_OVERRIDE),
    SLATE_CAP(CAP_DAC_READ_SEARCH),
    SLATE_CAP(CAP_FOWNER),
    SLATE_CAP(CAP_FSETID),
    SLATE_CAP(CAP_KILL),
    SLATE_CAP(CAP_SETGID),
    SLATE_CAP(CAP_SETUID),
    SLATE_CAP(CAP_SETPCAP),
    SLATE_CAP(CAP_LINUX_IMMUTABLE),
    SLATE_CAP(CAP_NET_BIND_SERVICE),
    SLATE_CAP(CAP_NET_BROADCAST),
    SLATE_CAP(CAP_NET_ADMIN),
    SLATE_CAP(CAP_NET_RAW),
    SLATE_CAP(CAP_IPC_LOCK),
    SLATE_CAP(CAP_IPC_OWNER),
    SLATE_CAP(CAP_SYS_MODULE),
    SLATE_CAP(CAP_SYS_RAWIO),
    SLATE_CAP(CAP_SYS_CHROOT),
    SLATE_CAP(CAP_SYS_PTRACE),
    SLATE_CAP(CAP_SYS_PACCT),
    SLATE_CAP(CAP_SYS_ADMIN),
    SLATE_CAP(CAP_SYS_BOOT),
    SLATE_CAP(CAP_SYS_NICE),
    SLATE_CAP(CAP_SYS_RESOURCE),
    SLATE_CAP(CAP_SYS_TIME),
    SLATE_CAP(CAP_SYS_TTY_CONFIG),
    SLATE_CAP(CAP_MKNOD),
    SLATE_CAP(CAP_LEASE),
    SLATE_CAP(CAP_AUDIT_WRITE),
    SLATE_CAP(CAP_AUDIT_CONTROL),
    SLATE_CAP(CAP_SETFCAP),
    SLATE_CAP(CAP_MAC_OVERRIDE),
    SLATE_CAP(CAP_MAC_ADMIN),
    SLATE_CAP(CAP_SYSLOG),
    SLATE_CAP(CAP_WAKE_ALARM),
    SLATE_CAP(CAP_BLOCK_SUSPEND),
    SLATE_CAP(CAP_AUDIT_READ),
    SLATE_CAP(CAP_PERFMON),
    SLATE_CAP(CAP_BPF),
    SLATE_CAP(CAP_CHECKPOINT_RESTORE),
};
#undef SLATE_CAP

std::string Upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
  return out;
}

}  // namespace

std::optional<int> CapabilityNumber(std::string_view name) {
  std::string want = Upper(name);
  if (!want.starts_with("CAP_")) want = "CAP_" + want;
  for (const Known& k : kKnown) {
    if (want == k.name) return k.number;
  }
  return std::nullopt;
}

std::string CapabilityName(int number) {
  for (const Known& k : kKnown) {
    if (k.number == number) return k.name;
  }
  return "";
}

const std::vector<std::string>& CapabilityNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const Known& k : kKnown) v.emplace_back(k.name);
    return v;
  }();
  return names;
}

}  // namespace slate::spec
