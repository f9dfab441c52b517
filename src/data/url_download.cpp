#include "data/url_download.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/signals.h"

namespace cifar {
namespace fs = std::filesystem;

namespace {

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

}  // namespace

void fsync_dir(const fs::path& dir) {
  FILE* f = std::fopen(dir.c_str(), "r");
  if (f) {
    ::fsync(::fileno(f));
    std::fclose(f);
  }
}

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
