// Helpers of the whole-binary tests: the small configurations they run
// and what they compare the runs' files with.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "common/atomic_file.h"
#include "test_util.h"

namespace cifar::e2e {
namespace fs = std::filesystem;

inline nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(read_file(p)); }

// Runs compared bit for bit, or figure for figure, need deterministic
// kernels on a GPU (cuDNN's benchmark picks its algorithms per process;
// atomics sum in any order); the CPU's are deterministic as they are.
inline std::vector<std::string> repeatable(std::vector<std::string> args) {
  if (torch::cuda::is_available()) args.push_back("--deterministic");
  return args;
}

// A small, fast configuration: the CNN on a slice of the data.
inline std::vector<std::string> tiny_run(const fs::path& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--model-type",     "cnn",  "--data-dir",      testing::data_root().string(),
                                "--output-dir",     out.string(), "--train-limit", "512",
                                "--validation-size", "256", "--batch-size",    "64",
                                "--test-limit",     "200",  "--skip-visualization", "--seed", "7"};
  args.insert(args.end(), extra.begin(), extra.end());
  return repeatable(args);
}

// Every parameter and buffer of the checkpoint's model, in order.
inline std::vector<torch::Tensor> weights_of(const fs::path& checkpoint) {
  auto loaded = load_model(checkpoint.string(), torch::kCPU);
  std::vector<torch::Tensor> out;
  for (const auto& p : loaded.model->parameters()) out.push_back(p.detach().clone());
  for (const auto& b : loaded.model->buffers()) out.push_back(b.detach().clone());
  return out;
}

inline void expect_bit_identical(const fs::path& a, const fs::path& b) {
  auto wa = weights_of(a), wb = weights_of(b);
  ASSERT_EQ(wa.size(), wb.size());
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], wb[i])) << "tensor " << i;
}

inline std::string single_error_line(const testing::ProcessResult& r) {
  EXPECT_EQ(r.exit_code, 2) << r.output;
  const auto pos = r.output.find("error: ");
  EXPECT_NE(pos, std::string::npos) << r.output;
  return pos == std::string::npos ? "" : r.output.substr(pos, r.output.find('\n', pos) - pos);
}

}  // namespace cifar::e2e
