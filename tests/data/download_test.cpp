#include "data/download.h"

#include <archive.h>
#include <archive_entry.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "data/archive.h"
#include "data/cifar_reader.h"
#include "test_util.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using testing::listing;
using testing::LoopbackServer;
using testing::TempDir;
using testing::write_bytes;

// ---- building archives ------------------------------------------------------

struct Entry {
  enum Kind { File, Folder, Symlink, Hardlink, CharDevice, Fifo };
  std::string name;
  Kind kind = File;
  std::string data;    // File contents, unless `source` is set
  fs::path source;     // File contents read from here
  std::string target;  // Symlink / Hardlink target
};

// Writes a .tar.gz with libarchive's write API, so hostile entries (links,
// devices, absolute paths) can be made without privileges. gzip level 1:
// the 185 MB real archive is built in a couple of seconds.
void write_tar_gz(const fs::path& out, const std::vector<Entry>& entries) {
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_write_new(), &archive_write_free);
  archive_write_add_filter_gzip(a.get());
  archive_write_set_format_pax_restricted(a.get());
  archive_write_set_options(a.get(), "gzip:compression-level=1");
  ASSERT_EQ(archive_write_open_filename(a.get(), out.c_str()), ARCHIVE_OK) << archive_error_string(a.get());
  for (const auto& e : entries) {
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(), &archive_entry_free);
    archive_entry_set_pathname(entry.get(), e.name.c_str());
    archive_entry_set_perm(entry.get(), 0644);
    std::string data = e.source.empty() ? e.data : read_file(e.source);
    switch (e.kind) {
      case Entry::File:
        archive_entry_set_filetype(entry.get(), AE_IFREG);
        archive_entry_set_size(entry.get(), static_cast<la_int64_t>(data.size()));
        break;
      case Entry::Folder:
        archive_entry_set_filetype(entry.get(), AE_IFDIR);
        archive_entry_set_perm(entry.get(), 0755);
        break;
      case Entry::Symlink:
        archive_entry_set_filetype(entry.get(), AE_IFLNK);
        archive_entry_set_symlink(entry.get(), e.target.c_str());
        break;
      case Entry::Hardlink:
        archive_entry_set_filetype(entry.get(), AE_IFREG);
        archive_entry_set_hardlink(entry.get(), e.target.c_str());
        break;
      case Entry::CharDevice:
        archive_entry_set_filetype(entry.get(), AE_IFCHR);
        archive_entry_set_rdevmajor(entry.get(), 1);
        archive_entry_set_rdevminor(entry.get(), 3);
        break;
      case Entry::Fifo:
        archive_entry_set_filetype(entry.get(), AE_IFIFO);
        break;
    }
    ASSERT_EQ(archive_write_header(a.get(), entry.get()), ARCHIVE_OK) << archive_error_string(a.get());
    if (e.kind == Entry::File && !data.empty()) {
      ASSERT_EQ(archive_write_data(a.get(), data.data(), data.size()),
                static_cast<la_ssize_t>(data.size()));
    }
  }
  ASSERT_EQ(archive_write_close(a.get()), ARCHIVE_OK) << archive_error_string(a.get());
}

// The official layout, from the real (J75) files.
std::vector<Entry> real_entries() {
  std::vector<Entry> entries{{"cifar-10-batches-bin/", Entry::Folder}};
  for (const auto& name : cifar10_files()) {
    entries.push_back({"cifar-10-batches-bin/" + name, Entry::File, "", testing::batches_dir() / name});
  }
  entries.push_back({"cifar-10-batches-bin/readme.html", Entry::File, "<html>CIFAR-10</html>\n"});
  return entries;
}

