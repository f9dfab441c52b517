#include "data/download.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/signals.h"
#include "data/cifar_reader.h"
#include "data/url_download.h"

namespace cifar {
namespace fs = std::filesystem;

namespace {

// Each official batch holds exactly 10,000 records; a file that parses but
// holds fewer is a damaged or foreign archive.
constexpr int64_t kRecordsPerBatch = 10000;

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (size_t pos = 0; (pos = text.find(from, pos)) != std::string::npos; pos += to.size()) {
    text.replace(pos, from.size(), to);
  }
}

// Removes a temporary file or folder when the scope ends, however it ends.
struct RemoveOnExit {
  fs::path path;
  ~RemoveOnExit() {
    if (!path.empty()) remove_tree(path);
  }
};

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// The folder already holding all seven files, if any. A folder holding only
// some is the user's (a failed copy, a deleted file): refuse rather than
// extract over it. So is one we cannot look into (taken for absent, it led
// to a whole download that then could not be put in place), a batch name
// that is no file, and a batch of another size than CIFAR-10's 10,000
// records (a copy cut short at a record boundary trained on less data).
std::optional<fs::path> find_complete(const fs::path& data_dir, bool test_only) {
  const std::string keep_hint =
      " (hint: restore the folder's files, or move it away so the archive is extracted again)";
  // An evaluation reads the test batch and the class names only, so it
  // neither needs nor checks the training batches.
  auto unused = [test_only](const std::string& name) { return test_only && name.rfind("data_batch_", 0) == 0; };
  for (const fs::path& dir : {data_dir / kBatchesFolder, data_dir}) {
    std::vector<std::string> missing;
    for (const auto& name : cifar10_files()) {
      std::error_code ec;
      const auto status = fs::status(dir / name, ec);
      if (status.type() == fs::file_type::not_found) {
        missing.push_back(name);
      } else if (unused(name)) {
        continue;
      } else if (ec) {
        const bool loop = ec == std::errc::too_many_symbolic_link_levels;
        throw UserError("cannot read " + (dir / name).string() + ": " + ec.message() + " (hint: " +
                        (loop ? "a symbolic link there leads back to itself: fix or remove it"
                              : "make the data folder readable") +
                        ", or pass another --data-dir)");
      } else if (!fs::is_regular_file(status)) {
        throw UserError("CIFAR-10 file " + (dir / name).string() + " is not a regular file" + keep_hint);
      }
    }
    const bool has_test = std::find(missing.begin(), missing.end(), "test_batch.bin") == missing.end() &&
                          std::find(missing.begin(), missing.end(), "batches.meta.txt") == missing.end();
    if (missing.empty() || (test_only && has_test)) {
      for (const auto& name : cifar10_files()) {
        if (name == "batches.meta.txt" || unused(name) ||
            std::find(missing.begin(), missing.end(), name) != missing.end()) {
          continue;
        }
        std::error_code ec;
        const auto bytes = fs::file_size(dir / name, ec);
        if (!ec && bytes != static_cast<uintmax_t>(kRecordsPerBatch * kRecordBytes)) {
          throw UserError("corrupt CIFAR-10 file " + (dir / name).string() + ": " + std::to_string(bytes) +
                          " bytes, expected " + std::to_string(kRecordsPerBatch * kRecordBytes) + " (" +
                          std::to_string(kRecordsPerBatch) + " records)" + keep_hint);
        }
      }
      return dir;
    }
    if (missing.size() < cifar10_files().size()) {
      // An evaluation names only what it needs.
      missing.erase(std::remove_if(missing.begin(), missing.end(), unused), missing.end());
      throw UserError("incomplete CIFAR-10 folder " + dir.string() + ": missing " + join(missing) +
                      " (hint: restore the missing files, or move the folder away so the "
                      "archive is extracted again)");
    }
  }
  return std::nullopt;
}

// "none", or 32 lowercase hex digits; checked before any download starts.
std::string expected_md5(const std::string& flag) {
  std::string md5;
  for (char c : flag) {
    if (!std::isspace(static_cast<unsigned char>(c))) md5 += static_cast<char>(std::tolower(c));
  }
  if (md5 == "none") return md5;
  bool hex = md5.size() == 32;
  for (char c : md5) hex = hex && std::isxdigit(static_cast<unsigned char>(c));
  check_input(hex, "--data-md5 '" + flag + "' is not a 32-digit hex MD5",
              "pass the archive's MD5, or none to skip the check");
  return md5;
}

// Reads every file as training would, so a bad archive fails here, before
// it is moved into place, rather than at the start of every later run.
void validate_batches(const fs::path& dir, const std::string& label) {
  for (const auto& name : cifar10_files()) {
    std::error_code ec;
    check_input(fs::is_regular_file(dir / name, ec),
                "archive " + label + " lacks " + kBatchesFolder + "/" + name,
                "use the official cifar-10-binary.tar.gz");
  }
  read_class_names(dir / "batches.meta.txt");
  for (const auto& name : cifar10_files()) {
    if (name == "batches.meta.txt") continue;
    const int64_t records = read_cifar_batch(dir / name).size();
    check_input(records == kRecordsPerBatch,
                "corrupt CIFAR-10 file " + (dir / name).string() + ": " + std::to_string(records) +
                    " records, expected " + std::to_string(kRecordsPerBatch),
                "use the official cifar-10-binary.tar.gz");
  }
}

// Checks, extracts and validates `archive`, then renames the result to
// data_dir/cifar-10-batches-bin/. `label` names the archive in errors (the
// URL for a download, whose temporary file means nothing to the user).
fs::path install_archive(const fs::path& archive, const std::string& label, const std::string& md5,
                         const fs::path& data_dir, const ExtractLimits& limits) {
  // A run killed mid-extraction (SIGTERM, SIGKILL: the folder's guard
  // only runs when the stack unwinds) leaves up to 180 MB behind.
  remove_temps_of_dead_processes(data_dir, ".cifar-extract-");
  std::string tmpl = (data_dir / (temp_name_prefix(".cifar-extract-") + "XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) {
    const int error = errno;
    throw UserError("cannot create a folder in " + data_dir.string() + ": " + std::strerror(error) +
                        " (hint: pass --data-dir to a writable folder)",
                    create_failure_exit_code(error));
  }
  RemoveOnExit extract_dir{tmpl};
  const fs::path target = data_dir / kBatchesFolder;
  try {
    if (md5 != "none") {
      const std::string actual = md5_file(archive);
      check_input(actual == md5,
                  "MD5 mismatch for " + label + ": expected " + md5 + ", got " + actual,
                  "the file is damaged or not cifar-10-binary.tar.gz; fetch it again, or pass "
                  "--data-md5 none to skip the check");
    }
    std::fprintf(stderr, "extracting %s into %s\n", label.c_str(), target.c_str());
    const int files = extract_folder(archive, kBatchesFolder, extract_dir.path, limits);
    check_input(files > 0, "archive " + label + " holds no " + kBatchesFolder + "/ folder",
                "pass the binary version, cifar-10-binary.tar.gz, not the Python or MATLAB one");
    validate_batches(extract_dir.path, label);
  } catch (const UserError& e) {
    // Name what the user knows, not our temporary paths.
    std::string message = e.what();
    // Our own writes ("cannot create/write ...": a full disk) name the
    // folder being filled; the archive's faults name the archive's entry.
    replace_all(message, extract_dir.path.string(),
                message.rfind("cannot ", 0) == 0 ? target.string() : label + ":" + kBatchesFolder);
    replace_all(message, archive.string(), label);
    throw UserError(message, e.exit_code());
  }

  ::chmod(extract_dir.path.c_str(), 0755);  // mkdtemp made it private
  fsync_dir(extract_dir.path);
  // rename(2) replaces an empty folder and refuses a non-empty one, so a
  // complete folder appears in one step and nobody's files are overwritten.
  if (::rename(extract_dir.path.c_str(), target.c_str()) != 0) {
    const int rename_errno = errno;
    // Another process (a second rank) may have won the race: its result is
    // as good as ours.
    std::error_code ec;
    bool complete = fs::is_directory(target, ec);
    for (const auto& name : cifar10_files()) complete = complete && fs::is_regular_file(target / name, ec);
    if (!complete) {
      throw UserError("cannot move the extracted files to " + target.string() + ": " +
                      std::strerror(rename_errno) + " (hint: remove " + target.string() + ")");
    }
    return target;
  }
  extract_dir.path.clear();
  fsync_dir(data_dir);
  return target;
}

fs::path fetch_and_install(const DataConfig& config, const std::string& md5, const fs::path& data_dir,
                           const ExtractLimits& limits) {
  if (!config.data_archive.empty()) {
    return install_archive(config.data_archive, config.data_archive, md5, data_dir, limits);
  }
  // The download lands beside the target, so a full disk shows up before
  // extraction; it goes away on every path out of here.
  const TempDownload downloaded(config.data_url, data_dir, ".cifar-download-");
  return install_archive(downloaded.path(), config.data_url, md5, data_dir, limits);
}

}  // namespace

fs::path obtain_cifar10(const DataConfig& config, bool test_only) {
  return obtain_cifar10(config, ExtractLimits{}, test_only);
}

fs::path obtain_cifar10(const DataConfig& config, const ExtractLimits& limits, bool test_only) {
  const fs::path data_dir = config.data_dir.empty() ? fs::path(".") : fs::path(config.data_dir);
  // A malformed --data-md5 is refused even when the data is already there:
  // the typo would otherwise surface on another machine, much later. An
  // archive is only needed when the data is not (a script may pass a
  // temporary copy that is gone by the next run).
  const std::string md5 = expected_md5(config.data_md5);
  if (auto found = find_complete(data_dir, test_only)) return *found;

  std::error_code ec;
  if (!config.data_archive.empty()) {
    check_input(fs::is_regular_file(config.data_archive, ec),
                "--data-archive " + config.data_archive + " is not a file",
                "pass the path of cifar-10-binary.tar.gz");
  } else {
    check_input(!config.data_url.empty(), "no CIFAR-10 in " + data_dir.string() + " and --data-url is empty",
                "pass --data-dir with an existing cifar-10-batches-bin/ or --data-archive PATH");
  }
  // The folders made here for data that then never came (offline, a typo
  // in --data-url) go away again: a failed run leaves no empty trail.
  NewFolders made(data_dir);
  ensure_dir(data_dir);
  // Ctrl-C or SIGTERM while downloading or extracting (minutes, 180 MB)
  // unwinds like any error: the partial files and folders go, at once.
  StopSignalsCaught caught;
  const fs::path installed = fetch_and_install(config, md5, data_dir, limits);
  throw_if_stop_requested("after CIFAR-10 was installed in " + installed.string());
  made.keep();
  return installed;
}

}  // namespace cifar
