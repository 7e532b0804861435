// Feeds arbitrary bytes to channel recovery: the runtime's Open (and what it
// does afterwards: Stats, OnConsumerCrashed, the dead-letter queue) and the
// ends' Attach, Receive, Ack and Send, over region files whose contents come
// from the input. Nothing may crash, hang, leak or read out of bounds; every
// rejection must be an error with a reason.
//
// Input: byte 0 picks the channel's shape; byte 1 bit 0 picks the mode;
// the next 8 bytes steer the operations (buffer sizes, acks, requeue/purge).
//   patch mode: a real channel is created, a few messages are sent and
//     received, then the rest of the input is a list of patches
//     {file % 4, offset u16 (mod the file's size), length u8, bytes}.
//   raw mode: the rest is four files, each {length u16, bytes}, in the
//     order producer, consumer, runtime, dead-letters.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

#include "channel/channel_files.h"
#include "channel/consumer.h"
#include "channel/layout.h"
#include "channel/producer.h"
#include "platform/unique_fd.h"

namespace {

using namespace slate::channel;
using namespace std::chrono_literals;
using slate::platform::UniqueFd;

constexpr std::array<std::string_view, 4> kFiles = {kProducerFile, kConsumerFile, kRuntimeFile,
                                                    kDeadLetterFile};

class Input {
 public:
  explicit Input(std::span<const std::uint8_t> data) : data_(data) {}
  bool empty() const { return data_.empty(); }
  std::uint8_t Byte() {
    if (data_.empty()) return 0;
    std::uint8_t b = data_[0];
    data_ = data_.subspan(1);
    return b;
  }
  std::uint16_t U16() { return static_cast<std::uint16_t>(Byte() | Byte() << 8); }
  std::span<const std::uint8_t> Take(std::size_t n) {
    n = std::min(n, data_.size());
    auto out = data_.first(n);
    data_ = data_.subspan(n);
    return out;
  }

 private:
  std::span<const std::uint8_t> data_;
};

// One directory per fuzzing process, removed when libFuzzer exits.
std::string* g_scratch = nullptr;

const std::string& ScratchDir() {
  if (g_scratch == nullptr) {
    std::string tmpl = "/tmp/fuzz-channel-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    g_scratch = new std::string(tmpl);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(*g_scratch, ec);
      delete g_scratch;
    });
  }
  return *g_scratch;
}

// Every error must say what went wrong.
void Check(const ChannelError& e) {
  if (e.message.empty()) std::abort();
}

bool WriteFile(const std::string& path, std::span<const std::uint8_t> bytes) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  return fd.valid() &&
         ::write(fd.get(), bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
}

void Patch(const std::string& path, std::uint16_t at, std::span<const std::uint8_t> bytes) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  off_t size = fd.valid() ? ::lseek(fd.get(), 0, SEEK_END) : 0;
  if (size <= 0 || bytes.empty()) return;
  (void)::pwrite(fd.get(), bytes.data(), bytes.size(), static_cast<off_t>(at % size));
}

// The ends, attached with descriptors opened straight from the files (the
// runtime's Open may have refused the channel; the ends check for themselves).
EndFds FdsFor(const std::string& dir, std::string_view own, std::string_view peer) {
  auto open = [&](std::string_view file, int flags) {
    return UniqueFd(::open((dir + "/" + std::string(file)).c_str(), flags | O_CLOEXEC));
  };
  return EndFds{open(own, O_RDWR), open(peer, O_RDONLY), open(kRuntimeFile, O_RDONLY)};
}

void ExerciseEnds(const std::string& dir, Input& in) {
  std::array<std::byte, 256> buf{};
  {
    auto c = Consumer::Attach(FdsFor(dir, kConsumerFile, kProducerFile));
    if (!c) {
      Check(c.error());
    } else {
      (void)c->peer_epoch();
      for (int i = 0; i < 4; ++i) {
        auto r = c->Receive(std::span(buf).first(in.Byte()), 0s);
        if (!r) {
          Check(r.error());
          continue;
        }
        if (r->size > buf.size()) std::abort();
        if (auto st = c->Ack(r->id - (in.Byte() & 1)); !st) Check(st.error());
      }
    }
  }
  auto p = Producer::Attach(FdsFor(dir, kProducerFile, kConsumerFile));
  if (!p) {
    Check(p.error());
    return;
  }
  (void)p->peer_epoch();
  auto sent = p->Send(std::as_bytes(std::span(buf).first(in.Byte() % 96)), 0s);
  if (!sent) Check(sent.error());
}

void ExerciseRuntime(const std::string& dir, const ChannelGeometry& g, Input& in) {
  auto files = ChannelFiles::Open(dir, g);
  if (!files) {
    Check(files.error());
    return;
  }
  if (auto stats = files->Stats(); !stats) Check(stats.error());
  if (auto charge = files->OnConsumerCrashed(); !charge) Check(charge.error());
  if (auto json = files->dead_letters().ExportJsonLines(); !json) Check(json.error());
  auto ids = files->dead_letters().Ids();
  if (!ids.empty()) {
    if (in.Byte() & 1) {
      if (auto id = files->Requeue(ids.front()); !id) Check(id.error());
    } else if (auto st = files->Purge(ids.back()); !st) {
      Check(st.error());
    }
  }
  if (auto stats = files->Stats(); !stats) Check(stats.error());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(std::span(data, size));
  const std::uint8_t shape = in.Byte();
  const bool raw = (in.Byte() & 1) != 0;
  Input knobs(in.Take(8));  // buffer sizes and choices for the operations
  static constexpr std::array<std::uint64_t, 4> kMaxMessage = {0, 16, 64, 200};
  const ChannelGeometry g{1u + (shape & 7u), kMaxMessage[(shape >> 3) & 3u],
                          1u + ((shape >> 5) & 3u)};
  const std::string dir = ScratchDir() + "/ch";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);

  if (raw) {
    std::filesystem::create_directory(dir, ec);
    for (std::string_view file : kFiles) {
      if (!WriteFile(dir + "/" + std::string(file), in.Take(in.U16()))) std::abort();
    }
  } else {
    auto files = ChannelFiles::Create(dir, g);
    if (!files) std::abort();  // a valid geometry in a writable directory
    {
      auto pfds = files->ProducerFds();
      auto cfds = files->ConsumerFds();
      if (!pfds || !cfds) std::abort();
      auto p = Producer::Attach(std::move(*pfds));
      auto c = Consumer::Attach(std::move(*cfds));
      if (!p || !c) std::abort();
      std::array<std::byte, 256> buf{};
      for (int i = in.Byte() % 6; i > 0; --i) {
        (void)p->Send(std::span(buf).first(std::min<std::size_t>(in.Byte(), g.max_message)), 0s);
      }
      for (int i = in.Byte() % 4; i > 0; --i) (void)c->Receive(buf, 0s);
    }
    (void)files->OnConsumerCrashed();  // may dead-letter, giving the queue a record
    while (!in.empty()) {
      std::string path = dir + "/" + std::string(kFiles[in.Byte() % 4]);
      std::uint16_t at = in.U16();
      Patch(path, at, in.Take(in.Byte()));
    }
  }
  ExerciseRuntime(dir, g, knobs);
  ExerciseEnds(dir, knobs);
  return 0;
}
