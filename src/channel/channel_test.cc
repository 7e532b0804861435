// The channel's API with both ends in this process (the kernel does not
// care: each end has its own descriptors and mappings). Crashes of real
// processes are in channel_process_test.cc.
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <thread>
#include <vector>

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

class ChannelTest : public ::testing::Test {
 protected:
  ChannelFiles Make(ChannelGeometry g = {4, 64, 3}) { return MustCreate(dir_.Channel(), g); }

  static std::string Next(Consumer& c, std::uint64_t* id = nullptr) {
    std::array<std::byte, 256> buf{};
    auto r = c.Receive(buf, 1s);
    if (!r) return std::string("<").append(r.error().Describe()).append(">");
    if (id != nullptr) *id = r->id;
    return AsString(std::span(buf).first(r->size));
  }

  TempDir dir_;
};

TEST_F(ChannelTest, RoundTrip) {
  ChannelFiles files = Make();
  Producer p = MustAttachProducer(files);
  Consumer c = MustAttachConsumer(files);
  auto id = p.Send(AsBytes("hello"), 0s);
  ASSERT_TRUE(id.ok()) << id.error().Describe();
  EXPECT_EQ(*id, 1u);
  std::uint64_t got = 0;
  EXPECT_EQ(Next(c, &got), "hello");
  EXPECT_EQ(got, 1u);
  ASSERT_TRUE(c.Ack(got).ok());
  // Empty and max-size messages are messages too.
  ASSERT_TRUE(p.Send({}, 0s).ok());
  std::string full(64, 'x');
  ASSERT_TRUE(p.Send(AsBytes(full), 0s).ok());
  EXPECT_EQ(Next(c), "");
  EXPECT_EQ(Next(c), full);
}

TEST_F(ChannelTest, OrderingAcrossManyWrapsOfTheRing) {
  ChannelFiles files = Make({8, 16, 3});
  Producer p = MustAttachProducer(files);
  Consumer c = MustAttachConsumer(files);
  for (int round = 0; round < 100; ++round) {
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(p.Send(AsBytes(std::to_string(round * 5 + i)), 0s).ok());
    }
    for (int i = 0; i < 5; ++i) {
      std::uint64_t id = 0;
      ASSERT_EQ(Next(c, &id), std::to_string(round * 5 + i));
      ASSERT_EQ(id, static_cast<std::uint64_t>(round * 5 + i + 1));
    }
    ASSERT_TRUE(c.Ack(static_cast<std::uint64_t>(round * 5 + 5)).ok());
  }
}

TEST_F(ChannelTest, FullQueueTimesOutWithFull) {
  ChannelFiles files = Make();
  Producer p = MustAttachProducer(files);
  Consumer c = MustAttachConsumer(files);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(p.Send(AsBytes("m"), 0s).ok());
  EXPECT_EQ(p.Send(AsBytes("m"), 0s).error().code, Errc::kFull);
  auto start = std::chrono::steady_clock::now();
  auto r = p.Send(AsBytes("m"), 50ms);
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kFull);
  EXPECT_GE(waited, 50ms);
  EXPECT_LT(waited, 2s);
  // Received is not consumed: space comes back with the ack only.
  std::uint64_t id = 0;
  Next(c, &id);
  EXPECT_EQ(p.Send(AsBytes("m"), 0s).error().code, Errc::kFull);
  ASSERT_TRUE(c.Ack(id).ok());
  EXPECT_TRUE(p.Send(AsBytes("m"), 0s).ok());
}

TEST_F(ChannelTest, BlockedSendWakesOnAck) {
  ChannelFiles files = Make();
  Producer p = MustAttachProducer(files);
  Consumer c = MustAttachConsumer(files);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(p.Send(AsBytes("m"), 0s).ok());
  std::thread acker([&] {
    std::this_thread::sleep_for(20ms);
    std::uint64_t id = 0;
    Next(c, &id);
    (void)c.Ack(id);
  });
  auto start = std::chrono::steady_clock::now();
  auto r = p.Send(AsBytes("late"), 5s);
  auto waited = std::chrono::steady_clock::now() - start;
  acker.join();
  ASSERT_TRUE(r.ok()) << r.error().Describe();
  EXPECT_EQ(*r, 5u);
  EXPECT_LT(waited, 2s);
}

