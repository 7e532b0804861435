// kill -9 at random moments: of a producer in the middle of its writes, and
// of producer, consumer and runtime during a long numbered stream. The
// seeds are fixed; the moments the kills land are not, which is the point.
#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "channel/channel_files.h"
#include "channel/consumer.h"
#include "channel/producer.h"
#include "channel/test_util.h"

namespace slate::channel {
namespace {

using namespace std::chrono_literals;
using testing::Child;
using testing::DescribeStatus;
using testing::IsPayload;
using testing::MustAttachConsumer;
using testing::MustCreate;
using testing::Payload;
using testing::Pipe;
using testing::TempDir;

// Sends Payload(id) for ever (or up to `last`), resuming where the channel says.
int ProducerMain(EndFds fds, std::size_t min_size, std::size_t max_size, std::uint64_t last) {
  auto p = Producer::Attach(std::move(fds));
  if (!p) {
    (void)std::fprintf(stderr, "producer attach: %s\n", p.error().Describe().c_str());
    return 10;
  }
  while (p->next_id() <= last) {
    std::uint64_t id = p->next_id();
    auto sent = p->Send(Payload(id, min_size, max_size), 1s);
    if (!sent && sent.error().code == Errc::kFull) continue;  // the consumer is restarting
    if (!sent || *sent != id) return 11;
  }
  return 0;
}

TEST(ChannelCrashTest, ProducerKilledMidWriteNeverYieldsAPartialMessage) {
  constexpr std::size_t kMin = 1024;
  constexpr std::size_t kMax = std::size_t{256} * 1024;
  constexpr int kKills = 60;
  const ChannelGeometry g{32, kMax, 3};
  TempDir dir;
  ChannelFiles files = MustCreate(dir.Channel(), g);
  Consumer consumer = MustAttachConsumer(files);
  std::vector<std::byte> buf(kMax);
  std::uint64_t expected = 1;
  auto consume = [&](std::chrono::nanoseconds timeout) {
    auto r = consumer.Receive(buf, timeout);
    if (!r) {
      EXPECT_EQ(r.error().code, Errc::kTimeout) << r.error().Describe();
      return false;
    }
    EXPECT_EQ(r->id, expected);
    EXPECT_TRUE(IsPayload(r->id, std::span(buf).first(r->size), kMin, kMax))
        << "message " << r->id << " of " << r->size << " bytes is not whole";
    expected = r->id + 1;
    EXPECT_TRUE(consumer.Ack(r->id).ok());
    return true;
  };

  std::mt19937 rng(7);
  std::uniform_int_distribution<int> pause_us(0, 1500);
  int mid_write = 0;
  for (int kill = 0; kill < kKills && !HasFailure(); ++kill) {
    auto fds = files.ProducerFds();
    ASSERT_TRUE(fds.ok());
    Child producer =
        Child::Start([&] { return ProducerMain(std::move(*fds), kMin, kMax, ~std::uint64_t{0}); });
    fds = ChannelResult<EndFds>(EndFds{});
    // Let it get going (attached and streaming), then kill it at a random moment.
    const std::uint64_t before = expected;
    auto patience = std::chrono::steady_clock::now() + testing::kPatience;
    while (expected == before && std::chrono::steady_clock::now() < patience) consume(1ms);
    ASSERT_GT(expected, before) << "the producer sent nothing";
    auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(pause_us(rng));
    while (std::chrono::steady_clock::now() < until && !HasFailure()) consume(100us);
    int status = producer.Kill();
    ASSERT_TRUE(WIFSIGNALED(status)) << "the producer ended by itself: " << DescribeStatus(status);

    // A slot already stamped with the next id, unpublished: the kill landed
    // between the start of a write and its commit.
    auto stats = files.Stats();
    ASSERT_TRUE(stats.ok()) << stats.error().Describe();
    std::uint64_t slot_id = 0;
    int fd = ::open((dir.Channel() + "/producer.region").c_str(), O_RDONLY);
    ASSERT_EQ(::pread(fd, &slot_id, 8, static_cast<off_t>(SlotOffset(g, stats->next_id))), 8);
    ::close(fd);
    if (slot_id == stats->next_id) ++mid_write;

    while (consume(0s)) {
    }
  }
  EXPECT_GT(expected, static_cast<std::uint64_t>(kKills));
  std::printf("%d of %d kills landed inside a write; %llu whole messages received\n", mid_write,
              kKills, static_cast<unsigned long long>(expected - 1));
}

// Receives and checks each message and reports its id to the test (one
// atomic 8-byte pipe write) before acking, in batches of up to 64. So a
// kill between report and ack shows up as a redelivery. Returns 0 once
// `last` is acked.
int ConsumerMain(EndFds fds, int report, std::size_t min_size, std::size_t max_size,
                 std::uint64_t last) {
  auto c = Consumer::Attach(std::move(fds));
  if (!c) {
    (void)std::fprintf(stderr, "consumer attach: %s\n", c.error().Describe().c_str());
    return 20;
  }
  std::vector<std::byte> buf(max_size);
  std::uint64_t unacked = 0;
  std::uint64_t newest = 0;
  for (;;) {
    auto r = c->Receive(buf, unacked == 0 ? std::chrono::nanoseconds(1s) : 0ns);
    if (r) {
      if (!IsPayload(r->id, std::span(buf).first(r->size), min_size, max_size)) return 21;
      testing::WriteAllOrDie(report, std::as_bytes(std::span(&r->id, 1)));
      newest = r->id;
      if (++unacked < 64 && newest != last) continue;
    } else if (r.error().code != Errc::kTimeout) {
      (void)std::fprintf(stderr, "receive: %s\n", r.error().Describe().c_str());
      return 22;
    }
    if (unacked == 0) continue;
    if (!c->Ack(newest)) return 23;
    if (newest == last) return 0;
    unacked = 0;
  }
}

// What the test has seen of the stream, across consumer incarnations.
class StreamCheck {
 public:
  void NewIncarnation() { next_ = 0; }
  // Within an incarnation, ids come in order with no gap; a new incarnation
  // may go back (redelivery), never beyond what was seen + 1.
  void Saw(std::uint64_t id) {
    if (next_ == 0) {
      ASSERT_GE(id, 1u);
      ASSERT_LE(id, max_ + 1) << "gap: a new consumer began at " << id << " after " << max_;
    } else {
      ASSERT_EQ(id, next_) << "out of order";
    }
    next_ = id + 1;
    if (id <= max_) {
      ++duplicates_;
    } else {
      max_ = id;
    }
  }
  std::uint64_t max() const { return max_; }
  std::uint64_t duplicates() const { return duplicates_; }

