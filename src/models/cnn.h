// The original system's custom CNN: three conv blocks of
// (conv3x3-BN-ReLU) x2, 2x2 max-pool and dropout, at 32/64/128 channels,
// then dense 512-BN-ReLU-dropout and the classifier.
#pragma once
#include "models/net.h"

namespace cifar {

class CnnNet : public Net {
 public:
  explicit CnnNet(const ModelSpec& spec);
  torch::Tensor forward(torch::Tensor x) override;

 private:
  torch::nn::Sequential features{nullptr};
  torch::nn::Sequential classifier{nullptr};
};

}  // namespace cifar
