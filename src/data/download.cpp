#include "data/download.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/signals.h"
#include "data/cifar_reader.h"

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

// ---- download -------------------------------------------------------------

struct Progress {
  bool tty = false;
  int last_step = -1;       // percent on a TTY, quarter otherwise
  curl_off_t last_mb = -1;  // when the server sends no length
  bool line_open = false;   // a TTY line waiting for its newline
};

// A TTY gets one line rewritten in place at each percent; a log file gets a
// line per quarter, so CI logs stay short.
int report_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto& p = *static_cast<Progress*>(user);
  if (stop_signal()) return 1;  // curl stops with CURLE_ABORTED_BY_CALLBACK
  constexpr double kMB = 1e6;
  if (total > 0) {
    const int percent = static_cast<int>(now * 100 / total);
    const int step = p.tty ? percent : percent / 25;
    if (step == p.last_step || (!p.tty && step == 0)) return 0;
    p.last_step = step;
    std::fprintf(stderr, "%s  %3d%% (%.1f of %.1f MB)%s", p.tty ? "\r" : "", percent, now / kMB,
                 total / kMB, p.tty ? "" : "\n");
  } else if (now > 0) {
    const curl_off_t mb = static_cast<curl_off_t>(now / kMB);
    if (mb == p.last_mb || (!p.tty && mb / 50 == p.last_mb / 50)) return 0;
    p.last_mb = mb;
    std::fprintf(stderr, "%s  %.1f MB%s", p.tty ? "\r" : "", now / kMB, p.tty ? "" : "\n");
  } else {
    return 0;
  }
  p.line_open = p.tty;
  std::fflush(stderr);
  return 0;
}

struct Sink {
  FILE* file = nullptr;
  int write_errno = 0;
};

size_t write_chunk(char* data, size_t size, size_t count, void* user) {
  auto& sink = *static_cast<Sink*>(user);
  const size_t bytes = size * count;
  if (std::fwrite(data, 1, bytes, sink.file) != bytes) {
    sink.write_errno = errno;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  return bytes;
}

bool is_network_failure(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return true;
    default:
      return false;
  }
}

// ---- dataset --------------------------------------------------------------

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

void fsync_dir(const fs::path& dir) {
  FILE* f = std::fopen(dir.c_str(), "r");
  if (f) {
    ::fsync(::fileno(f));
    std::fclose(f);
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

}  // namespace

void download_file(const std::string& url, const fs::path& dest, const DownloadHints& hints) {
  static std::once_flag curl_ready;
  std::call_once(curl_ready, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });

  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(dest.c_str(), "wb"), &std::fclose);
  if (!file) {
    const int error = errno;
    throw UserError("cannot create " + dest.string() + ": " + std::strerror(error) + " (hint: " + hints.folder + ")",
                    create_failure_exit_code(error));
  }
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) throw UserError("cannot start libcurl", kExitRuntime);

  Sink sink{file.get()};
  Progress progress;
  progress.tty = ::isatty(STDERR_FILENO) == 1;
  char error[CURL_ERROR_SIZE] = {};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_chunk);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, report_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &progress);
  // file:// serves mirrors on shared disks; redirects may only go to the web.
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);  // HTTP >= 400 is an error, not a body
  // No total timeout: 163 MB on a slow but steady link may take an hour.
  // Give up instead when the host does not answer in 20 s, or when the
  // transfer stalls below 1 kB/s for a minute.
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1000L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "cifar10/" CIFAR10_VERSION);

  std::fprintf(stderr, "downloading %s\n", url.c_str());
  const CURLcode code = curl_easy_perform(c);
  if (progress.line_open) std::fputc('\n', stderr);
  throw_if_stop_requested("while downloading " + url + "; the partial download was removed");
  const bool flushed = std::fflush(file.get()) == 0;
  const int flush_errno = errno;

  if (code == CURLE_WRITE_ERROR || (code == CURLE_OK && !flushed)) {
    const int err = code == CURLE_OK ? flush_errno : sink.write_errno;
    throw UserError("cannot download " + url + ": cannot write " + dest.string() + ": " +
                        (err ? std::strerror(err) : "write failed") + " (hint: free disk space, or " + hints.folder + ")",
                    kExitRuntime);
  }
  if (code != CURLE_OK) {
    const std::string detail = one_line(error[0] ? error : curl_easy_strerror(code));
    throw UserError("cannot download " + url + ": " + detail +
                    " (hint: " + (is_network_failure(code) ? hints.offline : hints.bad_url) + ")");
  }
}

TempDownload::TempDownload(const std::string& url, const fs::path& dir, const std::string& prefix,
                           const DownloadHints& hints) {
  remove_temps_of_dead_processes(dir, prefix);
  std::string tmpl = (dir / (temp_name_prefix(prefix) + "XXXXXX")).string();
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) {
    const int error = errno;
    throw UserError("cannot create a file in " + dir.string() + ": " + std::strerror(error) + " (hint: " +
                        hints.folder + ")",
                    create_failure_exit_code(error));
  }
  ::close(fd);
  path_ = tmpl;
  try {
    download_file(url, path_, hints);
  } catch (...) {
    remove_tree(path_);
    throw;
  }
}

TempDownload::~TempDownload() {
  if (!path_.empty()) remove_tree(path_);
}

void TempDownload::keep_as(const fs::path& dest) {
  // mkstemp made it private; a cache file is as readable as any download.
  ::chmod(path_.c_str(), 0644);
  if (FILE* f = std::fopen(path_.c_str(), "rb")) {
    ::fsync(::fileno(f));
    std::fclose(f);
  }
  if (::rename(path_.c_str(), dest.c_str()) != 0) {
    throw UserError("cannot move the download to " + dest.string() + ": " + std::strerror(errno));
  }
  path_.clear();
  fsync_dir(dest.parent_path().empty() ? fs::path(".") : dest.parent_path());
}

namespace {

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

// Walked on the path as given ("a/b/../c" makes a/b too); "." and ".."
// steps, and the empty name after a trailing '/', name no new folder.
NewFolders::NewFolders(const fs::path& dir) {
  std::error_code ec;
  for (fs::path p = dir; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    const fs::path name = p.filename();
    if (!name.empty() && name != "." && name != "..") missing_.push_back(p);
    if (p == p.parent_path()) break;
  }
}

NewFolders::~NewFolders() {
  std::error_code ec;
  for (const fs::path& p : missing_) {
    if (!fs::remove(p, ec)) break;  // not empty (or not ours): keep it and what holds it
  }
}

}  // namespace cifar
