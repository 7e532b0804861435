// The channel calls of the C API: opening the granted ends, send, receive,
// ack, and request/reply on top of them.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <span>
#include <string>

#include <fmt/format.h>

#include "libslate/internal.h"

namespace slate::lib {
namespace {

std::mutex open_mutex;
std::atomic<unsigned> spin_us{static_cast<unsigned>(
    std::chrono::duration_cast<std::chrono::microseconds>(slate::channel::kDefaultSpin).count())};

channel::AttachOptions Options() {
  channel::AttachOptions o;
  o.spin = std::chrono::microseconds(spin_us.load(std::memory_order_relaxed));
  return o;
}

constexpr std::size_t kReplyHeader = 8;  // the request id, little-endian

std::chrono::nanoseconds Timeout(int timeout_ms) {
  if (timeout_ms < 0) return std::chrono::nanoseconds(-1);
  return std::chrono::milliseconds(timeout_ms);
}

// What remains of a timeout that started at `start`: negative stays forever.
std::chrono::nanoseconds Remaining(std::chrono::steady_clock::time_point start, int timeout_ms) {
  if (timeout_ms < 0) return std::chrono::nanoseconds(-1);
  auto left = std::chrono::milliseconds(timeout_ms) - (std::chrono::steady_clock::now() - start);
  return std::max(left, std::chrono::nanoseconds::zero());
}

std::string Granted(const Process& p, bool tx) {
  std::string out;
  for (const GrantedEnd& e : p.ends) {
    if (e.tx != tx) continue;
    if (!out.empty()) out += ", ";
    out += e.channel;
  }
  return out.empty() ? "none" : out;
}

// Finds the granted end and takes its descriptors; nullopt (with the error
// recorded) if there is none or it was opened already.
std::optional<channel::EndFds> TakeEnd(const char* name, bool tx, const char* fn) {
  Process* p = Attached();
  if (p == nullptr) {
    Fail(SLATE_ENOTINIT, fmt::format("{}: call slate_init first", fn));
    return std::nullopt;
  }
  if (name == nullptr) {
    Fail(SLATE_EINVAL, fmt::format("{}: channel name is NULL", fn));
    return std::nullopt;
  }
  std::lock_guard lock(open_mutex);
  for (GrantedEnd& e : p->ends) {
    if (e.tx != tx || e.channel != name) continue;
    if (e.opened) {
      Fail(SLATE_EBUSY, fmt::format("{}(\"{}\"): already open in this process", fn, name));
      return std::nullopt;
    }
    e.opened = true;
    return channel::EndFds{platform::UniqueFd(e.own), platform::UniqueFd(e.peer),
                           platform::UniqueFd(e.runtime)};
  }
  Fail(SLATE_ENOCHANNEL,
       fmt::format("{}(\"{}\"): the system file grants component {} no such end; it may {} on: {}",
                   fn, name, p->component, tx ? "send" : "receive", Granted(*p, tx)));
  return std::nullopt;
}

// A corrupt channel is a fault of whoever wrote the bad bytes; the runtime
// checks the files itself and deals with the culprit.
int Report(std::string_view what, const std::string& channel, const channel::ChannelError& e) {
  if (e.code == channel::Errc::kCorrupt) (void)Notify("SLATE_CORRUPT=" + channel);
  return FailChannel(fmt::format("{} on {}", what, channel), e);
}

}  // namespace

long Receive(slate_rx* rx, void* buf, std::size_t cap, std::uint64_t* msg_id,
             std::chrono::nanoseconds timeout) {
  if (rx == nullptr || (buf == nullptr && cap > 0)) {
    return Fail(SLATE_EINVAL, "slate_recv: NULL end or buffer");
  }
  auto got = rx->consumer.Receive(std::span(static_cast<std::byte*>(buf), cap), timeout);
  if (!got) return Report("slate_recv", rx->channel, got.error());
  if (msg_id != nullptr) *msg_id = got->id;
  return static_cast<long>(got->size);
}

}  // namespace slate::lib

using slate::lib::Fail;
using slate::lib::Report;

