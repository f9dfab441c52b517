#include "models/summary.h"

#include <algorithm>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

namespace cifar {
namespace {

// "torch::nn::Conv2dImpl" -> "Conv2d", "cifar::(anonymous namespace)::MBConvImpl" -> "MBConv".
std::string short_type(const torch::nn::Module& m) {
  std::string name = m.name();
  if (auto colon = name.rfind("::"); colon != std::string::npos) name = name.substr(colon + 2);
  if (name.size() > 4 && name.compare(name.size() - 4, 4, "Impl") == 0) name.resize(name.size() - 4);
  return name;
}

int64_t layer_flops(const torch::nn::Module& m, const std::vector<int64_t>& output_shape) {
  int64_t outputs = 1;
  for (int64_t d : output_shape) outputs *= d;
  if (auto* conv = dynamic_cast<const torch::nn::Conv2dImpl*>(&m)) {
    const auto& o = conv->options;
    const int64_t per_output = o.in_channels() / o.groups() * (*o.kernel_size())[0] * (*o.kernel_size())[1];
    return 2 * outputs * per_output;
  }
  if (auto* linear = dynamic_cast<const torch::nn::LinearImpl*>(&m)) {
    return 2 * outputs * linear->options.in_features();
  }
  return 0;
}

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(static_cast<size_t>(i), ",");
  return (n < 0 ? "-" : "") + digits;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string describe(const ModelSpec& spec) {
  std::string out = spec.type;
  if (spec.type == "resnet") out += "-" + std::to_string(spec.depth);
  if (spec.type == "fast") out += " (width " + std::to_string(spec.width > 0 ? spec.width : 64) + ")";
  if (spec.input_size != 32) out += ", upsampled to " + std::to_string(spec.input_size);
  return out + ", " + std::to_string(spec.num_classes()) + " classes";
}

}  // namespace

ModelSummary summarize(Net& model) {
  std::map<const torch::nn::Module*, std::string> names;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) names[item.value().get()] = item.key();

  const bool was_training = model.is_training();
  model.eval();
  std::vector<LayerCall> calls;
  try {
    torch::NoGradGuard no_grad;
    LayerTrace trace;
    const auto params = model.parameters();
    const auto device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
    model.forward(torch::zeros({1, 3, 32, 32}, torch::TensorOptions().device(device)));
    calls = trace.calls();
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);

  ModelSummary s;
  std::set<const torch::nn::Module*> counted;
  int64_t layer_params = 0;
  for (const auto& call : calls) {
    LayerSummary row;
    auto it = names.find(call.layer);
    row.name = it != names.end() ? it->second : "?";
    row.type = short_type(*call.layer);
    row.output_shape = call.output_shape;
    if (counted.insert(call.layer).second) {
      for (const auto& p : call.layer->parameters(/*recurse=*/false)) row.params += p.numel();
    }
    row.flops = layer_flops(*call.layer, call.output_shape);
    layer_params += row.params;
    s.flops += row.flops;
    s.layers.push_back(std::move(row));
  }
  s.total_params = count_parameters(model);
  s.trainable_params = count_parameters(model, /*trainable_only=*/true);
  s.untraced_params = s.total_params - layer_params;
  return s;
}

void print_summary(Net& model, const ModelSpec& spec, std::ostream& out) {
  const ModelSummary s = summarize(model);
  size_t name_width = std::string("Layer (type)").size();
  size_t shape_width = std::string("Output shape").size();
  for (const auto& l : s.layers) {
    name_width = std::max(name_width, l.name.size() + l.type.size() + 3);
    shape_width = std::max(shape_width, shape_string(l.output_shape).size());
  }
  const size_t params_width = 12;
  const size_t rule = name_width + 2 + shape_width + 2 + params_width;
  std::ostringstream t;
  t << "Model: " << describe(spec) << ", input 1x3x32x32\n" << std::string(rule, '-') << "\n";
  t << std::left << std::setw(static_cast<int>(name_width)) << "Layer (type)" << "  "
    << std::setw(static_cast<int>(shape_width)) << "Output shape" << "  " << std::right
    << std::setw(static_cast<int>(params_width)) << "Param #" << "\n"
    << std::string(rule, '=') << "\n";
  for (const auto& l : s.layers) {
    t << std::left << std::setw(static_cast<int>(name_width)) << (l.name + " (" + l.type + ")") << "  "
      << std::setw(static_cast<int>(shape_width)) << shape_string(l.output_shape) << "  " << std::right
      << std::setw(static_cast<int>(params_width)) << with_commas(l.params) << "\n";
  }
  t << std::string(rule, '=') << "\n";
  t << "Total params: " << with_commas(s.total_params) << "\n";
  t << "Trainable params: " << with_commas(s.trainable_params) << "\n";
  t << "Non-trainable params: " << with_commas(s.total_params - s.trainable_params) << "\n";
  if (s.untraced_params != 0) {
    t << "Params in layers the forward pass did not trace: " << with_commas(s.untraced_params) << "\n";
  }
  std::ostringstream giga;
  giga << std::fixed << std::setprecision(3) << static_cast<double>(s.flops) / 1e9;
  t << "Forward FLOPs per image: " << with_commas(s.flops) << " (" << giga.str()
    << " GFLOPs; 2 x conv and linear multiply-adds)\n";
  t << std::string(rule, '-') << "\n";
  out << t.str();
}

}  // namespace cifar
