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

  // Whether `name` has a [KIND.name] entry that is not a table.
  bool BadlyDefined(const std::string& name) const {
    for (std::string_view kind : {"supervisor", "component", "channel", "device"}) {
      if (ctx_.IsBad(fmt::format("{}.{}", kind, name))) return true;
    }
    return false;
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
    if (name.empty()) {
      ctx_.Error(at, fmt::format("{}: the {} name is empty", path, role));
      return false;
    }
    if (it == defs_.end()) {
      if (BadlyDefined(name)) return false;  // its definition was reported
      std::string meant = ClosestMatch(name, NamesOfKinds(kinds));
      ctx_.Error(at, fmt::format("{}: unknown {} '{}'{}", path, role, name,
                                 meant.empty() ? "" : fmt::format(" (did you mean '{}'?)", meant)));
      // Most likely a typo for `meant`: that `meant` then has no parent or
      // no owner is no news. (A channel end names no parent or owner.)
      if (!meant.empty() && (role == "child" || role == "template" || role == "device")) {
        suggested_.insert(meant);
      }
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
    if (!ctx_.Given("system.root")) {
      if (ctx_.Given("system")) {
        ctx_.Error(ctx_.At("system"), "system: missing required key 'root' (the top supervisor)");
      }
      return;
    }
    if (ctx_.IsBad("system.root")) return;
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
        if (!ExpectKind(path, shown, child, {"supervisor", "component"}, "child")) continue;
        AddParent(child, s.name, path, shown);
      }
      std::string tpath = fmt::format("supervisor.{}.template", s.name);
      if (ctx_.Given(tpath) && !ctx_.IsBad(tpath) &&
          ExpectKind(tpath, tpath, s.template_name, {"component"}, "template")) {
        AddParent(s.template_name, s.name, tpath, tpath);
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
    // A children list or template that could not be read may have named
    // any node, so no node can be said to be unreachable.
    for (const Supervisor& s : sys_.supervisors) {
      std::string path = fmt::format("supervisor.{}", s.name);
      if (ctx_.IsBad(path + ".children") || ctx_.IsBad(path + ".template")) return;
    }
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
        if (suggested_.contains(item.name)) continue;
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
    if (!significant || ctx_.IsBad(path + ".restart")) return;
    SourcePos at = ctx_.At(path + ".significant");
    if (restart == RestartType::kPermanent) {
      ctx_.Error(at, fmt::format("{}: a permanent child cannot be significant (as in OTP); "
                                 "use restart = \"transient\" or \"temporary\"",
                                 path));
      return;
    }
    const Supervisor* p = ParentOf(name);
    if (p != nullptr && p->auto_shutdown == AutoShutdown::kNever &&
        !ctx_.IsBad(fmt::format("supervisor.{}.auto_shutdown", p->name))) {
      ctx_.Warning(at, fmt::format("{}: significant has no effect because supervisor '{}' has "
                                   "auto_shutdown = \"never\"",
                                   path, p->name));
    }
  }

  // The root has no parent, so what a child has for its parent means nothing.
  void CheckRootOnlyKeys(const std::string& path) {
    for (std::string_view key : {"restart", "significant"}) {
      std::string kpath = fmt::format("{}.{}", path, key);
      if (!ctx_.Given(kpath) || ctx_.IsBad(kpath)) continue;
      ctx_.Warning(ctx_.At(kpath),
                   fmt::format("{}: {} has no effect on the root supervisor, which has no parent",
                               path, key));
    }
  }

  void CheckSupervisors() {
    for (const Supervisor& s : sys_.supervisors) {
      std::string path = fmt::format("supervisor.{}", s.name);
      if (s.name == sys_.root) {
        CheckRootOnlyKeys(path);
      } else {
        CheckSignificant(path, s.name, s.significant, s.restart);
      }
      // With a strategy that could not be read, these would check the
      // default instead of what the user meant.
      if (ctx_.IsBad(path + ".strategy")) continue;
      if (s.strategy == Strategy::kSimpleOneForOne) {
        if (!ctx_.Given(path + ".template")) {
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
        if (ctx_.Given(path + ".template")) {
          ctx_.Error(
              ctx_.At(path + ".template"),
              fmt::format("{}: template is only for strategy = \"simple_one_for_one\"", path));
        }
        if (ctx_.Given(path + ".instances")) {
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

  // Why a template cannot hold what only one process may hold: whatever
  // `instances` says now, more can be added while the system runs.
  std::string TemplateOf(const std::string& component) const {
    return fmt::format(
        "'{}' is the template of simple_one_for_one supervisor '{}', which can "
        "run many instances",
        component, ParentOf(component)->name);
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
      if (!c.devices.empty() && IsTemplate(c.name)) {
        ctx_.Error(ctx_.At(path + ".devices"),
                   fmt::format("{}.devices: {}; a device has one owner", path, TemplateOf(c.name)));
      }
      if (c.state && IsTemplate(c.name)) {
        ctx_.Error(ctx_.At(path + ".state"),
                   fmt::format("{}.state: {}; a store has one owner", path, TemplateOf(c.name)));
      }
      if (c.on_persistent_failure) CheckLadder(c, path);
      if (c.seccomp.profile != SeccompProfile::kNone && !c.no_new_privs) {
        ctx_.Error(ctx_.At(path + ".no_new_privs"),
                   fmt::format("{}: a seccomp filter needs no_new_privs (the kernel loads one "
                               "without it only for a process with CAP_SYS_ADMIN); remove "
                               "no_new_privs = false or set seccomp = \"none\"",
                               path));
      }
      CheckWritable(c, path);
    }
  }

  // Each writable path is kept as the host has it in the component's view,
  // which hides state_dir: a path in there cannot be one (a folder above it
  // can: state_dir stays hidden inside it).
  void CheckWritable(const Component& c, const std::string& path) {
    const std::string& dir = sys_.state_dir;
    for (std::size_t i = 0; i < c.read_only_root.writable.size(); ++i) {
      const std::string& w = c.read_only_root.writable[i];
      auto within = [](const std::string& inner, const std::string& outer) {
        return inner == outer ||
               (inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
                inner[outer.size()] == '/');
      };
      if (dir.empty()) continue;
      if (within(w, dir)) {
        ctx_.Error(ctx_.At(fmt::format("{}.writable.{}", path, i)),
                   fmt::format("{}.writable: '{}' is in state_dir ({}), which components do not "
                               "see; the runtime gives a component its own store",
                               path, w, dir));
      }
    }
  }

  void CheckLadder(const Component& c, const std::string& path) {
    std::string lpath = path + ".on_persistent_failure.steps";
    const auto& steps = c.on_persistent_failure->steps;
    for (std::size_t i = 0; i < steps.size(); ++i) {
      SourcePos at = ctx_.At(fmt::format("{}.{}", lpath, i));
      LadderStep s = steps[i];
      std::string_view name = ToString(s);
      // A state, sanitize or devices key that could not be read has been
      // reported; the step needs it but is not wrong.
      if (s == LadderStep::kSanitizeState && c.sanitize.empty() &&
          !ctx_.IsBad(path + ".sanitize")) {
        ctx_.Error(at, fmt::format("{}: sanitize_state needs a sanitize command "
                                   "(sanitize = [\"bin/fsck\"]) in component '{}'",
                                   lpath, c.name));
      }
      bool needs_state = s == LadderStep::kRollbackState || s == LadderStep::kResetState ||
                         s == LadderStep::kSanitizeState;
      if (needs_state && !c.state && !ctx_.IsBad(path + ".state")) {
        ctx_.Error(at, fmt::format("{}: {} needs a state store (state = {{ size = ... }}) in "
                                   "component '{}'",
                                   lpath, name, c.name));
      }
      if (s == LadderStep::kRollbackState && c.state && !c.state->checkpoint_every &&
          !ctx_.IsBad(path + ".state.checkpoint_every")) {
        ctx_.Warning(at, fmt::format("{}: rollback_state falls back to reset_state: component "
                                     "'{}' has no state.checkpoint_every, so there is no periodic "
                                     "checkpoint to roll back to",
                                     lpath, c.name));
      }
      if (s == LadderStep::kResetDevice && c.devices.empty() && !ctx_.IsBad(path + ".devices")) {
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
      // A missing or bad end has been reported while reading.
      auto end_ok = [&](const std::string& key, const std::string& name, std::string_view role) {
        std::string kpath = path + key;
        return ctx_.Given(kpath) && !ctx_.IsBad(kpath) &&
               ExpectKind(kpath, kpath, name, {"component"}, role);
      };
      bool from_ok = end_ok(".from", ch.from, "producer");
      bool to_ok = end_ok(".to", ch.to, "consumer");
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
                     fmt::format("{}: {}; a channel has one producer and one consumer", path,
                                 TemplateOf(end)));
        }
      }
    }
  }

  void CheckDevices() {
    // A devices list that could not be read may have named any device.
    bool owners_known =
        std::none_of(sys_.components.begin(), sys_.components.end(), [&](const Component& c) {
          return ctx_.IsBad(fmt::format("component.{}.devices", c.name));
        });
    for (const Device& d : sys_.devices) {
      if (owners_known && !device_owner_.contains(d.name) && !suggested_.contains(d.name)) {
        ctx_.Warning(d.pos, fmt::format("device '{}' is not used by any component", d.name));
      }
      CheckImage(fmt::format("device.{}.reset", d.name), d.reset);
      CheckImage(fmt::format("device.{}.wedge", d.name), d.wedge);
    }
  }

  const System& sys_;
  Context& ctx_;
  std::map<std::string, Definition> defs_;
  std::map<std::string, std::string> parent_;       // node -> its supervisor
  std::map<std::string, std::string> parent_path_;  // node -> where it was listed
  std::map<std::string, std::string> device_owner_;
  std::set<std::string> in_cycle_;
  std::set<std::string> suggested_;  // offered by "did you mean" for a child, template or device
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
