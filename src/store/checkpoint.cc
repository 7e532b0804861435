#include "store/checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/digest.h"
#include "image/files.h"
#include "platform/unique_fd.h"
#include "store/files.h"

namespace slate::store {
namespace {

using std::chrono::system_clock;

std::string SeqText(std::uint64_t seq) {
  char buf[24];
  (void)std::snprintf(buf, sizeof buf, "%010llu", static_cast<unsigned long long>(seq));
  return buf;
}

std::string CheckpointName(std::uint64_t seq, system_clock::time_point created) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(created.time_since_epoch());
  return "ckpt-" + SeqText(seq) + "-" + std::to_string(ns.count());
}

bool ParseNumber(std::string_view text, std::uint64_t& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

// "ckpt-SEQ-NS" -> (seq, created); nullopt for any other name.
std::optional<CheckpointInfo> ParseName(std::string_view name) {
  constexpr std::string_view kPrefix = "ckpt-";
  if (!name.starts_with(kPrefix)) return std::nullopt;
  name.remove_prefix(kPrefix.size());
  const auto dash = name.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  CheckpointInfo info;
  std::uint64_t ns = 0;
  if (!ParseNumber(name.substr(0, dash), info.seq) || !ParseNumber(name.substr(dash + 1), ns)) {
    return std::nullopt;
  }
  info.created = system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(
      std::chrono::nanoseconds(static_cast<std::int64_t>(ns))));
  return info;
}

bool SameDirectory(const std::string& a, const std::string& b) {
  struct stat sa {};
  struct stat sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

constexpr std::string_view kDigestFile = "data.mdb.sha256";

// The SHA-256 of the file at `path` (in image::IsDigest's form).
StoreResult<std::string> DigestFile(const std::string& path) {
  platform::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStoreError("open " + path, errno);
  auto digest = image::internal::CopyHashed(fd.get(), path, -1, "");
  if (!digest) {
    return MakeStoreError(StoreErrc::kIo, "digest of " + path + ": " + digest.error().message);
  }
  return *digest;
}

// A digest as a message shows it: its first 12 hex digits (a malformed one
// quoted, at most 80 characters of it).
std::string Short(const std::string& digest) {
  constexpr std::size_t kPrefix = image::kDigestPrefix.size();
  if (!image::IsDigest(digest)) {
    std::string quoted = "'";
    quoted.append(digest, 0, 80).push_back('\'');
    return quoted;
  }
  return digest.substr(0, kPrefix + 12) + "...";
}

// Writes `text` to `path` (a new file) and fsyncs it.
StoreStatus WriteSynced(const std::string& path, const std::string& text) {
  platform::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStoreError("create " + path, errno);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoStoreError("write " + path, errno == 0 ? EIO : errno);
  }
  if (::fsync(fd.get()) != 0) return ErrnoStoreError("fsync " + path, errno);
  return StoreOk();
}

// The digest recorded with the checkpoint in `dir`; nullopt if it has none
// (taken before digests were recorded).
StoreResult<std::optional<std::string>> RecordedDigest(const std::string& dir) {
  const std::string path = dir + "/" + std::string(kDigestFile);
  platform::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid() && errno == ENOENT) return std::optional<std::string>();
  if (!fd.valid()) return ErrnoStoreError("open " + path, errno);
  char buf[128];
  ssize_t n = 0;
  while ((n = ::read(fd.get(), buf, sizeof buf)) < 0 && errno == EINTR) {
  }
  if (n < 0) return ErrnoStoreError("read " + path, errno);
  std::string digest(buf, static_cast<std::size_t>(n));
  while (!digest.empty() && digest.back() == '\n') digest.pop_back();
  return std::optional<std::string>(std::move(digest));
}

StoreStatus RenameSynced(const std::string& from, const std::string& to, const std::string& dir) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoStoreError("rename " + from + " to " + to, errno);
  }
  return internal::SyncDir(dir);
}

}  // namespace

StoreResult<std::unique_ptr<CheckpointSet>> CheckpointSet::Open(const std::string& store_dir,
                                                                int keep, CopyMode mode) {
  if (keep < 1) {
    return MakeStoreError(StoreErrc::kInvalidArgument, store_dir + ": keep must be at least 1");
  }
  std::unique_ptr<CheckpointSet> set(new CheckpointSet(store_dir, keep, mode));
  if (auto made = internal::MakeDirs(set->dir_); !made) return made.error();
  std::error_code ec;
  std::filesystem::directory_iterator it(set->dir_, ec);
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with(".")) {
      if (auto removed = internal::RemoveTree(it->path().string()); !removed) {
        return removed.error();
      }
    }
  }
  if (ec) return ErrnoStoreError("list " + set->dir_, ec.value());
  return set;
}

StoreResult<std::vector<CheckpointInfo>> CheckpointSet::List() const {
  std::vector<CheckpointInfo> found;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir_, ec);
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    auto info = ParseName(it->path().filename().string());
    if (!info) continue;
    info->path = it->path().string();
    // Gone since readdir (pruned meanwhile): not a checkpoint any more.
    auto bytes = internal::FileSize(info->path + "/data.mdb");
    if (!bytes) continue;
    info->bytes = *bytes;
    found.push_back(std::move(*info));
  }
  if (ec) return ErrnoStoreError("list " + dir_, ec.value());
  std::sort(found.begin(), found.end(),
            [](const CheckpointInfo& a, const CheckpointInfo& b) { return a.seq < b.seq; });
  return found;
}

