#include "platform/cgroup.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "platform/device_filter.h"
#include "platform/file_io.h"
#include "platform/pipe.h"
#include "platform/spawn.h"
#include "platform/spawn_child.h"
#include "platform/test_support.h"

namespace slate::platform {
namespace {

using internal::SpawnMethod;
using testing::ProcessState;
using testing::ReadLine;
using testing::ShellRequest;
using testing::WaitForExit;
using testing::WaitUntil;

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Each test makes its own tree, named after the test process, and skips
// (with the reason) where cgroup v2 is not delegated to us.
class CgroupTest : public testing::PlatformTest, public ::testing::WithParamInterface<SpawnMethod> {
 protected:
  void SetUp() override {
    PlatformTest::SetUp();
    internal::SetSpawnMethodForTesting(GetParam());
    auto tree = CgroupTree::Create("slate-test-" + std::to_string(::getpid()));
    if (!tree) {
      GTEST_SKIP() << "cgroups unavailable: " << tree.error().message;
    }
    tree_.emplace(std::move(tree).value());
    tree_path_ = tree_->handle().path();
  }
  void TearDown() override {
    internal::SetSpawnMethodForTesting(SpawnMethod::kAuto);
    if (tree_) {
      tree_.reset();
      EXPECT_FALSE(Exists(tree_path_)) << "cgroup left behind: " << tree_path_;
    }
    PlatformTest::TearDown();
  }

  std::optional<CgroupTree> tree_;
  std::string tree_path_;
};

TEST(CgroupLocation, DescribesThisMachine) {
  auto location = LocateCgroup2();
  if (!location) {
    GTEST_SKIP() << location.error().message;
  }
  std::printf("cgroup2 mount %s, own cgroup %s, directory %s\n", location->mount.c_str(),
              location->own.c_str(), location->own_dir.c_str());
  EXPECT_TRUE(Exists(location->own_dir + "/cgroup.procs"));
}

TEST_P(CgroupTest, TreeDescribesWhatWasDetected) {
  const std::string text = tree_->Describe();
  std::printf("%s\n", text.c_str());
  EXPECT_NE(text.find(tree_->location().mount), std::string::npos);
  EXPECT_FALSE(tree_->CreateChild("a/b").ok());
  EXPECT_FALSE(tree_->CreateChild("..").ok());
}

TEST_P(CgroupTest, ChildStartsInsideItsCgroupAndIsKilledWithIt) {
  auto cgroup = tree_->CreateChild("component");
  ASSERT_TRUE(cgroup.ok()) << cgroup.error().message;
  const CgroupHandle& handle = cgroup->handle();
  EXPECT_FALSE(handle.IsPopulated().value());

  SpawnRequest request;
  request.argv = {"/bin/sleep", "100"};
  request.cgroup = &handle;
  auto process = Spawn(request);
  ASSERT_TRUE(process.ok()) << process.error().message;
  EXPECT_TRUE(handle.Contains(process->pid()).value());
  EXPECT_FALSE(handle.Contains(::getpid()).value());
  EXPECT_TRUE(tree_->handle().Contains(process->pid()).value()) << "descendants count";
  EXPECT_TRUE(handle.IsPopulated().value());
  ASSERT_NE(process->cgroup(), nullptr);
  EXPECT_EQ(process->cgroup()->name(), handle.name());

  ASSERT_TRUE(KillTree(*process, SIGKILL).ok());
  EXPECT_EQ(WaitForExit(process.value()), ExitStatus::Killed(SIGKILL, false));
  EXPECT_TRUE(WaitUntil([&] { return !handle.IsPopulated().value(); }));
  EXPECT_TRUE(cgroup.value().Remove().ok());
  EXPECT_FALSE(Exists(handle.path()));
}

// A block device that we (root) can open to read: "" if none.
std::string SomeBlockDevice() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/dev", ec)) {
    struct stat st {};
    if (::stat(e.path().c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) continue;
    const int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) continue;
    ::close(fd);
    return e.path().string();
  }
  return "";
}

