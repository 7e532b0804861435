#include "spec/validate.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <unistd.h>

namespace slate::spec::internal {
namespace {

// What a name in the file stands for, with where it was defined.
struct Definition {
  std::string_view kind;  // "supervisor", "component", "channel", "device"
  SourcePos pos;
};

class Validator {
 public:
  Validator(const System& sys, Context& ctx) : sys_(sys), ctx_(ctx) {}

  void Run() {
    CheckNames();
    CheckRoot();
    CheckChildren();
    CheckCycles();
    CheckReachable();
    CheckSupervisors();
    CheckComponents();
    CheckChannels();
    CheckDevices();
  }

 private:
  // "'x' (supervisor, line 3)" style reference to a definition.
  std::string Describe(const std::string& name) const {
    auto it = defs_.find(name);
    if (it == defs_.end()) return fmt::format("'{}'", name);
    return fmt::format("{} '{}' (line {})", it->second.kind, name, it->second.pos.line);
  }

  std::vector<std::string> NamesOfKinds(std::initializer_list<std::string_view> kinds) const {
    std::vector<std::string> out;
    for (const auto& [name, def] : defs_) {
      for (auto k : kinds) {
        if (def.kind == k) out.push_back(name);
      }
    }
    return out;
  }

  // Checks that `name`, read at `at_path` and shown as `path`, is a
  // definition of one of `kinds`.
  bool ExpectKind(const std::string& at_path, const std::string& path, const std::string& name,
                  std::initializer_list<std::string_view> kinds, std::string_view role) {
    SourcePos at = ctx_.At(at_path);
    auto it = defs_.find(name);
    std::string wanted;
    for (auto k : kinds) {
      if (!wanted.empty()) wanted += " or ";
      wanted += k;
    }
    if (it == defs_.end()) {
      ctx_.Error(at, fmt::format("{}: unknown {} '{}'{}", path, role, name,
                                 DidYouMean(name, NamesOfKinds(kinds))));
      return false;
    }
    for (auto k : kinds) {
      if (it->second.kind == k) return true;
    }
    ctx_.Error(at, fmt::format("{}: {} must be a {}, but {} is a {}", path, role, wanted,
                               Describe(name), it->second.kind));
    return false;
  }

  template <typename T>
  void Define(const std::vector<T>& items, std::string_view kind) {
    for (const T& item : items) {
      if (!IsValidName(item.name)) {
        ctx_.Error(item.pos, fmt::format("{} name '{}' is not valid: use letters, digits, '_' "
                                         "and '-', starting with a letter or digit, at most 64",
                                         kind, item.name));
      }
      auto [it, inserted] = defs_.emplace(item.name, Definition{kind, item.pos});
      if (!inserted) {
        ctx_.Error(item.pos, fmt::format("{} name '{}' is already used by {}", kind, item.name,
                                         Describe(item.name)));
      }
    }
  }

  void CheckNames() {
    Define(sys_.supervisors, "supervisor");
    Define(sys_.components, "component");
    Define(sys_.channels, "channel");
    Define(sys_.devices, "device");
  }

  void CheckRoot() {
    if (sys_.root.empty()) {
      if (ctx_.At("system.root").line == 0 && ctx_.At("system").line != 0) {
        ctx_.Error(ctx_.At("system"), "system: missing required key 'root' (the top supervisor)");
      }
      return;
    }
    ExpectKind("system.root", "system.root", sys_.root, {"supervisor"}, "root supervisor");
  }