extern "C" {

slate_tx* slate_tx_open(const char* name) {
  auto fds = slate::lib::TakeEnd(name, true, "slate_tx_open");
  if (!fds) return nullptr;
  auto producer = slate::channel::Producer::Attach(std::move(*fds), slate::lib::Options());
  if (!producer) {
    (void)Report("slate_tx_open", name, producer.error());
    return nullptr;
  }
  auto* tx = new (std::nothrow)
      slate_tx{SlateEndKind::kTx, name, std::move(producer).value(), std::nullopt};
  if (tx == nullptr) Fail(SLATE_ESYSTEM, "slate_tx_open: out of memory");
  return tx;
}

slate_rx* slate_rx_open(const char* name) {
  auto fds = slate::lib::TakeEnd(name, false, "slate_rx_open");
  if (!fds) return nullptr;
  auto consumer = slate::channel::Consumer::Attach(std::move(*fds), slate::lib::Options());
  if (!consumer) {
    (void)Report("slate_rx_open", name, consumer.error());
    return nullptr;
  }
  auto* rx = new (std::nothrow) slate_rx{SlateEndKind::kRx, name, std::move(consumer).value(), {}};
  if (rx == nullptr) Fail(SLATE_ESYSTEM, "slate_rx_open: out of memory");
  return rx;
}

void slate_set_spin(unsigned microseconds) {
  slate::lib::spin_us.store(microseconds, std::memory_order_relaxed);
}

void slate_tx_close(slate_tx* tx) {
  delete tx;
}

void slate_rx_close(slate_rx* rx) {
  delete rx;
}

int slate_send_id(slate_tx* tx, const void* msg, size_t len, int timeout_ms, uint64_t* msg_id) {
  if (tx == nullptr || (msg == nullptr && len > 0)) {
    return Fail(SLATE_EINVAL, "slate_send: NULL end or message");
  }
  auto id = tx->producer.Send(std::span(static_cast<const std::byte*>(msg), len),
                              slate::lib::Timeout(timeout_ms));
  if (!id) return Report("slate_send", tx->channel, id.error());
  if (msg_id != nullptr) *msg_id = *id;
  return SLATE_OK;
}

int slate_send(slate_tx* tx, const void* msg, size_t len, int timeout_ms) {
  return slate_send_id(tx, msg, len, timeout_ms, nullptr);
}

long slate_recv(slate_rx* rx, void* buf, size_t cap, uint64_t* msg_id, int timeout_ms) {
  return slate::lib::Receive(rx, buf, cap, msg_id, slate::lib::Timeout(timeout_ms));
}

int slate_ack(slate_rx* rx, uint64_t msg_id) {
  if (rx == nullptr) return Fail(SLATE_EINVAL, "slate_ack: NULL end");
  auto st = rx->consumer.Ack(msg_id);
  if (!st) return Report("slate_ack", rx->channel, st.error());
  return SLATE_OK;
}

uint64_t slate_peer_epoch(const void* end) {
  if (end == nullptr) return 0;
  // Both structs start with their kind.
  SlateEndKind kind{};
  std::memcpy(&kind, end, sizeof kind);
  if (kind == SlateEndKind::kTx) return static_cast<const slate_tx*>(end)->producer.peer_epoch();
  if (kind == SlateEndKind::kRx) return static_cast<const slate_rx*>(end)->consumer.peer_epoch();
  return 0;
}

uint64_t slate_next_id(const slate_tx* tx) {
  return tx != nullptr ? tx->producer.next_id() : 0;
}

size_t slate_max_message(const void* end) {
  if (end == nullptr) return 0;
  SlateEndKind kind{};
  std::memcpy(&kind, end, sizeof kind);
  if (kind == SlateEndKind::kTx) {
    return static_cast<const slate_tx*>(end)->producer.shape().max_message;
  }
  if (kind == SlateEndKind::kRx) {
    return static_cast<const slate_rx*>(end)->consumer.shape().max_message;
  }
  return 0;
}

long slate_call(slate_tx* requests, slate_rx* replies, const void* req, size_t len, void* reply,
                size_t cap, int timeout_ms) {
  if (requests == nullptr || replies == nullptr || (req == nullptr && len > 0) ||
      (reply == nullptr && cap > 0)) {
    return Fail(SLATE_EINVAL, "slate_call: NULL end or buffer");
  }
  if (requests->producer.ConsumerDown() || replies->consumer.ProducerDown()) {
    return Fail(SLATE_EPEERDOWN,
                fmt::format("slate_call on {}: the server is down", requests->channel));
  }
  const auto start = std::chrono::steady_clock::now();
  auto id = requests->producer.Send(std::span(static_cast<const std::byte*>(req), len),
                                    slate::lib::Remaining(start, timeout_ms));
  if (!id) return Report("slate_call", requests->channel, id.error());
  std::vector<std::byte>& buf = replies->scratch;
  buf.resize(replies->consumer.shape().max_message);
  for (;;) {
    auto got = replies->consumer.Receive(buf, slate::lib::Remaining(start, timeout_ms));
    if (!got) return Report("slate_call", replies->channel, got.error());
    if (auto st = replies->consumer.Ack(got->id); !st) {
      return Report("slate_call", replies->channel, st.error());
    }
    std::uint64_t answers = 0;
    if (got->size < slate::lib::kReplyHeader) continue;  // not a reply: skip it
    std::memcpy(&answers, buf.data(), sizeof answers);
    if (answers != *id) continue;  // a late or repeated reply to an earlier call
    const std::size_t body = got->size - slate::lib::kReplyHeader;
    if (body > cap) {
      return Fail(SLATE_EMSGSIZE, fmt::format("slate_call on {}: reply of {} bytes, buffer {}",
                                              requests->channel, body, cap));
    }
    if (body > 0) std::memcpy(reply, buf.data() + slate::lib::kReplyHeader, body);
    return static_cast<long>(body);
  }
}

long slate_serve(slate_rx* requests, slate_tx* replies, void* buf, size_t cap, uint64_t* req_id,
                 int timeout_ms) {
  if (requests == nullptr || replies == nullptr || (buf == nullptr && cap > 0)) {
    return Fail(SLATE_EINVAL, "slate_serve: NULL end or buffer");
  }
  if (!replies->answered) {
    // The newest reply on the channel says which request was answered last,
    // by this process's predecessor too.
    std::uint64_t answered = 0;
    const std::uint64_t last = replies->producer.next_id() - 1;
    std::byte header[slate::lib::kReplyHeader];
    if (last >= slate::channel::kFirstId) {
      auto n = replies->producer.ReadBack(last, header);
      if (n && *n >= sizeof header) std::memcpy(&answered, header, sizeof answered);
    }
    replies->answered = answered;
  }
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    std::uint64_t id = 0;
    long n = slate::lib::Receive(requests, buf, cap, &id, slate::lib::Remaining(start, timeout_ms));
    if (n < 0) return n;
    if (id <= *replies->answered) {
      // Answered by a predecessor that died before acking it.
      if (int rc = slate_ack(requests, id); rc != SLATE_OK) return rc;
      continue;
    }
    requests->served = id;
    if (req_id != nullptr) *req_id = id;
    return n;
  }
}

