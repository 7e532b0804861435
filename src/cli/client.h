// What the client verbs share (client.cc), for those in files of their own
// (chaos.cc).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "cli/verbs.h"

namespace slate::cli {

// --state-dir, else $SLATE_STATE_DIR, else ".slate".
std::string StateDir(const Options& o);
// Its control socket.
std::string SocketPath(const Options& o);
// One frame of `slate top`: the tree of a status reply and the last `events`
// lines of the journal at `journal`.
std::string TopFrame(const nlohmann::json& status, const std::string& journal, int events);

}  // namespace slate::cli