TEST_F(ChannelTest, TooBigIsRefusedAndNothingIsSent) {
  ChannelFiles files = Make();
  Producer p = MustAttachProducer(files);
  std::string big(65, 'x');
  auto r = p.Send(AsBytes(big), 0s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kTooBig);
  EXPECT_EQ(p.next_id(), 1u);
  EXPECT_TRUE(p.Send(AsBytes("ok"), 0s).ok());  // not a sticky error
}

TEST_F(ChannelTest, ReceiveTimesOutWhenEmpty) {
  ChannelFiles files = Make();
  Consumer c = MustAttachConsumer(files);
  std::array<std::byte, 64> buf{};
  EXPECT_EQ(c.Receive(buf, 0s).error().code, Errc::kTimeout);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(c.Receive(buf, 30ms).error().code, Errc::kTimeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
}

TEST_F(ChannelTest, SmallBufferKeepsTheMessageNext) {
  ChannelFiles files = Make();
  Producer p = MustAttachProducer(files);
  Consumer c = MustAttachConsumer(files);
  ASSERT_TRUE(p.Send(AsBytes("twelve bytes"), 0s).ok());
  std::array<std::byte, 4> tiny{};
  auto r = c.Receive(tiny, 0s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kBufferTooSmall);
  EXPECT_EQ(r.error().needed, 12u);
  EXPECT_EQ(Next(c), "twelve bytes");
}

TEST_F(ChannelTest, AckRules) {
  ChannelFiles files = Make();
  Producer p = MustAttachProducer(files);
  Consumer c = MustAttachConsumer(files);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.Send(AsBytes("m"), 0s).ok());
  Next(c);
  Next(c);
  EXPECT_EQ(c.Ack(3).error().code, Errc::kInvalidArgument);  // not received yet
  ASSERT_TRUE(c.Ack(2).ok());                                // cumulative
  EXPECT_EQ(c.next_unacked(), 3u);
  EXPECT_TRUE(c.Ack(1).ok());  // already acked: no-op
  EXPECT_EQ(c.next_unacked(), 3u);
  auto stats = files.Stats();
  ASSERT_TRUE(stats.ok()) << stats.error().Describe();
  EXPECT_EQ(stats->depth, 1u);
  EXPECT_EQ(stats->in_flight, 0u);
}

TEST_F(ChannelTest, UnackedMessagesComeAgainToTheNextConsumerInOrder) {
  ChannelFiles files = Make({8, 64, 3});
  Producer p = MustAttachProducer(files);
  for (const char* m : {"a", "b", "c", "d"}) ASSERT_TRUE(p.Send(AsBytes(m), 0s).ok());
  {
    Consumer c = MustAttachConsumer(files);
    EXPECT_EQ(Next(c), "a");
    ASSERT_TRUE(c.Ack(1).ok());
    EXPECT_EQ(Next(c), "b");
    EXPECT_EQ(Next(c), "c");
    auto stats = files.Stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->in_flight, 2u);
    EXPECT_EQ(stats->depth, 3u);
  }  // detached without acking b and c
  Consumer c = MustAttachConsumer(files);
  EXPECT_EQ(Next(c), "b");
  EXPECT_EQ(Next(c), "c");
  EXPECT_EQ(Next(c), "d");
}

TEST_F(ChannelTest, OneEndOfEachKind) {
  ChannelFiles files = Make();
  Producer p = MustAttachProducer(files);
  Consumer c = MustAttachConsumer(files);
  auto fds = files.ProducerFds();
  ASSERT_TRUE(fds.ok());
  EXPECT_EQ(Producer::Attach(std::move(*fds)).error().code, Errc::kBusy);
  fds = files.ConsumerFds();
  ASSERT_TRUE(fds.ok());
  EXPECT_EQ(Consumer::Attach(std::move(*fds)).error().code, Errc::kBusy);
  EXPECT_EQ(files.OnConsumerCrashed().error().code, Errc::kBusy);
}

