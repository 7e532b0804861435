// ImageStore: the runtime's content-addressed copies of component images (the
// programs named by exec[0]) and, per component, which image it runs and
// which one it goes back to (SPEC sections 6 and 7: `slate update`, probation,
// `revert_image`, `reinstall_image`). The runtime keeps one in
// state_dir/images.
//
// On disk (docs/images.md):
//   DIR/objects/sha256-HEX   an image, mode 0555, named by the SHA-256 of its bytes
//   DIR/installed/sha256-HEX the copy of that image that components run
//   DIR/refs/NAME.json       a component's ImageHistory (history.h)
//   DIR/slate.lock           held (flock) by the open ImageStore
// Entries beginning with ".tmp-" (in installed/: with ".") are work in
// progress; Open removes them.
//
// Guarantees:
// - An object is whole or absent: it is written under a temporary name,
//   synced and renamed into place, and never changes after that (read-only;
//   Verify and Reinstall detect it if something changed it anyway).
// - A record is replaced atomically (temporary file, fsync, rename, fsync of
//   the directory): after a crash it is the old one or the new one.
// - A record names only objects that were in the store when it was written,
//   and Prune never removes an object that a record names.
//
// Thread safety: thread-compatible (one thread at a time; the runtime calls it
// from its event loop). One ImageStore per directory in the whole system: a
// second Open, from any process, fails with kBusy while the first is open.
// Each operation completes before it returns, so an ImageStore may be
// destroyed or the process killed at any point between them.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "image/digest.h"
#include "image/history.h"
#include "image/image_error.h"
#include "platform/unique_fd.h"

namespace slate::image {

class ImageStore {
 public:
  // Opens the store in `dir`, creating it (mode 0700) if needed, and removes
  // what a crash left half done. Errors: kBusy, kIo.
  static ImageResult<ImageStore> Open(const std::string& dir);

  ImageStore(ImageStore&&) noexcept = default;
  ImageStore& operator=(ImageStore&&) noexcept = default;
  ImageStore(const ImageStore&) = delete;
  ImageStore& operator=(const ImageStore&) = delete;
  ~ImageStore() = default;

  // --- Objects ---

  // Copies the regular file at `path` (symlinks followed) into the store and
  // returns its digest. The hash is computed while copying, so the object is
  // exactly the bytes that were hashed even if the source changes meanwhile.
  // Importing content that is already there is a no-op returning the same
  // digest, except that a corrupt copy is replaced by the new one. Errors:
  // kNotFound (no such file), kInvalidArgument (not a regular file), kIo.
  ImageResult<std::string> Import(const std::string& path);

  // DIR/objects/DIGEST; whether the object exists is not checked (Verify
  // does). Errors: kInvalidArgument (a malformed digest).
  ImageResult<std::string> Path(const std::string& digest) const;

  // Re-hashes the object. Errors: kNotFound (no such object), kCorrupt (its
  // content does not match its digest, or it is not a regular file), kIo,
  // kInvalidArgument.
  ImageStatus Verify(const std::string& digest) const;

  // Restores `dest_path` from the object (the reinstall_image step): copies it
  // to a temporary file beside dest_path, checking the hash as it copies, then
  // renames it over dest_path and syncs dest's directory. dest_path gets the
  // permission bits of the file it replaces, or 0755; a symlink there is
  // replaced, not followed. On any error dest_path is untouched. Errors:
  // kNotFound (no such object, or dest's directory is missing), kCorrupt (the
  // object does not match its digest), kIo, kInvalidArgument.
  ImageStatus Reinstall(const std::string& digest, const std::string& dest_path) const;

  // --- Installed copies ---
  //
  // Components do not run the object itself but DIR/installed/DIGEST, a copy
  // of it (mode 0555): the object stays the reference that a damaged copy is
  // put back from (reinstall_image), whatever happened to what runs.

  // DIR/installed/DIGEST, made from the object (Reinstall) if it is not
  // there; an existing copy is not re-hashed. Errors: as Reinstall's.
  ImageResult<std::string> Install(const std::string& digest);

