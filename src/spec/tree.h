// A drawing of a validated system for `slate check`: the supervision tree
// with each node's strategy, intensity and restart type, then the channels
// and devices.
#pragma once

#include <string>

#include "spec/model.h"

namespace slate::spec {

std::string RenderTree(const System& sys);

}  // namespace slate::spec
