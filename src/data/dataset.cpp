#include "data/dataset.h"

#include "common/error.h"
#include "common/runtime.h"

namespace cifar {

Normalization make_normalization(const std::string& kind) {
  if (kind == "unit") return {};
  // CIFAR-10's published statistics of the 50,000 training images, as every
  // PyTorch recipe uses them. The JPEG (quality 75) copy we test with has
  // means 0.4913, 0.4821, 0.4465 and stds 0.2452, 0.2428, 0.2606; kept as
  // published so results compare with other tools.
  return {{0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616}};
}

Splits make_splits(const Cifar10& data, const DataConfig& config, uint64_t seed) {
  Splits s;
  s.class_names = data.class_names;
  const int64_t n = data.train.size();
  // An evaluation reads no training images: both splits are then empty.
  const int64_t n_val = std::min<int64_t>(config.validation_size, std::max<int64_t>(n - 1, 0));
  auto gen = at::detail::createCPUGenerator(seed);
  auto perm = torch::randperm(n, gen, torch::kInt64);
  s.val = data.train.select(perm.slice(0, 0, n_val));
  s.train = data.train.select(perm.slice(0, n_val, n));
  if (config.train_limit > 0 && config.train_limit < s.train.size()) {
    s.train = s.train.slice(0, config.train_limit);
  }
  s.test = data.test;
  if (config.test_limit > 0 && config.test_limit < s.test.size()) {
    s.test = s.test.slice(0, config.test_limit);
  }
  return s;
}

torch::Tensor normalize_images(const torch::Tensor& images_u8, const Normalization& norm, torch::ScalarType dtype) {
  std::vector<double> constants(norm.mean.begin(), norm.mean.end());
  constants.insert(constants.end(), norm.std.begin(), norm.std.end());
  // The constants in the images' type: float32 ones would round a float64
  // model's inputs.
  auto c = to_device_async(torch::tensor(constants, torch::kFloat64).to(dtype), images_u8.device()).view({2, 1, 3, 1, 1});
  auto mean = c[0], inv_std = 1.0 / c[1];
  return (images_u8.to(dtype).mul_(1.0 / 255.0).sub_(mean)).mul_(inv_std);
}

}  // namespace cifar
