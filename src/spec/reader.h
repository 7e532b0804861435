// Internal to src/spec: typed, position-aware reading of TOML tables.
//
// A TableReader reads one table against the schema implied by the keys asked
// of it. Every getter marks its key as known; Finish() then reports each key
// that nobody asked for, with a "did you mean" hint. Getters return nullopt
// both for an absent key (no message) and for a bad value (an error is
// recorded and the key marked bad), so a caller simply keeps its default.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "spec/diagnostics.h"
#include "spec/model.h"

namespace slate::spec::internal {

SourcePos PosOf(const toml::source_region& r);
std::string_view TypeName(toml::node_type t);

// Diagnostics, plus the position of every value read, keyed by its dotted
// path ("supervisor.main.children.1"), for checks that run after reading.
//
// A key whose value was reported as bad is marked, so that later checks can
// skip what depends on it: the model holds the default in its place, and
// checking the default would report errors the user did not make.
class Context {
 public:
  void Error(SourcePos at, std::string message);
  void Warning(SourcePos at, std::string message);
  void Record(const std::string& path, SourcePos at) { positions_[path] = at; }
  SourcePos At(const std::string& path) const;
  // Whether the key at `path` is in the file, with a good value or not.
  bool Given(const std::string& path) const { return positions_.contains(path); }

  void MarkBad(const std::string& path) { bad_.insert(path); }
  bool IsBad(const std::string& path) const { return bad_.contains(path); }

  std::vector<Diagnostic>& diagnostics() { return diagnostics_; }

 private:
  std::vector<Diagnostic> diagnostics_;
  std::map<std::string, SourcePos> positions_;
  std::set<std::string> bad_;
};

template <typename E>
using EnumNames = std::vector<std::pair<std::string_view, E>>;

class TableReader {
 public:
  TableReader(Context& ctx, const toml::table& table, std::string path);

  const std::string& path() const { return path_; }
  SourcePos pos() const { return PosOf(table_.source()); }

  // The raw node (marks the key as known).
  const toml::node* Get(std::string_view key);

  std::optional<std::string> String(std::string_view key);
  std::optional<bool> Bool(std::string_view key);
  std::optional<std::int64_t> Integer(std::string_view key, std::int64_t min, std::int64_t max);
  std::optional<double> Number(std::string_view key, double min, double max);
  // A duration string; "infinity" is accepted only when `allow_infinity`, and
  // then yields Duration::max().
  std::optional<Duration> DurationValue(std::string_view key, bool allow_zero,
                                        bool allow_infinity = false);
  std::optional<std::uint64_t> Size(std::string_view key);
  std::optional<std::vector<std::string>> StringList(std::string_view key, bool allow_empty);
  std::optional<std::map<std::string, std::string>> StringMap(std::string_view key);
  const toml::table* Table(std::string_view key);

  template <typename E>
  std::optional<E> Enum(std::string_view key, const EnumNames<E>& names, std::string_view what) {
    auto s = String(key);
    if (!s) return std::nullopt;
    std::vector<std::string> options;
    for (const auto& [n, v] : names) {
      if (n == *s) return v;
      options.emplace_back(n);
    }
    BadValue(key, fmt::format("unknown {} '{}' (expected {}){}", what, *s, Alternatives(options),
                              DidYouMean(*s, options)));
    return std::nullopt;
  }

  // Reports a bad value at the key's value and marks the key as bad.
  void BadValue(std::string_view key, std::string message);
  // Reports unknown keys. Call once, after every getter.
  void Finish();

  static std::string Alternatives(const std::vector<std::string>& options);

 private:
  const toml::node* Typed(std::string_view key, toml::node_type want, std::string_view what);
  // Reports `message` at `at` about the value of `key` and marks the key.
  void Bad(std::string_view key, SourcePos at, std::string message);
  std::string KeyPath(std::string_view key) const { return fmt::format("{}.{}", path_, key); }

  Context& ctx_;
  const toml::table& table_;
  std::string path_;
  std::vector<std::string> known_;
};

}  // namespace slate::spec::internal
