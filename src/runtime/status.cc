// The control socket's verbs (docs/control-protocol.md) and `status`.
#include <csignal>
#include <cstring>
#include <memory>
#include <random>

#include <unistd.h>

#include <fmt/format.h>

#include "platform/signal_process.h"
#include "runtime/daemon.h"
#include "runtime/say.h"

namespace slate::runtime {
namespace {

// "KILL", "SIGKILL", "kill" or "9".
std::optional<int> ParseSignal(const nlohmann::json& j) {
  if (j.is_number_integer()) {
    int n = j.get<int>();
    if (n > 0 && n < NSIG) return n;
    return std::nullopt;
  }
  if (!j.is_string()) return std::nullopt;
  std::string s = j.get<std::string>();
  for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (s.starts_with("SIG")) s.erase(0, 3);
  if (!s.empty() && std::all_of(s.begin(), s.end(), ::isdigit)) {
    int n = std::atoi(s.c_str());
    if (n > 0 && n < NSIG) return n;
    return std::nullopt;
  }
  for (int n = 1; n < NSIG; ++n) {
    const char* abbrev = ::sigabbrev_np(n);
    if (abbrev != nullptr && s == abbrev) return n;
  }
  return std::nullopt;
}

nlohmann::json Error(std::string message) {
  return {{"ok", false}, {"error", std::move(message)}};
}

}  // namespace

nlohmann::json Daemon::StatusJson() {
  Time now = Now();
  auto ms = [](Time t) { return std::chrono::duration_cast<std::chrono::milliseconds>(t).count(); };
  nlohmann::json nodes = nlohmann::json::array();
  for (const core::NodeStatus& n : sup_.Status()) {
    nlohmann::json j;
    j["name"] = n.name;
    j["kind"] = n.is_supervisor ? "supervisor" : "component";
    j["supervisor"] = n.supervisor.empty() ? nlohmann::json(nullptr) : nlohmann::json(n.supervisor);
    j["state"] = n.state;
    j["pid"] = n.pid == 0 ? nlohmann::json(nullptr) : nlohmann::json(n.pid);
    j["uptime_ms"] = n.since ? nlohmann::json(ms(now - *n.since)) : nlohmann::json(nullptr);
    j["restarts"] = n.restarts;
    j["streak"] = n.streak;
    j["next_step"] = n.next_step ? nlohmann::json(*n.next_step) : nlohmann::json(nullptr);
    if (!n.is_supervisor) {
      const spec::Component* c = system_->FindComponent(n.name);
      // Instances of a template share its image.
      std::string owner = c != nullptr ? n.name : n.name.substr(0, n.name.find('@'));
      if (nlohmann::json im = ImageJson(owner); !im.is_null()) j["image"] = std::move(im);
    }
    if (!n.is_supervisor) {
      if (nlohmann::json st = StateJson(n.name); !st.is_null()) j["state_store"] = std::move(st);
      if (auto sp = spares_.find(n.name); sp != spares_.end() && !sp->second.empty()) {
        nlohmann::json spares = nlohmann::json::array();
        for (const auto& spare : sp->second) {
          spares.push_back({{"pid", spare->process->pid()}, {"parked", spare->parked}});
        }
        j["standby"] = std::move(spares);
      }
    }
    j["children"] = n.children;
    if (auto it = status_text_.find(n.name); it != status_text_.end()) j["status"] = it->second;
    nodes.push_back(std::move(j));
  }
  nlohmann::json s;
  s["system"] = system_->name;
  s["file"] = system_->file;
  s["state_dir"] = system_->state_dir;
  s["pid"] = ::getpid();
  s["uptime_ms"] = ms(now - started_);
  s["journal_seq"] = journal_->last_seq();
  s["nodes"] = std::move(nodes);
  s["channels"] = ChannelsJson();
  return s;
}

nlohmann::json Daemon::Handle(const nlohmann::json& request) {
  std::string verb = request["verb"].get<std::string>();
  std::string name = request.value("name", "");
  Time now = Now();
  if (verb == "status") return {{"ok", true}, {"status", StatusJson()}};
  if (verb == "shutdown") {
    NotifyParent("STOPPING=1");
    core::CommandResult r = sup_.Shutdown(now);
    Feed(std::move(r.actions));
    return {{"ok", true}, {"message", r.message}};
  }
  if (verb == "dlq") return HandleDlq(request);
  if (verb == "inject") return HandleInject(request);
  if (verb == "update" || verb == "revert") return HandleUpdate(request);
  if (verb == "start" || verb == "stop" || verb == "restart") {
    if (name.empty()) return Error(fmt::format("{} needs a \"name\"", verb));
    core::CommandResult r = verb == "start"  ? sup_.StartChild(name, now)
                            : verb == "stop" ? sup_.StopChild(name, now)
                                             : sup_.RestartChild(name, now);
    Feed(std::move(r.actions));
    if (!r.ok) return Error(r.message);
    // Held down by the operator: a peer waiting on it hears so
    // (SLATE_EPEERDOWN) once its process has ended, or at once if it has
    // none. Its next start clears the mark.
    if (verb == "stop") {
      core::Incarnation inc = sup_.IncarnationOf(name);
      if (inc != 0 && children_.contains(inc)) {
        down_when_ended_.insert(name);
      } else {
        SetComponentDown(name, true);
      }
      RetireSparesUnder(name);
    } else if (verb == "start") {
      down_when_ended_.erase(name);
    }
    return {{"ok", true}, {"message", r.message}};
  }
  if (verb == "kill") {
    if (name.empty()) return Error("kill needs a \"name\"");
    std::optional<int> sig = ParseSignal(request.value("signal", nlohmann::json("KILL")));
    if (!sig) return Error("unknown signal (use a name like KILL or SEGV, or a number)");
    core::Incarnation inc = sup_.IncarnationOf(name);
    auto it = children_.find(inc);
    if (inc == 0 || it == children_.end()) {
      return Error(fmt::format("'{}' has no running process", name));
    }
    // A fault, not a stop: only the component's main process is signalled,
    // and the end that follows is a failure like any crash.
    if (auto r = platform::SignalProcess(it->second.process, *sig); !r) {
      return Error(r.error().message);
    }
    return {{"ok", true},
            {"message", fmt::format("sent SIG{} to {} (pid {})", ::sigabbrev_np(*sig), name,
                                    it->second.process.pid())}};
  }
  return Error(fmt::format("unknown verb '{}'", verb));
}

nlohmann::json Daemon::HandleInject(const nlohmann::json& request) {
  auto error = [](std::string message) {
    return nlohmann::json{{"ok", false}, {"error", std::move(message)}};
  };
  const std::string name = request.value("name", "");
  const std::string fault = request.contains("fault") && request["fault"].is_string()
                                ? request["fault"].get<std::string>()
                                : "";
  static const std::map<std::string, int> kSignals = {
      {"kill", SIGKILL}, {"segv", SIGSEGV}, {"abort", SIGABRT}, {"hang", SIGSTOP}};
  const bool signal_fault = kSignals.contains(fault);
  if (!signal_fault && fault != "bad_image" && fault != "poison" && fault != "corrupt_state" &&
      fault != "wedge_device" && fault != "stall") {
    return error(
        fmt::format("unknown fault '{}' (kill, segv, abort, hang, stall, bad_image, poison, "
                    "corrupt_state, wedge_device)",
                    fault));
  }
  // What the system file says first: the same answer whatever the moment.
  const spec::Component* c = system_->FindComponent(name);
  if (c == nullptr) c = system_->FindComponent(name.substr(0, name.find('@')));
  if (c == nullptr) return error(fmt::format("no component named '{}'", name));
  if ((fault == "hang" || fault == "stall") && !c->heartbeat) {
    return error(fmt::format("{} has no heartbeat: a hang would never be detected", name));
  }
  if (fault == "bad_image") {
    if (!images_ || c->name != name) return error(fmt::format("{} has no image of its own", name));
    if (probation_.contains(name)) return error(fmt::format("{} is in probation already", name));
  }
  // poison: a channel it consumes: the one asked for, else one drawn from
  // the seed (the first by name without one).
  ChannelState* poisoned = nullptr;
  if (fault == "poison") {
    const std::string wanted = request.value("channel", "");
    std::vector<ChannelState*> inputs;
    for (auto& [channel_name, ch] : channels_) {
      if (ch.spec->to != name || !ch.files) continue;
      if (!wanted.empty() && channel_name != wanted) continue;
      inputs.push_back(&ch);
    }
    if (!inputs.empty()) {
      const std::uint64_t draw = request.contains("seed") && request["seed"].is_number_unsigned()
                                     ? request["seed"].get<std::uint64_t>()
                                     : 0;
      poisoned = inputs[draw % inputs.size()];
    }
    if (poisoned == nullptr) {
      return error(wanted.empty()
                       ? fmt::format("{} consumes no channel", name)
                       : fmt::format("{} does not consume a channel '{}'", name, wanted));
    }
  }
  if (fault == "corrupt_state" && !stores_.contains(name)) {
    return error(fmt::format("{} has no state store", name));
  }
  // wedge_device: its first device that says how to wedge it.
  const spec::Device* wedged = nullptr;
  if (fault == "wedge_device") {
    for (const std::string& dn : c->devices) {
      const spec::Device* d = system_->FindDevice(dn);
      if (d != nullptr && !d->wedge.empty()) {
        wedged = d;
        break;
      }
    }
    if (wedged == nullptr) {
      return error(
          fmt::format("{} owns no device with a wedge command ([device.X] wedge = [...])", name));
    }
  }
  // Then the moment: only a running process (a hang while it starts or
  // stops would be caught late or never), and not one already hung.
  std::string state;
  for (const core::NodeStatus& n : sup_.Status()) {
    if (n.name == name) state = n.state;
  }
  core::Incarnation inc = sup_.IncarnationOf(name);
  auto it = children_.find(inc);
  if (state != "running" || inc == 0 || it == children_.end()) {
    return error(fmt::format("{} is not running ({})", name, state.empty() ? "?" : state));
  }
  const pid_t pid = it->second.process.pid();
  if (hung_.contains(pid) || stalled_.contains(pid)) {
    return error(
        fmt::format("{} (pid {}) is hung already, until its heartbeat is overdue", name, pid));
  }
  // The mark first (it is on a message still to come), so that a failure
  // to place it leaves no fault_injected line behind.
  std::uint64_t poisoned_id = 0;
  if (poisoned != nullptr) {  // fault == "poison"
    auto id = poisoned->files->Poison();
    if (!id) {
      return error(fmt::format("poison {}: {}", poisoned->spec->name, id.error().Describe()));
    }
    poisoned_id = *id;
  }
  core::Event e;
  e.event = "fault_injected";
  e.node = name;
  e.pid = pid;
  e.detail = fault;
  if (poisoned != nullptr) e.channel = poisoned->spec->name;
  if (wedged != nullptr) e.device = wedged->name;
  DoEmit(e);
  if (poisoned != nullptr) {
    return {{"ok", true},
            {"message", fmt::format("poisoned message {} of {} for {} (pid {})", poisoned_id,
                                    poisoned->spec->name, name, pid)}};
  }
  if (fault == "corrupt_state") {
    StoreState& st = stores_.at(name);
    auto what = std::make_shared<std::string>();
    std::uint64_t seed = request.contains("seed") && request["seed"].is_number_unsigned()
                             ? request["seed"].get<std::uint64_t>()
                             : std::random_device{}();
    std::uint64_t id =
        st.worker->Submit(store::CorruptJob(st.component->state->size, st.set, seed, what));
    st.jobs[id] = [name, what](const store::JobOutcome& outcome) {
      if (!outcome) {
        Say("{}: corrupt_state: {}", name, outcome.error().ToError().message);
      } else {
        Say("{}: corrupt_state: flipped bits in {}", name, *what);
      }
    };
    return {{"ok", true},
            {"message",
             fmt::format("corrupt_state into {} (pid {}): one value of its store", name, pid)}};
  }
  if (fault == "stall") {
    stalled_.insert(pid);
    return {
        {"ok", true},
        {"message", fmt::format("stall into {} (pid {}): its heartbeats go unheard", name, pid)}};
  }
  if (wedged != nullptr) {  // fault == "wedge_device"
    RunHook(name, *c, fmt::format("wedge of device {}", wedged->name), wedged->wedge,
            wedged->reset_timeout, false, [name](const HookEnd& end) {
              if (!end.ok) Say("{}: wedge_device: {}", name, end.detail);
            });
    return {{"ok", true},
            {"message", fmt::format("wedged device {} of {} (pid {})", wedged->name, name, pid)}};
  }
  if (signal_fault) {
    // As `slate kill`: only the main process; the end that follows is a
    // failure like any crash (a stopped process is a hang once its
    // heartbeat is overdue).
    if (auto r = platform::SignalProcess(it->second.process, kSignals.at(fault)); !r) {
      return error(r.error().message);
    }
    if (fault == "hang") hung_.insert(pid);
    return {{"ok", true}, {"message", fmt::format("{} into {} (pid {})", fault, name, pid)}};
  }
  // An update to a program that fails at once: probation reverts it.
  nlohmann::json reply = HandleUpdate({{"verb", "update"}, {"name", name}, {"path", "/bin/false"}});
  if (reply.value("ok", false)) {
    reply["message"] = fmt::format("bad_image into {}: {}", name, reply.value("message", ""));
  }
  return reply;
}

}  // namespace slate::runtime
