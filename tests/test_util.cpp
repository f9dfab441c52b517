#include "test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <mutex>
#include <thread>

#include "common/atomic_file.h"

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

std::string cifar10_binary() { return CIFAR10_BINARY; }

fs::path source_dir() { return CIFAR10_SOURCE_DIR; }

TempDir::TempDir(const std::string& tag) {
  std::random_device rd;
  const char* base = std::getenv("TMPDIR");
  path_ = fs::path(base && *base ? base : "/tmp") /
          ("cifar10-test-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  remove_tree(path_);
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

namespace {

pid_t spawn_cifar10(const std::vector<std::string>& args, const std::vector<std::string>& env,
                    const std::filesystem::path& cwd, int out_fd, int close_fd) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(127);
    ::dup2(out_fd, 1);
    ::dup2(out_fd, 2);
    ::close(close_fd);
    ::close(out_fd);
    for (const auto& kv : env) ::putenv(const_cast<char*>(kv.c_str()));
    std::vector<char*> argv;
    std::string bin = CIFAR10_BINARY;
    argv.push_back(bin.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

int decode_status(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

}  // namespace

struct Child::State {
  mutable std::mutex mu;
  std::string output;
  bool eof = false;
  int fd = -1;
  std::thread reader;
  bool reaped = false;
  int status = 0;
};

Child::Child(const std::vector<std::string>& args, const std::vector<std::string>& env,
             const std::filesystem::path& cwd)
    : state_(new State) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) throw std::runtime_error("pipe failed");
  pid_ = spawn_cifar10(args, env, cwd, pipefd[1], pipefd[0]);
  ::close(pipefd[1]);
  state_->fd = pipefd[0];
  State* st = state_.get();
  state_->reader = std::thread([st] {
    std::array<char, 4096> buf{};
    ssize_t n;
    while ((n = ::read(st->fd, buf.data(), buf.size())) > 0) {
      std::lock_guard<std::mutex> lock(st->mu);
      st->output.append(buf.data(), n);
    }
    std::lock_guard<std::mutex> lock(st->mu);
    st->eof = true;
  });
}

Child::~Child() {
  if (!state_->reaped) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &state_->status, 0);
  }
  if (state_->reader.joinable()) state_->reader.join();
  ::close(state_->fd);
}

std::string Child::output() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->output;
}

bool Child::wait_for_output(const std::string& needle, int timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      if (state_->output.find(needle) != std::string::npos) return true;
      if (state_->eof) return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

void Child::send(int signal) { ::kill(pid_, signal); }

ProcessResult Child::wait(int timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (!state_->reaped) {
    if (::waitpid(pid_, &state_->status, WNOHANG) == pid_) {
      state_->reaped = true;
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &state_->status, 0);
      state_->reaped = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (state_->reader.joinable()) state_->reader.join();
  return {decode_status(state_->status), output(), WIFSIGNALED(state_->status) ? WTERMSIG(state_->status) : 0};
}

ProcessResult run_cifar10(const std::vector<std::string>& args, int timeout_s, const std::vector<std::string>& env,
                          const std::filesystem::path& cwd) {
  return Child(args, env, cwd).wait(timeout_s);
}

ProcessResult run_forked(const std::function<void()>& body) {
  int out[2];
  if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::close(out[0]);
    ::close(out[1]);
    body();
    std::fflush(nullptr);
    ::_exit(0);
  }
  ::close(out[1]);
  ProcessResult result;
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) result.output.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = decode_status(status);
  result.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  return result;
}

int find_free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("cannot open a socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("cannot find a free port on 127.0.0.1: " + why);
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

namespace {

bool accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

const char* kServerScript = R"PY(
import functools, http.server, sys, time
class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path == '/moved':
            self.send_response(302)
            self.send_header('Location', '/cifar-10-binary.tar.gz')
            self.end_headers()
            return
        if self.path == '/cut':
            self.send_response(200)
            self.send_header('Content-Length', '1000000')
            self.end_headers()
            self.wfile.write(b'x' * 1000)
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path == '/slow':
            self.send_response(200)
            self.send_header('Content-Length', '1000000')
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b'x' * 1000)
                    self.wfile.flush()
                    time.sleep(1)
            except OSError:
                pass
            return
        super().do_GET()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])),
    functools.partial(Handler, directory=sys.argv[2])).serve_forever()
)PY";

// An HTTP proxy in the environment must not intercept loopback requests
// (ours, or those of the cifar10 processes the tests start); set before
// any test runs.
const bool kLoopbackBypassesProxy = [] {
  ::setenv("no_proxy", "127.0.0.1,localhost", 1);
  ::setenv("NO_PROXY", "127.0.0.1,localhost", 1);
  return true;
}();

}  // namespace

LoopbackServer::LoopbackServer(const fs::path& root) : port_(find_free_loopback_port()) {
  const std::string port = std::to_string(port_);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::execlp("python3", "python3", "-c", kServerScript, port.c_str(), root.c_str(), nullptr);
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!accepts(port_)) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      ADD_FAILURE() << "python3 http.server exited before accepting on port " << port_;
      return;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "python3 http.server did not accept on port " << port_ << " within 15 s";
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

LoopbackServer::~LoopbackServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
}

}  // namespace cifar::testing
