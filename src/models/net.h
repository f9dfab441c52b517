// What every model is: a torch Module with forward(images) -> logits, and a
// ModelSpec that records everything needed to rebuild it from a checkpoint
// alone (type, depth, width, input size, classes, normalisation).
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cifar {

struct ModelSpec {
  std::string type = "resnet";  // resnet | cnn | efficientnet | fast
  int depth = 18;
  int width = 0;
  int input_size = 32;
  double dropout = 0.3;
  std::vector<std::string> class_names;
  std::vector<double> mean{0, 0, 0};
  std::vector<double> std{1, 1, 1};
  int num_classes() const { return static_cast<int>(class_names.size()); }
};

nlohmann::json spec_to_json(const ModelSpec& spec);
ModelSpec spec_from_json(const nlohmann::json& j);

class Net : public torch::nn::Module {
 public:
  // x: normalised float [B, 3, 32, 32]; returns logits [B, classes].
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  // Parameters that should not get weight decay (biases, norm affine).
  std::vector<torch::Tensor> no_decay_parameters();
  std::vector<torch::Tensor> decay_parameters();
};
using NetPtr = std::shared_ptr<Net>;

int64_t count_parameters(torch::nn::Module& m, bool trainable_only = false);

}  // namespace cifar
