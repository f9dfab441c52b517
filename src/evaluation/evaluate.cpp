#include "evaluation/evaluate.h"

#include "common/torch_compat.h"
#include "data/augment.h"

namespace cifar {
namespace {

// Variants averaged under TTA: identity, flip, and the flipped image moved
// one pixel each way (airbench's choice: cheap, and worth ~0.5 points).
std::vector<torch::Tensor> tta_views(const torch::Tensor& x) {
  auto flipped = x.flip({3});
  std::vector<torch::Tensor> views{x, flipped};
  const int64_t b = x.size(0);
  auto zeros = torch::zeros({b}, torch::kInt64);
  auto ones = torch::ones({b}, torch::kInt64);
  views.push_back(shift_images(flipped, zeros, ones, 1));
  views.push_back(shift_images(flipped, zeros, -ones, 1));
  return views;
}

}  // namespace

torch::Tensor predict_logits(Net& model, const torch::Tensor& images_u8, const Normalization& norm,
                             const EvalOptions& options) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const int64_t n = images_u8.size(0);
  std::vector<torch::Tensor> outputs;
  for (int64_t begin = 0; begin < n; begin += options.batch_size) {
    const int64_t end = std::min(n, begin + options.batch_size);
    auto x = normalize_images(images_u8.slice(0, begin, end).to(options.device), norm);
    compat::AutocastGuard autocast(options.autocast && options.device.is_cuda());
    torch::Tensor logits;
    if (options.tta) {
      torch::Tensor probs;
      for (const auto& v : tta_views(x)) {
        auto p = torch::softmax(model.forward(v).to(torch::kFloat32), 1);
        probs = probs.defined() ? probs + p : p;
      }
      logits = torch::log(probs / 4.0);
    } else {
      logits = model.forward(x).to(torch::kFloat32);
    }
    outputs.push_back(logits.to(torch::kCPU));
  }
  if (was_training) model.train();
  return outputs.empty() ? torch::empty({0, 0}) : torch::cat(outputs);
}

}  // namespace cifar
