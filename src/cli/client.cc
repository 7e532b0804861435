// The verbs that talk to a running system: through its control socket
// (status, start, stop, restart, kill, shutdown, dlq), or by reading the
// files it writes under state_dir (events, logs).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include <sys/inotify.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "base/result.h"
#include "cli/verbs.h"
#include "runtime/control.h"

namespace slate::cli {

namespace fs = std::filesystem;

std::string StateDir(const Options& o) {
  if (!o.state_dir.empty()) return o.state_dir;
  if (const char* env = std::getenv("SLATE_STATE_DIR"); env != nullptr && *env != '\0') return env;
  return ".slate";
}

std::string SocketPath(const Options& o) {
  return (fs::path(StateDir(o)) / "control.sock").string();
}

namespace {

constexpr int kRuntimeError = 1;

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
  std::string image = "-";
  if (n.contains("image") && n["image"].is_object()) {
    // "sha256-" and 12 hex digits, enough to tell versions apart; * in probation.
    image = n["image"].value("digest", "").substr(0, 19);
    if (n["image"].value("probation", false)) image += "*";
  }
  std::string next = n.contains("next_step") && n["next_step"].is_string()
                         ? n["next_step"].get<std::string>()
                         : "-";
  out += fmt::format("{}{}{:<11} {:>7} {:>8} {:>8} {:>6}  {:<15} {:<21}", label, pad,
                     n["state"].get<std::string>(), pid, Duration(n["uptime_ms"]),
                     n["restarts"].get<int>(), n["streak"].get<int>(), next, image);
  if (n.contains("status")) out += "  " + n["status"].get<std::string>();
  out += "\n";
  std::string child_prefix = top ? "" : prefix + (last ? "   " : "│  ");
  const auto& kids = n["children"];
  for (std::size_t i = 0; i < kids.size(); ++i) {
    DrawNode(by_name, kids[i].get<std::string>(), child_prefix, i + 1 == kids.size(), false, out);
  }
}

// Drops the spaces the column padding leaves at the end of each line.
std::string TrimLineEnds(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  std::size_t pending = 0;  // spaces seen, not yet written
  for (char c : text) {
    if (c == ' ') {
      ++pending;
      continue;
    }
    if (c != '\n') out.append(pending, ' ');
    pending = 0;
    out += c;
  }
  return out;
}

// The tree and channels as `slate status` prints them.
std::string RenderStatus(const nlohmann::json& s) {
  std::map<std::string, nlohmann::json> by_name;
  std::string root;
  for (const auto& n : s["nodes"]) {
    by_name[n["name"].get<std::string>()] = n;
    if (n["supervisor"].is_null()) root = n["name"].get<std::string>();
  }
  std::string out =
      fmt::format("system {}  pid {}  up {}  ({})\n", s["system"].get<std::string>(),
                  s["pid"].get<int>(), Duration(s["uptime_ms"]), s["state_dir"].get<std::string>());
  out += fmt::format("{:<32}{:<11} {:>7} {:>8} {:>8} {:>6}  {:<15} {:<21}\n", "NAME", "STATE",
                     "PID", "UPTIME", "RESTARTS", "STREAK", "NEXT STEP", "IMAGE (*probation)");
  DrawNode(by_name, root, "", true, true, out);
  if (s.contains("channels") && !s["channels"].empty()) {
    out += fmt::format("\n{:<24}{:<28} {:>8} {:>9} {:>6}\n", "CHANNEL", "FROM -> TO", "DEPTH",
                       "IN FLIGHT", "DEAD");
    for (const auto& c : s["channels"]) {
      std::string ends = fmt::format("{} -> {}", c.value("from", "?"), c.value("to", "?"));
      if (c.contains("error")) {
        out += fmt::format("{:<24}{:<28} {}\n", c.value("name", "?"), ends,
                           c["error"].get<std::string>());
        continue;
      }
      out += fmt::format("{:<24}{:<28} {:>8} {:>9} {:>6}\n", c.value("name", "?"), ends,
                         c.value("depth", 0), c.value("in_flight", 0), c.value("dead_letters", 0));
    }
  }
  return TrimLineEnds(out);
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
  fmt::print("{}", RenderStatus(s));
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
  for (const char* key : {"step", "channel", "msg_id", "deliveries", "checkpoint", "bytes",
                          "device", "ok", "image", "detail"}) {
    if (!j.contains(key)) continue;
    const nlohmann::json& v = j[key];
    out += fmt::format(" {} {}", key, v.is_string() ? v.get<std::string>() : v.dump());
  }
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
    alignas(inotify_event) char buf[4096];
    const ssize_t got = ::read(ino, buf, sizeof(buf));
    if (got <= 0) break;
    // Several events may come in one read (a flood merges into a modify, then
    // the move of a rotation): look at every one.
    bool moved = false;
    int wd = -1;
    for (ssize_t at = 0; at + static_cast<ssize_t>(sizeof(inotify_event)) <= got;) {
      inotify_event ev{};
      std::memcpy(&ev, buf + at, sizeof ev);
      if ((ev.mask & (IN_MOVE_SELF | IN_DELETE_SELF)) != 0) {
        moved = true;
        wd = ev.wd;
      }
      at += static_cast<ssize_t>(sizeof(inotify_event) + ev.len);
    }
    if (moved) {
      // Rotated: finish the old file, then read the new one from its start.
      in.clear();
      while (std::getline(in, line)) {
        fmt::print("{}\n", show(partial + line));
        partial.clear();
      }
      in.close();
      for (int i = 0; i < 100 && !fs::exists(path); ++i) ::usleep(10000);
      in.open(path);
      ::inotify_rm_watch(ino, wd);
      ::inotify_add_watch(ino, path.c_str(), IN_MODIFY | IN_MOVE_SELF | IN_DELETE_SELF);
    }
  }
  if (ino >= 0) ::close(ino);
  return 0;
}

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64 with padding, as the runtime's export writes payloads.
std::optional<std::string> DecodeBase64(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  while (pad < 2 && pad < in.size() && in[in.size() - 1 - pad] == '=') ++pad;
  in.remove_suffix(pad);
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = Base64Value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

// A payload on one short line of a terminal: printable ASCII as it is, the
// rest escaped C-style, cut with "..." past `width` characters.
std::string Preview(std::string_view payload, std::size_t width = 40) {
  std::string out;
  for (char ch : payload) {
    auto c = static_cast<unsigned char>(ch);
    std::string piece;
    switch (c) {
      case '\\': piece = "\\\\"; break;
      case '\n': piece = "\\n"; break;
      case '\r': piece = "\\r"; break;
      case '\t': piece = "\\t"; break;
      default: piece = c >= 0x20 && c < 0x7f ? std::string(1, ch) : fmt::format("\\x{:02x}", c);
    }
    if (out.size() + piece.size() > width) return out + "...";
    out += piece;
  }
  return out;
}

// The table of `slate dlq CHANNEL`, from the runtime's JSON lines; nullopt
// if a line is not what the runtime writes.
std::optional<std::string> DeadLetterTable(const std::string& channel, const std::string& lines) {
  std::string rows;
  std::size_t count = 0;
  std::istringstream in(lines);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j["id"].is_number_unsigned() ||
        !j["time"].is_string() || !j["deliveries"].is_number_unsigned() ||
        !j["length"].is_number_unsigned() || !j["payload_base64"].is_string()) {
      return std::nullopt;
    }
    auto payload = DecodeBase64(j["payload_base64"].get<std::string>());
    rows +=
        fmt::format("{:>8}  {:<27}  {:>10}  {:>8}  {}\n", j["id"].get<std::uint64_t>(),
                    j["time"].get<std::string>(), j["deliveries"].get<std::uint64_t>(),
                    j["length"].get<std::uint64_t>(), payload ? Preview(*payload) : "(not base64)");
    ++count;
  }
  if (count == 0) return fmt::format("no dead letters in {}\n", channel);
  return fmt::format("{:>8}  {:<27}  {:>10}  {:>8}  {}\n", "ID", "TIME", "DELIVERIES", "LENGTH",
                     "PAYLOAD") +
         rows + fmt::format("{} dead letter{} in {}\n", count, count == 1 ? "" : "s", channel);
}

