#include "test_util.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

namespace cifar::testing {
namespace fs = std::filesystem;

fs::path data_root() {
  static const fs::path root = [] {
    if (const char* env = std::getenv("CIFAR10_DATA_ROOT"); env && *env) return fs::path(env);
    const std::string cmd = std::string(CIFAR10_SOURCE_DIR) + "/../shared/tools/cifar10-data.sh";
    FILE* pipe = ::popen(cmd.c_str(), "r");
    if (!pipe) throw std::runtime_error("cannot run " + cmd);
    std::array<char, 4096> buf{};
    std::string out;
    while (fgets(buf.data(), buf.size(), pipe)) out += buf.data();
    if (::pclose(pipe) != 0) throw std::runtime_error(cmd + " failed; set CIFAR10_DATA_ROOT");
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return fs::path(out);
  }();
  return root;
}

fs::path batches_dir() { return data_root() / "cifar-10-batches-bin"; }

TempDir::TempDir(const std::string& tag) {
  std::random_device rd;
  const char* base = std::getenv("TMPDIR");
  path_ = fs::path(base && *base ? base : "/tmp") /
          ("cifar10-test-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

ProcessResult run_cifar10(const std::vector<std::string>& args, int timeout_s,
                          const std::vector<std::string>& env) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    for (const auto& kv : env) ::putenv(const_cast<char*>(kv.c_str()));
    std::vector<char*> argv;
    std::string bin = CIFAR10_BINARY;
    argv.push_back(bin.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  ProcessResult result;
  // Drain the pipe on a thread so a chatty child never blocks on a full pipe.
  std::thread reader([&] {
    std::array<char, 4096> buf{};
    ssize_t n;
    while ((n = ::read(pipefd[0], buf.data(), buf.size())) > 0) result.output.append(buf.data(), n);
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  reader.join();
  ::close(pipefd[0]);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace cifar::testing
