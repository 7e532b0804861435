#include "image/image_store.h"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <set>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/files.h"

namespace slate::image {

namespace {

constexpr mode_t kObjectMode = 0555;     // read-only: nothing of ours ever writes an object
constexpr mode_t kReinstallMode = 0755;  // for a destination that did not exist
constexpr mode_t kInstalledMode = 0555;  // what components run: read-only too
constexpr std::string_view kRefSuffix = ".json";

// The system file's names ([A-Za-z0-9][A-Za-z0-9_-]{0,63}) plus what the
// supervisor adds to name simple_one_for_one instances ("worker@3"). The
// first character keeps "." and ".." and hidden names out.
bool IsComponentName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) {
    return alnum(c) || c == '_' || c == '-' || c == '@' || c == '.';
  });
}

ImageStatus CheckDigest(const std::string& digest) {
  if (IsDigest(digest)) return ImageOk();
  return MakeImageError(ImageErrc::kInvalidArgument,
                        "'" + digest + "' is not an image digest (sha256- and 64 hex digits)");
}

// The two files of an image the store keeps, as messages name them.
struct Kind {
  std::string_view noun;    // "image object"
  std::string_view absent;  // "is not in the store"
};
constexpr Kind kObjectFile{"image object", "is not in the store"};
constexpr Kind kInstalledFile{"installed image", "is not installed"};

// Opens an image file for reading, as Verify, VerifyInstalled and Reinstall
// see it: a missing one is kNotFound, anything but a regular file kCorrupt.
ImageResult<platform::UniqueFd> OpenImageFile(const std::string& digest, const std::string& path,
                                              Kind kind = kObjectFile) {
  auto fd = internal::OpenRegular(path, /*follow=*/false);
  if (fd.ok()) return fd;
  switch (fd.error().code) {
    case ImageErrc::kNotFound:
      return ImageError{ImageErrc::kNotFound,
                        "image " + digest + " " + std::string(kind.absent) + " (" + path + ")",
                        ENOENT};
    case ImageErrc::kInvalidArgument:
      return MakeImageError(ImageErrc::kCorrupt, std::string(kind.noun) + " " + fd.error().message);
    default: return fd.error();
  }
}

ImageError Mismatch(const std::string& path, const std::string& actual, Kind kind = kObjectFile) {
  return MakeImageError(ImageErrc::kCorrupt,
                        std::string(kind.noun) + " " + path +
                            " does not match its digest: its content hashes to " + actual);
}

// Re-hashes the image file at `path` against `digest`.
ImageStatus VerifyFile(const std::string& digest, const std::string& path, Kind kind) {
  auto fd = OpenImageFile(digest, path, kind);
  if (!fd.ok()) return fd.error();
  auto actual = internal::CopyHashed(fd->get(), path, -1, "");
  if (!actual.ok()) return actual.error();
  if (*actual != digest) return Mismatch(path, *actual, kind);
  return ImageOk();
}

// Removes what a crash left in installed/: every entry that is not named by
// a digest (Reinstall's temporary files begin with ".").
ImageResult<int> RemoveStrays(const std::string& dir) {
  return internal::RemoveEntries(dir, [](const std::string& name) { return !IsDigest(name); });
}

ImageResult<platform::UniqueFd> LockDir(const std::string& dir) {
  const std::string path = dir + "/slate.lock";
  platform::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoImageError("open " + path, errno);
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      return MakeImageError(ImageErrc::kBusy,
                            "image store " + dir + " is open (by this or another process)");
    }
    return ErrnoImageError("flock " + path, errno);
  }
  return fd;
}

}  // namespace

