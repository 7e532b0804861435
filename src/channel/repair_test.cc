// What the runtime does about a broken or departed end: Check finds the
// culprit, Repair makes its file valid for the next process, the peer's end
// heals once that process attaches, and SetDown ends a peer's wait at once.
#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <thread>

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
using testing::AsString;
using testing::MustAttachConsumer;
using testing::MustAttachProducer;
using testing::MustCreate;
using testing::TempDir;

constexpr ChannelGeometry kRepairShape{8, 64, 3};

class RepairTest : public ::testing::Test {
 protected:
  RepairTest() : files_(MustCreate(dir_.Channel(), kRepairShape)) {}

  template <typename T>
  void Scribble(std::string_view file, std::uint64_t at, T value) {
    testing::Scribble(dir_.Channel(), file, at, value);
  }

  static std::uint64_t Send(Producer& p, std::string_view text) {
    auto id = p.Send(AsBytes(text), 0s);
    EXPECT_TRUE(id.ok()) << id.error().Describe();
    return id.ok() ? *id : 0;
  }

  TempDir dir_;
  ChannelFiles files_;
};

TEST_F(RepairTest, AGarbledWriteIndexIsRolledBackToTheLastWholeMessage) {
  {
    Producer p = MustAttachProducer(files_);
    Send(p, "one");
    Send(p, "two");
  }
  Scribble(kProducerFile, offset::kWrite, std::uint64_t{0x7fff'ffff'ffff});
  auto check = files_.Check();
  ASSERT_FALSE(check.ok());
  EXPECT_EQ(check.error().culprit, Culprit::kProducer);

  auto what = files_.Repair(EndRole::kProducer);
  ASSERT_TRUE(what.ok()) << what.error().Describe();
  EXPECT_NE(what->find("write index"), std::string::npos) << *what;
  ASSERT_TRUE(files_.Check().ok());

  // Nothing whole was lost: both messages are there, and the next producer
  // goes on after them.
  Consumer c = MustAttachConsumer(files_);
  std::array<std::byte, 64> buf{};
  auto m1 = c.Receive(buf, 0s);
  ASSERT_TRUE(m1.ok());
  EXPECT_EQ(m1->id, 1u);
  auto m2 = c.Receive(buf, 0s);
  ASSERT_TRUE(m2.ok());
  EXPECT_EQ(m2->id, 2u);
  Producer p = MustAttachProducer(files_);
  EXPECT_EQ(p.next_id(), 3u);
}

TEST_F(RepairTest, APublishedSlotWithAnImpossibleLengthIsDropped) {
  {
    Producer p = MustAttachProducer(files_);
    Send(p, "one");
  }
  // A "message" 2 published with a length over max_message.
  const std::uint64_t slot = SlotOffset(kRepairShape, 2);
  Scribble(kProducerFile, slot + offset::kSlotId, std::uint64_t{2});
  Scribble(kProducerFile, slot + offset::kSlotLength, std::uint32_t{100000});
  Scribble(kProducerFile, offset::kWrite, std::uint64_t{3});
  auto check = files_.Check();
  ASSERT_FALSE(check.ok());
  EXPECT_EQ(check.error().culprit, Culprit::kProducer);

  auto what = files_.Repair(EndRole::kProducer);
  ASSERT_TRUE(what.ok()) << what.error().Describe();
  EXPECT_NE(what->find("1 damaged messages dropped"), std::string::npos) << *what;
  EXPECT_TRUE(files_.Check().ok());
  auto stats = files_.Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->next_id, 2u);
}

TEST_F(RepairTest, AnAttachedConsumerForgetsTheWriteIndexARepairMovedBack) {
  std::optional<Producer> p1 = MustAttachProducer(files_);
  Consumer c = MustAttachConsumer(files_);
  std::array<std::byte, 64> buf{};
  for (const char* m : {"one", "two", "three", "four"}) Send(*p1, m);
  auto m1 = c.Receive(buf, 0s);  // the consumer has seen write = 5
  ASSERT_TRUE(m1.ok());
  ASSERT_TRUE(c.Ack(m1->id).ok());
  // Message 3 is damaged where the consumer has not read yet; the runtime
  // fails that producer and repairs its file: write goes back to 3.
  p1.reset();
  Scribble(kProducerFile, SlotOffset(kRepairShape, 3) + offset::kSlotLength,
           std::uint32_t{1u << 30});
  auto what = files_.Repair(EndRole::kProducer);
  ASSERT_TRUE(what.ok()) << what.error().Describe();
  EXPECT_NE(what->find("write index 5 -> 3"), std::string::npos) << *what;
  // The next producer sends "THREE" as 3. The consumer, which had cached
  // write = 5, must not read 3 and 4 of the old producer.
  Producer p2 = MustAttachProducer(files_);
  EXPECT_EQ(p2.next_id(), 3u);
  auto m2 = c.Receive(buf, 0s);
  ASSERT_TRUE(m2.ok()) << m2.error().Describe();
  EXPECT_EQ(m2->id, 2u);
  auto none = c.Receive(buf, 0s);
  ASSERT_FALSE(none.ok()) << "read message " << none->id << " the repair dropped";
  EXPECT_EQ(none.error().code, Errc::kTimeout);
  Send(p2, "THREE");
  auto m3 = c.Receive(buf, 0s);
  ASSERT_TRUE(m3.ok()) << m3.error().Describe();
  EXPECT_EQ(m3->id, 3u);
  EXPECT_EQ(AsString(std::span(buf).first(m3->size)), "THREE");
  // The old producer's "four" still sat in the slot of 4 with its id; the
  // consumer polls that slot for message 4, so the repair cleared it.
  EXPECT_NE(what->find("slot ids at or past 3 cleared"), std::string::npos) << *what;
  auto early = c.Receive(buf, 0s);
  ASSERT_FALSE(early.ok()) << "read the dropped " << AsString(std::span(buf).first(early->size));
  EXPECT_EQ(early.error().code, Errc::kTimeout);
  Send(p2, "FOUR");
  auto m4 = c.Receive(buf, 0s);
  ASSERT_TRUE(m4.ok()) << m4.error().Describe();
  EXPECT_EQ(AsString(std::span(buf).first(m4->size)), "FOUR");
}