 private:
  std::uint64_t next_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t duplicates_ = 0;
};

TEST(ChannelCrashTest, NumberedStreamSurvivesKillNineOfEitherEndAndTheRuntime) {
  constexpr std::uint64_t kTotal = 200'000;
  constexpr std::size_t kMin = 8;
  constexpr std::size_t kMax = 64;
  constexpr int kKills = 300;
  const ChannelGeometry g{256, kMax, 1000};
  TempDir dir;
  std::optional<ChannelFiles> files = MustCreate(dir.Channel(), g);

  // Kills happen when the stream passes these points, so they are spread
  // over it whatever the speed of the machine. The test hears of the
  // consumer's progress late (through a pipe), and the stream runs at
  // millions of messages a second: the last tenth is left without points,
  // so that the consumer is not done before its last kill.
  std::mt19937_64 rng(42);
  std::vector<std::uint64_t> points(kKills);
  for (auto& p : points) {
    p = std::uniform_int_distribution<std::uint64_t>(1, kTotal - kTotal / 10)(rng);
  }
  std::sort(points.begin(), points.end());

  auto start_producer = [&] {
    auto fds = files->ProducerFds();
    EXPECT_TRUE(fds.ok());
    Child c = Child::Start([&] { return ProducerMain(std::move(*fds), kMin, kMax, kTotal); });
    return c;
  };
  std::optional<Pipe> report;
  auto start_consumer = [&] {
    report.emplace();
    auto fds = files->ConsumerFds();
    EXPECT_TRUE(fds.ok());
    Child c = Child::Start([&] {
      report->read.Reset();
      return ConsumerMain(std::move(*fds), report->write.get(), kMin, kMax, kTotal);
    });
    report->write.Reset();
    EXPECT_EQ(::fcntl(report->read.get(), F_SETFL, O_NONBLOCK), 0);
    return c;
  };

  StreamCheck check;
  std::vector<std::byte> carry;
  // Reads what the consumer reported; at EOF drops a partial id (none expected).
  auto drain = [&](bool to_eof) {
    std::array<std::byte, 65536> buf{};
    for (;;) {
      if (to_eof) {
        pollfd p{report->read.get(), POLLIN, 0};
        ::poll(&p, 1, 1000);
      }
      ssize_t n = ::read(report->read.get(), buf.data(), buf.size());
      if (n <= 0) break;
      carry.insert(carry.end(), buf.begin(), buf.begin() + n);
      std::size_t whole = carry.size() / 8 * 8;
      for (std::size_t i = 0; i < whole; i += 8) {
        std::uint64_t id = 0;
        std::memcpy(&id, carry.data() + i, 8);
        check.Saw(id);
      }
      carry.erase(carry.begin(), carry.begin() + static_cast<std::ptrdiff_t>(whole));
    }
    if (to_eof) carry.clear();
  };

  Child producer = start_producer();
  Child consumer = start_consumer();
  check.NewIncarnation();
  bool producer_done = false;
  int kills[3] = {0, 0, 0};  // producer, consumer, runtime
  int in_flight_at_kill = 0;
  std::size_t next_point = 0;
  auto began = std::chrono::steady_clock::now();
  auto last_stats = began;
  for (;;) {
    ASSERT_LT(std::chrono::steady_clock::now() - began, 60s) << "stuck at " << check.max();
    pollfd p{report->read.get(), POLLIN, 0};
    ::poll(&p, 1, 1);
    drain(false);
    if (HasFatalFailure()) return;
    if (!producer_done) {
      if (auto status = producer.TryWait()) {
        ASSERT_EQ(DescribeStatus(*status), "exited 0");
        producer_done = true;
      }
    }
    if (auto status = consumer.TryWait()) {
      drain(true);
      ASSERT_EQ(DescribeStatus(*status), "exited 0");
      break;
    }
    if (next_point < points.size() && check.max() >= points[next_point]) {
      ++next_point;
      int victim = static_cast<int>(rng() % 3);
      if (victim == 0 && producer_done) victim = 1;
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
      ++kills[victim];
      if (victim == 0) {
        const int status = producer.Kill();
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
          producer_done = true;  // done just before the kill
        } else {
          ASSERT_TRUE(WIFSIGNALED(status)) << DescribeStatus(status);
          producer = start_producer();
        }
      } else if (victim == 1) {
        int status = consumer.Kill();
        drain(true);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) break;  // done just before the kill
        ASSERT_TRUE(WIFSIGNALED(status)) << DescribeStatus(status);
        auto charge = files->OnConsumerCrashed();
        ASSERT_TRUE(charge.ok()) << charge.error().Describe();
        ASSERT_FALSE(charge->dead_lettered);
        if (charge->in_flight) ++in_flight_at_kill;
        consumer = start_consumer();
        check.NewIncarnation();
      } else {
        // The runtime "restarts" while both ends keep running.
        files.reset();
        auto reopened = ChannelFiles::Open(dir.Channel(), g);
        ASSERT_TRUE(reopened.ok()) << reopened.error().Describe();
        files.emplace(std::move(*reopened));
      }
    }
    if (std::chrono::steady_clock::now() - last_stats > 20ms) {
      auto stats = files->Stats();  // never a false alarm while both ends run
      ASSERT_TRUE(stats.ok()) << stats.error().Describe();
      last_stats = std::chrono::steady_clock::now();
    }
  }
  EXPECT_EQ(check.max(), kTotal);
  auto stats = files->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->depth, 0u);
  EXPECT_EQ(stats->consumed, kTotal + 1);
  std::printf(
      "%llu messages in %.1f s; kill -9: %d producer, %d consumer (%d holding unacked "
      "messages), %d runtime; %llu deliveries were repeats, 0 lost, 0 out of order\n",
      static_cast<unsigned long long>(kTotal),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count(), kills[0],
      kills[1], in_flight_at_kill, kills[2], static_cast<unsigned long long>(check.duplicates()));
}

}  // namespace
}  // namespace slate::channel
