// Running a model over a set of images in batches, on the chosen device,
// with optional test-time augmentation. Shared by validation during
// training, the evaluation stage and `predict`.
#pragma once
#include <torch/torch.h>

#include "data/dataset.h"
#include "evaluation/metrics.h"
#include "models/net.h"

namespace cifar {

struct EvalOptions {
  int64_t batch_size = 500;
  bool tta = false;  // average softmax over flip and flip + 1-pixel shifts
  torch::Device device = torch::kCPU;
  bool autocast = false;  // bf16 autocast (see use_bf16_autocast)
};

// images: uint8 [N,3,H,W] on any device. Returns float logits [N, classes]
// on CPU (log of the averaged probabilities when tta is on). Puts the model
// in eval mode and restores its previous mode.
torch::Tensor predict_logits(Net& model, const torch::Tensor& images_u8, const Normalization& norm,
                             const EvalOptions& options);

// Refuses NaN or infinite logits (UserError): every metric would be
// meaningless, and the weights themselves are broken. Training's own
// validation does not ask: a NaN there is a diverged run (exit 1).
void check_finite_logits(const torch::Tensor& logits);

// One split evaluated on one process: the counts (to merge or all-reduce),
// the report made from them, and what was predicted for each image, in the
// set's order, so sample-prediction plots can pick images (say, the most
// confident mistakes).
struct SplitEvaluation {
  EvalCounts counts;
  EvalReport report;            // confidences_correct / _wrong filled in
  std::vector<int64_t> predicted;  // [N] top-1 class
  std::vector<double> confidence;  // [N] its softmax probability
};

SplitEvaluation evaluate_split(Net& model, const ImageSet& set, const Normalization& norm,
                               const EvalOptions& options,
                               const std::vector<std::string>& class_names);

}  // namespace cifar
