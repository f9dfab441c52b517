// ResNets for 32x32 inputs, two families under one type:
//  - depths 18/34/50: the ImageNet layouts adapted to CIFAR the usual way
//    (3x3 stem conv at 64 channels, no max-pool; stages of 64-128-256-512
//    channels; 1x1 conv + BN projection shortcuts). 18 and 34 use basic
//    blocks ([2,2,2,2] and [3,4,6,3]), 50 bottlenecks with expansion 4.
//  - depths 20/32/56/110: He et al. 2016, section 4.2 (16-32-64 channels,
//    n = (depth-2)/6 basic blocks per stage, parameter-free "option A"
//    shortcuts: stride-2 subsampling and zero-padded channels).
// Batch norm after every conv; dropout (spec.dropout) before the linear head.
#pragma once
#include "models/net.h"

namespace cifar {

// Throws UserError naming the supported depths unless `depth` is one.
void check_resnet_depth(int depth);

class ResNet : public Net {
 public:
  explicit ResNet(const ModelSpec& spec);
  torch::Tensor forward(torch::Tensor x) override;
  std::string head_name() const override { return "fc"; }

 private:
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::ReLU relu{nullptr};
  std::vector<Layers> stages_;
  torch::nn::AdaptiveAvgPool2d avgpool{nullptr};
  torch::nn::Flatten flatten{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Linear fc{nullptr};
};

}  // namespace cifar