int slate_reply(slate_rx* requests, slate_tx* replies, uint64_t req_id, const void* msg, size_t len,
                int timeout_ms) {
  if (requests == nullptr || replies == nullptr || (msg == nullptr && len > 0)) {
    return Fail(SLATE_EINVAL, "slate_reply: NULL end or message");
  }
  if (req_id == 0 || req_id != requests->served) {
    return Fail(SLATE_EINVAL,
                fmt::format("slate_reply on {}: request {} is not the one slate_serve returned "
                            "last ({}); answer requests in order",
                            replies->channel, req_id, requests->served));
  }
  const std::size_t max = replies->producer.shape().max_message;
  if (len + slate::lib::kReplyHeader > max) {
    return Fail(SLATE_ETOOBIG,
                fmt::format("slate_reply on {}: {} bytes, at most {} fit", replies->channel, len,
                            max > slate::lib::kReplyHeader ? max - slate::lib::kReplyHeader : 0));
  }
  std::vector<std::byte> wire(slate::lib::kReplyHeader + len);
  std::memcpy(wire.data(), &req_id, sizeof req_id);
  if (len > 0) std::memcpy(wire.data() + slate::lib::kReplyHeader, msg, len);
  auto sent = replies->producer.Send(wire, slate::lib::Timeout(timeout_ms));
  if (!sent) return Report("slate_reply", replies->channel, sent.error());
  replies->answered = std::max(replies->answered.value_or(0), req_id);
  return slate_ack(requests, req_id);
}

}  // extern "C"
