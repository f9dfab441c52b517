// The airbench94 network (Keller Jordan, cifar10-airbench, 2024), the
// fastest known way to 94% on CIFAR-10:
//   whiten: 2x2 conv, 24 filters = the 12 eigenvectors of the training
//           patches' 2x2x3 second-moment matrix scaled by 1/sqrt(eigenvalue
//           + 5e-4), and their negatives; computed by init_whitening(),
//           never trained (its bias is), then GELU.
//   block1..3: conv3x3, maxpool 2, BN, GELU, conv3x3, BN, GELU (airbench's
//           order: pooling before the first norm), widths W, 4W, 4W with
//           W = spec.width (0 = 64). Convs without bias, identity-initialised
//           on their first in_channels filters as airbench.
//   global max pool, Linear without bias, outputs scaled by 1/9.
// Batch norm as airbench: eps 1e-12, running statistics updated with torch
// momentum 0.4 (airbench's "momentum 0.6" is the decay of the old value),
// scale frozen at 1, shift trained. spec.dropout is not used.
// At W = 64: 1,971,352 trainable + 1,440 frozen = 1,972,792 parameters.
#pragma once
#include "models/net.h"

namespace cifar {

class ConvGroupImpl : public torch::nn::Module {
 public:
  ConvGroupImpl(int64_t in, int64_t out);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::MaxPool2d pool{nullptr};
  torch::nn::BatchNorm2d norm1{nullptr};
  torch::nn::Conv2d conv2{nullptr};
  torch::nn::BatchNorm2d norm2{nullptr};
  torch::nn::GELU activ{nullptr};
};
TORCH_MODULE(ConvGroup);

// The global max pool as a reduction: forward equal to AdaptiveMaxPool2d(1),
// but its backward is elementwise (tied maxima share the gradient rather
// than one taking it all), where adaptive max pooling's CUDA backward has no
// deterministic kernel and --deterministic would refuse it. Speed on the CPU
// measured the same (docs/BENCHMARKS.md).
class GlobalMaxPoolImpl : public torch::nn::Module {
 public:
  torch::Tensor forward(const torch::Tensor& x) { return x.amax({2, 3}, /*keepdim=*/true); }
};
TORCH_MODULE(GlobalMaxPool);

class FastNet : public Net {
 public:
  explicit FastNet(const ModelSpec& spec);
  torch::Tensor forward(torch::Tensor x) override;
  std::string head_name() const override { return "head"; }
  bool is_fixed_parameter(const std::string& name) const override;
  // Sets the whitening filters from normalised training images [N, 3, H, W].
  void init_whitening(const torch::Tensor& images);

 private:
  torch::nn::Conv2d whiten{nullptr};
  torch::nn::GELU whiten_activ{nullptr};
  ConvGroup block1{nullptr};
  ConvGroup block2{nullptr};
  ConvGroup block3{nullptr};
  GlobalMaxPool pool{nullptr};
  torch::nn::Flatten flatten{nullptr};
  torch::nn::Linear head{nullptr};
};

// The width a spec builds: its own, or the default 64 for 0.
int64_t fast_net_width(const ModelSpec& spec);

// Computes the fast net's whitening filters from a sample of normalised
// float training images [N, 3, 32, 32] (airbench uses the first 5,000; all
// N are used). Call once before training; `model` must be a fast net.
void init_whitening(Net& model, const torch::Tensor& train_images_float_normalized);

}  // namespace cifar