  void CheckChildren() {
    for (const Supervisor& s : sys_.supervisors) {
      std::set<std::string> seen;
      for (std::size_t i = 0; i < s.children.size(); ++i) {
        const std::string& child = s.children[i];
        std::string path = fmt::format("supervisor.{}.children.{}", s.name, i);
        std::string shown = fmt::format("supervisor.{}.children", s.name);
        if (!seen.insert(child).second) {
          ctx_.Error(ctx_.At(path), fmt::format("{}: '{}' is listed twice", shown, child));
          continue;
        }
        if (child == s.name) {
          ctx_.Error(ctx_.At(path),
                     fmt::format("{}: supervisor '{}' cannot be its own child", shown, child));
          continue;
        }
        if (!defs_.contains(child)) {
          ctx_.Error(ctx_.At(path),
                     fmt::format("{}: unknown child '{}'{}", shown, child,
                                 DidYouMean(child, NamesOfKinds({"supervisor", "component"}))));
          continue;
        }
        if (!ExpectKind(path, shown, child, {"supervisor", "component"}, "child")) continue;
        AddParent(child, s.name, path, shown);
      }
      if (!s.template_name.empty()) {
        std::string path = fmt::format("supervisor.{}.template", s.name);
        if (ExpectKind(path, path, s.template_name, {"component"}, "template")) {
          AddParent(s.template_name, s.name, path, path);
        }
      }
    }
  }

  void AddParent(const std::string& child, const std::string& parent, const std::string& path,
                 const std::string& shown) {
    auto [it, inserted] = parent_.emplace(child, parent);
    if (!inserted) {
      ctx_.Error(ctx_.At(path),
                 fmt::format("{}: '{}' is already a child of supervisor '{}' (line {}); a node "
                             "has exactly one supervisor",
                             shown, child, it->second, ctx_.At(parent_path_[child]).line));
      return;
    }
    parent_path_[child] = path;
  }

  void CheckCycles() {
    std::set<std::string> reported;
    for (const Supervisor& s : sys_.supervisors) {
      // Walk up the parents; with one parent each, a walk that meets its
      // start again is a cycle.
      std::vector<std::string> chain{s.name};
      std::string cur = s.name;
      for (std::size_t steps = 0; steps <= sys_.supervisors.size(); ++steps) {
        auto it = parent_.find(cur);
        if (it == parent_.end()) break;
        cur = it->second;
        chain.push_back(cur);
        if (cur == s.name) {
          if (reported.insert(*std::min_element(chain.begin(), chain.end())).second) {
            std::string text;
            for (auto r = chain.rbegin(); r != chain.rend(); ++r) {
              if (!text.empty()) text += " -> ";
              text += *r;
            }
            ctx_.Error(s.pos, fmt::format("supervision cycle: {}", text));
          }
          for (const auto& n : chain) in_cycle_.insert(n);
          break;
        }
      }
    }
    if (sys_.FindSupervisor(sys_.root) != nullptr && parent_.contains(sys_.root) &&
        !in_cycle_.contains(sys_.root)) {
      ctx_.Error(ctx_.At(parent_path_[sys_.root]),
                 fmt::format("the root supervisor '{}' cannot be a child of '{}'", sys_.root,
                             parent_[sys_.root]));
    }
  }

  void CheckReachable() {
    if (sys_.FindSupervisor(sys_.root) == nullptr) return;  // reported already
    std::set<std::string> reached{sys_.root};
    std::vector<std::string> todo{sys_.root};
    while (!todo.empty()) {
      const Supervisor* s = sys_.FindSupervisor(todo.back());
      todo.pop_back();
      if (s == nullptr) continue;
      std::vector<std::string> kids = s->children;
      if (!s->template_name.empty()) kids.push_back(s->template_name);
      for (const auto& k : kids) {
        if (reached.insert(k).second) todo.push_back(k);
      }
    }
    auto check = [&](const auto& items, std::string_view kind) {
      for (const auto& item : items) {
        if (reached.contains(item.name) || in_cycle_.contains(item.name)) continue;
        if (parent_.contains(item.name) && in_cycle_.contains(parent_[item.name])) continue;
        ctx_.Error(item.pos, fmt::format("{} '{}' is not reachable from the root supervisor '{}'; "
                                         "list it in a supervisor's children",
                                         kind, item.name, sys_.root));
      }
    };
    check(sys_.supervisors, "supervisor");
    check(sys_.components, "component");
  }

  const Supervisor* ParentOf(const std::string& name) const {
    auto it = parent_.find(name);
    return it == parent_.end() ? nullptr : sys_.FindSupervisor(it->second);
  }

