// ImageStore: objects (import, verify, reinstall, prune), the per-component
// history (update, probation, revert), and what a crash leaves behind.
#include "image/image_store.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace slate::image {
namespace {

using std::chrono::system_clock;
using namespace std::chrono_literals;

// SHA-256 test vectors (FIPS 180-2).
constexpr char kEmptyDigest[] =
    "sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbcDigest[] =
    "sha256-ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/slate-image-test-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp " << pattern << ": " << std::strerror(errno);
    }
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  ASSERT_TRUE(out.good()) << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream data;
  data << in.rdbuf();
  return data.str();
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename());
  }
  std::sort(names.begin(), names.end());
  return names;
}

ImageStore OpenOrDie(const std::string& dir) {
  auto store = ImageStore::Open(dir);
  EXPECT_TRUE(store.ok()) << store.error().message;
  return std::move(*store);
}

// Writes `data` to a source file in `tmp` and imports it.
std::string ImportOrDie(ImageStore& store, const TempDir& tmp, const std::string& data) {
  const std::string src = tmp / "src-image";
  WriteFile(src, data);
  auto digest = store.Import(src);
  EXPECT_TRUE(digest.ok()) << digest.error().message;
  return digest.ok() ? *digest : "";
}

// Makes an object writable and flips its first byte, as a stray write would.
void Corrupt(const std::string& path) {
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  std::string data = ReadFile(path);
  ASSERT_FALSE(data.empty());
  data[0] = static_cast<char>(data[0] ^ 0x01);
  WriteFile(path, data);
}

// --- Objects ---

TEST(ImageStore, ImportTwiceIsOneObjectAndOneDigest) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  const std::string first = ImportOrDie(store, tmp, "abc");
  EXPECT_EQ(first, kAbcDigest);
  const std::string second = ImportOrDie(store, tmp, "abc");
  EXPECT_EQ(second, first);
  EXPECT_EQ(Entries(tmp / "images/objects"), std::vector<std::string>{kAbcDigest});
  EXPECT_EQ(ImportOrDie(store, tmp, ""), kEmptyDigest);
}

TEST(ImageStore, ObjectIsAReadOnlyCopy) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  const std::string digest = ImportOrDie(store, tmp, "#!/bin/sh\necho hi\n");
  const std::string path = *store.Path(digest);
  EXPECT_EQ(path, tmp / "images/objects/" + digest);
  EXPECT_EQ(ReadFile(path), "#!/bin/sh\necho hi\n");
  // The tests run as root, for whom a write would succeed anyway: the mode
  // bits are the contract.
  EXPECT_EQ(ModeOf(path), 0555u);
  // The copy does not follow the source.
  WriteFile(tmp / "src-image", "changed");
  EXPECT_TRUE(store.Verify(digest).ok());
}

TEST(ImageStore, ImportHashesAcrossManyReads) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  std::string data(3 * 256 * 1024 + 7, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 % 251);
  const std::string digest = ImportOrDie(store, tmp, data);
  internal::Sha256 whole;
  whole.Update(data);
  EXPECT_EQ(digest, *whole.Finish());
  EXPECT_EQ(ReadFile(*store.Path(digest)), data);
}

TEST(ImageStore, ImportRefusesWhatIsNotARegularFile) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  auto missing = store.Import(tmp / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ImageErrc::kNotFound);
  EXPECT_NE(missing.error().message.find(tmp / "nope"), std::string::npos)
      << missing.error().message;
  auto dir = store.Import(tmp / "images");
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().code, ImageErrc::kInvalidArgument);
  EXPECT_EQ(Entries(tmp / "images/objects"), std::vector<std::string>{});
}

TEST(ImageStore, ImportFollowsASymlinkToTheImage) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  WriteFile(tmp / "real", "abc");
  ASSERT_EQ(::symlink((tmp / "real").c_str(), (tmp / "link").c_str()), 0);
  auto digest = store.Import(tmp / "link");
  ASSERT_TRUE(digest.ok()) << digest.error().message;
  EXPECT_EQ(*digest, kAbcDigest);
}

