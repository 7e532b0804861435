#include "runtime/log_sink.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace slate::runtime {
namespace {

namespace fs = std::filesystem;

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class LogSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("slate-log-{}", ::getpid());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(LogSinkTest, JoinsPartialLinesAndFlushesTheRest) {
  fs::path p = dir_ / "a.log";
  {
    LogSink log("a", p.string(), false);
    log.Write("hel");
    log.Write("lo\nwor");
    log.Write("ld\nno newline");
  }
  EXPECT_EQ(Read(p), "hello\nworld\nno newline\n");
}

TEST_F(LogSinkTest, SplitsOverlongLines) {
  fs::path p = dir_ / "b.log";
  {
    LogSink log("b", p.string(), false);
    log.Write(std::string(LogSink::kMaxLine + 10, 'x'));
  }
  EXPECT_EQ(Read(p), std::string(LogSink::kMaxLine, 'x') + "\n" + std::string(10, 'x') + "\n");
}

TEST_F(LogSinkTest, RotatesPastTheLimit) {
  fs::path p = dir_ / "c.log";
  LogSink log("c", p.string(), false);
  std::string line(1000, 'y');
  line += '\n';
  for (std::uint64_t written = 0; written < LogSink::kRotateAt + 5000; written += line.size()) {
    log.Write(line);
  }
  EXPECT_TRUE(fs::exists(dir_ / "c.log.1"));
  EXPECT_FALSE(fs::exists(dir_ / "c.log.new"));
  EXPECT_LE(fs::file_size(p), LogSink::kRotateAt);
  EXPECT_GT(fs::file_size(dir_ / "c.log.1"), LogSink::kRotateAt - 2000);
}

TEST_F(LogSinkTest, ALogLeftHalfwayThroughARotationIsMovedOn) {
  fs::path p = dir_ / "e.log";
  {
    std::ofstream(dir_ / "e.log.new") << "old lines\n";
    std::ofstream(p) << "new lines\n";
  }
  LogSink log("e", p.string(), false);
  log.Write("more\n");
  EXPECT_FALSE(fs::exists(dir_ / "e.log.new"));
  EXPECT_EQ(Read(dir_ / "e.log.1"), "old lines\n");
  EXPECT_EQ(Read(p), "new lines\nmore\n");
}

TEST_F(LogSinkTest, TheLogFileExistsThroughoutRotation) {
  fs::path p = dir_ / "d.log";
  LogSink log("d", p.string(), false);
  std::atomic<bool> done{false};
  std::atomic<int> missing{0};
  std::atomic<long> looks{0};
  std::thread reader([&] {
    while (!done.load()) {
      struct stat st {};
      if (::stat(p.c_str(), &st) != 0) missing.fetch_add(1);
      looks.fetch_add(1);
    }
  });
  std::string line(1000, 'z');
  line += '\n';
  for (std::uint64_t written = 0; written < 4 * LogSink::kRotateAt; written += line.size()) {
    log.Write(line);
  }
  done.store(true);
  reader.join();
  EXPECT_GT(looks.load(), 0);
  EXPECT_EQ(missing.load(), 0) << "the log was missing " << missing.load() << " times";
}

}  // namespace
}  // namespace slate::runtime
