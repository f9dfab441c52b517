#include "models/net.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/printable.h"
#include "models/registry.h"
#include "models/resnet.h"

namespace cifar {

nlohmann::json spec_to_json(const ModelSpec& s) {
  return {{"type", s.type},   {"depth", s.depth},         {"width", s.width},
          {"input_size", s.input_size}, {"dropout", s.dropout}, {"class_names", s.class_names},
          {"mean", s.mean},   {"std", s.std},             {"temperature", s.temperature}};
}

ModelSpec spec_from_json(const nlohmann::json& j) {
  ModelSpec s;
  try {
    // The integers are checked on the JSON first: get<int>() casts whatever
    // number is there, and 1e300 to int is undefined behaviour (fuzz
    // finding F17), 2^40 a wrong value.
    for (const char* key : {"depth", "width", "input_size"}) {
      const auto& v = j.at(key);
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 100000) {
        // dump() recurses: only a scalar is shown, never a nested hostile value.
        throw UserError(std::string("model description in checkpoint has a bad ") + key + ": " +
                        (v.is_primitive() ? v.dump().substr(0, 40) : std::string("an ") + v.type_name()));
      }
    }
    s.type = j.at("type").get<std::string>();
    s.depth = j.at("depth").get<int>();
    s.width = j.at("width").get<int>();
    s.input_size = j.at("input_size").get<int>();
    s.dropout = j.at("dropout").get<double>();
    s.class_names = j.at("class_names").get<std::vector<std::string>>();
    s.mean = j.at("mean").get<std::vector<double>>();
    s.std = j.at("std").get<std::vector<double>>();
    // Absent from checkpoints written before calibration: 1.
    if (auto t = j.find("temperature"); t != j.end()) s.temperature = t->get<double>();
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    throw UserError(std::string("model description in checkpoint is incomplete: ") + e.what());
  }
  check_spec(s);
  return s;
}

void check_spec(const ModelSpec& s) {
  const std::string where = "model description in checkpoint";
  const auto names = model_names();
  check_input(std::find(names.begin(), names.end(), s.type) != names.end(),
              where + " names an unknown model type '" + printable(s.type, 40) + "'");
  if (s.type == "resnet") check_resnet_depth(s.depth);
  // Bounds that keep a hostile spec from asking for terabytes: the widest
  // net a flag can build (--width 1024), and CIFAR-sized inputs.
  check_input(s.width >= 0 && s.width <= kMaxWidth,
              where + " has width " + std::to_string(s.width) + " (0.." + std::to_string(kMaxWidth) + ")");
  check_input(s.input_size >= 32 && s.input_size <= 512,
              where + " has input size " + std::to_string(s.input_size) + " (32..512)");
  check_input(std::isfinite(s.dropout) && s.dropout >= 0 && s.dropout < 1,
              where + " has dropout " + std::to_string(s.dropout) + " (0 <= p < 1)");
  check_input(s.class_names.size() >= 2 && s.class_names.size() <= 1000,
              where + " has " + std::to_string(s.class_names.size()) + " class names (2..1000)");
  for (const auto& name : s.class_names) {
    check_input(!name.empty() && name.size() <= 256, where + " has an empty or over-long class name");
  }
  check_input(s.mean.size() == 3 && s.std.size() == 3, where + " needs 3 channel means and deviations");
  // The range calibration fits in (evaluation/calibration.h).
  check_input(std::isfinite(s.temperature) && s.temperature >= 0.05 && s.temperature <= 20,
              where + " has temperature " + std::to_string(s.temperature) + " (0.05..20)");
  for (int c = 0; c < 3; ++c) {
    check_input(std::isfinite(s.mean[c]) && std::isfinite(s.std[c]) && s.std[c] > 0,
                where + " has a non-finite mean or a deviation that is not positive");
  }
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

torch::ScalarType weight_dtype(torch::nn::Module& m) {
  for (const auto& p : m.parameters()) {
    if (p.is_floating_point()) return p.scalar_type();
  }
  return torch::kFloat32;
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
