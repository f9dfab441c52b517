// Maps model names to constructors. `resnet18`, `resnet56`, ... are
// shorthands for --model-type resnet --depth N.
#pragma once
#include <vector>

#include "config/config.h"
#include "models/net.h"

namespace cifar {

// Builds the spec a config asks for; throws UserError for unknown names or depths.
ModelSpec make_spec(const ModelConfig& config, const std::vector<std::string>& class_names,
                    const std::vector<double>& mean, const std::vector<double>& std);

// "resnet" for the shorthands resnet18, resnet56, ...; any other name as it is.
std::string model_family(const std::string& model_type);

// `base` with the model flags that build `spec` (those of other
// architectures at their defaults): a checkpoint's model in flag form.
ModelConfig model_flags(const ModelSpec& spec, ModelConfig base = {});

// "resnet depth 18", "fast width 64", "efficientnet input size 224", "cnn".
std::string describe_model(const ModelSpec& spec);

// Constructs the (randomly initialised) model a spec describes.
NetPtr build_model(const ModelSpec& spec);

std::vector<std::string> model_names();

}  // namespace cifar
