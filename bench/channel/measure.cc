#include "channel/measure.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "channel/end.h"
#include "channel/links.h"
#include "common/bench_util.h"

namespace slate::bench {
namespace {

constexpr int kEndTimeoutMs = 60000;  // one measurement, at most

std::unique_ptr<Link> MakeLink(const Options& o, const Contender& c, std::size_t size) {
  LinkOptions lo{size, o.capacity, c.spin, o.dir};
  switch (c.kind) {
    case Kind::kFloorFlag: return MakeFloorFlagLink(lo);
    case Kind::kFloorRing: return MakeFloorRingLink(lo);
    case Kind::kChannel: return MakeChannelLink(lo);
    case Kind::kPipe: return MakePipeLink(lo);
    case Kind::kSocketPair: return MakeSocketPairLink(lo);
  }
  return nullptr;
}

// A MAP_SHARED anonymous array made before fork: how an end hands its
// numbers back to the driver.
template <typename T>
class SharedArray {
 public:
  explicit SharedArray(std::size_t n) : n_(std::max<std::size_t>(n, 1)) {
    void* p =
        ::mmap(nullptr, n_ * sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::perror("mmap");
      std::abort();  // a benchmark without memory has nothing to say
    }
    data_ = static_cast<T*>(p);
    for (std::size_t i = 0; i < n_; ++i) new (data_ + i) T{};
  }
  SharedArray(const SharedArray&) = delete;
  SharedArray& operator=(const SharedArray&) = delete;
  ~SharedArray() { ::munmap(data_, n_ * sizeof(T)); }
  T& operator[](std::size_t i) { return data_[i]; }
  T* data() { return data_; }

 private:
  std::size_t n_;
  T* data_ = nullptr;
};

EndReport Usage() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto ns = [](const timeval& t) {
    return std::int64_t{t.tv_sec} * 1'000'000'000 + t.tv_usec * 1000;
  };
  EndReport r;
  r.voluntary_cs = u.ru_nvcsw;
  r.involuntary_cs = u.ru_nivcsw;
  r.cpu_ns = ns(u.ru_utime) + ns(u.ru_stime);
  return r;
}

void Since(const EndReport& before, EndReport& out) {
  EndReport now = Usage();
  out.voluntary_cs = now.voluntary_cs - before.voluntary_cs;
  out.involuntary_cs = now.involuntary_cs - before.involuntary_cs;
  out.cpu_ns = now.cpu_ns - before.cpu_ns;
}

pid_t StartEnd(int cpu, const std::function<bool()>& body) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<std::size_t>(cpu), &set);
    ::sched_setaffinity(0, sizeof(set), &set);
  }
  ::_exit(body() ? 0 : 1);
}

// The two end processes of one measurement and a pidfd for each; kills
// (SIGKILL) and reaps on destruction those not reaped yet.
class Ends {
 public:
  Ends(pid_t a, pid_t b) : pids_{a, b} {
    for (int i = 0; i < 2; ++i) {
      int fd = pids_[i] > 0 ? static_cast<int>(::syscall(SYS_pidfd_open, pids_[i], 0)) : -1;
      fds_[i] = {fd, POLLIN, 0};
    }
  }
  Ends(const Ends&) = delete;
  Ends& operator=(const Ends&) = delete;
  ~Ends() {
    for (int i = 0; i < 2; ++i) {
      if (pids_[i] > 0) {
        ::kill(pids_[i], SIGKILL);
        Reap(i);
      }
    }
  }

  bool ok() const { return fds_[0].fd >= 0 && fds_[1].fd >= 0; }

  // Waits until both have exited, one of them has failed, or the deadline;
  // "" if both exited 0.
  std::string Wait(std::int64_t deadline_ns) {
    while (pids_[0] > 0 || pids_[1] > 0) {
      std::int64_t ms = (deadline_ns - MonoNs()) / 1'000'000;
      if (ms <= 0) return fmt::format("not done within {} s", kEndTimeoutMs / 1000);
      if (::poll(fds_, 2, static_cast<int>(ms)) < 0 && errno != EINTR) return "poll failed";
      for (int i = 0; i < 2; ++i) {
        if (pids_[i] <= 0 || (fds_[i].revents & POLLIN) == 0) continue;
        int status = Reap(i);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          return fmt::format("the {} end failed (wait status {})", i == 0 ? "first" : "second",
                             status);
        }
      }
    }
    return "";
  }

 private:
  int Reap(int i) {
    int status = 0;
    while (::waitpid(pids_[i], &status, 0) < 0 && errno == EINTR) {
    }
    pids_[i] = -1;
    if (fds_[i].fd >= 0) ::close(fds_[i].fd);
    fds_[i].fd = -1;  // poll ignores it from now on
    return status;
  }

  pid_t pids_[2];
  pollfd fds_[2];
};

// Runs `a` and `b` in two forked processes (on the first and second CPU of
// --cpus) and waits for both without polling: a pidfd each, one poll(2)
// with the deadline. On a failure or at the deadline both are killed. ""
// if both bodies returned true, else what went wrong.
std::string RunEnds(const Options& o, const std::function<bool()>& a,
                    const std::function<bool()>& b) {
  Ends ends(StartEnd(o.cpus.empty() ? -1 : o.cpus[0], a),
            StartEnd(o.cpus.empty() ? -1 : o.cpus[1], b));
  if (!ends.ok()) return "fork or pidfd_open failed";
  return ends.Wait(MonoNs() + std::int64_t{kEndTimeoutMs} * 1'000'000);
}

void Tag(std::vector<std::byte>& message, std::uint64_t tag) {
  std::memcpy(message.data(), &tag, sizeof tag);
}