// The UserError obtain_cifar10 throws; fails the test if it returns.
UserError error_of(const DataConfig& config, const ExtractLimits& limits = {}) {
  try {
    auto dir = obtain_cifar10(config, limits);
    ADD_FAILURE() << "obtain_cifar10 returned " << dir;
  } catch (const UserError& e) {
    return e;
  }
  return UserError("no error");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string obtain_error(const DataConfig& config, bool test_only) {
  try {
    obtain_cifar10(config, test_only);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

// ---- tests that need the real archive ------------------------------------

class Download : public ::testing::Test {
 protected:
  // Built once: packing 185 MB dominates this suite's run time.
  static void SetUpTestSuite() {
    shared_ = new TempDir("archive");
    archive_ = shared_->path() / "cifar-10-binary.tar.gz";
    write_tar_gz(archive_, real_entries());
    md5_ = md5_file(archive_);
  }
  static void TearDownTestSuite() {
    delete shared_;
    shared_ = nullptr;
  }

  DataConfig config_for(const fs::path& data_dir) const {
    DataConfig config;
    config.data_dir = data_dir.string();
    config.data_md5 = md5_;
    config.data_url = "http://127.0.0.1:9/never-used.tar.gz";
    return config;
  }

  // The folder obtain_cifar10 returned is the real dataset, and the only
  // thing left in data_dir.
  static void expect_installed(const fs::path& returned, const fs::path& data_dir) {
    EXPECT_EQ(returned, data_dir / "cifar-10-batches-bin");
    auto data = read_cifar10(returned);
    EXPECT_EQ(data.train.size(), 50000);
    EXPECT_EQ(data.test.size(), 10000);
    EXPECT_EQ(data.class_names.front(), "airplane");
    EXPECT_TRUE(fs::exists(returned / "readme.html"));
    EXPECT_EQ(listing(data_dir), std::vector<std::string>{"cifar-10-batches-bin"});
  }

  static TempDir* shared_;
  static fs::path archive_;
  static std::string md5_;
};
TempDir* Download::shared_ = nullptr;
fs::path Download::archive_;
std::string Download::md5_;

TEST_F(Download, LocalArchiveWithMatchingMd5IsExtracted) {
  TempDir tmp("dl");
  auto config = config_for(tmp / "data");
  config.data_archive = archive_.string();
  expect_installed(obtain_cifar10(config), tmp / "data");
  EXPECT_TRUE(fs::exists(archive_)) << "a user's --data-archive must never be deleted";

  // A second run finds the folder and needs neither archive nor network.
  config.data_archive = (tmp / "gone.tar.gz").string();
  EXPECT_EQ(obtain_cifar10(config), tmp / "data" / "cifar-10-batches-bin");
}

// file:// with the MD5 check off: the official MD5 would refuse this J75
// copy, so passing proves "none" skips the check.
TEST_F(Download, FileUrlWithMd5NoneIsDownloadedAndTempArchiveRemoved) {
  TempDir tmp("dl");
  auto config = config_for(tmp / "data");
  config.data_url = "file://" + archive_.string();
  config.data_md5 = "none";
  expect_installed(obtain_cifar10(config), tmp / "data");
}

TEST_F(Download, HttpDownloadFollowsRedirect) {
  LoopbackServer server(shared_->path());
  TempDir tmp("dl");
  auto config = config_for(tmp / "data");
  config.data_url = server.url("/moved");
  expect_installed(obtain_cifar10(config), tmp / "data");
}

// ---- failures: nothing may be left in data_dir ------------------------------

// A small archive, enough for every failure before validation.
fs::path small_archive(const TempDir& tmp) {
  const auto archive = tmp / "cifar-10-binary.tar.gz";
  write_tar_gz(archive, {{"cifar-10-batches-bin/batches.meta.txt", Entry::File, "airplane\n"}});
  return archive;
}

// 1 MB of noise (an LCG from `seed`), which deflate stores uncompressed.
std::string noise(uint32_t seed) {
  std::string bytes(1 << 20, '\0');
  for (char& c : bytes) c = static_cast<char>((seed = seed * 1664525u + 1013904223u) >> 24);
  return bytes;
}

DataConfig config_in(const TempDir& tmp) {
  DataConfig config;
  config.data_dir = (tmp / "data").string();
  config.data_url = "http://127.0.0.1:9/never-used.tar.gz";
  return config;
}

TEST(DownloadFailure, Md5MismatchNamesBothAndExtractsNothing) {
  TempDir tmp("dl");
  auto config = config_in(tmp);
  config.data_archive = small_archive(tmp).string();  // checked against the official MD5
  auto e = error_of(config);
  const std::string msg = e.what();
  EXPECT_EQ(e.exit_code(), 2);
  EXPECT_TRUE(contains(msg, "MD5 mismatch for " + config.data_archive)) << msg;
  EXPECT_TRUE(contains(msg, "expected c32a1d4ab5d03f1284b67883e8d87530")) << msg;
  EXPECT_TRUE(contains(msg, "got " + md5_file(config.data_archive))) << msg;
  EXPECT_EQ(listing(tmp / "data"), std::vector<std::string>{});
}

// A run killed mid-extraction leaves its hidden folder (up to 180 MB): the
// next one removes those of this host's dead processes, never a live one's.
TEST(DownloadFailure, AbandonedExtractionFoldersOfDeadRunsAreRemoved) {
  TempDir tmp("dl");
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const pid_t dead = ::fork();  // reaped at once: certainly gone
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const fs::path abandoned = tmp / "data" / (".cifar-extract-" + std::string(host) + "." + std::to_string(dead) + ".Ab12");
  const fs::path live = tmp / "data" / (".cifar-extract-" + std::string(host) + ".1.Cd34");  // pid 1
  for (const auto& dir : {abandoned, live}) testing::write_bytes(dir / "cifar-10-batches-bin" / "data_batch_1.bin", "x");
  auto config = config_in(tmp);
  config.data_archive = small_archive(tmp).string();  // refused by the MD5 check, after the sweep
  error_of(config);
  EXPECT_FALSE(fs::exists(abandoned));
  EXPECT_TRUE(fs::exists(live / "cifar-10-batches-bin" / "data_batch_1.bin"));
}

TEST(DownloadFailure, Http404IsOneLineError) {
  TempDir tmp("dl");
  LoopbackServer server(tmp.path());
  auto config = config_in(tmp);
  config.data_url = server.url("/missing.tar.gz");
  auto e = error_of(config);
  const std::string msg = e.what();
  EXPECT_EQ(e.exit_code(), 2);
  EXPECT_TRUE(contains(msg, "cannot download " + config.data_url + ": ")) << msg;
  EXPECT_TRUE(contains(msg, "404")) << msg;
  EXPECT_TRUE(contains(msg, "--data-archive")) << msg;
  EXPECT_FALSE(contains(msg, "\n")) << msg;
  EXPECT_EQ(listing(tmp / "data"), std::vector<std::string>{});
}

TEST(DownloadFailure, InterruptedDownloadLeavesNothing) {
  TempDir tmp("dl");
  LoopbackServer server(tmp.path());
  auto config = config_in(tmp);
  config.data_url = server.url("/cut");
  auto e = error_of(config);
  const std::string msg = e.what();
  EXPECT_EQ(e.exit_code(), 2);
  EXPECT_TRUE(contains(msg, "cannot download " + config.data_url + ": ")) << msg;
  EXPECT_FALSE(contains(msg, "\n")) << msg;
  EXPECT_EQ(listing(tmp / "data"), std::vector<std::string>{});
}

// Ctrl-C during a download: the run unwinds as on an error (exit 130), so
// the partial download and the folders it made go at once, not at the
// next run in that folder.
TEST(DownloadFailure, SigintDuringADownloadRemovesItsFiles) {
  TempDir tmp("dl");
  LoopbackServer server(tmp.path());
  testing::Child run({"--data-dir", (tmp / "data" / "cifar").string(), "--data-url", server.url("/slow"),
                      "--output-dir", (tmp / "out").string(), "--epochs", "1"});
  ASSERT_TRUE(run.wait_for_output("downloading", 60)) << run.output();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(listing(tmp / "data" / "cifar").size(), 1u) << "the partial download is there";
  run.send(SIGINT);
  const auto result = run.wait(30);
  EXPECT_EQ(result.exit_code, 130) << result.output;
  EXPECT_TRUE(contains(result.output, "error: interrupted by SIGINT while downloading " + server.url("/slow") +
                                          "; the partial download was removed"))
      << result.output;
  EXPECT_FALSE(fs::exists(tmp / "data")) << "the folders the run made are gone too";
}

TEST(DownloadFailure, HttpServedGarbageIsRefusedAndRemoved) {
  TempDir tmp("dl");
  write_bytes(tmp / "page.html", "<html>Not the archive</html>");
  LoopbackServer server(tmp.path());
  auto config = config_in(tmp);
  config.data_url = server.url("/page.html");
  config.data_md5 = "none";
  const std::string msg = error_of(config).what();
  // Named by its URL: the temporary download means nothing to the user.
  EXPECT_TRUE(contains(msg, "corrupt or truncated archive " + config.data_url)) << msg;
  EXPECT_FALSE(contains(msg, ".cifar-download-")) << msg;
  EXPECT_EQ(listing(tmp / "data"), std::vector<std::string>{});
}

TEST(DownloadFailure, TruncatedArchiveIsRefused) {
  TempDir tmp("dl");
  // 1 MB of noise does not compress, so half the archive ends mid-entry.
  write_tar_gz(tmp / "whole.tar.gz", {{"cifar-10-batches-bin/data_batch_1.bin", Entry::File, noise(12345)}});
  const std::string whole = read_file(tmp / "whole.tar.gz");
  write_bytes(tmp / "short.tar.gz", whole.substr(0, whole.size() / 2));
  auto config = config_in(tmp);
  config.data_archive = (tmp / "short.tar.gz").string();
  config.data_md5 = "none";
  auto e = error_of(config);
  const std::string msg = e.what();
  EXPECT_EQ(e.exit_code(), 2);
  EXPECT_TRUE(contains(msg, "corrupt or truncated archive " + config.data_archive)) << msg;
  EXPECT_FALSE(contains(msg, "\n")) << msg;
  EXPECT_EQ(listing(tmp / "data"), std::vector<std::string>{});
}

// A byte changed inside a stored deflate block still decodes: only the
// gzip trailer's CRC-32 tells, and libarchive does not check it. With
// --data-md5 none (mirrors, repacks) nothing else would.
TEST(DownloadFailure, AGzipWhoseCrcFailsIsRefused) {
  TempDir tmp("dl");
  write_tar_gz(tmp / "whole.tar.gz", {{"cifar-10-batches-bin/data_batch_1.bin", Entry::File, noise(777)}});
  std::string bytes = read_file(tmp / "whole.tar.gz");
  bytes[bytes.size() / 2] ^= 0x01;
  write_bytes(tmp / "flipped.tar.gz", bytes);
  auto config = config_in(tmp);
  config.data_archive = (tmp / "flipped.tar.gz").string();
  config.data_md5 = "none";
  auto e = error_of(config);
  const std::string msg = e.what();
  EXPECT_EQ(e.exit_code(), 2);
  EXPECT_TRUE(contains(msg, "corrupt or truncated archive " + config.data_archive + ": gzip check failed: ")) << msg;
  EXPECT_EQ(listing(tmp / "data"), std::vector<std::string>{});
}

TEST(DownloadFailure, ConnectionRefusedGivesOfflineHint) {
  TempDir tmp("dl");
  DataConfig config;
  config.data_dir = (tmp / "new" / "e" / ".." / "data" / "").string();  // makes new/e and new/data
  config.data_url =
      "http://127.0.0.1:" + std::to_string(testing::find_free_loopback_port()) + "/cifar-10-binary.tar.gz";
  auto e = error_of(config);
  const std::string msg = e.what();
  EXPECT_EQ(e.exit_code(), 2);
  EXPECT_TRUE(contains(msg, "cannot download " + config.data_url + ": ")) << msg;
  EXPECT_TRUE(contains(msg,
                       "(hint: offline? pass --data-dir with an existing cifar-10-batches-bin/ or "
                       "--data-archive PATH to a local cifar-10-binary.tar.gz)"))
      << msg;
  EXPECT_FALSE(contains(msg, "\n")) << msg;
  // The folders made for the download are gone again; what was there stays.
  EXPECT_FALSE(fs::exists(tmp / "new")) << msg;
  EXPECT_TRUE(fs::exists(tmp.path()));
}

TEST(DownloadFailure, MissingFileUrlIsOneLineError) {
  TempDir tmp("dl");
  DataConfig config;
  config.data_dir = (tmp / "data").string();
  config.data_url = "file://" + (tmp / "nowhere.tar.gz").string();
  const std::string msg = error_of(config).what();
  EXPECT_TRUE(contains(msg, "cannot download " + config.data_url)) << msg;
  EXPECT_EQ(listing(tmp / "data"), std::vector<std::string>{});
}

TEST(ExistingFolder, PartialFolderNamesMissingFileAndIsKept) {
  TempDir tmp("dl");
  const auto dir = tmp / "data" / "cifar-10-batches-bin";
  for (const auto& name : cifar10_files()) {
    if (name != "data_batch_3.bin") write_bytes(dir / name, "user data");
  }
  const DataConfig config = config_in(tmp);
  auto e = error_of(config);
  const std::string msg = e.what();
  EXPECT_EQ(e.exit_code(), 2);
  EXPECT_TRUE(contains(msg, "incomplete CIFAR-10 folder " + dir.string())) << msg;
  EXPECT_TRUE(contains(msg, "missing data_batch_3.bin")) << msg;
  EXPECT_EQ(listing(dir).size(), 6u);
  EXPECT_EQ(read_file(dir / "data_batch_1.bin"), "user data");
}

// A folder of real batches but one: cut short at a record boundary (a full
// disk during a copy), a directory in a file's place. Both were used (the
// short one trained on less data, silently) or called "missing".
TEST(ExistingFolder, ABatchOfAnotherSizeOrNoFileIsRefusedAndKept) {
  TempDir tmp("dl");
  const auto dir = tmp / "data" / "cifar-10-batches-bin";
  fs::create_directories(dir);
  for (const auto& name : cifar10_files()) {
    if (name != "data_batch_2.bin") fs::create_symlink(testing::batches_dir() / name, dir / name);
  }
  const std::string half = read_file(testing::batches_dir() / "data_batch_2.bin").substr(0, 5000 * kRecordBytes);
  write_bytes(dir / "data_batch_2.bin", half);
  const DataConfig config = config_in(tmp);
  auto e = error_of(config);
  EXPECT_EQ(e.exit_code(), 2);
  EXPECT_TRUE(contains(e.what(), "corrupt CIFAR-10 file " + (dir / "data_batch_2.bin").string() +
                                     ": 15365000 bytes, expected 30730000 (10000 records)"))
      << e.what();
  EXPECT_EQ(read_file(dir / "data_batch_2.bin"), half);

  fs::remove(dir / "data_batch_2.bin");
  fs::create_directory(dir / "data_batch_2.bin");
  e = error_of(config);
  EXPECT_TRUE(contains(e.what(), "CIFAR-10 file " + (dir / "data_batch_2.bin").string() + " is not a regular file"))
      << e.what();
}

// A data folder the user cannot look into is not an absent one: it was
// downloaded into, and the download then could not be put in place.
TEST(ExistingFolder, AFolderThatCannotBeReadIsNamedNotDownloadedOver) {
  TempDir tmp("dl");
  const auto dir = tmp / "data" / "cifar-10-batches-bin";
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::none);
  // Root reads anything: the check runs in a child as nobody when we are root.
  const auto child = testing::run_forked([&] {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(3);
    std::cout << obtain_error(config_in(tmp), false);
  });
  fs::permissions(dir, fs::perms::owner_all);
  ASSERT_EQ(child.exit_code, 0) << child.output;
  const std::string& message = child.output;
  EXPECT_TRUE(contains(message, "cannot read ")) << message;
  EXPECT_TRUE(contains(message, "Permission denied")) << message;
  EXPECT_FALSE(contains(message, "download")) << message;
}

// An evaluation reads the test batch and the class names only: a folder of
// those serves it, and one lacking the names is told about them alone.
TEST(ExistingFolder, AnEvaluationNeedsOnlyTheTestBatchAndTheClassNames) {
  TempDir tmp("dl");
  const auto dir = tmp / "data" / "cifar-10-batches-bin";
  fs::create_directories(dir);
  fs::create_symlink(testing::batches_dir() / "test_batch.bin", dir / "test_batch.bin");
  const DataConfig config = config_in(tmp);
  const std::string lacking = obtain_error(config, true);
  EXPECT_TRUE(contains(lacking, "incomplete CIFAR-10 folder " + dir.string() + ": missing batches.meta.txt (hint:"))
      << lacking;
  fs::create_symlink(testing::batches_dir() / "batches.meta.txt", dir / "batches.meta.txt");
  EXPECT_EQ(obtain_cifar10(config, true), dir);
  EXPECT_TRUE(contains(obtain_error(config, false), "missing data_batch_1.bin"));
}

// ...and it does not check the training batches it will not read: one cut
// short, or a folder in a batch's place, is left to a training run to refuse.
TEST(ExistingFolder, AnEvaluationIgnoresTrainingBatchesItDoesNotRead) {
  TempDir tmp("dl");
  const auto dir = tmp / "data" / "cifar-10-batches-bin";
  fs::create_directories(dir);
  for (const auto& name : cifar10_files()) {
    if (name != "data_batch_2.bin" && name != "data_batch_3.bin") fs::create_symlink(testing::batches_dir() / name, dir / name);
  }
  write_bytes(dir / "data_batch_2.bin", "cut short");
  fs::create_directory(dir / "data_batch_3.bin");
  const DataConfig config = config_in(tmp);
  EXPECT_EQ(obtain_cifar10(config, true), dir);
  EXPECT_TRUE(contains(obtain_error(config, false), "data_batch_"));
}

TEST(ExistingFolder, FilesDirectlyInDataDirAreAccepted) {
  TempDir tmp("dl");
  for (const auto& name : cifar10_files()) {
    fs::create_symlink(testing::batches_dir() / name, tmp / name);
  }
  DataConfig config;
  config.data_dir = tmp.path().string();
  config.data_url = "http://127.0.0.1:9/never-used.tar.gz";
  EXPECT_EQ(obtain_cifar10(config), tmp.path());
  // A malformed --data-md5 is still refused: the typo must not wait for a
  // machine without the data to show.
  config.data_md5 = "abc";
  EXPECT_TRUE(contains(error_of(config).what(), "--data-md5 'abc' is not a 32-digit hex MD5"));
}

TEST(DownloadFailure, BadMd5FlagIsRefusedBeforeAnyWork) {
  TempDir tmp("dl");
  DataConfig config;
  config.data_dir = (tmp / "data").string();
  config.data_md5 = "abc123";
  const std::string msg = error_of(config).what();
  EXPECT_TRUE(contains(msg, "--data-md5 'abc123' is not a 32-digit hex MD5")) << msg;
  EXPECT_FALSE(fs::exists(tmp / "data"));
}

TEST(DownloadFailure, MissingLocalArchiveIsNamed) {
  TempDir tmp("dl");
  DataConfig config;
  config.data_dir = (tmp / "data").string();
  config.data_archive = (tmp / "nope.tar.gz").string();
  const std::string msg = error_of(config).what();
  EXPECT_TRUE(contains(msg, "--data-archive " + config.data_archive + " is not a file")) << msg;
}

TEST(Md5, MatchesKnownVectors) {
  TempDir tmp("md5");
  write_bytes(tmp / "empty", "");
  write_bytes(tmp / "abc", "abc");
  EXPECT_EQ(md5_file(tmp / "empty"), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5_file(tmp / "abc"), "900150983cd24fb0d6963f7d28e17f72");
  // Past one 1 MiB read chunk, so the streaming path is exercised.
  write_bytes(tmp / "big", std::string(3 << 20, 'a'));
  EXPECT_EQ(md5_file(tmp / "big").size(), 32u);
  EXPECT_NE(md5_file(tmp / "big"), md5_file(tmp / "abc"));
}

// ---- hostile and broken archives ------------------------------------------------

// Packs `entries`, runs obtain_cifar10 on it (MD5 check off), and returns
// the error after checking it is exit code 2 and nothing was left behind.
std::string refusal(const TempDir& tmp, const std::vector<Entry>& entries,
                    const ExtractLimits& limits = {}) {
  const auto archive = tmp / "hostile.tar.gz";
  write_tar_gz(archive, entries);
  DataConfig config;
  config.data_dir = (tmp / "data").string();
  config.data_archive = archive.string();
  config.data_md5 = "none";
  auto e = error_of(config, limits);
  EXPECT_EQ(e.exit_code(), 2);
  EXPECT_EQ(listing(tmp / "data"), std::vector<std::string>{});
  EXPECT_FALSE(contains(e.what(), "\n")) << e.what();
  return e.what();
}

const Entry kMeta{"cifar-10-batches-bin/batches.meta.txt", Entry::File, "airplane\n"};

TEST(HostileArchive, AbsolutePathIsRefused) {
  TempDir tmp("hostile");
  const auto outside = tmp / "outside.txt";
  auto msg = refusal(tmp, {kMeta, {outside.string(), Entry::File, "pwned"}});
  EXPECT_TRUE(contains(msg, "entry '" + outside.string() + "' has an absolute path")) << msg;
  EXPECT_FALSE(fs::exists(outside));
}

TEST(HostileArchive, DotDotIsRefused) {
  TempDir tmp("hostile");
  auto msg = refusal(tmp, {kMeta, {"cifar-10-batches-bin/../../escaped.txt", Entry::File, "pwned"}});
  EXPECT_TRUE(contains(msg, "entry 'cifar-10-batches-bin/../../escaped.txt' has a '..' component"))
      << msg;
  EXPECT_FALSE(fs::exists(tmp / "escaped.txt"));
}

TEST(HostileArchive, SymlinkIsRefused) {
  TempDir tmp("hostile");
  auto msg = refusal(tmp, {kMeta, {"cifar-10-batches-bin/data_batch_1.bin", Entry::Symlink, "", {},
                                   "/etc/passwd"}});
  EXPECT_TRUE(contains(msg, "entry 'cifar-10-batches-bin/data_batch_1.bin' is a symbolic link "
                            "(to '/etc/passwd')"))
      << msg;
}

TEST(HostileArchive, EntryNamesAndLinkTargetsAreQuotedPrintably) {
  TempDir tmp("hostile");
  auto msg = refusal(tmp, {kMeta, {"cifar-10-batches-bin/\x1b[2Jx.bin", Entry::Symlink, "", {}, "/etc/\npasswd"}});
  EXPECT_TRUE(contains(msg, "entry 'cifar-10-batches-bin/?[2Jx.bin' is a symbolic link (to '/etc/?passwd')")) << msg;
}

TEST(HostileArchive, HardlinkIsRefused) {
  TempDir tmp("hostile");
  auto msg = refusal(tmp, {kMeta, {"cifar-10-batches-bin/data_batch_1.bin", Entry::Hardlink, "", {},
                                   "cifar-10-batches-bin/batches.meta.txt"}});
  EXPECT_TRUE(contains(msg, "entry 'cifar-10-batches-bin/data_batch_1.bin' is a hard link")) << msg;
}

TEST(HostileArchive, DeviceAndFifoAreRefused) {
  {
    TempDir tmp("hostile");
    auto msg = refusal(tmp, {kMeta, {"cifar-10-batches-bin/null", Entry::CharDevice}});
    EXPECT_TRUE(contains(msg, "entry 'cifar-10-batches-bin/null' is a character device")) << msg;
  }
  {
    TempDir tmp("hostile");
    auto msg = refusal(tmp, {kMeta, {"cifar-10-batches-bin/pipe", Entry::Fifo}});
    EXPECT_TRUE(contains(msg, "entry 'cifar-10-batches-bin/pipe' is a FIFO")) << msg;
  }
}

TEST(HostileArchive, OversizedEntryIsRefused) {
  TempDir tmp("hostile");
  ExtractLimits limits;
  limits.max_entry_bytes = 1000;
  auto msg = refusal(tmp, {kMeta, {"cifar-10-batches-bin/data_batch_1.bin", Entry::File,
                                   std::string(2000, 'x')}},
                     limits);
  EXPECT_TRUE(contains(msg, "entry 'cifar-10-batches-bin/data_batch_1.bin' is 2000 bytes, over the "
                            "limit of 1000 bytes per entry"))
      << msg;
}

TEST(HostileArchive, ArchivePastTotalCapIsRefused) {
  TempDir tmp("hostile");
  ExtractLimits limits;
  limits.max_entry_bytes = 1000;
  limits.max_total_bytes = 1500;
  auto msg = refusal(tmp,
                     {{"cifar-10-batches-bin/data_batch_1.bin", Entry::File, std::string(800, 'x')},
                      {"cifar-10-batches-bin/data_batch_2.bin", Entry::File, std::string(800, 'x')}},
                     limits);
  EXPECT_TRUE(contains(msg, "entry 'cifar-10-batches-bin/data_batch_2.bin' brings the archive past "
                            "the limit of 1500 bytes in all"))
      << msg;
}

TEST(HostileArchive, GarbageIsRefused) {
  TempDir tmp("hostile");
  std::string garbage = "\x1f\x8b";  // a gzip magic number, then noise
  for (int i = 0; i < 4096; ++i) garbage += static_cast<char>((i * 7919) & 0xff);
  write_bytes(tmp / "garbage.tar.gz", garbage);
  DataConfig config;
  config.data_dir = (tmp / "data").string();
  config.data_archive = (tmp / "garbage.tar.gz").string();
  config.data_md5 = "none";
  auto e = error_of(config);
  const std::string msg = e.what();
  EXPECT_EQ(e.exit_code(), 2);
  EXPECT_TRUE(contains(msg, "corrupt or truncated archive " + config.data_archive)) << msg;
  EXPECT_FALSE(contains(msg, "\n")) << msg;
  EXPECT_EQ(listing(tmp / "data"), std::vector<std::string>{});
}

// A ustar header for a regular file `name` of `size` bytes (11 octal
// digits: up to 8 GiB), written by hand so it may claim any size.
std::string tar_header(const std::string& name, uint64_t size) {
  std::string h(512, '\0');
  name.copy(&h[0], 99);
  std::snprintf(&h[100], 8, "%07o", 0644u);
  std::snprintf(&h[124], 12, "%011llo", static_cast<unsigned long long>(size));
  h[156] = '0';  // a regular file
  std::memcpy(&h[257], "ustar\0" "00", 8);
  std::memset(&h[148], ' ', 8);  // the checksum counts its own field as spaces
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(&h[148], 7, "%06o", sum);
  return h;
}

// A gzip file of `prefix`, then `zero_mib` MiB of zeros, then `suffix`,
// built in well under a second however large: zlib deflates 1 MiB of zeros
// once, after 64 KiB of them so that every match it emits reaches back into
// zeros, and those bytes are repeated: they decode to the same 1 MiB
// wherever zeros precede them. The trailer holds the CRC-32 and length of
// the whole stream (crc32_combine), so zlib inflates it to the end without
// complaint, as it would a real 5 GB archive.
std::string gzip_with_zeros(const std::string& prefix, uint64_t zero_mib, const std::string& suffix) {
  constexpr size_t kMiB = 1 << 20, kLead = 64 << 10;
  EXPECT_GE(zero_mib, 2u);
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);  // raw deflate
  auto deflate_some = [&z](const std::string& in, int flush) {
    std::string out;
    std::vector<char> buf(1 << 16);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    do {
      z.next_out = reinterpret_cast<Bytef*>(buf.data());
      z.avail_out = static_cast<uInt>(buf.size());
      deflate(&z, flush);
      out.append(buf.data(), buf.size() - z.avail_out);
    } while (z.avail_out == 0);
    return out;
  };
  const std::string mib(kMiB, '\0');
  std::string gz("\x1f\x8b\x08\0\0\0\0\0\0\x03", 10);
  gz += deflate_some(prefix + std::string(kLead, '\0'), Z_SYNC_FLUSH);
  const std::string one_mib = deflate_some(mib, Z_SYNC_FLUSH);
  for (uint64_t i = 1; i < zero_mib; ++i) gz += one_mib;
  gz += deflate_some(std::string(kMiB - kLead, '\0') + suffix, Z_FINISH);
  deflateEnd(&z);
  auto crc_of = [](const std::string& bytes) {
    return crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size()));
  };
  uLong crc = crc_of(prefix);
  const uLong crc_mib = crc_of(mib);
  for (uint64_t i = 0; i < zero_mib; ++i) crc = crc32_combine(crc, crc_mib, kMiB);
  crc = crc32_combine(crc, crc_of(suffix), static_cast<z_off_t>(suffix.size()));
  const uint64_t length = prefix.size() + zero_mib * kMiB + suffix.size();
  for (uint64_t word : {static_cast<uint64_t>(crc), length}) {
    for (int i = 0; i < 4; ++i) gz += static_cast<char>((word >> (8 * i)) & 0xff);
  }
  return gz;
}

