#include "image/history.h"

#include <cstdint>

#include <nlohmann/json.hpp>

#include "image/digest.h"

namespace slate::image::internal {

namespace {

using Millis = std::chrono::milliseconds;

ImageError Corrupt(const std::string& path, std::string_view why) {
  return MakeImageError(ImageErrc::kCorrupt, "image record " + path + ": " + std::string(why));
}

}  // namespace

std::string EncodeHistory(const ImageHistory& history) {
  nlohmann::json j = nlohmann::json::object();
  j["current"] = history.current;
  j["previous"] = history.previous ? nlohmann::json(*history.previous) : nlohmann::json(nullptr);
  if (history.probation_since) {
    const auto ms = std::chrono::duration_cast<Millis>(history.probation_since->time_since_epoch());
    j["probation_since_ms"] = static_cast<std::int64_t>(ms.count());
  } else {
    j["probation_since_ms"] = nullptr;
  }
  return j.dump() + "\n";
}

ImageResult<ImageHistory> DecodeHistory(std::string_view text, const std::string& path) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Corrupt(path, "not a JSON object");
  ImageHistory history;
  const auto current = j.find("current");
  if (current == j.end() || !current->is_string() || !IsDigest(current->get<std::string>())) {
    return Corrupt(path, "\"current\" is not a digest");
  }
  history.current = current->get<std::string>();
  const auto previous = j.find("previous");
  if (previous != j.end() && !previous->is_null()) {
    if (!previous->is_string() || !IsDigest(previous->get<std::string>())) {
      return Corrupt(path, "\"previous\" is neither a digest nor null");
    }
    history.previous = previous->get<std::string>();
  }
  const auto since = j.find("probation_since_ms");
  if (since != j.end() && !since->is_null()) {
    if (!since->is_number_integer()) {
      return Corrupt(path, "\"probation_since_ms\" is neither an integer nor null");
    }
    history.probation_since =
        std::chrono::system_clock::time_point(Millis(since->get<std::int64_t>()));
  }
  return history;
}

}  // namespace slate::image::internal
