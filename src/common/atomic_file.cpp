#include "common/atomic_file.h"

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace cifar {
namespace fs = std::filesystem;

namespace {

std::string errno_text(int error = errno) { return std::strerror(error); }

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

// Temporary files are named .<target>.tmp.<host>.<pid>.XXXXXX: a process
// killed with SIGKILL (or by the OOM killer) cannot remove its own, and a
// ResNet checkpoint is 45 MB, so the next writer of the same target removes
// those whose process is gone. Only this host's, and only dead pids: a live
// writer's file (another run in the same folder) is never touched.
std::string temp_prefix(const fs::path& path) { return "." + path.filename().string() + ".tmp."; }

void remove_stale_temps(const fs::path& path) {
  remove_temps_of_dead_processes(path.parent_path().empty() ? fs::path(".") : path.parent_path(),
                                 temp_prefix(path));
}

void write_all(int fd, std::string_view bytes, const fs::path& path) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      // EFBIG (RLIMIT_FSIZE, file system limits) and ENOSPC / EDQUOT mean
      // "no room": say what the user can do about it.
      const bool full = error == ENOSPC || error == EFBIG || error == EDQUOT;
      throw UserError("cannot write " + path.string() + ": " + errno_text(error) +
                          (full ? " (free space on its disk; the previous " + path.filename().string() +
                                      ", if any, is untouched)"
                                : ""),
                      kExitRuntime);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::string temp_name_prefix(const std::string& prefix) { return prefix + host_name() + "." + std::to_string(::getpid()) + "."; }

void remove_temps_of_dead_processes(const fs::path& dir, const std::string& prefix_before_host) {
  const std::string prefix = prefix_before_host + host_name() + ".";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    // <pid>.XXXXXX after the prefix.
    const std::string rest = name.substr(prefix.size());
    const auto dot = rest.find('.');
    if (dot == std::string::npos || dot == 0) continue;
    char* end_ptr = nullptr;
    const long pid = std::strtol(rest.c_str(), &end_ptr, 10);
    if (end_ptr != rest.c_str() + dot || pid <= 0 || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH) remove_tree(it->path());
  }
}

void ensure_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    throw UserError("cannot create folder " + dir.string() + ": " + ec.message() +
                        " (hint: choose a path under a folder you can write to)",
                    kExitBadInput);
  }
}

void ensure_writable_dir(const fs::path& dir) {
  ensure_dir(dir);
  // access() asks the kernel with the user's own rights (read-only mounts
  // included) without leaving a probe file behind.
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    throw UserError("cannot write into folder " + dir.string() + ": " + errno_text() +
                        " (hint: make it writable, or choose another --output-dir)",
                    kExitBadInput);
  }
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  const fs::path dir = path.parent_path();
  if (!dir.empty()) ensure_dir(dir);
  remove_stale_temps(path);
  std::string tmpl =
      (dir / (temp_name_prefix(temp_prefix(path)) + "XXXXXX")).string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) {
    // The file is written beside its target and renamed, so it is the
    // folder that must be writable, not only the file.
    throw UserError("cannot create a temporary file beside " + path.string() + ": " + errno_text() +
                        " (hint: check that " + (dir.empty() ? std::string(".") : dir.string()) +
                        " exists and is writable, or write the file elsewhere)",
                    kExitRuntime);
  }
  const fs::path tmp = tmpl;
  try {
    write_all(fd, bytes, path);
    if (::fsync(fd) != 0) {
      throw UserError("cannot flush " + path.string() + ": " + errno_text(), kExitRuntime);
    }
    ::fchmod(fd, 0644);
    // close() reports the write-back errors of some file systems (NFS); the
    // fd is released even when it fails, so it is never closed twice.
    const int closed = ::close(fd);
    fd = -1;
    if (closed != 0) {
      throw UserError("cannot close " + path.string() + ": " + errno_text(), kExitRuntime);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      throw UserError("cannot rename " + tmp.string() + " to " + path.string() + ": " +
                          errno_text(),
                      kExitRuntime);
    }
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  fsync_dir(dir);
}

void write_file_atomic(const fs::path& path, const std::function<void(std::ostream&)>& writer) {
  std::ostringstream out(std::ios::binary);
  writer(out);
  write_file_atomic(path, out.str());
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError("cannot open " + path.string() + ": " + errno_text());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw UserError("cannot read " + path.string() + ": " + errno_text());
  return ss.str();
}

void remove_tree(const fs::path& path) noexcept {
  // Children before their folder (FTW_DEPTH); links as links (FTW_PHYS).
  // Errors are skipped: what cannot be removed stays, as with remove_all(ec).
  auto remove_entry = [](const char* entry, const struct stat*, int, struct FTW*) -> int {
    (void)::remove(entry);
    return 0;
  };
  (void)::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

}  // namespace cifar
