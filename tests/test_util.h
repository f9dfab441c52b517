// Shared helpers for the tests: where the real data and the binary are, a
// scratch folder per test, and running the binary as a real process.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cifar::testing {

// The folder holding cifar-10-batches-bin/ with the real (J75) data:
// $CIFAR10_DATA_ROOT, else built once by ../shared/tools/cifar10-data.sh.
std::filesystem::path data_root();
std::filesystem::path batches_dir();

// A fresh empty folder under the build's temp area, removed at destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "t");
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct ProcessResult {
  int exit_code = -1;   // exit status, or 128+signal
  std::string output;   // stdout and stderr together
  int signal = 0;       // the signal that ended it, or 0 when it exited
};

// The cifar10 binary under test, for tests that spawn it themselves (with
// resource limits, say).
std::string cifar10_binary();
// The source tree, for tests that read files kept in it (fuzz/regressions/).
std::filesystem::path source_dir();

// Runs the cifar10 binary with `args` (a real child process), waiting up to
// `timeout_s` seconds; extra environment entries "K=V" are added.
ProcessResult run_cifar10(const std::vector<std::string>& args, int timeout_s = 600,
                          const std::vector<std::string>& env = {}, const std::filesystem::path& cwd = {});

// A cifar10 child process running in the background, its output collected
// as it comes, for tests that signal or kill a run part-way.
class Child {
 public:
  // Runs in `cwd` when given, else in the test's own folder.
  explicit Child(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                 const std::filesystem::path& cwd = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  int pid() const { return pid_; }
  // Waits until the output contains `needle`; false on timeout or exit.
  bool wait_for_output(const std::string& needle, int timeout_s);
  void send(int signal);
  ProcessResult wait(int timeout_s);
  std::string output() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
  int pid_ = -1;
};

void write_bytes(const std::filesystem::path& path, const std::string& bytes);

// Names in a folder, sorted ("nothing left behind" means this is empty; a
// folder that is not there lists nothing).
std::vector<std::string> listing(const std::filesystem::path& dir);

// Runs `body` in a forked copy of this test process, its stdout and stderr
// in a pipe, for checks that must change the process itself (drop root,
// install a terminate handler, abort); returns what it printed and how it
// ended (`body` returning is exit 0).
ProcessResult run_forked(const std::function<void()>& body);

// The environment that makes a cifar10 child stop inside the write of a
// file whose path contains `file`, with the temporary file complete and
// not yet renamed ("hold_rename: holding" on stderr; tests/reliability/
// hold_rename.cpp, preloaded), for a test to kill it there.
inline std::vector<std::string> hold_rename_env(const std::string& file) {
  return {std::string("LD_PRELOAD=") + CIFAR10_HOLD_RENAME_LIB, "CIFAR10_HOLD_RENAME=" + file};
}

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read
// it back, close), for ranks started by hand with MASTER_PORT.
int find_free_loopback_port();

// python3's http.server serving the files in `root` on 127.0.0.1 (tests
// download from it, never from the internet; no_proxy is set for loopback
// before any test runs), plus routes the stock server lacks: /moved
// redirects to /cifar-10-binary.tar.gz, /cut promises 1 MB and hangs up
// after 1 kB (an interrupted download), /slow sends 1 kB a second of a
// promised 1 MB (a download to interrupt). Stopped at destruction.
class LoopbackServer {
 public:
  explicit LoopbackServer(const std::filesystem::path& root);
  ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

 private:
  int port_;
  int pid_ = -1;
};

}  // namespace cifar::testing