TEST(ImageStore, VerifyCatchesAFlippedByteAndAMissingObject) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  const std::string digest = ImportOrDie(store, tmp, "some image bytes");
  ASSERT_TRUE(store.Verify(digest).ok());

  const std::string path = *store.Path(digest);
  Corrupt(path);
  auto corrupt = store.Verify(digest);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.error().code, ImageErrc::kCorrupt);
  EXPECT_NE(corrupt.error().message.find(path), std::string::npos) << corrupt.error().message;

  ASSERT_EQ(::unlink(path.c_str()), 0);
  auto missing = store.Verify(digest);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ImageErrc::kNotFound);
  EXPECT_NE(missing.error().message.find(path), std::string::npos) << missing.error().message;
}

TEST(ImageStore, MalformedDigestsAreRefused) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  const std::string abc = kAbcDigest;
  for (const std::string& bad :
       {std::string(""), std::string("sha256-"), abc.substr(0, abc.size() - 1), abc + "0",
        "sha512-" + abc.substr(7), "sha256-" + std::string(64, 'A'),
        std::string("../../etc/passwd"), "sha256-../" + abc.substr(10)}) {
    EXPECT_FALSE(IsDigest(bad)) << bad;
    auto verified = store.Verify(bad);
    ASSERT_FALSE(verified.ok()) << bad;
    EXPECT_EQ(verified.error().code, ImageErrc::kInvalidArgument) << bad;
    EXPECT_FALSE(store.Path(bad).ok()) << bad;
  }
  EXPECT_TRUE(IsDigest(kAbcDigest));
}

TEST(ImageStore, ImportRepairsACorruptObject) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  const std::string digest = ImportOrDie(store, tmp, "repair me");
  Corrupt(*store.Path(digest));
  ASSERT_FALSE(store.Verify(digest).ok());
  EXPECT_EQ(ImportOrDie(store, tmp, "repair me"), digest);
  EXPECT_TRUE(store.Verify(digest).ok());
  EXPECT_EQ(ModeOf(*store.Path(digest)), 0555u);
  EXPECT_EQ(Entries(tmp / "images/objects"), std::vector<std::string>{digest});
}

TEST(ImageStore, ReinstallRestoresAnOverwrittenOrDeletedImage) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  const std::string dest = tmp / "sensor";
  WriteFile(dest, "good image");
  ASSERT_EQ(::chmod(dest.c_str(), 0750), 0);
  auto digest = store.Import(dest);
  ASSERT_TRUE(digest.ok()) << digest.error().message;

  WriteFile(dest, "overwritten by a bad deploy");
  auto restored = store.Reinstall(*digest, dest);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(ReadFile(dest), "good image");
  EXPECT_EQ(ModeOf(dest), 0750u);  // the replaced file's mode, not the object's

  ASSERT_EQ(::unlink(dest.c_str()), 0);
  restored = store.Reinstall(*digest, dest);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(ReadFile(dest), "good image");
  EXPECT_EQ(ModeOf(dest), 0755u);

  // Nothing left beside it.
  EXPECT_EQ(Entries(tmp / ""), (std::vector<std::string>{"images", "sensor"}));
}

TEST(ImageStore, ReinstallRefusesACorruptOrMissingObjectAndLeavesDestAlone) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  const std::string digest = ImportOrDie(store, tmp, "good image");
  const std::string dest = tmp / "sensor";
  WriteFile(dest, "current");

  Corrupt(*store.Path(digest));
  auto corrupt = store.Reinstall(digest, dest);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.error().code, ImageErrc::kCorrupt);
  EXPECT_EQ(ReadFile(dest), "current");

  ASSERT_EQ(::unlink(store.Path(digest)->c_str()), 0);
  auto missing = store.Reinstall(digest, dest);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ImageErrc::kNotFound);
  EXPECT_EQ(ReadFile(dest), "current");
  EXPECT_EQ(Entries(tmp / ""), (std::vector<std::string>{"images", "sensor", "src-image"}));
}

// --- Installed copies ---

