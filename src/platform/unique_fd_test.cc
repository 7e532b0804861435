#include "platform/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "platform/status.h"
#include "platform/test_support.h"

namespace slate::platform {
namespace {

class UniqueFdTest : public testing::PlatformTest {};

bool IsOpen(int fd) {
  return ::fcntl(fd, F_GETFD) >= 0;
}

TEST_F(UniqueFdTest, ClosesOnDestructionAndMoves) {
  int raw = -1;
  {
    UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    raw = fd.get();
    UniqueFd moved(std::move(fd));
    EXPECT_FALSE(fd.valid());  // NOLINT(bugprone-use-after-move): the contract
    EXPECT_EQ(moved.get(), raw);
    UniqueFd assigned;
    assigned = std::move(moved);
    EXPECT_EQ(assigned.get(), raw);
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST_F(UniqueFdTest, ReleaseGivesUpOwnership) {
  UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const int raw = fd.Release();
  EXPECT_FALSE(fd.valid());
  EXPECT_TRUE(IsOpen(raw));
  ::close(raw);
}

TEST_F(UniqueFdTest, ResetToTheSameNumberKeepsItOpen) {
  UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const int raw = fd.get();
  fd.Reset(raw);
  EXPECT_TRUE(IsOpen(raw));
}

TEST(ErrnoError, NamesWhatAndWhy) {
  EXPECT_EQ(ErrnoError("open /x", ENOENT).message, "open /x: No such file or directory");
}

}  // namespace
}  // namespace slate::platform