std::uint64_t TagOf(const std::vector<std::byte>& message) {
  std::uint64_t tag = 0;
  std::memcpy(&tag, message.data(), sizeof tag);
  return tag;
}

}  // namespace

std::string Name(const Contender& c) {
  std::string spin =
      c.spin.count() == 0 ? "spin 0" : fmt::format("spin {} us", c.spin.count() / 1000);
  switch (c.kind) {
    case Kind::kFloorFlag: return fmt::format("floor: shm flag + futex, {}", spin);
    case Kind::kFloorRing: return fmt::format("floor: shm ring + futex, {}", spin);
    case Kind::kChannel:
      return fmt::format("Clean Slate channel, {}{}", spin,
                         c.spin == channel::kDefaultSpin ? " (default)" : "");
    case Kind::kPipe: return "pipe";
    case Kind::kSocketPair: return "Unix socketpair (SEQPACKET)";
  }
  return "?";
}

std::string KindName(Kind k) {
  switch (k) {
    case Kind::kFloorFlag: return "floor_flag";
    case Kind::kFloorRing: return "floor_ring";
    case Kind::kChannel: return "channel";
    case Kind::kPipe: return "pipe";
    case Kind::kSocketPair: return "socketpair";
  }
  return "?";
}

RoundTripRow MeasureRoundTrip(const Options& o, const Contender& c, std::size_t size) {
  RoundTripRow row{c, size, "ok", {}, {}, {}};
  auto ping = MakeLink(o, c, size);
  auto pong = MakeLink(o, c, size);
  if (!ping || !pong) {
    row.status = "failed: cannot make the links";
    return row;
  }
  const auto n = static_cast<std::size_t>(o.round_trips);
  const auto total = static_cast<std::uint64_t>(o.warmup + o.round_trips);
  SharedArray<double> samples(n);
  SharedArray<EndReport> reports(2);
  auto pinger = [&] {
    if (!ping->BecomeSender() || !pong->BecomeReceiver()) return false;
    std::vector<std::byte> out(size), in(size);
    EndReport before = Usage();
    for (std::uint64_t i = 0; i < total; ++i) {
      if (i == static_cast<std::uint64_t>(o.warmup)) before = Usage();
      Tag(out, i);
      std::int64_t start = MonoNs();
      if (!ping->Send(out) || !pong->Receive(in)) return false;
      std::int64_t end = MonoNs();
      if (TagOf(in) != i) {
        std::fprintf(stderr, "round trip %" PRIu64 ": the pong is another message\n", i);
        return false;
      }
      if (i >= static_cast<std::uint64_t>(o.warmup)) {
        samples[i - static_cast<std::uint64_t>(o.warmup)] = static_cast<double>(end - start);
      }
    }
    Since(before, reports[0]);
    return true;
  };
  auto echo = [&] {
    if (!ping->BecomeReceiver() || !pong->BecomeSender()) return false;
    std::vector<std::byte> buffer(size);
    EndReport before = Usage();
    for (std::uint64_t i = 0; i < total; ++i) {
      if (i == static_cast<std::uint64_t>(o.warmup)) before = Usage();
      if (!ping->Receive(buffer) || !pong->Send(buffer)) return false;
    }
    Since(before, reports[1]);
    return true;
  };
  if (std::string why = RunEnds(o, pinger, echo); !why.empty()) {
    row.status = "failed: " + why;
    return row;
  }
  row.samples_ns.assign(samples.data(), samples.data() + n);
  row.pinger = reports[0];
  row.echo = reports[1];
  return row;
}

std::optional<ThroughputRun> MeasureThroughput(const Options& o, const Contender& c,
                                               std::size_t size, std::string& why) {
  auto link = MakeLink(o, c, size);
  if (!link) {
    why = "cannot make the link";
    return std::nullopt;
  }
  const long n = o.Messages(size, c.kind);
  // The clock starts after one lap of the ring, whose pages a fresh link
  // has yet to fault in.
  const long skip = std::min(static_cast<long>(o.capacity), n / 10);
  SharedArray<EndReport> reports(2);
  auto sender = [&] {
    if (!link->BecomeSender()) return false;
    std::vector<std::byte> message(size);
    EndReport before = Usage();
    for (long i = 0; i < n; ++i) {
      Tag(message, static_cast<std::uint64_t>(i));
      if (!link->Send(message)) return false;
    }
    Since(before, reports[0]);
    return true;
  };
  auto receiver = [&] {
    if (!link->BecomeReceiver()) return false;
    std::vector<std::byte> buffer(size);
    EndReport before = Usage();
    for (long i = 0; i < n; ++i) {
      if (!link->Receive(buffer)) return false;
      if (i == skip) {
        reports[1].first_ns = MonoNs();
        before = Usage();
      }
      if (TagOf(buffer) != static_cast<std::uint64_t>(i)) {
        std::fprintf(stderr, "message %ld is another message\n", i);
        return false;
      }
    }
    reports[1].last_ns = MonoNs();
    EndReport timing = reports[1];
    Since(before, reports[1]);
    reports[1].first_ns = timing.first_ns;
    reports[1].last_ns = timing.last_ns;
    return true;
  };
  if (why = RunEnds(o, sender, receiver); !why.empty()) return std::nullopt;
  ThroughputRun run;
  run.sender = reports[0];
  run.receiver = reports[1];
  double elapsed = static_cast<double>(run.receiver.last_ns - run.receiver.first_ns);
  run.per_second = elapsed > 0 ? static_cast<double>(n - 1 - skip) * 1e9 / elapsed : 0;
  return run;
}

}  // namespace slate::bench
