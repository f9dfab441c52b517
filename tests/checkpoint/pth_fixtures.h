// The .pth files tests/checkpoint/pth_fixtures.py writes with Python's own
// torch.save (Debian's python3-torch and python3-torchvision), made once
// per test process into a scratch folder.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "common/atomic_file.h"
#include "data/archive.h"
#include "test_util.h"

namespace cifar::testing {

// Raw bytes of a tensor, contiguous (what the fixture script hashes).
inline std::string tensor_bytes(const torch::Tensor& t) {
  const auto c = t.detach().contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel() * c.element_size()));
}

class PthFixtures {
 public:
  static const PthFixtures& get() {
    static const PthFixtures fixtures;
    return fixtures;
  }
  std::filesystem::path operator/(const std::string& name) const { return dir_.path() / name; }
  // {name: {dtype, shape, sha256}} of the tensors torch.save wrote into `file`.
  const nlohmann::json& expected(const std::string& file) const { return expected_.at(file); }

 private:
  PthFixtures() : dir_("pth") {
    const std::string cmd = "/usr/bin/python3 " + (source_dir() / "tests/checkpoint/pth_fixtures.py").string() + " " +
                            dir_.path().string() + " 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      throw std::runtime_error(cmd +
                               " failed: the tests need Debian's python3-torch and python3-torchvision "
                               "(scripts/setup.sh installs them)");
    }
    expected_ = nlohmann::json::parse(read_file(dir_.path() / "expected.json"));
  }
  TempDir dir_;
  nlohmann::json expected_;
};

}  // namespace cifar::testing
