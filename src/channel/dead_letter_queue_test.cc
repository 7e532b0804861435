#include "channel/dead_letter_queue.h"

#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "channel/test_util.h"

namespace slate::channel {
namespace {

using testing::AsBytes;
using testing::AsString;
using testing::TempDir;

constexpr std::uint64_t kNonce = 0x1234;
constexpr std::uint64_t kMaxMessage = 64;

class DeadLetterQueueTest : public ::testing::Test {
 protected:
  std::string path() const { return dir_.path() + "/dead-letters"; }

  DeadLetterQueue MustCreate() {
    auto q = DeadLetterQueue::Create(path(), kNonce, kMaxMessage);
    EXPECT_TRUE(q.ok()) << q.error().Describe();
    return std::move(*q);
  }

  ChannelResult<DeadLetterQueue> Reopen(std::uint64_t committed) {
    notes_.clear();
    return DeadLetterQueue::Open(path(), kNonce, kMaxMessage, committed, &notes_);
  }

  std::uint64_t FileSize() const {
    int fd = ::open(path().c_str(), O_RDONLY);
    off_t size = ::lseek(fd, 0, SEEK_END);
    ::close(fd);
    return static_cast<std::uint64_t>(size);
  }

  void Scribble(std::uint64_t at, std::string_view bytes) const {
    int fd = ::open(path().c_str(), O_WRONLY);
    ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(at)),
              static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }

  TempDir dir_;
  std::vector<std::string> notes_;
};

TEST_F(DeadLetterQueueTest, AppendListGetAndReopen) {
  std::uint64_t end = 0;
  {
    DeadLetterQueue q = MustCreate();
    EXPECT_EQ(q.size(), 0u);
    ASSERT_TRUE(q.Append(7, 3, AsBytes("poison")).ok());
    ASSERT_TRUE(q.Append(9, 4, AsBytes("")).ok());
    EXPECT_EQ(q.Append(7, 3, AsBytes("again")).error().code, Errc::kInvalidArgument);
    EXPECT_EQ(q.Append(10, 3, std::vector<std::byte>(kMaxMessage + 1)).error().code,
              Errc::kInvalidArgument);
    EXPECT_EQ(q.Ids(), (std::vector<std::uint64_t>{7, 9}));
    auto d = q.Get(7);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(AsString(d->payload), "poison");
    EXPECT_EQ(d->deliveries, 3u);
    EXPECT_GT(d->time_ns, 1'600'000'000'000'000'000);
    EXPECT_EQ(q.Get(8).error().code, Errc::kNotFound);
    end = q.end();
  }
  auto q = Reopen(end);
  ASSERT_TRUE(q.ok()) << q.error().Describe();
  EXPECT_TRUE(notes_.empty());
  auto all = q->List();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, 7u);
  EXPECT_EQ(AsString((*all)[0].payload), "poison");
  EXPECT_EQ((*all)[1].id, 9u);
  EXPECT_TRUE((*all)[1].payload.empty());
}

TEST_F(DeadLetterQueueTest, ExportJsonLines) {
  DeadLetterQueue q = MustCreate();
  ASSERT_TRUE(q.Append(4, 3, AsBytes("poison")).ok());
  ASSERT_TRUE(q.Append(5, 1, AsBytes("ab")).ok());
  auto json = q.ExportJsonLines();
  ASSERT_TRUE(json.ok());
  auto first_end = json->find('\n');
  ASSERT_NE(first_end, std::string::npos);
  std::string first = json->substr(0, first_end);
  EXPECT_EQ(first.rfind("{\"id\":4,\"time\":\"", 0), 0u) << first;
  EXPECT_NE(first.find("Z\",\"deliveries\":3,\"length\":6,\"payload_base64\":\"cG9pc29u\"}"),
            std::string::npos)
      << first;
  EXPECT_NE(json->find("\"payload_base64\":\"YWI=\"}\n"), std::string::npos) << *json;
  EXPECT_EQ(json->back(), '\n');
}

