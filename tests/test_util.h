// Shared helpers for the tests: where the real data and the binary are, a
// scratch folder per test, and running the binary as a real process.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
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
};

// Runs the cifar10 binary with `args` (a real child process), waiting up to
// `timeout_s` seconds; extra environment entries "K=V" are added.
ProcessResult run_cifar10(const std::vector<std::string>& args, int timeout_s = 600,
                          const std::vector<std::string>& env = {});

void write_bytes(const std::filesystem::path& path, const std::string& bytes);

}  // namespace cifar::testing