double cpu_seconds_of_children() {
  rusage usage{};
  ::getrusage(RUSAGE_CHILDREN, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// A gzip bomb, 5 MB declaring (and holding) a 5 GiB batch, given with
// --data-md5 none: refused at its first header, while zlib has inflated one
// chunk. The caps once applied only after a separate gzip check had
// inflated all of it first: 11 s of CPU.
TEST(HostileArchive, AGzipBombIsRefusedBeforeItIsInflated) {
  TempDir tmp("bomb");
  constexpr uint64_t kEntryMiB = 5 << 10;
  const std::string bomb = gzip_with_zeros(tar_header("cifar-10-batches-bin/data_batch_1.bin", kEntryMiB << 20),
                                           kEntryMiB, std::string(1024, '\0'));
  ASSERT_LT(bomb.size(), 8u << 20);
  write_bytes(tmp / "bomb.tar.gz", bomb);
  const double cpu_before = cpu_seconds_of_children();
  const auto r = testing::run_cifar10({"--data-dir", (tmp / "data").string(), "--data-archive",
                                       (tmp / "bomb.tar.gz").string(), "--data-md5", "none", "--output-dir",
                                       (tmp / "out").string(), "--epochs", "1"},
                                      120);
  const double cpu = cpu_seconds_of_children() - cpu_before;
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "error: refusing archive " + (tmp / "bomb.tar.gz").string() +
                                     ": entry 'cifar-10-batches-bin/data_batch_1.bin' is 5368709120 bytes, over the "
                                     "limit of 104857600 bytes per entry"))
      << r.output;
  EXPECT_EQ(r.output.find("error:"), r.output.rfind("error:")) << "one error line:\n" << r.output;
  // The binary's own start (LibTorch) is about half a second of it.
  EXPECT_LT(cpu, 4.0) << "CPU seconds spent refusing a gzip bomb";
  EXPECT_FALSE(fs::exists(tmp / "data"));
}

