// The verbs that talk to a running system: through its control socket
// (status, start, stop, restart, kill, shutdown), or by reading the files it
// writes under state_dir (events, logs).
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <sys/inotify.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/verbs.h"
#include "runtime/control.h"

namespace slate::cli {
namespace {

namespace fs = std::filesystem;

constexpr int kRuntimeError = 1;
constexpr int kUsageError = 2;

std::string StateDir(const Options& o) {
  if (!o.state_dir.empty()) return o.state_dir;
  if (const char* env = std::getenv("SLATE_STATE_DIR"); env != nullptr && *env != '\0') return env;
  return ".slate";
}

std::string SocketPath(const Options& o) {
  return (fs::path(StateDir(o)) / "control.sock").string();
}

// Sends a request; prints the error or the message. Returns the exit code.
int Simple(const Options& o, const nlohmann::json& request) {
  auto reply = runtime::Call(SocketPath(o), request);
  if (!reply) {
    fmt::print(stderr, "slate {}: {}\n", request["verb"].get<std::string>(), reply.error().message);
    return kRuntimeError;
  }
  if (!reply->value("ok", false)) {
    fmt::print(stderr, "slate {}: {}\n", request["verb"].get<std::string>(),
               reply->value("error", "failed"));
    return kRuntimeError;
  }
  if (reply->contains("message")) fmt::print("{}\n", (*reply)["message"].get<std::string>());
  return 0;
}

std::string Duration(const nlohmann::json& ms) {
  if (!ms.is_number()) return "-";
  auto t = ms.get<long long>();
  if (t < 1000) return fmt::format("{}ms", t);
  long long s = t / 1000;
  if (s < 60) return fmt::format("{}.{}s", s, (t % 1000) / 100);
  if (s < 3600) return fmt::format("{}m{}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{}h", s / 86400, (s % 86400) / 3600);
}

// Visits the tree depth first from `name`, drawing branch prefixes.
void DrawNode(const std::map<std::string, nlohmann::json>& by_name, const std::string& name,
              const std::string& prefix, bool last, bool top, std::string& out) {
  auto it = by_name.find(name);
  if (it == by_name.end()) return;
  const nlohmann::json& n = it->second;
  std::string label = top ? name : prefix + (last ? "└─ " : "├─ ") + name;
  std::string pid = n["pid"].is_number() ? std::to_string(n["pid"].get<int>()) : "-";
  // Pad by code points, not bytes: the branch glyphs are 3 bytes each.
  std::size_t width = 0;
  for (char ch : label) width += (static_cast<unsigned char>(ch) & 0xC0) != 0x80 ? 1 : 0;
  std::string pad(width < 32 ? 32 - width : 1, ' ');
  out +=
      fmt::format("{}{}{:<11} {:>7} {:>8} {:>8} {:>6}", label, pad, n["state"].get<std::string>(),
                  pid, Duration(n["uptime_ms"]), n["restarts"].get<int>(), n["streak"].get<int>());
  if (n.contains("status")) out += "  " + n["status"].get<std::string>();
  out += "\n";
  std::string child_prefix = top ? "" : prefix + (last ? "   " : "│  ");
  const auto& kids = n["children"];
  for (std::size_t i = 0; i < kids.size(); ++i) {
    DrawNode(by_name, kids[i].get<std::string>(), child_prefix, i + 1 == kids.size(), false, out);
  }
}

int Status(const Options& o) {
  auto reply = runtime::Call(SocketPath(o), {{"verb", "status"}});
  if (!reply) {
    fmt::print(stderr, "slate status: {}\n", reply.error().message);
    return kRuntimeError;
  }
  const nlohmann::json& s = (*reply)["status"];
  if (o.json) {
    fmt::print("{}\n", s.dump(2));
    return 0;
  }
  std::map<std::string, nlohmann::json> by_name;
  std::string root;
  for (const auto& n : s["nodes"]) {
    by_name[n["name"].get<std::string>()] = n;
    if (n["supervisor"].is_null()) root = n["name"].get<std::string>();
  }
  std::string out =
      fmt::format("system {}  pid {}  up {}  ({})\n", s["system"].get<std::string>(),
                  s["pid"].get<int>(), Duration(s["uptime_ms"]), s["state_dir"].get<std::string>());
  out += fmt::format("{:<32}{:<11} {:>7} {:>8} {:>8} {:>6}\n", "NAME", "STATE", "PID", "UPTIME",
                     "RESTARTS", "STREAK");
  DrawNode(by_name, root, "", true, true, out);
  fmt::print("{}", out);
  return 0;
}

std::string EventLine(const std::string& raw, bool json) {
  if (json) return raw;
  auto j = nlohmann::json::parse(raw, nullptr, false);
  if (j.is_discarded()) return raw;
  std::string out =
      fmt::format("{:>6}  {}  {}", j.value("seq", 0), j.value("ts", ""), j.value("event", ""));
  if (j.contains("node")) out += " " + j["node"].get<std::string>();
  if (j.contains("supervisor"))
    out += fmt::format(" (under {})", j["supervisor"].get<std::string>());
  if (j.contains("pid")) out += fmt::format(" pid {}", j["pid"].get<int>());
  if (j.contains("reason")) out += " " + j["reason"].dump();
  if (j.contains("restarts")) out += fmt::format(" restarts {}", j["restarts"].get<int>());
  if (j.contains("streak")) out += fmt::format(" streak {}", j["streak"].get<int>());
  if (j.contains("delay_ms")) out += fmt::format(" delay {}ms", j["delay_ms"].get<long long>());
  return out;
}

// Prints `path` from `offset`, line by line, through `show`; with `follow`,
// keeps waiting (inotify) for more until interrupted.
int Tail(const std::string& path, bool follow,
         const std::function<std::string(const std::string&)>& show) {
  std::ifstream in(path);
  if (!in) {
    fmt::print(stderr, "slate: cannot read {}: {}\n", path, std::system_category().message(errno));
    return kRuntimeError;
  }
  int ino = -1;
  if (follow) {
    ino = ::inotify_init1(IN_CLOEXEC);
    ::inotify_add_watch(ino, path.c_str(), IN_MODIFY | IN_MOVE_SELF | IN_DELETE_SELF);
  }
  std::string line;
  std::string partial;
  for (;;) {
    while (std::getline(in, line)) {
      if (in.eof()) {  // no newline yet: the writer is mid-line
        partial += line;
        break;
      }
      fmt::print("{}\n", show(partial + line));
      partial.clear();
    }
    (void)std::fflush(stdout);
    if (!follow) break;
    in.clear();
    char buf[4096];
    if (::read(ino, buf, sizeof(buf)) <= 0) break;
    const auto* ev = reinterpret_cast<const inotify_event*>(buf);
    if ((ev->mask & (IN_MOVE_SELF | IN_DELETE_SELF)) != 0) {
      // Rotated: read the new file from its start.
      in.close();
      for (int i = 0; i < 100 && !fs::exists(path); ++i) ::usleep(10000);
      in.open(path);
      ::inotify_rm_watch(ino, ev->wd);
      ::inotify_add_watch(ino, path.c_str(), IN_MODIFY | IN_MOVE_SELF | IN_DELETE_SELF);
    }
  }
  if (ino >= 0) ::close(ino);
  return 0;
}

}  // namespace

int RunStatus(const Options& o) {
  return Status(o);
}
int RunShutdown(const Options& o) {
  return Simple(o, {{"verb", "shutdown"}});
}
int RunStart(const Options& o) {
  return Simple(o, {{"verb", "start"}, {"name", o.name}});
}
int RunStop(const Options& o) {
  return Simple(o, {{"verb", "stop"}, {"name", o.name}});
}
int RunRestart(const Options& o) {
  return Simple(o, {{"verb", "restart"}, {"name", o.name}});
}
int RunKill(const Options& o) {
  return Simple(o, {{"verb", "kill"}, {"name", o.name}, {"signal", o.signal}});
}

int RunEvents(const Options& o) {
  std::string path = (fs::path(StateDir(o)) / "events.jsonl").string();
  return Tail(path, o.follow, [&](const std::string& l) { return EventLine(l, o.json); });
}

int RunLogs(const Options& o) {
  fs::path logs = fs::path(StateDir(o)) / "logs";
  std::string path = (logs / (o.name + ".log")).string();
  if (!fs::exists(path)) {
    fmt::print(stderr, "slate logs: no log for '{}' in {}\n", o.name, logs.string());
    return kUsageError;
  }
  std::string rotated = path + ".1";
  if (fs::exists(rotated)) {
    Tail(rotated, false, [](const std::string& l) { return l; });
  }
  return Tail(path, o.follow, [](const std::string& l) { return l; });
}

}  // namespace slate::cli
