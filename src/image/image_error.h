// ImageError and ImageResult<T>: what the image store returns instead of
// throwing. A code, because the runtime acts on it: kCorrupt during
// reinstall_image means the store's own copy is damaged too (the step fails
// and the ladder moves on), kNotFound from Revert means there is nothing to
// revert to (revert_image is skipped).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "base/result.h"

namespace slate::image {

enum class ImageErrc {
  kNotFound,         // no such object, source file or component record
  kCorrupt,          // an object whose content no longer matches its digest, an unreadable record
  kInvalidArgument,  // a malformed digest or component name, a source that is not a regular file
  kBusy,             // the store directory is open in another ImageStore (any process)
  kIo,               // the system said no: errno is in `sys_errno`
};

std::string_view ToString(ImageErrc code);

struct ImageError {
  ImageErrc code = ImageErrc::kIo;
  std::string message;  // "what: reason", naming the file, e.g. "open /s/images/refs/a.json: ..."
  int sys_errno = 0;    // the errno, when one was the cause

  // For callers that only report: the message, with the code's name prefixed.
  Error ToError() const { return MakeError(std::string(ToString(code)) + ": " + message); }
};

// [[nodiscard]] (from Result): an unchecked image error is an image the
// runtime believes it has and has not.
template <typename T>
using ImageResult = Result<T, ImageError>;

using ImageStatus = ImageResult<std::monostate>;

inline ImageStatus ImageOk() {
  return std::monostate{};
}

inline ImageError MakeImageError(ImageErrc code, std::string message) {
  return ImageError{code, std::move(message), 0};
}

// "what: strerror(err)", code kIo (kNotFound for ENOENT).
ImageError ErrnoImageError(std::string_view what, int err);

}  // namespace slate::image