  void CheckSignificant(const std::string& path, const std::string& name, bool significant,
                        RestartType restart) {
    if (!significant) return;
    SourcePos at = ctx_.At(path + ".significant");
    if (restart == RestartType::kPermanent) {
      ctx_.Error(at, fmt::format("{}: a permanent child cannot be significant (as in OTP); "
                                 "use restart = \"transient\" or \"temporary\"",
                                 path));
      return;
    }
    const Supervisor* p = ParentOf(name);
    if (p != nullptr && p->auto_shutdown == AutoShutdown::kNever) {
      ctx_.Warning(at, fmt::format("{}: significant has no effect because supervisor '{}' has "
                                   "auto_shutdown = \"never\"",
                                   path, p->name));
    }
  }

  void CheckSupervisors() {
    for (const Supervisor& s : sys_.supervisors) {
      std::string path = fmt::format("supervisor.{}", s.name);
      CheckSignificant(path, s.name, s.significant, s.restart);
      if (s.strategy == Strategy::kSimpleOneForOne) {
        if (s.template_name.empty()) {
          ctx_.Error(s.pos, fmt::format("{}: simple_one_for_one needs template = \"COMPONENT\" "
                                        "(and instances = N)",
                                        path));
        }
        if (!s.children.empty()) {
          ctx_.Error(ctx_.At(path + ".children"),
                     fmt::format("{}: simple_one_for_one takes template and instances, not "
                                 "children",
                                 path));
        }
        if (s.auto_shutdown != AutoShutdown::kNever) {
          ctx_.Error(ctx_.At(path + ".auto_shutdown"),
                     fmt::format("{}: auto_shutdown is not allowed with simple_one_for_one "
                                 "(as in OTP)",
                                 path));
        }
      } else {
        if (!s.template_name.empty()) {
          ctx_.Error(
              ctx_.At(path + ".template"),
              fmt::format("{}: template is only for strategy = \"simple_one_for_one\"", path));
        }
        if (ctx_.At(path + ".instances").line != 0) {
          ctx_.Error(
              ctx_.At(path + ".instances"),
              fmt::format("{}: instances is only for strategy = \"simple_one_for_one\"", path));
        }
      }
    }
  }

  bool IsTemplate(const std::string& component) const {
    const Supervisor* p = ParentOf(component);
    return p != nullptr && p->strategy == Strategy::kSimpleOneForOne &&
           p->template_name == component;
  }

  void CheckImage(const std::string& path, const std::vector<std::string>& cmd) {
    if (cmd.empty()) return;
    const std::string& image = cmd[0];
    std::error_code ec;
    SourcePos at = ctx_.At(path + ".0");
    if (!std::filesystem::exists(image, ec)) {
      ctx_.Warning(at, fmt::format("{}: program '{}' does not exist (yet)", path, image));
    } else if (std::filesystem::is_directory(image, ec) || ::access(image.c_str(), X_OK) != 0) {
      ctx_.Warning(at, fmt::format("{}: program '{}' is not an executable file", path, image));
    }
  }

  void CheckComponents() {
    for (const Component& c : sys_.components) {
      std::string path = fmt::format("component.{}", c.name);
      CheckSignificant(path, c.name, c.significant, c.restart);
      CheckImage(path + ".exec", c.exec);
      CheckImage(path + ".sanitize", c.sanitize);
      std::set<std::string> seen;
      for (std::size_t i = 0; i < c.devices.size(); ++i) {
        const std::string& d = c.devices[i];
        std::string dpath = fmt::format("{}.devices.{}", path, i);
        if (!seen.insert(d).second) {
          ctx_.Error(ctx_.At(dpath), fmt::format("{}.devices: '{}' is listed twice", path, d));
          continue;
        }
        if (!ExpectKind(dpath, path + ".devices", d, {"device"}, "device")) continue;
        auto [it, inserted] = device_owner_.emplace(d, c.name);
        if (!inserted) {
          ctx_.Error(ctx_.At(dpath), fmt::format("{}.devices: device '{}' is already owned by "
                                                 "component '{}'; a device has one owner",
                                                 path, d, it->second));
        }
      }
      if (!c.devices.empty() && IsTemplate(c.name) && ParentOf(c.name)->instances > 1) {
        ctx_.Error(ctx_.At(path + ".devices"),
                   fmt::format("{}.devices: '{}' is the template of simple_one_for_one supervisor "
                               "'{}' with {} instances, which would share the device",
                               path, c.name, ParentOf(c.name)->name, ParentOf(c.name)->instances));
      }
      if (c.on_persistent_failure) CheckLadder(c, path);
    }
  }

