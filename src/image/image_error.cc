#include "image/image_error.h"

#include <cerrno>

#include "platform/status.h"

namespace slate::image {

std::string_view ToString(ImageErrc code) {
  switch (code) {
    case ImageErrc::kNotFound: return "not_found";
    case ImageErrc::kCorrupt: return "corrupt";
    case ImageErrc::kInvalidArgument: return "invalid_argument";
    case ImageErrc::kBusy: return "busy";
    case ImageErrc::kIo: return "io";
  }
  return "unknown";
}

ImageError ErrnoImageError(std::string_view what, int err) {
  const ImageErrc code = err == ENOENT ? ImageErrc::kNotFound : ImageErrc::kIo;
  return ImageError{code, platform::ErrnoError(what, err).message, err};
}

}  // namespace slate::image
