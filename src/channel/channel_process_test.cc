// Channels between real processes: blocking and waking, crashes of either
// end at random moments, poison messages, and the kernel's protection. This
// process plays the runtime; ends are forked children holding descriptors
// from ChannelFiles, as components will.
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "channel/channel_files.h"
#include "channel/consumer.h"
#include "channel/producer.h"
#include "channel/test_util.h"
#include "platform/clock.h"

namespace slate::channel {
namespace {

using namespace std::chrono_literals;
using testing::AsBytes;
using testing::AsString;
using testing::Child;
using testing::DescribeStatus;
using testing::MustAttachProducer;
using testing::MustCreate;
using testing::Pipe;
using testing::ReadValues;
using testing::TempDir;
using testing::WriteAllOrDie;

template <typename T>
void Report(int fd, T value) {
  WriteAllOrDie(fd, std::as_bytes(std::span(&value, 1)));
}

char ProcessState(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return 0;
  char buf[512] = {};
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  (void)std::fclose(f);
  std::string stat(buf, n);
  auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() ? stat[paren + 2] : '\0';
}

double CpuMillis(const rusage& u) {
  auto ms = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3;
  };
  return ms(u.ru_utime) + ms(u.ru_stime);
}

TEST(ChannelProcessTest, BlockingReceiveSleepsInTheKernel) {
  TempDir dir;
  ChannelFiles files = MustCreate(dir.Channel(), {4, 64, 3});
  auto fds = files.ConsumerFds();
  ASSERT_TRUE(fds.ok());
  Child child = Child::Start([&] {
    auto c = Consumer::Attach(std::move(*fds));
    if (!c) return 10;
    std::array<std::byte, 64> buf{};
    auto r = c->Receive(buf, 400ms);
    return !r && r.error().code == Errc::kTimeout ? 0 : 11;
  });
  fds = ChannelResult<EndFds>(EndFds{});  // the child holds them now
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(ProcessState(child.pid()), 'S');  // asleep in futex_wait, not running
  rusage usage{};
  auto status = child.Wait(testing::kPatience, &usage);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(DescribeStatus(*status), "exited 0");
  // 400 ms of waiting cost next to no CPU: it slept instead of polling.
  EXPECT_LT(CpuMillis(usage), 50.0);
  std::printf("blocked receive: %.2f ms of CPU over a 400 ms wait\n", CpuMillis(usage));
}

TEST(ChannelProcessTest, BlockingReceiveWakesOnSend) {
  constexpr int kRounds = 200;
  TempDir dir;
  ChannelFiles files = MustCreate(dir.Channel(), {4, 64, 3});
  Pipe report;
  auto fds = files.ConsumerFds();
  ASSERT_TRUE(fds.ok());
  Child child = Child::Start([&] {
    auto c = Consumer::Attach(std::move(*fds));
    if (!c) return 10;
    std::array<std::byte, 64> buf{};
    for (int i = 0; i < kRounds; ++i) {
      auto r = c->Receive(buf, 5s);
      std::int64_t sent = 0;
      if (!r || r->size != sizeof sent) return 11;
      std::memcpy(&sent, buf.data(), sizeof sent);
      Report(report.write.get(), platform::MonotonicNow().count() - sent);
      if (!c->Ack(r->id)) return 12;
    }
    return 0;
  });
  fds = ChannelResult<EndFds>(EndFds{});
  report.write.Reset();
  Producer p = MustAttachProducer(files);
  std::vector<std::int64_t> latencies;
  for (int i = 0; i < kRounds; ++i) {
    // Send only once the consumer announced its sleep and is asleep.
    auto deadline = std::chrono::steady_clock::now() + testing::kPatience;
    while (Load32(p.peer_region(), offset::kWantsData) == 0 || ProcessState(child.pid()) != 'S') {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the consumer never went to sleep";
      std::this_thread::sleep_for(50us);
    }
    std::int64_t now = platform::MonotonicNow().count();
    ASSERT_TRUE(p.Send(std::as_bytes(std::span(&now, 1)), 1s).ok());
    auto got = ReadValues<std::int64_t>(report.read.get(), 1);
    ASSERT_EQ(got.size(), 1u) << "no wake-up reported in round " << i;
    latencies.push_back(got[0]);
  }
  auto status = child.Wait();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(DescribeStatus(*status), "exited 0");
  std::sort(latencies.begin(), latencies.end());
  std::printf(
      "futex wake latency, send to receive return, %d rounds: median %.1f us, "
      "p90 %.1f us, max %.1f us\n",
      kRounds, static_cast<double>(latencies[kRounds / 2]) / 1e3,
      static_cast<double>(latencies[kRounds * 9 / 10]) / 1e3,
      static_cast<double>(latencies.back()) / 1e3);
}

TEST(ChannelProcessTest, ConsumerKilledBeforeAckGetsEverythingAgainInOrder) {
  TempDir dir;
  ChannelFiles files = MustCreate(dir.Channel(), {16, 64, 3});
  {
    Producer p = MustAttachProducer(files);
    for (int i = 1; i <= 10; ++i)
      ASSERT_TRUE(p.Send(AsBytes(std::string("m").append(std::to_string(i))), 0s).ok());
  }
  auto run_consumer = [&](int receive, bool ack_and_exit) {
    Pipe report;
    auto fds = files.ConsumerFds();
    EXPECT_TRUE(fds.ok());
    Child child = Child::Start([&] {
      auto c = Consumer::Attach(std::move(*fds));
      if (!c) return 10;
      std::array<std::byte, 64> buf{};
      for (int i = 0; i < receive; ++i) {
        auto r = c->Receive(buf, 1s);
        if (!r) return 11;
        if (AsString(std::span(buf).first(r->size)) !=
            std::string("m").append(std::to_string(r->id)))
          return 12;
        Report(report.write.get(), r->id);
      }
      if (!ack_and_exit) ::kill(::getpid(), SIGKILL);  // dies holding them
      return c->Ack(static_cast<std::uint64_t>(receive)) ? 0 : 13;
    });
    fds = ChannelResult<EndFds>(EndFds{});
    report.write.Reset();
    auto ids = ReadValues<std::uint64_t>(report.read.get(), static_cast<std::size_t>(receive));
    auto status = child.Wait();
    EXPECT_TRUE(status.has_value());
    return std::pair{ids, status.value_or(-1)};
  };

  auto [first, first_end] = run_consumer(5, false);
  EXPECT_EQ(first, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(DescribeStatus(first_end), "killed by signal 9");
  auto charge = files.OnConsumerCrashed();
  ASSERT_TRUE(charge.ok()) << charge.error().Describe();
  EXPECT_TRUE(charge->in_flight);
  EXPECT_EQ(charge->id, 1u);
  EXPECT_EQ(charge->deliveries, 1u);
  EXPECT_FALSE(charge->dead_lettered);

  auto [second, second_end] = run_consumer(10, true);
  EXPECT_EQ(second, (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(DescribeStatus(second_end), "exited 0");
  auto stats = files.Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->depth, 0u);
  EXPECT_EQ(stats->consumed, 11u);
  EXPECT_EQ(stats->consumer_epoch, 2u);
}

TEST(ChannelProcessTest, PoisonMessageReachesTheDeadLetterQueueAndTheStreamGoesOn) {
  TempDir dir;
  ChannelFiles files = MustCreate(dir.Channel(), {16, 64, 3});
  Producer producer = MustAttachProducer(files);
  for (int i = 1; i <= 10; ++i) {
    std::string m = i == 4 ? "poison" : std::string("m").append(std::to_string(i));
    ASSERT_TRUE(producer.Send(AsBytes(m), 0s).ok());
  }
  std::vector<std::uint64_t> processed;
  std::vector<CrashCharge> charges;
  for (int incarnation = 0; incarnation < 8 && processed.size() < 9; ++incarnation) {
    Pipe report;
    auto fds = files.ConsumerFds();
    ASSERT_TRUE(fds.ok());
    Child child = Child::Start([&] {
      auto c = Consumer::Attach(std::move(*fds));
      if (!c) return 10;
      std::array<std::byte, 64> buf{};
      for (;;) {
        auto r = c->Receive(buf, 1s);
        if (!r) return 11;
        if (AsString(std::span(buf).first(r->size)) == "poison") {
          ::kill(::getpid(), SIGKILL);  // the bug it triggers
        }
        Report(report.write.get(), r->id);
        if (!c->Ack(r->id)) return 12;
        if (r->id == 10) return 0;
      }
    });
    fds = ChannelResult<EndFds>(EndFds{});
    report.write.Reset();
    auto status = child.Wait();
    ASSERT_TRUE(status.has_value());
    auto ids = ReadValues<std::uint64_t>(report.read.get(), 16, 100ms);
    processed.insert(processed.end(), ids.begin(), ids.end());
    if (WIFSIGNALED(*status)) {
      auto charge = files.OnConsumerCrashed();
      ASSERT_TRUE(charge.ok()) << charge.error().Describe();
      charges.push_back(*charge);
    } else {
      EXPECT_EQ(DescribeStatus(*status), "exited 0");
    }
  }
  EXPECT_EQ(processed, (std::vector<std::uint64_t>{1, 2, 3, 5, 6, 7, 8, 9, 10}));
  ASSERT_EQ(charges.size(), 3u);
  for (std::uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(charges[i].id, 4u);
    EXPECT_EQ(charges[i].deliveries, i + 1);
    EXPECT_EQ(charges[i].dead_lettered, i == 2);
  }
  auto letter = files.dead_letters().Get(4);
  ASSERT_TRUE(letter.ok());
  EXPECT_EQ(AsString(letter->payload), "poison");
  EXPECT_EQ(letter->deliveries, 3u);
  auto json = files.dead_letters().ExportJsonLines();
  ASSERT_TRUE(json.ok());
  EXPECT_NE(json->find("\"id\":4,"), std::string::npos) << *json;
  EXPECT_NE(json->find("\"payload_base64\":\"cG9pc29u\""), std::string::npos) << *json;
  auto stats = files.Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->dead_letters, 1u);
  EXPECT_EQ(stats->depth, 0u);
  EXPECT_EQ(stats->in_flight, 0u);
  auto next = producer.Send(AsBytes("m11"), 0s);  // the stream goes on
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, 11u);
}

// A child that attaches as one end, then tries to write the other regions.
// The kernel must refuse: mprotect and a writable mmap fail with EACCES,
// and a store faults with SEGV_ACCERR (reported through `report`).
constexpr int kFaulted = 77;
int g_fault_report = -1;
const void* g_fault_expected = nullptr;

void OnFault(int, siginfo_t* info, void*) {
  int code = info->si_code;
  int at_target = info->si_addr == g_fault_expected ? 1 : 0;
  int both[2] = {code, at_target};
  (void)::write(g_fault_report, both, sizeof both);
  ::_exit(kFaulted);
}

int TryToWrite(const std::byte* region, int spare_ro_fd, int report_fd) {
  auto* page = const_cast<std::byte*>(region);
  if (::mprotect(page, 4096, PROT_READ | PROT_WRITE) == 0) return 20;
  if (errno != EACCES) return 21;
  void* m = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, spare_ro_fd, 0);
  if (m != MAP_FAILED) return 22;
  if (errno != EACCES) return 23;
  g_fault_report = report_fd;
  g_fault_expected = page + 64;
  struct sigaction sa {};
  sa.sa_sigaction = OnFault;
  sa.sa_flags = SA_SIGINFO;
  ::sigaction(SIGSEGV, &sa, nullptr);
  *reinterpret_cast<volatile std::uint64_t*>(page + 64) = 42;  // ack, write index or floor
  return 24;  // the write went through: no protection
}

