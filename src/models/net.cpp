#include "models/net.h"

#include "common/error.h"

namespace cifar {

nlohmann::json spec_to_json(const ModelSpec& s) {
  return {{"type", s.type},   {"depth", s.depth},         {"width", s.width},
          {"input_size", s.input_size}, {"dropout", s.dropout}, {"class_names", s.class_names},
          {"mean", s.mean},   {"std", s.std}};
}

ModelSpec spec_from_json(const nlohmann::json& j) {
  ModelSpec s;
  try {
    s.type = j.at("type").get<std::string>();
    s.depth = j.at("depth").get<int>();
    s.width = j.at("width").get<int>();
    s.input_size = j.at("input_size").get<int>();
    s.dropout = j.at("dropout").get<double>();
    s.class_names = j.at("class_names").get<std::vector<std::string>>();
    s.mean = j.at("mean").get<std::vector<double>>();
    s.std = j.at("std").get<std::vector<double>>();
  } catch (const std::exception& e) {
    throw UserError(std::string("model description in checkpoint is incomplete: ") + e.what());
  }
  return s;
}

// Weight decay goes on conv and linear weights only, the tensors of rank
// >= 2; biases and batch-norm scales/shifts (rank 1) are left alone.
std::vector<torch::Tensor> Net::no_decay_parameters() {
  std::vector<torch::Tensor> out;
  for (auto& p : parameters()) if (p.requires_grad() && p.dim() < 2) out.push_back(p);
  return out;
}

std::vector<torch::Tensor> Net::decay_parameters() {
  std::vector<torch::Tensor> out;
  for (auto& p : parameters()) if (p.requires_grad() && p.dim() >= 2) out.push_back(p);
  return out;
}

int64_t count_parameters(torch::nn::Module& m, bool trainable_only) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

}  // namespace cifar