TEST(ImageStore, InstallMakesAReadOnlyCopyOnceAndVerifyInstalledChecksIt) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  const std::string digest = ImportOrDie(store, tmp, "good image");
  EXPECT_EQ(store.VerifyInstalled(digest).error().code, ImageErrc::kNotFound);

  auto path = store.Install(digest);
  ASSERT_TRUE(path.ok()) << path.error().message;
  EXPECT_EQ(*path, *store.InstalledPath(digest));
  EXPECT_EQ(*path, tmp / ("images/installed/" + digest));
  EXPECT_NE(*path, *store.Path(digest));  // a copy, not the object
  EXPECT_EQ(ReadFile(*path), "good image");
  EXPECT_EQ(ModeOf(*path), 0555u);
  EXPECT_TRUE(store.VerifyInstalled(digest).ok());
  EXPECT_EQ(Entries(tmp / "images/installed"), std::vector<std::string>{digest});

  // A damaged copy is reported, and not replaced by Install (which does not
  // re-hash what is there), only by Reinstall from the intact object.
  Corrupt(*path);
  auto damaged = store.VerifyInstalled(digest);
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.error().code, ImageErrc::kCorrupt);
  EXPECT_NE(damaged.error().message.find("installed image"), std::string::npos)
      << damaged.error().message;
  ASSERT_TRUE(store.Install(digest).ok());
  EXPECT_FALSE(store.VerifyInstalled(digest).ok());
  ASSERT_TRUE(store.Reinstall(digest, *path).ok());
  EXPECT_TRUE(store.VerifyInstalled(digest).ok());
  EXPECT_TRUE(store.Verify(digest).ok());

  // A copy is made only from an intact object.
  ASSERT_EQ(::unlink(path->c_str()), 0);
  Corrupt(*store.Path(digest));
  auto refused = store.Install(digest);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ImageErrc::kCorrupt);
  EXPECT_TRUE(Entries(tmp / "images/installed").empty());
  EXPECT_EQ(store.Install("sha256-nope").error().code, ImageErrc::kInvalidArgument);
}

// --- History ---

TEST(ImageStore, UpdateProbationAndRevert) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  const std::string a = ImportOrDie(store, tmp, "v1");
  const std::string b = ImportOrDie(store, tmp, "v2");
  const std::string c = ImportOrDie(store, tmp, "v3");
  const auto t1 = system_clock::time_point(1'700'000'000'000ms);
  const auto t2 = t1 + 5s;

  ASSERT_TRUE(store.SetInitial("api", a).ok());
  EXPECT_EQ(*store.Current("api"), a);
  EXPECT_EQ(*store.History("api"), (ImageHistory{a, std::nullopt, std::nullopt}));

  // Update: the known-good image becomes the one to revert to.
  ASSERT_TRUE(store.BeginUpdate("api", b, t1).ok());
  EXPECT_EQ(*store.History("api"), (ImageHistory{b, a, t1}));
  EXPECT_TRUE(store.History("api")->in_probation());

  // A second update during probation keeps the known-good one.
  ASSERT_TRUE(store.BeginUpdate("api", c, t2).ok());
  EXPECT_EQ(*store.History("api"), (ImageHistory{c, a, t2}));

  // A failure streak in probation: back to the known-good image, for good.
  auto reverted = store.Revert("api");
  ASSERT_TRUE(reverted.ok()) << reverted.error().message;
  EXPECT_EQ(*reverted, a);
  EXPECT_EQ(*store.History("api"), (ImageHistory{a, std::nullopt, std::nullopt}));
  auto nothing = store.Revert("api");
  ASSERT_FALSE(nothing.ok());
  EXPECT_EQ(nothing.error().code, ImageErrc::kNotFound);
  EXPECT_EQ(*store.Current("api"), a);

  // Probation passed: b is known-good, a stays for a manual revert.
  ASSERT_TRUE(store.BeginUpdate("api", b, t2).ok());
  ASSERT_TRUE(store.EndProbation("api").ok());
  EXPECT_EQ(*store.History("api"), (ImageHistory{b, a, std::nullopt}));
  ASSERT_TRUE(store.EndProbation("api").ok());  // nothing to end
  EXPECT_EQ(*store.History("api"), (ImageHistory{b, a, std::nullopt}));
  // The next update reverts to b, not a.
  ASSERT_TRUE(store.BeginUpdate("api", c, t2).ok());
  EXPECT_EQ(*store.History("api"), (ImageHistory{c, b, t2}));
  EXPECT_EQ(*store.Revert("api"), b);
}