// Past the tar's end the gzip stream may go on (more members, or zeros):
// zlib checks it to its end, under the same cap on what it inflates.
TEST(HostileArchive, ABombAfterTheTarsEndIsCappedToo) {
  TempDir tmp("bomb");
  std::string tar = tar_header("cifar-10-batches-bin/batches.meta.txt", 9) + "airplane\n";
  tar.resize(1024 + 1024, '\0');  // the entry padded to its block, then the two end blocks
  write_bytes(tmp / "tail.tar.gz", gzip_with_zeros(tar, 10, ""));
  DataConfig config = config_in(tmp);
  config.data_archive = (tmp / "tail.tar.gz").string();
  config.data_md5 = "none";
  ExtractLimits limits;
  limits.max_total_bytes = 64 << 10;
  const auto e = error_of(config, limits);
  EXPECT_EQ(e.exit_code(), 2);
  EXPECT_EQ(std::string(e.what()), "refusing archive " + config.data_archive + ": it expands past " +
                                       std::to_string((64 << 10) + (8 << 10) + (1 << 20)) +
                                       " bytes, over the limit of 65536 bytes in all (hint: use the official "
                                       "cifar-10-binary.tar.gz, or pass --data-dir with an existing "
                                       "cifar-10-batches-bin/)");
  EXPECT_EQ(listing(tmp / "data"), std::vector<std::string>{});
}

