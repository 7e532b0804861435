#include "image/digest.h"

#include <algorithm>

#include <openssl/evp.h>

namespace slate::image {

bool IsDigest(std::string_view digest) {
  if (digest.size() != kDigestSize || !digest.starts_with(kDigestPrefix)) return false;
  return std::all_of(digest.begin() + kDigestPrefix.size(), digest.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

namespace internal {

void Sha256::Free::operator()(evp_md_ctx_st* ctx) const {
  EVP_MD_CTX_free(ctx);
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  failed_ = !ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1;
}

Sha256::~Sha256() = default;

void Sha256::Update(std::span<const char> bytes) {
  if (failed_ || bytes.empty()) return;
  failed_ = EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()) != 1;
}

ImageResult<std::string> Sha256::Finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (failed_ || EVP_DigestFinal_ex(ctx_.get(), md, &size) != 1 || size != 32) {
    failed_ = true;
    return MakeImageError(ImageErrc::kIo, "sha256: libcrypto failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string digest(kDigestPrefix);
  for (unsigned int i = 0; i < size; ++i) {
    digest += kHex[md[i] >> 4];
    digest += kHex[md[i] & 0xf];
  }
  return digest;
}

}  // namespace internal
}  // namespace slate::image
