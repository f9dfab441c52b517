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
#include <vector>

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
      const bool full = is_disk_full(error);
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

// Opens `path` for reading if it is a regular file (links followed), else
// returns -1 and says why. stat() first, so a device is never opened
// (opening one can have effects of its own: a tape rewinds, a terminal
// becomes the controlling one); then fstat() of what was opened, in case
// the name was swapped in between, with O_NONBLOCK so that a FIFO swapped
// in cannot make the open wait for a writer (a regular file ignores it).
int open_regular_file(const fs::path& path, struct stat& st, std::string& why) {
  auto kind = [](mode_t mode) -> std::string {
    const char* what = S_ISDIR(mode)    ? "a folder"
                       : S_ISCHR(mode)  ? "a character device"
                       : S_ISBLK(mode)  ? "a block device"
                       : S_ISFIFO(mode) ? "a FIFO (named pipe)"
                       : S_ISSOCK(mode) ? "a socket"
                                        : "a special file";
    return std::string(what) + ", not a regular file (hint: name a regular file)";
  };
  if (::stat(path.c_str(), &st) != 0) {
    why = errno_text();
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    why = kind(st.st_mode);
    return -1;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    why = errno_text();
    return -1;
  }
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    why = S_ISREG(st.st_mode) ? errno_text() : kind(st.st_mode);
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

bool is_disk_full(int error) {
  // EFBIG: RLIMIT_FSIZE or a file system's own limit on a file's size.
  return error == ENOSPC || error == EDQUOT || error == EFBIG;
}

int create_failure_exit_code(int error) { return is_disk_full(error) ? kExitRuntime : kExitBadInput; }

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

std::string unreadable_reason(const fs::path& path) {
  struct stat st {};
  std::string why;
  const int fd = open_regular_file(path, st, why);
  if (fd >= 0) ::close(fd);
  return why;
}

std::string read_file(const fs::path& path, uint64_t max_bytes) {
  struct stat st {};
  std::string why;
  const int fd = open_regular_file(path, st, why);
  if (fd < 0) throw UserError("cannot read " + path.string() + ": " + why);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  auto too_large = [&](uint64_t size) {
    return UserError("cannot read " + path.string() + ": " + std::to_string(size) + " bytes, over the limit of " +
                     std::to_string(max_bytes) + " bytes for this file (hint: is it the right file?)");
  };
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) throw too_large(size);
  std::string bytes;
  bytes.reserve(static_cast<size_t>(size));
  // To the end rather than to the size fstat() gave: a file still growing,
  // or one of /proc's (size 0), is read whole, and the cap still holds.
  std::vector<char> buf(1 << 20);
  while (true) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw UserError("cannot read " + path.string() + ": " + errno_text());
    }
    bytes.append(buf.data(), static_cast<size_t>(n));
    if (bytes.size() > max_bytes) throw too_large(bytes.size());
  }
  return bytes;
}

void check_writable_target(const fs::path& path, const std::string& flag) {
  auto refuse = [&](const std::string& why, const std::string& hint) {
    throw UserError(flag + " " + path.string() + ": " + why + " (hint: " + hint + ")");
  };
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (fs::is_directory(status)) refuse("is a folder", "name a file");
  // Renaming over a device or FIFO would replace it (as root, /dev/null).
  if (fs::exists(status) && !fs::is_regular_file(status)) refuse("exists and is not a regular file", "name a file");
  // The nearest folder that exists: write_file_atomic creates the rest.
  fs::path dir = path.parent_path();
  while (!dir.empty() && !fs::exists(dir, ec) && dir != dir.parent_path()) dir = dir.parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_directory(dir, ec)) refuse(dir.string() + " is not a folder", "name a file in a folder");
  // access() asks with the user's own rights, read-only mounts included.
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    refuse("cannot write into folder " + dir.string() + ": " + errno_text(), "make it writable, or name a file elsewhere");
  }
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