TEST_F(RepairTest, AProducerKilledBetweenItsSlotAndItsIndexHasPublishedTheMessage) {
  Consumer c = MustAttachConsumer(files_);
  {
    Producer p = MustAttachProducer(files_);
    Send(p, "one");
    Send(p, "two");
  }
  // As a producer killed after committing the slot of 2 (its id) and before
  // storing the write index 3 leaves it.
  Scribble(kProducerFile, offset::kWrite, std::uint64_t{2});
  std::array<std::byte, 64> buf{};
  for (std::uint64_t want : {1u, 2u}) {
    auto m = c.Receive(buf, 0s);
    ASSERT_TRUE(m.ok()) << m.error().Describe();
    EXPECT_EQ(m->id, want);
    ASSERT_TRUE(c.Ack(m->id).ok());  // ack 3, past the index: not the consumer's fault
  }
  EXPECT_TRUE(files_.Check().ok()) << files_.Check().error().Describe();
  auto stats = files_.Stats();
  ASSERT_TRUE(stats.ok()) << stats.error().Describe();
  EXPECT_EQ(stats->next_id, 3u);
  EXPECT_EQ(stats->depth, 0u);
  // The next producer resumes after it, never giving id 2 to another message.
  Producer p = MustAttachProducer(files_);
  EXPECT_EQ(p.next_id(), 3u);
  EXPECT_EQ(Send(p, "three"), 3u);
  auto m = c.Receive(buf, 0s);
  ASSERT_TRUE(m.ok()) << m.error().Describe();
  EXPECT_EQ(AsString(std::span(buf).first(m->size)), "three");
}

TEST_F(RepairTest, AGarbledAckFallsBackToTheLastValidOneNeverForward) {
  Producer p = MustAttachProducer(files_);
  for (const char* m : {"a", "b", "c"}) Send(p, m);
  {
    Consumer c = MustAttachConsumer(files_);
    std::array<std::byte, 64> buf{};
    auto m = c.Receive(buf, 0s);
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE(c.Ack(m->id).ok());
  }
  ASSERT_TRUE(files_.Stats().ok());  // the runtime saw ack 2 as valid
  Scribble(kConsumerFile, offset::kAck, std::uint64_t{999});
  ASSERT_FALSE(files_.Check().ok());

  auto what = files_.Repair(EndRole::kConsumer);
  ASSERT_TRUE(what.ok()) << what.error().Describe();
  EXPECT_NE(what->find("ack 999 -> 2"), std::string::npos) << *what;
  Consumer c = MustAttachConsumer(files_);
  std::array<std::byte, 64> buf{};
  auto m = c.Receive(buf, 0s);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->id, 2u);  // "b" again: nothing skipped
}

TEST_F(RepairTest, OpenRepairsAnEndTheRuntimeDidNotLiveToRepair) {
  {
    Producer p = MustAttachProducer(files_);
    Send(p, "one");
  }
  // The producer broke its file, and the runtime died before repairing it.
  Scribble(kProducerFile, offset::kWrite, std::uint64_t{0x7fff'ffff'ffff});
  auto reopened = ChannelFiles::Open(dir_.Channel(), kRepairShape);
  ASSERT_TRUE(reopened.ok()) << reopened.error().Describe();
  ASSERT_EQ(reopened->recovery_notes().size(), 1u);
  EXPECT_NE(reopened->recovery_notes()[0].find("repaired the producer's file"), std::string::npos)
      << reopened->recovery_notes()[0];
  Consumer c = MustAttachConsumer(*reopened);
  std::array<std::byte, 64> buf{};
  auto m = c.Receive(buf, 0s);
  ASSERT_TRUE(m.ok()) << m.error().Describe();
  EXPECT_EQ(m->id, 1u);
}