  void CheckLadder(const Component& c, const std::string& path) {
    std::string lpath = path + ".on_persistent_failure.steps";
    const auto& steps = c.on_persistent_failure->steps;
    for (std::size_t i = 0; i < steps.size(); ++i) {
      SourcePos at = ctx_.At(fmt::format("{}.{}", lpath, i));
      LadderStep s = steps[i];
      std::string_view name = ToString(s);
      if (s == LadderStep::kSanitizeState && c.sanitize.empty()) {
        ctx_.Error(at, fmt::format("{}: sanitize_state needs a sanitize command "
                                   "(sanitize = [\"bin/fsck\"]) in component '{}'",
                                   lpath, c.name));
      }
      bool needs_state = s == LadderStep::kRollbackState || s == LadderStep::kResetState ||
                         s == LadderStep::kSanitizeState;
      if (needs_state && !c.state) {
        ctx_.Error(at, fmt::format("{}: {} needs a state store (state = {{ size = ... }}) in "
                                   "component '{}'",
                                   lpath, name, c.name));
      }
      if (s == LadderStep::kResetDevice && c.devices.empty()) {
        ctx_.Error(at,
                   fmt::format("{}: reset_device needs devices in component '{}'", lpath, c.name));
      }
      if (s == LadderStep::kGiveUp && i + 1 < steps.size()) {
        ctx_.Warning(ctx_.At(fmt::format("{}.{}", lpath, i + 1)),
                     fmt::format("{}: steps after give_up are never reached", lpath));
      }
    }
  }

  void CheckChannels() {
    for (const Channel& ch : sys_.channels) {
      std::string path = fmt::format("channel.{}", ch.name);
      bool from_ok = !ch.from.empty() &&
                     ExpectKind(path + ".from", path + ".from", ch.from, {"component"}, "producer");
      bool to_ok = !ch.to.empty() &&
                   ExpectKind(path + ".to", path + ".to", ch.to, {"component"}, "consumer");
      if (from_ok && to_ok && ch.from == ch.to) {
        ctx_.Error(ctx_.At(path + ".to"),
                   fmt::format("{}: both ends are component '{}'; a channel joins two different "
                               "components",
                               path, ch.from));
      }
      for (const auto& [end, ok, key] :
           {std::tuple{ch.from, from_ok, ".from"}, std::tuple{ch.to, to_ok, ".to"}}) {
        if (ok && IsTemplate(end)) {
          ctx_.Error(ctx_.At(path + key),
                     fmt::format("{}: '{}' is the template of simple_one_for_one supervisor '{}', "
                                 "which runs many instances; a channel has one producer and one "
                                 "consumer",
                                 path, end, ParentOf(end)->name));
        }
      }
    }
  }

  void CheckDevices() {
    for (const Device& d : sys_.devices) {
      if (!device_owner_.contains(d.name)) {
        ctx_.Warning(d.pos, fmt::format("device '{}' is not used by any component", d.name));
      }
      CheckImage(fmt::format("device.{}.reset", d.name), d.reset);
    }
  }

  const System& sys_;
  Context& ctx_;
  std::map<std::string, Definition> defs_;
  std::map<std::string, std::string> parent_;       // node -> its supervisor
  std::map<std::string, std::string> parent_path_;  // node -> where it was listed
  std::map<std::string, std::string> device_owner_;
  std::set<std::string> in_cycle_;
};

}  // namespace

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '-'; });
}

void Validate(const System& sys, Context& ctx) {
  Validator(sys, ctx).Run();
}

}  // namespace slate::spec::internal
