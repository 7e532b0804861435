// The links that go through the kernel or through src/channel; the floor is
// in floor_links.cc.
#include "channel/links.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel/channel_files.h"
#include "channel/consumer.h"
#include "channel/producer.h"
#include "common/bench_util.h"

namespace slate::bench {
namespace {

using channel::AttachOptions;
using channel::ChannelFiles;
using channel::Consumer;
using channel::EndFds;
using channel::Producer;

bool Fail(const char* what, const std::string& why) {
  std::fprintf(stderr, "%s: %s\n", what, why.c_str());
  return false;
}

bool FailErrno(const char* what) {
  return Fail(what, std::strerror(errno));
}

class ChannelLink final : public Link {
 public:
  ChannelLink(std::string dir, ChannelFiles files, EndFds producer_fds, EndFds consumer_fds,
              std::chrono::nanoseconds spin)
      : dir_(std::move(dir)),
        files_(std::move(files)),
        producer_fds_(std::move(producer_fds)),
        consumer_fds_(std::move(consumer_fds)),
        spin_(spin) {}

  ~ChannelLink() override {
    if (owner_ == ::getpid()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  bool BecomeSender() override {
    consumer_fds_ = EndFds{};
    auto p = Producer::Attach(std::move(producer_fds_), AttachOptions{spin_});
    if (!p) return Fail("channel: attach producer", p.error().Describe());
    producer_.emplace(std::move(*p));
    return true;
  }

  bool BecomeReceiver() override {
    producer_fds_ = EndFds{};
    auto c = Consumer::Attach(std::move(consumer_fds_), AttachOptions{spin_});
    if (!c) return Fail("channel: attach consumer", c.error().Describe());
    consumer_.emplace(std::move(*c));
    return true;
  }

  bool Send(std::span<const std::byte> message) override {
    auto id = producer_->Send(message, std::chrono::nanoseconds(-1));
    return id ? true : Fail("channel: send", id.error().Describe());
  }

  bool Receive(std::span<std::byte> buffer) override {
    auto r = consumer_->Receive(buffer, std::chrono::nanoseconds(-1));
    if (!r) return Fail("channel: receive", r.error().Describe());
    if (r->size != buffer.size()) return Fail("channel: receive", "a message of another size");
    auto acked = consumer_->Ack(r->id);
    return acked ? true : Fail("channel: ack", acked.error().Describe());
  }

 private:
  std::string dir_;  // ours (MakeTempDir); the channel is dir_/channel
  pid_t owner_ = ::getpid();
  ChannelFiles files_;
  EndFds producer_fds_;
  EndFds consumer_fds_;
  std::chrono::nanoseconds spin_;
  std::optional<Producer> producer_;
  std::optional<Consumer> consumer_;
};

// A pipe or a socket pair: fds_[0] is the receiving end, fds_[1] the sending
// one (a socket pair is symmetric; we use it one way).
class DescriptorLink final : public Link {
 public:
  DescriptorLink(int receiving, int sending, bool stream)
      : fds_{receiving, sending}, stream_(stream) {}
  ~DescriptorLink() override {
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
  }

  bool BecomeSender() override { return Keep(1); }
  bool BecomeReceiver() override { return Keep(0); }

  bool Send(std::span<const std::byte> message) override {
    std::size_t done = 0;
    while (done < message.size()) {
      ssize_t n = ::write(fds_[1], message.data() + done, message.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return FailErrno("write");
      done += static_cast<std::size_t>(n);
    }
    return true;
  }

  bool Receive(std::span<std::byte> buffer) override {
    std::size_t done = 0;
    while (done < buffer.size()) {
      ssize_t n = ::read(fds_[0], buffer.data() + done, buffer.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return FailErrno("read");
      if (n == 0) return Fail("read", "end of file");
      done += static_cast<std::size_t>(n);
      // A packet socket hands over a whole message per read, never a part.
      if (!stream_ && done != buffer.size()) return Fail("recv", "a message of another size");
    }
    return true;
  }

 private:
  bool Keep(int which) {
    int other = 1 - which;
    if (fds_[other] >= 0) ::close(fds_[other]);
    fds_[other] = -1;
    return true;
  }

  int fds_[2];
  bool stream_;
};

}  // namespace

std::unique_ptr<Link> MakeChannelLink(const LinkOptions& o) {
  std::string dir = MakeTempDir("slate-bench-channel", o.dir);
  if (dir.empty()) {
    Fail("channel", "cannot make a directory under " + o.dir);
    return nullptr;
  }
  auto fail = [&](const channel::ChannelError& e) -> std::unique_ptr<Link> {
    Fail("channel: create", e.Describe());
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return nullptr;
  };
  channel::ChannelGeometry g;
  g.capacity = o.capacity;
  g.max_message = o.message_size;
  auto files = ChannelFiles::Create(dir + "/channel", g);
  if (!files) return fail(files.error());
  auto producer_fds = files->ProducerFds();
  if (!producer_fds) return fail(producer_fds.error());
  auto consumer_fds = files->ConsumerFds();
  if (!consumer_fds) return fail(consumer_fds.error());
  return std::make_unique<ChannelLink>(dir, std::move(*files), std::move(*producer_fds),
                                       std::move(*consumer_fds), o.spin);
}

std::unique_ptr<Link> MakePipeLink(const LinkOptions&) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    FailErrno("pipe2");
    return nullptr;
  }
  return std::make_unique<DescriptorLink>(fds[0], fds[1], /*stream=*/true);
}

std::unique_ptr<Link> MakeSocketPairLink(const LinkOptions&) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    FailErrno("socketpair");
    return nullptr;
  }
  return std::make_unique<DescriptorLink>(fds[0], fds[1], /*stream=*/false);
}

}  // namespace slate::bench
