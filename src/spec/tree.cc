#include "spec/tree.h"

#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "spec/capabilities.h"
#include "spec/units.h"

namespace slate::spec {
namespace {

std::string ShutdownText(const Shutdown& s) {
  switch (s.kind) {
    case Shutdown::Kind::kBrutalKill: return "brutal_kill";
    case Shutdown::Kind::kInfinity: return "infinity";
    case Shutdown::Kind::kTimeout: break;
  }
  return FormatDuration(s.timeout);
}

std::string SupervisorLine(const Supervisor& s, bool is_root) {
  std::string line = fmt::format("{}: supervisor {}, intensity {} per {}", s.name,
                                 ToString(s.strategy), s.intensity, FormatDuration(s.period));
  if (!is_root) line += fmt::format(", {}", ToString(s.restart));
  if (s.auto_shutdown != AutoShutdown::kNever) {
    line += fmt::format(", auto_shutdown {}", ToString(s.auto_shutdown));
  }
  if (s.significant && !is_root) line += ", significant";
  return line;
}

// ", seccomp default +ptrace (errno, optional), network none, ipc private,
// read-only root +/srv/out (optional)".
std::string IsolationText(const Component& c) {
  auto modifiers = [](bool errno_action, bool optional) -> std::string {
    if (errno_action && optional) return " (errno, optional)";
    if (errno_action) return " (errno)";
    return optional ? " (optional)" : "";
  };
  std::string out;
  if (c.seccomp.profile != SeccompProfile::kNone) {
    out += fmt::format(", seccomp {}", ToString(c.seccomp.profile));
    for (const std::string& n : c.seccomp.allow) out += " +" + n;
    out += modifiers(c.seccomp.action == SeccompAction::kErrno, c.seccomp.optional);
  }
  if (c.network.mode != NetworkMode::kHost) {
    out += fmt::format(", network {}{}", ToString(c.network.mode),
                       modifiers(false, c.network.optional));
  }
  if (c.ipc.mode != IpcMode::kHost) {
    out += fmt::format(", ipc {}{}", ToString(c.ipc.mode), modifiers(false, c.ipc.optional));
  }
  if (c.pid.mode != PidMode::kHost) {
    out += fmt::format(", pid {}{}", ToString(c.pid.mode), modifiers(false, c.pid.optional));
  }
  if (c.ptrace.given) {
    out +=
        fmt::format(", ptrace {}{}", ToString(c.ptrace.mode), modifiers(false, c.ptrace.optional));
  }
  if (c.block_devices.given) {
    out += fmt::format(", block devices {}{}", ToString(c.block_devices.mode),
                       modifiers(false, c.block_devices.optional));
  }
  if (c.read_only_root.enabled) {
    out += ", read-only root";
    for (const std::string& w : c.read_only_root.writable) out += " +" + w;
    out += modifiers(false, c.read_only_root.optional);
  }
  return out;
}

std::string ComponentLine(const Component& c, std::string_view shown_name) {
  std::string line = fmt::format("{}: component {}, shutdown {}", shown_name, ToString(c.restart),
                                 ShutdownText(c.shutdown));
  switch (c.ready.kind) {
    case Readiness::Kind::kSpawn: break;
    case Readiness::Kind::kNotify: line += ", ready notify"; break;
    case Readiness::Kind::kFd: line += fmt::format(", ready fd:{}", c.ready.fd); break;
  }
  if (c.heartbeat) line += fmt::format(", heartbeat {}", FormatDuration(*c.heartbeat));
  if (c.state) line += fmt::format(", state {}", FormatSize(c.state->size));
  if (c.backoff) {
    line += fmt::format(", backoff {}..{}", FormatDuration(c.backoff->initial),
                        FormatDuration(c.backoff->max));
  }
  if (c.on_persistent_failure) {
    std::string steps;
    for (LadderStep s : c.on_persistent_failure->steps) {
      if (!steps.empty()) steps += " > ";
      steps += ToString(s);
    }
    line += fmt::format(", after {} failures: {}", c.on_persistent_failure->after, steps);
  }
  if (c.standby > 0) line += fmt::format(", standby {}", c.standby);
  if (!c.devices.empty()) line += fmt::format(", devices {}", fmt::join(c.devices, " "));
  if (c.significant) line += ", significant";
  if (c.critical) line += ", critical";
  if (c.user) line += fmt::format(", user {}", *c.user);
  if (c.group) line += fmt::format(", group {}", *c.group);
  if (c.capabilities != 0) {
    std::vector<std::string> names;
    for (int i = 0; i < 64; ++i) {
      if ((c.capabilities >> i) & 1U) names.push_back(CapabilityName(i));
    }
    line += fmt::format(", capabilities {}", fmt::join(names, " "));
  }
  if (!c.no_new_privs) line += ", no_new_privs off";
  line += IsolationText(c);
  return line;
}

class Drawer {
 public:
  explicit Drawer(const System& sys) : sys_(sys) {}

  void Node(const std::string& name, const std::string& prefix, bool last, bool top) {
    std::string branch = top ? "" : (last ? "└─ " : "├─ ");
    std::string child_prefix = top ? "" : prefix + (last ? "   " : "│  ");
    if (const Supervisor* s = sys_.FindSupervisor(name)) {
      out_ += prefix + branch + SupervisorLine(*s, top) + "\n";
      if (s->strategy == Strategy::kSimpleOneForOne) {
        if (const Component* c = sys_.FindComponent(s->template_name)) {
          out_ += child_prefix + "└─ " +
                  ComponentLine(*c, fmt::format("{} x {}", c->name, s->instances)) + "\n";
        }
        return;
      }
      for (std::size_t i = 0; i < s->children.size(); ++i) {
        Node(s->children[i], child_prefix, i + 1 == s->children.size(), false);
      }
    } else if (const Component* c = sys_.FindComponent(name)) {
      out_ += prefix + branch + ComponentLine(*c, c->name) + "\n";
    }
  }

  std::string Draw() {
    out_ += fmt::format("system {} (state_dir {})\n", sys_.name, sys_.state_dir);
    Node(sys_.root, "", true, true);
    if (!sys_.channels.empty()) {
      out_ += "channels:\n";
      for (const Channel& ch : sys_.channels) {
        out_ +=
            fmt::format("  {}: {} -> {}, capacity {}, max_message {}, max_deliveries {}\n", ch.name,
                        ch.from, ch.to, ch.capacity, FormatSize(ch.max_message), ch.max_deliveries);
      }
    }
    if (!sys_.devices.empty()) {
      out_ += "devices:\n";
      for (const Device& d : sys_.devices) {
        std::string owner = "unused";
        for (const Component& c : sys_.components) {
          for (const auto& dn : c.devices) {
            if (dn == d.name) owner = "owned by " + c.name;
          }
        }
        out_ += fmt::format(
            "  {}: {}, reset {} within {}{}\n", d.name, owner,
            d.reset.empty() ? std::string("(none)") : fmt::format("{}", fmt::join(d.reset, " ")),
            FormatDuration(d.reset_timeout),
            d.wedge.empty() ? std::string() : fmt::format(", wedge {}", fmt::join(d.wedge, " ")));
      }
    }
    return out_;
  }

 private:
  const System& sys_;
  std::string out_;
};

}  // namespace

std::string RenderTree(const System& sys) {
  return Drawer(sys).Draw();
}

}  // namespace slate::spec
