// An end that writes garbage into its own region is caught and named, by its
// peer, by the runtime, and by its own library; nothing crashes. The
// scribbles go through the files, which share pages with the mappings, just
// as a wild write through the end's writable mapping would.
#include <array>
#include <cstddef>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "channel/channel_files.h"
#include "channel/consumer.h"
#include "channel/producer.h"
#include "channel/test_util.h"

namespace slate::channel {
namespace {

using namespace std::chrono_literals;
using testing::AsBytes;
using testing::MustAttachConsumer;
using testing::MustAttachProducer;
using testing::MustCreate;
using testing::TempDir;

constexpr ChannelGeometry kShape{4, 64, 3};

class CorruptionTest : public ::testing::Test {
 protected:
  CorruptionTest() : files_(MustCreate(dir_.Channel(), kShape)) {}

  template <typename T>
  void Scribble(std::string_view file, std::uint64_t at, T value) {
    testing::Scribble(dir_.Channel(), file, at, value);
  }

  void Truncate(std::string_view file, off_t size) {
    ASSERT_EQ(::truncate((dir_.Channel() + "/" + std::string(file)).c_str(), size), 0);
  }

  static void ExpectCorrupt(const ChannelError& e, Culprit who, std::string_view says) {
    EXPECT_EQ(e.code, Errc::kCorrupt) << e.Describe();
    EXPECT_EQ(e.culprit, who) << e.Describe();
    EXPECT_NE(e.message.find(says), std::string::npos) << e.Describe();
  }

  ChannelError ReceiveError(Consumer& c) {
    std::array<std::byte, 64> buf{};
    auto r = c.Receive(buf, 0s);
    EXPECT_FALSE(r.ok());
    return r.ok() ? ChannelError{} : r.error();
  }

