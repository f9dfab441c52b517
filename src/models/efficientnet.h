// EfficientNet-B0 (Tan & Le 2019) built as torchvision builds it, with the
// same module and parameter names (features.0.0.weight, ...,
// features.1.0.block.1.fc1.weight, ..., features.8.1.running_var,
// classifier.1.weight), so torchvision's ImageNet weights load by name:
// MBConv blocks with squeeze-and-excitation (squeeze = input channels / 4),
// SiLU, batch norm (eps 1e-5, momentum 0.1), stochastic depth 0.2 x
// block/16 (active only in training), dropout then Linear.
//
// Input size: at spec.input_size 32 (CIFAR as is) the stem conv and the
// first stride-2 stage (features.2, 16 -> 24 channels) run at stride 1, so
// the 32x32 image is reduced 8x to a 4x4 map instead of 32x to 1x1. Above 32
// the input is first upsampled bilinearly to input_size x input_size and
// the standard ImageNet strides apply (224 -> 7x7), the setting the
// pretrained weights were trained in. Strides carry no weights, so the same
// weight file fits both.
#pragma once
#include <string>

#include "models/net.h"
#include "models/safetensors.h"

namespace cifar {

class EfficientNet : public Net {
 public:
  explicit EfficientNet(const ModelSpec& spec);
  torch::Tensor forward(torch::Tensor x) override;
  std::string head_name() const override { return "classifier"; }

 private:
  torch::nn::Upsample upsample{nullptr};  // only when spec.input_size > 32
  Layers features{nullptr};
  torch::nn::AdaptiveAvgPool2d avgpool{nullptr};
  torch::nn::Flatten flatten{nullptr};
  Layers classifier{nullptr};
};

// Loads ImageNet EfficientNet-B0 weights saved from torchvision (names as
// its state_dict, see docs/MODELS.md) into `model`. The head (classifier.*)
// is loaded when all its shapes match; when none does (a 1000-class head,
// or none) the model keeps its fresh one. num_batches_tracked may be
// absent. Anything else missing, unexpected or mis-shaped, an integer
// tensor where the model has floats, or NaN/infinite values is reported in
// one UserError and nothing is loaded. Returns a line saying what loaded.
std::string load_pretrained(Net& model, const ModelSpec& spec, const std::string& path);
// The same with tensors already read (a .pth, a download); `source` names
// them in the errors and the line.
std::string load_pretrained(Net& model, const ModelSpec& spec, const TensorMap& file, const std::string& source);

}  // namespace cifar