StoreResult<std::optional<CheckpointInfo>> CheckpointSet::Latest() const {
  auto all = List();
  if (!all) return all.error();
  if (all->empty()) return std::optional<CheckpointInfo>();
  return std::optional<CheckpointInfo>(all->back());
}

StoreResult<std::optional<CheckpointInfo>> CheckpointSet::Find(std::uint64_t seq) const {
  auto all = List();
  if (!all) return all.error();
  for (auto& c : *all) {
    if (c.seq == seq) return std::optional<CheckpointInfo>(std::move(c));
  }
  return std::optional<CheckpointInfo>();
}

StoreResult<std::optional<CheckpointInfo>> CheckpointSet::NewestBefore(
    system_clock::time_point t) const {
  auto all = List();
  if (!all) return all.error();
  std::optional<CheckpointInfo> best;
  for (auto& c : *all) {
    if (c.created < t && (!best || c.seq > best->seq)) best = std::move(c);
  }
  return best;
}

StoreResult<CheckpointInfo> CheckpointSet::Take(const StateStore& store) {
  if (!SameDirectory(store.dir(), store_dir_)) {
    return MakeStoreError(StoreErrc::kInvalidArgument,
                          "checkpoint of " + store.dir() + " into the set of " + store_dir_);
  }
  std::lock_guard lock(mutex_);
  auto latest = Latest();
  if (!latest) return latest.error();
  CheckpointInfo info;
  info.seq = *latest ? (*latest)->seq + 1 : 1;
  // The final name holds the time the copy was complete, known only after
  // it: the copy lands under a hidden name first.
  const std::string taking = dir_ + "/.taking-" + SeqText(info.seq);
  if (auto removed = internal::RemoveTree(taking); !removed) return removed.error();
  auto bytes = store.Checkpoint(taking, mode_);
  if (!bytes) return bytes.error();
  info.bytes = *bytes;
  // What Restore checks the copy against: read back from the page cache.
  auto digest = DigestFile(taking + "/data.mdb");
  if (!digest) return digest.error();
  if (auto written = WriteSynced(taking + "/" + std::string(kDigestFile), *digest + "\n");
      !written) {
    return written.error();
  }
  if (auto synced = internal::SyncDir(taking); !synced) return synced.error();
  info.created = system_clock::now();
  info.path = dir_ + "/" + CheckpointName(info.seq, info.created);
  if (auto renamed = RenameSynced(taking, info.path, dir_); !renamed) return renamed.error();
  if (auto pruned = PruneLocked(); !pruned) return pruned.error();
  return info;
}

StoreStatus CheckpointSet::Prune() {
  std::lock_guard lock(mutex_);
  return PruneLocked();
}

StoreStatus CheckpointSet::PruneLocked() {
  auto all = List();
  if (!all) return all.error();
  const auto excess = static_cast<std::ptrdiff_t>(all->size()) - keep_;
  for (std::ptrdiff_t i = 0; i < excess; ++i) {
    const auto& old = (*all)[static_cast<std::size_t>(i)];
    // Renamed away first, so that a crash mid-removal leaves no damaged
    // checkpoint under a checkpoint's name.
    const std::string dropping = dir_ + "/.dropping-" + SeqText(old.seq);
    if (auto renamed = RenameSynced(old.path, dropping, dir_); !renamed) return renamed;
    if (auto removed = internal::RemoveTree(dropping); !removed) return removed;
  }
  return StoreOk();
}

StoreStatus CheckpointSet::Restore(const CheckpointInfo& checkpoint) {
  std::lock_guard lock(mutex_);
  auto exclusive = internal::DirLock::Acquire(store_dir_, internal::DirLock::Mode::kExclusive);
  if (!exclusive) return exclusive.error();
  const std::string source = checkpoint.path + "/data.mdb";
  if (::access(source.c_str(), R_OK) != 0) {
    return ErrnoStoreError("restore " + store_dir_ + " from " + checkpoint.path, errno);
  }
  const std::string incoming = store_dir_ + "/.restore.mdb";
  if (::unlink(incoming.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStoreError("unlink " + incoming, errno);
  }
  if (auto copied = internal::CopyFileSynced(source, incoming); !copied) return copied;
  auto recorded = RecordedDigest(checkpoint.path);
  if (!recorded) return recorded.error();
  if (*recorded) {
    auto now = DigestFile(incoming);
    if (!now) return now.error();
    if (*now != **recorded) {
      (void)::unlink(incoming.c_str());
      const std::string name = std::filesystem::path(checkpoint.path).filename().string();
      const std::string aside = dir_ + "/corrupt-" + name;
      if (auto moved = RenameSynced(checkpoint.path, aside, dir_); !moved) return moved.error();
      return MakeStoreError(StoreErrc::kCorrupt, "checkpoint " + std::to_string(checkpoint.seq) +
                                                     ": data.mdb is not what was taken (now " +
                                                     Short(*now) + ", when taken " +
                                                     Short(**recorded) + "); moved to " + aside);
    }
  }
  return RenameSynced(incoming, store_dir_ + "/data.mdb", store_dir_);
}

StoreStatus CheckpointSet::Reset() {
  std::lock_guard lock(mutex_);
  auto exclusive = internal::DirLock::Acquire(store_dir_, internal::DirLock::Mode::kExclusive);
  if (!exclusive) return exclusive.error();
  const std::string data = store_dir_ + "/data.mdb";
  if (::unlink(data.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStoreError("unlink " + data, errno);
  }
  return internal::SyncDir(store_dir_);
}

}  // namespace slate::store
