#include "spec/parser.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "spec/tree.h"

namespace slate::spec {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = SLATE_SPEC_FIXTURES;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Diagnostics as "LINE:COL: message", with the fixture folder shown as ${DIR}.
std::string Render(const ParseResult& r, const fs::path& dir) {
  std::string out;
  for (const auto& d : r.diagnostics) {
    std::string line = FormatDiagnostic(d, "");
    line.erase(0, 1);  // the ':' after the empty file name
    std::string::size_type at;
    while ((at = line.find(dir.string())) != std::string::npos) {
      line.replace(at, dir.string().size(), "${DIR}");
    }
    out += line + "\n";
  }
  return out;
}

std::vector<fs::path> FixturesIn(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".toml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Each tests/spec/bad/X.toml comes with X.expected: exactly the diagnostics
// it must produce. A fixture whose expected lines are all warnings must
// still be accepted.
TEST(Fixtures, BadFilesGiveExactlyTheExpectedMessages) {
  auto files = FixturesIn(kFixtures / "bad");
  ASSERT_GE(files.size(), 30u);
  for (const auto& f : files) {
    SCOPED_TRACE(f.filename().string());
    fs::path expected_file = fs::path(f).replace_extension(".expected");
    ASSERT_TRUE(fs::exists(expected_file)) << "missing " << expected_file;
    std::string expected = ReadAll(expected_file);
    ParseResult r = ParseFile(f.string());
    EXPECT_EQ(Render(r, f.parent_path()), expected);
    bool only_warnings =
        expected.find(": warning: ") != std::string::npos && HasErrors(r.diagnostics) == false;
    EXPECT_EQ(r.ok(), only_warnings);
  }
}

TEST(Fixtures, GoodFilesAreAcceptedWithoutWarnings) {
  auto files = FixturesIn(kFixtures / "good");
  ASSERT_GE(files.size(), 3u);
  for (const auto& f : files) {
    SCOPED_TRACE(f.filename().string());
    ParseResult r = ParseFile(f.string());
    EXPECT_TRUE(r.ok()) << r.Report();
    EXPECT_EQ(r.diagnostics.size(), 0u) << r.Report();
  }
}

ParseResult Parse(std::string_view text) {
  return ParseText(text, "/tmp/t/system.toml");
}

constexpr std::string_view kMinimal = R"(
[system]
root = "main"
[supervisor.main]
children = ["a"]
[component.a]
exec = ["/bin/true"]
)";

TEST(Defaults, FollowOtp) {
  ParseResult r = Parse(kMinimal);
  ASSERT_TRUE(r.ok()) << r.Report();
  const System& s = *r.system;
  EXPECT_EQ(s.name, "system");
  EXPECT_EQ(s.state_dir, "/tmp/t/.slate");
  const Supervisor& main = *s.FindSupervisor("main");
  EXPECT_EQ(main.strategy, Strategy::kOneForOne);
  EXPECT_EQ(main.intensity, 1);
  EXPECT_EQ(main.period, std::chrono::seconds(5));
  EXPECT_EQ(main.restart, RestartType::kPermanent);
  EXPECT_EQ(main.shutdown.kind, Shutdown::Kind::kInfinity);
  EXPECT_EQ(main.auto_shutdown, AutoShutdown::kNever);
  const Component& a = *s.FindComponent("a");
  EXPECT_EQ(a.restart, RestartType::kPermanent);
  EXPECT_EQ(a.shutdown, (Shutdown{Shutdown::Kind::kTimeout, std::chrono::seconds(5)}));
  EXPECT_EQ(a.ready.kind, Readiness::Kind::kSpawn);
  EXPECT_EQ(a.ready_timeout, std::chrono::seconds(90));
  EXPECT_FALSE(a.heartbeat);
  EXPECT_FALSE(a.backoff);
  EXPECT_FALSE(a.state);
  EXPECT_FALSE(a.on_persistent_failure);
  EXPECT_FALSE(a.sanitize_timeout);  // the runtime's 60 s
  EXPECT_EQ(a.standby, 0);
  EXPECT_FALSE(a.significant);
  EXPECT_FALSE(a.critical);
}

TEST(Model, ReadsTheSpecExample) {
  ParseResult r = ParseFile((kFixtures / "good" / "spec_example.toml").string());
  ASSERT_TRUE(r.ok()) << r.Report();
  const System& s = *r.system;
  const fs::path dir = kFixtures / "good";
  EXPECT_EQ(s.name, "telemetry");
  EXPECT_EQ(s.state_dir, (dir / "var").string());
  const Component& sensor = *s.FindComponent("sensor");
  EXPECT_EQ(sensor.exec, (std::vector<std::string>{(dir / "bin/sensor").string(), "--hz", "100"}));
  EXPECT_EQ(sensor.ready.kind, Readiness::Kind::kNotify);
  EXPECT_EQ(sensor.shutdown, (Shutdown{Shutdown::Kind::kTimeout, std::chrono::seconds(2)}));
  EXPECT_EQ(sensor.heartbeat, std::chrono::milliseconds(500));
  EXPECT_EQ(sensor.env.at("RUST_LOG"), "info");
  EXPECT_EQ(sensor.devices, std::vector<std::string>{"imu"});
  const Component& agg = *s.FindComponent("aggregator");
  ASSERT_TRUE(agg.state);
  EXPECT_EQ(agg.state->size, 64u << 20);
  EXPECT_EQ(agg.state->checkpoint_every, std::chrono::seconds(10));
  EXPECT_EQ(agg.state->keep, 5);
  ASSERT_TRUE(agg.backoff);
  EXPECT_EQ(agg.backoff->initial, std::chrono::milliseconds(10));
  EXPECT_EQ(agg.backoff->max, std::chrono::seconds(5));
  EXPECT_DOUBLE_EQ(agg.backoff->factor, 2.0);
  EXPECT_EQ(agg.healthy_after, std::chrono::seconds(30));
  ASSERT_TRUE(agg.on_persistent_failure);
  EXPECT_EQ(agg.on_persistent_failure->after, 3);
  EXPECT_EQ(agg.on_persistent_failure->steps,
            (std::vector<LadderStep>{LadderStep::kRollbackState, LadderStep::kRevertImage,
                                     LadderStep::kGiveUp}));
  EXPECT_EQ(agg.standby, 1);
  const Supervisor& pipeline = *s.FindSupervisor("pipeline");
  EXPECT_EQ(pipeline.strategy, Strategy::kRestForOne);
  EXPECT_EQ(pipeline.children, (std::vector<std::string>{"filter", "aggregator"}));
  const Channel& ch = *s.FindChannel("samples");
  EXPECT_EQ(ch.capacity, 1024u);
  EXPECT_EQ(ch.max_message, 4096u);
  EXPECT_EQ(ch.max_deliveries, 3);
  const Device& imu = *s.FindDevice("imu");
  EXPECT_EQ(imu.reset_timeout, std::chrono::seconds(1));
}

TEST(Tree, DrawsTheSupervisionTree) {
  ParseResult r = ParseFile((kFixtures / "good" / "spec_example.toml").string());
  ASSERT_TRUE(r.ok()) << r.Report();
  std::string tree = RenderTree(*r.system);
  EXPECT_NE(tree.find("main: supervisor one_for_one, intensity 5 per 10s\n"), std::string::npos)
      << tree;
  EXPECT_NE(tree.find("├─ pipeline: supervisor rest_for_one, intensity 3 per 5s, permanent\n"),
            std::string::npos)
      << tree;
  EXPECT_NE(tree.find("│  └─ aggregator: component permanent"), std::string::npos) << tree;
  EXPECT_NE(tree.find("└─ api: component permanent"), std::string::npos) << tree;
  EXPECT_NE(tree.find("  samples: sensor -> filter, capacity 1024, max_message 4KiB"),
            std::string::npos)
      << tree;
}

TEST(Parse, ReportsEveryErrorNotJustTheFirst) {
  ParseResult r = Parse(R"(
[system]
root = "main"
[supervisor.main]
strategy = "one_for_none"
intensity = -1
children = ["a"]
[component.a]
exec = []
restart = "sometimes"
)");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.diagnostics.size(), 4u) << r.Report();
}

// SPEC section 6 applies "the next unused step": a step listed twice is
// applied twice, so it is kept, in order, and not reported.
TEST(Ladder, ReadsTheSanitizeTimeout) {
  ParseResult r = ParseFile((kFixtures / "good" / "every_feature.toml").string());
  ASSERT_TRUE(r.ok()) << r.Report();
  EXPECT_EQ(r.system->FindComponent("db")->sanitize_timeout, std::chrono::seconds(90));
}

TEST(Ladder, KeepsARepeatedStep) {
  ParseResult r = Parse(R"(
[system]
root = "main"
[supervisor.main]
children = ["a"]
[component.a]
exec = ["/bin/true"]
state = { size = "1MiB", checkpoint_every = "10s" }
on_persistent_failure = { steps = ["rollback_state", "rollback_state", "reset_state"] }
)");
  ASSERT_TRUE(r.ok()) << r.Report();
  EXPECT_EQ(r.diagnostics.size(), 0u) << r.Report();
  EXPECT_EQ(r.system->FindComponent("a")->on_persistent_failure->steps,
            (std::vector<LadderStep>{LadderStep::kRollbackState, LadderStep::kRollbackState,
                                     LadderStep::kResetState}));
}

// Without the keys a component shares the host's network, IPC and PIDs and
// runs unfiltered; each key takes a string or a table that marks it optional.
TEST(Isolation, IsOffByDefaultAndReadInBothSpellings) {
  ParseResult plain = Parse(kMinimal);
  ASSERT_TRUE(plain.ok()) << plain.Report();
  const Component& a = *plain.system->FindComponent("a");
  EXPECT_EQ(a.seccomp.profile, SeccompProfile::kNone);
  EXPECT_EQ(a.network.mode, NetworkMode::kHost);
  EXPECT_EQ(a.ipc.mode, IpcMode::kHost);
  EXPECT_EQ(a.pid.mode, PidMode::kHost);
  // ptrace: its own tree's only by default, where the host can give that.
  EXPECT_EQ(a.ptrace.mode, PtraceMode::kOwn);
  EXPECT_FALSE(a.ptrace.given);
  EXPECT_EQ(a.block_devices.mode, BlockDevicesMode::kNone);
  EXPECT_FALSE(a.block_devices.given);

  ParseResult r = Parse(R"(
[system]
root = "main"
[supervisor.main]
children = ["a", "b"]
[component.a]
exec = ["/bin/true"]
seccomp = "default"
network = "loopback"
ipc = "private"
pid = "private"
ptrace = "host"
block_devices = "host"
[component.b]
exec = ["/bin/true"]
seccomp = { allow = ["ptrace", "mount"], action = "errno", optional = true }
network = { mode = "none", optional = true }
ipc = { mode = "private", optional = true }
pid = { mode = "private", optional = true }
ptrace = { mode = "own", optional = true }
block_devices = { mode = "none", optional = true }
)");
  ASSERT_TRUE(r.ok()) << r.Report();
  const Component& x = *r.system->FindComponent("a");
  EXPECT_EQ(x.seccomp.profile, SeccompProfile::kDefault);
  EXPECT_TRUE(x.seccomp.allow.empty());
  EXPECT_EQ(x.seccomp.action, SeccompAction::kKill);
  EXPECT_FALSE(x.seccomp.optional);
  EXPECT_EQ(x.network.mode, NetworkMode::kLoopback);
  EXPECT_FALSE(x.network.optional);
  EXPECT_EQ(x.ipc.mode, IpcMode::kPrivate);
  EXPECT_EQ(x.pid.mode, PidMode::kPrivate);
  EXPECT_FALSE(x.pid.optional);
  EXPECT_EQ(x.ptrace.mode, PtraceMode::kHost);
  EXPECT_TRUE(x.ptrace.given);
  EXPECT_EQ(x.block_devices.mode, BlockDevicesMode::kHost);
  const Component& y = *r.system->FindComponent("b");
  EXPECT_EQ(y.seccomp.profile, SeccompProfile::kDefault);  // a table's default profile
  EXPECT_EQ(y.seccomp.allow, (std::vector<std::string>{"ptrace", "mount"}));
  EXPECT_EQ(y.seccomp.action, SeccompAction::kErrno);
  EXPECT_TRUE(y.seccomp.optional);
  EXPECT_EQ(y.network.mode, NetworkMode::kNone);
  EXPECT_TRUE(y.network.optional);
  EXPECT_TRUE(y.ipc.optional);
  EXPECT_EQ(y.pid.mode, PidMode::kPrivate);
  EXPECT_TRUE(y.pid.optional);
  EXPECT_EQ(y.ptrace.mode, PtraceMode::kOwn);
  EXPECT_TRUE(y.ptrace.given);
  EXPECT_TRUE(y.ptrace.optional);
  EXPECT_EQ(y.block_devices.mode, BlockDevicesMode::kNone);
  EXPECT_TRUE(y.block_devices.optional);
  const std::string tree = RenderTree(*r.system);
  EXPECT_NE(tree.find("a: component permanent, shutdown 5s, seccomp default, network loopback, "
                      "ipc private, pid private, ptrace host, block devices host\n"),
            std::string::npos)
      << tree;
  EXPECT_NE(tree.find("b: component permanent, shutdown 5s, seccomp default +ptrace +mount "
                      "(errno, optional), network none (optional), ipc private (optional), pid "
                      "private (optional), ptrace own (optional), block devices none (optional)\n"),
            std::string::npos)
      << tree;
}

// read_only_root takes a bool or a table that marks it optional; writable
// paths are resolved against the file's folder.
TEST(Isolation, ReadOnlyRootIsReadInBothSpellings) {
  ParseResult plain = Parse(kMinimal);
  ASSERT_TRUE(plain.ok()) << plain.Report();
  EXPECT_FALSE(plain.system->FindComponent("a")->read_only_root.enabled);

  ParseResult r = Parse(R"(
[system]
root = "main"
[supervisor.main]
children = ["a", "b"]
[component.a]
exec = ["/bin/true"]
read_only_root = true
writable = ["/srv/out", "data/../cache"]
[component.b]
exec = ["/bin/true"]
read_only_root = { enabled = true, optional = true }
)");
  ASSERT_TRUE(r.ok()) << r.Report();
  const ReadOnlyRootSpec& a = r.system->FindComponent("a")->read_only_root;
  EXPECT_TRUE(a.enabled);
  EXPECT_FALSE(a.optional);
  ASSERT_EQ(a.writable.size(), 2U);
  EXPECT_EQ(a.writable[0], "/srv/out");
  EXPECT_TRUE(a.writable[1].starts_with("/") && a.writable[1].ends_with("/cache") &&
              a.writable[1].find("..") == std::string::npos)
      << a.writable[1];
  const ReadOnlyRootSpec& b = r.system->FindComponent("b")->read_only_root;
  EXPECT_TRUE(b.enabled);
  EXPECT_TRUE(b.optional);
  const std::string tree = RenderTree(*r.system);
  EXPECT_NE(tree.find("a: component permanent, shutdown 5s, read-only root +/srv/out +"),
            std::string::npos)
      << tree;
  EXPECT_NE(tree.find("b: component permanent, shutdown 5s, read-only root (optional)\n"),
            std::string::npos)
      << tree;
}

TEST(Parse, MissingFileIsAClearError) {
  ParseResult r = ParseFile("/nonexistent/system.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.Report(), "/nonexistent/system.toml: cannot read: No such file or directory\n");
}

}  // namespace
}  // namespace slate::spec
