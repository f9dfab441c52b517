#include "models/registry.h"

#include <functional>
#include <map>

#include "common/error.h"
#include "common/printable.h"
#include "models/cnn.h"
#include "models/efficientnet.h"
#include "models/fastnet.h"
#include "models/mlp.h"
#include "models/resnet.h"

namespace cifar {
namespace {

using Builder = std::function<NetPtr(const ModelSpec&)>;

const std::map<std::string, Builder>& builders() {
  static const std::map<std::string, Builder> table = {
      {"cnn", [](const ModelSpec& s) -> NetPtr { return std::make_shared<CnnNet>(s); }},
      {"efficientnet", [](const ModelSpec& s) -> NetPtr { return std::make_shared<EfficientNet>(s); }},
      {"fast", [](const ModelSpec& s) -> NetPtr { return std::make_shared<FastNet>(s); }},
      {"mlp", [](const ModelSpec& s) -> NetPtr { return std::make_shared<MlpNet>(s); }},
      {"resnet", [](const ModelSpec& s) -> NetPtr { return std::make_shared<ResNet>(s); }},
  };
  return table;
}

std::string known_names() {
  std::string out;
  for (const auto& [name, _] : builders()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& [name, _] : builders()) names.push_back(name);
  return names;
}

std::string model_family(const std::string& type) {
  const bool shorthand = type.size() > 6 && type.size() <= 10 && type.rfind("resnet", 0) == 0 &&
                         type.find_first_not_of("0123456789", 6) == std::string::npos;
  return shorthand ? "resnet" : type;
}

ModelConfig model_flags(const ModelSpec& spec, ModelConfig base) {
  const ModelConfig defaults;
  base.model_type = spec.type;
  base.depth = spec.type == "resnet" ? spec.depth : defaults.depth;
  base.width = spec.type == "fast" ? spec.width : defaults.width;
  base.input_size = spec.type == "efficientnet" ? spec.input_size : defaults.input_size;
  base.dropout_rate = spec.dropout;
  return base;
}

ModelSpec make_spec(const ModelConfig& config, const std::vector<std::string>& class_names,
                    const std::vector<double>& mean, const std::vector<double>& std) {
  ModelSpec spec;
  spec.type = config.model_type;
  spec.depth = config.depth;
  // "resnet56" = resnet with depth 56.
  if (model_family(spec.type) != spec.type) {
    const int named = std::stoi(spec.type.substr(6));
    check_resnet_depth(named);  // "resnet0" would otherwise become the default 18
    if (config.depth != 0 && config.depth != named) {
      throw UserError("--model-type " + spec.type + " and --depth " + std::to_string(config.depth) +
                      " disagree (hint: give the depth once)");
    }
    spec.depth = named;
    spec.type = "resnet";
  }
  if (spec.type != "resnet" && config.depth != 0 && builders().count(spec.type)) {
    throw UserError("--depth " + std::to_string(config.depth) + " applies to resnet, not to --model-type " +
                    spec.type);
  }
  if (spec.type == "resnet" && spec.depth == 0) spec.depth = 18;
  if (spec.type == "resnet") check_resnet_depth(spec.depth);
  if (!builders().count(spec.type)) {
    throw UserError("unknown --model-type '" + printable(config.model_type.substr(0, 80)) + "': expected one of " +
                    known_names());
  }
  // Flags of one architecture are refused for the others, not ignored.
  if (config.width != 0 && spec.type != "fast") {
    throw UserError("--width " + std::to_string(config.width) + " applies to the fast net, not to --model-type " +
                    config.model_type);
  }
  if (config.input_size != 32 && spec.type != "efficientnet") {
    throw UserError("--input-size " + std::to_string(config.input_size) +
                    " applies to efficientnet, not to --model-type " + config.model_type +
                    " (which reads CIFAR's 32x32 images as they are)");
  }
  spec.width = config.width;
  spec.input_size = config.input_size;
  spec.dropout = config.dropout_rate;
  spec.class_names = class_names;
  spec.mean = mean;
  spec.std = std;
  return spec;
}

NetPtr build_model(const ModelSpec& spec) {
  auto it = builders().find(spec.type);
  if (it == builders().end()) {
    throw UserError("unknown model type '" + spec.type + "': expected one of " + known_names());
  }
  return it->second(spec);
}

std::string describe_model(const ModelSpec& spec) {
  std::string out = spec.type;
  if (spec.type == "resnet") out += " depth " + std::to_string(spec.depth);
  if (spec.type == "fast") out += " width " + std::to_string(fast_net_width(spec));
  if (spec.type == "efficientnet") out += " input size " + std::to_string(spec.input_size);
  return out;
}

}  // namespace cifar