ImageResult<ImageStore> ImageStore::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ErrnoImageError("mkdir " + dir, ec.value());
  // create_directories uses 0777 & ~umask; the store decides what runs.
  // Others may pass through to an object (0555) they know the digest of, to
  // execute it as a component's user, but not list the store (0711).
  if (::chmod(dir.c_str(), 0711) != 0) return ErrnoImageError("chmod " + dir, errno);
  auto lock = LockDir(dir);
  if (!lock.ok()) return lock.error();
  ImageStore store(dir, std::move(*lock));
  for (const std::string& sub : {store.objects_dir(), store.refs_dir(), store.installed_dir()}) {
    auto made = internal::MakeDir(sub);
    if (!made.ok()) return made.error();
    if (sub != store.refs_dir() && ::chmod(sub.c_str(), 0711) != 0) {
      return ErrnoImageError("chmod " + sub, errno);
    }
    // A temp file is an import, a record write or an install that a crash
    // interrupted before its rename: nothing refers to it.
    auto removed =
        sub == store.installed_dir() ? RemoveStrays(sub) : internal::RemoveTempFiles(sub);
    if (!removed.ok()) return removed.error();
    if (*removed > 0) {
      auto synced = internal::SyncDir(sub);
      if (!synced.ok()) return synced.error();
    }
  }
  return store;
}

// --- Objects ---

ImageResult<std::string> ImageStore::Import(const std::string& path) {
  auto in = internal::OpenRegular(path, /*follow=*/true);
  if (!in.ok()) return in.error();
  auto temp = internal::TempFile::Create(objects_dir(), internal::kTempPrefix);
  if (!temp.ok()) return temp.error();
  auto digest = internal::CopyHashed(in->get(), path, temp->fd(), temp->path());
  if (!digest.ok()) return digest.error();
  auto present = Verify(*digest);
  if (present.ok()) return digest;  // already there; the temp file goes away
  if (present.error().code != ImageErrc::kNotFound && present.error().code != ImageErrc::kCorrupt) {
    return present.error();
  }
  // Absent, or damaged: the fresh copy takes its place.
  auto installed = temp->Install(objects_dir() + "/" + *digest, kObjectMode);
  if (!installed.ok()) return installed.error();
  return digest;
}

ImageResult<std::string> ImageStore::Path(const std::string& digest) const {
  auto valid = CheckDigest(digest);
  if (!valid.ok()) return valid.error();
  return objects_dir() + "/" + digest;
}

ImageStatus ImageStore::Verify(const std::string& digest) const {
  auto path = Path(digest);
  if (!path.ok()) return path.error();
  return VerifyFile(digest, *path, kObjectFile);
}

ImageStatus ImageStore::Reinstall(const std::string& digest, const std::string& dest_path) const {
  if (dest_path.empty() || dest_path.back() == '/') {
    return MakeImageError(ImageErrc::kInvalidArgument,
                          "'" + dest_path + "' is not a file path to reinstall to");
  }
  const std::string base = dest_path.substr(dest_path.find_last_of('/') + 1);
  return CopyObject(digest, dest_path, "." + base + ".slate-tmp-", kReinstallMode);
}

ImageStatus ImageStore::CopyObject(const std::string& digest, const std::string& dest_path,
                                   std::string_view temp_prefix, mode_t new_mode) const {
  auto path = Path(digest);
  if (!path.ok()) return path.error();
  auto in = OpenImageFile(digest, *path);
  if (!in.ok()) return in.error();

  mode_t mode = new_mode;
  struct stat st {};
  if (::lstat(dest_path.c_str(), &st) == 0) {
    if (S_ISREG(st.st_mode)) mode = st.st_mode & 07777;
  } else if (errno != ENOENT) {
    return ErrnoImageError("stat " + dest_path, errno);
  }

  auto temp = internal::TempFile::Create(internal::ParentOf(dest_path), temp_prefix);
  if (!temp.ok()) return temp.error();
  auto actual = internal::CopyHashed(in->get(), *path, temp->fd(), temp->path());
  if (!actual.ok()) return actual.error();
  if (*actual != digest) return Mismatch(*path, *actual);  // dest untouched; temp removed
  return temp->Install(dest_path, mode);
}

// --- Installed copies ---