// Checks what the command line asks of `slate dlq` before anything is sent:
// the request, or the reason it is bad usage.
Result<nlohmann::json> DlqRequest(const Options& o) {
  const std::string action = o.action.empty() ? "list" : o.action;
  nlohmann::json req{{"verb", "dlq"}, {"channel", o.channel}, {"action", action}};
  if (action == "list" || action == "export") {
    if (!o.id.empty() || o.all) return MakeError("ID and --all go with requeue and purge");
    if (!o.output.empty() && action != "export") return MakeError("--output goes with export");
    return req;
  }
  if (action != "requeue" && action != "purge") {
    return MakeError(fmt::format("unknown action '{}' (list, export, requeue, purge)", action));
  }
  if (o.json || !o.output.empty()) return MakeError("--json and --output go with list and export");
  if (o.all && !o.id.empty()) {
    return MakeError(fmt::format("{} takes an ID or --all, not both", action));
  }
  if (o.all) {
    req["all"] = true;
    return req;
  }
  if (o.id.empty()) {
    return MakeError(fmt::format("{} needs the ID of a dead letter, or --all", action));
  }
  std::uint64_t id = 0;
  auto [end, ec] = std::from_chars(o.id.data(), o.id.data() + o.id.size(), id);
  if (ec != std::errc() || end != o.id.data() + o.id.size()) {
    return MakeError(fmt::format("ID must be a dead letter's id, a number (got '{}')", o.id));
  }
  req["id"] = id;
  return req;
}

