#include "outputs/run_folder.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/atomic_file.h"
#include "common/error.h"

namespace cifar {
namespace fs = std::filesystem;

namespace {

std::string errno_text() { return std::strerror(errno); }

// access() asks the kernel with the user's own rights (read-only mounts
// included) without leaving a probe file behind.
void check_can_write(const fs::path& dir) {
  fs::path at = fs::absolute(dir).lexically_normal();
  std::error_code ec;
  while (!fs::exists(at, ec) && at.has_relative_path()) at = at.parent_path();
  if (!fs::is_directory(at, ec)) {
    throw UserError("cannot write into folder " + dir.string() + ": " + at.string() +
                    " is not a folder (hint: choose another --output-dir)");
  }
  if (::access(at.c_str(), W_OK | X_OK) != 0) {
    throw UserError("cannot write into folder " + (at == fs::absolute(dir).lexically_normal() ? dir : at).string() +
                    ": " + errno_text() + " (hint: make it writable, or choose another --output-dir)");
  }
}

}  // namespace

RunFolder::RunFolder(fs::path root) : root_(std::move(root)) {}

nlohmann::json RunFolder::training_record() const {
  std::error_code ec;
  if (!fs::is_regular_file(summary_file(), ec)) return nullptr;
  try {
    auto summary = nlohmann::json::parse(read_file(summary_file()));
    return summary.is_object() && summary.contains("history") ? summary : nlohmann::json(nullptr);
  } catch (const std::exception&) {
    return nullptr;
  }
}

bool RunFolder::holds_training_run() const {
  std::error_code ec;
  return !training_record().is_null() || fs::exists(history_file(), ec);
}

void RunFolder::check_writable(bool checkpoints_and_logs) const {
  if (checkpoints_and_logs) {
    check_can_write(checkpoints());
    check_can_write(logs());
  }
  check_can_write(results());
}

fs::path RunFolder::folder_of(const std::string& checkpoint) {
  fs::path file = fs::absolute(checkpoint).lexically_normal();
  std::error_code ec;
  for (int hops = 0; hops < 40 && fs::is_symlink(file, ec); ++hops) {
    const fs::path target = fs::read_symlink(file, ec);
    if (ec) break;
    file = (target.is_absolute() ? target : file.parent_path() / target).lexically_normal();
  }
  return file.parent_path();
}

fs::path RunFolder::run_of(const std::string& checkpoint) {
  const auto folder = folder_of(checkpoint);
  return folder.filename() == "checkpoints" ? folder.parent_path() : fs::path();
}

std::unique_ptr<RunLock> RunLock::take(const RunFolder& folder) {
  ensure_dir(folder.results());
  const fs::path file = folder.results() / ".cifar10.lock";
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  bool writable = fd >= 0;
  // Another user's lock file (an evaluation of their run, as another user):
  // flock needs only a descriptor, read-only does.
  if (fd < 0 && errno == EACCES) fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw UserError("cannot open the run lock " + file.string() + ": " + errno_text() +
                    " (hint: make " + folder.results().string() + " writable, or choose another --output-dir)");
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int why = errno;
    char pid[32] = {};
    const ssize_t n = ::pread(fd, pid, sizeof(pid) - 1, 0);
    ::close(fd);
    std::string holder = n > 0 ? std::string(pid, static_cast<size_t>(n)) : "";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    // A holder that could not write its pid leaves an earlier run's: named
    // only when that process lives.
    const bool digits = !holder.empty() && holder.size() < 10 && holder.find_first_not_of("0123456789") == std::string::npos;
    if (digits && ::kill(static_cast<pid_t>(std::stol(holder)), 0) != 0 && errno == ESRCH) holder.clear();
    if (why != EWOULDBLOCK) {
      throw UserError("cannot lock " + file.string() + ": " + std::strerror(why) +
                      " (hint: choose an --output-dir on a local file system)");
    }
    throw UserError("--output-dir " + folder.root().string() + " is in use by another cifar10 run" +
                    (digits && !holder.empty() ? " (pid " + holder + ")" : std::string()) +
                    " (hint: wait for it to finish, or choose another --output-dir)");
  }
  // Without the pid the lock still holds; only a second run's message lacks it.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (writable && ::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, pid.data(), pid.size(), 0);
  return std::unique_ptr<RunLock>(new RunLock(fd));
}

RunLock::~RunLock() { ::close(fd_); }

}  // namespace cifar
