// A Keras-style layer table: every leaf layer in the order a 1x3x32x32
// forward pass runs it, its output shape, its parameters, then the totals
// and the forward FLOPs of one image. Works for every model type because
// the models call their layers through run_layer()/Layers (models/net.h).
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "models/net.h"

namespace cifar {

struct LayerSummary {
  std::string name;  // as in the state dict: "layer1.0.conv1"
  std::string type;  // "Conv2d"
  std::vector<int64_t> output_shape;
  int64_t params = 0;  // counted at a layer's first call only
  int64_t flops = 0;
};

struct ModelSummary {
  std::vector<LayerSummary> layers;
  int64_t total_params = 0;
  int64_t trainable_params = 0;
  // Parameters of modules the forward pass never ran through run_layer or
  // Layers; 0 for every model here, shown when not.
  int64_t untraced_params = 0;
  // One image's forward pass: 2 x the multiply-adds of convs and linear
  // layers (norms, activations and pooling are not counted).
  int64_t flops = 0;
};

// Runs one zero image through `model` in eval mode without gradients; the
// model's mode is restored afterwards.
ModelSummary summarize(Net& model);

void print_summary(Net& model, const ModelSpec& spec, std::ostream& out);

}  // namespace cifar
