// Internal: CRC-32C (Castagnoli), the checksum of dead-letter records.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace slate::channel::internal {

// Extends `crc` (0 to start) over `data`; Crc32c(Crc32c(0, a), b) is the
// checksum of a followed by b.
std::uint32_t Crc32c(std::uint32_t crc, std::span<const std::byte> data);

}  // namespace slate::channel::internal