TEST(ChannelProcessTest, WritingThePeersOrTheRuntimesRegionFaults) {
  TempDir dir;
  ChannelFiles files = MustCreate(dir.Channel(), {4, 64, 3});
  for (bool producer : {true, false}) {
    for (bool runtime_region : {false, true}) {
      SCOPED_TRACE(std::string(producer ? "producer" : "consumer") + " writes the " +
                   (runtime_region ? "runtime's" : "peer's") + " region");
      Pipe report;
      auto fds = producer ? files.ProducerFds() : files.ConsumerFds();
      auto spare = producer ? files.ProducerFds() : files.ConsumerFds();
      ASSERT_TRUE(fds.ok() && spare.ok());
      Child child = Child::Start([&] {
        int spare_fd = runtime_region ? spare->runtime.get() : spare->peer.get();
        if (producer) {
          auto p = Producer::Attach(std::move(*fds));
          if (!p) return 10;
          return TryToWrite(runtime_region ? p->runtime_region() : p->peer_region(), spare_fd,
                            report.write.get());
        }
        auto c = Consumer::Attach(std::move(*fds));
        if (!c) return 10;
        return TryToWrite(runtime_region ? c->runtime_region() : c->peer_region(), spare_fd,
                          report.write.get());
      });
      fds = ChannelResult<EndFds>(EndFds{});
      spare = ChannelResult<EndFds>(EndFds{});
      report.write.Reset();
      auto status = child.Wait();
      ASSERT_TRUE(status.has_value());
      ASSERT_EQ(DescribeStatus(*status), "exited " + std::to_string(kFaulted));
      auto fault = ReadValues<int>(report.read.get(), 2);
      ASSERT_EQ(fault.size(), 2u);
      EXPECT_EQ(fault[0], SEGV_ACCERR);  // a permission fault, not a missing page
      EXPECT_EQ(fault[1], 1) << "the fault was not at the written address";
    }
  }
  // Nothing reached the files.
  auto stats = files.Stats();
  ASSERT_TRUE(stats.ok()) << stats.error().Describe();
  EXPECT_EQ(stats->next_id, 1u);
  EXPECT_EQ(stats->consumed, 1u);
}

}  // namespace
}  // namespace slate::channel
