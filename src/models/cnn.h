// The original system's custom CNN: three conv blocks of
// (conv3x3-BN-ReLU) x2, 2x2 max-pool and dropout, at 32/64/128 channels,
// then dense 512-BN-ReLU-dropout and the classifier: 1,342,186 parameters
// for 10 classes, 79.4 MFLOPs per image.
#pragma once
#include "models/net.h"

namespace cifar {

class CnnNet : public Net {
 public:
  explicit CnnNet(const ModelSpec& spec);
  torch::Tensor forward(torch::Tensor x) override;
  std::string head_name() const override { return "classifier"; }

 private:
  Layers features{nullptr};
  Layers classifier{nullptr};
};

}  // namespace cifar
