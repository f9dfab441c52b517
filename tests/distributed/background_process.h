// The cifar10 binary started in the background, for tests that signal,
// stop or kill processes while they run: its output is collected as it
// comes, and a test can wait for a line before acting.
#pragma once
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace cifar::testing {

class BackgroundProcess {
 public:
  BackgroundProcess(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    std::vector<std::string> argv_strings{CIFAR10_BINARY};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_strings) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_strings = env;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::dup2(fds[1], 2);
      ::close(fds[0]);
      ::close(fds[1]);
      for (auto& kv : env_strings) ::putenv(kv.data());
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof(buf))) > 0) {
        std::lock_guard<std::mutex> lock(mutex_);
        output_.append(buf, static_cast<size_t>(n));
        changed_.notify_all();
      }
      ::close(fd);
    });
  }

  ~BackgroundProcess() {
    if (exit_code_ < 0) {
      ::kill(pid_, SIGKILL);
      int status;
      ::waitpid(pid_, &status, 0);
    }
    if (reader_.joinable()) reader_.join();
  }

  pid_t pid() const { return pid_; }

  std::string output() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return output_;
  }

  // Waits until the output matches `pattern`; returns the match's first
  // group (or the whole match), or "" after `timeout_s`.
  std::string wait_for(const std::string& pattern, int timeout_s) {
    const std::regex re(pattern);
    std::unique_lock<std::mutex> lock(mutex_);
    std::smatch m;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (!std::regex_search(output_, m, re)) {
      if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) return "";
    }
    return m.size() > 1 ? m[1].str() : m[0].str();
  }

  // Exit status (128+signal when killed by one); -1 if still running after
  // `timeout_s`, in which case the process is killed.
  int wait(int timeout_s) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        exit_code_ = 1000;  // reaped; report the timeout
        if (reader_.joinable()) reader_.join();
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (reader_.joinable()) reader_.join();
    return exit_code_;
  }

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::thread reader_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string output_;
};

// True while `pid` names a process (a zombie counts; a reaped one does not).
inline bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

}  // namespace cifar::testing
