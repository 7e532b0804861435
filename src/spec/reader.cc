#include "spec/reader.h"

#include <algorithm>
#include <cmath>

#include "spec/units.h"

namespace slate::spec::internal {

SourcePos PosOf(const toml::source_region& r) {
  return SourcePos{static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
}

std::string_view TypeName(toml::node_type t) {
  switch (t) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

void Context::Error(SourcePos at, std::string message) {
  diagnostics_.push_back({Severity::kError, at.line, at.column, std::move(message)});
}

void Context::Warning(SourcePos at, std::string message) {
  diagnostics_.push_back({Severity::kWarning, at.line, at.column, std::move(message)});
}

SourcePos Context::At(const std::string& path) const {
  auto it = positions_.find(path);
  return it == positions_.end() ? SourcePos{} : it->second;
}

TableReader::TableReader(Context& ctx, const toml::table& table, std::string path)
    : ctx_(ctx), table_(table), path_(std::move(path)) {}

const toml::node* TableReader::Get(std::string_view key) {
  known_.emplace_back(key);
  const toml::node* n = table_.get(key);
  if (n != nullptr) ctx_.Record(KeyPath(key), PosOf(n->source()));
  return n;
}

const toml::node* TableReader::Typed(std::string_view key, toml::node_type want,
                                     std::string_view what) {
  const toml::node* n = Get(key);
  if (n == nullptr) return nullptr;
  if (n->type() != want) {
    Bad(key, PosOf(n->source()),
        fmt::format("{}: expected {}, got {}", KeyPath(key), what, TypeName(n->type())));
    return nullptr;
  }
  return n;
}

void TableReader::Bad(std::string_view key, SourcePos at, std::string message) {
  ctx_.Error(at, std::move(message));
  ctx_.MarkBad(KeyPath(key));
}

void TableReader::BadValue(std::string_view key, std::string message) {
  Bad(key, ctx_.At(KeyPath(key)), fmt::format("{}: {}", KeyPath(key), message));
}

std::optional<std::string> TableReader::String(std::string_view key) {
  const toml::node* n = Typed(key, toml::node_type::string, "a string");
  if (n == nullptr) return std::nullopt;
  return std::string(n->as_string()->get());
}

std::optional<bool> TableReader::Bool(std::string_view key) {
  const toml::node* n = Typed(key, toml::node_type::boolean, "true or false");
  if (n == nullptr) return std::nullopt;
  return n->as_boolean()->get();
}

std::optional<std::int64_t> TableReader::Integer(std::string_view key, std::int64_t min,
                                                 std::int64_t max) {
  const toml::node* n = Typed(key, toml::node_type::integer, "an integer");
  if (n == nullptr) return std::nullopt;
  std::int64_t v = n->as_integer()->get();
  if (v < min || v > max) {
    BadValue(key, fmt::format("must be between {} and {}, got {}", min, max, v));
    return std::nullopt;
  }
  return v;
}

std::optional<double> TableReader::Number(std::string_view key, double min, double max) {
  const toml::node* n = Get(key);
  if (n == nullptr) return std::nullopt;
  double v = 0;
  if (n->is_floating_point()) {
    v = n->as_floating_point()->get();
  } else if (n->is_integer()) {
    v = static_cast<double>(n->as_integer()->get());
  } else {
    Bad(key, PosOf(n->source()),
        fmt::format("{}: expected a number, got {}", KeyPath(key), TypeName(n->type())));
    return std::nullopt;
  }
  if (!std::isfinite(v) || v < min || v > max) {
    BadValue(key, fmt::format("must be between {} and {}, got {}", min, max, v));
    return std::nullopt;
  }
  return v;
}

std::optional<Duration> TableReader::DurationValue(std::string_view key, bool allow_zero,
                                                   bool allow_infinity) {
  const toml::node* n = Get(key);
  if (n == nullptr) return std::nullopt;
  if (!n->is_string()) {
    Bad(key, PosOf(n->source()),
        fmt::format("{}: expected a duration string with a unit, like \"250ms\", got {}",
                    KeyPath(key), TypeName(n->type())));
    return std::nullopt;
  }
  std::string_view text = n->as_string()->get();
  if (allow_infinity && text == "infinity") return Duration::max();
  auto d = ParseDuration(text);
  if (!d) {
    BadValue(key, d.error().message);
    return std::nullopt;
  }
  if (!allow_zero && d->count() == 0) {
    BadValue(key, "must be longer than zero");
    return std::nullopt;
  }
  return *d;
}

std::optional<std::uint64_t> TableReader::Size(std::string_view key) {
  const toml::node* n = Get(key);
  if (n == nullptr) return std::nullopt;
  if (n->is_integer()) {
    std::int64_t v = n->as_integer()->get();
    if (v <= 0) {
      BadValue(key, fmt::format("must be more than 0 bytes, got {}", v));
      return std::nullopt;
    }
    return static_cast<std::uint64_t>(v);
  }
  if (!n->is_string()) {
    Bad(key, PosOf(n->source()),
        fmt::format("{}: expected a size (bytes, or a string like \"4KiB\"), got {}", KeyPath(key),
                    TypeName(n->type())));
    return std::nullopt;
  }
  std::string_view text = n->as_string()->get();
  auto s = ParseSize(text);
  if (!s) {
    BadValue(key, s.error().message);
    return std::nullopt;
  }
  if (*s == 0) {
    BadValue(key, fmt::format("must be more than 0 bytes, got '{}'", text));
    return std::nullopt;
  }
  return *s;
}

std::optional<std::vector<std::string>> TableReader::StringList(std::string_view key,
                                                                bool allow_empty) {
  const toml::node* n = Typed(key, toml::node_type::array, "an array of strings");
  if (n == nullptr) return std::nullopt;
  const toml::array& a = *n->as_array();
  if (a.empty() && !allow_empty) {
    BadValue(key, "must not be empty");
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool good = true;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const toml::node& e = a[i];
    SourcePos at = PosOf(e.source());
    ctx_.Record(fmt::format("{}.{}", KeyPath(key), i), at);
    if (!e.is_string()) {
      Bad(key, at,
          fmt::format("{}[{}]: expected a string, got {}", KeyPath(key), i, TypeName(e.type())));
      good = false;
      continue;
    }
    out.emplace_back(e.as_string()->get());
  }
  if (!good) return std::nullopt;
  return out;
}

std::optional<std::map<std::string, std::string>> TableReader::StringMap(std::string_view key) {
  const toml::node* n = Typed(key, toml::node_type::table, "a table of strings");
  if (n == nullptr) return std::nullopt;
  // The entries that are strings; the others are reported.
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : *n->as_table()) {
    if (!v.is_string()) {
      Bad(key, PosOf(v.source()),
          fmt::format("{}.{}: expected a string, got {}", KeyPath(key), k.str(),
                      TypeName(v.type())));
      continue;
    }
    out.emplace(std::string(k.str()), std::string(v.as_string()->get()));
  }
  return out;
}

const toml::table* TableReader::Table(std::string_view key) {
  const toml::node* n = Typed(key, toml::node_type::table, "a table");
  return n == nullptr ? nullptr : n->as_table();
}

void TableReader::Finish() {
  for (const auto& [k, v] : table_) {
    if (std::find(known_.begin(), known_.end(), k.str()) != known_.end()) continue;
    ctx_.Error(PosOf(k.source()),
               fmt::format("{}: unknown key '{}'{}", path_, k.str(), DidYouMean(k.str(), known_)));
  }
}

std::string TableReader::Alternatives(const std::vector<std::string>& options) {
  std::string out;
  for (std::size_t i = 0; i < options.size(); ++i) {
    if (i > 0) out += i + 1 == options.size() ? " or " : ", ";
    out += options[i];
  }
  return out;
}

}  // namespace slate::spec::internal