// The first run of a large system: many records with one flush, as if
// written one by one; more than one slice (256), an existing record
// replaced, nothing temporary left. A bad entry fails the call, naming it.
TEST(ImageStore, SetInitialAllWritesEveryRecordAtOnce) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  const std::string a = ImportOrDie(store, tmp, "v1");
  const std::string b = ImportOrDie(store, tmp, "v2");
  ASSERT_TRUE(store.SetInitial("c7", b).ok());
  std::vector<std::pair<std::string, std::string>> records;
  for (int i = 0; i < 300; ++i)
    records.emplace_back(std::string("c").append(std::to_string(i)), i % 2 ? a : b);
  auto all = store.SetInitialAll(records);
  ASSERT_TRUE(all.ok()) << all.error().message;
  for (const auto& [name, digest] : records) {
    EXPECT_EQ(*store.History(name), (ImageHistory{digest, std::nullopt, std::nullopt})) << name;
  }
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp / "images/refs")) {
    EXPECT_FALSE(e.path().filename().string().starts_with(".tmp-")) << e.path();
    ++files;
  }
  EXPECT_EQ(files, 300U);
  EXPECT_TRUE(store.SetInitialAll({}).ok());

  auto bad_name = store.SetInitialAll({{"ok1", a}, {"../x", a}});
  ASSERT_FALSE(bad_name.ok());
  EXPECT_EQ(bad_name.error().code, ImageErrc::kInvalidArgument);
  EXPECT_NE(bad_name.error().message.find("../x"), std::string::npos) << bad_name.error().message;
  auto not_imported = store.SetInitialAll({{"ok2", kAbcDigest}});
  ASSERT_FALSE(not_imported.ok());
  EXPECT_EQ(not_imported.error().code, ImageErrc::kNotFound);
  EXPECT_FALSE(store.History("ok2").ok());
  for (const auto& e : std::filesystem::directory_iterator(tmp / "images/refs")) {
    EXPECT_FALSE(e.path().filename().string().starts_with(".tmp-")) << e.path();
  }
}

TEST(ImageStore, HistoryOperationsCheckNamesRecordsAndObjects) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  const std::string a = ImportOrDie(store, tmp, "v1");

  auto unknown = store.Current("api");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ImageErrc::kNotFound);
  EXPECT_NE(unknown.error().message.find(tmp / "images/refs/api.json"), std::string::npos)
      << unknown.error().message;
  EXPECT_EQ(store.BeginUpdate("api", a, system_clock::now()).error().code, ImageErrc::kNotFound);
  EXPECT_EQ(store.EndProbation("api").error().code, ImageErrc::kNotFound);
  EXPECT_EQ(store.Revert("api").error().code, ImageErrc::kNotFound);

  EXPECT_EQ(store.SetInitial("api", kAbcDigest).error().code,
            ImageErrc::kNotFound);  // not imported
  EXPECT_EQ(store.SetInitial("api", "sha256-x").error().code, ImageErrc::kInvalidArgument);
  for (const std::string& bad :
       std::vector<std::string>{"", "../api", ".hidden", "a/b", "-x", std::string(129, 'a')}) {
    EXPECT_EQ(store.SetInitial(bad, a).error().code, ImageErrc::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(store.SetInitial("worker@3", a).ok());
  EXPECT_TRUE(store.SetInitial("api_v-2", a).ok());
  EXPECT_EQ(store.BeginUpdate("api_v-2", kAbcDigest, system_clock::now()).error().code,
            ImageErrc::kNotFound);
  EXPECT_EQ(*store.History("api_v-2"), (ImageHistory{a, std::nullopt, std::nullopt}));
}

TEST(ImageStore, RecordsSurviveReopen) {
  TempDir tmp;
  const auto since = system_clock::time_point(1'700'000'123'456ms);
  std::string a;
  std::string b;
  {
    auto store = OpenOrDie(tmp / "images");
    a = ImportOrDie(store, tmp, "v1");
    b = ImportOrDie(store, tmp, "v2");
    ASSERT_TRUE(store.SetInitial("api", a).ok());
    ASSERT_TRUE(store.BeginUpdate("api", b, since).ok());
  }
  auto store = OpenOrDie(tmp / "images");
  EXPECT_EQ(*store.History("api"), (ImageHistory{b, a, since}));
  EXPECT_TRUE(store.Verify(a).ok());
  EXPECT_EQ(ModeOf(tmp / "images/refs/api.json") & 0077, 0u);
}

TEST(ImageStore, ACorruptRecordIsReportedAsCorrupt) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  const std::string a = ImportOrDie(store, tmp, "v1");
  const std::string path = tmp / "images/refs/api.json";
  for (const std::string& text :
       {std::string(""), std::string("{\"current\":"), std::string("[]"),
        std::string("{\"current\":\"sha256-zz\"}"), "{\"current\":\"" + a + "\",\"previous\":7}",
        "{\"current\":\"" + a + "\",\"probation_since_ms\":\"soon\"}"}) {
    WriteFile(path, text);
    auto history = store.History("api");
    ASSERT_FALSE(history.ok()) << text;
    EXPECT_EQ(history.error().code, ImageErrc::kCorrupt) << text;
    EXPECT_NE(history.error().message.find(path), std::string::npos) << history.error().message;
  }
}

