// Downloading a URL into a file with libcurl (http, https or file://, with
// progress on stderr and a hint for each kind of failure), a download into a
// temporary file that goes away unless kept, and the folders a download is
// about to create, removed again when it fails.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace cifar {

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

// fsync(2) on the folder `dir`, so that a rename into it survives a crash;
// best effort: a folder that cannot be opened is skipped.
void fsync_dir(const std::filesystem::path& dir);

}  // namespace cifar
