// Running a model over a set of images in batches, on the chosen device,
// with optional test-time augmentation. Shared by validation during
// training, the evaluation stage and `predict`.
#pragma once
#include <torch/torch.h>

#include <optional>

#include "data/dataset.h"
#include "distributed/context.h"
#include "metrics/eval_metrics.h"
#include "models/net.h"

namespace cifar {

struct EvalOptions {
  int64_t batch_size = 500;
  bool tta = false;  // average softmax over flip and flip + 1-pixel shifts
  torch::Device device = torch::kCPU;
  bool autocast = false;  // bf16 autocast (see use_bf16_autocast)
  // Divides the logits before anything is derived from them (calibration.h);
  // 1 leaves them as the model gives them.
  double temperature = 1.0;
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
  // With a temperature other than 1: the counts of the logits as the model
  // gave them, for the calibration error before scaling.
  std::optional<EvalCounts> uncalibrated;
};

SplitEvaluation evaluate_split(Net& model, const ImageSet& set, const Normalization& norm,
                               const EvalOptions& options,
                               const std::vector<std::string>& class_names);

// The same over the ranks of `dist`: each evaluates its contiguous shard
// (unpadded, so no image counts twice), and the counts are summed over
// ranks, so every number of the report covers the whole split. The
// per-image lists (predictions, raw confidences) stay rank 0's shard,
// which starts at image 0.
SplitEvaluation evaluate_sharded(Net& model, const ImageSet& set, const Normalization& norm,
                                 const EvalOptions& options, const std::vector<std::string>& class_names,
                                 DistributedContext& dist);

}  // namespace cifar
