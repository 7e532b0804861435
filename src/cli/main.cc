// `slate`: the command line of SPEC section 7, a table of verbs.
#include <cstdio>

#include <fmt/format.h>

#include "cli/verbs.h"
#include "runtime/runtime.h"

namespace slate::cli {
namespace {

std::string Overview() {
  std::string out =
      "Clean Slate: supervision trees with OTP semantics for Linux processes.\n\n"
      "usage: slate VERB [ARGS]   (slate help VERB for details)\n\nverbs:\n";
  for (const Verb& v : Verbs()) {
    out += fmt::format("  {:<9} {}{}\n", v.name, v.summary,
                       v.arrives_with.empty() ? "" : " (not yet available)");
  }
  return out;
}

std::string VerbHelp(CLI::App& sub, const Verb& v) {
  // CLI11 starts with the bare description and "Usage: VERB"; name the
  // program as a user types it.
  std::string body = sub.help();
  body.erase(0, body.find('\n') + 1);
  std::string usage = fmt::format("Usage: {}", v.name);
  if (body.starts_with(usage))
    body.replace(0, usage.size(), fmt::format("usage: slate {}", v.name));
  std::string out = fmt::format("slate {}: {}\n{}", v.name, v.summary, body);
  out += fmt::format("\n{}\n", v.details);
  if (!v.arrives_with.empty()) {
    out +=
        fmt::format("\nNot available yet: arrives with {}. Running it exits 2.\n", v.arrives_with);
  }
  return out;
}

int Main(int argc, char** argv) {
  CLI::App app{"slate"};
  app.name("slate");
  app.set_help_flag();  // help is ours: the overview, or `help VERB`
  bool want_help = false;
  app.add_flag("--help,-h", want_help, "show the verbs");
  Options opts;

  std::vector<std::pair<CLI::App*, const Verb*>> subs;
  for (const Verb& v : Verbs()) {
    CLI::App* sub = app.add_subcommand(std::string(v.name), std::string(v.summary));
    // The root has no CLI11 help flag (above), so its verbs inherit none:
    // `slate VERB --help` is the same as `slate help VERB`.
    sub->set_help_flag("--help,-h", "show this verb's help");
    v.options(*sub, opts);
    subs.emplace_back(sub, &v);
  }

  // The runtime's own use of this program, not a verb (runtime.h).
  if (argc >= 2 && std::string_view(argv[1]) == runtime::kReadStoreCommand) {
    return runtime::ReadStoreMain(argc, argv);
  }

  // `slate help [VERB]` is ours, not CLI11's: VERB must not be parsed as
  // the verb itself.
  if (argc >= 2 && std::string_view(argv[1]) == "help") {
    if (argc == 2) {
      fmt::print("{}", Overview());
      return 0;
    }
    std::string_view topic = argv[2];
    for (auto& [sub, v] : subs) {
      if (v->name == topic) {
        fmt::print("{}", VerbHelp(*sub, *v));
        return 0;
      }
    }
    fmt::print(stderr, "slate help: no verb '{}'; see `slate --help`\n", topic);
    return kUsageError;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // A verb's own --help.
    if (e.get_name() == "CallForHelp" || e.get_name() == "CallForAllHelp") {
      for (auto& [sub, v] : subs) {
        if (sub->parsed()) {
          fmt::print("{}", VerbHelp(*sub, *v));
          return 0;
        }
      }
      fmt::print("{}", Overview());
      return 0;
    }
    fmt::print(stderr, "slate: {}\n", e.what());
    for (auto& [sub, v] : subs) {
      if (sub->parsed()) {
        fmt::print(stderr, "usage: see `slate help {}`\n", v->name);
        return kUsageError;
      }
    }
    fmt::print(stderr, "usage: see `slate --help`\n");
    return kUsageError;
  }

  for (auto& [sub, v] : subs) {
    if (!sub->parsed()) continue;
    if (!v->arrives_with.empty() || !v->run) {
      fmt::print(stderr, "slate {}: not available yet (arrives with {})\n", v->name,
                 v->arrives_with);
      return kUsageError;
    }
    return v->run(opts);
  }
  if (want_help || argc == 1) {
    fmt::print(want_help ? stdout : stderr, "{}", Overview());
    return want_help ? 0 : kUsageError;
  }
  return kUsageError;
}

}  // namespace
}  // namespace slate::cli

int main(int argc, char** argv) {
  return slate::cli::Main(argc, argv);
}