TEST(ImageStore, ASecondOpenIsBusy) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  auto second = ImageStore::Open(tmp / "images");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ImageErrc::kBusy);
}

// --- Crashes and garbage ---

TEST(ImageStore, OpenRemovesWhatACrashLeftBetweenWriteAndRename) {
  TempDir tmp;
  std::string a;
  {
    auto store = OpenOrDie(tmp / "images");
    a = ImportOrDie(store, tmp, "v1");
    ASSERT_TRUE(store.SetInitial("api", a).ok());
  }
  // What an import and a record write killed before their rename leave:
  // a temp file with part of the content, in the directory of the final name.
  WriteFile(tmp / "images/objects/.tmp-Ab12Cd", "half an ima");
  WriteFile(tmp / "images/refs/.tmp-Ef34Gh", "{\"current\":");
  WriteFile(tmp / "images/installed/.Ij56Kl", "half a co");
  auto store = OpenOrDie(tmp / "images");
  EXPECT_EQ(Entries(tmp / "images/objects"), std::vector<std::string>{a});
  EXPECT_EQ(Entries(tmp / "images/refs"), std::vector<std::string>{"api.json"});
  EXPECT_TRUE(Entries(tmp / "images/installed").empty());
  EXPECT_EQ(*store.Current("api"), a);
  EXPECT_TRUE(store.Verify(a).ok());
}

TEST(ImageStore, PruneKeepsWhatARecordNames) {
  TempDir tmp;
  auto store = OpenOrDie(tmp / "images");
  const std::string a = ImportOrDie(store, tmp, "a");
  const std::string b = ImportOrDie(store, tmp, "b");
  const std::string c = ImportOrDie(store, tmp, "c");
  const std::string d = ImportOrDie(store, tmp, "d");
  ASSERT_TRUE(store.SetInitial("api", a).ok());
  ASSERT_TRUE(store.BeginUpdate("api", b, system_clock::now()).ok());
  ASSERT_TRUE(store.SetInitial("sensor", c).ok());
  for (const auto& x : {a, b, c, d}) ASSERT_TRUE(store.Install(x).ok());

  auto pruned = store.Prune();
  ASSERT_TRUE(pruned.ok()) << pruned.error().message;
  EXPECT_EQ(*pruned, std::vector<std::string>{d});
  for (const auto& kept : {a, b, c}) EXPECT_TRUE(store.Verify(kept).ok());
  EXPECT_EQ(store.Verify(d).error().code, ImageErrc::kNotFound);
  // The installed copies go with their objects.
  std::vector<std::string> installed{a, b, c};
  std::sort(installed.begin(), installed.end());
  EXPECT_EQ(Entries(tmp / "images/installed"), installed);

  ASSERT_TRUE(store.Forget("sensor").ok());
  ASSERT_TRUE(store.Forget("sensor").ok());
  pruned = store.Prune();
  ASSERT_TRUE(pruned.ok()) << pruned.error().message;
  EXPECT_EQ(*pruned, std::vector<std::string>{c});

  // Files that are not records name nothing.
  WriteFile(tmp / "images/refs/notes.txt", "sha256-...");
  WriteFile(tmp / "images/refs/.tmp-Xy.json", "{");
  pruned = store.Prune();
  ASSERT_TRUE(pruned.ok()) << pruned.error().message;
  EXPECT_TRUE(pruned->empty());

  // A record it cannot read stops it: what that record names is unknown.
  const std::string e = ImportOrDie(store, tmp, "e");
  WriteFile(tmp / "images/refs/broken.json", "not json");
  pruned = store.Prune();
  ASSERT_FALSE(pruned.ok());
  EXPECT_EQ(pruned.error().code, ImageErrc::kCorrupt);
  EXPECT_TRUE(store.Verify(e).ok());
}

}  // namespace
}  // namespace slate::image
