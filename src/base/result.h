// Result<T>: the value of an operation that can fail in an expected way, or
// the reason it failed. Modules return these instead of throwing (STYLE.md).
// A module whose callers must tell failures apart uses its own error type
// (with a code) as E: store::StoreResult, channel::ChannelResult.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace slate {

struct Error {
  std::string message;
};

template <typename T, typename E = Error>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(E error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // Precondition: ok().
  const T& value() const& { return std::get<0>(v_); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  // Precondition: !ok().
  const E& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, E> v_;
};

inline Error MakeError(std::string message) {
  return Error{std::move(message)};
}

}  // namespace slate