TEST_F(DeadLetterQueueTest, RequeueAndPurgeEndALetterDurably) {
  std::uint64_t end = 0;
  {
    DeadLetterQueue q = MustCreate();
    for (std::uint64_t id = 1; id <= 3; ++id) ASSERT_TRUE(q.Append(id, 3, AsBytes("x")).ok());
    ASSERT_TRUE(q.MarkRequeued(1).ok());
    ASSERT_TRUE(q.Purge(2).ok());
    EXPECT_EQ(q.Purge(2).error().code, Errc::kNotFound);
    EXPECT_EQ(q.Ids(), (std::vector<std::uint64_t>{3}));
    end = q.end();
  }
  auto q = Reopen(end);
  ASSERT_TRUE(q.ok()) << q.error().Describe();
  EXPECT_EQ(q->Ids(), (std::vector<std::uint64_t>{3}));
  ASSERT_TRUE(q->PurgeAll().ok());
  EXPECT_EQ(q->size(), 0u);
  EXPECT_EQ(FileSize(), DeadLetterQueue::EmptySize());
}

TEST_F(DeadLetterQueueTest, TornAppendPastTheCommittedEndIsCut) {
  std::uint64_t committed = 0;
  {
    DeadLetterQueue q = MustCreate();
    ASSERT_TRUE(q.Append(1, 3, AsBytes("kept")).ok());
    committed = q.end();
    ASSERT_TRUE(q.Append(2, 3, AsBytes("whole but not committed")).ok());
  }
  // Half a third record: what a runtime killed inside pwrite leaves.
  std::uint64_t size = FileSize();
  Scribble(size, std::string("SLDR\x01\0\0\0", 8));
  auto q = Reopen(committed);
  ASSERT_TRUE(q.ok()) << q.error().Describe();
  EXPECT_EQ(q->Ids(), (std::vector<std::uint64_t>{1, 2}));  // whole records are kept
  ASSERT_EQ(notes_.size(), 1u);
  EXPECT_NE(notes_[0].find("torn"), std::string::npos) << notes_[0];
  EXPECT_EQ(FileSize(), size);
  EXPECT_EQ(q->end(), size);
  ASSERT_TRUE(q->Append(3, 1, AsBytes("after")).ok());
}

TEST_F(DeadLetterQueueTest, DamageBeforeTheCommittedEndIsCorrupt) {
  std::uint64_t committed = 0;
  {
    DeadLetterQueue q = MustCreate();
    ASSERT_TRUE(q.Append(1, 3, AsBytes("first")).ok());
    ASSERT_TRUE(q.Append(2, 3, AsBytes("second")).ok());
    committed = q.end();
  }
  Scribble(DeadLetterQueue::EmptySize() + 40, "X");  // a payload byte of record 1
  auto q = Reopen(committed);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, Errc::kCorrupt);
  EXPECT_EQ(q.error().culprit, Culprit::kRuntime);
  EXPECT_NE(q.error().message.find("checksum"), std::string::npos) << q.error().message;
  // Left as it was, for an operator to look at.
  EXPECT_EQ(FileSize(), committed);
}

TEST_F(DeadLetterQueueTest, CommittedEndBeyondTheFileIsCorrupt) {
  { DeadLetterQueue q = MustCreate(); }
  EXPECT_EQ(Reopen(1 << 20).error().code, Errc::kCorrupt);
  EXPECT_EQ(Reopen(3).error().code, Errc::kCorrupt);
}

TEST_F(DeadLetterQueueTest, ForeignFileIsRefused) {
  { DeadLetterQueue q = MustCreate(); }
  auto other =
      DeadLetterQueue::Open(path(), kNonce + 1, kMaxMessage, DeadLetterQueue::EmptySize(), nullptr);
  EXPECT_EQ(other.error().code, Errc::kCorrupt);
  Scribble(0, "garbage!");
  EXPECT_EQ(Reopen(DeadLetterQueue::EmptySize()).error().code, Errc::kCorrupt);
}

}  // namespace
}  // namespace slate::channel