// Prints the JSON lines of an export, or writes them to o.output.
int ExportLines(const Options& o, const std::string& lines) {
  if (o.output.empty()) {
    fmt::print("{}", lines);
    return 0;
  }
  std::ofstream out(o.output, std::ios::binary | std::ios::trunc);
  out << lines;
  out.close();
  if (!out) {
    fmt::print(stderr, "slate dlq {}: cannot write {}: {}\n", o.channel, o.output,
               std::system_category().message(errno));
    return kRuntimeError;
  }
  auto count = static_cast<std::size_t>(std::count(lines.begin(), lines.end(), '\n'));
  fmt::print("exported {} dead letter{} of {} to {}\n", count, count == 1 ? "" : "s", o.channel,
             o.output);
  return 0;
}

int Dlq(const Options& o) {
  auto request = DlqRequest(o);
  if (!request) {
    fmt::print(stderr, "slate dlq: {}\nusage: see `slate help dlq`\n", request.error().message);
    return kUsageError;
  }
  const nlohmann::json& req = *request;
  auto fail = [&](const std::string& why) {
    fmt::print(stderr, "slate dlq {}: {}\n", o.channel, why);
    return kRuntimeError;
  };
  auto reply = runtime::Call(SocketPath(o), req);
  if (!reply) return fail(reply.error().message);
  if (!reply->value("ok", false)) return fail(reply->value("error", "failed"));
  const std::string action = req["action"].get<std::string>();
  if (action == "list" || action == "export") {
    const nlohmann::json& lines = (*reply)["lines"];
    if (!lines.is_string()) return fail("the runtime's reply has no dead-letter lines");
    if (action == "export" || o.json) return ExportLines(o, lines.get<std::string>());
    auto table = DeadLetterTable(o.channel, lines.get<std::string>());
    if (!table) return fail("malformed dead-letter line in the runtime's reply");
    fmt::print("{}", *table);
    return 0;
  }
  std::string message = reply->value("message", "done");
  if (action == "requeue" && reply->contains("ids") && !(*reply)["ids"].empty()) {
    std::string ids;
    for (const auto& id : (*reply)["ids"]) ids += (ids.empty() ? "" : ", ") + id.dump();
    message += fmt::format(" (new id{} {})", (*reply)["ids"].size() == 1 ? "" : "s", ids);
  }
  fmt::print("{}\n", message);
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
int RunDlq(const Options& o) {
  return Dlq(o);
}
int RunUpdate(const Options& o) {
  std::error_code ec;
  fs::path path = fs::absolute(o.path, ec);
  if (ec || !fs::is_regular_file(path, ec)) {
    fmt::print(stderr, "slate update {}: {} is not a file\n", o.name, o.path);
    return kRuntimeError;
  }
  return Simple(o, {{"verb", "update"}, {"name", o.name}, {"path", path.string()}});
}
int RunRevert(const Options& o) {
  return Simple(o, {{"verb", "revert"}, {"name", o.name}});
}
int RunKill(const Options& o) {
  return Simple(o, {{"verb", "kill"}, {"name", o.name}, {"signal", o.signal}});
}

std::string TopFrame(const nlohmann::json& status, const std::string& journal, int events) {
  std::string text = RenderStatus(status);
  // The latest events: what just happened to the tree.
  std::deque<std::string> last;
  std::ifstream in(journal);
  // Only its end: the journal of a long-running system is large.
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  constexpr std::streamoff kTail = std::streamoff{64} * 1024;
  in.seekg(size > kTail ? size - kTail : 0);
  if (size > kTail) in.ignore(kTail, '\n');  // a line cut in two
  for (std::string line; std::getline(in, line);) {
    last.push_back(EventLine(line, false));
    if (last.size() > static_cast<std::size_t>(events)) last.pop_front();
  }
  if (!last.empty()) {
    text += "\nlatest events\n";
    for (const std::string& e : last) text += e + "\n";
  }
  return text;
}

// `slate top`: the status, redrawn every interval, with the latest events
// under it. On a terminal the screen is redrawn in place; otherwise each
// frame is printed after the last, separated by a line.
int RunTop(const Options& o) {
  const bool terminal = ::isatty(STDOUT_FILENO) == 1;
  const std::string journal = (fs::path(StateDir(o)) / "events.jsonl").string();
  const auto interval = std::chrono::milliseconds(std::max(o.interval_ms, 50));
  for (int frame = 0; o.count <= 0 || frame < o.count; ++frame) {
    if (frame > 0) std::this_thread::sleep_for(interval);
    auto reply = runtime::Call(SocketPath(o), {{"verb", "status"}}, 2000);
    if (!reply) {
      if (frame == 0) {
        fmt::print(stderr, "slate top: {}\n", reply.error().message);
        return kRuntimeError;
      }
      fmt::print("{}slate top: the system is gone ({})\n", terminal ? "\n" : "",
                 reply.error().message);
      return 0;
    }
    std::string text = TopFrame((*reply)["status"], journal, o.events);
    if (terminal) {
      fmt::print("\x1b[H\x1b[2J{}", text);  // home, clear, draw
    } else {
      fmt::print("{}{}", frame > 0 ? "----\n" : "", text);
    }
    (void)std::fflush(stdout);
  }
  return 0;
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