ImageResult<std::string> ImageStore::InstalledPath(const std::string& digest) const {
  auto valid = CheckDigest(digest);
  if (!valid.ok()) return valid.error();
  return installed_dir() + "/" + digest;
}

ImageResult<std::string> ImageStore::Install(const std::string& digest) {
  auto path = InstalledPath(digest);
  if (!path.ok()) return path.error();
  struct stat st {};
  if (::lstat(path->c_str(), &st) == 0 && S_ISREG(st.st_mode)) return path;
  auto copied = CopyObject(digest, *path, ".", kInstalledMode);
  if (!copied.ok()) return copied.error();
  return path;
}

ImageStatus ImageStore::VerifyInstalled(const std::string& digest) const {
  auto path = InstalledPath(digest);
  if (!path.ok()) return path.error();
  return VerifyFile(digest, *path, kInstalledFile);
}

ImageResult<std::vector<std::string>> ImageStore::Prune() {
  auto refs = internal::ListDir(refs_dir());
  if (!refs.ok()) return refs.error();
  std::set<std::string> keep;
  for (const auto& ref : *refs) {
    if (!ref.ends_with(kRefSuffix)) continue;
    const std::string name = ref.substr(0, ref.size() - kRefSuffix.size());
    if (!IsComponentName(name)) continue;  // not a record (temp files included)
    auto history = History(name);
    if (!history.ok()) {
      // A ref that disappeared meanwhile names nothing; any other failure
      // leaves what it names unknown.
      if (history.error().code == ImageErrc::kNotFound) continue;
      return history.error();
    }
    keep.insert(history->current);
    if (history->previous) keep.insert(*history->previous);
  }

  auto objects = internal::ListDir(objects_dir());
  if (!objects.ok()) return objects.error();
  std::vector<std::string> removed;
  for (const auto& name : *objects) {
    if (!IsDigest(name) || keep.contains(name)) continue;
    const std::string path = objects_dir() + "/" + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoImageError("remove " + path, errno);
    }
    removed.push_back(name);
  }
  if (!removed.empty()) {
    auto synced = internal::SyncDir(objects_dir());
    if (!synced.ok()) return synced.error();
  }
  // Copies made from objects gone now, or long ago (a copy is made again
  // from its object when needed).
  auto installed = internal::RemoveEntries(installed_dir(), [&](const std::string& name) {
    return IsDigest(name) && !keep.contains(name);
  });
  if (!installed.ok()) return installed.error();
  std::sort(removed.begin(), removed.end());
  return removed;
}

// --- Per-component history ---

ImageResult<std::string> ImageStore::RefPath(const std::string& name) const {
  if (!IsComponentName(name)) {
    return MakeImageError(ImageErrc::kInvalidArgument,
                          "'" + name + "' is not a component name for the image store");
  }
  return refs_dir() + "/" + name + std::string(kRefSuffix);
}

ImageStatus ImageStore::CheckObject(const std::string& digest) const {
  auto path = Path(digest);
  if (!path.ok()) return path.error();
  struct stat st {};
  if (::lstat(path->c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return ImageError{ImageErrc::kNotFound,
                        "image " + digest + " is not in the store (" + *path + "); import it first",
                        ENOENT};
    }
    return ErrnoImageError("stat " + *path, errno);
  }
  return ImageOk();
}

ImageStatus ImageStore::WriteHistory(const std::string& name, const ImageHistory& history) {
  return internal::WriteFileAtomic(refs_dir(), name + std::string(kRefSuffix),
                                   internal::EncodeHistory(history));
}

ImageResult<ImageHistory> ImageStore::History(const std::string& name) const {
  auto path = RefPath(name);
  if (!path.ok()) return path.error();
  auto text = internal::ReadFile(*path);
  if (!text.ok()) {
    if (text.error().code == ImageErrc::kNotFound) {
      return ImageError{ImageErrc::kNotFound, "no image record for " + name + " (" + *path + ")",
                        ENOENT};
    }
    return text.error();
  }
  return internal::DecodeHistory(*text, *path);
}