TEST_F(ChannelTest, EpochsCountAttaches) {
  ChannelFiles files = Make();
  Producer p = MustAttachProducer(files);
  EXPECT_EQ(p.epoch(), 1u);
  EXPECT_EQ(p.peer_epoch(), 0u);
  EXPECT_EQ(p.runtime_epoch(), 1u);
  {
    Consumer c = MustAttachConsumer(files);
    EXPECT_EQ(c.peer_epoch(), 1u);
    EXPECT_EQ(p.peer_epoch(), 1u);
  }
  Consumer c = MustAttachConsumer(files);
  EXPECT_EQ(p.peer_epoch(), 2u);
  Producer moved = std::move(p);  // moving is not re-attaching
  EXPECT_EQ(c.peer_epoch(), 1u);
}

TEST_F(ChannelTest, DescriptorsHandedToAnEndAreReadOnlyWhereTheyMustBe) {
  ChannelFiles files = Make();
  for (bool producer : {true, false}) {
    auto fds = producer ? files.ProducerFds() : files.ConsumerFds();
    ASSERT_TRUE(fds.ok());
    EXPECT_EQ(::fcntl(fds->own.get(), F_GETFL) & O_ACCMODE, O_RDWR);
    EXPECT_EQ(::fcntl(fds->peer.get(), F_GETFL) & O_ACCMODE, O_RDONLY);
    EXPECT_EQ(::fcntl(fds->runtime.get(), F_GETFL) & O_ACCMODE, O_RDONLY);
    EXPECT_NE(::fcntl(fds->own.get(), F_GETFD) & FD_CLOEXEC, 0);
  }
  // An end given its own region read-only is refused rather than faulting later.
  auto fds = files.ProducerFds();
  ASSERT_TRUE(fds.ok());
  std::swap(fds->own, fds->peer);
  EXPECT_EQ(Producer::Attach(std::move(*fds)).error().code, Errc::kInvalidArgument);
}

TEST_F(ChannelTest, ReopenAfterRuntimeRestartKeepsQueuedMessages) {
  ChannelGeometry g{8, 64, 3};
  {
    ChannelFiles files = Make(g);
    Producer p = MustAttachProducer(files);
    for (const char* m : {"one", "two", "three"}) ASSERT_TRUE(p.Send(AsBytes(m), 0s).ok());
    Consumer c = MustAttachConsumer(files);
    EXPECT_EQ(Next(c), "one");
    ASSERT_TRUE(c.Ack(1).ok());
    EXPECT_EQ(Next(c), "two");  // in flight when everything goes away
  }
  auto files = ChannelFiles::Open(dir_.Channel(), g);
  ASSERT_TRUE(files.ok()) << files.error().Describe();
  EXPECT_TRUE(files->recovery_notes().empty());
  auto stats = files->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->depth, 2u);
  EXPECT_EQ(stats->next_id, 4u);
  EXPECT_EQ(stats->runtime_epoch, 2u);
  Consumer c = MustAttachConsumer(*files);
  EXPECT_EQ(Next(c), "two");
  EXPECT_EQ(Next(c), "three");
  Producer p = MustAttachProducer(*files);
  EXPECT_EQ(p.next_id(), 4u);
  EXPECT_EQ(p.epoch(), 2u);
}

TEST_F(ChannelTest, ASleepingPeerIsWokenOncePerSleepNotOncePerMessage) {
  ChannelFiles files = Make({64, 64, 3});
  Producer p = MustAttachProducer(files);
  Consumer c = MustAttachConsumer(files);
  auto write_seq = [&] { return Load32(c.peer_region(), offset::kWriteSeq); };
  const std::uint32_t before = write_seq();
  // The consumer as it is between announcing its sleep and waking up.
  testing::Scribble(dir_.Channel(), kConsumerFile, offset::kWantsData, WaitToken(before));
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(p.Send(AsBytes("m"), 0s).ok());
  EXPECT_EQ(write_seq(), before + 1) << "one bump (and one FUTEX_WAKE) for one sleep";
  // Awake, it clears its word: no more wake-ups.
  testing::Scribble(dir_.Channel(), kConsumerFile, offset::kWantsData, std::uint32_t{0});
  ASSERT_TRUE(p.Send(AsBytes("m"), 0s).ok());
  EXPECT_EQ(write_seq(), before + 1);
  // The other direction: a producer asleep for space is woken once by acks.
  auto ack_seq = [&] { return Load32(p.peer_region(), offset::kAckSeq); };
  const std::uint32_t acks_before = ack_seq();
  testing::Scribble(dir_.Channel(), kProducerFile, offset::kWantsSpace, WaitToken(acks_before));
  for (int i = 0; i < 51; ++i) {
    std::uint64_t id = 0;
    ASSERT_EQ(Next(c, &id), "m");
    ASSERT_TRUE(c.Ack(id).ok());
  }
  EXPECT_EQ(ack_seq(), acks_before + 1);
}