  // DIR/installed/DIGEST; whether it exists is not checked. Errors:
  // kInvalidArgument (a malformed digest).
  ImageResult<std::string> InstalledPath(const std::string& digest) const;

  // Re-hashes the installed copy. Errors: kNotFound (not installed), kCorrupt
  // (its content does not match the digest, or it is not a regular file),
  // kIo, kInvalidArgument.
  ImageStatus VerifyInstalled(const std::string& digest) const;

  // Removes every object, and every installed copy, that no record names;
  // returns the digests of the objects in order. Errors: kCorrupt (a record
  // cannot be read; nothing is removed, as what it names is unknown), kIo.
  ImageResult<std::vector<std::string>> Prune();

  // --- Per-component history ---
  //
  // `name` is a component (or simple_one_for_one instance) name:
  // [A-Za-z0-9][A-Za-z0-9_@.-]{0,127}, else kInvalidArgument. Every digest
  // given must name an object in the store (kNotFound otherwise). A record
  // that cannot be read is kCorrupt; a missing one kNotFound.

  // The digest `name` runs. kNotFound when it has no record.
  ImageResult<std::string> Current(const std::string& name) const;

  // The whole record, for `slate status` and for the runtime's decisions.
  ImageResult<ImageHistory> History(const std::string& name) const;

  // Starts (or restarts) `name`'s history: `digest` is current and known-good,
  // there is no previous image and no probation. For the first run, with the
  // image the system file names; replaces any record.
  ImageStatus SetInitial(const std::string& name, const std::string& digest);
  // SetInitial for many (name, digest) at once, as durable, with the disk
  // flushes shared: all records are written, the file system is synced
  // (syncfs) once per 256, they are renamed into place, and the directory is
  // synced once. One at a time, the first run of a system of 1000 components
  // took 2000 separate flushes.
  // On an error, the records before the failing one may be in place.
  ImageStatus SetInitialAll(const std::vector<std::pair<std::string, std::string>>& records);

  // `slate update`: `new_digest` becomes current, in probation since `now`.
  // The image to revert to becomes the current one if it was known-good; if
  // the current one was itself in probation, the known-good one before it
  // stays. kNotFound when `name` has no record (SetInitial first).
  ImageStatus BeginUpdate(const std::string& name, const std::string& new_digest,
                          std::chrono::system_clock::time_point now);

  // Probation passed: the current image is known-good. Outside probation,
  // nothing changes. The previous image stays, for a manual `slate revert`.
  ImageStatus EndProbation(const std::string& name);

  // `revert_image`, `slate revert`, or a failure streak in probation: the
  // previous image becomes current and known-good, with no previous image of
  // its own (the one reverted from is never a revert target). Returns the
  // digest reverted to. kNotFound when there is no previous image (the record
  // is unchanged) or no record.
  ImageResult<std::string> Revert(const std::string& name);

  // Removes `name`'s record (a component gone from the system file), so that
  // Prune may remove its images. A missing record is not an error.
  ImageStatus Forget(const std::string& name);

  const std::string& dir() const { return dir_; }

 private:
  ImageStore(std::string dir, platform::UniqueFd lock)
      : dir_(std::move(dir)), lock_(std::move(lock)) {}
  std::string objects_dir() const { return dir_ + "/objects"; }
  std::string refs_dir() const { return dir_ + "/refs"; }
  std::string installed_dir() const { return dir_ + "/installed"; }
  ImageStatus CopyObject(const std::string& digest, const std::string& dest_path,
                         std::string_view temp_prefix, mode_t new_mode) const;
  ImageResult<std::string> RefPath(const std::string& name) const;
  ImageStatus CheckObject(const std::string& digest) const;
  ImageStatus WriteHistory(const std::string& name, const ImageHistory& history);

  std::string dir_;
  platform::UniqueFd lock_;  // flock on DIR/slate.lock, released when closed
};

}  // namespace slate::image
