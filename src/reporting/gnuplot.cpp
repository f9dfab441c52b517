#include "reporting/gnuplot.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"

namespace cifar {
namespace fs = std::filesystem;

namespace {

// Enough of gnuplot's stderr to show the failing line and its caret.
constexpr size_t kStderrKeep = 8192;

bool is_executable_file(const fs::path& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

struct ChildResult {
  int status = 0;
  bool timed_out = false;
  std::string err;
};

// fork/exec rather than system(): no shell, so paths with spaces or quotes
// pass through as they are. The child only calls async-signal-safe functions
// between fork and exec, which is what a process with LibTorch's thread pools
// may do.
ChildResult run_child(const fs::path& exe, const std::vector<std::string>& args, const fs::path& cwd,
                      std::chrono::milliseconds timeout) {
  std::vector<char*> argv;
  std::string exe_s = exe.string();
  argv.push_back(exe_s.data());
  std::vector<std::string> copies = args;
  for (auto& a : copies) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string cwd_s = cwd.string();

  int errpipe[2];
  if (::pipe2(errpipe, O_CLOEXEC) != 0) {
    throw UserError(std::string("cannot create a pipe for gnuplot: ") + std::strerror(errno),
                    kExitRuntime);
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(errpipe[0]);
    ::close(errpipe[1]);
    throw UserError(std::string("cannot start gnuplot: ") + std::strerror(e), kExitRuntime);
  }
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, 0);  // a script that asks for input gets EOF, not a hang
      ::dup2(devnull, 1);
    }
    ::dup2(errpipe[1], 2);
    if (::chdir(cwd_s.c_str()) != 0) {
      static const char msg[] = "cannot enter the plot folder\n";
      ssize_t ignored = ::write(2, msg, sizeof(msg) - 1);
      (void)ignored;
      ::_exit(126);
    }
    ::execv(exe_s.c_str(), argv.data());
    static const char msg[] = "cannot execute gnuplot\n";
    ssize_t ignored = ::write(2, msg, sizeof(msg) - 1);
    (void)ignored;
    ::_exit(127);
  }
  ::close(errpipe[1]);

  ChildResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    pollfd pfd{errpipe[0], POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    const ssize_t n = ::read(errpipe[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: gnuplot closed stderr, i.e. exited
    result.err.append(buf, static_cast<size_t>(n));
    if (result.err.size() > 2 * kStderrKeep) result.err.erase(0, result.err.size() - kStderrKeep);
  }
  ::close(errpipe[0]);
  // stderr at EOF almost always means gnuplot exited; the deadline still holds
  // in case it closed stderr and went on running.
  int status = 0;
  for (;;) {
    if (result.timed_out) ::kill(pid, SIGKILL);
    const pid_t done = ::waitpid(pid, &status, result.timed_out ? 0 : WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) break;
    if (done == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        result.timed_out = true;
      } else {
        ::usleep(5000);
      }
    }
  }
  result.status = status;
  if (result.err.size() > kStderrKeep) result.err.erase(0, result.err.size() - kStderrKeep);
  return result;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  size_t start = s.find_first_not_of("\n\r ");
  return start == std::string::npos ? "" : s.substr(start);
}

void fsync_path(const fs::path& p, int flags) {
  const int fd = ::open(p.c_str(), flags);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::optional<fs::path> find_gnuplot() {
  const char* path = std::getenv("PATH");
  if (!path) return std::nullopt;
  std::stringstream ss(path);
  std::string entry;
  while (std::getline(ss, entry, ':')) {
    const fs::path candidate = fs::path(entry.empty() ? "." : entry) / "gnuplot";
    if (is_executable_file(candidate)) return candidate;
  }
  return std::nullopt;
}

std::string gp_quote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "''";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += ' ';
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

void render_gnuplot(const fs::path& script, const fs::path& png, std::chrono::milliseconds timeout) {
  const auto exe = find_gnuplot();
  if (!exe) throw UserError(kGnuplotMissing, kExitRuntime);
  const fs::path dir = fs::absolute(script).parent_path();
  if (fs::absolute(png).parent_path() != dir) {
    throw UserError("internal: " + png.string() + " is not beside its script " + script.string(),
                    kExitRuntime);
  }

  // mkstemp reserves a unique name in the same folder (so the rename below is
  // atomic: same file system); gnuplot then truncates and fills it.
  std::string tmpl = (dir / ("." + png.filename().string() + ".tmp.XXXXXX")).string();
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) {
    throw UserError("cannot create a temporary file beside " + png.string() + ": " +
                        std::strerror(errno),
                    kExitRuntime);
  }
  ::close(fd);
  const fs::path tmp = tmpl;
  try {
    const std::vector<std::string> args = {
        "-e", "outfile=" + gp_quote(tmp.filename().string()), script.filename().string()};
    const ChildResult r = run_child(*exe, args, dir, timeout);
    const std::string err = trim(r.err);
    if (r.timed_out) {
      throw UserError("gnuplot ran past " + std::to_string(timeout.count()) + " ms on " +
                          script.string() + " and was stopped" + (err.empty() ? "" : ": " + err),
                      kExitRuntime);
    }
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
      const std::string how = WIFEXITED(r.status)
                                  ? "exit code " + std::to_string(WEXITSTATUS(r.status))
                                  : "signal " + std::to_string(WTERMSIG(r.status));
      throw UserError("gnuplot failed on " + script.string() + " (" + how + ")" +
                          (err.empty() ? "" : ": " + err),
                      kExitRuntime);
    }
    std::error_code ec;
    if (fs::file_size(tmp, ec) == 0 || ec) {
      throw UserError("gnuplot wrote no image for " + script.string() +
                          (err.empty() ? "" : ": " + err),
                      kExitRuntime);
    }
    ::chmod(tmp.c_str(), 0644);  // mkstemp's 0600 would hide plots from other users
    fsync_path(tmp, O_RDONLY);
    if (::rename(tmp.c_str(), png.c_str()) != 0) {
      throw UserError("cannot rename " + tmp.string() + " to " + png.string() + ": " +
                          std::strerror(errno),
                      kExitRuntime);
    }
    fsync_path(dir, O_RDONLY | O_DIRECTORY);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

}  // namespace cifar
