// libslate's C++ API: RAII ends and Result types over the C ABI of
// <slate/slate.h>. The API throws no exceptions; every fallible call returns
// a slate::Result (check it with `if (r)`, then read r.value() or r.error():
// value() of a failed Result throws std::bad_variant_access, like any misuse
// of std::variant).
//
//   if (auto st = slate::Init(); !st) { std::fprintf(stderr, "%s\n", st.error().text.c_str());
//   return 1; } auto tx = slate::Tx::Open("samples"); if (!tx) ... tx->Send(bytes,
//   std::chrono::milliseconds(100));
//
// Tutorial and reference: docs/component-api.md.
#ifndef SLATE_SLATE_HPP_
#define SLATE_SLATE_HPP_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "slate/slate.h"

namespace slate {

// A failed call: its SLATE_E* code and slate_last_error()'s text.
struct Error {
  int code = SLATE_ESYSTEM;
  std::string text;

  // The error of the calling thread's last failing C call.
  static Error Last(int code) { return Error{code, slate_last_error()}; }
  std::string_view name() const { return slate_strerror(code); }
};

// A value or an Error; no exceptions. Result<void> carries no value.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }
  int code() const { return ok() ? SLATE_OK : error().code; }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error)
      : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }
  int code() const { return ok_ ? SLATE_OK : error_.code; }

 private:
  Error error_;
  bool ok_ = true;
};

namespace detail {
inline int Millis(std::chrono::milliseconds timeout) {
  if (timeout.count() < 0) return -1;
  if (timeout.count() > 0x7fffffff) return 0x7fffffff;
  return static_cast<int>(timeout.count());
}
inline Result<void> Status(int rc) {
  if (rc < 0) return Error::Last(rc);
  return {};
}
}  // namespace detail

// Waits forever when passed as a timeout.
inline constexpr std::chrono::milliseconds kForever{-1};

inline Result<void> Init() {
  return detail::Status(slate_init());
}
inline void Ready() {
  slate_ready();
}
inline void Heartbeat() {
  slate_heartbeat();
}
// Ends opened afterwards poll up to `spin` before sleeping (see slate.h).
inline void SetSpin(std::chrono::microseconds spin) {
  slate_set_spin(spin.count() <= 0 ? 0u : static_cast<unsigned>(spin.count()));
}
inline Result<void> AwaitActivation() {
  return detail::Status(slate_await_activation());
}
inline std::string_view Component() {
  const char* name = slate_component();
  return name != nullptr ? std::string_view(name) : std::string_view();
}

// A received message: its id (for Ack) and its length in the buffer.
struct Message {
  std::uint64_t id = 0;
  std::size_t size = 0;
};

// The producing end of a channel. Move-only; closes on destruction.
class Tx {
 public:
  static Result<Tx> Open(const std::string& channel) {
    slate_tx* tx = slate_tx_open(channel.c_str());
    if (tx == nullptr) return Error::Last(slate_last_error_code());
    return Tx(tx);
  }
  Tx(Tx&& o) noexcept : tx_(std::exchange(o.tx_, nullptr)) {}
  Tx& operator=(Tx&& o) noexcept {
    if (this != &o) {
      slate_tx_close(tx_);
      tx_ = std::exchange(o.tx_, nullptr);
    }
    return *this;
  }
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;
  ~Tx() { slate_tx_close(tx_); }

  // The message's id; kFull, kTooBig, kPeerDown as slate_send.
  Result<std::uint64_t> Send(std::span<const std::byte> message,
                             std::chrono::milliseconds timeout = kForever) {
    std::uint64_t id = 0;
    int rc = slate_send_id(tx_, message.data(), message.size(), detail::Millis(timeout), &id);
    if (rc < 0) return Error::Last(rc);
    return id;
  }
  Result<std::uint64_t> Send(std::string_view message,
                             std::chrono::milliseconds timeout = kForever) {
    return Send(std::as_bytes(std::span(message.data(), message.size())), timeout);
  }
  std::uint64_t PeerEpoch() const { return slate_peer_epoch(tx_); }
  std::size_t MaxMessage() const { return slate_max_message(tx_); }
  std::uint64_t NextId() const { return slate_next_id(tx_); }
  slate_tx* get() const { return tx_; }

