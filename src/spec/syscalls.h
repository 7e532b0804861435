// System call names as `seccomp.allow` writes them: libseccomp's names
// ("futex", "clock_nanosleep"), so that what `slate check` accepts is what
// the runtime can put in a filter.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace slate::spec {

// Whether libseccomp knows the name, for any architecture (a call this one
// lacks is accepted here and left out of the filter).
bool IsSyscallName(std::string_view name);
// The names of this architecture's calls, for suggestions.
const std::vector<std::string>& SyscallNames();

}  // namespace slate::spec
