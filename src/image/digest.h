// Digests: how the image store names an image by its content.
//
// A digest is "sha256-" followed by the 64 lowercase hex digits of the
// SHA-256 of the file's bytes, e.g. "sha256-9f86d0...0f00a08". It is also the
// object's file name under images/objects/, and what `slate status` and the
// event journal show as `image`.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "image/image_error.h"

struct evp_md_ctx_st;

namespace slate::image {

inline constexpr std::string_view kDigestPrefix = "sha256-";
inline constexpr std::size_t kDigestSize = kDigestPrefix.size() + 64;

// True if `digest` has the form above. Every ImageStore operation that takes
// a digest checks it (kInvalidArgument), so a digest never escapes the
// objects directory as a path.
bool IsDigest(std::string_view digest);

namespace internal {

// Incremental SHA-256 by OpenSSL's libcrypto (the EVP interface). A
// well-kept, widely reviewed library with hardware-accelerated code paths
// (SHA-NI, AVX2) does this better than code of our own would; this class only
// adapts it to our error type. Move-only; not thread-safe.
class Sha256 {
 public:
  Sha256();
  Sha256(Sha256&&) noexcept = default;
  Sha256& operator=(Sha256&&) noexcept = default;
  ~Sha256();

  void Update(std::span<const char> bytes);
  // The digest of everything passed to Update, in the form above. Fails
  // (kIo) only if libcrypto did, e.g. out of memory. Call once.
  ImageResult<std::string> Finish();

 private:
  struct Free {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, Free> ctx_;
  bool failed_ = false;
};

}  // namespace internal
}  // namespace slate::image