TEST_F(ChannelTest, AChannelOfLayout1IsMigratedWithItsMessages) {
  ChannelGeometry g{8, 64, 3};
  {
    ChannelFiles files = Make(g);
    Producer p = MustAttachProducer(files);
    for (const char* m : {"one", "two"}) ASSERT_TRUE(p.Send(AsBytes(m), 0s).ok());
  }
  // As layout 1 left it: version 1 in every header, a consumer's stale
  // wants flag at the old offset.
  for (std::string_view file : {kRuntimeFile, kProducerFile, kConsumerFile}) {
    testing::Scribble(dir_.Channel(), file, offsetof(RegionHeader, version), std::uint32_t{1});
  }
  testing::Scribble(dir_.Channel(), kConsumerFile, kLayout1Wants, std::uint32_t{1});
  auto files = ChannelFiles::Open(dir_.Channel(), g);
  ASSERT_TRUE(files.ok()) << files.error().Describe();
  ASSERT_EQ(files->recovery_notes().size(), 1u);
  EXPECT_EQ(files->recovery_notes()[0], "migrated from channel layout 1 to 3");
  Consumer c = MustAttachConsumer(*files);
  EXPECT_EQ(Next(c), "one");
  EXPECT_EQ(Next(c), "two");
  EXPECT_EQ(Load32(c.peer_region(), offsetof(RegionHeader, version)), kLayoutVersion);
  // Opened again: nothing left to migrate.
  auto again = ChannelFiles::Open(dir_.Channel(), g);
  ASSERT_TRUE(again.ok()) << again.error().Describe();
  EXPECT_TRUE(again->recovery_notes().empty());
}

TEST_F(ChannelTest, AChannelOfLayout2LosesItsUncommittedSlotsInTheMigration) {
  ChannelGeometry g{8, 64, 3};
  {
    ChannelFiles files = Make(g);
    Producer p = MustAttachProducer(files);
    for (const char* m : {"one", "two", "three"}) ASSERT_TRUE(p.Send(AsBytes(m), 0s).ok());
  }
  // Layout 2 wrote a slot's id first: a producer killed mid-copy left the
  // slot of `write` (3) holding id 3 over a torn payload, and a repair had
  // left id 4 in the next slot. Neither was published; in layout 3 a
  // consumer polling those slots would take both.
  for (std::string_view file : {kRuntimeFile, kProducerFile, kConsumerFile}) {
    testing::Scribble(dir_.Channel(), file, offsetof(RegionHeader, version), std::uint32_t{2});
  }
  testing::Scribble(dir_.Channel(), kProducerFile, offset::kWrite, std::uint64_t{3});
  testing::Scribble(dir_.Channel(), kProducerFile, SlotOffset(g, 4) + offset::kSlotId,
                    std::uint64_t{4});
  auto files = ChannelFiles::Open(dir_.Channel(), g);
  ASSERT_TRUE(files.ok()) << files.error().Describe();
  ASSERT_EQ(files->recovery_notes().size(), 1u);
  EXPECT_EQ(files->recovery_notes()[0], "migrated from channel layout 2 to 3");
  auto stats = files->Stats();
  ASSERT_TRUE(stats.ok()) << stats.error().Describe();
  EXPECT_EQ(stats->next_id, 3u);
  Consumer c = MustAttachConsumer(*files);
  EXPECT_EQ(Next(c), "one");
  EXPECT_EQ(Next(c), "two");
  std::array<std::byte, 64> buf{};
  auto none = c.Receive(buf, 0s);
  ASSERT_FALSE(none.ok()) << "received the uncommitted message " << none->id;
  EXPECT_EQ(none.error().code, Errc::kTimeout);
  Producer p = MustAttachProducer(*files);
  EXPECT_EQ(p.next_id(), 3u);
  for (const char* m : {"THREE", "FOUR"}) ASSERT_TRUE(p.Send(AsBytes(m), 0s).ok());
  EXPECT_EQ(Next(c), "THREE");
  EXPECT_EQ(Next(c), "FOUR");
}

