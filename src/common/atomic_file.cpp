#include "common/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace cifar {
namespace fs = std::filesystem;

namespace {

std::string errno_text() { return std::strerror(errno); }

void write_all(int fd, std::string_view bytes, const fs::path& tmp) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw UserError("cannot write " + tmp.string() + ": " + errno_text(),
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

void ensure_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw UserError("cannot create folder " + dir.string() + ": " + ec.message(), kExitBadInput);
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  const fs::path dir = path.parent_path();
  if (!dir.empty()) ensure_dir(dir);
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmp.XXXXXX")).string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) {
    throw UserError("cannot create a temporary file beside " + path.string() + ": " +
                        errno_text(),
                    kExitRuntime);
  }
  const fs::path tmp = tmpl;
  try {
    write_all(fd, bytes, tmp);
    if (::fsync(fd) != 0) {
      throw UserError("cannot flush " + tmp.string() + ": " + errno_text(), kExitRuntime);
    }
    ::fchmod(fd, 0644);
    if (::close(fd) != 0) {
      fd = -1;
      throw UserError("cannot close " + tmp.string() + ": " + errno_text(), kExitRuntime);
    }
    fd = -1;
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

}  // namespace cifar