TEST_F(RepairTest, RepairOfAnAttachedEndIsRefused) {
  Producer p = MustAttachProducer(files_);
  auto what = files_.Repair(EndRole::kProducer);
  ASSERT_FALSE(what.ok());
  EXPECT_EQ(what.error().code, Errc::kBusy);
}

TEST_F(RepairTest, AConsumerBrokenByItsProducerHealsWhenARepairedOneAttaches) {
  std::optional<Producer> p(MustAttachProducer(files_));
  Consumer c = MustAttachConsumer(files_);
  Send(*p, "one");
  std::array<std::byte, 64> buf{};
  ASSERT_TRUE(c.Receive(buf, 0s).ok());
  Scribble(kProducerFile, offset::kWrite, std::uint64_t{0x7fff'ffff'ffff});
  auto broken = c.Receive(buf, 0s);
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.error().culprit, Culprit::kProducer);
  // Still broken while the culprit lives.
  EXPECT_EQ(c.Receive(buf, 0s).error().code, Errc::kCorrupt);

  p.reset();                                            // the runtime kills it ...
  ASSERT_TRUE(files_.Repair(EndRole::kProducer).ok());  // ... repairs its file ...
  p.emplace(MustAttachProducer(files_));                // ... and starts the next one
  Send(*p, "two");
  auto m = c.Receive(buf, 0s);
  ASSERT_TRUE(m.ok()) << m.error().Describe();
  EXPECT_EQ(m->id, 2u);
  EXPECT_TRUE(c.Ack(m->id).ok());
}

TEST_F(RepairTest, AConsumerAttachingToAChannelItsProducerBrokeStartsBrokenAndHeals) {
  {
    Producer p = MustAttachProducer(files_);
    Send(p, "one");
  }
  Scribble(kProducerFile, offset::kWrite, std::uint64_t{0x7fff'ffff'ffff});
  auto fds = files_.ConsumerFds();
  ASSERT_TRUE(fds.ok());
  auto c = Consumer::Attach(std::move(fds).value());
  ASSERT_TRUE(c.ok()) << c.error().Describe();
  std::array<std::byte, 64> buf{};
  EXPECT_EQ(c->Receive(buf, 0s).error().code, Errc::kCorrupt);
  ASSERT_TRUE(files_.Repair(EndRole::kProducer).ok());
  Producer p = MustAttachProducer(files_);
  auto m = c->Receive(buf, 0s);
  ASSERT_TRUE(m.ok()) << m.error().Describe();
  EXPECT_EQ(m->id, 1u);
}

TEST_F(RepairTest, ReadBackReturnsWhatThisEndSentWhileItIsInTheRing) {
  Producer p = MustAttachProducer(files_);
  Send(p, "hello");
  std::array<std::byte, 3> head{};
  auto n = p.ReadBack(1, head);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);
  EXPECT_EQ(testing::AsString(head), "hel");
  EXPECT_EQ(p.ReadBack(2, head).error().code, Errc::kNotFound);
}

TEST_F(RepairTest, AWaitingConsumerHearsAtOnceThatTheProducerIsDown) {
  Consumer c = MustAttachConsumer(files_);
  std::thread downer([&] {
    std::this_thread::sleep_for(50ms);
    files_.SetDown(EndRole::kProducer, true);
  });
  std::array<std::byte, 64> buf{};
  auto start = std::chrono::steady_clock::now();
  auto r = c.Receive(buf, 10s);
  auto waited = std::chrono::steady_clock::now() - start;
  downer.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kPeerDown);
  EXPECT_LT(waited, 2s);
  EXPECT_TRUE(files_.IsDown(EndRole::kProducer));

  // Messages still queued are delivered first; up again, waits are normal.
  files_.SetDown(EndRole::kProducer, false);
  Producer p = MustAttachProducer(files_);
  Send(p, "x");
  files_.SetDown(EndRole::kProducer, true);
  EXPECT_TRUE(c.Receive(buf, 0s).ok());
  EXPECT_EQ(c.Receive(buf, 0s).error().code, Errc::kPeerDown);
  files_.SetDown(EndRole::kProducer, false);
  EXPECT_EQ(c.Receive(buf, 0s).error().code, Errc::kTimeout);
}

TEST_F(RepairTest, AProducerBlockedOnAFullQueueHearsThatTheConsumerIsDown) {
  Producer p = MustAttachProducer(files_);
  for (std::uint64_t i = 0; i < kRepairShape.capacity; ++i) Send(p, "m");
  std::thread downer([&] {
    std::this_thread::sleep_for(50ms);
    files_.SetDown(EndRole::kConsumer, true);
  });
  auto r = p.Send(AsBytes("more"), 10s);
  downer.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kPeerDown);
}

}  // namespace
}  // namespace slate::channel
