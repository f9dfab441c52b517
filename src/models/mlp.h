// A one-hidden-layer perceptron: no batch norm, so its training does not
// depend on how a global batch is split over ranks (batch norm normalises
// each rank's part by that part's own statistics). The distributed tests
// use it to check that N ranks train exactly as one; it is also the
// quickest model to smoke-test a setup with.
#pragma once
#include "models/net.h"

namespace cifar {

class MlpNet : public Net {
 public:
  explicit MlpNet(const ModelSpec& spec);
  torch::Tensor forward(torch::Tensor x) override;
  std::string head_name() const override { return "fc"; }

 private:
  Layers layers{nullptr};  // traced, so --summary shows them
  torch::nn::Linear fc{nullptr};
};

}  // namespace cifar