TEST(HostileArchive, ArchiveWithoutBatchesFolderIsRefused) {
  TempDir tmp("hostile");
  auto msg = refusal(tmp, {{"cifar-10-batches-py/data_batch_1", Entry::File, "pickle"}});
  EXPECT_TRUE(contains(msg, "holds no cifar-10-batches-bin/ folder")) << msg;
}

TEST(HostileArchive, ShortBatchFailsValidation) {
  TempDir tmp("hostile");
  std::vector<Entry> entries;
  for (const auto& name : cifar10_files()) {
    entries.push_back({"cifar-10-batches-bin/" + name, Entry::File, std::string(kRecordBytes, '\0')});
  }
  entries.back().source = testing::batches_dir() / "batches.meta.txt";
  auto msg = refusal(tmp, entries);
  // Named inside the archive, not by the temporary folder it was checked in.
  EXPECT_TRUE(contains(msg, "hostile.tar.gz:cifar-10-batches-bin/data_batch_1.bin: 1 records, "
                            "expected 10000"))
      << msg;
  EXPECT_FALSE(contains(msg, ".cifar-extract-")) << msg;
}

TEST(HostileArchive, MissingBatchFailsValidation) {
  TempDir tmp("hostile");
  auto msg = refusal(tmp, {kMeta});
  EXPECT_TRUE(contains(msg, "lacks cifar-10-batches-bin/data_batch_1.bin")) << msg;
}

}  // namespace
}  // namespace cifar