TEST_F(ChannelTest, TheRuntimesChecksNeverBlameEndsThatRunMeanwhile) {
  // Capacity 1: every message reuses the one slot, the tightest case for
  // reading the published end (index, slot, index) against a moving ack.
  ChannelFiles files = Make({1, 64, 3});
  Producer p = MustAttachProducer(files);
  Consumer c = MustAttachConsumer(files);
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    const std::array<std::byte, 8> m{};
    while (!stop.load()) (void)p.Send(m, 10ms);
  });
  std::thread consumer([&] {
    std::array<std::byte, 64> buf{};
    while (!stop.load()) {
      if (auto r = c.Receive(buf, 10ms); r.ok()) (void)c.Ack(r->id);
    }
  });
  int checks = 0;
  std::string first_error;
  for (auto end = std::chrono::steady_clock::now() + 1s; std::chrono::steady_clock::now() < end;) {
    ++checks;
    if (auto st = files.Check(); !st.ok() && first_error.empty()) {
      first_error = st.error().Describe();
    }
    if (auto stats = files.Stats(); !stats.ok() && first_error.empty()) {
      first_error = stats.error().Describe();
    }
  }
  stop = true;
  producer.join();
  consumer.join();
  EXPECT_EQ(first_error, "") << "in " << checks << " checks";
  EXPECT_GT(p.next_id(), 1000u);
}

TEST_F(ChannelTest, OpenRefusesAnotherShapeButTakesNewMaxDeliveries) {
  { ChannelFiles files = Make({8, 64, 3}); }
  auto other = ChannelFiles::Open(dir_.Channel(), {16, 64, 3});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, Errc::kGeometryMismatch);
  EXPECT_NE(other.error().message.find("capacity 8"), std::string::npos);
  auto files = ChannelFiles::Open(dir_.Channel(), {8, 64, 5});
  ASSERT_TRUE(files.ok()) << files.error().Describe();
  ASSERT_EQ(files->recovery_notes().size(), 1u);
  EXPECT_EQ(files->recovery_notes()[0], "max_deliveries 3 -> 5");
}

TEST_F(ChannelTest, CreateOpenAndOpenOrCreate) {
  EXPECT_EQ(ChannelFiles::Open(dir_.Channel(), {}).error().code, Errc::kNotFound);
  EXPECT_EQ(ChannelFiles::Create(dir_.Channel("bad"), {0, 64, 3}).error().code,
            Errc::kInvalidArgument);
  std::string nested = dir_.path() + "/channels/deep/ch/";  // a trailing slash is fine
  auto made = ChannelFiles::OpenOrCreate(nested, {});
  ASSERT_TRUE(made.ok()) << made.error().Describe();
  EXPECT_EQ(ChannelFiles::Create(nested, {}).error().code, Errc::kInvalidArgument);
  auto again = ChannelFiles::OpenOrCreate(nested, {});
  ASSERT_TRUE(again.ok()) << again.error().Describe();
  // Nothing but the channel is left beside it (the staging directory is gone).
  int entries = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator(dir_.path() + "/channels/deep")) {
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(ChannelTest, DeadLetterAfterMaxDeliveriesAndRequeue) {
  ChannelFiles files = Make({4, 64, 2});
  Producer p = MustAttachProducer(files);
  for (const char* m : {"ok", "poison", "after"}) ASSERT_TRUE(p.Send(AsBytes(m), 0s).ok());
  for (std::uint32_t crash = 1; crash <= 2; ++crash) {
    {
      Consumer c = MustAttachConsumer(files);
      std::uint64_t id = 0;
      if (crash == 1) {
        EXPECT_EQ(Next(c, &id), "ok");
        ASSERT_TRUE(c.Ack(id).ok());
      }
      EXPECT_EQ(Next(c), "poison");
    }  // "crashes" holding it
    auto charge = files.OnConsumerCrashed();
    ASSERT_TRUE(charge.ok()) << charge.error().Describe();
    EXPECT_TRUE(charge->in_flight);
    EXPECT_EQ(charge->id, 2u);
    EXPECT_EQ(charge->deliveries, crash);
    EXPECT_EQ(charge->dead_lettered, crash == 2);
    // Asking twice about the same crash charges once.
    auto again = files.OnConsumerCrashed();
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(again->in_flight);
  }
  auto stats = files.Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->dead_letters, 1u);
  EXPECT_EQ(stats->depth, 1u);
  {
    Consumer c = MustAttachConsumer(files);
    EXPECT_EQ(Next(c), "after");
    ASSERT_TRUE(c.Ack(3).ok());
  }
  EXPECT_EQ(files.OnConsumerCrashed()->in_flight, false);  // nothing in flight

  EXPECT_EQ(files.Requeue(2).error().code, Errc::kBusy);  // the producer is attached
  { Producer gone = std::move(p); }
  EXPECT_EQ(files.Requeue(99).error().code, Errc::kNotFound);
  auto requeued = files.Requeue(2);
  ASSERT_TRUE(requeued.ok()) << requeued.error().Describe();
  EXPECT_EQ(*requeued, 4u);
  EXPECT_EQ(files.dead_letters().size(), 0u);
  Consumer c = MustAttachConsumer(files);
  std::uint64_t id = 0;
  EXPECT_EQ(Next(c, &id), "poison");
  EXPECT_EQ(id, 4u);
  Producer next = MustAttachProducer(files);
  EXPECT_EQ(next.next_id(), 5u);
}