ImageResult<std::string> ImageStore::Current(const std::string& name) const {
  auto history = History(name);
  if (!history.ok()) return history.error();
  return std::move(history->current);
}

ImageStatus ImageStore::SetInitial(const std::string& name, const std::string& digest) {
  auto path = RefPath(name);
  if (!path.ok()) return path.error();
  auto present = CheckObject(digest);
  if (!present.ok()) return present;
  return WriteHistory(name, ImageHistory{digest, std::nullopt, std::nullopt});
}

ImageStatus ImageStore::SetInitialAll(
    const std::vector<std::pair<std::string, std::string>>& records) {
  // In slices, so that the temporary files never hold many descriptors.
  constexpr std::size_t kSlice = 256;
  for (std::size_t from = 0; from < records.size(); from += kSlice) {
    const std::size_t to = std::min(records.size(), from + kSlice);
    std::vector<internal::TempFile> temps;
    std::vector<std::string> dests;
    for (std::size_t i = from; i < to; ++i) {
      const auto& [name, digest] = records[i];
      auto path = RefPath(name);
      if (!path.ok()) return path.error();
      auto present = CheckObject(digest);
      if (!present.ok()) return present;
      auto temp = internal::TempFile::Create(refs_dir(), internal::kTempPrefix);
      if (!temp.ok()) return temp.error();
      const std::string text =
          internal::EncodeHistory(ImageHistory{digest, std::nullopt, std::nullopt});
      auto written = internal::WriteAll(temp->fd(), text.data(), text.size(), temp->path());
      if (!written.ok()) return written;
      if (::fchmod(temp->fd(), 0600) != 0) return ErrnoImageError("chmod " + temp->path(), errno);
      temps.push_back(std::move(temp).value());
      dests.push_back(*path);
    }
    // One flush for the slice, not one per file (each fsync on ext4 waits
    // for a journal commit and a cache flush of its own).
    auto synced = internal::SyncFileSystem(refs_dir());
    if (!synced.ok()) return synced;
    for (std::size_t i = 0; i < temps.size(); ++i) {
      auto moved = temps[i].MoveTo(dests[i]);
      if (!moved.ok()) return moved;
    }
  }
  return records.empty() ? ImageOk() : internal::SyncDir(refs_dir());
}

ImageStatus ImageStore::BeginUpdate(const std::string& name, const std::string& new_digest,
                                    std::chrono::system_clock::time_point now) {
  auto present = CheckObject(new_digest);
  if (!present.ok()) return present;
  auto history = History(name);
  if (!history.ok()) return history.error();
  if (!history->in_probation()) history->previous = history->current;
  history->current = new_digest;
  history->probation_since = now;
  return WriteHistory(name, *history);
}

ImageStatus ImageStore::EndProbation(const std::string& name) {
  auto history = History(name);
  if (!history.ok()) return history.error();
  if (!history->in_probation()) return ImageOk();
  history->probation_since.reset();
  return WriteHistory(name, *history);
}

ImageResult<std::string> ImageStore::Revert(const std::string& name) {
  auto history = History(name);
  if (!history.ok()) return history.error();
  if (!history->previous) {
    return MakeImageError(ImageErrc::kNotFound,
                          "no previous image to revert " + name + " to (" + *RefPath(name) + ")");
  }
  const ImageHistory reverted{*history->previous, std::nullopt, std::nullopt};
  auto written = WriteHistory(name, reverted);
  if (!written.ok()) return written.error();
  return reverted.current;
}

ImageStatus ImageStore::Forget(const std::string& name) {
  auto path = RefPath(name);
  if (!path.ok()) return path.error();
  if (::unlink(path->c_str()) != 0) {
    if (errno == ENOENT) return ImageOk();
    return ErrnoImageError("remove " + *path, errno);
  }
  return internal::SyncDir(refs_dir());
}

}  // namespace slate::image
