// Getting CIFAR-10 onto disk: reuse a folder that is already there, else
// unpack a local archive or download the official one, check its MD5,
// extract it safely and validate it, then move it into place in one rename,
// so a failure or an interrupted run never leaves a half-made dataset.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/archive.h"

namespace cifar {

// The folder name the official archive unpacks to.
constexpr const char* kBatchesFolder = "cifar-10-batches-bin";

// Returns the folder holding the seven CIFAR-10 files (cifar10_files()):
//  1. data_dir/cifar-10-batches-bin/, or data_dir itself, if it holds them
//     all; a folder holding only some throws, naming what is missing;
//  2. else the archive `data_archive`, or `data_url` downloaded into a
//     temporary file in data_dir (removed afterwards);
//  3. whose MD5 must equal `data_md5` (unless "none");
//  4. extracted into data_dir/.cifar-extract-XXXXXX, validated with the
//     reader, and renamed to data_dir/cifar-10-batches-bin/.
// Every failure is a one-line UserError (exit code 2) and leaves data_dir as
// it was. With `test_only` (an evaluation), a folder holding the test batch
// and the class names is enough in step 1.
std::filesystem::path obtain_cifar10(const DataConfig& config, bool test_only = false);

// The same with explicit size caps, so tests can refuse a small "bomb".
std::filesystem::path obtain_cifar10(const DataConfig& config, const ExtractLimits& limits, bool test_only = false);

// What a failed download tells the user to do; the defaults are the
// CIFAR-10 archive's.
struct DownloadHints {
  // Network failures (no route, DNS, timeouts, a cut transfer).
  std::string offline =
      "offline? pass --data-dir with an existing cifar-10-batches-bin/ or --data-archive PATH to a "
      "local cifar-10-binary.tar.gz";
  // HTTP errors and URLs that serve nothing.
  std::string bad_url = "check --data-url, or pass --data-archive PATH to a local cifar-10-binary.tar.gz";
  // The target folder cannot take the file.
  std::string folder = "pass --data-dir to a writable folder";
};

// Downloads `url` (http, https or file) into `dest`, overwriting it, with
// progress on stderr. Throws UserError "cannot download <url>: ..." with a
// hint on any failure, including HTTP status >= 400.
void download_file(const std::string& url, const std::filesystem::path& dest, const DownloadHints& hints = {});

// A download into a fresh temporary file in `dir`, named
// temp_name_prefix(prefix) + XXXXXX so that one left by a killed run is
// removed by the next (common/atomic_file.h). The file goes away with this
// object, on every path out (an error, a signal unwinding), unless keep_as()
// moved it into place first. A stop signal while it downloads ends it
// cleanly when a StopSignalsCaught is alive (common/signals.h).
class TempDownload {
 public:
  TempDownload(const std::string& url, const std::filesystem::path& dir, const std::string& prefix,
               const DownloadHints& hints = {});
  ~TempDownload();
  TempDownload(const TempDownload&) = delete;
  TempDownload& operator=(const TempDownload&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // Makes the file durable (fsync) and renames it to `dest`, in the same
  // folder: readers see the whole file or none.
  void keep_as(const std::filesystem::path& dest);

 private:
  std::filesystem::path path_;
};

// The folders a download into `dir` is about to create (`dir` and its
// missing parents, noted at construction, before the caller creates them):
// removed again, innermost first and only while empty, when this goes out
// of scope without keep(), so a failed download leaves no empty trail.
class NewFolders {
 public:
  explicit NewFolders(const std::filesystem::path& dir);
  ~NewFolders();
  NewFolders(const NewFolders&) = delete;
  NewFolders& operator=(const NewFolders&) = delete;
  void keep() { missing_.clear(); }

 private:
  std::vector<std::filesystem::path> missing_;
};

}  // namespace cifar