 private:
  explicit Tx(slate_tx* tx) : tx_(tx) {}
  slate_tx* tx_;
};

// The consuming end of a channel. Move-only; closes on destruction.
class Rx {
 public:
  static Result<Rx> Open(const std::string& channel) {
    slate_rx* rx = slate_rx_open(channel.c_str());
    if (rx == nullptr) return Error::Last(slate_last_error_code());
    return Rx(rx);
  }
  Rx(Rx&& o) noexcept : rx_(std::exchange(o.rx_, nullptr)) {}
  Rx& operator=(Rx&& o) noexcept {
    if (this != &o) {
      slate_rx_close(rx_);
      rx_ = std::exchange(o.rx_, nullptr);
    }
    return *this;
  }
  Rx(const Rx&) = delete;
  Rx& operator=(const Rx&) = delete;
  ~Rx() { slate_rx_close(rx_); }

  // Copies the next message into `buffer`; kTimeout, kMsgSize, kPeerDown as slate_recv.
  Result<Message> Receive(std::span<std::byte> buffer,
                          std::chrono::milliseconds timeout = kForever) {
    std::uint64_t id = 0;
    long n = slate_recv(rx_, buffer.data(), buffer.size(), &id, detail::Millis(timeout));
    if (n < 0) return Error::Last(static_cast<int>(n));
    return Message{id, static_cast<std::size_t>(n)};
  }
  // `id` and every message before it are consumed.
  Result<void> Ack(std::uint64_t id) { return detail::Status(slate_ack(rx_, id)); }
  std::uint64_t PeerEpoch() const { return slate_peer_epoch(rx_); }
  std::size_t MaxMessage() const { return slate_max_message(rx_); }
  slate_rx* get() const { return rx_; }

 private:
  explicit Rx(slate_rx* rx) : rx_(rx) {}
  slate_rx* rx_;
};

// Request/reply, client side: a pair of ends to one server.
class Client {
 public:
  Client(Tx requests, Rx replies) : requests_(std::move(requests)), replies_(std::move(replies)) {}
  static Result<Client> Open(const std::string& requests, const std::string& replies) {
    auto tx = Tx::Open(requests);
    if (!tx) return tx.error();
    auto rx = Rx::Open(replies);
    if (!rx) return rx.error();
    return Client(std::move(tx).value(), std::move(rx).value());
  }
  // The reply's length in `reply`; kPeerDown at once when the server is down.
  Result<std::size_t> Call(std::span<const std::byte> request, std::span<std::byte> reply,
                           std::chrono::milliseconds timeout) {
    long n = slate_call(requests_.get(), replies_.get(), request.data(), request.size(),
                        reply.data(), reply.size(), detail::Millis(timeout));
    if (n < 0) return Error::Last(static_cast<int>(n));
    return static_cast<std::size_t>(n);
  }

 private:
  Tx requests_;
  Rx replies_;
};

// Request/reply, server side.
class Server {
 public:
  Server(Rx requests, Tx replies) : requests_(std::move(requests)), replies_(std::move(replies)) {}
  static Result<Server> Open(const std::string& requests, const std::string& replies) {
    auto rx = Rx::Open(requests);
    if (!rx) return rx.error();
    auto tx = Tx::Open(replies);
    if (!tx) return tx.error();
    return Server(std::move(rx).value(), std::move(tx).value());
  }
  // The next request not yet answered (by this process or a predecessor).
  Result<Message> Next(std::span<std::byte> buffer, std::chrono::milliseconds timeout = kForever) {
    std::uint64_t id = 0;
    long n = slate_serve(requests_.get(), replies_.get(), buffer.data(), buffer.size(), &id,
                         detail::Millis(timeout));
    if (n < 0) return Error::Last(static_cast<int>(n));
    return Message{id, static_cast<std::size_t>(n)};
  }
  // Answers request `id` and acks it.
  Result<void> Reply(std::uint64_t id, std::span<const std::byte> reply,
                     std::chrono::milliseconds timeout = kForever) {
    return detail::Status(slate_reply(requests_.get(), replies_.get(), id, reply.data(),
                                      reply.size(), detail::Millis(timeout)));
  }

