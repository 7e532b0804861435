// Linux capability names as the system file writes them ("CAP_NET_ADMIN",
// or "net_admin", any case) and their numbers (the kernel's CAP_* values).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slate::spec {

// The number of a capability; nullopt for a name the kernel headers we were
// built with do not know.
std::optional<int> CapabilityNumber(std::string_view name);
// "CAP_NET_ADMIN" for 12; "" for a number without a name.
std::string CapabilityName(int number);
// Every known name, "CAP_CHOWN" first, for suggestions.
const std::vector<std::string>& CapabilityNames();

}  // namespace slate::spec
