// Shared by the crash and fault tests: the tiny training run they kill,
// starve and resume, and checks on what it leaves behind.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "test_util.h"

namespace cifar::testing {

// The CNN on 256 images, 8 steps of 32 per epoch, one thread: a few
// seconds per epoch, deterministic on the CPU.
inline std::vector<std::string> tiny_training(const std::filesystem::path& out, int epochs,
                                              std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--model-type",  "cnn",   "--data-dir",        data_root().string(),
                                "--output-dir",  out.string(), "--train-limit", "256",
                                "--validation-size", "128", "--batch-size",    "32",
                                "--epochs",      std::to_string(epochs), "--seed", "7",
                                "--threads",     "1",     "--skip-inference",  "--skip-visualization"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// Temporary files write_file_atomic leaves when killed: .<name>.tmp.*
inline std::vector<std::filesystem::path> temp_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> found;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos) found.push_back(e.path());
  }
  return found;
}

// The last line starting with "error: ", or "" when there is none.
inline std::string error_line(const std::string& output) {
  const auto pos = output.rfind("error: ");
  if (pos == std::string::npos) return "";
  return output.substr(pos, output.find('\n', pos) - pos);
}

}  // namespace cifar::testing