  TempDir dir_;
  ChannelFiles files_;
};

TEST_F(CorruptionTest, ConsumerScribblingItsAckIsNamedByEveryone) {
  Producer p = MustAttachProducer(files_);
  Consumer c = MustAttachConsumer(files_);
  ASSERT_TRUE(p.Send(AsBytes("m"), 0s).ok());
  Scribble(kConsumerFile, offset::kAck, std::uint64_t{999});

  // The producer reads the ack only when the last one it saw leaves no room:
  // the ring's free slots go first, then it looks and names the consumer.
  for (std::uint64_t i = 1; i < kShape.capacity; ++i) ASSERT_TRUE(p.Send(AsBytes("m"), 0s).ok());
  auto sent = p.Send(AsBytes("m"), 0s);
  ASSERT_FALSE(sent.ok());
  ExpectCorrupt(sent.error(), Culprit::kConsumer, "ack position 999");
  // The producer stays broken rather than trusting the channel again.
  Scribble(kConsumerFile, offset::kAck, std::uint64_t{1});
  EXPECT_EQ(p.Send(AsBytes("m"), 0s).error().culprit, Culprit::kConsumer);

  Scribble(kConsumerFile, offset::kAck, std::uint64_t{999});
  ExpectCorrupt(files_.Stats().error(), Culprit::kConsumer, "999");
  ExpectCorrupt(ReceiveError(c), Culprit::kConsumer, "behind the library's back");
}

TEST_F(CorruptionTest, ProducerScribblingItsWriteIndexIsNamedByEveryone) {
  Producer p = MustAttachProducer(files_);
  Consumer c = MustAttachConsumer(files_);
  ASSERT_TRUE(p.Send(AsBytes("m"), 0s).ok());
  Scribble(kProducerFile, offset::kWrite, std::uint64_t{1000});
  // The message's slot is its commit point: it is delivered without a look
  // at the index. The index is read when there is nothing to receive.
  std::array<std::byte, 64> buf{};
  ASSERT_TRUE(c.Receive(buf, 0s).ok());
  ExpectCorrupt(ReceiveError(c), Culprit::kProducer, "write index 1000");
  ExpectCorrupt(files_.Stats().error(), Culprit::kProducer, "1000");
  ExpectCorrupt(p.Send(AsBytes("m"), 0s).error(), Culprit::kProducer, "behind the library's back");

  // Backwards is as wrong as too far.
  Scribble(kProducerFile, offset::kWrite, std::uint64_t{0});
  ExpectCorrupt(files_.Stats().error(), Culprit::kProducer, "write index 0");
}

TEST_F(CorruptionTest, ProducerScribblingASlotIsNamed) {
  Producer p = MustAttachProducer(files_);
  ASSERT_TRUE(p.Send(AsBytes("first"), 0s).ok());
  ASSERT_TRUE(p.Send(AsBytes("second"), 0s).ok());
  Scribble(kProducerFile, SlotOffset(kShape, 1) + offset::kSlotLength, std::uint32_t{1u << 31});
  Scribble(kProducerFile, SlotOffset(kShape, 2) + offset::kSlotId, std::uint64_t{77});
  {
    Consumer c = MustAttachConsumer(files_);
    ExpectCorrupt(ReceiveError(c), Culprit::kProducer, "claims 2147483648 bytes");
  }
  auto reopened = ChannelFiles::Open(dir_.Channel(), kShape);
  ASSERT_FALSE(reopened.ok());
  ExpectCorrupt(reopened.error(), Culprit::kProducer, "should hold message 1");

  Scribble(kProducerFile, SlotOffset(kShape, 1) + offset::kSlotLength, std::uint32_t{5});
  Consumer c = MustAttachConsumer(files_);
  std::array<std::byte, 64> buf{};
  ASSERT_TRUE(c.Receive(buf, 0s).ok());
  ExpectCorrupt(ReceiveError(c), Culprit::kProducer, "holds id 77, expected 2");
}

TEST_F(CorruptionTest, GarbageHeadersAreRefusedAtAttachAndRepairedAtOpen) {
  Scribble(kProducerFile, 0, std::uint64_t{0xdeadbeef});
  auto fds = files_.ConsumerFds();
  ASSERT_TRUE(fds.ok());
  auto c = Consumer::Attach(std::move(*fds));
  ASSERT_FALSE(c.ok());
  ExpectCorrupt(c.error(), Culprit::kProducer, "bad magic");
  fds = files_.ProducerFds();
  ASSERT_TRUE(fds.ok());
  ExpectCorrupt(Producer::Attach(std::move(*fds)).error(), Culprit::kProducer, "bad magic");
  // Open (a runtime that restarts) repairs an end's file and says what it found.
  auto reopened = ChannelFiles::Open(dir_.Channel(), kShape);
  ASSERT_TRUE(reopened.ok()) << reopened.error().Describe();
  ASSERT_EQ(reopened->recovery_notes().size(), 1u);
  EXPECT_NE(reopened->recovery_notes()[0].find("corrupt (producer)"), std::string::npos);
  EXPECT_NE(reopened->recovery_notes()[0].find("bad magic"), std::string::npos);

  Scribble(kConsumerFile, offsetof(RegionHeader, capacity), std::uint64_t{5});
  reopened = ChannelFiles::Open(dir_.Channel(), kShape);
  ASSERT_TRUE(reopened.ok()) << reopened.error().Describe();
  ASSERT_EQ(reopened->recovery_notes().size(), 1u);
  EXPECT_NE(reopened->recovery_notes()[0].find("shape 5x64"), std::string::npos);
}

TEST_F(CorruptionTest, GarbageRuntimeRegionIsNamed) {
  Scribble(kRuntimeFile, offsetof(RegionHeader, slot_size), std::uint64_t{3});
  auto fds = files_.ProducerFds();
  ASSERT_TRUE(fds.ok());
  ExpectCorrupt(Producer::Attach(std::move(*fds)).error(), Culprit::kRuntime, "slot size 3");
  ExpectCorrupt(ChannelFiles::Open(dir_.Channel(), kShape).error(), Culprit::kRuntime,
                "slot size 3");
}

TEST_F(CorruptionTest, TruncatedFileIsNamedWithoutAFault) {
  Producer p = MustAttachProducer(files_);
  ASSERT_TRUE(p.Send(AsBytes("m"), 0s).ok());
  Truncate(kProducerFile, 100);
  // The runtime reads with pread: a shrunken file is an error, not SIGBUS.
  ExpectCorrupt(files_.Stats().error(), Culprit::kProducer, "is 100 bytes");
  ExpectCorrupt(ChannelFiles::Open(dir_.Channel(), kShape).error(), Culprit::kProducer,
                "is 100 bytes");
  auto fds = files_.ConsumerFds();
  ASSERT_TRUE(fds.ok());
  ExpectCorrupt(Consumer::Attach(std::move(*fds)).error(), Culprit::kProducer, "is 100 bytes");
}

TEST_F(CorruptionTest, TruncatedConsumerFileIsNamedWhenCharging) {
  { Consumer c = MustAttachConsumer(files_); }
  Truncate(kConsumerFile, 0);
  ExpectCorrupt(files_.OnConsumerCrashed().error(), Culprit::kConsumer, "is 0 bytes");
}

TEST_F(CorruptionTest, DescriptorsOfTwoChannelsDoNotMix) {
  ChannelFiles other = MustCreate(dir_.Channel("other"), kShape);
  auto mine = files_.ProducerFds();
  auto theirs = other.ProducerFds();
  ASSERT_TRUE(mine.ok() && theirs.ok());
  std::swap(mine->peer, theirs->peer);
  ExpectCorrupt(Producer::Attach(std::move(*mine)).error(), Culprit::kConsumer, "another channel");
}

TEST_F(CorruptionTest, DeadConsumersGarbageIsNamedWhenCharging) {
  Producer p = MustAttachProducer(files_);
  ASSERT_TRUE(p.Send(AsBytes("m"), 0s).ok());
  { Consumer c = MustAttachConsumer(files_); }
  Scribble(kConsumerFile, offset::kDelivered, std::uint64_t{50});
  ExpectCorrupt(files_.OnConsumerCrashed().error(), Culprit::kConsumer, "delivered position 50");
  // A successor cannot start from it either.
  auto fds = files_.ConsumerFds();
  ASSERT_TRUE(fds.ok());
  EXPECT_EQ(Consumer::Attach(std::move(*fds)).error().culprit, Culprit::kConsumer);
}

}  // namespace
}  // namespace slate::channel