TEST_F(ChannelTest, OnlyTheFirstUnackedMessageIsChargedOncePerCrash) {
  ChannelFiles files = Make({4, 64, 1});
  Producer p = MustAttachProducer(files);
  for (const char* m : {"a", "b", "c"}) ASSERT_TRUE(p.Send(AsBytes(m), 0s).ok());
  {
    Consumer c = MustAttachConsumer(files);
    Next(c);
    Next(c);  // a and b in flight
  }
  auto charge = files.OnConsumerCrashed();
  ASSERT_TRUE(charge.ok());
  EXPECT_EQ(charge->id, 1u);
  EXPECT_TRUE(charge->dead_lettered);
  // b is now first in flight; the same crash must not charge it too.
  EXPECT_FALSE(files.OnConsumerCrashed()->in_flight);
  auto reopened = ChannelFiles::Open(dir_.Channel(), {4, 64, 1});
  ASSERT_TRUE(reopened.ok());
  EXPECT_FALSE(reopened->OnConsumerCrashed()->in_flight);
  EXPECT_EQ(reopened->dead_letters().Ids(), (std::vector<std::uint64_t>{1}));
  Consumer c = MustAttachConsumer(*reopened);
  EXPECT_EQ(Next(c), "b");
}

TEST_F(ChannelTest, InterruptedDeadLetteringIsFinishedOnOpen) {
  ChannelGeometry g{4, 64, 1};
  {
    ChannelFiles files = Make(g);
    Producer p = MustAttachProducer(files);
    ASSERT_TRUE(p.Send(AsBytes("poison"), 0s).ok());
    ASSERT_TRUE(p.Send(AsBytes("next"), 0s).ok());
    {
      Consumer c = MustAttachConsumer(files);
      Next(c);
    }
    ASSERT_TRUE(files.OnConsumerCrashed()->dead_lettered);
  }
  // Undo step 2 (the floor), as if the runtime died between the steps.
  {
    int fd = ::open((dir_.Channel() + "/runtime.region").c_str(), O_WRONLY);
    std::uint64_t one = 1;
    ASSERT_EQ(::pwrite(fd, &one, 8, offset::kFloor), 8);
    ::close(fd);
  }
  auto files = ChannelFiles::Open(dir_.Channel(), g);
  ASSERT_TRUE(files.ok()) << files.error().Describe();
  ASSERT_EQ(files->recovery_notes().size(), 1u);
  EXPECT_EQ(files->recovery_notes()[0], "finished dead-lettering message 1");
  EXPECT_EQ(files->dead_letters().size(), 1u);  // not twice
  Consumer c = MustAttachConsumer(*files);
  EXPECT_EQ(Next(c), "next");
}

}  // namespace
}  // namespace slate::channel
