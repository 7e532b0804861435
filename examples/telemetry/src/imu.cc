// imu: the simulated device and its tools. The device is a file that says
// what the device would answer: "ok", or "wedged" (it hangs whoever reads it,
// see sensor.cc).
//
//   imu reset PATH    put the device in a known state ("ok"); creates PATH's
//                     folder if needed. The [device.imu] reset hook, which the
//                     runtime runs before every start of the sensor.
//   imu wedge PATH    wedge it ("wedged"): the [device.imu] wedge command,
//                     which `slate chaos` runs.
//   imu status PATH   print what it answers.
//
// A plain program (no libslate): the runtime runs hooks with the owner's
// environment and the system file's folder as working directory. Each change
// is a new file renamed over PATH, so a reader sees the old state or the new.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include <sys/stat.h>

namespace {

int Usage() {
  (void)std::fprintf(stderr, "usage: imu reset|wedge|status PATH\n");
  return 2;
}

bool MakeParents(const std::string& path) {
  for (std::size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      (void)std::fprintf(stderr, "imu: mkdir %s: %s\n", dir.c_str(), std::strerror(errno));
      return false;
    }
  }
  return true;
}

int Set(const std::string& path, std::string_view state) {
  if (!MakeParents(path)) return 1;
  std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "we");
  if (f == nullptr) {
    (void)std::fprintf(stderr, "imu: %s: %s\n", tmp.c_str(), std::strerror(errno));
    return 1;
  }
  bool ok = std::fprintf(f, "%.*s\n", static_cast<int>(state.size()), state.data()) > 0;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    (void)std::fprintf(stderr, "imu: %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  (void)std::printf("imu: %s is now %.*s\n", path.c_str(), static_cast<int>(state.size()),
                    state.data());
  return 0;
}

int Status(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) {
    (void)std::fprintf(stderr, "imu: %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  char line[64] = {};
  bool got = std::fgets(line, sizeof line, f) != nullptr;
  (void)std::fclose(f);
  (void)std::printf("%s", got ? line : "(empty)\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return Usage();
  std::string_view verb = argv[1];
  std::string path = argv[2];
  if (verb == "reset") return Set(path, "ok");
  if (verb == "wedge") return Set(path, "wedged");
  if (verb == "status") return Status(path);
  return Usage();
}
