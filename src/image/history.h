// ImageHistory: what the image store remembers about one component's images,
// and its on-disk form, refs/NAME.json (docs/images.md).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "image/image_error.h"

namespace slate::image {

// Invariant: outside probation, `current` is known-good and `previous` is the
// known-good image before it; in probation, `current` is on trial and
// `previous` is the known-good image a revert goes back to. Every digest in
// a history names an object in the store (Prune keeps them).
struct ImageHistory {
  std::string current;
  std::optional<std::string> previous;
  // Set while `current` is in probation: when the update began (wall clock,
  // so that it means something after a reboot; millisecond precision on disk).
  std::optional<std::chrono::system_clock::time_point> probation_since;

  bool in_probation() const { return probation_since.has_value(); }
  friend bool operator==(const ImageHistory&, const ImageHistory&) = default;
};

namespace internal {

// One JSON object on one line:
//   {"current":"sha256-...","previous":"sha256-..."|null,"probation_since_ms":N|null}
// with N in milliseconds since the Unix epoch.
std::string EncodeHistory(const ImageHistory& history);

// kCorrupt, naming `path`, for anything that is not such an object with
// well-formed digests.
ImageResult<ImageHistory> DecodeHistory(std::string_view text, const std::string& path);

}  // namespace internal
}  // namespace slate::image
