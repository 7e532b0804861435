#include "runtime/journal.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace slate::runtime {
namespace {

namespace fs = std::filesystem;

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("slate-journal-{}", ::getpid());
    fs::create_directories(dir_);
    path_ = (dir_ / "events.jsonl").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<nlohmann::json> Lines() {
    std::ifstream in(path_);
    std::vector<nlohmann::json> out;
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(JournalTest, WritesEveryFieldOfSection8) {
  auto j = Journal::Open(path_);
  ASSERT_TRUE(j.ok()) << j.error().message;
  core::Event e;
  e.event = "child_exited";
  e.node = "sensor";
  e.supervisor = "main";
  e.pid = 42;
  e.reason = core::ExitReason{core::ExitReason::Kind::kSignal, 0, 9, true, ""};
  e.restarts = 2;
  e.streak = 1;
  ASSERT_TRUE(j->Append(e, std::chrono::nanoseconds(123)).ok());
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  const auto& l = lines[0];
  EXPECT_EQ(l["seq"], 1);
  EXPECT_EQ(l["mono_ns"], 123);
  EXPECT_EQ(l["event"], "child_exited");
  EXPECT_EQ(l["node"], "sensor");
  EXPECT_EQ(l["supervisor"], "main");
  EXPECT_EQ(l["pid"], 42);
  EXPECT_EQ(l["reason"]["kind"], "signal");
  EXPECT_EQ(l["reason"]["signal"], 9);
  EXPECT_EQ(l["reason"]["core_dumped"], true);
  EXPECT_EQ(l["restarts"], 2);
  // RFC 3339 with microseconds, UTC.
  std::string ts = l["ts"];
  ASSERT_EQ(ts.size(), 27u) << ts;
  EXPECT_EQ(ts[10], 'T');
  EXPECT_EQ(ts[19], '.');
  EXPECT_EQ(ts.back(), 'Z');
}

TEST_F(JournalTest, SeqContinuesAcrossRunsWithoutGaps) {
  core::Event e;
  e.event = "system_started";
  {
    auto j = Journal::Open(path_);
    ASSERT_TRUE(j.ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(j->Append(e, {}).ok());
  }
  auto j = Journal::Open(path_);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->last_seq(), 3u);
  ASSERT_TRUE(j->Append(e, {}).ok());
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 4u);
  for (std::size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(lines[i]["seq"], i + 1);
}

TEST_F(JournalTest, ATornLastLineIsClosedAndSkipped) {
  {
    std::ofstream out(path_);
    out << R"({"seq":1,"event":"system_started"})"
        << "\n"
        << R"({"seq":2,"ev)";
  }
  auto j = Journal::Open(path_);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->last_seq(), 1u);
  core::Event e;
  e.event = "system_started";
  ASSERT_TRUE(j->Append(e, {}).ok());
  std::ifstream in(path_);
  std::string l1, l2, l3;
  std::getline(in, l1);
  std::getline(in, l2);
  std::getline(in, l3);
  EXPECT_EQ(l2, R"({"seq":2,"ev)");
  EXPECT_EQ(nlohmann::json::parse(l3)["seq"], 2);
}

}  // namespace
}  // namespace slate::runtime
