#include "platform/file_io.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "platform/test_support.h"

namespace slate::platform {
namespace {

class FileIoTest : public testing::PlatformTest {};

TEST_F(FileIoTest, ReadsProcFilesToTheEnd) {
  auto text = ReadFile("/proc/self/status");
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_EQ(text->rfind("Name:", 0), 0u);
  EXPECT_NE(text->find("SigBlk:"), std::string::npos);
}

TEST_F(FileIoTest, WritesAndReadsRelativeToADirectory) {
  char dir[] = "/tmp/slate-file-io-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const int dir_fd = ::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dir_fd, 0);
  const int file = ::openat(dir_fd, "f", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(file, 0);
  ::close(file);
  ASSERT_TRUE(WriteFileAt(dir_fd, "f", "hello").ok());
  EXPECT_EQ(ReadFileAt(dir_fd, "f").value(), "hello");
  ::unlinkat(dir_fd, "f", 0);
  ::close(dir_fd);
  ::rmdir(dir);
}

TEST_F(FileIoTest, ErrorsNameThePath) {
  EXPECT_EQ(ReadFile("/nonexistent/f").error().message,
            "open /nonexistent/f: No such file or directory");
  EXPECT_EQ(WriteFileAt(AT_FDCWD, "/nonexistent/f", "x").error().message,
            "open /nonexistent/f: No such file or directory");
}

}  // namespace
}  // namespace slate::platform
