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

bool Net::is_head_parameter(const std::string& name) const {
  const std::string head = head_name();
  return name.compare(0, head.size(), head) == 0 && name.size() > head.size() && name[head.size()] == '.';
}

void Net::train(bool on) {
  torch::nn::Module::train(on);
  if (!on || !backbone_frozen_) return;
  const std::string head_prefix = head_name() + ".";
  for (const auto& item : named_modules("", /*include_self=*/false)) {
    if (item.key().compare(0, head_prefix.size(), head_prefix) == 0) continue;
    auto* m = item.value().get();
    if (dynamic_cast<torch::nn::BatchNorm1dImpl*>(m) || dynamic_cast<torch::nn::BatchNorm2dImpl*>(m)) {
      m->eval();
    }
  }
}

void set_backbone_trainable(Net& model, bool trainable) {
  for (auto& item : model.named_parameters()) {
    const bool head = model.is_head_parameter(item.key());
    item.value().set_requires_grad(!model.is_fixed_parameter(item.key()) && (head || trainable));
  }
  model.backbone_frozen_ = !trainable;
  model.train(model.is_training());
}

namespace {
thread_local LayerTrace* active_trace = nullptr;
}  // namespace

LayerTrace::LayerTrace() : previous_(active_trace) { active_trace = this; }
LayerTrace::~LayerTrace() { active_trace = previous_; }

bool LayerTrace::active() { return active_trace != nullptr; }

void LayerTrace::record(const torch::nn::Module& layer, const torch::Tensor& output) {
  if (active_trace) active_trace->calls_.push_back({&layer, output.sizes().vec()});
}

torch::Tensor LayersImpl::forward(torch::Tensor x) {
  for (auto& child : *this) {
    x = child.forward(x);
    // Composite children (blocks, nested Layers) trace their own leaves.
    if (LayerTrace::active() && child.ptr()->children().empty()) LayerTrace::record(*child.ptr(), x);
  }
  return x;
}

}  // namespace cifar
