// Running a model over a set of images in batches, on the chosen device,
// with optional test-time augmentation. Shared by validation during
// training, the evaluation stage and `predict`.
#pragma once
#include <torch/torch.h>

#include "data/dataset.h"
#include "models/net.h"

namespace cifar {

struct EvalOptions {
  int64_t batch_size = 500;
  bool tta = false;  // average softmax over flip and flip + 1-pixel shifts
  torch::Device device = torch::kCPU;
  bool autocast = false;  // bf16 autocast (CUDA only)
};

// images: uint8 [N,3,H,W] on any device. Returns float logits [N, classes]
// on CPU (log of the averaged probabilities when tta is on). Puts the model
// in eval mode and restores its previous mode.
torch::Tensor predict_logits(Net& model, const torch::Tensor& images_u8, const Normalization& norm,
                             const EvalOptions& options);

}  // namespace cifar
