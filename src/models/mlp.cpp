#include "models/mlp.h"

namespace cifar {
namespace nn = torch::nn;

// 256 hidden units: about 0.8 M parameters, enough to learn
// something, small enough for a test to train in a second.
constexpr int64_t kMlpHidden = 256;

MlpNet::MlpNet(const ModelSpec& spec) {
  layers = Layers(nn::Flatten(), nn::Linear(3 * 32 * 32, kMlpHidden), nn::ReLU(nn::ReLUOptions(true)),
                  nn::Dropout(spec.dropout));
  fc = nn::Linear(kMlpHidden, spec.num_classes());
  register_module("layers", layers);
  register_module("fc", fc);
}

torch::Tensor MlpNet::forward(torch::Tensor x) { return run_layer(fc, layers->forward(x)); }

}  // namespace cifar