// What a shell in `cgroup` gets opening each of `paths` to read, a line
// each: "ok" or the error ("Operation not permitted"); then `more`.
std::string OpenIn(const CgroupHandle& cgroup, const std::vector<std::string>& paths,
                   const std::string& more) {
  auto out = MakeOutputPipe();
  EXPECT_TRUE(out.ok());
  if (!out.ok()) return "";
  std::string script;
  for (const std::string& p : paths) {
    script += "{ (exec 3<" + p + ") 2>&1 && echo ok; } | sed 's/.*: //'; ";
  }
  SpawnRequest request = ShellRequest(script + more + "; true", {{out->write.get(), 1}});
  request.cgroup = &cgroup;
  auto process = Spawn(request);
  EXPECT_TRUE(process.ok()) << process.error().message;
  if (!process.ok()) return "";
  out->write.Reset();
  std::string text = testing::ReadAll(out->read.get());
  EXPECT_EQ(WaitForExit(*process), ExitStatus::Exited(0));
  return text;
}

TEST_P(CgroupTest, TheBlockDeviceFilterRefusesDisksAndOnlyThem) {
  const std::string device = SomeBlockDevice();
  if (device.empty()) GTEST_SKIP() << "no block device here that we can open";
  auto filter = BlockDeviceFilter::Load();
  if (!filter) {
    ASSERT_EQ(std::getenv("SLATE_REQUIRE_DEVICE_FILTER"), nullptr) << filter.error().message;
    GTEST_SKIP() << filter.error().message;
  }
  // A SCSI generic node (character, major 21): it reads disks too. No sg
  // driver need be loaded: the filter looks only at the number.
  char dir[] = "/tmp/slate-devices-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string sg = std::string(dir) + "/sg";
  ASSERT_EQ(::mknod(sg.c_str(), S_IFCHR | 0600, makedev(21, 0)), 0) << std::strerror(errno);
  auto plain = tree_->CreateChild("plain");
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  auto filtered = tree_->CreateChild("filtered");
  ASSERT_TRUE(filtered.ok()) << filtered.error().message;
  ASSERT_TRUE(filter->AttachTo(filtered->handle()).ok());
  const std::string block = std::string(dir) + "/block";
  const std::string make_block =
      "mknod " + block + " b 7 0 2>&1 | sed 's/.*: //'; test -b " + block + " && echo made";
  // Root, with every capability, and still refused: the disk, the sg node
  // and making a block node. /dev/zero opens.
  EXPECT_EQ(OpenIn(filtered->handle(), {device, sg, "/dev/zero"}, make_block),
            "Operation not permitted\nOperation not permitted\nok\nOperation not permitted\n")
      << device;
  // Without: the disk opens, the sg node has no driver behind it (or is a
  // real one: then it opens), /dev/zero opens, the block node is made.
  std::filesystem::remove(block);
  const std::string open = OpenIn(plain->handle(), {device, sg, "/dev/zero"}, make_block);
  EXPECT_TRUE(open.starts_with("ok\n")) << open;
  EXPECT_EQ(open.find("Operation not permitted"), std::string::npos) << open;
  EXPECT_TRUE(open.ends_with("ok\nmade\n")) << open;
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(filtered->Remove().ok());
  EXPECT_TRUE(plain->Remove().ok());
}

