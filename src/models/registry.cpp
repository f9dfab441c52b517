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

ModelSpec make_spec(const ModelConfig& config, const std::vector<std::string>& class_names,
                    const std::vector<double>& mean, const std::vector<double>& std) {
  ModelSpec spec;
  spec.type = config.model_type;
  spec.depth = config.depth;
  // "resnet56" = resnet with depth 56.
  const auto digits = spec.type.find_first_of("0123456789");
  if (digits != std::string::npos && spec.type.rfind("resnet", 0) == 0) {
    spec.depth = std::stoi(spec.type.substr(digits));
    spec.type = "resnet";
  }
  if (spec.type == "resnet" && spec.depth == 0) spec.depth = 18;
  if (spec.type == "resnet") check_resnet_depth(spec.depth);
  if (!builders().count(spec.type)) {
    throw UserError("unknown --model-type '" + printable(config.model_type.substr(0, 80)) + "': expected one of " +
                    known_names());
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

}  // namespace cifar