 private:
  Rx requests_;
  Tx replies_;
};

// The component's state store (see slate.h). Each call of State is its own
// transaction; Txn groups changes that commit together.
class State {
 public:
  static Result<void> Put(std::string_view key, std::string_view value) {
    return detail::Status(slate_state_put(std::string(key).c_str(), value.data(), value.size()));
  }
  // The value, or an Error with code SLATE_ENOTFOUND.
  static Result<std::string> Get(std::string_view key) {
    std::string k(key);
    std::string value(64, '\0');
    for (;;) {
      long n = slate_state_get(k.c_str(), value.data(), value.size());
      if (n < 0) return Error::Last(static_cast<int>(n));
      if (static_cast<std::size_t>(n) <= value.size()) {
        value.resize(static_cast<std::size_t>(n));
        return value;
      }
      value.resize(static_cast<std::size_t>(n));  // it grew meanwhile: read again
    }
  }
  static Result<void> Del(std::string_view key) {
    return detail::Status(slate_state_del(std::string(key).c_str()));
  }
  // Calls visit(key, value) for each key with `prefix`, in key order, on one
  // snapshot; visit returns false to stop.
  template <typename Visit>
  static Result<void> ForEach(std::string_view prefix, Visit visit) {
    auto trampoline = [](const char* k, std::size_t kl, const void* v, std::size_t vl,
                         void* arg) -> int {
      Visit& f = *static_cast<Visit*>(arg);
      return f(std::string_view(k, kl), std::string_view(static_cast<const char*>(v), vl)) ? 0 : 1;
    };
    return detail::Status(slate_state_foreach(std::string(prefix).c_str(), trampoline, &visit));
  }
};

// A write transaction; aborted on destruction unless committed.
class Txn {
 public:
  static Result<Txn> Begin() {
    slate_txn* t = slate_txn_begin();
    if (t == nullptr) return Error{slate_last_error_code(), slate_last_error()};
    return Txn(t);
  }
  Txn(Txn&& o) noexcept : t_(std::exchange(o.t_, nullptr)) {}
  Txn& operator=(Txn&& o) noexcept {
    if (this != &o) {
      slate_txn_abort(t_);
      t_ = std::exchange(o.t_, nullptr);
    }
    return *this;
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn() { slate_txn_abort(t_); }

  Result<void> Put(std::string_view key, std::string_view value) {
    return detail::Status(slate_txn_put(t_, std::string(key).c_str(), value.data(), value.size()));
  }
  Result<std::string> Get(std::string_view key) {
    std::string k(key);
    std::string value(64, '\0');
    long n = slate_txn_get(t_, k.c_str(), value.data(), value.size());
    if (n < 0) return Error::Last(static_cast<int>(n));
    if (static_cast<std::size_t>(n) > value.size()) {
      value.resize(static_cast<std::size_t>(n));
      n = slate_txn_get(t_, k.c_str(), value.data(), value.size());
      if (n < 0) return Error::Last(static_cast<int>(n));
    }
    value.resize(static_cast<std::size_t>(n));
    return value;
  }
  Result<void> Del(std::string_view key) {
    return detail::Status(slate_txn_del(t_, std::string(key).c_str()));
  }
  // Ends the transaction either way.
  Result<void> Commit() { return detail::Status(slate_txn_commit(std::exchange(t_, nullptr))); }
  void Abort() { slate_txn_abort(std::exchange(t_, nullptr)); }

 private:
  explicit Txn(slate_txn* t) : t_(t) {}
  slate_txn* t_;
};

}  // namespace slate

#endif  // SLATE_SLATE_HPP_