// The escapee leaves the process group and the session; only the cgroup
// still knows it belongs to the component.
TEST_P(CgroupTest, SetsidEscapeeIsStillKilled) {
  ASSERT_TRUE(SetChildSubreaper().ok());
  auto cgroup = tree_->CreateChild("escaper");
  ASSERT_TRUE(cgroup.ok()) << cgroup.error().message;
  auto out = MakeOutputPipe();
  ASSERT_TRUE(out.ok());
  auto request = ShellRequest(
      "/usr/bin/setsid /bin/sh -c 'trap \"\" TERM; echo $$; exec /bin/sleep 100' & "
      "exec /bin/sleep 100",
      {{out->write.get(), 1}});
  request.cgroup = &cgroup->handle();
  auto process = Spawn(request);
  ASSERT_TRUE(process.ok()) << process.error().message;
  out.value().write.Reset();
  const pid_t escapee = static_cast<pid_t>(std::stol(ReadLine(out->read.get())));
  ASSERT_TRUE(WaitUntil([&] {
    auto group = ProcessGroupOf(escapee);
    return group.ok() && *group == escapee;
  }));
  EXPECT_NE(ProcessGroupOf(escapee).value(), process->pid());
  EXPECT_TRUE(cgroup->handle().Contains(escapee).value());

  // SIGTERM reaches it through the cgroup (it ignores it, though).
  ASSERT_TRUE(KillTree(*process, SIGTERM).ok());
  EXPECT_EQ(WaitForExit(process.value()), ExitStatus::Killed(SIGTERM, false));
  EXPECT_NE(ProcessState(escapee), 'Z');
  ASSERT_TRUE(KillTree(*process, SIGKILL).ok());
  ASSERT_TRUE(WaitUntil([&] { return !cgroup->handle().IsPopulated().value(); }));
  ASSERT_TRUE(WaitUntil([&] { return ProcessState(escapee) == 'Z'; }));
  auto reaped = ReapOrphans([](pid_t) { return false; });
  ASSERT_TRUE(reaped.ok());
  ASSERT_EQ(reaped->size(), 1u);
  EXPECT_EQ((*reaped)[0].pid, escapee);
  EXPECT_EQ((*reaped)[0].status, ExitStatus::Killed(SIGKILL, false));
}

TEST_P(CgroupTest, AKillFileOpenedAheadKillsTheTree) {
  ASSERT_TRUE(SetChildSubreaper().ok());
  auto cgroup = tree_->CreateChild("ahead");
  ASSERT_TRUE(cgroup.ok()) << cgroup.error().message;
  auto out = MakeOutputPipe();
  ASSERT_TRUE(out.ok());
  auto request = ShellRequest("/usr/bin/setsid /bin/sleep 100 & echo $!; exec /bin/sleep 100",
                              {{out->write.get(), 1}});
  request.cgroup = &cgroup->handle();
  auto process = Spawn(request);
  ASSERT_TRUE(process.ok()) << process.error().message;
  process->PrepareTreeKill();
  out.value().write.Reset();
  const pid_t escapee = static_cast<pid_t>(std::stol(ReadLine(out->read.get())));
  ASSERT_TRUE(KillTree(*process, SIGKILL).ok());
  EXPECT_EQ(WaitForExit(process.value()), ExitStatus::Killed(SIGKILL, false));
  ASSERT_TRUE(WaitUntil([&] { return !cgroup->handle().IsPopulated().value(); }));
  ASSERT_TRUE(WaitUntil([&] { return ProcessState(escapee) == 'Z'; }));
  auto reaped = ReapOrphans([](pid_t) { return false; });
  ASSERT_TRUE(reaped.ok());
  ASSERT_EQ(reaped->size(), 1u);
  EXPECT_EQ((*reaped)[0].status, ExitStatus::Killed(SIGKILL, false));
  EXPECT_TRUE(cgroup->Remove().ok());
}

TEST_P(CgroupTest, SignalReachesEveryMember) {
  auto cgroup = tree_->CreateChild("members");
  ASSERT_TRUE(cgroup.ok()) << cgroup.error().message;
  SpawnRequest request;
  request.argv = {"/bin/sleep", "100"};
  request.cgroup = &cgroup->handle();
  auto first = Spawn(request);
  auto second = Spawn(request);
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(cgroup->handle().Signal(SIGUSR1).ok());
  EXPECT_EQ(WaitForExit(first.value()), ExitStatus::Killed(SIGUSR1, false));
  EXPECT_EQ(WaitForExit(second.value()), ExitStatus::Killed(SIGUSR1, false));
}

TEST_P(CgroupTest, AdoptsAnExistingDirectory) {
  auto first = tree_->CreateChild("again");
  ASSERT_TRUE(first.ok());
  auto second = tree_->CreateChild("again");
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(first->handle().path(), second->handle().path());
}

INSTANTIATE_TEST_SUITE_P(Launchers, CgroupTest,
                         ::testing::Values(SpawnMethod::kClone3, SpawnMethod::kClone),
                         testing::LauncherName);

}  // namespace
}  // namespace slate::platform
