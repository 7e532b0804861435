// Internal to src/spec: the checks that need the whole file read first —
// names, references, the shape of the supervision tree, and rules that tie
// one key to another.
#pragma once

#include "spec/model.h"
#include "spec/reader.h"

namespace slate::spec::internal {

void Validate(const System& sys, Context& ctx);

// [A-Za-z0-9][A-Za-z0-9_-]{0,63}: names become file names and socket paths.
bool IsValidName(std::string_view name);

}  // namespace slate::spec::internal
